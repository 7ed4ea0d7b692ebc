"""The spiking (sop) path of the cost model on search_spaces/sata_like.yaml: hand-computed
cycles, accumulate, register, buffer, DRAM and membrane energies of small layers (the rules
are documented in CostModel._sop_traffic and _layer_costs), the fused-LIF flags of
workloads and plans, and the break-even spike rates against the 3-bit twin on MAC PEs."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from nasco.dsl import load_energy_table, load_spec, resolve
from nasco.hw import CostModel, Layer, Workload
from nasco.hw._snn import (
    ann_template, ann_twin, break_even_rate, compare, quantised_template, snn_timesteps,
)

pJ = 1e-12
# horowitz_45nm.yaml
E_ADD8, E_REG, E_SRAM, E_DRAM = 0.03 * pJ, 0.02875 * pJ, 0.3125 * pJ, 20.3 * pJ
# sata_like.yaml bits: weight 8, activation 8, accumulator 16, membrane 8 (the default)
WB, AB, ACC, MB = 8, 8, 16, 8
E_LIF = 2 * E_ADD8 * MB / 8  # integrate + compare, one add each at membrane width

_RAW = load_spec("sata_like")
_TABLE = load_energy_table(_RAW)
SMALL = {"pe_array.rows": 8, "pe_array.cols": 8, "buffers.membrane_kb": 1}


def template(**values):
    return resolve(_RAW, {**SMALL, **{k.replace("__", "."): v for k, v in values.items()}})


def model(**values) -> CostModel:
    return CostModel(template(**values), _TABLE)


def approx(x):
    return pytest.approx(x, rel=1e-12, abs=1e-30)


T = 3


def conv(fused: bool, spiking: bool = True, steps: int = T) -> Layer:
    """A 1x1 conv, 8 -> 8 channels on a 4x4 map: 1024 MACs per pass. Under ws on 8x8 PEs it is
    one fold (window 8 on the rows, 8 filters on the columns, 16 pixels streamed): SCALE-Sim
    cycles 16 + 2*8 + 8 - 2 - 1 = 37; SRAM: 8*16 = 128 ifmap reads, 64 filter reads, 128
    ofmap writes."""
    return Layer("c", "conv", 4, 4, 1, 1, 8, 8, spiking_input=spiking, timesteps=steps,
                 output_bits=int(fused))


LIF = Layer("n", "neuron", timesteps=T, elements=128)
MACS, CYC, IF_R, F_R, OF_W = 1024, 37, 128, 64, 128


def pair(fused: bool, **kw) -> Workload:
    return Workload((conv(fused, **kw), LIF))


def by_layer(rep, part):
    return [float(x) for x in rep.energy[part]]


# ---------------------------------------------------------------------- template
def test_sata_like_defaults_and_its_ann_twin_template():
    t = resolve(_RAW, {})
    assert (t.pe.type, t.pe.skip_zero_spikes, t.dataflow) == ("sop", False, "ws")
    assert (t.pe_array.rows, t.pe_array.cols, t.clock_mhz) == (16, 8, 400)
    assert (t.bits.weight, t.bits.accumulator, t.bits.membrane) == (8, 16, 8)
    assert (t.buffers.ifmap_kb, t.buffers.filter_kb, t.buffers.ofmap_kb) == (32, 144, 32)
    a = ann_template(t)
    assert a.pe.type == "mac" and dataclasses.replace(a, pe=t.pe) == t
    assert a.source == t.source and ann_template(a) is a
    assert "and_gate" not in _TABLE.energy  # the AND is charged as part of the adder
    assert CostModel(t, _TABLE).e_ac == approx(E_ADD8)


# ---------------------------------------------------------------------- one conv + its LIF
@pytest.mark.parametrize("rate", [0.0, 0.25, 1.0])
def test_fused_conv_and_lif_under_ws(rate):
    rep = model().cost(pair(True), spike_rates={"c": rate})
    ops = MACS * T * rate
    assert rep.cycles.tolist()[0] >= CYC * T and rep.compute_cycles.tolist() == [CYC * T, 0]
    assert rep.ops.tolist() == [approx(ops), 0.0]
    assert by_layer(rep, "compute") == [approx(ops * E_ADD8), 0.0]
    # a 1-bit spike latched per MAC position and timestep; per accumulate a weight read and
    # a write of the 16-bit accumulator
    assert by_layer(rep, "register") == [approx(MACS * T * E_REG + ops * (WB + ACC) * E_REG), 0.0]
    # spikes streamed each timestep, weights read once (stationary for all T), outputs are
    # 1-bit spikes each timestep
    assert by_layer(rep, "sram") == [approx((IF_R * T + F_R * WB + OF_W * T) * E_SRAM), 0.0]
    # DRAM: weights once, T input spike maps, T output spike maps
    assert by_layer(rep, "dram") == [approx((64 * WB + 128 * T + 128 * T) * E_DRAM), 0.0]
    # ws: each column's LIF sees a neuron's T currents in a row: membrane in its register
    assert by_layer(rep, "neuron") == [0.0, approx(128 * T * (E_LIF + MB * 2 * E_REG))]


def test_fused_lif_under_os_keeps_a_folds_membranes_in_the_membrane_buffer():
    from nasco.hw import systolic_sram_accesses
    rep = model(dataflow="os").cost(pair(True), spike_rates={"c": 0.5})
    acc = systolic_sram_accesses("os", 8, 8, 4, 4, 1, 1, 8, 8, 1)
    # os streams the weights again every timestep
    if_r, f_r, of_w = (int(acc[k]) for k in ("ifmap_reads", "filter_reads", "ofmap_writes"))
    assert by_layer(rep, "sram")[0] == approx((if_r * T + f_r * WB * T + of_w * T) * E_SRAM)
    assert by_layer(rep, "neuron")[1] == approx(128 * T * (E_LIF + MB * 2 * E_SRAM))
    assert by_layer(rep, "dram")[1] == 0.0  # membranes never spill


def test_unfused_conv_writes_currents_and_its_neuron_layer_round_trips_them():
    rep = model().cost(pair(False), spike_rates={"c": 0.5})
    assert by_layer(rep, "sram")[0] == approx((IF_R * T + F_R * WB + OF_W * AB * T) * E_SRAM)
    assert by_layer(rep, "dram")[0] == approx((64 * WB + 128 * T + 128 * AB * T) * E_DRAM)
    # the neuron layer reads 8-bit currents and writes 1-bit spikes each timestep
    assert by_layer(rep, "sram")[1] == approx(128 * (AB + 1) * T * E_SRAM)
    assert by_layer(rep, "dram")[1] == approx(128 * (AB + 1) * T * E_DRAM)
    assert by_layer(rep, "neuron")[1] == approx(128 * T * (E_LIF + MB * 2 * E_REG))
    assert rep.compute_cycles.tolist() == [CYC * T, math.ceil(128 / 8) * T]
    fused = model().cost(pair(True), spike_rates={"c": 0.5})
    assert fused.energy_j.sum() < rep.energy_j.sum()


def test_skip_zero_spikes_saves_cycles_not_energy():
    gate, skip = model(), model(pe__skip_zero_spikes=True)
    for rate in (0.0, 0.1, 0.6):
        g = gate.cost(pair(True), spike_rates={"c": rate})
        s = skip.cost(pair(True), spike_rates={"c": rate})
        assert g.compute_cycles[0] == CYC * T
        assert s.compute_cycles[0] == math.ceil(CYC * rate) * T
        for part in g.energy:
            np.testing.assert_allclose(s.energy[part], g.energy[part], rtol=1e-12, atol=0)


def test_directly_encoded_stem_runs_bit_serially_once_and_its_lif_fires_T_times():
    wl = Workload((conv(True, spiking=False, steps=1), LIF))
    rep = model().cost(wl)
    ops = MACS * AB  # one pass per bit plane of the 8-bit pixels
    assert rep.ops[0] == ops and rep.compute_cycles[0] == CYC * AB
    assert by_layer(rep, "compute")[0] == approx(ops * E_ADD8)
    assert by_layer(rep, "register")[0] == approx(ops * 1 * E_REG + ops * (WB + ACC) * E_REG)
    # 8-bit pixels read once (bit planes), weights once, T spike maps written
    assert by_layer(rep, "sram")[0] == approx((IF_R * AB + F_R * WB + OF_W * T) * E_SRAM)
    assert by_layer(rep, "dram")[0] == approx((64 * WB + 128 * AB + 128 * T) * E_DRAM)
    assert by_layer(rep, "neuron")[1] == approx(128 * T * (E_LIF + MB * 2 * E_REG))


def test_max_pool_of_spikes_writes_spikes_and_an_add_can_feed_a_fused_lif():
    pool = Layer("p", "pool", 8, 8, 2, 2, 4, 4, 2, spiking_input=True, timesteps=T, output_bits=1)
    add = Layer("s", "add", 4, 4, 1, 1, 8, 8, timesteps=T, elements=128, operands=2, output_bits=1)
    rep = model().cost(Workload((pool, add, LIF)))
    assert pool.elements == 64
    assert by_layer(rep, "sram")[0] == approx((256 * 1 + 64 * 1) * T * E_SRAM)
    assert by_layer(rep, "dram")[0] == approx((256 + 64) * T * E_DRAM)
    # the add reads two 8-bit currents and writes the spikes of its fused LIF
    assert by_layer(rep, "sram")[1] == approx((256 * AB + 128) * T * E_SRAM)
    assert by_layer(rep, "dram")[1] == approx((256 * AB + 128) * T * E_DRAM)
    assert rep.compute_cycles.tolist()[2] == 0


def test_an_add_of_spike_maps_reads_them_at_one_bit_and_counts_at_their_width():
    # spike_native wiring: a node sums two spike maps and its fused LIF fires on the count
    add = Layer("s", "add", 4, 4, 1, 1, 8, 8, timesteps=T, elements=128, operands=2, output_bits=1,
                spiking_input=True)
    rep = model().cost(Workload((add, LIF)))
    assert "spike_rate_assumed" not in rep.assumptions  # no gated MACs: no rate to take
    # two 1-bit maps in, the LIF's spikes out, every timestep
    assert by_layer(rep, "sram")[0] == approx((2 * 128 + 128) * T * E_SRAM)
    assert by_layer(rep, "dram")[0] == approx((2 * 128 + 128) * T * E_DRAM)
    # one add per element at the 2-bit width of a count of two spikes: add_8b * 2 / 8
    assert by_layer(rep, "compute")[0] == approx(128 * T * E_ADD8 * 2 / 8)
    three = model().cost(Workload((dataclasses.replace(add, operands=3), LIF)))
    assert by_layer(three, "compute")[0] == approx(2 * 128 * T * E_ADD8 * 2 / 8)  # 0..3: 2 bits
    four = model().cost(Workload((dataclasses.replace(add, operands=4), LIF)))
    assert by_layer(four, "compute")[0] == approx(3 * 128 * T * E_ADD8 * 3 / 8)  # 0..4: 3 bits


def test_cost_many_agrees_with_cost_across_fused_workloads():
    m = model()
    wls = [pair(True), pair(False), Workload((LIF,)), pair(True, steps=T)]
    rates = [{"c": 0.3}, {"c": 0.7}, None, {"c": 0.0}]
    many = m.cost_many(wls, rates)
    for k, (w, r) in enumerate(zip(wls, rates)):
        one = m.cost(w, spike_rates=r).total()
        assert many["energy_j"][k] == pytest.approx(one["energy_j"], rel=1e-12)
        assert many["cycles"][k] == one["cycles"]


# ---------------------------------------------------------------------- flags elsewhere
def test_mac_templates_ignore_the_fused_lif_flags():
    raw = load_spec("systolic_template")
    m = CostModel(resolve(raw, {}), load_energy_table(raw))
    a = m.cost(pair(True), spike_rates={"c": 0.4})
    b = m.cost(pair(False), spike_rates={"c": 0.4})
    for part in a.energy:
        np.testing.assert_array_equal(a.energy[part], b.energy[part])
    np.testing.assert_array_equal(a.cycles, b.cycles)


def test_workload_rejects_a_fused_source_without_its_neuron():
    with pytest.raises(ValueError, match="output_bits 1.*must follow it; found nothing"):
        Workload((conv(True),))
    with pytest.raises(ValueError, match="found neuron 'n' \\(64 elements"):
        Workload((conv(True), dataclasses.replace(LIF, elements=64)))
    with pytest.raises(ValueError, match="output_bits must be"):
        Layer("n", "neuron", elements=4, output_bits=2)
    assert ann_twin(pair(True)).layers[0].output_bits == 0  # the ANN has no LIF to fuse


def darts_plan(seed: int = 0, placement: str | None = None):
    from nasco.nn import plan_network
    from nasco.space import SearchSpace

    over = {("timesteps",): 5}
    if placement:
        over[("neuron", "placement")] = placement
    ss = SearchSpace(load_spec("darts_snn", overrides=over))
    cand = ss.sample(np.random.default_rng(seed))
    arch, _ = ss.resolve(cand)
    return plan_network(arch, cand.arch["cell"], (3, 32, 32), 10)


def darts_sample(seed: int = 0, placement: str | None = None) -> Workload:
    from nasco.nn import plan_workload

    return plan_workload(darts_plan(seed, placement), name=f"darts_snn seed {seed}")


@pytest.mark.parametrize("placement", [None, "post_node"])
def test_plans_fuse_a_neuron_with_its_only_source(placement):
    from nasco.nn import plan_workload
    from nasco.nn._workload import fused_sources

    plan = darts_plan(0, placement)
    layers = plan_workload(plan).layers
    fused = {a.name: b.name for a, b in zip(layers, layers[1:]) if a.output_bits and a.kind != "pool"}
    # every flagged conv/add is directly followed by its neuron: the ones the plan's graph allows
    assert fused and fused == fused_sources(plan)
    assert all(layers[i + 1].kind == "neuron" for i, la in enumerate(layers[:-1])
               if la.output_bits and la.kind != "pool")
    # each of the plan's neurons appears once (fused ones move next to their source)
    names = [la.name for la in layers if la.kind == "neuron"]
    assert len(names) == len(set(names)) == sum(n.op == "neuron" for n in plan.nodes)
    # a max-pool of spikes keeps them binary; an average pool does not
    binary = plan.binary()
    for la in layers:
        if la.kind == "pool":
            node = plan.by_name()[la.name]
            assert la.output_bits == int(node.op == "maxpool" and binary[node.name])
    if placement == "post_node":  # the stem's BN output feeds only its neuron
        assert fused["stem.conv"] == "stem.neuron"
    else:  # the stem feeds several neurons before the ops: its currents stay
        assert "stem.conv" not in fused


# ---------------------------------------------------------------------- break-even
def plain_stack(T: int = 5) -> Workload:
    """A VGG-like spiking conv stack on 32x32 input, 64-64-P-128-128-P-FC: each conv fused with
    its LIF (output_bits 1), 2x2 max-pools of spikes, a directly encoded first conv."""
    layers: list[Layer] = []
    c_in, hw = 3, 32
    for i, (c, pool) in enumerate([(64, False), (64, True), (128, False), (128, True)]):
        layers.append(Layer(f"conv{i}", "conv", hw + 2, hw + 2, 3, 3, c_in, c, spiking_input=i > 0,
                            timesteps=1 if i == 0 else T, output_bits=1))
        layers.append(Layer(f"lif{i}", "neuron", timesteps=T, elements=c * hw * hw))
        if pool:
            layers.append(Layer(f"pool{i}", "pool", hw, hw, 2, 2, c, c, 2, spiking_input=True, timesteps=T,
                                output_bits=1))
            hw //= 2
        c_in = c
    layers.append(Layer("fc", "linear", 1, 1, 1, 1, c_in * hw * hw, 10, spiking_input=True, timesteps=T))
    return Workload(tuple(layers), name="plain_stack")


def test_plain_conv_stack_at_T5_breaks_even_with_its_3bit_twin_between_1_and_20_percent():
    t = resolve(_RAW, {})
    wl = plain_stack()
    r = break_even_rate(wl, t, _TABLE, against="quantised")
    assert 0.01 <= r <= 0.20
    # the crossing is where the full models agree: SNN on sop PEs, 3-bit twin on MAC PEs
    names = [la.name for la in wl.layers if la.spiking_input and la.kind in ("conv", "linear")]
    snn = CostModel(t, _TABLE).cost(wl, spike_rates=dict.fromkeys(names, r))
    twin = CostModel(quantised_template(ann_template(t), 3), _TABLE).cost(ann_twin(wl))
    assert float(snn.energy_j.sum()) == pytest.approx(float(twin.energy_j.sum()), rel=1e-9)
    # without the fused LIFs (8-bit currents every timestep) there is no break-even
    unfused = Workload(tuple(dataclasses.replace(la, output_bits=0) for la in wl.layers), name="unfused")
    assert math.isnan(break_even_rate(unfused, t, _TABLE, against="quantised"))


def test_darts_snn_at_T5_never_breaks_even_on_sata_like_and_why():
    """darts_snn cells exchange multi-bit currents (node sums, shared preprocessing outputs)
    every timestep, and even their spikes move T = 5 bits per element against the twin's
    ceil(log2 6) = 3. Measured here rather than assumed: the DRAM writes of those currents
    alone, and the DRAM of an all-spike version of the network (weights plus 5/3 of the twin's
    activation traffic), each exceed the 3-bit twin's whole energy. So the SNN costs more at
    rate 0 and no fusion or loop order of this template can give it a break-even."""
    t = resolve(_RAW, {})
    wl = darts_sample(0)
    assert snn_timesteps(wl) == 5
    out = compare(wl, 0.0, t, _TABLE)
    twin = out["quantised"]["energy_j"]
    assert math.isnan(out["break_even"]["quantised"]) and out["snn"]["energy_j"] > twin
    e_dram = _TABLE.energy_j("dram_bit")
    currents = sum(la.ofmap_elements * AB * la.timesteps * e_dram for la in wl.layers
                   if la.timesteps > 1 and la.kind in ("conv", "add", "pool") and la.output_bits == 0)
    assert currents > twin
    w_dram = sum(la.params for la in wl.layers) * WB * e_dram
    act_dram = out["quantised"]["energy"]["dram"] - w_dram
    assert w_dram + act_dram * 5 / 3 > twin
