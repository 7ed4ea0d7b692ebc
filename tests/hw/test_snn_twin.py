"""The SNN's ⌈log2(T+1)⌉-bit ANN twin and the break-even rate on hand-computed two-layer
workloads: a 1x1 conv (8 -> 8 channels, 4x4 map, spiking input) and its fused LIF on
sata_like with 8x8 PEs (ws: one fold; per timestep 128 ifmap reads, 64 filter reads, 128
ofmap writes, as in test_spiking_template.py), horowitz_45nm energies (pJ): add_8b 0.03,
mac_8b 0.23, register 0.02875, SRAM 0.3125 per bit, DRAM 20.3 per bit, no NoC entry."""
from __future__ import annotations

import math

import pytest

from nasco.dsl import load_energy_table, load_spec, resolve
from nasco.hw import CostModel, Layer, Workload, break_even_rate, snn_twin, twin_total

pJ = 1e-12
E_ADD8, E_MAC8, E_REG, E_SRAM, E_DRAM = 0.03, 0.23, 0.02875, 0.3125, 20.3  # pJ
SMALL = {"pe_array.rows": 8, "pe_array.cols": 8, "buffers.membrane_kb": 1}
MACS = 1024  # per timestep
E_LIF = 2 * E_ADD8 * 8 / 8  # integrate + compare at the 8-bit membrane width
E_UPDATE = E_LIF + 8 * 2 * E_REG  # and the membrane's register read and write (ws)


def _template(fmt: str = "dense"):
    raw = load_spec("sata_like", overrides={("spikes", "format"): fmt})
    return resolve(raw, SMALL)


_TABLE = load_energy_table(load_spec("sata_like"))


def pair(T: int) -> Workload:
    return Workload((Layer("c", "conv", 4, 4, 1, 1, 8, 8, spiking_input=True, timesteps=T, output_bits=1),
                     Layer("n", "neuron", timesteps=T, elements=128)))


def twin_pj(a: int) -> float:
    """The twin: the conv once on a-bit activations with MAC PEs: a MAC at 8 x a bits (mac_8b
    scaled by 8a/64), a register read of its a-bit input, its 8-bit weight and a 16-bit psum
    update per MAC; SRAM: 128 a-bit input reads, 64 8-bit weights, 128 a-bit outputs; DRAM:
    512 weight bits, 128 a-bit inputs and 128 a-bit outputs (all fit their buffers)."""
    return (MACS * E_MAC8 * 8 * a / 64 + MACS * (a + 8 + 16) * E_REG + (128 * a + 512 + 128 * a) * E_SRAM
            + (512 + 128 * a + 128 * a) * E_DRAM)


def dense_line_pj(T: int) -> tuple[float, float]:
    """SNN with dense spike maps: E(0) = a 1-bit spike latched per MAC position, SRAM (T input
    maps, weights once, T output maps), DRAM (the same), T x 128 neuron updates; slope = per
    accumulate an add and the weight and accumulator register updates."""
    e0 = (MACS * T * E_REG + (128 * T + 512 + 128 * T) * E_SRAM + (512 + 128 * T + 128 * T) * E_DRAM
          + 128 * T * E_UPDATE)
    slope = MACS * T * E_ADD8 + MACS * T * (8 + 16) * E_REG
    return e0, slope


def test_dense_crossing_at_T1_by_hand():
    """T = 1: the twin has 1-bit activations, so both move the same bits; the SNN saves the
    multiplier and pays its neuron updates: r* = (E_twin - E0) / slope = 669.44 / 737.28."""
    e0, slope = dense_line_pj(1)
    assert twin_pj(1) == pytest.approx(16595.84, rel=1e-12) and e0 == pytest.approx(15926.4, rel=1e-12)
    hand = (16595.84 - 15926.4) / 737.28
    # Cancellation in E_twin - E0 (25x) on 1e-16 sums: measured 2e-15 relative; asserted 1e-12.
    assert break_even_rate(pair(1), _template(), _TABLE) == pytest.approx(hand, rel=1e-12)
    assert hand == pytest.approx(0.9079861111, rel=1e-9)


def test_dense_never_breaks_even_at_T3_and_its_extrapolated_crossing_is_hand_computed():
    """T = 3: the twin has 2-bit activations, the SNN moves 3 bits per element: nan, and the
    line crosses at (21931.52 - 26672) / 2211.84."""
    e0, slope = dense_line_pj(3)
    assert twin_pj(2) == pytest.approx(21931.52, rel=1e-12) and e0 == pytest.approx(26672.0, rel=1e-12)
    t = _template()
    assert math.isnan(break_even_rate(pair(3), t, _TABLE))
    assert break_even_rate(pair(3), t, _TABLE, extrapolate=True) == pytest.approx(
        (21931.52 - 26672.0) / 2211.84, rel=1e-12)


def test_aer_crossing_at_T3_by_hand():
    """AER with 7-bit addresses (128-element maps), every map at rate r: SRAM and DRAM carry
    512 weight bits plus 2 x 128 x 3 x 7 r spike bits, so E(r) = 10841.6 + 113024.64 r pJ and
    r* = (21931.52 - 10841.6) / 113024.64. Bisection to 1e-12 in r; asserted within 2e-12."""
    e0 = MACS * 3 * E_REG + 512 * E_SRAM + 512 * E_DRAM + 128 * 3 * E_UPDATE
    slope = MACS * 3 * E_ADD8 + MACS * 3 * 24 * E_REG + 5376 * (E_SRAM + E_DRAM)
    assert e0 == pytest.approx(10841.6, rel=1e-12) and slope == pytest.approx(113024.64, rel=1e-12)
    hand = (21931.52 - 10841.6) / 113024.64
    assert break_even_rate(pair(3), _template("aer"), _TABLE) == pytest.approx(hand, abs=2e-12)
    with pytest.raises(ValueError, match="extrapolate needs dense spike maps"):
        break_even_rate(pair(3), _template("aer"), _TABLE, extrapolate=True)


def test_twin_total_is_the_hand_computed_twin():
    tot, bits = twin_total(pair(3), _template(), _TABLE)
    assert bits == 2
    assert tot["energy_j"] == pytest.approx(twin_pj(2) * pJ, rel=1e-12)


@pytest.mark.parametrize("fmt, rate", [("dense", 0.2), ("aer", 0.05), ("aer", 0.5)])
def test_snn_twin_records_the_ratio_of_independently_costed_energies(fmt, rate):
    t = _template(fmt)
    wl = pair(3)
    snn = CostModel(t, _TABLE).cost(wl, {"c": rate, "n": rate}).total()
    out = snn_twin(wl, t, _TABLE, snn)
    # hand: the SNN's E(rate) on its line, the twin's 21931.52 pJ
    if fmt == "dense":
        e0, slope = dense_line_pj(3)
    else:
        e0, slope = 10841.6, 113024.64
    assert snn["energy_j"] == pytest.approx((e0 + slope * rate) * pJ, rel=1e-12)
    assert out["snn_advantage"] == pytest.approx(21931.52 / (e0 + slope * rate), rel=1e-12)
    assert out["twin_energy"] == pytest.approx(21931.52 * pJ, rel=1e-12) and out["twin_bits"] == 2
    assert out["latency_ratio"] == out["twin_latency"] / snn["latency_s"]
    if fmt == "dense":
        assert (out["break_even"], out["break_even_rate"]) == ("never", None)
    else:
        assert out["break_even"] == "rate"
        assert out["break_even_rate"] == pytest.approx((21931.52 - 10841.6) / 113024.64, abs=2e-12)
        assert (out["snn_advantage"] > 1) == (rate < out["break_even_rate"])
