"""ONNX models -> workloads: the layers of any network a framework can export, by ONNX shape inference.

The reader maps operators onto :class:`~nasco.hw.Layer` kinds, per sample:

- ``Conv`` (1-D or 2-D; grouped, depthwise, dilated, strided; explicit ``pads`` or ``auto_pad``
  SAME_UPPER, SAME_LOWER, VALID): a 'conv' layer whose ``ifmap_h/w`` include the padding
  (SCALE-Sim's convention). Asymmetric pads are summed: the padded ifmap is as tall as the input
  plus both pads, which is all the array's work depends on.
- ``Gemm`` and ``MatMul`` whose second operand is a constant 2-D matrix ``[K, N]``: a 'linear'
  layer of K channels and N filters. A MatMul input ``[n, r1, ..., K]`` applies the matrix to
  ``r1 * ...`` rows per sample: a linear layer on an ifmap that many rows tall (MACs
  ``rows * K * N``). A product of two computed tensors (attention's ``Q @ K^T``) holds no
  weights and is not read.
- ``MaxPool`` and ``AveragePool`` (1-D or 2-D): a 'pool' layer with the conv geometry; with
  ``ceil_mode`` the padded ifmap is extended to hold the last, partial window.
- ``Add`` and ``Sum`` of two or more computed tensors: an 'add' layer over the output's elements
  (a broadcast operand is counted as a full operand). ``ReduceSum`` over an axis of ``n``
  stacked tensors (how torch exports ``torch.stack(xs).sum(0)``) is an add layer of ``n``
  operands. An Add with a constant operand (a bias or a folded shift) is not a layer.
- Not costed, as in the workloads nasco plans for its own networks: ``BatchNormalization``
  (folded into the conv before it), activations (``Relu``, ``Clip``, ``Sigmoid``,
  ``HardSwish``, ...), and global pooling (``GlobalAveragePool``, ``GlobalMaxPool``, and
  ``ReduceMean`` over the spatial axes of a 4-D tensor) before the classifier.
- Data movement without arithmetic (``Reshape``, ``Flatten``, ``Concat``, ``Transpose``,
  ``Squeeze``, ``Unsqueeze``, ``Slice``, ``Split``, ``Pad``, ``Expand``, ``Tile``, ``Cast``,
  ``Identity``, ``Dropout``, ...) passes through without a layer; a ``Pad`` before a conv grows the
  conv's input, so its ifmap holds that padding. A node whose inputs are all constants (weights,
  ``Constant``, ``Shape``) is folded offline and is no layer either.

Batch: axis 0 of every tensor is the batch axis. A symbolic axis 0 of a graph input is fixed at 1
before shape inference; a fixed one, ``n``, is read as ``n`` samples. A layer whose axis 0 holds
``r * n`` rows (a spiking network exported time-major holds ``T * n``) runs ``r`` times per sample:
its :attr:`~nasco.hw.Layer.timesteps` is ``r``.

Any other operator is unsupported: :func:`read_onnx` raises a :class:`~nasco.dsl.SpecError`
naming the first such node, or with ``skip_unsupported=True`` leaves those nodes out and lists
them in ``Workload.meta["skipped"]``. The model is parsed from its protobuf bytes; external data
files are never opened (the workload needs only the tensor shapes, which the model file holds).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import numpy_helper

from nasco.dsl import SpecError
from nasco.hw._workload import Layer, Workload

__all__ = ["ACTIVATIONS", "FOLDED", "MOVES", "read_onnx"]

# Element-wise activations: not costed (the array's output stage or the vector unit applies them
# on the way out, as nasco's own workloads treat ReLU).
ACTIVATIONS = frozenset({
    "Relu", "LeakyRelu", "PRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu", "Selu",
    "Celu", "Softplus", "Softsign", "Gelu", "Mish", "ThresholdedRelu", "Softmax", "LogSoftmax",
})
# Folded into the layer before them at inference: not costed.
FOLDED = frozenset({"BatchNormalization"})
# Data movement without arithmetic: no layer.
MOVES = frozenset({
    "Reshape", "Flatten", "Concat", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Slice",
    "Split", "Pad", "Expand", "Tile", "Cast", "CastLike", "DepthToSpace", "SpaceToDepth",
})
_GLOBAL_POOLS = frozenset({"GlobalAveragePool", "GlobalMaxPool"})
_HINT = "skip_unsupported=True (--skip-unsupported) costs the rest and lists what it left out"


class _Unsupported(Exception):
    """A node that nasco does not cost: its op type, or a form of a known op no Layer holds."""


class _Graph:
    """The inferred shapes and constant values of a model's main graph."""

    def __init__(self, model: onnx.ModelProto, file: str) -> None:
        self.file = file
        g = model.graph
        self.shapes: dict[str, tuple[int | None, ...] | None] = {}
        for v in [*g.input, *g.value_info, *g.output]:
            self.shapes[v.name] = _dims(v)
        for t in g.initializer:
            self.shapes[t.name] = tuple(int(d) for d in t.dims)
        self.values: dict[str, np.ndarray] = {}
        for t in g.initializer:
            if t.data_location != onnx.TensorProto.EXTERNAL:
                self.values[t.name] = numpy_helper.to_array(t)
        # Tensors known before any input arrives: weights, Constant outputs, shapes and what is
        # computed from them alone.
        self.constant: set[str] = {t.name for t in g.initializer} | {""}

    def shape(self, name: str, node: onnx.NodeProto, index: int) -> tuple[int, ...]:
        """The static shape of tensor ``name``; a SpecError at ``node`` when inference left it open."""
        dims = self.shapes.get(name)
        if dims is None or any(d is None for d in dims[1:]):
            raise SpecError("tensors of static shape (every axis but the batch axis)",
                            f"tensor '{name}' of shape {_show(dims)}", file=self.file,
                            path=("graph", "node", index, node.name or node.op_type),
                            hint="export the model with fixed input sizes, or fix them with "
                                 "onnx.tools.update_model_dims")
        return tuple(1 if d is None else d for d in dims)

    def value(self, name: str) -> np.ndarray | None:
        return self.values.get(name)


def _dims(v: onnx.ValueInfoProto) -> tuple[int | None, ...] | None:
    t = v.type.tensor_type
    if not t.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in t.shape.dim)


def _show(dims: Sequence[int | None] | None) -> str:
    if dims is None:
        return "unknown"
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def read_onnx(path: str | Path, *, skip_unsupported: bool = False) -> Workload:
    """The workload of the ONNX model at ``path``, per sample (see the module docstring for
    how each operator maps onto a layer).

    ``Workload.meta`` holds ``"batch"`` (the samples the model's axis 0 holds, 1 when symbolic) and
    ``"skipped"``: the ``(node name, op type)`` pairs of the unsupported nodes left out, in graph
    order (empty unless ``skip_unsupported``). Raises :class:`~nasco.dsl.SpecError` for a file
    that is not a readable ONNX model, a shape that inference cannot fix, a model with no layer
    nasco costs, or, unless ``skip_unsupported``, the first unsupported node.
    """
    path = Path(path)
    file = str(path)
    model = _load(path, file)
    batch = _fix_batch(model)
    try:
        model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpecError("an ONNX model that shape inference accepts", first, file=file,
                        hint="check it with onnx.checker.check_model(model, full_check=True)") from None
    graph = _Graph(model, file)
    layers: list[Layer] = []
    skipped: list[tuple[str, str]] = []
    first_problem: tuple[int, onnx.NodeProto, str] | None = None
    for index, node in enumerate(model.graph.node):
        name = node.name or (node.output[0] if node.output else f"{node.op_type}_{index}")
        try:
            layer = _node_layer(graph, node, index, name, batch)
        except _Unsupported as why:
            skipped.append((name, node.op_type))
            if first_problem is None:
                first_problem = (index, node, str(why))
            continue
        if layer is not None:
            layers.append(layer)
    if skipped and not skip_unsupported:
        index, node, why = first_problem  # type: ignore[misc]
        counts = Counter(op for _, op in skipped)
        listed = ", ".join(f"{op} x{n}" for op, n in counts.most_common())
        raise SpecError("an operator nasco costs or passes through",
                        f"op type {node.op_type} at node '{skipped[0][0]}' ({why})", file=file,
                        path=("graph", "node", index),
                        hint=f"{len(skipped)} unsupported node(s) ({listed}); {_HINT}")
    if not layers:
        raise SpecError("at least one conv, linear, pool or add layer", "none", file=file, path=("graph",),
                        hint="the model holds only operators that are not costed" + (
                            f" and {len(skipped)} skipped node(s)" if skipped else ""))
    return Workload(tuple(layers), name=path.stem, meta={"batch": batch, "skipped": tuple(skipped)})


def _load(path: Path, file: str) -> onnx.ModelProto:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SpecError("a readable ONNX model file", type(exc).__name__, file=file) from None
    hint = "give a .onnx file written by torch.onnx.export or another ONNX exporter"
    try:
        # From the bytes, so no external data file is opened.
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError):
        raise SpecError("an ONNX model (a protobuf ModelProto)", "bytes that do not parse as one",
                        file=file, hint=hint) from None
    # Protobuf reads many byte strings as some message: a model has an IR version, an opset and nodes.
    if model.ir_version < 1 or not model.opset_import or not model.graph.node:
        raise SpecError("an ONNX model (a protobuf ModelProto)",
                        "a file without an IR version, opset or graph nodes", file=file, hint=hint)
    return model


def _fix_batch(model: onnx.ModelProto) -> int:
    """Fix a symbolic axis 0 of every graph input at 1; the batch the first input holds."""
    weights = {t.name for t in model.graph.initializer}
    batch = None
    for v in model.graph.input:
        if v.name in weights or not v.type.tensor_type.HasField("shape"):
            continue
        dims = v.type.tensor_type.shape.dim
        if not dims:
            continue
        if not (dims[0].HasField("dim_value") and dims[0].dim_value > 0):
            dims[0].Clear()
            dims[0].dim_value = 1
        if batch is None:
            batch = int(dims[0].dim_value)
    return batch or 1


def _node_layer(graph: _Graph, node: onnx.NodeProto, index: int, name: str, batch: int) -> Layer | None:
    """The layer of ``node`` (None when it is not costed); raises _Unsupported."""
    op = node.op_type
    ins = [i for i in node.input if i]
    if node.domain not in ("", "ai.onnx"):
        raise _Unsupported(f"op type {node.domain}::{op} is outside the default ONNX domain")
    if all(i in graph.constant for i in ins) or op in ("Shape", "Size"):
        if op == "Constant":
            _constant_value(graph, node)
        graph.constant.update(node.output)  # folded offline: no layer
        return None
    if op in ACTIVATIONS or op in FOLDED or op in MOVES or op in _GLOBAL_POOLS:
        return None
    if op == "Gather":
        if node.input[0] in graph.constant:
            raise _Unsupported("a Gather from a constant table (an embedding lookup) is not costed")
        return None
    try:
        if op == "Conv":
            return _conv(graph, node, index, name, batch)
        if op in ("MaxPool", "AveragePool"):
            return _pool(graph, node, index, name, batch)
        if op in ("Gemm", "MatMul"):
            return _linear(graph, node, index, name, batch)
        if op in ("Add", "Sum"):
            return _add(graph, node, index, name, batch)
        if op == "ReduceSum":
            return _reduce_sum(graph, node, index, name, batch)
        if op == "ReduceMean":
            _global_mean(graph, node, index)
            return None
    except SpecError:
        raise
    except ValueError as exc:  # Layer's own checks: a size outside the cost model's bounds
        raise SpecError("a layer within nasco.hw's size bounds", str(exc), file=graph.file,
                        path=("graph", "node", index), hint="check the model's sizes") from None
    raise _Unsupported("nasco has no layer for this op type")


def _constant_value(graph: _Graph, node: onnx.NodeProto) -> None:
    a = _attrs(node)
    if "value" in a:
        graph.values[node.output[0]] = numpy_helper.to_array(a["value"])
    elif "value_ints" in a:
        graph.values[node.output[0]] = np.array(a["value_ints"], dtype=np.int64)
    elif "value_int" in a:
        graph.values[node.output[0]] = np.array(a["value_int"], dtype=np.int64)


def _repeats(dim0: int, batch: int) -> int:
    """How often a layer runs per sample when its axis 0 holds ``dim0`` rows of ``batch`` samples."""
    if dim0 % batch:
        raise _Unsupported(f"its axis 0 holds {dim0} rows, not a multiple of the model's batch of {batch}")
    return dim0 // batch


def _spatial(shape: tuple[int, ...], what: str) -> tuple[int, int, int]:
    """(channels, height, width) of a 1-D (``[n, C, W]``, height 1) or 2-D (``[n, C, H, W]``) map."""
    if len(shape) == 3:
        return shape[1], 1, shape[2]
    if len(shape) == 4:
        return shape[1], shape[2], shape[3]
    raise _Unsupported(f"a {what} over {len(shape) - 2} spatial axes (nasco's layers hold 1-D and 2-D maps)")


def _pair(values: Sequence[int] | None, rank: int, default: int) -> tuple[int, int]:
    """(height, width) of a per-spatial-axis attribute; a 1-D op has height 1 (with ``default``)."""
    if not values:
        return default, default
    vals = [int(v) for v in values]
    return (default, vals[0]) if rank == 1 else (vals[0], vals[1])


def _one(pair: tuple[int, int], what: str, height: int, width: int) -> int:
    """The single stride or dilation nasco's Layer holds; an axis of extent 1 takes any."""
    h, w = pair
    if h == w or height == 1:
        return w
    if width == 1:
        return h
    raise _Unsupported(f"{what} {h}x{w}: nasco's layers have one {what} for both axes")


def _padded(a: dict[str, Any], rank: int, size: tuple[int, int], window: tuple[int, int],
            stride: int) -> tuple[int, int]:
    """The padded ifmap (height, width): the input plus both pads of each axis (summed when
    asymmetric); ``auto_pad`` SAME_* pads to ``ceil(size / stride)`` outputs, as ONNX defines it."""
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        return tuple(s + max(0, (-(-s // stride) - 1) * stride + k - s)  # type: ignore[return-value]
                     for s, k in zip(size, window))
    if auto == "VALID":
        return size
    pads = [int(p) for p in a.get("pads", [])] or [0] * (2 * rank)
    if rank == 1:
        return size[0], size[1] + pads[0] + pads[1]
    return size[0] + pads[0] + pads[2], size[1] + pads[1] + pads[3]


def _checked(layer: Layer, out: tuple[int, ...], node: onnx.NodeProto, graph: _Graph, index: int) -> Layer:
    """``layer``, once its output map matches the output shape ONNX inferred."""
    _, oh, ow = _spatial(out, node.op_type)
    if (layer.ofmap_h, layer.ofmap_w) != (oh, ow):
        raise SpecError(f"the {oh}x{ow} output map ONNX shape inference gives",
                        f"{layer.ofmap_h}x{layer.ofmap_w} from the node's attributes", file=graph.file,
                        path=("graph", "node", index), hint="check the node's pads, strides and kernel_shape")
    return layer


def _conv(graph: _Graph, node: onnx.NodeProto, index: int, name: str, batch: int) -> Layer:
    x = graph.shape(node.input[0], node, index)
    w = graph.shape(node.input[1], node, index)
    y = graph.shape(node.output[0], node, index)
    c, h, wd = _spatial(x, "Conv")
    rank = len(x) - 2
    a = _attrs(node)
    kernel = (1, w[2]) if rank == 1 else (w[2], w[3])
    stride = _one(_pair(a.get("strides"), rank, 1), "stride", h, wd)
    dilation = _one(_pair(a.get("dilations"), rank, 1), "dilation", kernel[0], kernel[1])
    window = tuple(dilation * (k - 1) + 1 for k in kernel)
    ih, iw = _padded(a, rank, (h, wd), window, stride)  # type: ignore[arg-type]
    layer = Layer(name, "conv", ih, iw, kernel[0], kernel[1], c, w[0], stride, int(a.get("group", 1)),
                  dilation, timesteps=_repeats(x[0], batch))
    return _checked(layer, y, node, graph, index)


def _pool(graph: _Graph, node: onnx.NodeProto, index: int, name: str, batch: int) -> Layer:
    x = graph.shape(node.input[0], node, index)
    y = graph.shape(node.output[0], node, index)
    c, h, wd = _spatial(x, node.op_type)
    rank = len(x) - 2
    a = _attrs(node)
    kernel = _pair(a["kernel_shape"], rank, 1)
    stride = _one(_pair(a.get("strides"), rank, 1), "stride", h, wd)
    if _pair(a.get("dilations"), rank, 1) != (1, 1):
        raise _Unsupported("a dilated pool (nasco's pool layers have dilation 1)")
    ih, iw = _padded(a, rank, (h, wd), kernel, stride)
    _, oh, ow = _spatial(y, node.op_type)
    if a.get("ceil_mode"):  # the last, partial window: extend the ifmap to hold it
        ih, iw = max(ih, (oh - 1) * stride + kernel[0]), max(iw, (ow - 1) * stride + kernel[1])
    layer = Layer(name, "pool", ih, iw, kernel[0], kernel[1], c, c, stride, timesteps=_repeats(x[0], batch))
    return _checked(layer, y, node, graph, index)


def _linear(graph: _Graph, node: onnx.NodeProto, index: int, name: str, batch: int) -> Layer:
    a_name, b_name = node.input[0], node.input[1]
    if b_name not in graph.constant or a_name in graph.constant:
        raise _Unsupported("a product of two computed tensors (or of a constant by a computed one) holds "
                           "no weights; only a computed input times a constant matrix is a linear layer")
    x = graph.shape(a_name, node, index)
    b = graph.shape(b_name, node, index)
    if len(b) != 2:
        raise _Unsupported(f"a {len(b)}-D weight tensor (a linear layer's weights are one 2-D matrix)")
    a = _attrs(node) if node.op_type == "Gemm" else {}
    k, n = (b[1], b[0]) if a.get("transB") else (b[0], b[1])
    if node.op_type == "Gemm":
        rows_total = x[1] if a.get("transA") else x[0]
        rows = 1
    elif len(x) == 1:
        rows_total, rows = batch, 1
    else:
        rows_total, rows = x[0], int(np.prod(x[1:-1], dtype=np.int64))
    return Layer(name, "linear", rows, 1, 1, 1, k, n, timesteps=_repeats(rows_total, batch))


def _elementwise(name: str, out: tuple[int, ...], operands: int, batch: int) -> Layer:
    """An add layer of ``operands`` inputs over the output's per-sample elements; a 4-D output
    ``[n, C, H, W]`` keeps its map geometry, as nasco's planned add layers do."""
    if not out:
        raise _Unsupported("a scalar output has no batch axis")
    steps = _repeats(out[0], batch)
    elements = int(np.prod(out[1:], dtype=np.int64))
    c, h, w = out[1:] if len(out) == 4 else (1, 1, 1)
    return Layer(name, "add", h, w, 1, 1, c, c, timesteps=steps, elements=elements, operands=operands)


def _add(graph: _Graph, node: onnx.NodeProto, index: int, name: str, batch: int) -> Layer | None:
    computed = [i for i in node.input if i and i not in graph.constant]
    if len(computed) < 2:  # plus a constant: a bias or shift, folded into the layer before
        return None
    return _elementwise(name, graph.shape(node.output[0], node, index), len(computed), batch)


def _axes(graph: _Graph, node: onnx.NodeProto, rank: int) -> list[int] | None:
    """The reduced axes of a Reduce* node (input 1 from opset 18, else the attribute), normalised;
    None when every axis is reduced."""
    if len(node.input) > 1 and node.input[1]:
        value = graph.value(node.input[1])
        if value is None:
            raise _Unsupported("its axes are computed, not constant")
        axes: Iterable[int] = value.reshape(-1).tolist()
    else:
        axes = _attrs(node).get("axes", [])
    axes = sorted({int(v) % rank for v in axes})
    if not axes:
        return None if not _attrs(node).get("noop_with_empty_axes") else []
    return axes


def _reduce_sum(graph: _Graph, node: onnx.NodeProto, index: int, name: str, batch: int) -> Layer | None:
    x = graph.shape(node.input[0], node, index)
    axes = _axes(graph, node, len(x))
    if axes is None:
        raise _Unsupported("a sum over every axis, the batch axis with them")
    if not axes:
        return None  # noop_with_empty_axes: an identity
    operands = int(np.prod([x[i] for i in axes], dtype=np.int64))
    if operands == 1:
        return None
    return _elementwise(name, graph.shape(node.output[0], node, index), operands, batch)


def _global_mean(graph: _Graph, node: onnx.NodeProto, index: int) -> None:
    """A ReduceMean over the spatial axes of a 4-D map is a global average pool (not costed)."""
    x = graph.shape(node.input[0], node, index)
    if len(x) != 4 or _axes(graph, node, 4) != [2, 3]:
        raise _Unsupported("a ReduceMean other than over the spatial axes of a 4-D map (a global average "
                           "pool)")
