"""The hardware inner loop: a network's front over an accelerator space, against brute force.

Brute force here is plain loops over ``itertools.product`` of each template's choices,
``CostModel(resolve(...)).cost(...).total()`` per configuration, ``check_limits`` and a
quadratic dominance loop: none of it goes through the loop's enumeration, batching or
non-dominated sorting.
"""
from __future__ import annotations

import itertools

import pytest

from nasco.dsl import (
    HW_KINDS,
    TEMPLATE_KEY,
    AcceleratorSet,
    builtin_names,
    load_energy_table,
    load_file,
    load_spec,
    parse_overrides,
    resolve,
    search_dimensions,
)
from nasco.evaluate import check_limits, hardware_front
from nasco.hw import ENERGY_PARTS, CostModel, Layer, Workload, cost_configurations
from nasco.space import hw_space

MAC = """schema: 1
kind: accelerator
name: mac_small
dataflow: {choice: [ws, os]}
pe_array: {rows: {choice: [4, 8]}, cols: {choice: [4, 8]}}
buffers: {ifmap_kb: {choice: [1, 16]}, filter_kb: 4, ofmap_kb: 4}
bandwidth: {dram_bytes_per_cycle: {choice: [2, 8]}}
clock_mhz: {choice: [100, 400]}
bits: {weight: {choice: [8, 16]}, activation: {choice: [8, 16]}, accumulator: 32, membrane: 16}
technology: horowitz_45nm
"""
SOP = """schema: 1
kind: accelerator
name: sop_small
dataflow: ws
pe_array: {rows: {choice: [4, 8]}, cols: 4}
pe: {type: sop, skip_zero_spikes: {choice: [false, true]}}
buffers: {ifmap_kb: 4, filter_kb: 4, ofmap_kb: 4, membrane_kb: {choice: [1, 2]}}
bandwidth: {dram_bytes_per_cycle: 4}
clock_mhz: 200
bits: {weight: 8, activation: 8, accumulator: 16, membrane: {choice: [8, 16]}}
technology: horowitz_45nm
"""
# 256 + 16 configurations. The area spec cuts the fastest configuration (8x8 os at 400 MHz,
# 0.068 mm2), which is on the unconstrained front; the latency spec cuts the slowest spiking one.
SET = """schema: 1
kind: accelerator_set
name: small_set
members: [mac_small.yaml, sop_small.yaml]
default: mac_small
specs:
  latency: {{max: "{latency}"}}
  area: {{max: "0.06 mm2"}}
"""
# A conv on the image, its LIF neurons, a spiking linear layer over two timesteps.
WORKLOAD = Workload((Layer("conv1", "conv", 10, 10, 3, 3, 3, 16, 1),
                     Layer("n1", "neuron", timesteps=2, elements=1024),
                     Layer("fc", "linear", channels=1024, num_filters=10, spiking_input=True, timesteps=2)),
                    name="tiny")
RATES = {"fc": 0.2}
OBJECTIVES = ("accuracy", "energy", "latency", "area")


def accuracy(precision: tuple[int, int, int]) -> float:
    w, a, m = precision
    return 0.5 + w / 100 + a / 1000 + m / 10_000


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hwfront")
    (folder / "mac_small.yaml").write_text(MAC)
    (folder / "sop_small.yaml").write_text(SOP)
    (folder / "small_set.yaml").write_text(SET.format(latency="0.1 ms"))
    (folder / "tight_set.yaml").write_text(SET.format(latency="1 us"))
    return folder


@pytest.fixture(scope="module")
def small(files):
    return hw_space(load_file(files / "small_set.yaml"))


# ---------------------------------------------------------------------- brute force
def brute_force(spec, workload=WORKLOAD, rates=RATES):
    """(hw, values, violations) of every configuration, costed one by one."""
    is_set = isinstance(spec, AcceleratorSet)
    members = [(n, spec.member(n)) for n in spec.templates] if is_set else [(None, spec)]
    rows = []
    for name, template in members:
        dims = search_dimensions(template)
        table = load_energy_table(template)
        for combo in itertools.product(*(c.options for c in dims.values())):
            values = dict(zip(dims, combo))
            resolved = resolve(template, values)
            total = CostModel(resolved, table).cost(workload, rates).total()
            v = {"energy": total["energy_j"], "latency": total["latency_s"], "area": total["area_mm2"]}
            violations = check_limits(v, template.limits())
            b = resolved.bits
            v["accuracy"] = accuracy((int(b.weight), int(b.activation), int(b.membrane)))
            rows.append(({TEMPLATE_KEY: name, **values} if name else values, v, violations))
    return rows


def dominates(a: dict, b: dict, objectives=OBJECTIVES) -> bool:
    """a at least as good as b everywhere and better somewhere (accuracy up, costs down)."""
    sign = {"accuracy": -1.0, "energy": 1.0, "latency": 1.0, "area": 1.0}
    no_worse = all(sign[o] * a[o] <= sign[o] * b[o] for o in objectives)
    better = any(sign[o] * a[o] < sign[o] * b[o] for o in objectives)
    return no_worse and better


def brute_front(rows, objectives=OBJECTIVES):
    feasible = [r for r in rows if not r[2]]
    return [r for r in feasible if not any(dominates(o[1], r[1], objectives) for o in feasible)]


def as_set(points) -> set:
    return {tuple(sorted(hw.items())) for hw in points}


# ---------------------------------------------------------------------- configurations()
@pytest.mark.parametrize("name", builtin_names("accelerator") + builtin_names("accelerator_set"))
def test_configurations_are_the_space_each_once(name):
    space = hw_space(load_spec(name))
    configs = list(space.configurations())
    assert len(configs) == space.size()
    assert len({tuple(sorted(c.items())) for c in configs}) == space.size()
    for c in configs[:: max(1, len(configs) // 200)]:
        space.check(c)


def test_configurations_of_a_set_follow_each_members_own_choices(small):
    configs = list(small.configurations())
    assert len(configs) == 256 + 16
    sop = [c for c in configs if c[TEMPLATE_KEY] == "sop_small"]
    assert set(sop[0]) == {TEMPLATE_KEY, "pe_array.rows", "pe.skip_zero_spikes", "buffers.membrane_kb",
                           "bits.membrane"}
    assert len(sop) == 16
    assert HW_KINDS  # the kinds the parametrised test above covers: accelerator and accelerator_set


# ---------------------------------------------------------------------- batched costing
@pytest.mark.parametrize("name", ["eyeriss_like", "nvdla_like", "shidiannao_like", "input_stationary",
                                  "sata_like"])
def test_cost_configurations_equals_the_cost_model_bit_for_bit(name):
    template = load_spec(name)
    table = load_energy_table(template)
    dims = search_dimensions(template)
    configs = [dict(zip(dims, combo)) for combo in itertools.product(*(c.options for c in dims.values()))]
    configs = configs[::7]  # every 7th: each structural group and every option of each choice
    out = cost_configurations(template, table, configs, WORKLOAD, RATES)
    for k, values in enumerate(configs):
        total = CostModel(resolve(template, values), table).cost(WORKLOAD, RATES).total()
        for part in ENERGY_PARTS:
            assert out[f"energy_{part}"][k] == total["energy"][part], (values, part)
        for key in ("cycles", "compute_cycles", "latency_s", "energy_j", "area_mm2", "utilization", "macs",
                    "ops"):
            assert out[key][k] == total[key], (values, key)


@pytest.mark.parametrize("name", ["zigzag_tpu_like", "zigzag_eyeriss_like"])
def test_cost_configurations_equals_the_cost_model_on_unrolled_arrays_and_fold_tiles(name):
    """The same on ZigZag's translations (an unrolled array; fold-sized tiles on both), with
    choices of the sized fields that change the tiles: buffers, bandwidth and bit widths."""
    overrides = parse_overrides(["buffers.ifmap_kb={choice: [16, 512]}",
                                 "buffers.filter_kb={choice: [64, 128]}",
                                 "bandwidth.dram_bytes_per_cycle={choice: [2, 8]}",
                                 "bits.weight={choice: [4, 8]}"])
    template = load_spec(name, overrides=overrides)
    table = load_energy_table(template)
    dims = search_dimensions(template)
    configs = [dict(zip(dims, combo)) for combo in itertools.product(*(c.options for c in dims.values()))]
    out = cost_configurations(template, table, configs, WORKLOAD, RATES)
    for k, values in enumerate(configs):
        total = CostModel(resolve(template, values), table).cost(WORKLOAD, RATES).total()
        for key in ("cycles", "compute_cycles", "latency_s", "energy_j", "area_mm2", "utilization"):
            assert out[key][k] == total[key], (values, key)
    assert len(set(out["latency_s"].tolist())) > 1


# ---------------------------------------------------------------------- the front
def test_exhaustive_front_equals_brute_force(files, small):
    rows = brute_force(load_file(files / "small_set.yaml"))
    expected = brute_front(rows)
    front = hardware_front(WORKLOAD, RATES, small, objectives=OBJECTIVES, accuracy_of=accuracy,
                           exhaustive=1000)
    assert front.mode == "exhaustive" and front.feasible
    assert front.costed == 272
    assert as_set(p.hw for p in front.points) == as_set(r[0] for r in expected)
    by_hw = {tuple(sorted(r[0].items())): r for r in rows}
    for p in front.points:
        _, values, violations = by_hw[tuple(sorted(p.hw.items()))]
        assert p.values == values
        assert p.objectives == {o: values[o] for o in OBJECTIVES}
        assert p.violations == violations == {}
    # the specs matter here: an infeasible configuration is on the front of all configurations
    infeasible = [r for r in rows if r[2]]
    assert any(not any(dominates(o[1], r[1]) for o in rows) for r in infeasible)


def test_accuracy_is_asked_once_per_precision(small):
    calls = []

    def counted(p):
        calls.append(p)
        return accuracy(p)

    front = hardware_front(WORKLOAD, RATES, small, accuracy_of=counted, exhaustive=1000)
    # mac_small: weight {8, 16} x activation {8, 16}, membrane 16; sop_small: 8, 8, membrane {8, 16}
    assert sorted(calls) == sorted([(8, 8, 16), (8, 16, 16), (16, 8, 16), (16, 16, 16), (8, 8, 8)])
    assert front.precisions == 5
    calls.clear()
    hardware_front(WORKLOAD, RATES, small, accuracy_of=counted, exhaustive=0, budget=120, pop_size=12, seed=0)
    assert len(calls) == len(set(calls))


def test_infeasible_configurations_are_never_on_the_front(files, small):
    front = hardware_front(WORKLOAD, RATES, small, objectives=("latency", "area"), exhaustive=1000)
    limits = load_file(files / "small_set.yaml").limits()
    assert front.points
    for p in front.points:
        assert check_limits(p.values, limits) == {}
        assert p.violations == {}


def test_nothing_feasible_gives_the_least_violating(files):
    space = hw_space(load_file(files / "tight_set.yaml"))
    rows = brute_force(load_file(files / "tight_set.yaml"))
    limits = load_file(files / "tight_set.yaml").limits()
    assert all(r[2] for r in rows)
    relative = [sum(v / limits[k] for k, v in r[2].items()) for r in rows]
    least = min(relative)
    expected = [r[0] for r, x in zip(rows, relative) if x == least]
    front = hardware_front(WORKLOAD, RATES, space, objectives=("energy",), exhaustive=1000)
    assert not front.feasible
    assert as_set(p.hw for p in front.points) == as_set(expected)
    assert all(p.violations for p in front.points)


def test_proposed_configuration_is_costed_and_reported(files, small):
    proposed = {TEMPLATE_KEY: "sop_small", "pe_array.rows": 8, "pe.skip_zero_spikes": True,
                "buffers.membrane_kb": 2.0, "bits.membrane": 16}
    rows = {tuple(sorted(r[0].items())): r for r in brute_force(load_file(files / "small_set.yaml"))}
    for kw in ({"exhaustive": 1000}, {"exhaustive": 0, "budget": 30, "pop_size": 10}):
        front = hardware_front(WORKLOAD, RATES, small, accuracy_of=accuracy, proposed=proposed, **kw)
        _, values, violations = rows[tuple(sorted(proposed.items()))]
        assert front.proposed.hw == proposed
        assert front.proposed.values == values
        assert front.proposed.violations == violations


def test_nsga2_is_seeded_and_starts_from_the_proposed_configuration(small):
    proposed = {TEMPLATE_KEY: "mac_small", "dataflow": "os", "pe_array.rows": 4, "pe_array.cols": 8,
                "buffers.ifmap_kb": 16.0, "bandwidth.dram_bytes_per_cycle": 2.0, "clock_mhz": 100.0,
                "bits.weight": 16, "bits.activation": 8}

    def run(seed):
        return hardware_front(WORKLOAD, RATES, small, accuracy_of=accuracy, proposed=proposed, exhaustive=0,
                              budget=100, pop_size=20, seed=seed)

    a, b, c = run(7), run(7), run(8)
    assert a.mode == "nsga2"
    assert [(p.hw, p.values) for p in a.points] == [(p.hw, p.values) for p in b.points]
    assert a.generations == b.generations
    assert a.generations != c.generations  # the seed is used
    assert a.generations[0][0] == proposed
    assert a.costed <= 100
    assert len(a.generations) == 5  # 20 new configurations a generation, 100 in all


def test_nsga2_front_is_non_dominated_among_what_it_costed(files, small):
    rows = {tuple(sorted(r[0].items())): r
            for r in brute_force(load_file(files / "small_set.yaml"))}
    front = hardware_front(WORKLOAD, RATES, small, accuracy_of=accuracy, exhaustive=0, budget=120,
                           pop_size=12, seed=1)
    costed = {tuple(sorted(hw.items())) for g in front.generations for hw in g}
    assert len(costed) == front.costed
    front_keys = as_set(p.hw for p in front.points)
    assert front_keys <= costed
    feasible = [rows[k] for k in costed if not rows[k][2]]
    assert front_keys == as_set(r[0] for r in brute_front(feasible))


def test_frame_has_a_row_per_front_configuration(small):
    front = hardware_front(WORKLOAD, RATES, small, objectives=("energy", "latency"), exhaustive=1000,
                           proposed={TEMPLATE_KEY: "mac_small"})
    frame = front.to_frame()
    assert len(frame) == len(front.points)
    assert {"hw.template", "hw.pe_array.rows", "hw.bits.membrane", "energy", "latency", "feasible",
            "proposed"} <= set(frame.columns)
    assert frame["feasible"].all()


def test_bad_arguments(small, files):
    with pytest.raises(ValueError, match="unknown objective 'power'"):
        hardware_front(WORKLOAD, RATES, small, objectives=("power",))
    with pytest.raises(ValueError, match="accuracy_of is None"):
        hardware_front(WORKLOAD, RATES, small, objectives=("accuracy", "energy"))
    with pytest.raises(ValueError, match="is not one of"):
        hardware_front(WORKLOAD, RATES, small, objectives=("energy",), proposed={TEMPLATE_KEY: "nope"})
    with pytest.raises(TypeError, match="multi-accelerator"):
        hardware_front(WORKLOAD, RATES, hw_space(load_spec("hetero_2task")), objectives=("energy",))
