"""The proxy evaluator at an accelerator's bit widths: its proxies and spike rates are those of the
initial network quantized by nasco.nn.quantize (recomputed here by hand from quantize's output),
they differ from the float network's, a 32-bit template gives the float ones exactly, the
metrics name the precision, and a ReLU's code is the one its consumer reads after its input
quantizer (a hand-set network). A few seconds each."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional as sj_functional
from spikingjelly.activation_based import neuron as sj_neuron
from torch import nn

from nasco.dsl import load_energy_table, load_spec
from nasco.evaluate import load_dataset
from nasco.evaluate._proxies import ProxyEvaluator, naswot_score, sahd_score
from nasco.hw import CostModel
from nasco.nn import FixedPointNeuron, GraphNet, Precision, plan_network, plan_workload, quantize
from nasco.space import SearchSpace

torch.set_num_threads(1)

SMALL = 16  # proxy batch
SEED = 3  # the evaluation's seed: the weights' initialisation
TINY = {("macro", "cells"): 1, ("macro", "stem", "channels"): 8, ("macro", "reductions"): []}
# nvdla_like at 4-bit weights, 6-bit activations and (for the spiking network) 8-bit membranes.
LOW_BITS = {("bits", "weight"): 4, ("bits", "activation"): 6, ("bits", "membrane"): 8}
FLOAT32 = {("bits", "weight"): 32, ("bits", "activation"): 32, ("bits", "membrane"): 32}
GRADIENT = ("snip", "grad_norm", "jacob_cov", "synflow")
DATA = ("naswot", "sahd")
RECORD = ("sahd", "synflow", "grad_norm", "jacob_cov", "params", "flops", "sops")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0, limit=120)


def _arch_spec(name: str):
    return load_spec(name, overrides={**TINY, ("timesteps",): 2} if name == "darts_snn" else TINY)


def _evaluate(arch_name: str, bits: dict | None, cand_arch: dict, digits):
    """(result, space, candidate) of a proxy evaluation of ``cand_arch`` on nvdla_like at
    ``bits`` (None: no accelerator)."""
    hw = load_spec("nvdla_like", overrides=bits) if bits is not None else None
    space = SearchSpace(_arch_spec(arch_name), hw) if hw is not None else SearchSpace(_arch_spec(arch_name))
    objectives = ("naswot", "snip", "energy") if hw is not None else ("naswot", "snip")
    ev = ProxyEvaluator(space, digits, objectives, batch_size=SMALL, batch_seed=0, record=RECORD)
    cand = space.make(cand_arch["cell"], cand_arch.get("hp"), space.hw.defaults() if hw is not None else None)
    return ev.evaluate(cand, seed=SEED), space, cand


def _candidate_arch(arch_name: str, neuron: str | None = None) -> dict:
    """A sampled candidate's architecture; ``neuron`` sets a spiking one's neuron type."""
    space = SearchSpace(_arch_spec(arch_name))
    arch = dict(space.sample(np.random.default_rng(4)).arch)
    if neuron is not None:
        arch["hp"] = {**arch["hp"], "neuron.type": neuron}
    return arch


# ------------------------------------------------------------------ the hand recomputation
def _batch(digits):
    """The evaluator's proxy batch (batch_seed 0): a seeded permutation of the training split."""
    idx = torch.randperm(len(digits.y_train), generator=torch.Generator().manual_seed(0))[:SMALL]
    return digits.x_train[idx], digits.y_train[idx]


def _fresh(plan, arch) -> GraphNet:
    torch.manual_seed(SEED)
    return GraphNet(plan, arch)


def _quantized(plan, arch, x, precision) -> GraphNet:
    """The initial network with its BNs holding the batch's statistics (so that quantize's
    eval-mode calibration sees the values the train-mode proxies see), quantized on the batch."""
    net = _fresh(plan, arch)
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    with torch.no_grad():
        net(x)
    sj_functional.reset_net(net)
    for m in bns:
        m.momentum = 0.1
    return quantize(net, precision, [x])


def _weights(net) -> list[torch.Tensor]:
    return [m.weight for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _hand_scores(plan, arch, x, y, precision) -> tuple[dict[str, float], dict[str, float]]:
    """(scores, input spike rates) of the quantized network, each proxy on a fresh copy."""
    out: dict[str, float] = {}
    # snip and grad_norm: one train-mode cross-entropy backward pass.
    q = _quantized(plan, arch, x, precision).train()
    F.cross_entropy(q(x), y).backward()
    ws = _weights(q)
    # Straight-through gradients reach every weight of the quantized network.
    assert all(w.grad is not None and float(w.grad.abs().sum()) > 0 for w in ws)
    out["snip"] = float(sum(float((w.detach() * w.grad).abs().sum()) for w in ws))
    out["grad_norm"] = float(sum(float(w.grad.norm()) for w in ws))
    # jacob_cov: per-sample input Jacobians of the summed logits.
    q = _quantized(plan, arch, x, precision).train()
    xg = x.clone().requires_grad_(True)
    logits = q(xg)
    logits.backward(torch.ones_like(logits))
    lam = np.linalg.eigvalsh(np.corrcoef(xg.grad.reshape(len(x), -1).double().numpy()))
    out["jacob_cov"] = float(-np.sum(np.log(lam + 1e-5) + 1.0 / (lam + 1e-5)))
    out["synflow"] = _hand_synflow(plan, arch, precision)
    rates: dict[str, float] = {}
    if plan.spiking:
        codes, rates = _codes_and_rates(_quantized(plan, arch, x, precision).train(), x)
        out["naswot"], out["sahd"] = naswot_score(codes), sahd_score(codes)
    return out, rates


def _hand_synflow(plan, arch, precision) -> float:
    """Every parameter and buffer but the neurons' made positive, in float64, eval mode; the
    quantizer calibrated on the all-ones input; sum |theta * d sum(logits) / d theta|."""
    net = _fresh(plan, arch).double().eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, sj_neuron.BaseNode):
                continue
            for t in [*m.parameters(recurse=False), *m.buffers(recurse=False)]:
                if t.is_floating_point():
                    t.abs_()
    ones = torch.ones((1, *plan.input_shape), dtype=torch.float64)
    q = quantize(net, precision, [ones])
    q(ones).sum().backward()
    assert not any(isinstance(m, sj_neuron.ParametricLIFNode) for m in q.modules())  # no neuron parameters
    return float(sum(float((p.detach() * p.grad).abs().sum()) for p in q.parameters() if p.grad is not None))


def _codes_and_rates(q, x) -> tuple[list[torch.Tensor], dict[str, float]]:
    """The fixed-point neurons' binary codes ([T, B, N], in forward order) and the input spike
    rate of every conv/linear fed by spikes."""
    codes: list[torch.Tensor] = []
    sums: dict[str, list[float]] = {}
    def code(_m, _args, out):
        codes.append((out > 0).reshape(out.shape[0], out.shape[1], -1))
    handles = [m.register_forward_hook(code) for m in q.modules() if isinstance(m, FixedPointNeuron)]
    assert handles  # every neuron is a fixed-point one

    def count(name):
        def hook(_m, args):
            sums[name] = [float(args[0].sum(dtype=torch.float64)), args[0].numel()]
        return hook
    handles += [q.module_of(n).register_forward_pre_hook(count(n)) for n in q.spike_inputs]
    with torch.no_grad():
        q(x)
    for h in handles:
        h.remove()
    return codes, {k: s / n for k, (s, n) in sums.items()}


# ------------------------------------------------------------------ the tests
@pytest.mark.parametrize("arch_name, neuron", [("darts_snn", "lif"), ("darts_snn", "plif"), ("darts", None)])
def test_quantized_proxies_are_the_quantized_networks(arch_name, neuron, digits):
    # (PLIF: its leak is a parameter of the float network, a constant of the fixed-point one.)
    cand_arch = _candidate_arch(arch_name, neuron)
    res, space, cand = _evaluate(arch_name, LOW_BITS, cand_arch, digits)
    assert res.status in ("ok", "infeasible"), res.reason
    arch, template = space.resolve(cand)
    plan = plan_network(arch, cand.arch["cell"], digits.input_shape, digits.num_classes)
    spiking = arch_name == "darts_snn"
    assert plan.spiking == spiking
    precision = Precision(4, 6, 8 if spiking else None)
    x, y = _batch(digits)
    want, rates = _hand_scores(plan, arch, x, y, precision)
    got = {k: res.metrics[k] for k in want}
    # The same operations in the same order on the same seeds: equal to the last bit.
    assert got == want
    assert res.objectives["snip"] == want["snip"]
    assert res.metrics["precision"] == {"weight": 4, "activation": 6, "membrane": 8}
    if spiking:
        assert res.objectives["naswot"] == want["naswot"]
        assert res.metrics["spike_rates"] == {k: round(v, 6) for k, v in rates.items()}
    # The costing uses the quantized network's rates.
    tot = CostModel(template, load_energy_table(template)).cost(plan_workload(plan), rates).total()
    assert res.objectives["energy"] == tot["energy_j"]

    # The float network's proxies (no accelerator) differ from these, every data and gradient
    # proxy; the parameter count is the architecture's at any precision.
    flt, _, _ = _evaluate(arch_name, None, cand_arch, digits)
    assert "precision" not in flt.metrics
    for name in (*GRADIENT, *DATA):
        assert math.isfinite(res.metrics[name]) and res.metrics[name] != flt.metrics[name], name
    assert res.metrics["params"] == flt.metrics["params"]
    if spiking:
        assert res.metrics["spike_rates"] != flt.metrics["spike_rates"]


@pytest.mark.parametrize("arch_name", ["darts_snn", "darts"])
def test_a_32_bit_template_gives_the_float_proxies_exactly(arch_name, digits):
    cand_arch = _candidate_arch(arch_name)
    res, _, _ = _evaluate(arch_name, FLOAT32, cand_arch, digits)
    flt, _, _ = _evaluate(arch_name, None, cand_arch, digits)
    assert res.metrics["precision"] == {"weight": 32, "activation": 32, "membrane": 32}
    for name in (*GRADIENT, *DATA, "params", "flops", "sops"):
        assert res.metrics[name] == flt.metrics[name], name
    assert res.objectives["naswot"] == flt.objectives["naswot"]
    assert res.metrics.get("spike_rates") == flt.metrics.get("spike_rates")


# A ReLU's code in a quantized ANN is read where its consumer reads it: after the consumer's
# input quantizer. x (3 features) -> 1x1 conv W1 (3 -> 4) -> ReLU -> 1x1 conv (4 -> 2) -> GAP ->
# linear; 2-bit activations, float weights. The inputs are integers 0..3, exact on their 2-bit
# unsigned grid (scale 3 / 3 = 1); the ReLU outputs reach 3, so the second conv reads them on
# the grid 0, 1, 2, 3 (scale 1), and 0.375 (sample 1, unit 1) rounds to 0: active in the float
# network, silent in the quantized one.
HAND_X = np.array([[1, 0, 2], [3, 1, 0], [0, 2, 1], [2, 2, 3]], dtype=float)
HAND_W1 = np.array([[1, -1, 0.5], [0.125, 0, -0.5], [-1, 1, 1], [0.5, 0.5, -0.25]])


def _relu_plan():
    from nasco.nn import Node, Plan

    conv = dict(stride=1, dilation=1, groups=1, kernel=1, padding=0)
    nodes = (
        Node("input", "input", (), (3, 1, 1)),
        Node("encode", "encode", ("input",), (3, 1, 1), {"encoding": "direct"}),
        Node("c1", "conv", ("encode",), (4, 1, 1), {"c_in": 3, **conv}),
        Node("r1", "relu", ("c1",), (4, 1, 1)),
        Node("c2", "conv", ("r1",), (2, 1, 1), {"c_in": 4, **conv}),
        Node("gap", "gap", ("c2",), (2, 1, 1)),
        Node("fc", "linear", ("gap",), (2, 1, 1), {"c_in": 2}),
    )
    return Plan(nodes, "fc", False, 1, 2, (3, 1, 1))


def _naswot_of(codes: np.ndarray) -> float:
    """log|det K|, K[i, j] = the number of units on which samples i and j agree."""
    k = (codes[:, None, :] == codes[None, :, :]).sum(-1).astype(float)
    return float(np.linalg.slogdet(k)[1])


def test_a_relu_code_is_read_after_the_consumers_input_quantizer():
    from nasco.evaluate._proxies import ProxyProbe

    class Probe(ProxyProbe):
        def make_net(self):
            net = super().make_net()
            with torch.no_grad():
                net.module_of("c1").weight.copy_(torch.tensor(HAND_W1).reshape(4, 3, 1, 1))
            return net

    ann = SearchSpace(_arch_spec("darts"))
    arch, _ = ann.resolve(ann.make(ann.cells.sample(np.random.default_rng(0))))
    x = torch.tensor(HAND_X, dtype=torch.float32).reshape(4, 3, 1, 1)
    y = torch.tensor([0, 1, 0, 1])
    relu = np.maximum(HAND_X @ HAND_W1.T, 0.0)
    assert relu.max() == 3.0 and relu[1, 1] == 0.375
    on_grid = np.round(relu / (relu.max() / 3))  # 2-bit unsigned grid; no value lies on a half step
    float_codes, quant_codes = (relu > 0).astype(int), (on_grid > 0).astype(int)
    assert (float_codes != quant_codes).sum() == 1
    quantized = Probe(_relu_plan(), arch, x, y, seed=0, precision=Precision(None, 2, None))
    plain = Probe(_relu_plan(), arch, x, y, seed=0)
    # Both kernels are the same integer matrices in float64, so slogdet gives the same bits.
    assert quantized.score("naswot") == _naswot_of(quant_codes)
    assert plain.score("naswot") == _naswot_of(float_codes)
    assert _naswot_of(quant_codes) != _naswot_of(float_codes)
