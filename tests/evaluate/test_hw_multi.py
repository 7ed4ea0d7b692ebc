"""The multi-task hardware inner loop: the front over a multi-accelerator's partitions is the one a
brute force over every in-budget pair gives, each pair costed with CostModel per sub-accelerator
and combined by hand; no partition of it exceeds the budget; the proposed partition is scored."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from nasco.core import BUILTIN_OBJECTIVES, Candidate
from nasco.dsl import load_energy_table, load_file, load_spec
from nasco.evaluate import (
    TaskNetwork,
    TrainCostEvaluator,
    check_limits,
    multi_hardware_front,
    quantized_accuracy,
)
from nasco.evaluate._data import load_dataset
from nasco.hw import CostModel
from nasco.nn import Precision, plan_network, plan_workload
from nasco.space import SUBS_KEY, SearchSpace

TINY = {("macro", "cells"): 1, ("macro", "stem", "channels"): 8, ("macro", "reductions"): []}
TINY_SNN = {**TINY, ("timesteps",): 2}
OBJ = ("accuracy", "energy", "latency", "area")

# Two small members with the weight width as a choice (so accuracy varies with the
# sub-accelerator), 16 + 8 configurations; 576 pairs, of which the budget (192 PEs, 12
# bytes/cycle) admits some: two 128-PE arrays or two 8-byte links do not fit.
_TEMPLATE = """schema: 1
kind: accelerator
name: {name}
dataflow: {dataflow}
pe_array: {{rows: {{choice: {rows}}}, cols: {cols}}}
buffers: {{ifmap_kb: 64, filter_kb: 64, ofmap_kb: 64}}
bandwidth: {{dram_bytes_per_cycle: {{choice: [4, 8]}}}}
clock_mhz: 200
bits: {{weight: {{choice: [4, 8], default: 8}}, activation: 8, accumulator: 32, membrane: 16}}
technology: horowitz_45nm
"""
MULTI = """schema: 1
kind: multi_accelerator
name: tiny_multi
sub_accelerators: 2
members: [tiny_set.yaml]
budget: {{pes: 192, dram_bytes_per_cycle: 12}}
specs: {specs}
"""
BUDGET = (192, 12.0)
# System values of these networks' pairs (measured): latency 0.074-0.17 ms, area 1.12-1.25 mm2,
# power 0.05-0.12 W. The specs below leave some front pairs out; TIGHT leaves nothing feasible.
SPECS = {"specs": '{latency: {max: "0.12 ms"}, area: {max: "1.2 mm2"}}'}
LIMITS = {"latency": 0.12e-3, "area": 1.2}
TIGHT = {"area": 1.0}
POWER = {"power": 0.1}
# Without area among the objectives and specs, a larger array's only cost is its PEs.
LATENCY = {"latency": 0.12e-3}
SPACES = {"tiny_multi": LIMITS, "tight": TIGHT, "power": POWER, "latency": LATENCY}
# Each task's accuracy by its sub-accelerator's weight bits: a stand-in for the quantized
# network's (the evaluator test below uses the real one).
ACCURACY = ({4: 0.5, 8: 0.75}, {4: 0.625, 8: 0.875})


def _specs_yaml(limits):
    units = {"latency": ("ms", 1e3), "area": ("mm2", 1.0), "power": ("W", 1.0)}
    items = (f'{k}: {{max: "{v * units[k][1]:g} {units[k][0]}"}}' for k, v in limits.items())
    return "{" + ", ".join(items) + "}"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("multi")
    (d / "tiny_os.yaml").write_text(_TEMPLATE.format(name="tiny_os", dataflow="os", rows=[4, 8],
                                                     cols="{choice: [8, 16]}"))
    (d / "tiny_ws.yaml").write_text(_TEMPLATE.format(name="tiny_ws", dataflow="ws", rows=[8, 16], cols=8))
    (d / "tiny_set.yaml").write_text("schema: 1\nkind: accelerator_set\nname: tiny_set\n"
                                     "members: [tiny_os.yaml, tiny_ws.yaml]\ndefault: tiny_ws\n")
    for name, limits in SPACES.items():
        (d / f"{name}.yaml").write_text(MULTI.format(specs=_specs_yaml(limits)))
    return d


def _space(folder, name="tiny_multi"):
    return SearchSpace([load_spec("darts_snn", overrides=TINY_SNN), load_spec("darts", overrides=TINY)],
                       load_file(folder / f"{name}.yaml"))


@pytest.fixture(scope="module")
def tasks(folder):
    """The two task networks of a sampled candidate, with a spike rate per layer of the SNN."""
    space = _space(folder)
    data = load_dataset("digits", seed=0, limit=100)
    cand = space.sample(np.random.default_rng(0))
    archs, _ = space.resolve(cand)
    out = []
    for i, (arch, geno) in enumerate(zip(archs, space.task_archs(cand))):
        plan = plan_network(arch, geno["cell"], data.input_shape, data.num_classes)
        workload = plan_workload(plan, name=f"task{i}")
        rates = ({layer.name: 0.1 + 0.01 * (j % 7) for j, layer in enumerate(workload.layers)}
                 if plan.spiking else {})
        out.append(TaskNetwork(workload, rates, lambda p, i=i: ACCURACY[i][p[0]]))
    return out


def _sub_costs(pool, tasks, accuracy):
    """Each task's values on each configuration of the pool, costed one at a time with CostModel;
    the usage read off the resolved template."""
    out = []
    for i, task in enumerate(tasks):
        per = {}
        for sub in pool.configurations():
            (t,) = pool.resolve(sub)
            tot = CostModel(t, load_energy_table(t)).cost(task.workload, task.rates).total()
            per[json.dumps(sub, sort_keys=True)] = {
                "accuracy": accuracy(i, t), "energy": tot["energy_j"], "latency": tot["latency_s"],
                "area": tot["area_mm2"], "pes": t.pe_array.rows * t.pe_array.cols,
                "bw": float(t.bandwidth.dram_bytes_per_cycle)}
        out.append(per)
    return out


def _dominates(u, v, objectives):
    a = [u[o] if BUILTIN_OBJECTIVES[o].maximise else -u[o] for o in objectives]
    b = [v[o] if BUILTIN_OBJECTIVES[o].maximise else -v[o] for o in objectives]
    return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))


def _brute_force(space, tasks, limits, objectives, accuracy=lambda i, t: ACCURACY[i][t.bits.weight]):
    """Every in-budget pair (sub i runs task i): its system values combined by hand (mean,
    sums, max), its violations; the over-budget pairs; and the front by a plain dominance loop
    (ties kept) over the feasible pairs, or when none is feasible over those of the least total
    relative violation."""
    costs = _sub_costs(space.hw.pool, tasks, accuracy)
    keys = [json.dumps(s, sort_keys=True) for s in space.hw.pool.configurations()]
    pairs, over = {}, {}
    for k0, k1 in itertools.product(keys, repeat=2):
        c0, c1 = costs[0][k0], costs[1][k1]
        values = {"accuracy": (c0["accuracy"] + c1["accuracy"]) / 2, "energy": c0["energy"] + c1["energy"],
                  "latency": max(c0["latency"], c1["latency"]), "area": c0["area"] + c1["area"]}
        hw = json.dumps({SUBS_KEY: [json.loads(k0), json.loads(k1)]}, sort_keys=True)
        inside = c0["pes"] + c1["pes"] <= BUDGET[0] and c0["bw"] + c1["bw"] <= BUDGET[1]
        (pairs if inside else over)[hw] = (values, check_limits(values, limits))
    feasible = {k: v for k, (v, viol) in pairs.items() if not viol}
    if feasible:
        front = {k for k, v in feasible.items()
                 if not any(_dominates(u, v, objectives) for u in feasible.values())}
    else:
        rel = {k: sum(e / limits[m] for m, e in viol.items()) for k, (_, viol) in pairs.items()}
        least = {k: pairs[k][0] for k, r in rel.items() if r == min(rel.values())}
        front = {k for k, v in least.items() if not any(_dominates(u, v, objectives) for u in least.values())}
    return pairs, over, front


def _key(hw):
    return json.dumps(hw, sort_keys=True)


def _check_front(front, pairs, want, objectives):
    """The reported points are pairs of the brute-force front, with its values; every pair of that
    front the loop leaves out ties a reported point's objectives exactly (see the module's
    docstring of nasco.evaluate._hw_multi)."""
    got = {_key(p.hw): p for p in front.points}
    assert len(got) == len(front.points)
    assert set(got) <= want
    for k, p in got.items():
        values, viol = pairs[k]
        assert p.values == values and p.violations == viol
        assert p.objectives == {o: values[o] for o in objectives}
    reported = {tuple(p.objectives[o] for o in objectives) for p in front.points}
    assert {tuple(pairs[k][0][o] for o in objectives) for k in want} == reported


# (space, objectives, whether a spec binds). The third case guards the PEs among the reduction's
# keys: without area, a larger array dominates a smaller one on everything else.
@pytest.mark.parametrize("name, objectives, binds", [
    ("tiny_multi", OBJ, True), ("tiny_multi", ("energy", "area"), True),
    ("latency", ("accuracy", "energy", "latency"), False)])
def test_front_is_the_brute_force_front(folder, tasks, name, objectives, binds):
    space = _space(folder, name)
    pairs, over, want = _brute_force(space, tasks, SPACES[name], objectives)
    front = multi_hardware_front(tasks, space.hw, objectives=objectives)
    assert front.feasible and front.mode == "exhaustive"
    assert front.configurations == (24, 24) and front.pairs == front.costed  # no proposal: all scored
    assert len(pairs) > front.pairs  # the reduction left pairs out
    _check_front(front, pairs, want, objectives)
    # The budget binds (an over-budget pair would be on the front without it), and where
    # ``binds``, the specs (an infeasible pair would be on the front without them).
    def free(points):
        return {k for k, v in points.items()
                if not any(_dominates(u, v, objectives) for u in points.values())}

    assert any(pairs[k][1] for k in free({k: v for k, (v, _) in pairs.items()})) == binds
    assert free({k: v for k, (v, _) in {**pairs, **over}.items()}) & set(over)


def test_no_feasible_pair_gives_the_least_violating_ones(folder, tasks):
    space = _space(folder, "tight")
    pairs, _, want = _brute_force(space, tasks, TIGHT, OBJ)
    front = multi_hardware_front(tasks, space.hw, objectives=OBJ)
    assert not front.feasible and front.points
    _check_front(front, pairs, want, OBJ)


def test_a_power_spec_keeps_every_configuration(folder, tasks):
    space = _space(folder, "power")
    pairs, _, want = _brute_force(space, tasks, POWER, OBJ)
    front = multi_hardware_front(tasks, space.hw, objectives=OBJ)
    assert front.kept == (24, 24) and front.pairs == len(pairs)
    assert {_key(p.hw) for p in front.points} == want  # nothing dropped: the very front, ties and all
    for p in front.points:
        assert p.values == pairs[_key(p.hw)][0] and p.violations == {}


@pytest.mark.parametrize("exhaustive", [None, 0])
def test_proposed_pair_is_scored_and_no_point_exceeds_the_budget(folder, tasks, exhaustive):
    space = _space(folder)
    pairs, _, want = _brute_force(space, tasks, LIMITS, OBJ)
    # The proposal's first sub-accelerator is one that another dominates for task 0 on every value
    # and on its usage (so the reduction drops it), the second the smallest that fits beside it.
    costs = _sub_costs(space.hw.pool, tasks, lambda i, t: ACCURACY[i][t.bits.weight])[0]
    dominated = [k for k, c in costs.items()
                 if any(_dominates(d, c, OBJ) and d["pes"] <= c["pes"] and d["bw"] <= c["bw"]
                        for d in costs.values())]
    first = json.loads(dominated[0])
    proposed = {SUBS_KEY: [first, {"template": "tiny_os", "pe_array.rows": 4, "pe_array.cols": 8,
                                   "bandwidth.dram_bytes_per_cycle": 4.0, "bits.weight": 4}]}
    assert _key(proposed) in pairs and _key(proposed) not in want  # in budget, dominated
    kw = {} if exhaustive is None else {"exhaustive": exhaustive, "budget": 150, "pop_size": 20}
    front = multi_hardware_front(tasks, space.hw, objectives=OBJ, proposed=proposed, seed=3, **kw)
    assert front.mode == ("exhaustive" if exhaustive is None else "nsga2")
    assert front.proposed.hw == proposed
    assert front.proposed.values == pairs[_key(proposed)][0]
    assert front.proposed.violations == pairs[_key(proposed)][1]
    assert front.points
    for p in front.points:
        assert _key(p.hw) in pairs  # within the budget, by the templates' own rows, cols and bandwidth
        assert p.values == pairs[_key(p.hw)][0] and not p.violations
        space.hw.check(p.hw)
    if exhaustive is None:
        _check_front(front, pairs, want, OBJ)
    else:  # NSGA-II scored at most its budget; over-budget pairs it met are not points
        assert front.costed <= 150 + 1 and front.n_gen >= 2


def test_arguments_are_checked(folder, tasks):
    space = _space(folder)
    with pytest.raises(ValueError, match="1 task networks for 2 sub-accelerators"):
        multi_hardware_front(tasks[:1], space.hw)
    with pytest.raises(ValueError, match="'accuracy' is an objective but accuracy_of is None"):
        multi_hardware_front([tasks[0], TaskNetwork(tasks[1].workload)], space.hw)
    with pytest.raises(TypeError, match="expected a multi-accelerator space"):
        multi_hardware_front(tasks, space.hw.pool)
    too_big = {SUBS_KEY: [{"template": "tiny_ws", "pe_array.rows": 16}] * 2}
    with pytest.raises(ValueError, match="the budget is 192 PEs"):
        multi_hardware_front(tasks, space.hw, proposed=too_big)


@pytest.fixture(scope="module")
def evaluated(folder):
    space = _space(folder)
    data = load_dataset("digits", seed=0, limit=300)
    ev = TrainCostEvaluator(space, data, OBJ, epochs=2, lr=0.05)
    cand = space.sample(np.random.default_rng(4))
    return space, data, ev, cand, ev.evaluate(cand, 0)


def test_evaluator_members_are_the_brute_force_front_of_the_trained_networks(evaluated):
    """The members of a multi-task result: the brute-force front of its two trained networks, their
    accuracy measured by quantized_accuracy on the stored weights at each sub-accelerator's bits."""
    space, data, ev, cand, res = evaluated
    archs, _ = space.resolve(cand)
    tasks, acc = [], {}
    for i, (key, arch, geno) in enumerate(zip(res.metrics["training"], archs, space.task_archs(cand))):
        rec, model = ev._store.get(key), ev.load_trained(key)
        plan = plan_network(arch, geno["cell"], data.input_shape, data.num_classes)
        tasks.append(TaskNetwork(plan_workload(plan, name=f"t{i}"), rec.spike_rates if plan.spiking else {}))
        for w in (4, 8):
            acc[i, w] = quantized_accuracy(model, data, Precision(w, 8, 16 if plan.spiking else None),
                                           seed=rec.inputs["seed"])
    assert acc[0, 4] != acc[0, 8] or acc[1, 4] != acc[1, 8]  # the bits matter to some task
    pairs, _, want = _brute_force(space, tasks, LIMITS, OBJ, accuracy=lambda i, t: acc[i, t.bits.weight])
    own = space.hw.complete(cand.hw)
    assert res.objectives == pairs[_key(own)][0] and res.violations == pairs[_key(own)][1]
    members = {_key(m["hw"]): m for m in res.members}
    assert _key(own) not in members and set(members) <= want
    reported = [m["objectives"] for m in res.members] + ([res.objectives] if _key(own) in want else [])
    assert {tuple(v[o] for o in OBJ) for v in reported} == {tuple(pairs[k][0][o] for o in OBJ) for k in want}
    for k, m in members.items():
        assert m["objectives"] == pairs[k][0] and m["status"] == "ok" and m["violations"] == {}
        subs = [space.hw.pool.resolve(s)[0] for s in m["hw"][SUBS_KEY]]
        assert m["metrics"]["pes"] == sum(t.pe_array.rows * t.pe_array.cols for t in subs) <= BUDGET[0]
        assert m["metrics"]["dram_bytes_per_cycle"] == sum(t.bandwidth.dram_bytes_per_cycle for t in subs)
        assert m["metrics"]["task_accuracy"] == [acc[i, t.bits.weight] for i, t in enumerate(subs)]
        per = m["metrics"]["tasks"]
        assert [(t["task"], t["template"], t["pes"]) for t in per] == [
            (i, s.name, s.pe_array.rows * s.pe_array.cols) for i, s in enumerate(subs)]
        assert max(t["latency"] for t in per) == m["objectives"]["latency"]
        assert per[0]["energy"] + per[1]["energy"] == m["objectives"]["energy"]
        space.check(Candidate.make(cand.arch, m["hw"]))
    info = res.metrics["hw_front"]
    assert info["mode"] == "exhaustive" and info["configurations"] == [24, 24] and info["feasible"]
    assert info["front"] == len(res.members) + (_key(own) in want)


def test_without_the_inner_loop_only_the_proposed_partition_is_costed(evaluated, folder):
    space, data, ev, cand, res = evaluated
    off = TrainCostEvaluator(space, data, OBJ, epochs=2, lr=0.05, hw_inner=False)
    r = off.evaluate(cand, 0)
    assert r.members == () and "hw_front" not in r.metrics and r.objectives == res.objectives
