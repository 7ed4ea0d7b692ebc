"""The timestep loop order of spiking (sop) templates, ``pe.timestep_loop``: the default (inner)
gives the costs of the model before the choice, bit for bit; the tiling rules of both orders on
hand-computed layers, at the edge of each buffer and one element over; outer's DRAM weight
refetch and membrane spill; the vectorised paths and the hardware inner loop agree with
CostModel; the DSL rejects outer on MAC-only templates."""
from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from nasco.dsl import SpecError, load_energy_table, load_spec, resolve, search_dimensions
from nasco.hw import CostModel, Layer, Workload, cost_configurations

FIXTURES = Path(__file__).parent / "fixtures"
_RAW = load_spec("sata_like")
_TABLE = load_energy_table(_RAW)
KIB = 8 * 1024
E_DRAM = _TABLE.energy_j("dram_bit")
E_SRAM_R, E_SRAM_W = _TABLE.energy_j("sram_read_bit"), _TABLE.energy_j("sram_write_bit")
MB = 8  # sata_like's default membrane width
E_LIF = 2 * _TABLE.energy_j("add_8b") * MB / 8  # integrate + compare, one add each at membrane width
T = 4


def template(dataflow: str = "ws", loop: str = "inner", **buffers):
    """sata_like on 8x8 PEs with the given dataflow (is set on the resolved template: sata_like
    offers ws and os), loop order and buffer sizes in KiB (any size, not only the offered ones)."""
    flow = "os" if dataflow == "os" else "ws"
    t = resolve(_RAW, {"pe_array.rows": 8, "pe_array.cols": 8, "dataflow": flow})
    return dataclasses.replace(t, dataflow=dataflow, pe=dataclasses.replace(t.pe, timestep_loop=loop),
                               buffers=dataclasses.replace(t.buffers, **buffers))


def cost(workload: Workload, dataflow: str = "ws", loop: str = "inner", **buffers):
    return CostModel(template(dataflow, loop, **buffers), _TABLE).cost(workload)


def one(layer: Layer) -> Workload:
    return Workload((layer,), name="w")


# ---------------------------------------------------------------------- inner: today's costs
def _gen():
    spec = importlib.util.spec_from_file_location("loop_inner_gen", FIXTURES / "loop_inner_gen.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_sata_like_runs_the_timestep_loop_inner_by_default(tmp_path):
    assert resolve(_RAW, {}).pe.timestep_loop == "inner"
    # a template that leaves the key out runs it inner too
    path = tmp_path / "plain_sop.yaml"
    path.write_text(LOOP_SOP.replace("timestep_loop: {choice: [inner, outer]}", "skip_zero_spikes: false"))
    assert load_spec(path).pe.timestep_loop == "inner"
    assert "pe.timestep_loop" not in search_dimensions(_RAW)  # SATA's order: fixed, searchable by --set


def test_inner_gives_the_costs_of_the_model_before_the_choice_bit_for_bit():
    """loop_inner_costs.json holds per-layer cycles and energies (float.hex) written by the cost
    model of commit 017410d, before templates had ``timestep_loop`` (tests/hw/fixtures/
    loop_inner_gen.py, run at that commit): sata_like under ws, os and is, dense, aer and
    run-length-coded spikes, with and without zero skipping, on darts_snn networks and a VGG-like
    stack whose weights exceed the filter buffer; cost_many and cost_configurations as well."""
    gen = _gen()
    data = json.loads((FIXTURES / "loop_inner_costs.json").read_text())
    workloads = {name: Workload(tuple(Layer(**la) for la in layers), name=name)
                 for name, layers in data["workloads"].items()}
    rows = data["rows"]
    assert len(rows) == 54 and sum("configurations" in r for r in rows) == 30
    for row in rows:
        t = gen.template(row["config"], row["dataflow"])
        assert t.pe.timestep_loop == "inner"
        wl = workloads[row["workload"]]
        names = [la.name for la in wl.layers if la.spiking_input or la.kind == "neuron"]
        rates = None if row["rate"] is None else dict.fromkeys(names, row["rate"])
        rep = CostModel(t, _TABLE).cost(wl, rates)
        where = (row["config"], row["dataflow"], row["workload"], row["rate"])
        assert gen.hexes(rep.cycles) == row["cycles"], where
        assert {k: gen.hexes(v) for k, v in rep.energy.items()} == row["energy"], where
        many_j = CostModel(t, _TABLE).cost_many([wl], [rates])["energy_j"]
        assert gen.hexes(many_j) == row["cost_many_energy_j"], where
        if "configurations" in row:
            many = cost_configurations(_RAW, _TABLE, [row["config"]], wl, rates)
            got = {k: gen.hexes(many[k]) for k in ("energy_j", "latency_s", "cycles")}
            assert got == row["configurations"], where


# ---------------------------------------------------------------------- tiling: the ifmap buffer
# ws on 8x8 PEs: a 1x1 conv of 8 channels to 8 filters on a 16x16 map is one fold holding the
# window's 8 rows; it streams the 256 pixels: 8 x 256 = 2048 input words per timestep, 1 bit each.
WS_CONV = Layer("c", "conv", 16, 16, 1, 1, 8, 8, spiking_input=True, timesteps=T)
WS_WORDS = 8 * 256


def test_inner_needs_the_T_input_maps_of_a_ws_tile_in_the_ifmap_buffer():
    need = WS_WORDS * T  # 8192 bits, 1 KiB
    edge = cost(one(WS_CONV), ifmap_kb=need / KIB)
    assert edge.infeasible == () and edge.tiling_excess == 0.0
    assert edge.assumptions["timestep_loop"] == "inner" and "tiling_infeasible" not in edge.assumptions
    over = cost(one(WS_CONV), ifmap_kb=(need - T) / KIB)  # one input element (its T spikes) short
    assert len(over.infeasible) == 1 and over.tiling_excess > 0
    assert over.infeasible[0] == (
        "layer 'c': timestep_loop inner on ws (8x8 PEs) needs 8192 bits of the ifmap buffer (2048 input "
        "words of one fold x 4 timesteps); the template has 8188 bits (0.999512 KiB)")
    assert over.assumptions["tiling_infeasible"] == list(over.infeasible)
    # two such layers: the workload's excess is the worst layer's, in cost_many as in cost
    twice = Workload((WS_CONV, dataclasses.replace(WS_CONV, name="d")), name="w2")
    model = CostModel(template(ifmap_kb=(need - T) / KIB), _TABLE)
    rep = model.cost(twice)
    assert len(rep.infeasible) == 2 and rep.tiling_excess == over.tiling_excess
    assert model.cost_many([twice, one(WS_CONV)])["tiling_excess"].tolist() == [over.tiling_excess] * 2
    # the tile's layer is costed all the same, as at the edge (residency of the whole input aside)
    assert float(over.energy["compute"][0]) == float(edge.energy["compute"][0])


def test_outer_needs_one_timestep_of_the_tile():
    assert cost(one(WS_CONV), loop="outer", ifmap_kb=(WS_WORDS * T - T) / KIB).infeasible == ()
    assert cost(one(WS_CONV), loop="outer", ifmap_kb=WS_WORDS / KIB).infeasible == ()
    over = cost(one(WS_CONV), loop="outer", ifmap_kb=(WS_WORDS - 1) / KIB)
    assert over.infeasible == (
        "layer 'c': timestep_loop outer on ws (8x8 PEs) needs 2048 bits of the ifmap buffer (2048 input "
        "words of one fold x 1 timestep); the template has 2047 bits (0.249878 KiB)",)


def test_inner_os_tile_streams_the_window_of_its_rows_pixels():
    """os on 8x8 PEs: a 3x3 conv of 2 channels to 8 filters on a padded 6x6 map has 16 output
    pixels; a fold holds 8 of them on its rows and streams their 3*3*2 = 18 window values."""
    conv = Layer("c", "conv", 6, 6, 3, 3, 2, 8, spiking_input=True, timesteps=T)
    need = 8 * 18 * T  # 576 bits
    assert cost(one(conv), "os", ifmap_kb=need / KIB).infeasible == ()
    over = cost(one(conv), "os", ifmap_kb=(need - T) / KIB).infeasible
    assert len(over) == 1 and "needs 576 bits of the ifmap buffer (144 input words" in over[0]


def test_the_tile_of_a_sparse_format_is_charged_at_its_bits_per_element():
    """AER with 4-bit addresses at rate 1/4: 1 bit per element, as a dense map; at rate 1/2, 2."""
    t = dataclasses.replace(template(ifmap_kb=WS_WORDS * T / KIB),
                            spikes=dataclasses.replace(_RAW.spikes, format="aer", address_bits=4))
    assert CostModel(t, _TABLE).cost(one(WS_CONV), {"c": 0.25}).infeasible == ()
    half = CostModel(t, _TABLE).cost(one(WS_CONV), {"c": 0.5})
    assert len(half.infeasible) == 1 and "needs 16384 bits of the ifmap buffer" in half.infeasible[0]


# ---------------------------------------------------------------------- tiling: the membranes
# is on 8x8 PEs: a 1x1 conv of 8 channels to 16 filters on a 4x4 map holds 8 of its 16 pixels'
# inputs (the window's 8 rows) and streams the 16 filters: the fold's outputs are 8 x 16 = 128
# neurons, whose membranes (8 bits) wait in the membrane buffer between the fold's timesteps.
def fused_is(output_bits: int = 1) -> Workload:
    return Workload((Layer("c", "conv", 4, 4, 1, 1, 8, 16, spiking_input=True, timesteps=T,
                           output_bits=output_bits),
                     Layer("n", "neuron", timesteps=T, elements=16 * 16)), name="w")


def test_inner_needs_a_folds_membranes_in_the_membrane_buffer():
    need = 8 * 16 * MB  # 1024 bits
    assert cost(fused_is(), "is", membrane_kb=need / KIB).infeasible == ()
    over = cost(fused_is(), "is", membrane_kb=(need - MB) / KIB)  # one membrane short
    assert over.infeasible == (
        "layer 'c': timestep_loop inner on is (8x8 PEs) needs 1024 bits of the membrane buffer (the "
        "membranes of one fold's 128 output neurons x 8 bits); the template has 1016 bits (0.124023 KiB)",)
    # os: the fold's 8 pixels x 8 filters; ws: one membrane per LIF unit, in its register
    assert cost(fused_is(), "os", membrane_kb=8 * 8 * MB / KIB).infeasible == ()
    assert len(cost(fused_is(), "os", membrane_kb=(8 * 8 * MB - MB) / KIB).infeasible) == 1
    assert cost(fused_is(), "ws", membrane_kb=MB / KIB).infeasible == ()
    # a conv whose output is not fused keeps no membranes; outer spills instead of refusing
    assert cost(fused_is(output_bits=0), "is", membrane_kb=(need - MB) / KIB).infeasible == ()
    assert cost(fused_is(), "is", "outer", membrane_kb=(need - MB) / KIB).infeasible == ()


def test_without_a_membrane_buffer_the_ofmap_buffer_holds_the_membranes():
    need = 8 * 16 * MB
    assert cost(fused_is(), "is", membrane_kb=None, ofmap_kb=need / KIB).infeasible == ()
    over = cost(fused_is(), "is", membrane_kb=None, ofmap_kb=(need - MB) / KIB).infeasible
    assert len(over) == 1 and "of the membrane buffer" in over[0]


def test_mac_templates_are_never_tiled_by_the_loop_order():
    t = template(ifmap_kb=1 / KIB)
    t = dataclasses.replace(t, pe=dataclasses.replace(t.pe, type="mac"))
    rep = CostModel(t, _TABLE).cost(one(WS_CONV))
    assert rep.infeasible == () and rep.tiling_excess == 0.0 and "timestep_loop" not in rep.assumptions


# ---------------------------------------------------------------------- outer: DRAM
# A 1x1 conv of 64 channels to 64 filters on a 4x4 map, T = 4, its output 8-bit currents:
# weights 64 * 64 * 8 = 32768 bits; input 16 * 64 = 1024 one-bit elements per timestep (fits the
# 32 KiB ifmap buffer for all T timesteps); output 16 * 64 * 8 bits per timestep.
BIG_W = Layer("c", "conv", 4, 4, 1, 1, 64, 64, spiking_input=True, timesteps=T)
W_BITS, I_BITS, O_BITS = 64 * 64 * 8, 16 * 64, 16 * 64 * 8


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_outer_fetches_weights_that_do_not_fit_once_per_timestep(dataflow):
    small = W_BITS / 2 / KIB  # the filter buffer holds half the weights
    inner = cost(one(BIG_W), dataflow, filter_kb=small)
    outer = cost(one(BIG_W), dataflow, "outer", filter_kb=small)
    assert float(inner.energy["dram"][0]) == (W_BITS + I_BITS * T + O_BITS * T) * E_DRAM
    assert float(outer.energy["dram"][0]) == (W_BITS * T + I_BITS * T + O_BITS * T) * E_DRAM
    # weights that fit are fetched once under either order
    for loop in ("inner", "outer"):
        fits = cost(one(BIG_W), dataflow, loop, filter_kb=W_BITS / KIB)
        assert float(fits.energy["dram"][0]) == (W_BITS + I_BITS * T + O_BITS * T) * E_DRAM


def test_outer_reads_a_weight_stationary_folds_weights_once_per_timestep():
    """ws loads each weight into the array once (64 * 64 filter SRAM reads); inner keeps it for
    all T timesteps, outer loads it again each timestep: (T - 1) x 32768 bits more SRAM reads."""
    inner, outer = cost(one(BIG_W)), cost(one(BIG_W), loop="outer")
    extra = float(outer.energy["sram"][0]) - float(inner.energy["sram"][0])
    # measured: 0 relative error on this machine (the difference of two sums of exact products);
    # 1e-12 leaves room for another rounding of the sums
    assert extra == pytest.approx(64 * 64 * 8 * (T - 1) * E_SRAM_R, rel=1e-12)
    assert cost(one(BIG_W), "os").energy["sram"][0] == cost(one(BIG_W), "os", "outer").energy["sram"][0]


# ---------------------------------------------------------------------- outer: membranes
# A fused 1x1 conv (8 -> 8 channels, 16x16 map) and its LIF of 8 * 256 = 2048 neurons: their
# membranes take 2048 * 8 = 16384 bits, 2 KiB.
def fused_ws() -> Workload:
    return Workload((Layer("c", "conv", 16, 16, 1, 1, 8, 8, spiking_input=True, timesteps=T, output_bits=1),
                     Layer("n", "neuron", timesteps=T, elements=2048)), name="w")


MEM_BITS = 2048 * MB


def test_outer_spills_membranes_that_do_not_fit_to_dram_and_back_each_timestep():
    spill = cost(fused_ws(), loop="outer", membrane_kb=(MEM_BITS - MB) / KIB)  # one membrane short
    assert float(spill.energy["dram"][1]) == 2 * MEM_BITS * T * E_DRAM
    assert float(spill.energy["neuron"][1]) == pytest.approx(2048 * E_LIF * T, rel=1e-12)  # no SRAM
    fits = cost(fused_ws(), loop="outer", membrane_kb=MEM_BITS / KIB)
    assert float(fits.energy["dram"][1]) == 0.0
    # a buffer read and write of each membrane per update; measured relative error 0, margin 1e-12
    assert float(fits.energy["neuron"][1]) == pytest.approx(2048 * (E_LIF + MB * (E_SRAM_R + E_SRAM_W)) * T,
                                                            rel=1e-12)
    # inner keeps them in the LIF units' registers (ws): never in DRAM, whatever the buffer
    assert float(cost(fused_ws(), membrane_kb=(MEM_BITS - MB) / KIB).energy["dram"][1]) == 0.0
    assert spill.infeasible == fits.infeasible == ()


# ---------------------------------------------------------------------- the vectorised paths
def stack() -> Workload:
    """Weights over the 64 KiB filter buffer (128 * 128 * 9 bytes), membranes over 1 KiB, a lone
    neuron layer, a pool and an add feeding a fused LIF."""
    return Workload((
        Layer("c1", "conv", 18, 18, 3, 3, 1, 64, timesteps=1, output_bits=1),
        Layer("n1", "neuron", timesteps=T, elements=64 * 256),
        Layer("c2", "conv", 18, 18, 3, 3, 64, 128, spiking_input=True, timesteps=T, output_bits=1),
        Layer("n2", "neuron", timesteps=T, elements=128 * 256),
        Layer("p", "pool", 16, 16, 2, 2, 128, 128, 2, spiking_input=True, timesteps=T, output_bits=1),
        Layer("c3", "conv", 10, 10, 3, 3, 128, 128, spiking_input=True, timesteps=T),
        Layer("n3", "neuron", timesteps=T, elements=128 * 64),
        Layer("sum", "add", elements=128 * 64, operands=2, timesteps=T, output_bits=1),
        Layer("n4", "neuron", timesteps=T, elements=128 * 64),
        Layer("fc", "linear", 1, 1, 1, 1, 128 * 64, 10, spiking_input=True, timesteps=T)), name="stack")


def test_cost_configurations_and_cost_many_equal_cost_model_under_both_orders():
    raw = load_spec("sata_like", overrides={("pe", "timestep_loop"): {"choice": ["inner", "outer"]}})
    assert search_dimensions(raw)["pe.timestep_loop"].default == "inner"
    configs = [{"pe.timestep_loop": loop, "dataflow": df, "pe_array.rows": 32, "buffers.filter_kb": 64,
                "buffers.ifmap_kb": kb, "buffers.membrane_kb": mkb}
               for loop in ("inner", "outer") for df in ("ws", "os") for kb in (16, 64) for mkb in (1, 4)]
    wl = stack()
    rates = {"c2": 0.1, "c3": 0.2, "fc": 0.05, "p": 0.1}
    many = cost_configurations(raw, _TABLE, configs, wl, rates)
    excess = []
    for k, config in enumerate(configs):
        model = CostModel(resolve(raw, config), _TABLE)
        rep = model.cost(wl, rates)
        tot = rep.total()
        for key in ("cycles", "compute_cycles", "latency_s", "energy_j", "utilization", "ops", "area_mm2"):
            assert many[key][k] == tot[key], (config, key)
        for part, value in tot["energy"].items():
            assert many[f"energy_{part}"][k] == value, (config, part)
        assert many["tiling_excess"][k] == rep.tiling_excess
        assert (rep.tiling_excess > 0) == bool(rep.infeasible)
        assert model.cost_many([wl], [rates])["tiling_excess"][0] == rep.tiling_excess
        excess.append(rep.tiling_excess)
    # the orders differ where they should: outer refetches c3's weights and spills membranes
    inner, outer = many["energy_dram"][:8], many["energy_dram"][8:]
    assert (outer > inner).all()
    # inner on a 16 KiB ifmap buffer cannot hold an os tile of c3's T maps (32 pixels x 1152 window
    # values x 4 timesteps = 147456 bits > 131072); a 64 KiB buffer can, and so can outer
    assert [e > 0 for e in excess[:8]] == [False, False, False, False, True, True, False, False]
    assert all(e == 0 for e in excess[8:])


# ---------------------------------------------------------------------- the DSL
def test_the_dsl_rejects_outer_on_mac_only_templates_and_unknown_orders():
    with pytest.raises(SpecError) as err:
        load_spec("nvdla_like", overrides={("pe", "timestep_loop"): "outer"})
    assert err.value.path == ("pe", "timestep_loop") and "sop" in str(err.value)
    with pytest.raises(SpecError) as err:
        load_spec("nvdla_like", overrides={("pe", "timestep_loop"): {"choice": ["inner", "outer"]}})
    assert err.value.path == ("pe", "timestep_loop")
    assert load_spec("nvdla_like", overrides={("pe", "timestep_loop"): "inner"}).pe.timestep_loop == "inner"
    with pytest.raises(SpecError) as err:
        load_spec("sata_like", overrides={("pe", "timestep_loop"): "sideways"})
    assert err.value.path == ("pe", "timestep_loop") and "inner" in str(err.value)
    assert load_spec("sata_like", overrides={("pe", "timestep_loop"): "outer"}).pe.timestep_loop == "outer"


# ---------------------------------------------------------------------- infeasible, not an error
LOOP_SOP = """schema: 1
kind: accelerator
name: loop_small
dataflow: ws
pe_array: {rows: 8, cols: 8}
pe: {type: sop, timestep_loop: {choice: [inner, outer]}}
buffers: {ifmap_kb: {choice: [0.5, 1]}, filter_kb: 4, ofmap_kb: 4, membrane_kb: 1}
bandwidth: {dram_bytes_per_cycle: 4}
clock_mhz: 200
bits: {weight: 8, activation: 8, accumulator: 16, membrane: 8}
technology: horowitz_45nm
"""


def test_the_hardware_loop_records_an_untileable_configuration_as_infeasible(tmp_path):
    """WS_CONV's ws tile needs 8192 bits (1 KiB) for its 4 timesteps under inner: the 0.5 KiB
    ifmap buffer cannot hold it, so that configuration is infeasible (violation ``tiling``,
    need / have - 1 = 1) and off the front; outer needs 2048 bits and is feasible on both."""
    from nasco.evaluate import hardware_front
    from nasco.evaluate._joint import tiling_violation
    from nasco.space import hw_space

    path = tmp_path / "loop_small.yaml"
    path.write_text(LOOP_SOP)
    space = hw_space(load_spec(path))
    wl = one(WS_CONV)
    small_inner = {"pe.timestep_loop": "inner", "buffers.ifmap_kb": 0.5}
    front = hardware_front(wl, None, space, objectives=("energy", "latency"), proposed=small_inner)
    assert front.proposed.violations == {"tiling": 1.0}
    rep = CostModel(resolve(load_spec(path), small_inner), _TABLE).cost(wl)
    assert tiling_violation(rep) == {"tiling": 1.0} and len(rep.infeasible) == 1
    assert front.feasible and all(p.violations == {} for p in front.points)
    assert small_inner not in [p.hw for p in front.points]
    fine = CostModel(resolve(load_spec(path), {"pe.timestep_loop": "outer", "buffers.ifmap_kb": 0.5}),
                     _TABLE).cost(wl)
    assert tiling_violation(fine) == {}


STEM_REASON = ("layer 'stem.conv': timestep_loop inner on ws (16x8 PEs) needs 4608 bits of the ifmap buffer "
               "(576 input words of one fold x 1 timestep); the template has 409.6 bits (0.05 KiB)")


def _untileable_space():
    """A small darts_snn space on sata_like (ws, 16x8 PEs) with a 0.05 KiB ifmap buffer."""
    from nasco.space import SearchSpace

    tiny = {("macro", "cells"): 1, ("macro", "stem", "channels"): 8, ("macro", "reductions"): [],
            ("timesteps",): 2, ("cell", "pool_bn"): False}
    fixed = {("pe_array", "rows"): 16, ("pe_array", "cols"): 8, ("buffers", "ifmap_kb"): 0.05,
             ("buffers", "filter_kb"): 144, ("buffers", "ofmap_kb"): 32, ("buffers", "membrane_kb"): 4,
             ("bandwidth", "dram_bytes_per_cycle"): 16, ("pe", "skip_zero_spikes"): False,
             ("clock_mhz",): 400, ("bits", "membrane"): 8, ("dataflow",): "ws"}
    return SearchSpace(load_spec("darts_snn", overrides=tiny), load_spec("sata_like", overrides=fixed))


def test_a_searched_candidate_that_cannot_be_tiled_is_recorded_infeasible_not_failed():
    """The train evaluator costs a darts_snn candidate on sata_like with a 0.05 KiB (409.6-bit)
    ifmap buffer: its directly encoded stem (3x3 conv on the padded 10x10 digit, bit-serial at 8
    bits, run once) needs min(16, 9) x 64 = 576 input words x 8 bits = 4608 bits for one ws tile.
    The result is infeasible with the ``tiling`` violation and the layers' reasons in its
    metrics; its objectives are still scored."""
    from nasco.evaluate import TrainCostEvaluator
    from nasco.evaluate._data import load_dataset

    space = _untileable_space()
    ev = TrainCostEvaluator(space, load_dataset("digits", seed=0, limit=200), ("accuracy", "energy"),
                            epochs=1, lr=0.05, hw_inner=False)
    res = ev.evaluate(space.sample(np.random.default_rng(0)), 0)
    assert res.status == "infeasible" and set(res.violations) == {"tiling"}
    assert res.metrics["tiling_infeasible"][0] == STEM_REASON
    assert res.violations["tiling"] == res.metrics["tiling_excess"] == 4608 / 409.6 - 1
    assert res.objectives["energy"] > 0


def test_the_proxy_evaluator_records_it_too():
    from nasco.evaluate import ProxyEvaluator
    from nasco.evaluate._data import load_dataset

    space = _untileable_space()
    ev = ProxyEvaluator(space, load_dataset("digits", seed=0, limit=120), ("sahd", "energy"), batch_size=16)
    res = ev.evaluate(space.sample(np.random.default_rng(0)), 0)
    assert res.status == "infeasible" and res.violations == {"tiling": 4608 / 409.6 - 1}
    assert res.metrics["tiling_infeasible"][0] == STEM_REASON


def test_outer_loses_the_break_even_of_a_plain_conv_stack():
    """The README's figures: the 4-conv stack of test_spiking_template at T = 5 on sata_like
    (ws) breaks even with its 3-bit twin between 1 and 20 % inner, never outer, whose membranes
    (64 x 32 x 32 x 8 bits = 64 KiB per LIF layer) spill and whose DRAM traffic is four times
    inner's at a 10 % rate."""
    import math

    from nasco.hw import break_even_rate

    spec = importlib.util.spec_from_file_location("spiking_template", Path(__file__).with_name(
        "test_spiking_template.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    wl = module.plain_stack(5)
    names = [la.name for la in wl.layers if la.spiking_input and la.kind in ("conv", "linear")]
    by_loop = {}
    for loop in ("inner", "outer"):
        t = resolve(_RAW, {})
        t = dataclasses.replace(t, pe=dataclasses.replace(t.pe, timestep_loop=loop))
        by_loop[loop] = (break_even_rate(wl, t, _TABLE, against="quantised"),
                         CostModel(t, _TABLE).cost(wl, dict.fromkeys(names, 0.1)).total())
    (r_in, inner), (r_out, outer) = by_loop["inner"], by_loop["outer"]
    assert 0.01 <= r_in <= 0.20 and math.isnan(r_out)
    assert 4 * inner["energy"]["dram"] < outer["energy"]["dram"] < 5 * inner["energy"]["dram"]
    assert outer["energy_j"] > 2 * inner["energy_j"]
