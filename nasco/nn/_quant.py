"""Post-training quantization of a :class:`~nasco.nn.GraphNet` to an accelerator's bit widths.

Three parts of a network are quantized, each only when its width is given:

* weights of convs and linears: per output channel, symmetric, ``scale = max|w| / (2^(b-1) - 1)``,
  rounded to nearest (:func:`quantize_weight`). Biases and batch norms stay float: they are added
  in the accumulator, whose width is far above the weights'. A batch norm after a conv rescales
  each output channel, so folding it into the conv leaves the per-channel grid unchanged;
* activations, the inputs of convs and linears (:class:`ActivationQuantizer`): per tensor,
  affine (``2^b`` levels with a zero point, so that 0 is exact) over the range observed on
  calibration batches widened to include 0; from 0 up where the plan guarantees the tensor is
  non-negative (after a ReLU, pools and sums of such; the network input when every calibration
  value is). Spikes are 0/1, exact at any width: inputs the plan marks binary
  (:meth:`nasco.nn.Plan.binary`) are never quantized;
* spiking neurons (:class:`FixedPointNeuron`): the membrane potential and the threshold on one
  signed fixed-point grid at the membrane width; the leak ``1/tau`` as an unsigned fraction of
  the same width. The grid's reach (its largest magnitude) lies between the threshold and the
  calibrated membrane range; of :data:`REACH_CANDIDATES` reaches spaced geometrically there, the
  one whose spikes on the neuron's recorded calibration inputs differ least from the float
  neuron's (:meth:`FixedPointNeuron.fit_range`). Spikes, not the membrane's rounding error, are
  what the neuron passes on: a wide grid holds rare deep negative membranes without saturating
  but rounds every membrane coarsely, moving threshold crossings; a narrow grid does the reverse,
  and which costs fewer spikes depends on the width (experiments/results/precision.md compares
  the fitted grid with the whole range at each width).

Rounding uses torch's fake-quantization kernels (``torch.fake_quantize_per_channel_affine``,
``torch.fake_quantize_per_tensor_affine``; round half to even; gradients pass straight through),
so a quantized model is a float model whose values lie on the integer grids, and it runs in the
same evaluation code. Where no gradient is needed, activations and membranes are rounded by
:func:`round_to_grid`, which gives the per-tensor kernel's values bit for bit.

Calibration (:func:`observe_ranges`) runs the float network once and records the range of every
quantized activation and membrane, and a sample of every neuron's inputs; any number of
precisions are then quantized from those ranges (:func:`quantize` takes the ranges or the
batches), as in torch's own post-training flow, where observers watch the float model.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np
import torch
from spikingjelly.activation_based import functional as sj_functional
from spikingjelly.activation_based import neuron as sj_neuron
from torch import nn
from torch.ao.quantization.observer import MinMaxObserver

from nasco.nn._plan import Plan

__all__ = ["ActivationQuantizer", "FixedPointNeuron", "Precision", "QuantRanges", "QuantizedInput",
           "observe_ranges", "quantize", "quantize_weight", "round_to_grid"]

_MIN_BITS, _MAX_BITS = 2, 32
# Up to this membrane width a value already on the grid, k * scale with |k| < 2^(b-1), rounds to
# itself: (k * scale) * (1 / scale) in float32 is k within |k| * 2^-22 <= 1/8 of a step.
_EXACT_RESET_BITS = 20
# The membrane reaches a fixed-point neuron chooses from (FixedPointNeuron.fit_range), and the
# input sequences per calibration batch it judges them on (evenly spaced over the batch's neurons
# and images). Measured on the 10 trained darts_snn networks of experiments/precision.py with an
# 8-bit membrane, validation predictions that differ from float, mean per network: 39.5 with the
# whole range, 27.2 fitted on 128 sequences per batch, 21.4 on 256, 20.2 on 1,024.
REACH_CANDIDATES = 24
NEURON_SAMPLE = 1024


@dataclass(frozen=True)
class Precision:
    """Bit widths of weights, activations (conv/linear inputs) and neuron membranes; None: float."""

    weight: int | None = None
    activation: int | None = None
    membrane: int | None = None

    def __post_init__(self) -> None:
        for name in ("weight", "activation", "membrane"):
            bits = getattr(self, name)
            if bits is None:
                continue
            # (a bool is an int, 1 or 0, and so out of range)
            if not isinstance(bits, int) or not _MIN_BITS <= bits <= _MAX_BITS:
                raise ValueError(f"Precision.{name}={bits!r}: expected an integer in "
                                 f"{_MIN_BITS}..{_MAX_BITS} or None (float)")

    def is_float(self) -> bool:
        return self.weight is None and self.activation is None and self.membrane is None


def _symmetric_levels(bits: int) -> int:
    """The largest level of a symmetric signed grid: 2^(b-1) - 1 (the grid -q..q, no -2^(b-1))."""
    return 2 ** (bits - 1) - 1


def round_to_grid(x: torch.Tensor, scale: float, quant_min: int, quant_max: int,
                  zero_point: int = 0) -> torch.Tensor:
    """``x`` on the grid ``(q - zero_point) * scale``, ``q = quant_min .. quant_max`` (saturating,
    round half to even): ``torch.fake_quantize_per_tensor_affine(x, scale, zero_point, quant_min,
    quant_max)``, value for value. A tensor that needs a gradient goes through that kernel (its
    gradient passes straight through inside the range); otherwise the kernel's float32 arithmetic
    runs in place on one new tensor (multiply by the float32 reciprocal of the float32 scale,
    round, add the zero point, clamp, subtract it, multiply by the scale), without the kernel's
    gradient mask: 1.6x faster on a 4.4M-element tensor on one CPU thread, and bit-identical on
    608 scales x 1M normal values."""
    if x.requires_grad:
        return torch.fake_quantize_per_tensor_affine(x, float(scale), int(zero_point), int(quant_min),
                                                     int(quant_max))
    s = np.float32(scale)
    y = x * float(np.float32(1.0) / s)
    y.round_()
    if zero_point:
        y.add_(zero_point)
    y.clamp_(quant_min, quant_max)
    if zero_point:
        y.sub_(zero_point)
    return y.mul_(float(s))


def quantize_weight(weight: torch.Tensor, bits: int) -> torch.Tensor:
    """``weight`` (output channels first) on a per-output-channel symmetric grid of ``bits`` bits:
    channel c is rounded to multiples of ``max|w_c| / (2^(b-1) - 1)``. An all-zero channel stays 0."""
    q = _symmetric_levels(bits)
    w = weight.detach()
    amax = w.abs().reshape(w.shape[0], -1).amax(dim=1).to(torch.float32)
    # Any scale represents an all-zero channel exactly; 1.0 keeps the division finite.
    scale = torch.where(amax > 0, amax / q, torch.ones_like(amax))
    zero = torch.zeros(w.shape[0], dtype=torch.int32, device=w.device)
    return torch.fake_quantize_per_channel_affine(w.float(), scale, zero, 0, -q, q).to(w.dtype)


class ActivationQuantizer(nn.Module):
    """Per-tensor fake quantization of an activation to ``bits`` bits.

    Two phases: while ``observing`` it passes values through unchanged and tracks their range
    (torch's ``MinMaxObserver``); :meth:`freeze` then fixes the grid over ``[lo, hi]``, ``hi`` the
    largest observed value or 0, ``lo`` the smallest or 0 (0 when ``unsigned``: values below 0
    clip to 0): ``2^b`` levels ``(q - z) * scale``, ``q = 0 .. 2^b - 1``, ``scale = (hi - lo) /
    (2^b - 1)``, zero point ``z = round(-lo / scale)``, so that 0 is exact. Values beyond the grid
    saturate. ``unsigned=None`` decides at :meth:`freeze`: unsigned when no observed value was
    negative. (An affine grid, not a symmetric one: a skewed range such as a standardised image's
    spends all its levels where the values are.)
    """

    def __init__(self, bits: int, unsigned: bool | None) -> None:
        super().__init__()
        self.bits = int(bits)
        self.unsigned = unsigned
        self.observer = MinMaxObserver()
        self.observing = True
        self.register_buffer("scale", torch.tensor(1.0))
        self.quant_min = 0
        self.quant_max = 0
        self.zero_point = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observing:
            self.observer(x.detach())
            return x
        # The scale is computed by hand, not by the observer's calculate_qparams: torch's
        # observers tie the integer range to a quantized dtype (at most 32-bit signed), which
        # has no room for a 32-bit unsigned grid.
        return round_to_grid(x, float(self.scale), self.quant_min, self.quant_max, self.zero_point)

    def set_range(self, low: float, high: float) -> None:
        """Fix the grid for values observed in ``[low, high]`` and stop observing."""
        if self.unsigned is None:
            self.unsigned = low >= 0
        lo = 0.0 if self.unsigned else min(low, 0.0)
        hi = max(high, 0.0)
        self.quant_min, self.quant_max = 0, 2 ** self.bits - 1
        self.scale.fill_((hi - lo) / self.quant_max if hi > lo else 1.0)
        self.zero_point = min(max(round(-lo / float(self.scale)), 0), self.quant_max)
        self.observing = False

    def freeze(self) -> None:
        """Fix the grid from the observed range (see the class docstring)."""
        if float(self.observer.min_val) > float(self.observer.max_val):
            raise ValueError("activation quantizer froze before it observed any value; "
                             "give calibration batches")
        self.set_range(float(self.observer.min_val), float(self.observer.max_val))

    def extra_repr(self) -> str:
        sign = "unsigned" if self.unsigned else "signed" if self.unsigned is not None else "sign from data"
        return (f"bits={self.bits}, {sign}, scale={float(self.scale):.6g}, zero_point={self.zero_point}, "
                f"observing={self.observing}")


class QuantizedInput(nn.Module):
    """``layer`` reading its input through ``quantizer``."""

    def __init__(self, quantizer: ActivationQuantizer, layer: nn.Module) -> None:
        super().__init__()
        self.quantizer = quantizer
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(self.quantizer(x))


class FixedPointNeuron(sj_neuron.SimpleBaseNode):
    """A LIF neuron (spikingjelly's charge equation; a fixed ``decay`` = 1/tau, or PLIF's trained
    sigmoid(w)) whose membrane is a ``bits``-bit signed fixed-point number.

    Each step: charge ``h = v + (x - (v - v_reset)) * d`` (``decay_input``; else
    ``h = v - (v - v_reset) * d + x``), then ``h`` is rounded to the grid ``k * scale``,
    ``k = -2^(b-1) .. 2^(b-1) - 1`` (saturating); fire where ``h >= threshold``; reset (to
    ``v_reset``, or subtract the threshold when ``v_reset`` is None) and round again. The threshold
    and ``v_reset`` lie on the same grid; the leak ``d`` is an unsigned fraction ``k / 2^b``,
    ``k = 0 .. 2^b - 1``: a dimensionless multiplier whose precision should not depend on the
    membrane's range.

    With ``scale=None`` the neuron is calibrating: it runs the float dynamics (unrounded ``d``) and
    tracks the range of the charged membrane; :meth:`freeze` then sets the scale from that range
    and the threshold (see there). Multi-step mode ('m') takes ``[T, B, ...]`` like the node it
    replaces.
    """

    def __init__(self, bits: int, decay: float, *, v_threshold: float, v_reset: float | None,
                 decay_input: bool = True, scale: float | None = None, surrogate_function=None,
                 detach_reset: bool = False, step_mode: str = "m") -> None:
        from spikingjelly.activation_based import surrogate

        super().__init__(v_threshold=float(v_threshold), v_reset=v_reset,
                         surrogate_function=surrogate_function or surrogate.Sigmoid(),
                         detach_reset=detach_reset, step_mode=step_mode)
        self.bits = int(bits)
        self.decay = float(decay)
        self.decay_input = bool(decay_input)
        self.observer = MinMaxObserver()
        self.v_min = -(2 ** (self.bits - 1))
        self.v_max = 2 ** (self.bits - 1) - 1
        # The leak's grid depends on the width only, not on the membrane's scale.
        self.decay_q = float(torch.fake_quantize_per_tensor_affine(
            torch.tensor(self.decay), 2.0 ** -self.bits, 0, 0, 2 ** self.bits - 1))
        self.scale: float | None = None
        if scale is not None:
            self.set_scale(scale)

    @classmethod
    def from_node(cls, node: nn.Module, bits: int) -> "FixedPointNeuron":
        """A calibrating fixed-point twin of a spikingjelly ``LIFNode`` or ``ParametricLIFNode``."""
        if isinstance(node, sj_neuron.ParametricLIFNode):
            decay = float(node.w.detach().sigmoid())
        elif isinstance(node, sj_neuron.LIFNode):
            decay = 1.0 / float(node.tau)
        else:
            raise TypeError(f"a fixed-point membrane is implemented for LIFNode and ParametricLIFNode, "
                            f"not {type(node).__name__}")
        return cls(bits, decay, v_threshold=node.v_threshold, v_reset=node.v_reset,
                   decay_input=node.decay_input, surrogate_function=node.surrogate_function,
                   detach_reset=node.detach_reset, step_mode=node.step_mode)

    def set_scale(self, scale: float) -> None:
        """Fix the membrane grid's step and round the threshold and ``v_reset`` onto it."""
        if not scale > 0:
            raise ValueError(f"membrane scale={scale!r} must be positive")
        self.scale = float(scale)
        self.threshold_q = self._on_grid(self.v_threshold)
        self.v_reset_q = None if self.v_reset is None else self._on_grid(self.v_reset)

    def freeze(self) -> None:
        """Set the scale so that ``2^(b-1) - 1`` steps span ``R``: the threshold and the most negative
        charged membrane seen in calibration, and with a soft reset (``v_reset`` None) also the most
        positive. With a hard reset a membrane above the threshold fires and is reset whatever its
        value, so the grid need only reach the threshold on that side and spends its levels where
        they change spikes."""
        low, high = float(self.observer.min_val), float(self.observer.max_val)
        if low > high:
            raise ValueError("neuron froze before it observed any membrane; give calibration batches")
        self.set_range(low, high)

    def set_range(self, low: float, high: float) -> None:
        """Fix the grid for charged membranes observed in ``[low, high]`` (see :meth:`freeze`)."""
        self.set_scale(self._reach(low, high) / self.v_max)

    def _reach(self, low: float, high: float) -> float:
        reach = max(self.v_threshold, -low, 0.0)
        if self.v_reset is None:
            reach = max(reach, high)
        return reach

    @torch.no_grad()
    def fit_range(self, low: float, high: float, inputs: torch.Tensor,
                  candidates: int = REACH_CANDIDATES) -> int:
        """Fix the grid from the calibrated membrane range ``[low, high]`` and the neuron's inputs
        ``inputs`` (``[T, N]``: N input sequences of T steps, each started from rest): of
        ``candidates`` reaches spaced geometrically from the threshold (or ``|v_reset|``, if
        larger) to :meth:`set_range`'s, the one under which the neuron's spikes on ``inputs``
        differ from the float neuron's (this neuron with ``scale=None``) in the fewest places; of
        equals, the widest. Returns that number of differences."""
        if inputs.dim() != 2:
            raise ValueError(f"fit_range takes inputs [T, N], got shape {tuple(inputs.shape)}")
        full = self._reach(low, high)
        least = max(self.v_threshold, abs(self.v_reset or 0.0))
        reaches = np.geomspace(least, full, candidates)[::-1] if full > least else np.array([full])
        self.scale = None
        target = self._spikes(inputs)
        # All candidates in one pass, one grid per row of a [T, K, N] copy of the inputs: the
        # same charge, round, fire and reset code as one grid, in K times fewer steps.
        self._set_grids(torch.tensor(reaches / self.v_max, dtype=torch.float32).reshape(-1, 1))
        try:
            spikes = self._spikes(inputs.unsqueeze(1).expand(-1, len(reaches), -1))
        finally:
            self.scale = None
        wrong = (spikes != target.unsqueeze(1)).sum(dim=(0, 2))
        best = int(torch.argmin(wrong))  # the first of equals: the widest
        self.set_scale(float(reaches[best]) / self.v_max)
        return int(wrong[best])

    def _set_grids(self, scales: torch.Tensor) -> None:
        """One grid per row of ``scales`` (``[K, 1]``, float32) for a state of shape ``[K, ...]``:
        :meth:`set_scale` of each row at once (:meth:`fit_range`)."""
        self.scale = scales
        zeros = torch.zeros(len(scales), dtype=torch.int32)

        def on_grids(value: float) -> torch.Tensor:
            values = torch.full((len(scales),), float(value))
            return torch.fake_quantize_per_channel_affine(values, scales.flatten(), zeros, 0, self.v_min,
                                                          self.v_max).reshape(-1, 1)
        self.threshold_q = on_grids(self.v_threshold)
        self.v_reset_q = None if self.v_reset is None else on_grids(self.v_reset)

    def _spikes(self, inputs: torch.Tensor) -> torch.Tensor:
        """The spikes of ``inputs`` ``[T, N]`` from rest, in multi-step mode; the state is left at rest."""
        mode, self.step_mode = self.step_mode, "m"
        try:
            self.reset()
            return self(inputs)
        finally:
            self.reset()
            self.step_mode = mode

    def _on_grid(self, value: float) -> float:
        return float(torch.fake_quantize_per_tensor_affine(torch.tensor(float(value)), self.scale, 0,
                                                           self.v_min, self.v_max))

    def _round(self, v: torch.Tensor) -> torch.Tensor:
        if isinstance(self.scale, torch.Tensor):  # one grid per row (_set_grids); round_to_grid's arithmetic
            return (v * (1.0 / self.scale)).round_().clamp_(self.v_min, self.v_max).mul_(self.scale)
        return round_to_grid(v, self.scale, self.v_min, self.v_max)

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """spikingjelly's step-by-step loop (charge, fire, reset); on a fixed grid and without a
        gradient to keep, the same arithmetic in one loop (:meth:`_steps`)."""
        v = self.v
        keeps_grad = torch.is_grad_enabled() and (
            x_seq.requires_grad or (isinstance(v, torch.Tensor) and v.requires_grad))
        if self.scale is None or keeps_grad:
            return super().multi_step_forward(x_seq)
        return self._steps(x_seq)

    def _steps(self, x_seq: torch.Tensor) -> torch.Tensor:
        """The spikes of ``x_seq`` (``[T, ...]``) on the fixed grid, value for value those of
        :meth:`neuronal_charge`, :meth:`neuronal_fire` and :meth:`neuronal_reset` step by step:
        the same operations on the same operands (a sum's operands swapped, which IEEE addition
        does not distinguish), with spikes compared directly rather than through the surrogate's
        autograd function, and written into one output rather than stacked. Nothing here keeps a
        gradient."""
        d = self.decay_q
        theta = self.threshold_q
        v_reset = 0.0 if self.v_reset is None else self.v_reset_q
        exact_select = self.bits <= _EXACT_RESET_BITS
        v = self.v
        out = torch.empty_like(x_seq)
        for t in range(x_seq.shape[0]):
            x = x_seq[t]
            if self.decay_input:
                h = (x - (v - v_reset)).mul_(d).add_(v)   # v + (x - (v - v_reset)) * d
            else:
                h = (v - (v - v_reset) * d) + x
            v = self._round(h)
            fired = (v - theta) >= 0
            spike = out[t]
            spike.copy_(fired)
            if self.v_reset is None:
                v = self._round(v - theta * spike)
            elif exact_select:
                v = torch.where(fired, v_reset, v)
            else:
                v = self._round(spike * v_reset + (1.0 - spike) * v)
        self.v = v
        return out

    def neuronal_charge(self, x: torch.Tensor) -> None:
        v = self.v
        if self.scale is None:  # calibrating: spikingjelly's float dynamics
            d, v_reset = self.decay, (0.0 if self.v_reset is None else self.v_reset)
        else:
            d, v_reset = self.decay_q, (0.0 if self.v_reset is None else self.v_reset_q)
        if self.decay_input:
            h = v + (x - (v - v_reset)) * d
        else:
            h = v - (v - v_reset) * d + x
        if self.scale is None:
            self.observer(h.detach())
            self.v = h
        else:
            self.v = self._round(h)

    def neuronal_fire(self) -> torch.Tensor:
        theta = self.v_threshold if self.scale is None else self.threshold_q
        return self.surrogate_function(self.v - theta)

    def neuronal_reset(self, spike: torch.Tensor) -> None:
        if self.scale is None:
            super().neuronal_reset(spike)
            return
        s = spike.detach() if self.detach_reset else spike
        if self.v_reset is None:
            self.v = self._round(self.v - self.threshold_q * s)
        elif self.bits <= _EXACT_RESET_BITS and not (s.requires_grad or self.v.requires_grad):
            # Both choices lie on the grid, and rounding a grid value is exact at these widths,
            # so the selected value is what rounding the blend gives, value for value.
            self.v = torch.where(s.bool(), self.v_reset_q, self.v)
        else:
            self.v = self._round(s * self.v_reset_q + (1.0 - s) * self.v)

    def extra_repr(self) -> str:
        return (f"bits={self.bits}, decay={self.decay:.6g}, scale={self.scale}, "
                f"v_threshold={self.v_threshold}, v_reset={self.v_reset}, decay_input={self.decay_input}, "
                f"step_mode={self.step_mode}")


def _nonnegative(plan: Plan) -> dict[str, bool | None]:
    """Node -> whether the plan guarantees its output is >= 0 (None for the network input: the
    data decides)."""
    out: dict[str, bool | None] = {}
    for n in plan.nodes:
        if n.op == "input":
            out[n.name] = None
        elif n.op in ("relu", "neuron", "zero"):
            out[n.name] = True
        elif n.op == "encode":
            out[n.name] = True if n.attrs["encoding"] in ("rate", "events") else out[n.inputs[0]]
        elif n.op in ("maxpool", "avgpool", "concat", "add", "gap"):
            ins = [out[i] for i in n.inputs]
            if False in ins:
                out[n.name] = False
            else:
                out[n.name] = None if None in ins else True
        else:  # conv, bn, linear, mix: signed
            out[n.name] = False
    return out


@dataclass(frozen=True)
class QuantRanges:
    """What a calibration of the float network observed (:func:`observe_ranges`): the
    (min, max) of every conv or linear input that is not spikes (``activations``, by node
    name) and of every neuron's charged membrane (``membranes``, by node name), over
    ``batches`` batches; and ``neuron_inputs``, by neuron node name, a ``[T, N]`` sample of its
    input sequences (up to :data:`NEURON_SAMPLE` per batch), which fits its grid
    (:meth:`FixedPointNeuron.fit_range`). A neuron without a sample gets the grid of the whole
    range (:meth:`FixedPointNeuron.set_range`). ``fitted`` keeps each fitted membrane scale by
    (node name, membrane width), so that the precisions of one network that share a membrane
    width fit it once; it starts empty, also in a ``dataclasses.replace`` copy."""

    activations: Mapping[str, tuple[float, float]]
    membranes: Mapping[str, tuple[float, float]]
    batches: int
    neuron_inputs: Mapping[str, torch.Tensor] = field(default_factory=dict)
    fitted: dict[tuple[str, int], float] = field(default_factory=dict, init=False, compare=False, repr=False)


def _quantized_nodes(plan: Plan) -> tuple[dict[str, str], list[str]]:
    """(conv/linear nodes whose input is not spikes -> that input's node, neuron nodes) of ``plan``."""
    binary = plan.binary()
    inputs = {n.name: n.inputs[0] for n in plan.nodes
              if n.op in ("conv", "linear") and not binary[n.inputs[0]]}
    return inputs, [n.name for n in plan.nodes if n.op == "neuron"]


def _graph_net(model: nn.Module) -> nn.Module:
    from nasco.nn._torch import GraphNet

    if not isinstance(model, GraphNet):
        raise TypeError(f"quantize needs a nasco.nn.GraphNet (it reads the plan), got {type(model).__name__}")
    return model


@torch.no_grad()
def observe_ranges(model: nn.Module, calibration: Iterable[torch.Tensor]) -> QuantRanges:
    """Run the float ``model`` (a :class:`~nasco.nn.GraphNet`, unchanged; its copy in eval mode)
    over every batch of ``calibration`` (input tensors as the model takes them, from the training
    split) and record the ranges :func:`quantize` fixes its grids from: each non-spike conv/linear
    input, and each LIF/PLIF neuron's charged membrane under its own float dynamics, with up to
    :data:`NEURON_SAMPLE` of the neuron's input sequences per batch (evenly spaced over its
    ``[B, ...]`` elements). ValueError when ``calibration`` is empty."""
    from nasco.nn._torch import _key

    net = copy.deepcopy(_graph_net(model))
    sj_functional.reset_net(net)
    net.eval()
    inputs, neurons = _quantized_nodes(net.plan)
    observers: dict[str, dict[str, nn.Module]] = {"activations": {}, "membranes": {}}
    for name in inputs:
        quantizer = ActivationQuantizer(_MAX_BITS, None)  # observing only: its width never applies
        net.layers[_key(name)] = QuantizedInput(quantizer, net.layers[_key(name)])
        observers["activations"][name] = quantizer.observer
    samples: dict[str, list[torch.Tensor]] = {name: [] for name in neurons}
    hooks = []
    for name in neurons:
        node = FixedPointNeuron.from_node(net.layers[_key(name)], _MAX_BITS)  # calibrating: float dynamics
        net.layers[_key(name)] = node
        observers["membranes"][name] = node.observer
        hooks.append(node.register_forward_pre_hook(_sampler(samples[name])))
    sj_functional.invalidate_reset_cache(net)
    batches = 0
    for xb in calibration:
        net(xb)
        sj_functional.reset_net(net)
        batches += 1
    for h in hooks:
        h.remove()
    if batches == 0:
        raise ValueError("quantize: activation or membrane quantization needs at least one calibration batch")
    return QuantRanges(**{kind: {name: (float(o.min_val), float(o.max_val)) for name, o in obs.items()}
                          for kind, obs in observers.items()}, batches=batches,
                       neuron_inputs={name: torch.cat(s, dim=1) for name, s in samples.items() if s})


def _sampler(into: list[torch.Tensor]):
    """A forward pre-hook that appends a ``[T, n]`` sample of a multi-step neuron's input ``[T, B, ...]``."""
    def hook(_module, args):
        x = args[0].detach().flatten(1)
        index = torch.linspace(0, x.shape[1] - 1, min(NEURON_SAMPLE, x.shape[1])).round().long()
        into.append(x[:, index].clone())
    return hook


@torch.no_grad()
def quantize(model: nn.Module, precision: Precision,
             calibration: QuantRanges | Iterable[torch.Tensor]) -> nn.Module:
    """A quantized deep copy of ``model`` (a :class:`~nasco.nn.GraphNet`); ``model`` is unchanged.

    Weights are rounded per output channel (:func:`quantize_weight`); conv and linear inputs that
    are not spikes read through an :class:`ActivationQuantizer`; LIF/PLIF neurons become
    :class:`FixedPointNeuron`. Activation and membrane grids are fixed from ``calibration``: the
    ranges :func:`observe_ranges` recorded on the float model, or calibration batches, from which
    it records them first (only when ``precision`` quantizes activations or membranes). A
    neuron's membrane grid is fitted to the ranges' sample of its inputs
    (:meth:`FixedPointNeuron.fit_range`) once per width, which the ranges keep. Every
    precision quantized from the same ranges equals the one quantized from their batches. The
    copy is in eval mode.
    """
    from nasco.nn._torch import _key

    _graph_net(model)
    if not isinstance(precision, Precision):
        raise TypeError(f"precision must be a nasco.nn.Precision, got {type(precision).__name__}")
    ranges = calibration if isinstance(calibration, QuantRanges) else None
    if ranges is None and (precision.activation is not None or precision.membrane is not None):
        ranges = observe_ranges(model, calibration)
    sj_functional.reset_net(model)
    net = copy.deepcopy(model)
    net.eval()
    inputs, neurons = _quantized_nodes(net.plan)
    nonneg = _nonnegative(net.plan)
    for n in net.plan.nodes:
        if n.op in ("conv", "linear") and precision.weight is not None:
            layer = net.layers[_key(n.name)]
            layer.weight.copy_(quantize_weight(layer.weight, precision.weight))
    if precision.activation is not None:
        for name, source in inputs.items():
            quantizer = ActivationQuantizer(precision.activation, nonneg[source])
            quantizer.set_range(*_observed(ranges.activations, name))
            net.layers[_key(name)] = QuantizedInput(quantizer, net.layers[_key(name)])
    if precision.membrane is not None:
        for name in neurons:
            node = FixedPointNeuron.from_node(net.layers[_key(name)], precision.membrane)
            fitted = ranges.fitted.get((name, precision.membrane))
            if fitted is not None:
                node.set_scale(fitted)
            elif name in ranges.neuron_inputs:
                node.fit_range(*_observed(ranges.membranes, name), ranges.neuron_inputs[name])
                ranges.fitted[name, precision.membrane] = node.scale
            else:
                node.set_range(*_observed(ranges.membranes, name))
            net.layers[_key(name)] = node
    sj_functional.invalidate_reset_cache(net)
    return net


def _observed(ranges: Mapping[str, tuple[float, float]], name: str) -> tuple[float, float]:
    """The recorded range of node ``name``; ValueError when the ranges lack it or saw nothing
    (they come from another network, or from a calibration that never reached the node)."""
    if name not in ranges:
        raise ValueError(f"the calibration ranges have no entry for node '{name}': they were observed on "
                         f"another network")
    low, high = ranges[name]
    if low > high:
        raise ValueError(f"the calibration never reached node '{name}'")
    return low, high
