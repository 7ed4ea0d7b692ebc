"""SNN energy beside its ANN baselines (nasco/hw/_snn.py): the literature estimate against a
hand computation with Horowitz's 45 nm constants, the ANN twins, compare() and the
break-even spike rate."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from nasco.dsl import load_energy_table, load_spec, resolve
from nasco.hw import ENERGY_PARTS, CostModel, Layer, Workload
from nasco.hw._snn import (
    FP_ENERGY_PJ, activation_bits_for, ann_twin, break_even_rate, compare, literature_energy,
    quantised_template, quantised_twin, snn_energy_line, snn_timesteps,
)

pJ = 1e-12
_RAW = load_spec("systolic_template")
_TABLE = load_energy_table(_RAW)
_TEMPLATE = resolve(_RAW, {})  # the defaults: a MAC-PE template (spiking PEs: test_spiking_template.py)


def two_layer(T: int = 4) -> Workload:
    # encoding conv: 10x10 ofmap, 1x1 filter, 10 channels, 1 filter -> 1000 MACs, run once;
    # spiking conv: 10x10 ofmap, 20 channels -> 2000 MACs per timestep, run T times.
    enc = Layer("enc", "conv", 10, 10, 1, 1, 10, 1)
    lif = Layer("lif", "neuron", timesteps=T, elements=100)
    sp = Layer("sp", "conv", 10, 10, 1, 1, 20, 1, spiking_input=True, timesteps=T)
    return Workload((enc, lif, sp), name="two")


def small_snn(T: int = 5) -> Workload:
    """A 3-conv SNN on 16x16 input with a spiking classifier."""
    return Workload((
        Layer("c1", "conv", 18, 18, 3, 3, 3, 16),
        Layer("n1", "neuron", timesteps=T, elements=16 * 16 * 16),
        Layer("c2", "conv", 18, 18, 3, 3, 16, 32, spiking_input=True, timesteps=T),
        Layer("n2", "neuron", timesteps=T, elements=32 * 16 * 16),
        Layer("c3", "conv", 10, 10, 3, 3, 32, 32, 2, spiking_input=True, timesteps=T),
        Layer("n3", "neuron", timesteps=T, elements=32 * 4 * 4),
        Layer("fc", "linear", 1, 1, 1, 1, 512, 10, spiking_input=True, timesteps=T),
    ), name="small")


def total(template, workload, rates=None) -> float:
    return float(CostModel(template, _TABLE).cost(workload, spike_rates=rates).energy_j.sum())


# ---------------------------------------------------------------------- literature estimate
def test_literature_energy_matches_hand_computation_with_horowitz_constants():
    wl = two_layer(T=4)
    assert [layer.macs for layer in wl.layers] == [1000, 0, 2000]
    # E = E_MAC·1000 + E_AC·T·fr·2000 with Horowitz's int8 MAC 0.23 pJ and add 0.03 pJ
    expected = 1000 * 0.23 * pJ + 4 * 0.1 * 2000 * 0.03 * pJ
    assert expected == pytest.approx(254 * pJ, rel=1e-12)
    assert literature_energy(wl, {"sp": 0.1}, _TABLE) == pytest.approx(expected, rel=1e-12, abs=0)
    assert literature_energy(wl, 0.1, _TABLE) == pytest.approx(expected, rel=1e-12, abs=0)
    fp32 = literature_energy(wl, 0.1, _TABLE, precision="fp32")
    assert FP_ENERGY_PJ["fp32"] == (4.6, 0.9)
    assert fp32 == pytest.approx(1000 * 4.6 * pJ + 4 * 0.1 * 2000 * 0.9 * pJ, rel=1e-12, abs=0)


def test_literature_energy_sums_layers_and_charges_real_valued_layers_per_timestep():
    wl = small_snn(T=5)
    rates = {"c2": 0.2, "c3": 0.05, "fc": 0.5}
    by = {layer.name: layer for layer in wl.layers}
    expected = (0.23 * pJ * by["c1"].macs
                + 0.03 * pJ * 5 * (0.2 * by["c2"].macs + 0.05 * by["c3"].macs + 0.5 * by["fc"].macs))
    assert literature_energy(wl, rates, _TABLE) == pytest.approx(expected, rel=1e-12)
    # a real-valued-input layer that runs every timestep is charged E_MAC per MAC per step
    head = Workload(wl.layers + (Layer("head", "linear", 1, 1, 1, 1, 64, 10, timesteps=5),))
    assert literature_energy(head, rates, _TABLE) - literature_energy(wl, rates, _TABLE) == \
        pytest.approx(0.23 * pJ * 5 * 640, rel=1e-9)


def test_literature_energy_skips_pools_and_adds_of_spikes():
    wl = small_snn(T=5)
    pooled = Workload(wl.layers[:4] + (Layer("p", "pool", 16, 16, 2, 2, 32, 32, 2, spiking_input=True,
                                                timesteps=5),) + wl.layers[4:])
    rates = {"c2": 0.2, "c3": 0.05, "fc": 0.5}
    assert literature_energy(pooled, rates, _TABLE) == literature_energy(wl, rates, _TABLE)


def test_literature_energy_rejects_missing_rates_bad_rates_and_unknown_precision():
    wl = small_snn()
    with pytest.raises(ValueError, match="no rate for spiking-input layer.*c3"):
        literature_energy(wl, {"c2": 0.1, "fc": 0.1}, _TABLE)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        literature_energy(wl, 1.5, _TABLE)
    with pytest.raises(ValueError, match="known: int8, fp32, fp16"):
        literature_energy(wl, 0.1, _TABLE, precision="int4")


# ---------------------------------------------------------------------- twins
@pytest.mark.parametrize("T,bits", [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (7, 3), (8, 4), (15, 4), (16, 5)])
def test_activation_bits_is_ceil_log2_T_plus_1(T, bits):
    assert activation_bits_for(T) == bits == math.ceil(math.log2(T + 1))


def test_activation_bits_rejects_non_positive_timesteps():
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="positive integer"):
            activation_bits_for(bad)


def test_ann_twin_drops_neurons_and_runs_every_layer_once_on_real_values():
    wl = small_snn(T=5)
    twin = ann_twin(wl)
    assert [layer.name for layer in twin.layers] == ["c1", "c2", "c3", "fc"]
    assert all(not layer.spiking_input and layer.timesteps == 1 for layer in twin.layers)
    for layer in twin.layers:  # shapes unchanged
        orig = next(x for x in wl.layers if x.name == layer.name)
        assert dataclasses.replace(orig, spiking_input=False, timesteps=1) == layer
    assert twin.macs == sum(layer.macs for layer in wl.layers)
    assert wl.layers[2].spiking_input  # the SNN is untouched


def test_quantised_twin_is_the_ann_twin_with_its_width():
    wl = small_snn(T=5)
    q, bits = quantised_twin(wl, 5)
    assert bits == 3
    assert q.layers == ann_twin(wl).layers
    t = quantised_template(_TEMPLATE, bits)
    assert t.bits.activation == 3
    assert (t.bits.weight, t.bits.accumulator, t.bits.membrane) == (8, 32, 16)
    assert dataclasses.replace(t, bits=_TEMPLATE.bits) == _TEMPLATE
    assert t.source == _TEMPLATE.source


def test_snn_timesteps_ignores_the_stem_and_rejects_mixed_T():
    assert snn_timesteps(small_snn(T=5)) == 5
    assert snn_timesteps(ann_twin(small_snn())) == 1
    mixed = Workload(small_snn(T=5).layers + (Layer("x", "conv", 4, 4, 1, 1, 2, 2, spiking_input=True,
                                                    timesteps=3),))
    with pytest.raises(ValueError, match=r"different timesteps \[3, 5\]"):
        snn_timesteps(mixed)


# ---------------------------------------------------------------------- compare
def test_compare_costs_all_three_with_the_full_cost_model():
    wl = small_snn(T=5)
    out = compare(wl, 0.1, _TEMPLATE, _TABLE)
    rates = dict.fromkeys(["c2", "c3", "fc"], 0.1)
    assert out["timesteps"] == 5 and out["bits"]["quantised_activation"] == 3
    assert out["snn"]["energy_j"] == pytest.approx(total(_TEMPLATE, wl, rates), rel=1e-12)
    assert out["ann"]["energy_j"] == pytest.approx(total(_TEMPLATE, ann_twin(wl)), rel=1e-12)
    q_t = quantised_template(_TEMPLATE, 3)
    assert out["quantised"]["energy_j"] == pytest.approx(total(q_t, ann_twin(wl)), rel=1e-12)
    for key in ("snn", "ann", "quantised"):
        r = out[key]
        assert sum(r["energy"].values()) == pytest.approx(r["energy_j"], rel=1e-12)
        assert set(r["energy"]) == set(ENERGY_PARTS)
        assert r["latency_s"] > 0
    assert out["literature"]["snn_j"] == pytest.approx(literature_energy(wl, 0.1, _TABLE), rel=1e-12)
    assert out["literature"]["ann_j"] == pytest.approx(0.23 * pJ * ann_twin(wl).macs, rel=1e-12)
    assert out["ratio"]["snn_over_quantised"] == pytest.approx(
        out["snn"]["energy_j"] / out["quantised"]["energy_j"])
    assert out["ann"]["energy"]["neuron"] == out["quantised"]["energy"]["neuron"] == 0.0


def test_compare_snn_at_rate_zero_has_no_accumulate_energy():
    wl = small_snn(T=5)
    out = compare(wl, 0.0, _TEMPLATE, _TABLE)
    # only the non-spiking encoding conv c1 computes: its MACs at the 8x8-bit MAC energy
    c1 = wl.layers[0].macs
    assert out["snn"]["energy"]["compute"] == pytest.approx(c1 * 0.23 * pJ, rel=1e-12)
    assert out["snn"]["ops"] == c1


def test_compare_quantised_compute_energy_scales_with_activation_bits():
    # e_mac = mac_8b · (w·a)/64 in CostModel: at a = 3 the MAC costs 3/8 of the 8-bit one.
    wl = small_snn(T=5)
    out = compare(wl, 0.1, _TEMPLATE, _TABLE)
    assert out["quantised"]["energy"]["compute"] == pytest.approx(out["ann"]["energy"]["compute"] * 3 / 8,
                                                                 rel=1e-12)
    assert out["quantised"]["energy"]["compute"] == pytest.approx(
        ann_twin(wl).macs * 0.23 * pJ * 8 * 3 / 64, rel=1e-12)
    # and T = 8 -> 4 bits
    out8 = compare(small_snn(T=8), 0.1, _TEMPLATE, _TABLE)
    assert out8["bits"]["quantised_activation"] == 4
    assert out8["quantised"]["energy"]["compute"] == pytest.approx(out8["ann"]["energy"]["compute"] / 2,
                                                                  rel=1e-12)


# ---------------------------------------------------------------------- break-even
def test_snn_energy_is_affine_in_a_uniform_spike_rate():
    wl = small_snn(T=5)
    e0, slope = snn_energy_line(wl, _TEMPLATE, _TABLE)
    assert slope > 0
    names = ["c2", "c3", "fc"]
    for r in (0.057, 0.3, 0.77):
        assert total(_TEMPLATE, wl, dict.fromkeys(names, r)) == pytest.approx(e0 + r * slope, rel=1e-12)


def _cheap_template(*free: str):
    """A hypothetical design on which the small SNN does break even, for the solver: every
    membrane fits the ofmap buffer, and the energies named in ``free`` are made nearly zero."""
    t = dataclasses.replace(_TEMPLATE, buffers=dataclasses.replace(_TEMPLATE.buffers, ofmap_kb=4096))
    e = dict(_TABLE.energy)
    for key in free:
        e[key] = dataclasses.replace(e[key], value=1e-9)
    return t, dataclasses.replace(_TABLE, energy=e)


FREE_MEMORY = ("dram_bit", "sram_read_bit", "sram_write_bit")


@pytest.mark.parametrize("against", ["quantised", "ann"])
def test_break_even_rate_solves_the_equality(against):
    t, table = _cheap_template(*FREE_MEMORY)
    wl = small_snn(T=5)
    r = break_even_rate(wl, t, table, against=against)
    assert 0.0 < r < 1.0
    if against == "quantised":
        base = CostModel(quantised_template(t, 3), table).cost(ann_twin(wl))
    else:
        base = CostModel(t, table).cost(ann_twin(wl))
    snn = CostModel(t, table).cost(wl, spike_rates=dict.fromkeys(["c2", "c3", "fc"], r))
    assert float(snn.energy_j.sum()) == pytest.approx(float(base.energy_j.sum()), rel=1e-9, abs=0)
    # cheaper below the rate, dearer above
    lo = CostModel(t, table).cost(wl, spike_rates=dict.fromkeys(["c2", "c3", "fc"], r * 0.9))
    assert lo.energy_j.sum() < base.energy_j.sum()
    assert break_even_rate(wl, t, table, against=against, extrapolate=True) == r


def test_break_even_rate_outside_zero_one_is_nan_or_inf():
    wl = small_snn(T=5)
    # as modelled (DRAM at Horowitz's figure) the SNN costs more even with no spikes
    assert math.isnan(break_even_rate(wl, _TEMPLATE, _TABLE))
    assert break_even_rate(wl, _TEMPLATE, _TABLE, extrapolate=True) < 0
    # with only arithmetic and neuron updates counted, against a 32-bit-activation ANN, the
    # SNN wins at every rate
    t, table = _cheap_template(*FREE_MEMORY, "register_bit")
    wide = dataclasses.replace(t, bits=dataclasses.replace(t.bits, weight=8, activation=32))
    r = break_even_rate(wl, wide, table, against="ann", extrapolate=True)
    assert r > 1
    assert math.isinf(break_even_rate(wl, wide, table, against="ann"))


def test_break_even_rate_errors():
    with pytest.raises(ValueError, match="known: quantised, ann"):
        break_even_rate(small_snn(), _TEMPLATE, _TABLE, against="int4")
    with pytest.raises(ValueError, match="does not depend on the spike rate"):
        break_even_rate(ann_twin(small_snn()), _TEMPLATE, _TABLE)
    with pytest.raises(ValueError, match="resolved"):
        break_even_rate(small_snn(), _RAW, _TABLE)


def test_darts_snn_at_T5_never_breaks_even_against_a_3bit_ann_on_systolic_template():
    """The reference figure of experiments/results/snn_break_even.md: on systolic_template's
    defaults with horowitz_45nm, darts_snn seed 0 at T = 5 costs more than its 3-bit twin
    even at rate 0 (membranes spill to DRAM every timestep and conv outputs stream at 8 bits
    every timestep), so there is no break-even in [0, 1] — not the 1-20 % the issue targets,
    nor Yan et al.'s ~5.7 %. The extrapolated crossing is far below 0."""
    from nasco.nn import plan_network, plan_workload
    from nasco.space import SearchSpace

    space = load_spec("darts_snn", overrides={("timesteps",): 5})
    assert space.timesteps == 5  # outside the file's choices [2, 4]: fixed by the override
    ss = SearchSpace(space)
    cand = ss.sample(np.random.default_rng(0))
    arch, _ = ss.resolve(cand)
    wl = plan_workload(plan_network(arch, cand.arch["cell"], (3, 32, 32), 10))
    assert snn_timesteps(wl) == 5
    assert math.isnan(break_even_rate(wl, _TEMPLATE, _TABLE, against="quantised"))
    assert break_even_rate(wl, _TEMPLATE, _TABLE, against="quantised", extrapolate=True) == \
        pytest.approx(-36.520, rel=1e-3)
    assert math.isnan(break_even_rate(wl, _TEMPLATE, _TABLE, against="ann"))
