"""Supernets, DARTS (first/second order, DARTS-PT), the expected-cost term and the darts searcher."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nasco.dsl import load_spec, resolve
from nasco.evaluate import load_dataset
from nasco.evaluate._train import reset_states
from nasco.nn import GraphNet, SuperNet, derive_cell, plan_network, plan_supernet
from nasco.search import DartsConfig, collapse_report, cosine_power, fit_darts
from nasco.search._darts import _Search
from nasco.search._expected_cost import ExpectedCost
from nasco.space import SearchSpace

torch.set_num_threads(1)

# A small network: 3 cells of 4 channels, 2 timesteps (the spiking ones).
SMALL = {("macro", "stem", "channels"): {"choice": [4], "default": 4}}


def _arch(name: str, overrides: dict | None = None, **extra):
    over = dict(SMALL)
    if name == "darts_snn":
        over[("timesteps",)] = {"choice": [2], "default": 2}
    over.update(overrides or {})
    over.update(extra)
    spec = load_spec(name, overrides=over)
    space = SearchSpace(spec)
    return space, resolve(spec, {k: c.default for k, c in space.arch_dims.items()})


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0, limit=96)


def _template(name: str = "nvdla_like"):
    from nasco.dsl import load_energy_table
    hw = SearchSpace(load_spec("darts"), load_spec(name)).hw
    t = hw.resolve(hw.defaults())[0]
    return t, load_energy_table(t)


# ---------------------------------------------------------------------------- supernet plan
@pytest.mark.parametrize("name", ["darts_snn", "darts", "nb201"])
def test_supernet_plan_has_one_mix_per_edge(name):
    _space, arch = _arch(name)
    sp = plan_supernet(arch, (1, 8, 8), 10)
    mixes = [n for n in sp.plan.nodes if n.op == "mix"]
    if arch.cell.type == "darts":
        assert sp.alpha_shapes() == {"normal": (14, 7), "reduce": (14, 7)}
        assert len(mixes) == 14 * arch.macro.cells
    else:  # NB201: 6 edges per cell, 5 ops with 'none' (no layers, so no mix input)
        assert sp.alpha_shapes() == {"normal": (6, 5)}
        assert all(len(m.inputs) == 4 for m in mixes)
    # Every op's layers are owned by that op, and the slots of a mix name real ops.
    for m in mixes:
        assert len(m.inputs) == len(m.attrs["slots"])
        for inp, slot in zip(m.inputs, m.attrs["slots"]):
            own = sp.owners.get(inp)
            if own is not None:
                assert own == (m.attrs["kind"], m.attrs["edge"], slot)


def _copy_weights(super_net: SuperNet, net: GraphNet, arch, cell) -> None:
    """Load the derived network with the supernet's weights of the ops the cell chose:
    layer ``cells.P.nI.eJ.REST`` of the network is ``cells.P.nI.eJ.OP.REST`` there."""
    import re

    reductions = set(arch.macro.reductions)

    def op_of(pos: int, i: int, j: int) -> str:
        if "edges" in cell:  # dense: edges (1,0), (2,0), (2,1), ...; nodes numbered from 1
            return cell["edges"][[(a, b) for a in range(1, arch.cell.nodes + 1) for b in range(a)].index((i, j))]
        genes = cell["reduce" if pos in reductions else "normal"]
        k = arch.cell.edges_per_node
        return next(op for q, (op, jj) in enumerate(genes) if q // k == i and jj == j)

    src = super_net.state_dict()
    out = {}
    for key in net.state_dict():
        m = re.match(r"layers\.cells__(\d+)__n(\d+)__e(\d+)__(.*)", key)
        if m:
            pos, i, j, rest = int(m[1]), int(m[2]), int(m[3]), m[4]
            key_src = f"layers.cells__{pos}__n{i}__e{j}__{op_of(pos, i, j)}__{rest}"
        else:
            key_src = key
        out[key] = src[key_src]
    net.load_state_dict(out)


@pytest.mark.parametrize("name", ["darts", "darts_snn", "nb201"])
def test_supernet_fixed_to_a_cell_computes_that_network(name, digits):
    """With every chosen edge fixed one-hot and the others masked, the supernet is the derived
    network: same logits for the same weights (spiking included: neurons are stateless LIF)."""
    space, arch = _arch(name)
    torch.manual_seed(0)
    sp = plan_supernet(arch, digits.input_shape, digits.num_classes)
    net = SuperNet(sp, arch)
    cell = space.cells.sample(np.random.default_rng(3))
    for kind, edges in sp.kinds.items():
        mask, fixed = net.mask(kind), net.fixed(kind)
        mask.zero_()
        if "edges" in cell:
            for e, op in enumerate(cell["edges"]):
                fixed[e] = sp.ops.index(op)
        else:
            k = arch.cell.edges_per_node
            for pos, (op, j) in enumerate(cell[kind]):
                fixed[edges.index((pos // k, j))] = sp.ops.index(op)
    assert derive_cell(sp, arch.cell, {k: v.detach().numpy() for k, v in net.weights().items()}) \
        == space.cells.canonical(cell) if "normal" in cell else True
    plan = plan_network(arch, cell, digits.input_shape, digits.num_classes, **(
        {"prune_dead": False} if arch.cell.type == "dense" else {}))
    derived = GraphNet(plan, arch)
    _copy_weights(net, derived, arch, cell)
    net.eval(), derived.eval()
    x = digits.x_train[:16]
    with torch.no_grad():
        a = net(x)
        reset_states(net)
        b = derived(x)
    assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()


def test_derive_cell_takes_top_k_inputs_and_skips_none():
    _space, arch = _arch("darts")
    sp = plan_supernet(arch, (1, 8, 8), 10)
    w = np.full((14, 7), 0.1)
    # node 0 (edges 0, 1): both inputs kept; node 1 (edges 2..4): input 2 and 0 strongest
    w[0, 2] = 0.5
    w[1, 6] = 0.4
    w[2, 1] = 0.3
    w[4, 3] = 0.9
    cell = derive_cell(sp, arch.cell, {"normal": w, "reduce": w})
    assert cell["normal"][:4] == [["conv_3x3", 0], ["max_pool_3x3", 1], ["conv_1x1", 0], ["sep_conv_3x3", 2]]


# ---------------------------------------------------------------------------- schedules, guard
def test_cosine_power_annealing_values():
    assert cosine_power(0, 100, 0.1, 0.001) == pytest.approx(0.1)
    assert cosine_power(100, 100, 0.1, 0.001) == pytest.approx(0.001)
    # c = 0.5 at mid-schedule: (10 ** 0.5 - 1) / 9 of the range, below plain cosine's half
    assert cosine_power(50, 100, 0.1, 0.001) == pytest.approx(0.001 + 0.099 * (math.sqrt(10) - 1) / 9)
    lrs = [cosine_power(t, 100, 0.1, 0.001) for t in range(101)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_collapse_report():
    cell = {"normal": [["skip_connect", 0], ["skip_connect", 1], ["skip_connect", 0], ["conv_3x3", 2],
                       ["avg_pool_3x3", 0], ["conv_3x3", 1], ["sep_conv_3x3", 0], ["conv_1x1", 4]],
            "reduce": [["max_pool_3x3", 0], ["conv_3x3", 1]] * 4}
    r = collapse_report(cell)
    assert r["normal_skip"] == 0.375 and r["normal_parameter_free"] == 0.5
    assert r["reduce_parameter_free"] == 0.5 and r["collapsed"] is True
    cell["normal"][0] = ["conv_3x3", 0]
    cell["normal"][1] = ["conv_3x3", 1]
    assert collapse_report(cell)["collapsed"] is False


# ---------------------------------------------------------------------------- expected cost
def test_expected_cost_one_hot_equals_cell_and_follows_rates():
    _space, arch = _arch("darts_snn")
    tmpl, table = _template()
    sp = plan_supernet(arch, (1, 8, 8), 10)
    cost = ExpectedCost(sp, tmpl, table)
    spiking = [layer.name for layer in cost.workload.layers if layer.spiking_input]
    cost.update({n: 0.1 for n in spiking})
    low = cost.tables["energy"]["normal"].copy()
    cost.update({n: 0.5 for n in spiking})
    high = cost.tables["energy"]["normal"]
    conv3 = sp.ops.index("conv_3x3")
    skip = sp.ops.index("skip_connect")
    assert high[0, conv3] > low[0, conv3] > 0     # spike-gated accumulates grow with the rate
    assert high[0, skip] == low[0, skip] == 0      # a stride-1 skip has no layers
    cell = SearchSpace(arch).cells.sample(np.random.default_rng(0))
    w = {}
    for kind, edges in sp.kinds.items():
        m = torch.zeros(len(edges), len(sp.ops))
        for pos, (op, j) in enumerate(cell[kind]):
            m[edges.index((pos // 2, j)), sp.ops.index(op)] = 1.0
        w[kind] = m
    for metric in ("energy", "latency"):
        assert float(cost.expected(w, metric)) == pytest.approx(cost.of_cell(cell, metric), rel=1e-6)


# ---------------------------------------------------------------------------- second order
def test_second_order_gradient_matches_exact_hypergradient(digits):
    """DARTS eq. 8's finite-difference alpha gradient against autograd's exact gradient of
    L_val(w - xi * dL_train/dw, alpha), in float64 with a step small enough not to straddle
    the ReLU / max-pool kinks (with DARTS's 0.01 in float32 the estimate is noisy, see
    DartsConfig.fd_epsilon)."""
    _space, arch = _arch("darts")
    cfg = DartsConfig(epochs=2, warmup_epochs=0, batch_size=16, order=2, weight_decay=0.0, seed=0,
                      fd_epsilon=1e-6)
    s = _Search(arch, digits, None, cfg)
    with torch.no_grad():  # away from the uniform point, so the gradients are not tiny
        for a in s.net.arch_parameters():
            a.normal_(0, 0.5)
    s.net.double()
    xa, ya = s.xa[:16].double(), s.ya[:16]
    xw, yw = s.xw[:16].double(), s.yw[:16]
    xi = 0.05
    _loss, approx = s._unrolled(xa, ya, xw, yw, xi)
    W, A = s.net.weight_parameters(), s.net.arch_parameters()
    gw = torch.autograd.grad(F.cross_entropy(s.net(xw), yw), W, create_graph=True, allow_unused=True)
    params = dict(s.net.named_parameters())
    names = [n for n in params if not n.startswith("alphas.")]
    unrolled = {n: p - xi * g if g is not None else p for n, p, g in zip(names, W, gw)}
    unrolled.update({n: p for n, p in params.items() if n.startswith("alphas.")})
    loss_v = F.cross_entropy(torch.func.functional_call(s.net, unrolled, (xa,)), ya)
    exact = torch.autograd.grad(loss_v, A)
    first_order = torch.autograd.grad(F.cross_entropy(torch.func.functional_call(
        s.net, {n: p.detach() if not n.startswith("alphas.") else p for n, p in unrolled.items()}, (xa,)), ya), A)
    for g1, g2, g0 in zip(approx, exact, first_order):
        scale = float(g2.abs().max())
        assert float((g1 - g2).abs().max()) < 0.01 * scale
        assert float((g0 - g2).abs().max()) > 0.05 * scale  # the correction term matters here


# ---------------------------------------------------------------------------- fit, resume, PT
def _fit(arch, data, **kw):
    tmpl, table = _template()
    cfg = DartsConfig(**{"epochs": 2, "warmup_epochs": 1, "batch_size": 16, "seed": 0, **kw})
    return fit_darts(arch, data, cfg, hw=(tmpl, table))


def test_fit_darts_hardware_term_lowers_estimated_energy(digits):
    _space, arch = _arch("darts_snn")
    free = _fit(arch, digits, lam=0.0, alpha_lr=0.05)
    aware = _fit(arch, digits, lam=5.0, alpha_lr=0.05)
    assert aware.history[-1]["expected"]["energy"] < free.history[-1]["expected"]["energy"]
    assert aware.expected["energy"] < free.expected["energy"]
    assert len(free.history) == 2 and free.history[0]["phase"] == "warmup"


def test_fit_darts_resumes_from_its_checkpoint(digits, tmp_path):
    # These settings collapse the normal cell (measured on cells without a BN after their pooling
    # ops: 88 % skip connections on one CPU, 75 % skip and 88 % parameter-free on another, whose
    # float kernels differ); the warning and the report must say what the derived cell holds.
    _space, arch = _arch("darts_snn", {("cell", "pool_bn"): False})
    tmpl, table = _template()
    cfg = DartsConfig(epochs=3, warmup_epochs=1, batch_size=16, seed=1, lam=1.0)
    with pytest.warns(RuntimeWarning, match="DARTS collapse warning: the derived normal cell has") as caught:
        whole = fit_darts(arch, digits, cfg, hw=(tmpl, table))
    ops = [op for op, _j in whole.cell["normal"]]
    skip = sum(op == "skip_connect" for op in ops) / len(ops)
    free = sum(op in ("skip_connect", "avg_pool_3x3", "max_pool_3x3") for op in ops) / len(ops)
    assert whole.collapse["normal_skip"] == skip and whole.collapse["normal_parameter_free"] == free
    assert whole.collapse["collapsed"] is True
    message = str(next(w.message for w in caught if "DARTS collapse" in str(w.message)))
    assert f"{skip:.0%} skip connections and {free:.0%} parameter-free ops" in message

    class Killed(Exception):
        pass

    def kill_after_two(line: str) -> None:
        if line.startswith("[darts] epoch 2/3"):
            raise Killed

    ck = tmp_path / "ck.pt"
    with pytest.raises(Killed):
        fit_darts(arch, digits, cfg, hw=(tmpl, table), checkpoint=ck, log=kill_after_two)
    assert ck.is_file()
    resumed = fit_darts(arch, digits, cfg, hw=(tmpl, table), checkpoint=ck)
    assert resumed.resumed_from == 1  # killed before epoch 2 was saved
    assert resumed.cell == whole.cell
    assert resumed.weights == whole.weights
    assert [h["search_valid_accuracy"] for h in resumed.history] == \
        [h["search_valid_accuracy"] for h in whole.history]


def test_darts_pt_fixes_every_edge(digits):
    _space, arch = _arch("darts")
    fit = _fit(arch, digits, pt=True, pt_samples=16, pt_tune_steps=0)
    ops = [d for d in fit.pt if "op" in d]
    nodes = [d for d in fit.pt if "node" in d]
    assert len(ops) == 28 and len(nodes) == 8
    for d in ops:  # the kept op is the one whose removal hurt most
        acc = d["accuracy_without"]
        assert acc[d["op"]] == min(acc.values())
    for d in nodes:
        kind = d["kind"]
        genes = fit.cell[kind][2 * d["node"]:2 * d["node"] + 2]
        assert sorted(j for _op, j in genes) == sorted(d["inputs"])


# ---------------------------------------------------------------------------- the searcher / CLI
def test_darts_search_cli_end_to_end_and_resume(tmp_path, capsys):
    from nasco.cli import main

    out = tmp_path / "run"
    args = ["search", "--space", "darts_snn", "--hw", "asic_template", "--searcher", "darts", "--limit", "60",
            "--set", "macro.stem.channels=4", "--set", "timesteps=2", "--searcher-opt", "epochs=2",
            "--searcher-opt", "warmup_epochs=1", "--searcher-opt", "batch_size=16", "--out", str(out), "--quiet"]
    assert main(args + ["--budget", "2"]) == 0
    rows = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and rows[0]["hw"] != rows[1]["hw"]
    for r in rows:
        info = r["metrics"]["search"]
        assert info["searcher"] == "darts" and info["lam"] == 1.0
        assert "normal_skip" in info["collapse"] and info["expected"]["energy"] > 0
        fit = json.loads((out / "darts" / info["slot"] / "fit.json").read_text())
        assert fit["cell"] == r["arch"]["cell"]
        assert r["status"] in ("ok", "infeasible") and "test_accuracy" in r["metrics"]
    assert rows[1]["metrics"]["search"]["warm_start"] is True
    for name in ("pareto.csv", "summary.json", "pareto.png"):
        assert (out / name).is_file()
    # Resume with a larger budget: the two searches are read back, one more runs.
    assert main(args + ["--budget", "3", "--resume"]) == 0
    rows = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and len({r["id"] for r in rows}) == 3
    assert len(list((out / "darts").glob("*/fit.json"))) == 3


def test_darts_searcher_usage_errors(capsys):
    from nasco.cli import main

    def code(argv) -> int:
        try:
            return main(argv)
        except SystemExit as exc:
            return int(exc.code)

    assert code(["search", "--space", "nb201", "--searcher", "darts", "--evaluator", "table",
                 "--table", "nb201"]) == 2
    err = capsys.readouterr().err
    assert "needs --evaluator train" in err and "Traceback" not in err
    assert code(["search", "--space", "darts_snn", "--hw", "asic_template", "--searcher", "darts",
                 "--searcher-opt", "order=3", "--limit", "30"]) == 2
    err = capsys.readouterr().err
    assert "order=3 must be 1" in err and len(err.strip().splitlines()) == 1
    assert code(["search", "--space", "darts_snn", "--hw", "nvdla_like", "--searcher", "darts", "--limit", "30",
                 "--searcher-opt", "hw_search=enumerate", "--budget", "1000000"]) == 2
    err = capsys.readouterr().err
    assert "hw_search=enumerate can search" in err and len(err.strip().splitlines()) == 1


def test_a_diverged_search_is_a_failed_row_and_the_search_goes_on(tmp_path, monkeypatch, digits):
    from nasco.run import run_search
    from nasco.search import DartsSearcher
    from nasco.search._darts import _Search

    calls = {"n": 0}

    def nan_step(self, xw, yw, lr):
        calls["n"] += 1
        return (float("nan") if calls["n"] == 2 else 1.0), 0

    monkeypatch.setattr(_Search, "_w_step", nan_step)
    space = SearchSpace(_arch("darts_snn")[0].arch_spec, load_spec("asic_template"))

    class Evaluator:
        objectives = ("accuracy", "energy")

        def evaluate(self, cand, seed):
            from nasco.evaluate import Result
            return Result("ok", {"accuracy": 0.5, "energy": 1e-5})

    s = DartsSearcher(space, ("accuracy", "energy"), data=digits, epochs=2, warmup_epochs=1, batch_size=16,
                      log=False)
    out = run_search(space=space, evaluator=Evaluator(), searcher=s, budget=2, out_dir=tmp_path, seed=0,
                     progress=False)
    rows = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    assert [r["status"] for r in rows] == ["failed", "ok"]
    assert rows[0]["reason"].startswith("search failed: TrainingDiverged: supernet training diverged")
    assert out.counts["failed"] == 1


def _stub_searcher(monkeypatch, hw_search: str, hw_name: str = "asic_template", **kw):
    """A darts searcher whose inner search is replaced by a fixed cell (the outer loop only)."""
    from nasco.search import DartsSearcher

    space = SearchSpace(load_spec("darts_snn"), load_spec(hw_name))
    cell = space.cells.sample(np.random.default_rng(0))
    monkeypatch.setattr(DartsSearcher, "_fit", lambda self, hw, k: {"cell": cell, "history": []})
    return space, DartsSearcher(space, ("accuracy", "energy"), data=object(), hw_search=hw_search, log=False, **kw)


def test_enumerate_proposes_every_configuration_once(monkeypatch):
    from nasco.evaluate import Result
    from nasco.search._joint_darts import enumerate_hw

    space, s = _stub_searcher(monkeypatch, "enumerate", "nvdla_like")
    configs = enumerate_hw(space.hw)
    assert len(configs) == space.hw.size() and configs[0] == space.hw.defaults()
    seen = []
    for _ in range(len(configs)):
        cand = s.ask(1)[0]
        seen.append(cand.hw)
        s.tell(cand, Result("ok", {"accuracy": 0.5, "energy": 1.0}))
    from nasco.space import canonical_json
    assert sorted(map(canonical_json, seen)) == sorted(map(canonical_json, configs))
    with pytest.warns(RuntimeWarning, match="configurations were searched"):
        assert s.ask(1)[0].hw == configs[0]  # a repeat: the driver serves it from the ledger


def test_evolution_mutates_a_tournament_winner(monkeypatch):
    from nasco.evaluate import Result
    from nasco.space import canonical_json

    space, s = _stub_searcher(monkeypatch, "evolution", "nvdla_like", population=3, seed=4)
    asked = []
    for _ in range(10):
        cand = s.ask(1)[0]
        asked.append(cand.hw)
        # Smaller PE arrays score better: the tournament has a winner.
        pes = cand.hw["pe_array.rows"] * cand.hw["pe_array.cols"]
        s.tell(cand, Result("ok", {"accuracy": 1.0 / pes, "energy": 1.0}))
    assert asked[0] == space.hw.defaults()
    assert len({canonical_json(h) for h in asked}) == len(asked)  # no configuration twice
    for i, child in enumerate(asked[3:], start=3):  # after the population: one move from a recent one
        recent = asked[max(0, i - 3):i]
        assert min(sum(child[k] != h[k] for k in child) for h in recent) == 1
