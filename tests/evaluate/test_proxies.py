"""Zero-cost proxies on nasco's real networks: hand-computed kernels, SOPs and gradient proxies
(synflow, snip, grad_norm, jacob_cov on a two-layer net with hand-set weights), determinism, the
evaluator in a search, and the CLI. A few seconds each."""
from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from nasco.cli import main
from nasco.dsl import load_spec
from nasco.core import BUILTIN_OBJECTIVES
from nasco.evaluate import load_dataset
from nasco.evaluate._proxies import (
    PROXIES, ProxyEvaluator, ProxyProbe, naswot_score, proxy_scores, sahd_score,
)
from nasco.nn import Node, Plan, plan_network, plan_workload
from nasco.space import SearchSpace

torch.set_num_threads(1)

SMALL = 16  # proxy batch of the tests


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0, limit=120)


@pytest.fixture(scope="module")
def snn():
    return SearchSpace(load_spec("darts_snn"))


def _det3(m):
    (a, b, c), (d, e, f), (g, h, i) = m
    return a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)


# Three samples, two layers (4 and 2 units), codes chosen by hand.
L1 = [[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]]
L2 = [[1, 0], [1, 0], [0, 1]]


def test_naswot_of_hand_made_codes():
    # Hamming distances: layer 1 d01=2, d02=3, d12=3 (N=4); layer 2 d01=0, d02=d12=2 (N=2).
    # K = sum_l (N_l - d): [[6, 4, 1], [4, 6, 1], [1, 1, 6]], det = 116.
    assert _det3([[6, 4, 1], [4, 6, 1], [1, 1, 6]]) == 116
    assert naswot_score([np.array(L1), np.array(L2)]) == pytest.approx(math.log(116), abs=1e-12)
    # Timesteps unroll: a [T, B, N] layer scores as its codes concatenated over time.
    t2 = np.stack([np.array(L1), np.array(L1)[:, ::-1]])
    flat = np.concatenate([t2[0], t2[1]], axis=1)
    assert naswot_score([t2]) == pytest.approx(naswot_score([flat]), abs=1e-12)


def test_sahd_of_hand_made_codes():
    # Layer 1: rates 1/2, 1/2, 1/4 -> expected normalised distance e_ij = r_i(1-r_j) + (1-r_i)r_j
    # = 1/2 for every off-diagonal pair; layer 2: rates 1/2 -> 1/2. Scale 0.5 / (e + 1e-3).
    s = 0.5 / (0.5 + 1e-3)
    k1 = [[4, 4 - 2 * s, 4 - 3 * s], [4 - 2 * s, 4, 4 - 3 * s], [4 - 3 * s, 4 - 3 * s, 4]]
    k2 = [[2, 2, 2 - 2 * s], [2, 2, 2 - 2 * s], [2 - 2 * s, 2 - 2 * s, 2]]
    k = [[(k1[i][j] + k2[i][j]) / 2 for j in range(3)] for i in range(3)]  # mean over the 2 layer calls
    assert sahd_score([np.array(L1), np.array(L2)]) == pytest.approx(math.log(abs(_det3(k))), rel=1e-12)
    # Sparse codes: one-hot codes of 4 units (rates 1/4) differ by chance in 3/8 of the units, so
    # their distance 2 is scaled by 0.5 / 0.376 > 1 (NASWOT would keep 2).
    sparse = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]])
    s2 = 0.5 / (0.375 + 1e-3)
    kk = [[4 - 2 * s2 * (i != j) for j in range(3)] for i in range(3)]
    assert s2 > 1 and sahd_score([sparse]) == pytest.approx(math.log(abs(_det3(kk))), rel=1e-12)
    assert naswot_score([sparse]) == pytest.approx(math.log(_det3([[4 - 2 * (i != j) for j in range(3)]
                                                                  for i in range(3)])), rel=1e-12)


def _tiny_plan(arch) -> Plan:
    """input 1x4x4 -> direct encoding -> conv3x3 (1->2) -> BN -> LIF -> conv1x1 (2->3) -> GAP -> fc (3->5)."""
    conv = dict(stride=1, dilation=1, groups=1)
    nodes = (
        Node("input", "input", (), (1, 4, 4)),
        Node("encode", "encode", ("input",), (1, 4, 4), {"encoding": "direct"}),
        Node("c1", "conv", ("encode",), (2, 4, 4), {"c_in": 1, "kernel": 3, "padding": 1, **conv}),
        Node("b1", "bn", ("c1",), (2, 4, 4)),
        Node("n1", "neuron", ("b1",), (2, 4, 4)),
        Node("c2", "conv", ("n1",), (3, 4, 4), {"c_in": 2, "kernel": 1, "padding": 0, **conv}),
        Node("gap", "gap", ("c2",), (3, 1, 1)),
        Node("fc", "linear", ("gap",), (5, 1, 1), {"c_in": 3}),
    )
    return Plan(nodes, "fc", True, 4, 5, (1, 4, 4))


def test_sops_and_flops_of_a_hand_made_plan(snn):
    arch, _ = snn.resolve(snn.make(snn.cells.sample(np.random.default_rng(0))))  # LIF, T = 4
    plan = _tiny_plan(arch)
    x, y = torch.randn(8, 1, 4, 4, generator=torch.Generator().manual_seed(1)), torch.arange(8) % 5
    probe = ProxyProbe(plan, arch, x, y, seed=3)
    # The rate by hand: the same initial network (seed 3), train mode, spikes of n1 counted.
    net = probe.make_net().train()
    seen = []
    net.module_of("n1").register_forward_hook(lambda _m, _a, out: seen.append(out.detach()))
    with torch.no_grad():
        net(x)
    rate = float(seen[0].mean())
    assert 0.0 < rate < 1.0
    # MACs per timestep: c1 4*4*2*9*1 = 288 (static input: once), c2 4*4*3*1*2 = 96 (T = 4,
    # spiking input), fc 3*5 = 15 (T = 4, dense input).
    assert probe.score("flops") == 288 + 96 * 4 + 15 * 4 == plan_workload(plan).macs
    assert probe.score("sops") == pytest.approx(288 + 96 * rate * 4 + 15 * 4, rel=1e-9)
    assert probe.score("params") == 1 * 2 * 9 + 2 * 2 + 2 * 3 + 3 * 5 + 5


def test_ann_sops_equal_flops_and_relu_codes_are_read(digits):
    ann = SearchSpace(load_spec("darts"))
    cand = ann.make(ann.cells.sample(np.random.default_rng(2)))
    arch, _ = ann.resolve(cand)
    s = proxy_scores(arch, cand.arch["cell"], digits, ["sops", "flops", "naswot", "sahd"], seed=0,
                     batch_size=SMALL)
    plan = plan_network(arch, cand.arch["cell"], digits.input_shape, digits.num_classes)
    assert s["sops"] == s["flops"] == plan_workload(plan).macs
    # NASWOT's diagonal is the unit count, so log det < SMALL * log(units); a finite score means
    # the ReLU codes were observed and distinguish the samples.
    assert math.isfinite(s["naswot"]) and math.isfinite(s["sahd"])


def test_snn_proxies_flops_deterministic_and_bounded(snn, digits):
    cand = snn.make(snn.cells.sample(np.random.default_rng(5)))
    arch, _ = snn.resolve(cand)
    s = proxy_scores(arch, cand.arch["cell"], digits, list(PROXIES), seed=1, batch_size=SMALL)
    assert s == proxy_scores(arch, cand.arch["cell"], digits, list(PROXIES), seed=1, batch_size=SMALL)
    other = proxy_scores(arch, cand.arch["cell"], digits, ["naswot", "synflow"], seed=2, batch_size=SMALL)
    assert other["naswot"] != s["naswot"] and other["synflow"] != s["synflow"]
    plan = plan_network(arch, cand.arch["cell"], digits.input_shape, digits.num_classes)
    assert s["flops"] == plan_workload(plan).macs
    assert 0 < s["sops"] < s["flops"]  # spikes gate most of the MACs
    assert s["snip"] > 0 and s["grad_norm"] > 0 and s["synflow"] > 0
    # A correlation matrix has eigenvalues summing to B, and log(l + k) + 1/(l + k) >= 1 with
    # equality at l + k = 1: jacob_cov <= -B.
    assert s["jacob_cov"] <= -SMALL * 1.0 + 1e-9
    assert all(math.isfinite(v) for v in s.values())


# A two-layer ANN with hand-set weights: x (3 features as 3x1x1) -> 1x1 conv W1 (3 -> 2, no bias)
# -> ReLU -> GAP -> linear W2 (2 -> 2 classes) + b. Every weight is a small dyadic fraction, so
# the forward and backward passes are exact in binary floating point; the expected scores below
# are written out with numpy from the closed forms, not from nasco's proxy code.
W1 = np.array([[1.0, -2.0, 0.5], [-1.0, 1.0, 2.0]])
W2 = np.array([[2.0, -1.0], [0.5, 3.0]])
B2 = np.array([0.25, -0.5])
# Sample 0 drives both hidden units (W1 x0 = [1.5, 1]); sample 1 only the first ([0.5, -3]).
X = np.array([[1.0, 0.0, 1.0], [1.0, 0.0, -1.0]])
Y = np.array([0, 1])


def _hand_plan() -> Plan:
    conv = dict(stride=1, dilation=1, groups=1)
    nodes = (
        Node("input", "input", (), (3, 1, 1)),
        Node("encode", "encode", ("input",), (3, 1, 1), {"encoding": "direct"}),
        Node("c1", "conv", ("encode",), (2, 1, 1), {"c_in": 3, "kernel": 1, "padding": 0, **conv}),
        Node("r1", "relu", ("c1",), (2, 1, 1)),
        Node("gap", "gap", ("r1",), (2, 1, 1)),
        Node("fc", "linear", ("gap",), (2, 1, 1), {"c_in": 2}),
    )
    return Plan(nodes, "fc", False, 1, 2, (3, 1, 1))


class _HandProbe(ProxyProbe):
    """A probe whose every network carries the hand-set weights above."""

    def make_net(self):
        net = super().make_net()
        with torch.no_grad():
            net.module_of("c1").weight.copy_(torch.tensor(W1).reshape(2, 3, 1, 1))
            net.module_of("fc").weight.copy_(torch.tensor(W2))
            net.module_of("fc").bias.copy_(torch.tensor(B2))
        return net


@pytest.fixture
def hand_probe():
    ann = SearchSpace(load_spec("darts"))
    arch, _ = ann.resolve(ann.make(ann.cells.sample(np.random.default_rng(0))))
    x = torch.tensor(X, dtype=torch.float32).reshape(2, 3, 1, 1)
    return _HandProbe(_hand_plan(), arch, x, torch.tensor(Y), seed=0)


def test_synflow_of_a_hand_set_two_layer_net(hand_probe):
    # Every parameter made positive, input all ones: h = |W1| 1, R = sum(|W2| h + |b|).
    # dR/dW2[k, j] = h_j, dR/db_k = 1, dR/dW1[j, i] = sum_k |W2|[k, j] (h > 0), x_i = 1.
    a1, a2, ab = np.abs(W1), np.abs(W2), np.abs(B2)
    h = a1 @ np.ones(3)
    want = (a2 * h[None, :]).sum() + ab.sum() + (a1 * a2.sum(0)[:, None]).sum()
    assert want == 24.75 + 0.75 + 24.75
    # Dyadic weights and sums of a few of their products: exact in float64, so exact equality.
    assert hand_probe.score("synflow") == want


def _hand_gradients():
    """dL/dW1, dL/dW2 of the mean cross-entropy over the two samples, by the chain rule."""
    z = X @ W1.T                                     # pre-activations [2, 2]
    h = np.maximum(z, 0.0)
    logits = h @ W2.T + B2
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    g = (p - np.eye(2)[Y]) / len(Y)                  # dL/dlogits
    dz = (g @ W2) * (z > 0)
    return dz.T @ X, g.T @ h


def test_snip_and_grad_norm_of_a_hand_set_two_layer_net(hand_probe):
    d1, d2 = _hand_gradients()
    # snip: sum |W * dL/dW| over the conv and linear weights (biases are not scored).
    snip = np.abs(W1 * d1).sum() + np.abs(W2 * d2).sum()
    # grad_norm: sum over those layers of the Frobenius norm of dL/dW.
    grad_norm = np.sqrt((d1 ** 2).sum()) + np.sqrt((d2 ** 2).sum())
    # The network runs in float32 against this float64 reference: measured relative differences
    # 6.3e-9 (snip) and 2.0e-8 (grad_norm); rel=1e-7 adds 8e-8, under one float32 epsilon
    # (1.19e-7), for a different summation order in torch's kernels. A dropped term, a missing
    # ReLU mask or a bias counted with the weights moves either score by more than 1 %.
    assert hand_probe.score("snip") == pytest.approx(snip, rel=1e-7)
    assert hand_probe.score("grad_norm") == pytest.approx(grad_norm, rel=1e-7)


def test_jacob_cov_of_a_hand_set_two_layer_net(hand_probe):
    # Per-sample input Jacobian of the summed logits: J_b = W1^T ((z_b > 0) * (W2^T 1)).
    z = X @ W1.T
    jac = ((z > 0) * (W2.T @ np.ones(2))[None, :]) @ W1
    assert jac.tolist() == [[0.5, -3.0, 5.25], [2.5, -5.0, 1.25]]
    # Two samples: the correlation matrix is [[1, r], [r, 1]], eigenvalues 1 - r and 1 + r.
    c = jac - jac.mean(1, keepdims=True)
    r = (c[0] @ c[1]) / np.sqrt((c[0] @ c[0]) * (c[1] @ c[1]))
    k = 1e-5
    want = -sum(math.log(lam + k) + 1.0 / (lam + k) for lam in (1 - r, 1 + r))
    # The Jacobian is exact (dyadic); the correlation, eigen-solver and logs round in float64:
    # measured relative difference 4.4e-16 (two ulps); rel=1e-13 leaves room for another LAPACK's
    # eigvalsh rounding. k = 1e-4 instead of 1e-5 moves it by 2.3e-4 relative, a dropped
    # 1/(lambda + k) term changes its sign.
    assert hand_probe.score("jacob_cov") == pytest.approx(want, rel=1e-13)


def test_every_proxy_is_an_objective_with_its_direction():
    for name, d in PROXIES.items():
        assert BUILTIN_OBJECTIVES[name].direction == d.sense
    assert BUILTIN_OBJECTIVES["sops"].direction == BUILTIN_OBJECTIVES["flops"].direction == "min"
    assert BUILTIN_OBJECTIVES["naswot"].direction == "max" and BUILTIN_OBJECTIVES["macs"].direction == "min"


def test_evaluator_fails_on_a_singular_kernel_and_rejects_unknown_names(snn, digits):
    same = SimpleNamespace(x_train=digits.x_train[:1].repeat(SMALL, 1, 1, 1), y_train=digits.y_train[:SMALL],
                           input_shape=digits.input_shape, num_classes=digits.num_classes)
    ev = ProxyEvaluator(snn, same, ("naswot", "params"), batch_size=SMALL)
    res = ev.evaluate(snn.make(snn.cells.sample(np.random.default_rng(0))), seed=0)
    assert res.status == "failed" and "naswot is -inf" in res.reason
    with pytest.raises(ValueError, match="did you mean 'naswot'"):
        ProxyEvaluator(snn, digits, ("naswto",))
    with pytest.raises(ValueError, match="needs training"):
        ProxyEvaluator(snn, digits, ("accuracy",))
    with pytest.raises(ValueError, match="need an accelerator"):
        ProxyEvaluator(snn, digits, ("naswot", "energy"))


def test_evaluator_in_run_search_writes_ok_rows(tmp_path, digits):
    from nasco.run import run_search
    from nasco.search import RandomSearch

    space = SearchSpace(load_spec("darts_snn"), load_spec("asic_template"))
    objectives = ("sahd", "sops", "energy")
    ev = ProxyEvaluator(space, digits, objectives, batch_size=SMALL)
    assert ev.cheap
    out = run_search(space=space, evaluator=ev, searcher=RandomSearch(space, objectives, seed=0), budget=3,
                     out_dir=tmp_path / "run", seed=0, progress=False, limits=ev.limits)
    rows = [json.loads(line) for line in (tmp_path / "run" / "ledger.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and out.counts["total"] == 3
    assert {r["status"] for r in rows} <= {"ok", "infeasible"} and any(r["status"] == "ok" for r in rows)
    for r in rows:
        o, m = r["objectives"], r["metrics"]
        assert set(o) == set(objectives) and all(math.isfinite(v) for v in o.values())
        assert o["energy"] > 0 and 0 < o["sops"] < m["flops"] and m["spike_rates_from"] == "init"
        (template,) = space.hw.resolve(r["hw"])  # the proxies are at the row's own template's bits
        b = template.bits
        assert m["precision"] == {"weight": b.weight, "activation": b.activation, "membrane": b.membrane}
    assert ev.describe()["proxy_precision"] == "template"
    assert len({r["objectives"]["sahd"] for r in rows}) == 3


def _cli(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code)
    return code, capsys.readouterr()


def test_cli_proxy_search_and_usage_errors(tmp_path, capsys):
    out = tmp_path / "p"
    code, cap = _cli(capsys, "search", "--space", "darts_snn", "--hw", "asic_template", "--evaluator",
                     "proxy", "--objectives", "naswot,energy", "--budget", "3", "--limit", "150", "--quiet",
                     "--out", str(out))
    assert code == 0, cap.err
    rows = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(set(r["objectives"]) == {"naswot", "energy"} for r in rows)
    assert json.loads((out / "run.json").read_text())["config"]["evaluator"] == "proxy"
    for argv, expect in ((["--objectives", "naswto"], "did you mean 'naswot'"),
                         (["--objectives", "accuracy"], "needs training"),
                         (["--epochs", "2"], "--evaluator train")):
        code, cap = _cli(capsys, "search", "--space", "darts_snn", "--evaluator", "proxy", "--hw",
                         "asic_template", "--out", str(tmp_path / "x"), *argv)
        assert code == 2 and expect in cap.err and len(cap.err.strip().splitlines()) == 1, cap.err
