"""ONNX export of a found network: ``network.onnx`` in plain ONNX operators, and its sidecar facts.

The exported module is nasco's own :class:`~nasco.nn.GraphNet` executing the plan, exported
with torch's ``torch.export``-based ONNX exporter (a symbolic batch axis). In a spiking
network each spikingjelly neuron (a stateful module whose update is a registered custom op,
picked by device, dtype and surrogate) is swapped for :class:`UnrolledLIF`: the same discrete
LIF/PLIF update written in plain torch ops and unrolled over the T timesteps, so the graph
does not depend on how spikingjelly dispatches and holds only default-domain ONNX operators
(Conv, BatchNormalization, GreaterOrEqual, Where, ...).
"""
from __future__ import annotations

import dataclasses
import logging
import math
import warnings
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from nasco.dsl import ArchSpace
from nasco.export._errors import ExportError
from nasco.nn import GraphNet, Node, Plan
from nasco.nn._torch import make_layer

__all__ = ["OPSET", "UnrolledLIF", "torch_outputs", "write_onnx"]

# The default-domain opset the file declares: ONNX 1.15's, which onnxruntime runs from 1.17 on
# and torch's exporter targets by default.
OPSET = 20
FILE = "network.onnx"

# The exporter logs one WARNING per torchvision op it cannot register when torchvision is
# absent (every nasco install); nasco's networks use none of them.
logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)


class UnrolledLIF(nn.Module):
    """A LIF or PLIF neuron layer on ``[T, B, ...]`` input in plain torch ops, one update per
    timestep: charge ``H = V + (X - (V - V_reset)) / tau`` (PLIF: times ``sigmoid(w)``), fire
    ``S = H >= V_th``, then hard reset to ``V_reset`` or, when ``v_reset`` is None, soft reset
    ``H - V_th * S`` (the charge then uses ``V_reset = 0``). ``V`` starts at ``V_reset`` (0 for
    soft reset). Spikes agree exactly with spikingjelly's ``LIFNode`` / ``ParametricLIFNode``
    (``decay_input=True``), whose CPU kernels compute the same float32 values; PLIF's
    parameter keeps spikingjelly's name ``w``, so a trained state dict loads unchanged."""

    def __init__(self, tau: float, v_threshold: float, v_reset: float | None, parametric: bool) -> None:
        super().__init__()
        self.tau, self.v_threshold, self.v_reset = tau, v_threshold, v_reset
        # spikingjelly's initialisation, 1 / tau = sigmoid(w); a loaded state overrides it
        self.w = nn.Parameter(torch.tensor(-math.log(tau - 1.0))) if parametric else None

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        rest = 0.0 if self.v_reset is None else self.v_reset
        v = torch.full_like(x_seq[0], rest)
        rate = None if self.w is None else self.w.sigmoid()
        spikes = []
        for x in x_seq:
            h = v + (x - (v - rest)) / self.tau if rate is None else v + (x - (v - rest)) * rate
            fired = h >= self.v_threshold
            if self.v_reset is None:
                v = h - fired.to(h.dtype) * self.v_threshold
            else:  # spikingjelly's S * V_reset + (1 - S) * H, for S in {0, 1}
                v = torch.where(fired, rest, h)
            spikes.append(fired.to(x.dtype))
        return torch.stack(spikes)


def _layer(node: Node, space: ArchSpace) -> nn.Module | None:
    """GraphNet's layer of a node, with neurons as :class:`UnrolledLIF`."""
    if node.op != "neuron":
        return make_layer(node, space)
    n = space.neuron
    return UnrolledLIF(float(n.tau), float(n.v_threshold), n.v_reset, parametric=n.type == "plif")


class _Tapped(nn.Module):
    """The network, and optionally the spikes ``[T, B, C, H, W]`` of one neuron node as a
    second output (kept by a forward hook, so GraphNet's execution is untouched)."""

    def __init__(self, net: GraphNet, tap: str | None) -> None:
        super().__init__()
        self.net, self.tap = net, tap
        self._seen: list[torch.Tensor] = []
        if tap is not None:
            net.module_of(tap).register_forward_hook(lambda _m, _a, out: self._seen.append(out))

    def forward(self, x: torch.Tensor):
        self._seen.clear()
        logits = self.net(x)
        return logits if self.tap is None else (logits, self._seen.pop())


def _check_exportable(plan: Plan, space: ArchSpace) -> None:
    for node in plan.nodes:
        if node.op == "mix":
            raise ExportError(node.name, "a supernet's mixed op is not one network",
                              "derive the cell (nasco.nn.derive_cell) and export the network it gives")
        if node.op == "neuron" and space.neuron.type not in ("lif", "plif"):
            raise ExportError(node.name, f"neuron type {space.neuron.type!r} has no ONNX form here",
                              "use a lif or plif space, or the torch format")


def _spike_input_plan(plan: Plan) -> Plan:
    """A rate-encoded plan whose encoder is cut off: the network reads the encoded spikes,
    laid out (B, T, C, H, W) as event frames are, which GraphNet takes through 'events'."""
    nodes = tuple(dataclasses.replace(n, attrs={**n.attrs, "encoding": "events"})
                  if n.op == "encode" and n.attrs["encoding"] == "rate" else n for n in plan.nodes)
    return dataclasses.replace(plan, nodes=nodes)


def _exported_module(plan: Plan, space: ArchSpace, state: Mapping[str, torch.Tensor], *,
                  spike_output: bool = False) -> _Tapped:
    """The module :func:`write_onnx` exports, in eval mode, ``state`` loaded (strict)."""
    _check_exportable(plan, space)
    encoding = space.encoding if plan.spiking else None
    net = GraphNet(_spike_input_plan(plan) if encoding == "rate" else plan, space, layer_of=_layer)
    _load(net, state)
    tap = [n.name for n in plan.nodes if n.op == "neuron"][-1] if spike_output and plan.spiking else None
    return _Tapped(net, tap).eval()


def _load(net: GraphNet, state: Mapping[str, torch.Tensor]) -> None:
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    reshaped = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    for what, keys in (("missing", missing), ("unexpected", unexpected), ("of another shape", reshaped)):
        if keys:
            raise ExportError("weights", f"{len(keys)} tensor(s) {what} for this plan, e.g. {keys[0]}",
                              "export the weights trained for this architecture")
    net.load_state_dict(dict(state))


def _example_input(plan: Plan, encoding: str | None) -> torch.Tensor:
    """Two samples of the input the graph reads (their values do not matter to the export)."""
    per_step = encoding in ("rate", "events")
    shape = (2, plan.timesteps, *plan.input_shape) if per_step else (2, *plan.input_shape)
    return torch.zeros(shape)


_INPUT_NOTES = {
    None: "the image, as in training",
    "direct": "the image, as in training; the stem runs once and its output is repeated over the T timesteps",
    "events": "event frames (B, T, C, H, W), any positive count read as a spike",
    "rate": "the rate-encoded spikes (B, T, C, H, W) in {0, 1}: the random Bernoulli encoder is not in the "
            "graph; draw spike[b, t] = uniform() < clamp(x[b], 0, 1) per timestep, x the image as in "
            "training",
}


def write_onnx(plan: Plan, space: ArchSpace, state: Mapping[str, torch.Tensor], out_dir: str | Path, *,
               opset: int = OPSET, spike_output: bool = False) -> dict[str, Any]:
    """Write ``out_dir/network.onnx``, the network ``plan`` with weights ``state``, and return
    its sidecar facts (JSON-ready).

    The graph maps input ``[batch, C, H, W]`` (``[batch, T, C, H, W]`` for event frames or
    rate-encoded spikes) to the logits ``[batch, classes]``, averaged over the T timesteps in
    a spiking network; the batch axis is symbolic. ``spike_output=True`` adds, for a spiking
    network, the spikes ``[T, batch, C, H, W]`` of its last neuron node as a second output.
    Every node is in the default ONNX domain. Raises :class:`ExportError` for a supernet plan,
    a neuron type without an ONNX form, or weights that do not fit the plan.
    """
    import onnx

    module = _exported_module(plan, space, state, spike_output=spike_output)
    encoding = space.encoding if plan.spiking else None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / FILE
    outputs = ["logits"] + (["spikes"] if module.tap else [])
    with warnings.catch_warnings():
        # torch's own pytree helper trips its deprecation of LeafSpec during export
        warnings.filterwarnings("ignore", message=r".*LeafSpec.*", category=FutureWarning)
        torch.onnx.export(module, (_example_input(plan, encoding),), str(path), dynamo=True, verbose=False,
                          input_names=["input"], output_names=outputs, opset_version=opset,
                          dynamic_shapes=({0: torch.export.Dim("batch")},), external_data=False)
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    custom = sorted({f"{n.domain}::{n.op_type}" for n in model.graph.node if n.domain not in ("", "ai.onnx")})
    if custom or model.functions:  # pragma: no cover - a guard on the exporter, not on nasco
        raise ExportError(str(path), f"the exporter emitted custom-domain ops {custom or model.functions}",
                          "use the torch format")
    facts: dict[str, Any] = {
        "files": [FILE], "format": "onnx", "opset": opset, "ir_version": model.ir_version,
        "onnx_version": onnx.__version__, "exporter": f"torch.onnx (torch.export) {torch.__version__}",
        "spiking": plan.spiking, "timesteps": plan.timesteps, "encoding": encoding,
        "inputs": [dict(_value_info(v), note=_INPUT_NOTES[encoding])
                   for v in model.graph.input],
        "outputs": [_value_info(v) for v in model.graph.output],
    }
    facts["outputs"][0]["note"] = "logits" + (", the mean over the T timesteps" if plan.spiking else "")
    if module.tap:
        facts["outputs"][1].update(node=module.tap, note=f"spikes of the last neuron node, {module.tap}")
    if plan.spiking:
        n = space.neuron
        # a PLIF layer's time constant is trained (in the file's weights); the space gives its start
        facts["neuron"] = {"type": n.type, "tau_init" if n.type == "plif" else "tau": n.tau,
                           "v_threshold": n.v_threshold, "v_reset": n.v_reset,
                           "reset": "soft" if n.v_reset is None else "hard"}
    return facts


def _value_info(v) -> dict[str, Any]:
    """Name, shape (a symbolic dimension by its name) and element type of a graph input or output."""
    import onnx

    t = v.type.tensor_type
    dims = [d.dim_param if d.HasField("dim_param") else d.dim_value for d in t.shape.dim]
    return {"name": v.name, "shape": dims, "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name}


def torch_outputs(model: GraphNet, x: torch.Tensor, tap: str | None = None) -> tuple[Any, Any]:
    """What an ONNX export is checked against: ``model``'s logits on ``x`` and, for ``tap`` (a
    neuron node), the spikes [T, B, ...] it emitted, as numpy arrays (None without a tap); the
    network's neuron states are reset after the run."""
    from nasco.evaluate._train import reset_states

    seen: list[torch.Tensor] = []
    handle = model.module_of(tap).register_forward_hook(lambda _m, _a, out: seen.append(out)) if tap else None
    try:
        with torch.no_grad():
            logits = model(x)
    finally:
        reset_states(model)
        if handle is not None:
            handle.remove()
    return logits.numpy(), (seen[0].numpy() if tap else None)
