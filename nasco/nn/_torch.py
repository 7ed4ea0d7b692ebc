"""Plans -> torch modules. Spiking neurons and surrogates come from spikingjelly.

Tensors of timestep-varying values are kept as ``[T*B, C, H, W]`` so convs and BNs run
on all timesteps at once; neurons see ``[T, B, ...]`` in spikingjelly's multi-step mode.
Values that do not vary over time (a directly encoded input through the stem) stay
``[B, ...]`` and are computed once.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from torch import nn

# spikingjelly registers Triton kernels as torch ops; on a machine without Triton (every
# CPU-only install) torch logs "Triton not available" at WARNING each time one is looked up,
# in the middle of the search's progress lines. The CPU path does not use them.
logging.getLogger("torch._library.triton").setLevel(logging.ERROR)

from nasco.dsl import ArchSpace
from nasco.nn._plan import Node, Plan

__all__ = ["GraphNet", "make_layer", "make_neuron"]


def make_neuron(space: ArchSpace) -> nn.Module:
    """A multi-step spikingjelly neuron as the (resolved) space's neuron section says."""
    from spikingjelly.activation_based import neuron, surrogate

    n = space.neuron
    surrogates = {
        "atan": surrogate.ATan, "sigmoid": surrogate.Sigmoid,
        "piecewise_quadratic": surrogate.PiecewiseQuadratic, "soft_sign": surrogate.SoftSign,
        "erf": surrogate.Erf,
    }
    sg = surrogates[n.surrogate](alpha=n.surrogate_alpha)
    common = dict(v_threshold=n.v_threshold, v_reset=n.v_reset, surrogate_function=sg,
                  detach_reset=n.detach_reset, step_mode="m")
    if n.type == "plif":
        return neuron.ParametricLIFNode(init_tau=n.tau, **common)
    return neuron.LIFNode(tau=n.tau, **common)


class MaxPool2d(nn.MaxPool2d):
    """:class:`torch.nn.MaxPool2d` that, without a gradient to keep and on CPU, pools a 4-D input
    in channels-last memory and returns the result contiguous, as the input's layout: the same
    values (a maximum does not depend on the order it is taken in). torch's channels-last CPU
    kernel is several times faster than its NCHW one on the small maps of these cells, and
    validation passes (float and quantized) are mostly what runs without a gradient. With a
    gradient, on another device, or while being traced or compiled (exports), it is
    :class:`torch.nn.MaxPool2d` itself, so training and exported graphs are unchanged."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.dim() != 4 or x.device.type != "cpu" or (x.requires_grad and torch.is_grad_enabled())
                or torch.jit.is_tracing() or torch.compiler.is_compiling()):
            return super().forward(x)
        return super().forward(x.contiguous(memory_format=torch.channels_last)).contiguous()


def make_layer(node: Node, space: ArchSpace) -> nn.Module | None:
    """The torch module of a plan node (None for the ops without one: input, encode, relu,
    add, concat, mix, gap, zero)."""
    a = node.attrs
    if node.op == "conv":
        return nn.Conv2d(a["c_in"], node.shape[0], a["kernel"], a["stride"], a["padding"], a["dilation"],
                         a["groups"], bias=False)
    if node.op == "bn":
        return nn.BatchNorm2d(node.shape[0])
    if node.op == "neuron":
        return make_neuron(space)
    if node.op == "linear":
        return nn.Linear(a["c_in"], node.shape[0])
    if node.op == "maxpool":
        return MaxPool2d(a["kernel"], a["stride"], a["padding"])
    if node.op == "avgpool":
        return nn.AvgPool2d(a["kernel"], a["stride"], a["padding"], count_include_pad=False)
    return None


def _key(name: str) -> str:
    return name.replace(".", "__")


class GraphNet(nn.Module):
    """Executes a :class:`Plan`; input ``[B, C, H, W]``, output logits ``[B, classes]``.

    ``layer_of(node, space)`` gives each node's module (default :func:`make_layer`: new ones);
    a single path of a supernet passes the supernet's own (see :class:`nasco.nn.OneShotNet`)."""

    def __init__(self, plan: Plan, space: ArchSpace,
                 layer_of: Callable[[Node, ArchSpace], nn.Module | None] = make_layer) -> None:
        super().__init__()
        self.plan = plan
        self.T = plan.timesteps
        self.static = plan.static()
        binary = plan.binary()
        self.layers = nn.ModuleDict()
        self.spike_inputs: list[str] = []  # convs/linears whose inputs are spikes
        for n in plan.nodes:
            layer = layer_of(n, space)
            if layer is not None:
                self.layers[_key(n.name)] = layer
            if n.op in ("conv", "linear") and binary[n.inputs[0]]:
                self.spike_inputs.append(n.name)

    def module_of(self, name: str) -> nn.Module:
        return self.layers[_key(name)]

    def _temporal(self, x: torch.Tensor, static: bool) -> torch.Tensor:
        return x.repeat(self.T, *([1] * (x.dim() - 1))) if static and self.T > 1 else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        vals: dict[str, torch.Tensor] = {}
        batch = x.shape[0]
        for n in self.plan.nodes:
            ins = [vals[i] for i in n.inputs]
            op = n.op
            if op == "input":
                y = x
            elif op == "encode":
                y = ins[0]
                if n.attrs["encoding"] == "events":
                    # Event frames (B, T, C, H, W) -> time-major [T*B, C, H, W], the layout the
                    # neurons view as (T, B, ...). Clipped to {0, 1} (any event in the bin): the
                    # plan declares this input binary, so the cost model prices the stem conv's
                    # inputs as spikes; clipping keeps that true for count frames too.
                    if y.dim() != 5 or y.shape[1] != self.T:
                        raise ValueError(f"encoding 'events' expects input (B, T={self.T}, C, H, W), "
                                         f"got {tuple(y.shape)}")
                    y = (y.transpose(0, 1) > 0).to(y.dtype).flatten(0, 1)
                elif y.dim() == 5:
                    raise ValueError(f"5-D input {tuple(y.shape)} (event frames) needs encoding 'events', "
                                     f"not {n.attrs['encoding']!r}")
                if n.attrs["encoding"] == "rate":  # Poisson/Bernoulli spikes of intensities in [0, 1]
                    y = y.clamp(0, 1)
                    y = (torch.rand((self.T,) + tuple(y.shape), device=y.device) < y).to(y.dtype)
                    y = y.flatten(0, 1)
            elif op in ("conv", "bn", "maxpool", "avgpool", "linear"):
                y = self.layers[_key(n.name)](ins[0])
            elif op == "relu":
                y = torch.relu(ins[0])
            elif op == "neuron":
                t = self._temporal(ins[0], self.static[n.inputs[0]])
                y = self.layers[_key(n.name)](t.reshape(self.T, batch, *t.shape[1:])).flatten(0, 1)
            elif op in ("add", "concat"):
                if not all(self.static[i] for i in n.inputs):
                    ins = [self._temporal(v, self.static[i]) for v, i in zip(ins, n.inputs)]
                y = torch.cat(ins, dim=1) if op == "concat" else torch.stack(ins).sum(0)
            elif op == "mix":
                if not all(self.static[i] for i in n.inputs):
                    ins = [self._temporal(v, self.static[i]) for v, i in zip(ins, n.inputs)]
                y = self._mix(n, ins)
            elif op == "gap":
                y = ins[0].mean(dim=(2, 3))
            elif op == "zero":
                y = torch.zeros_like(ins[0])
            else:  # pragma: no cover - plans only hold the ops above
                raise RuntimeError(f"unknown op {op}")
            vals[n.name] = y
        out = vals[self.plan.output]
        if out.shape[0] != batch:  # average the logits over timesteps
            out = out.reshape(self.T, batch, -1).mean(0)
        return out

    def _mix(self, node, ins: list[torch.Tensor]) -> torch.Tensor:
        raise RuntimeError(f"{node.name}: a mixed op needs architecture weights; build the plan with "
                           f"nasco.nn.SuperNet")

    @contextmanager
    def _recording(self) -> Iterator[dict[str, list[float]]]:
        sums: dict[str, list[float]] = {name: [0.0, 0.0] for name in self.spike_inputs}
        handles = []
        for name in self.spike_inputs:
            def hook(_mod, args, name=name):
                x = args[0].detach()
                sums[name][0] += float(x.sum(dtype=torch.float64))
                sums[name][1] += x.numel()
            handles.append(self.module_of(name).register_forward_pre_hook(hook))
        try:
            yield sums
        finally:
            for h in handles:
                h.remove()

    def spike_rate_recorder(self) -> "_Recorder":
        """A context manager measuring, per conv/linear with spiking input, the mean input
        spike rate (spikes per input element per timestep) over the batches run inside it."""
        return _Recorder(self)


class _Recorder:
    def __init__(self, net: GraphNet) -> None:
        self._net = net
        self._cm = None
        self._sums: dict[str, list[float]] = {}

    def __enter__(self) -> "_Recorder":
        self._cm = self._net._recording()
        self._sums = self._cm.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._cm.__exit__(*exc)

    def rates(self) -> dict[str, float]:
        return {k: (s / n if n else 0.0) for k, (s, n) in self._sums.items()}
