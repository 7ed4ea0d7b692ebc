"""Workloads: the layers of a network as the cost model sees them.

A workload is built by shape inference (``nasco.nn.workload``) without running torch,
read from a SCALE-Sim topology CSV, the format users of systolic simulators know, or read
from any ONNX model (:func:`nasco.hw.read_onnx`).
"""
from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nasco.dsl import SpecError

__all__ = ["COLUMNS", "KINDS", "Layer", "MAX_ELEMENTS", "MAX_MACS", "MAX_SIDE", "MAX_STEP", "Workload",
           "read_scalesim_csv", "stack_columns", "write_scalesim_csv"]


KINDS = ("conv", "linear", "neuron", "pool", "add")

# Size bounds of one layer. The cost model counts in int64; within these bounds none of its
# products comes near 2**63 (the largest, row-stationary ifmap reads, stay below about
# MACs x 2 x (stride + dilation) <= 2**60), and each bound is far above real networks:
# a side of 2**20 is a million pixels or channels (ImageNet layers: 224 pixels, 4096 channels);
# 2**40 elements (1.1e12) is a thousand times a 4K image's 64-channel feature map;
# 2**48 MACs (2.8e14) per layer and timestep is a hundred times GPT-3's largest matrix product.
MAX_SIDE = 2**20      # ifmap and filter sides, channels, filters, groups, timesteps
MAX_STEP = 2**10      # stride, dilation, operands of an add
MAX_ELEMENTS = 2**40  # a layer's ifmap, ofmap, weights or elements
MAX_MACS = 2**48      # a layer's MACs per sample and timestep
_SIDES = ("ifmap_h", "ifmap_w", "filter_h", "filter_w", "channels", "num_filters", "groups", "timesteps")
_STEPS = ("stride", "dilation", "operands")


def _side_problem(layer: Layer) -> str | None:
    """Which size field of ``layer`` is outside its bound (None when none is)."""
    for name, bound in [(n, MAX_SIDE) for n in _SIDES] + [(n, MAX_STEP) for n in _STEPS]:
        v = getattr(layer, name)
        if v > bound or (v < 1 and name != "operands"):  # operands < 1 has its own message
            return f"{name} {v:,} is outside 1..{bound:,}"
    if layer.elements > MAX_ELEMENTS:
        return f"elements {layer.elements:,} is over {MAX_ELEMENTS:,} (2**40)"
    if layer.output_bits > 64:
        return f"output_bits {layer.output_bits} is over 64"
    return None


def _product_problem(layer: Layer) -> str | None:
    """Which of the ifmap, weights, ofmap and MACs of a checked ``layer`` is over its bound."""
    if layer.kind not in ("conv", "linear", "pool"):
        return None
    counts = [("ifmap elements", layer.ifmap_h * layer.ifmap_w * layer.channels, MAX_ELEMENTS, "2**40")]
    if layer.kind != "pool":
        counts += [("weights", layer.params, MAX_ELEMENTS, "2**40"),
                   ("ofmap elements", layer.ofmap_elements, MAX_ELEMENTS, "2**40"),
                   ("MACs per timestep", layer.macs, MAX_MACS, "2**48")]
    for what, n, bound, power in counts:
        if n > bound:
            return f"its {n:,} {what} are over {bound:,} ({power})"
    return None


@dataclass(frozen=True)
class Layer:
    """One layer, per sample and per timestep.

    Conv and linear layers follow SCALE-Sim's convention: ``ifmap_h/w`` include padding,
    so ``ofmap = (ifmap - dilated_filter) // stride + 1``. A linear layer is a 1x1 conv on
    a 1x1 ifmap. A 'neuron' layer is ``elements`` spiking-neuron updates per timestep.

    A 'pool' layer (average or max pooling) uses the conv geometry: ``ifmap_h/w`` padded,
    ``filter_h/w`` the pooling window, ``stride``, ``channels == num_filters`` the channel
    count; ``elements`` is its output element count (filled in when given as 0). An 'add'
    layer sums ``operands`` tensors of ``elements`` elements each (``operands - 1`` adds per
    output element). Pool and add layers run on the vector unit, not the array: they have
    no MACs and no parameters.

    ``spiking_input``: the layer's input is binary spikes, so each MAC becomes an
    accumulate gated by the input spike; on a pool or add layer, its inputs are read at 1 bit
    per element and its adds or compares are 1-bit operations. ``timesteps``: how often the layer runs per
    inference (1 for ANNs and for a directly-encoded SNN stem, whose output is reused).

    ``output_bits``: the width of the layer's output per element and timestep when it is
    not the template's activation width; 0 (the default) means the activation width. 1 on a
    conv, linear or add layer says that its output feeds only the neuron layer right after
    it, so the LIF units at the array edge fire on it in the same pass and what leaves the
    layer is 1-bit spikes (a fused LIF; :class:`Workload` checks the neuron is there). 1 on a
    pool layer is a max-pool of spikes. Only spiking (``pe.type: sop``) templates read it.
    """

    name: str
    kind: str = "conv"
    ifmap_h: int = 1
    ifmap_w: int = 1
    filter_h: int = 1
    filter_w: int = 1
    channels: int = 1
    num_filters: int = 1
    stride: int = 1
    groups: int = 1
    dilation: int = 1
    spiking_input: bool = False
    timesteps: int = 1
    elements: int = 0
    operands: int = 1
    output_bits: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"layer {self.name}: unknown kind {self.kind!r}; known: {', '.join(KINDS)}")
        problem = _side_problem(self)
        if problem:
            raise ValueError(f"layer {self.name}: {problem}, the bound of nasco.hw's cost model")
        if self.output_bits < 0 or (self.kind == "neuron" and self.output_bits not in (0, 1)):
            raise ValueError(f"layer {self.name}: output_bits must be 0 (the activation width) or a positive "
                             f"width (a neuron's output is 1-bit spikes: 0 or 1), got {self.output_bits}")
        if self.elements < 0:
            raise ValueError(f"layer {self.name}: negative element count {self.elements}")
        if self.operands < 1:
            raise ValueError(f"layer {self.name}: operands must be at least 1, got {self.operands}")
        if self.kind == "add":
            if self.elements < 1:
                raise ValueError(f"layer {self.name}: an add layer needs elements >= 1")
        elif self.kind != "neuron":
            if self.channels % self.groups or self.num_filters % self.groups:
                raise ValueError(f"layer {self.name}: channels/filters not divisible by groups")
            if self.ofmap_h < 1 or self.ofmap_w < 1:
                raise ValueError(f"layer {self.name}: filter larger than the (padded) ifmap")
        if self.kind == "pool":
            if self.channels != self.num_filters or self.groups != 1 or self.dilation != 1:
                raise ValueError(f"layer {self.name}: a pool layer has channels == num_filters, "
                                 "groups 1 and dilation 1")
            out = self.ofmap_h * self.ofmap_w * self.num_filters
            if self.elements == 0:
                object.__setattr__(self, "elements", out)  # frozen: filled in once, at creation
            elif self.elements != out:
                raise ValueError(f"layer {self.name}: elements {self.elements} != the pool's "
                                 f"{out} output elements")
        problem = _product_problem(self)
        if problem:
            raise ValueError(f"layer {self.name}: {problem}, the bound of nasco.hw's cost model")

    @property
    def ofmap_h(self) -> int:
        return (self.ifmap_h - (self.dilation * (self.filter_h - 1) + 1)) // self.stride + 1

    @property
    def ofmap_w(self) -> int:
        return (self.ifmap_w - (self.dilation * (self.filter_w - 1) + 1)) // self.stride + 1

    @property
    def macs(self) -> int:
        """Multiply-accumulates per sample per timestep (0 for neuron, pool and add layers)."""
        if self.kind not in ("conv", "linear"):
            return 0
        return (self.ofmap_h * self.ofmap_w * self.num_filters
                * self.filter_h * self.filter_w * (self.channels // self.groups))

    @property
    def params(self) -> int:
        if self.kind not in ("conv", "linear"):
            return 0
        return self.filter_h * self.filter_w * (self.channels // self.groups) * self.num_filters

    @property
    def ofmap_elements(self) -> int:
        if self.kind in ("conv", "linear"):
            return self.ofmap_h * self.ofmap_w * self.num_filters
        return self.elements


@dataclass(frozen=True)
class Workload:
    """An ordered tuple of layers; ``arrays()`` gives the columns the cost model vectorises over."""

    layers: tuple[Layer, ...]
    name: str = "workload"
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        # A conv/linear/add with 1-bit outputs hands them to a fused LIF: the neuron layer
        # right after it, over the same elements and timesteps (see Layer.output_bits).
        for i, la in enumerate(self.layers):
            if la.output_bits != 1 or la.kind not in ("conv", "linear", "add"):
                continue
            nxt = self.layers[i + 1] if i + 1 < len(self.layers) else None
            ok = (nxt is not None and nxt.kind == "neuron" and nxt.elements == la.ofmap_elements
                  and nxt.timesteps >= la.timesteps)
            if not ok:
                found = "nothing" if nxt is None else (f"{nxt.kind} {nxt.name!r} ({nxt.elements} elements, "
                                                       f"T={nxt.timesteps})")
                raise ValueError(
                    f"workload {self.name!r}: layer {la.name!r} has output_bits 1 (its output feeds a "
                    f"fused LIF), so a neuron layer over its {la.ofmap_elements} output elements, with at "
                    f"least its {la.timesteps} timesteps, must follow it; found {found}. Put the neuron "
                    "right after it or set output_bits 0")

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs * layer.timesteps for layer in self.layers)

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    def arrays(self) -> dict[str, np.ndarray]:
        cols = ("ifmap_h", "ifmap_w", "filter_h", "filter_w", "channels", "num_filters", "stride",
                "groups", "dilation", "timesteps", "elements", "operands", "output_bits")
        out = {c: np.array([getattr(layer, c) for layer in self.layers], dtype=np.int64) for c in cols}
        out["kind"] = np.array([layer.kind for layer in self.layers])
        out["spiking_input"] = np.array([layer.spiking_input for layer in self.layers], dtype=bool)
        return out

    def columns(self) -> np.ndarray:
        """The layers as one read-only int64 array of shape ``(len(COLUMNS), len(self))``.

        Row ``COLUMNS.index(c)`` holds column ``c``; ``neuron``, ``pool``, ``add`` (the layer's
        kind) and ``spiking_input`` are 0/1.
        Built once and cached on the (immutable) workload, so costing the same workload on
        many templates, or thousands of workloads at once (:func:`stack_columns`), does not
        walk the Layer objects again.
        """
        cached = self.__dict__.get("_columns")
        if cached is None:
            cached = _layer_columns(self.layers)
            object.__setattr__(self, "_columns", cached)  # frozen dataclass: a cache, not state
        return cached

    @classmethod
    def concat(cls, workloads: Sequence[Workload], name: str = "workload") -> Workload:
        """One workload holding the layers of ``workloads`` in order (columns reused)."""
        layers = tuple(layer for w in workloads for layer in w.layers)
        return cls._with_columns(layers, stack_columns(workloads)[0], name)

    @classmethod
    def _with_columns(cls, layers: tuple[Layer, ...], columns: np.ndarray, name: str) -> Workload:
        """A workload whose columns the caller already holds (bulk builders; their tests
        check the columns equal those built from the layers)."""
        if columns.shape != (len(COLUMNS), len(layers)):
            raise ValueError(f"columns of shape {columns.shape} for {len(layers)} layers")
        out = cls(layers, name=name)
        columns.setflags(write=False)
        object.__setattr__(out, "_columns", columns)
        return out


# Row order of Workload.columns(); the cost model reads rows by these names.
COLUMNS = ("ifmap_h", "ifmap_w", "filter_h", "filter_w", "channels", "num_filters", "stride",
           "groups", "dilation", "timesteps", "elements", "neuron", "spiking_input", "pool", "add",
           "operands", "output_bits")


def _layer_columns(layers: Sequence[Layer]) -> np.ndarray:
    rows = [(la.ifmap_h, la.ifmap_w, la.filter_h, la.filter_w, la.channels, la.num_filters, la.stride,
             la.groups, la.dilation, la.timesteps, la.elements, la.kind == "neuron", la.spiking_input,
             la.kind == "pool", la.kind == "add", la.operands, la.output_bits)
            for la in layers]
    out = np.array(rows, dtype=np.int64).reshape(len(rows), len(COLUMNS)).T.copy()
    out.setflags(write=False)
    return out


def stack_columns(workloads: Sequence[Workload]) -> tuple[np.ndarray, np.ndarray]:
    """All workloads' columns side by side, and the ``len(workloads) + 1`` offsets where
    each workload's layers start (the last offset is the total layer count)."""
    parts = [w.columns() for w in workloads]
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    if not parts:
        return np.zeros((len(COLUMNS), 0), dtype=np.int64), offsets
    np.cumsum([p.shape[1] for p in parts], out=offsets[1:])
    return np.concatenate(parts, axis=1), offsets


_SCALESIM_COLS = ["Layer name", "IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width",
                  "Channels", "Num Filter", "Strides"]


def read_scalesim_csv(path: str | Path) -> Workload:
    """Read a SCALE-Sim topology CSV (``Layer name, IFMAP Height, ..., Strides,``)."""
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError("a readable SCALE-Sim topology CSV", type(exc).__name__, file=file) from None
    # (line number, cells) of every non-blank row, so errors point at the real line
    rows = [(n, r) for n, r in enumerate(csv.reader(text.splitlines()), start=1) if any(c.strip() for c in r)]
    if not rows:
        raise SpecError("a header row " + ", ".join(_SCALESIM_COLS), "an empty file", file=file)
    header = [c.strip() for c in rows[0][1] if c.strip()]
    if header[: len(_SCALESIM_COLS)] != _SCALESIM_COLS:
        raise SpecError("the SCALE-Sim header " + ", ".join(_SCALESIM_COLS), ", ".join(header),
                        file=file, line=rows[0][0], hint="write the columns in this order")
    layers = []
    for i, row in rows[1:]:
        cells = [c.strip() for c in row if c.strip() != ""]
        if len(cells) < len(_SCALESIM_COLS):
            raise SpecError(f"{len(_SCALESIM_COLS)} values", f"{len(cells)}", file=file, line=i)
        try:
            ih, iw, fh, fw, ch, nf, st = (int(c) for c in cells[1:8])
        except ValueError:
            raise SpecError("integers in columns 2-8", ", ".join(cells[1:8]), file=file, line=i) from None
        if min(ih, iw, fh, fw, ch, nf, st) < 1:
            raise SpecError("positive sizes", ", ".join(cells[1:8]), file=file, line=i)
        for col, v in zip(_SCALESIM_COLS[1:], (ih, iw, fh, fw, ch, nf, st)):
            bound = MAX_STEP if col == "Strides" else MAX_SIDE
            if v > bound:
                raise SpecError(f"{col} of at most {bound:,} (nasco.hw's bound on a layer's sizes)", f"{v:,}",
                                file=file, line=i, hint="check the row: a million pixels a side or channels "
                                "is far beyond any network")
        if fh > ih or fw > iw:
            raise SpecError("a filter no larger than the ifmap", f"filter {fh}x{fw} on ifmap {ih}x{iw}",
                            file=file, line=i, hint="SCALE-Sim ifmaps include padding")
        # SCALE-Sim keeps a last, partial window: ofmap = ceil((ifmap - filter) / stride) + 1.
        # Extending the ifmap to (ofmap - 1) * stride + filter gives that ofmap with the usual
        # floor rule, so the layer means what SCALE-Sim means by it.
        oh, ow = -(-(ih - fh) // st) + 1, -(-(iw - fw) // st) + 1
        try:
            layers.append(Layer(cells[0], "conv", (oh - 1) * st + fh, (ow - 1) * st + fw, fh, fw, ch, nf, st))
        except ValueError as exc:  # e.g. more MACs than the cost model counts
            raise SpecError("a layer within nasco.hw's size bounds", str(exc), file=file, line=i,
                            hint="check the row's sizes") from None
    if not layers:
        raise SpecError("at least one layer row after the header", "only the header", file=file,
                        line=rows[0][0], hint="add a row per layer: name, IFMAP height and width, filter "
                        "height and width, channels, filters, stride")
    return Workload(tuple(layers), name=path.stem)


def write_scalesim_csv(workload: Workload, path: str | Path) -> None:
    """Write the conv/linear layers of a workload as a SCALE-Sim topology CSV (neuron, pool
    and add layers have no SCALE-Sim row and are left out)."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(_SCALESIM_COLS + [""])
        for layer in workload.layers:
            if layer.kind not in ("conv", "linear"):
                continue
            if layer.groups != 1 or layer.dilation != 1:
                raise ValueError(f"{layer.name}: SCALE-Sim topologies have no groups or dilation")
            w.writerow([layer.name, layer.ifmap_h, layer.ifmap_w, layer.filter_h, layer.filter_w,
                        layer.channels, layer.num_filters, layer.stride, ""])
