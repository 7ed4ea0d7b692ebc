"""Post-training quantization: hand-computed weight, activation and fixed-point membrane cases,
the structure of a quantized network, and the accuracy of small trained networks on digits."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from spikingjelly.activation_based import neuron as sj_neuron
from spikingjelly.activation_based import surrogate

from nasco.dsl import load_spec
from nasco.evaluate import TrainConfig, load_dataset, quantized_accuracy, train_and_evaluate
from nasco.evaluate._quant import calibration_set
from nasco.evaluate._train import reset_states
from nasco.nn import (
    ActivationQuantizer,
    FixedPointNeuron,
    GraphNet,
    Precision,
    QuantizedInput,
    QuantRanges,
    observe_ranges,
    plan_network,
    quantize,
    quantize_weight,
    round_to_grid,
)
from nasco.nn._quant import NEURON_SAMPLE
from nasco.space import SearchSpace

torch.set_num_threads(1)


# ---------------------------------------------------------------- Precision
def test_precision_validates_widths():
    assert Precision(8, None, 4) == Precision(weight=8, activation=None, membrane=4)
    assert Precision().is_float() and not Precision(membrane=2).is_float()
    for bad in (1, 33, 0, True, 8.0, "8"):
        with pytest.raises(ValueError, match=r"Precision.activation=.*expected an integer in 2..32 or None"):
            Precision(8, bad, None)


# ---------------------------------------------------------------- weights
def test_weight_8bit_per_channel_by_hand():
    # q = 2^7 - 1 = 127. Channel 0: max|w| = 127/64, scale 1/64; -0.34 * 64 = -21.76 -> -22 -> -0.34375;
    # 0.0049 * 64 = 0.31 -> 0. Channel 1: max|w| = 127/256, scale 1/256; 0.1 * 256 = 25.6 -> 26 -> 0.1015625;
    # 0.0019 * 256 = 0.49 -> 0. (One scale for the whole tensor, 1/64, would give 0.1 -> 6/64 = 0.09375.)
    w = torch.tensor([[127 / 64, -0.34, 0.0049], [-127 / 256, 0.1, 0.0019]])
    expected = torch.tensor([[127 / 64, -22 / 64, 0.0], [-127 / 256, 26 / 256, 0.0]])
    assert torch.equal(quantize_weight(w, 8), expected)


def test_weight_2bit_per_channel_of_a_conv_by_hand():
    # 2 bits: levels -1, 0, 1 times max|w_c|. Channel 0 (scale 0.75): -0.25 / 0.75 = -0.33 -> 0,
    # -0.5 / 0.75 = -0.67 -> -1. Channel 1 (scale 2): 0.9 / 2 = 0.45 -> 0, 1.1 / 2 = 0.55 -> 1.
    # An all-zero channel stays zero.
    w = torch.tensor([[0.75, -0.25, -0.5], [-2.0, 0.9, 1.1], [0.0, 0.0, 0.0]]).reshape(3, 1, 1, 3)
    expected = torch.tensor([[0.75, 0.0, -0.75], [-2.0, 0.0, 2.0], [0.0, 0.0, 0.0]]).reshape(3, 1, 1, 3)
    assert torch.equal(quantize_weight(w, 2), expected)


# ---------------------------------------------------------------- activations
def _calibrated(bits: int, unsigned: bool | None, *observed: list[float]) -> ActivationQuantizer:
    q = ActivationQuantizer(bits, unsigned)
    for values in observed:
        assert torch.equal(q(torch.tensor(values)), torch.tensor(values))  # observing passes values through
    q.freeze()
    return q


def test_activation_unsigned_4bit_by_hand():
    # Observed range [0, 7.5]: 15 levels, scale 0.5. 0.3 -> 0.6 -> 1; 1.26 -> 2.52 -> 3; 4.6 -> 9.2 -> 9;
    # 7.9 saturates at 15; -1 clips to 0.
    q = _calibrated(4, True, [0.0, 2.0], [7.5, 1.0])
    assert (q.quant_min, q.quant_max, float(q.scale)) == (0, 15, 0.5)
    assert torch.equal(q(torch.tensor([0.3, 1.26, 4.6, 7.9, -1.0])), torch.tensor([0.5, 1.5, 4.5, 7.5, 0.0]))


def test_activation_signed_4bit_by_hand():
    # Observed range [-3, 4.5]: 16 levels over 7.5, scale 0.5, zero point 3 / 0.5 = 6, so the grid is
    # (q - 6) * 0.5 for q = 0..15: -3 .. 4.5. -4 -> -8 + 6 -> 0 (saturates) = -3; -1.3 -> -2.6 -> -3 + 6
    # = 3 -> -1.5; 0.25 -> 0.5 -> 0 (half to even) = 0; 0.75 -> 1.5 -> 2 = 1.0; 3.6 -> 7.2 -> 7 = 3.5;
    # 4.9 -> 9.8 -> 10 + 6 = 16 -> 15 (saturates) = 4.5.
    q = _calibrated(4, False, [-3.0, 2.0], [4.5])
    assert (q.quant_min, q.quant_max, float(q.scale), q.zero_point) == (0, 15, 0.5, 6)
    assert torch.equal(q(torch.tensor([-4.0, -1.3, 0.25, 0.75, 3.6, 4.9])),
                       torch.tensor([-3.0, -1.5, 0.0, 1.0, 3.5, 4.5]))
    # A range that does not reach 0 is widened to it, so 0 stays exact: [0.5, 2.0] at 2 bits is the
    # grid 0, 2/3, 4/3, 2 with zero point 0 (unsigned by sign); [-2, -0.5] is -2, -4/3, -2/3, 0.
    up = _calibrated(2, None, [0.5, 2.0])
    assert (up.unsigned, up.zero_point, float(up.scale)) == (True, 0, pytest.approx(2 / 3))
    down = _calibrated(2, None, [-2.0, -0.5])
    assert (down.unsigned, down.zero_point, float(down.scale)) == (False, 3, pytest.approx(2 / 3))
    assert float(down(torch.tensor([0.0]))) == 0.0


def test_activation_sign_from_data():
    assert _calibrated(4, None, [0.0, 3.0]).unsigned is True
    assert _calibrated(4, None, [-0.01, 3.0]).unsigned is False
    with pytest.raises(ValueError, match="before it observed"):
        ActivationQuantizer(4, True).freeze()


# ---------------------------------------------------------------- membrane
def _hand_neuron(step_mode: str) -> FixedPointNeuron:
    return FixedPointNeuron(4, 0.09, v_threshold=1.0, v_reset=0.0, scale=0.25,
                            surrogate_function=surrogate.ATan(), step_mode=step_mode)


# 4 bits, scale 0.25: v = k/4, k in -8..7 (-2 .. 1.75); threshold 1.0 = 4/4; leak 0.09 -> round(0.09 * 16)
# = 1 -> 1/16. h = v + (x - v) / 16, rounded (half to even), then fire (h >= 1) and hard reset to 0.
# Neuron A, x = 8 at every step:
#   t1: 0 + 8/16 = 0.5 (k=2);  t2: 0.5 + 7.5/16 = 0.96875 (k=3.875 -> 4 = 1.0) fires -> 0;  t3, t4 repeat.
#   (An unrounded leak 0.09 gives t1: 0.72 -> k=2.88 -> 3 = 0.75: another trace.)
# Neuron B, x = -40, 2, 24, 24:
#   t1: -40/16 = -2.5 (k=-10) saturates at k=-8 = -2.0;  t2: -2 + 4/16 = -1.75 (k=-7);
#   t3: -1.75 + 25.75/16 = -0.140625 (k=-0.5625 -> -1 = -0.25);  t4: -0.25 + 24.25/16 = 1.265625
#   (k=5.0625 -> 5 = 1.25) fires -> 0.
HAND_X = [[8.0, -40.0], [8.0, 2.0], [8.0, 24.0], [8.0, 24.0]]
HAND_V = [[0.5, -2.0], [0.0, -1.75], [0.5, -0.25], [0.0, 0.0]]
HAND_SPIKES = [[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [1.0, 1.0]]


def test_membrane_4bit_lif_trace_by_hand():
    node = _hand_neuron("s")
    assert (node.decay_q, node.threshold_q, node.v_reset_q) == (1 / 16, 1.0, 0.0)
    vs, spikes = [], []
    for x in torch.tensor(HAND_X):
        spikes.append(node(x).tolist())
        vs.append(node.v.tolist())
    assert vs == HAND_V and spikes == HAND_SPIKES
    multi = _hand_neuron("m")  # spikingjelly's multi-step mode: [T, B] in one call
    assert multi(torch.tensor(HAND_X)).tolist() == HAND_SPIKES
    assert multi.v.tolist() == HAND_V[-1]


@pytest.mark.parametrize("bits", [3, 8, 24])
@pytest.mark.parametrize("v_reset", [0.0, -0.25, None])
@pytest.mark.parametrize("decay_input", [True, False])
def test_multi_step_loop_equals_the_steps_one_by_one(bits, v_reset, decay_input):
    """Multi-step mode on a fixed grid runs its own loop (FixedPointNeuron._steps); its spikes and
    final membrane must be those of spikingjelly's single steps (charge, fire, reset), value for
    value, for each reset, charge form and width (24 bits: the rounded-blend reset)."""
    x = torch.randn(6, 3000, generator=torch.Generator().manual_seed(bits)) * 1.5

    def node(mode):
        n = FixedPointNeuron(bits, 0.6, v_threshold=1.0, v_reset=v_reset, decay_input=decay_input,
                             step_mode=mode)
        n.set_range(-4.0, 3.0)
        return n

    one, many = node("s"), node("m")
    with torch.no_grad():
        expected = torch.stack([one(xt) for xt in x])
        out = many(x)
    assert torch.equal(out, expected)
    assert torch.equal(many.v, one.v)
    assert 0 < int(expected.sum()) < expected.numel()


@pytest.mark.parametrize("kind", ["lif", "plif"])
def test_32bit_membrane_follows_spikingjelly(kind):
    """At 32 bits the fixed-point neuron fires as spikingjelly's own float node (an independent
    implementation of the charge, fire and reset equations) on random input."""
    common = dict(v_threshold=1.0, v_reset=0.0, surrogate_function=surrogate.ATan(), detach_reset=True,
                  step_mode="m")
    ref = sj_neuron.ParametricLIFNode(init_tau=1.7, **common) if kind == "plif" else \
        sj_neuron.LIFNode(tau=4 / 3, **common)
    node = FixedPointNeuron.from_node(ref, 32)
    x = torch.randn(6, 500, generator=torch.Generator().manual_seed(0)) * 2
    with torch.no_grad():
        node(x)  # calibration pass, float dynamics
        node.reset()
        node.freeze()
        out, expected = node(x), ref(x)
    # Measured: the membranes agree to 6.0e-7 (float32 rounding of the two charge formulas) and no
    # spike differs; 1e-5 leaves room, far below the grid steps the low widths are tested on.
    assert torch.equal(out, expected)
    assert torch.allclose(node.v, ref.v, atol=1e-5, rtol=0)


# 4 bits (k = -8..7), leak 1/2 (exact), threshold 1, hard reset to 0. The calibrated range [-14, 1.1]
# asks for reach 14: scale 2, and the threshold 1 rounds (half to even) to k=0, i.e. 0.
# Sequence A, x = 2.2, 0: float h = 1.1 fires and resets, then 0 does not fire: spikes 1, 0.
#   On the full grid: 1.1 -> k=1 (2.0) fires; then h = 0 >= threshold 0 fires again: spikes 1, 1.
# Sequence B, x = -28, 0: float h = -14, -7; never fires, on any grid whose threshold is above 0.
# The next reach, 14 * (1/14)^(1/23) = 12.48 (24 reaches from 14 down to the threshold 1): scale
# 12.48/7 = 1.783, threshold 1/1.783 = 0.56 -> k=1; A: 1.1 -> k=1 fires, 0 does not; B: -14 -> k=-8.
FIT_X = [[2.2, -28.0], [0.0, 0.0]]


def test_fit_range_narrows_the_grid_to_the_float_spikes_by_hand():
    full = FixedPointNeuron(4, 0.5, v_threshold=1.0, v_reset=0.0)
    full.set_range(-14.0, 1.1)
    assert (full.scale, full.threshold_q) == (2.0, 0.0)
    with torch.no_grad():
        assert full(torch.tensor(FIT_X)).tolist() == [[1.0, 0.0], [1.0, 0.0]]
    node = FixedPointNeuron(4, 0.5, v_threshold=1.0, v_reset=0.0)
    assert node.fit_range(-14.0, 1.1, torch.tensor(FIT_X)) == 0
    assert node.scale == pytest.approx(14 * (1 / 14) ** (1 / 23) / 7, rel=1e-12)
    with torch.no_grad():
        assert node(torch.tensor(FIT_X)).tolist() == [[1.0, 0.0], [0.0, 0.0]]


def test_fit_range_keeps_the_whole_range_when_no_reach_does_better():
    # No input brings the float neuron or any grid near the threshold: every reach ties at 0 differences.
    node = FixedPointNeuron(8, 0.5, v_threshold=1.0, v_reset=0.0)
    assert node.fit_range(-1.5, 0.25, torch.tensor([[0.5, -3.0], [0.0, 0.0]])) == 0
    assert node.scale == 1.5 / 127
    with pytest.raises(ValueError, match=r"inputs \[T, N\]"):
        node.fit_range(-1.5, 0.25, torch.zeros(2, 2, 2))


@pytest.mark.parametrize("bits, v_reset", [(4, 0.0), (8, None), (6, -0.25)])
def test_fit_range_judges_each_reach_by_that_reachs_own_spikes(bits, v_reset):
    """fit_range simulates all its reaches in one pass; each row must spike exactly as a neuron
    fixed at that reach alone does, so the count it minimises is the real one."""
    x = torch.randn(5, 400, generator=torch.Generator().manual_seed(bits)) * 2
    node = FixedPointNeuron(bits, 0.75, v_threshold=1.0, v_reset=v_reset)
    node.scale = None
    target = node._spikes(x)
    reaches = np.geomspace(1.0, 9.0, 24)[::-1]
    counts = []
    for reach in reaches:
        one = FixedPointNeuron(bits, 0.75, v_threshold=1.0, v_reset=v_reset)
        one.set_scale(float(reach) / one.v_max)
        counts.append(int((one._spikes(x) != target).sum()))
    fitted = FixedPointNeuron(bits, 0.75, v_threshold=1.0, v_reset=v_reset)
    low = -9.0 if v_reset is not None else -1.0
    assert fitted.fit_range(low, 9.0, x) == min(counts)
    assert fitted.scale == float(reaches[counts.index(min(counts))]) / fitted.v_max
    assert len(set(counts)) > 1  # the reaches do differ on these inputs


# ---------------------------------------------------------------- networks
@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def _trained(name: str, digits, sample_seed: int, epochs: int, overrides=None):
    space = SearchSpace(load_spec(name, overrides=overrides))
    cand = space.sample(np.random.default_rng(sample_seed))
    arch, _ = space.resolve(cand)
    plan = plan_network(arch, cand.arch["cell"], digits.input_shape, digits.num_classes)
    torch.manual_seed(0)
    model = GraphNet(plan, arch)
    t = arch.training
    config = TrainConfig(epochs=epochs, batch_size=t.batch_size, lr=t.lr, seed=0)
    result = train_and_evaluate(model, digits, config)
    return model, result.valid_accuracy


# darts sample 0: C12, 3 cells; darts_snn sample 2: C8, 3 cells, LIF tau 2, T 4, no BN after its
# pooling ops (the network the sweeps below were measured on).
ANN_SAMPLE, SNN_SAMPLE, EPOCHS = 0, 2, 4


@pytest.fixture(scope="module")
def ann(digits):
    return _trained("darts", digits, ANN_SAMPLE, EPOCHS)


@pytest.fixture(scope="module")
def snn(digits):
    return _trained("darts_snn", digits, SNN_SAMPLE, EPOCHS, {("cell", "pool_bn"): False})


def test_quantize_leaves_the_model_unchanged(snn, digits):
    model, _ = snn
    before = {k: v.clone() for k, v in model.state_dict().items()}
    types = [type(m) for m in model.modules()]
    quantize(model, Precision(4, 4, 4), calibration_set(digits, batches=2, batch_size=32, seed=0))
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert [type(m) for m in model.modules()] == types


def _levels_per_channel(w: torch.Tensor) -> int:
    """The most distinct magnitudes any output channel of ``w`` uses."""
    return max(len(torch.unique(c.abs())) for c in w.reshape(w.shape[0], -1))


def test_quantized_structure(snn, ann, digits):
    calib = calibration_set(digits, batches=2, batch_size=32, seed=0)
    for model, _ in (snn, ann):
        plan = model.plan
        binary = plan.binary()
        q = quantize(model, Precision(3, 6, 5), calib)
        layers = {n.name: n for n in plan.nodes}
        for n in plan.nodes:
            if n.op not in ("conv", "linear", "neuron"):
                continue
            mod = q.module_of(n.name)
            if n.op in ("conv", "linear"):
                spikes_in = binary[n.inputs[0]]
                # Spikes are exact at any width: a layer reading spikes has no activation quantizer.
                assert isinstance(mod, QuantizedInput) != spikes_in, n.name
                weight = (mod.layer if isinstance(mod, QuantizedInput) else mod).weight
                assert _levels_per_channel(weight) <= 4  # 3 bits: magnitudes 0..3 x scale
                if isinstance(mod, QuantizedInput):
                    src = layers[n.inputs[0]].op
                    assert mod.quantizer.bits == 6 and not mod.quantizer.observing
                    if src == "relu":
                        assert mod.quantizer.unsigned is True, n.name
                    elif src in ("bn", "conv"):
                        assert mod.quantizer.unsigned is False, n.name
            elif n.op == "neuron":
                assert isinstance(mod, FixedPointNeuron) and mod.bits == 5 and mod.scale is not None
                assert mod.step_mode == "m"
    membrane_only = quantize(snn[0], Precision(None, None, 4), calib)
    assert any(isinstance(m, FixedPointNeuron) for m in membrane_only.modules())
    assert not any(isinstance(m, QuantizedInput) for m in membrane_only.modules())
    with pytest.raises(ValueError, match="at least one calibration batch"):
        quantize(snn[0], Precision(None, 8, None), [])
    assert not any(isinstance(m, (QuantizedInput, FixedPointNeuron))
                   for m in quantize(snn[0], Precision(8, None, None), []).modules())


# ---------------------------------------------------------------- accuracy of trained networks
IMAGE = 1 / 362  # one of digits' validation images (split seed 0), in accuracy units
NOISE = 2 * IMAGE  # fewer bits may score higher by this much: measured inversions of at most 1 image, plus 1


def _sweep(model, digits, bits, precision_of) -> dict[int, float]:
    return {b: quantized_accuracy(model, digits, precision_of(b)) for b in bits}


@pytest.mark.parametrize("which", ["ann", "snn"])
def test_weight_and_activation_sweep(which, request, digits):
    model, float_acc = request.getfixturevalue(which)
    acc = _sweep(model, digits, (16, 8, 4, 3), lambda b: Precision(b, b, None))
    # Measured (ANN: darts sample 0; SNN: darts_snn sample 2; 4 epochs), in images from float:
    # 16 bits 0 / 0, 8 bits 0 / +1, 4 bits +1 / -10, 3 bits -25 / -12. Within 0.2 points is within
    # less than one image: 16 bits scores exactly as float.
    assert abs(acc[16] - float_acc) <= 0.002
    assert abs(acc[8] - float_acc) <= 0.01  # measured at most 1 image (0.28 points); 1 point allowed
    assert acc[3] < float_acc
    assert acc[16] >= acc[8] - NOISE and acc[8] >= acc[4] - NOISE and acc[4] >= acc[3] - NOISE


def test_membrane_sweep(snn, digits):
    model, float_acc = snn
    acc = _sweep(model, digits, (16, 8, 3, 2), lambda b: Precision(None, None, b))
    # Measured (weights and activations float; reaches fitted to the float spikes), in images from
    # float: 16 bits 0, 8 bits -2, 3 bits -19, 2 bits -107 (and 12 bits +1, 6 bits -4, 5 and 4 bits +1).
    assert abs(acc[16] - float_acc) <= 0.002  # within 0.2 points: less than one image, measured 0
    assert abs(acc[8] - float_acc) <= 0.01  # within 1 point: measured 2 images (0.55 points)
    assert acc[3] < float_acc - 0.03  # measured -5.2 points
    assert acc[2] < acc[3] - 0.1  # measured 24.3 points below 3 bits
    assert acc[16] >= acc[8] - NOISE and acc[8] >= acc[3] - NOISE


def test_precisions_that_share_a_membrane_width_fit_it_once(snn, digits, monkeypatch):
    model, _ = snn
    ranges = observe_ranges(model, calibration_set(digits, batches=2, batch_size=32, seed=0))
    fits = []
    real = FixedPointNeuron.fit_range
    monkeypatch.setattr(FixedPointNeuron, "fit_range", lambda self, *a: fits.append(1) or real(self, *a))
    scales = {}
    for p in (Precision(None, None, 6), Precision(8, 8, 6), Precision(4, None, 6), Precision(None, None, 8)):
        q = quantize(model, p, ranges)
        scales[p] = [m.scale for m in q.modules() if isinstance(m, FixedPointNeuron)]
    neurons = len(ranges.neuron_inputs)
    assert neurons == len(scales[Precision(None, None, 6)]) >= 4
    assert len(fits) == 2 * neurons  # widths 6 and 8, each once per neuron
    assert scales[Precision(None, None, 6)] == scales[Precision(8, 8, 6)] == scales[Precision(4, None, 6)]
    assert sorted(ranges.fitted) == sorted((name, b) for name in ranges.neuron_inputs for b in (6, 8))
    # Without input samples (a copy of the ranges that drops them, which starts with no fits), each
    # grid spans the whole range: reach max(threshold 1, -low) for these hard-reset neurons, 31 steps.
    whole = dataclasses.replace(ranges, neuron_inputs={})
    assert whole.fitted == {}
    q = quantize(model, Precision(None, None, 6), whole)
    assert [m.scale for m in q.modules() if isinstance(m, FixedPointNeuron)] == \
        [max(1.0, -low) / 31 for low, _ in ranges.membranes.values()]
    assert len(fits) == 2 * neurons


def test_quantized_accuracy_is_deterministic(snn, digits):
    model, _ = snn
    p = Precision(6, 6, 6)
    first = quantized_accuracy(model, digits, p, calibration_batches=1, seed=3)
    assert quantized_accuracy(model, digits, p, calibration_batches=1, seed=3) == first
    # One batch of other images sets other ranges: measured a different accuracy with seed 4.
    assert quantized_accuracy(model, digits, p, calibration_batches=1, seed=4) != first


def test_bad_arguments(snn, digits):
    with pytest.raises(ValueError, match=r"calibration batches=0: expected a positive integer"):
        quantized_accuracy(snn[0], digits, Precision(8, 8, 8), calibration_batches=0)
    with pytest.raises(TypeError, match="needs a nasco.nn.GraphNet"):
        quantize(torch.nn.Linear(2, 2), Precision(8, 8, None), [])
    with pytest.raises(TypeError, match="must be a nasco.nn.Precision"):
        quantize(snn[0], 8, [])


# ---------------------------------------------------------------- rounding and calibration
def test_round_to_grid_is_torch_fake_quantization_value_for_value():
    """The no-gradient path against torch's own kernel, on normal values and on exact half steps
    (k + 0.5) * scale, which both round to the even k; with a gradient it is the kernel itself."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200_000, generator=gen) * 3
    for scale in (1 / 127, 0.0123, 0.5, 3.3e-3, 1 / 3):
        halves = (torch.arange(-300, 300, dtype=torch.float32) + 0.5) * scale
        for lo, hi, zero in ((-127, 127, 0), (0, 255, 0), (-7, 7, 0), (0, 255, 77), (0, 15, 6)):
            for v in (x, halves):
                assert torch.equal(round_to_grid(v, scale, lo, hi, zero),
                                   torch.fake_quantize_per_tensor_affine(v, scale, zero, lo, hi))
    v = torch.tensor([0.3, 5.0, -5.0], requires_grad=True)
    round_to_grid(v, 0.25, -8, 7).sum().backward()
    assert v.grad.tolist() == [1.0, 0.0, 0.0]  # straight through inside the range, 0 where it saturates


def _float_ranges(model, plan, batches):
    """Ranges observed by hooks on the float model: each non-spike conv/linear input's
    (min, max), and each LIF neuron's charged membrane from a hand-written recurrence over the
    neuron's input (charge h = v + (x - (v - v_reset)) / tau, fire at h >= threshold, hard reset);
    and each neuron's inputs, batch by batch."""
    from nasco.nn._torch import _key

    binary = plan.binary()
    acts, mems, inputs, hooks = {}, {}, {}, []

    def track(store, name, lo, hi):
        old = store.get(name, (float("inf"), float("-inf")))
        store[name] = (min(old[0], lo), max(old[1], hi))

    def on_input(name):
        def hook(_m, args):
            track(acts, name, float(args[0].min()), float(args[0].max()))
        return hook

    def on_neuron(name, node):
        def hook(_m, args):
            inputs.setdefault(name, []).append(args[0].clone())
            v = torch.full_like(args[0][0], node.v_reset)
            for x in args[0]:
                h = v + (x - (v - node.v_reset)) / node.tau
                track(mems, name, float(h.min()), float(h.max()))
                v = torch.where(h >= node.v_threshold, torch.full_like(h, node.v_reset), h)
        return hook

    for n in plan.nodes:
        if n.op not in ("conv", "linear", "neuron"):
            continue
        layer = model.layers[_key(n.name)]
        if n.op != "neuron":
            if not binary[n.inputs[0]]:
                hooks.append(layer.register_forward_pre_hook(on_input(n.name)))
        else:
            assert type(layer) is sj_neuron.LIFNode and layer.decay_input
            hooks.append(layer.register_forward_pre_hook(on_neuron(n.name, layer)))
    model.eval()
    with torch.no_grad():
        for xb in batches:
            model(xb)
            reset_states(model)
    for h in hooks:
        h.remove()
    return acts, mems, inputs


def test_calibration_observes_the_float_network(snn, digits):
    model, _ = snn
    batches = calibration_set(digits, batches=3, batch_size=32, seed=1)
    ranges = observe_ranges(model, batches)
    acts, mems, inputs = _float_ranges(model, model.plan, batches)
    assert ranges.batches == 3 and len(acts) >= 2 and len(mems) >= 4
    assert dict(ranges.activations) == acts  # min/max of the very tensors the layers read
    # tau = 2: the recurrence's division by tau and the neuron's product with 1/tau are the same
    # float operation, so the membranes, and their ranges, are equal.
    assert {m.tau for m in model.modules() if isinstance(m, sj_neuron.LIFNode)} == {2.0}
    assert dict(ranges.membranes) == mems
    # Each neuron's input sample: 3 batches of up to NEURON_SAMPLE sequences of T steps, evenly
    # spaced over the batch's elements, the first and last included.
    for name, sample in ranges.neuron_inputs.items():
        seen = inputs[name]
        assert sample.shape == (seen[0].shape[0], sum(min(NEURON_SAMPLE, x[0].numel()) for x in seen))
        first = seen[0].flatten(1)
        assert torch.equal(sample[:, 0], first[:, 0])
        assert torch.equal(sample[:, min(NEURON_SAMPLE, first.shape[1]) - 1], first[:, -1])
    assert sorted(ranges.neuron_inputs) == sorted(mems)
    q = quantize(model, Precision(6, 6, 6), ranges)
    assert [m.quantizer.scale for m in q.modules() if isinstance(m, QuantizedInput)] == \
        [torch.tensor((max(hi, 0.0) - min(lo, 0.0)) / 63) for lo, hi in acts.values()]
    with pytest.raises(ValueError, match="no entry for node"):
        quantize(model, Precision(6, 6, 6), QuantRanges({}, {}, 1))
