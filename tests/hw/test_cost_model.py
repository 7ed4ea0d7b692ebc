"""The analytical cost model on hand-built workloads, recomputed here from the formulas
documented in nasco/hw/_cost.py (comments/docstrings) and nasco/hw/_systolic.py, with the
horowitz_45nm constants; plus SCALE-Sim topology CSV reading."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from nasco.dsl import SpecError, load_energy_table, load_spec, resolve
from nasco.hw import CostModel, Layer, Workload, read_scalesim_csv, systolic_compute_cycles

pJ = 1e-12
um2 = 1e-6
# horowitz_45nm.yaml
E_MAC8, E_ADD8, E_ADD16 = 0.23 * pJ, 0.03 * pJ, 0.05 * pJ
E_REG, E_SRAM_R, E_SRAM_W, E_DRAM = 0.02875 * pJ, 0.3125 * pJ, 0.3125 * pJ, 20.3 * pJ
A_MULT8, A_ADD8, A_ADD32, A_SRAM, A_REG = 282.0 * um2, 36.0 * um2, 137.0 * um2, 0.346 * um2, 4.522 * um2
WB = AB = 8
ACC, MB = 32, 16
KIB = 1024 * 8  # bits

BASE = {"dataflow": "ws", "pe_array.rows": 8, "pe_array.cols": 8, "buffers.ifmap_kb": 32,
        "buffers.filter_kb": 32, "buffers.ofmap_kb": 16, "bandwidth.dram_bytes_per_cycle": 8,
        "clock_mhz": 200}

_TEMPLATE = load_spec("systolic_template")
_TABLE = load_energy_table(_TEMPLATE)


def model(**changes) -> CostModel:
    values = dict(BASE)
    values.update({k.replace("__", "."): v for k, v in changes.items()})
    return CostModel(resolve(_TEMPLATE, values), _TABLE)


def approx(x):
    return pytest.approx(x, rel=1e-12, abs=0.0)


# A 3x3 conv, 8 -> 16 channels, on an 8x8 map padded to 10x10 (SCALE-Sim convention).
def conv(name="c", **kw) -> Layer:
    args = dict(kind="conv", ifmap_h=10, ifmap_w=10, filter_h=3, filter_w=3, channels=8, num_filters=16,
                stride=1)
    args.update(kw)
    return Layer(name, **args)


CONV_MACS = 8 * 8 * 16 * 3 * 3 * 8  # 73,728


# ---------------------------------------------------------------------- templates
def test_cost_model_needs_a_resolved_template():
    with pytest.raises(ValueError, match="resolved"):
        CostModel(_TEMPLATE, _TABLE)


# ---------------------------------------------------------------------- compute energy
def test_ann_conv_compute_energy_is_macs_times_mac_energy():
    rep = model().cost(Workload((conv(),)))
    assert conv().macs == CONV_MACS
    assert rep.macs[0] == CONV_MACS and rep.ops[0] == CONV_MACS
    assert rep.energy["compute"][0] == approx(CONV_MACS * E_MAC8)
    assert rep.energy["neuron"][0] == 0.0
    assert "spike_rate_assumed" not in rep.assumptions


def test_snn_conv_compute_energy_is_gated_accumulates():
    T, r = 4, 0.3
    layer = conv(spiking_input=True, timesteps=T)
    rep = model().cost(Workload((layer,)), spike_rates={"c": r})
    assert rep.macs[0] == CONV_MACS * T
    assert rep.ops[0] == approx(CONV_MACS * T * r)
    assert rep.energy["compute"][0] == approx(CONV_MACS * T * r * E_ADD8)
    # rates outside [0, 1] are clipped
    rep2 = model().cost(Workload((layer,)), spike_rates={"c": 1.7})
    assert rep2.energy["compute"][0] == approx(CONV_MACS * T * E_ADD8)


def test_zero_spike_rate_zero_compute_and_missing_rates_recorded():
    layers = (conv("a", spiking_input=True, timesteps=2), conv("b", spiking_input=True, timesteps=2),
              conv("ann"))
    wl = Workload(layers)
    rep = model().cost(wl, spike_rates={"a": 0.0, "ann": 0.0})
    assert rep.energy["compute"][0] == 0.0 and rep.ops[0] == 0.0
    # only the latched 1-bit operands remain in the registers
    assert rep.energy["register"][0] == approx(CONV_MACS * 2 * 1 * E_REG)
    # b had no rate: upper bound 1.0, and it is recorded
    assert rep.assumptions["spike_rate_assumed"] == {"rate": 1.0, "layers": ["b"]}
    assert rep.energy["compute"][1] == approx(CONV_MACS * 2 * E_ADD8)
    # a rate given for a non-spiking layer is ignored
    assert rep.energy["compute"][2] == approx(CONV_MACS * E_MAC8)
    rep = model().cost(wl, spike_rates={"a": 0.5}, default_rate=0.25)
    assert rep.assumptions["spike_rate_assumed"] == {"rate": 0.25, "layers": ["b"]}
    assert rep.energy["compute"][1] == approx(CONV_MACS * 2 * 0.25 * E_ADD8)
    rep = model().cost(wl, spike_rates={"a": 0.5, "b": 0.5})
    assert "spike_rate_assumed" not in rep.assumptions


def test_planned_snn_workload_missing_rates_name_exactly_the_spiking_layers():
    from nasco.nn import plan_network, plan_workload
    from nasco.space import SearchSpace

    space = SearchSpace(load_spec("darts_snn"), _TEMPLATE)
    cand = space.sample(np.random.default_rng(0))
    arch, hw = space.resolve(cand)
    wl = plan_workload(plan_network(arch, cand.arch["cell"], (1, 8, 8), 10))
    spiking = [layer.name for layer in wl.layers if layer.spiking_input and layer.kind in ("conv", "linear")]
    given = {name: 0.0 for name in spiking[::2]}
    rep = CostModel(hw, _TABLE).cost(wl, spike_rates=given)
    assert rep.assumptions["spike_rate_assumed"]["layers"] == spiking[1::2]
    zero = [i for i, n in enumerate(rep.names) if n in given]
    assert all(rep.energy["compute"][i] == 0.0 for i in zero)
    assert rep.total()["macs"] == wl.macs


# ---------------------------------------------------------------------- register / sram / dram
# ws on an 8x8 array (module docstring of _systolic): Sr = W = 3*3*8 = 72, Sc = K = 16,
# T = Npx = 64; Fr = 9, Fc = 2. ifmap reads Fc*Sr*T, filter reads Sr*Sc, ofmap writes Fr*Sc*T.
WS_IFMAP, WS_FILTER, WS_OFMAP = 2 * 72 * 64, 72 * 16, 9 * 16 * 64
WS_CYCLES = 9 * 2 * (64 + 2 * 8 + 8 - 2) - 1


def test_ann_register_sram_dram_terms():
    rep = model().cost(Workload((conv(),)))
    # every MAC latches an 8-bit operand, reads the 8-bit weight and updates the 32-bit psum
    assert rep.energy["register"][0] == approx(CONV_MACS * (AB + WB + ACC) * E_REG)
    sram = (WS_IFMAP * AB + WS_FILTER * WB) * E_SRAM_R + WS_OFMAP * AB * E_SRAM_W
    assert rep.energy["sram"][0] == approx(sram)
    # everything fits: each operand crosses once
    w_bits, i_bits, o_bits = 3 * 3 * 8 * 16 * WB, 10 * 10 * 8 * AB, 8 * 8 * 16 * AB
    dram = w_bits + i_bits + o_bits
    assert rep.energy["dram"][0] == approx(dram * E_DRAM)
    assert rep.compute_cycles[0] == WS_CYCLES
    # Double buffering hides all traffic but the first tile's load and the last tile's store;
    # every operand is smaller than half its buffer, so all of it is exposed once.
    assert rep.cycles[0] == WS_CYCLES + math.ceil(dram / 8 / 8)
    assert rep.latency_s[0] == approx((WS_CYCLES + math.ceil(dram / 8 / 8)) / 200e6)
    assert rep.energy_j[0] == approx(sum(rep.energy[k][0] for k in rep.energy))


def test_snn_register_sram_dram_terms():
    T, r = 4, 0.3
    rep = model().cost(Workload((conv(spiking_input=True, timesteps=T),)), spike_rates={"c": r})
    macs = CONV_MACS * T
    assert rep.energy["register"][0] == approx((macs * 1 + macs * r * (WB + ACC)) * E_REG)
    sram = ((WS_IFMAP * 1 + WS_FILTER * WB) * E_SRAM_R + WS_OFMAP * AB * E_SRAM_W) * T
    assert rep.energy["sram"][0] == approx(sram)
    # weights fit: fetched once for all timesteps; 1-bit spikes in, 8-bit outputs out every step
    dram = 3 * 3 * 8 * 16 * WB + (10 * 10 * 8 * 1 + 8 * 8 * 16 * AB) * T
    assert rep.energy["dram"][0] == approx(dram * E_DRAM)
    assert rep.compute_cycles[0] == WS_CYCLES * T


def test_snn_weights_that_do_not_fit_move_every_timestep():
    T = 3
    # 66x66x32 spikes = 136 Kib > 128 Kib, 3x3x32x64 8-bit weights = 144 Kib > 128 Kib
    layer = conv("big", ifmap_h=66, ifmap_w=66, channels=32, num_filters=64, spiking_input=True, timesteps=T)
    rates = {"big": 0.5}
    rep = model(buffers__ifmap_kb=16, buffers__filter_kb=16).cost(Workload((layer,)), spike_rates=rates)
    w_bits, i_bits, o_bits = 3 * 3 * 32 * 64 * WB, 66 * 66 * 32 * 1, 64 * 64 * 64 * AB
    assert w_bits > 16 * KIB and i_bits > 16 * KIB
    tiles_w, tiles_i = math.ceil(w_bits / (16 * KIB)), math.ceil(i_bits / (16 * KIB))
    # neither fits: the cheaper loop order re-streams one operand per tile of the other
    if i_bits * tiles_w + w_bits <= w_bits * tiles_i + i_bits:
        dram = w_bits * T + (i_bits * tiles_w + o_bits) * T
    else:
        dram = w_bits * tiles_i * T + (i_bits + o_bits) * T
    assert dram == _dram_bits_documented(layer, 16, 16)
    assert rep.energy["dram"][0] == approx(dram * E_DRAM)
    # with room for the weights they cross once for all timesteps
    rep = model(buffers__ifmap_kb=64, buffers__filter_kb=64).cost(Workload((layer,)), spike_rates=rates)
    assert rep.energy["dram"][0] == approx((w_bits + (i_bits + o_bits) * T) * E_DRAM)


def _dram_bits_documented(layer: Layer, ifmap_kb, filter_kb, wb=WB, ab=AB):
    """'when either operand fits its buffer it stays resident while the other streams through
    once; when neither fits, one is tiled and the other re-streamed for every tile, in the
    cheaper loop order'; weights that fit stay on chip across timesteps, activations move
    every step."""
    in_bits = 1 if layer.spiking_input else ab
    w = layer.filter_h * layer.filter_w * (layer.channels // layer.groups) * layer.num_filters * wb
    i = ((layer.ofmap_h - 1) * layer.stride + layer.filter_h) * \
        ((layer.ofmap_w - 1) * layer.stride + layer.filter_w) * layer.channels * in_bits
    o = layer.ofmap_h * layer.ofmap_w * layer.num_filters * ab
    tiles_w, tiles_i = math.ceil(w / (filter_kb * KIB)), math.ceil(i / (ifmap_kb * KIB))
    w_fits, i_fits = w <= filter_kb * KIB, i <= ifmap_kb * KIB
    if w_fits or i_fits:
        dram_w, dram_i = w, i
    elif i * tiles_w + w <= w * tiles_i + i:
        dram_w, dram_i = w, i * tiles_w
    else:
        dram_w, dram_i = w * tiles_i, i
    T = layer.timesteps
    return dram_w * (1 if w_fits else T) + (dram_i + o) * T


# 34x34x32 ifmap (8 bit) = 36.1 KiB, 3x3x32x64 weights = 18 KiB
BIG = conv("big", ifmap_h=34, ifmap_w=34, channels=32, num_filters=64)


@pytest.mark.parametrize("kb", [(64, 64), (16, 16)], ids=["both_fit", "neither_fits"])
def test_dram_bits_match_the_documented_rule(kb):
    rep = model(buffers__ifmap_kb=kb[0], buffers__filter_kb=kb[1]).cost(Workload((BIG,)))
    assert rep.energy["dram"][0] == approx(_dram_bits_documented(BIG, *kb) * E_DRAM)


def test_dram_bits_when_only_the_weights_fit():
    # ifmap 36 KiB > 32 KiB, weights 18 KiB <= 32 KiB
    rep = model(buffers__ifmap_kb=32, buffers__filter_kb=32).cost(Workload((BIG,)))
    assert rep.energy["dram"][0] == approx(_dram_bits_documented(BIG, 32, 32) * E_DRAM)


def test_shrinking_buffers_increases_dram_energy_when_the_layer_does_not_fit():
    big = model(buffers__ifmap_kb=64, buffers__filter_kb=64).cost(Workload((BIG,)))
    small = model(buffers__ifmap_kb=16, buffers__filter_kb=16).cost(Workload((BIG,)))
    assert small.energy["dram"][0] > big.energy["dram"][0]
    assert small.compute_cycles[0] == big.compute_cycles[0]
    # a layer that fits both ways costs the same DRAM energy
    a = model(buffers__ifmap_kb=64, buffers__filter_kb=64).cost(Workload((conv(),)))
    b = model(buffers__ifmap_kb=16, buffers__filter_kb=16).cost(Workload((conv(),)))
    assert a.energy["dram"][0] == b.energy["dram"][0]
    # and the area grows with the buffers
    assert model(buffers__ifmap_kb=64).area_mm2(False) > model(buffers__ifmap_kb=16).area_mm2(False)


# ---------------------------------------------------------------------- neurons
def test_neuron_layer_energy_cycles_and_membrane_placement():
    T = 4
    on = Layer("n", "neuron", timesteps=T, elements=1024)  # 16 Kib of membrane <= 16 KiB ofmap
    off = Layer("m", "neuron", timesteps=T, elements=10000)  # 160 Kib > 128 Kib
    rep = model().cost(Workload((on, off)))
    e_op = 2 * E_ADD16 * MB / 16  # leak + threshold compare at membrane width
    assert rep.energy["neuron"][0] == approx((1024 * e_op + 1024 * MB * (E_SRAM_R + E_SRAM_W)) * T)
    assert rep.energy["dram"][0] == 0.0
    assert rep.compute_cycles[0] == math.ceil(1024 / 8) * T
    assert rep.cycles[0] == math.ceil(1024 / 8) * T
    assert rep.energy["neuron"][1] == approx(10000 * e_op * T)
    mem_dram = 2 * 10000 * MB * T
    assert rep.energy["dram"][1] == approx(mem_dram * E_DRAM)
    assert rep.compute_cycles[1] == math.ceil(10000 / 8) * T
    assert rep.cycles[1] == math.ceil(mem_dram / 8 / 8)  # DRAM bound
    for k in ("compute", "register", "sram"):
        assert rep.energy[k][0] == 0.0 and rep.energy[k][1] == 0.0
    assert rep.macs.sum() == 0


# ---------------------------------------------------------------------- pool / add layers
# Pool and add layers run on a vector unit of one lane per array column (8 here): one op per
# lane per cycle; a pool charges k*k ops per output, an add of n operands n - 1 per output.
def test_avg_pool_layer_cycles_energy_and_dram():
    # 3x3/1 pool on an 8x8x16 map padded to 10x10: 8x8x16 outputs
    layer = Layer("p", "pool", 10, 10, 3, 3, 16, 16, 1)
    assert layer.elements == layer.ofmap_elements == 8 * 8 * 16 and layer.macs == layer.params == 0
    rep = model().cost(Workload((layer,)))
    ops = 1024 * 9
    assert rep.compute_cycles[0] == math.ceil(ops / 8) == 1152
    assert rep.energy["compute"][0] == approx(ops * E_ADD8 * AB / 8)
    in_el, out_el = 10 * 10 * 16, 1024  # each (padded) input read once, each output written once
    assert rep.energy["sram"][0] == approx(in_el * AB * E_SRAM_R + out_el * AB * E_SRAM_W)
    dram = in_el * AB + out_el * AB
    assert rep.energy["dram"][0] == approx(dram * E_DRAM)
    # every operand is within half its buffer: its whole transfer is exposed once
    assert rep.cycles[0] == 1152 + math.ceil(dram / 8 / 8)
    assert rep.latency_s[0] == approx((1152 + math.ceil(dram / 8 / 8)) / 200e6)
    assert rep.energy["register"][0] == rep.energy["neuron"][0] == 0.0
    assert rep.macs[0] == rep.ops[0] == rep.utilization[0] == 0.0


def test_binary_max_pool_is_one_bit_ors_and_takes_no_spike_rate():
    T = 4
    # 2x2/2 pool of 18x18x64 spikes: 9x9x64 outputs, every timestep
    layer = Layer("mp", "pool", 18, 18, 2, 2, 64, 64, 2, spiking_input=True, timesteps=T)
    assert layer.elements == 9 * 9 * 64
    rep = model().cost(Workload((layer,)))
    assert "spike_rate_assumed" not in rep.assumptions
    ops = 9 * 9 * 64 * 4
    assert rep.compute_cycles[0] == math.ceil(ops / 8) * T
    assert rep.energy["compute"][0] == approx(ops * T * E_ADD8 / 8)
    in_bits, out_bits = 18 * 18 * 64 * 1, 9 * 9 * 64 * AB
    assert rep.energy["sram"][0] == approx((in_bits * E_SRAM_R + out_bits * E_SRAM_W) * T)
    assert rep.energy["dram"][0] == approx((in_bits + out_bits) * T * E_DRAM)
    # one timestep's input and output are exposed; all T steps' traffic bounds from below
    assert rep.cycles[0] == max(math.ceil(ops / 8) * T + math.ceil((in_bits + out_bits) / 8 / 8),
                                math.ceil((in_bits + out_bits) * T / 8 / 8))
    assert rep.energy["register"][0] == rep.energy["neuron"][0] == 0.0


def test_add_layer_cycles_energy_and_dram():
    T = 2
    layer = Layer("s", "add", elements=4096, operands=3, timesteps=T)
    assert layer.macs == layer.params == 0 and layer.ofmap_elements == 4096
    rep = model().cost(Workload((layer,)))
    ops = 4096 * (3 - 1)
    assert rep.compute_cycles[0] == math.ceil(ops / 8) * T == 2048
    assert rep.energy["compute"][0] == approx(ops * T * E_ADD8 * AB / 8)
    in_bits, out_bits = 3 * 4096 * AB, 4096 * AB
    assert rep.energy["sram"][0] == approx((in_bits * E_SRAM_R + out_bits * E_SRAM_W) * T)
    dram = (in_bits + out_bits) * T
    assert rep.energy["dram"][0] == approx(dram * E_DRAM)
    assert rep.cycles[0] == math.ceil(dram / 8 / 8) == 4096  # DRAM bound
    assert rep.energy["register"][0] == rep.energy["neuron"][0] == 0.0
    assert rep.macs[0] == rep.utilization[0] == 0.0
    # a two-input add is one add per output element
    two = model().cost(Workload((Layer("t", "add", elements=4096, operands=2),)))
    assert two.energy["compute"][0] == approx(4096 * E_ADD8)
    assert two.compute_cycles[0] == 4096 // 8


def test_vector_op_energy_scales_with_activation_bits():
    layers = (Layer("p", "pool", 10, 10, 3, 3, 16, 16, 1), Layer("s", "add", elements=100, operands=2))
    from nasco.hw._snn import quantised_template

    m = model()
    rep = CostModel(quantised_template(m.t, 4), _TABLE).cost(Workload(layers))
    assert rep.energy["compute"][0] == approx(1024 * 9 * E_ADD8 * 4 / 8)
    assert rep.energy["compute"][1] == approx(100 * E_ADD8 * 4 / 8)


def test_pool_and_add_layer_validation():
    with pytest.raises(ValueError, match="output elements"):
        Layer("p", "pool", 10, 10, 3, 3, 16, 16, 1, elements=5)
    with pytest.raises(ValueError, match="channels == num_filters"):
        Layer("p", "pool", 10, 10, 3, 3, 16, 8, 1)
    with pytest.raises(ValueError, match="larger than"):
        Layer("p", "pool", 2, 2, 3, 3, 16, 16, 1)
    with pytest.raises(ValueError, match="elements >= 1"):
        Layer("s", "add")
    with pytest.raises(ValueError, match="operands"):
        Layer("s", "add", elements=4, operands=0)
    with pytest.raises(ValueError, match="unknown kind"):
        Layer("x", "gap")


def test_scalesim_csv_leaves_out_pool_add_and_neuron_layers(tmp_path):
    from nasco.hw import write_scalesim_csv

    wl = Workload((conv("c"), Layer("p", "pool", 10, 10, 2, 2, 16, 16, 2), Layer("n", "neuron", elements=4),
                   Layer("s", "add", elements=4, operands=2), Layer("fc", "linear", channels=64, num_filters=10)))
    write_scalesim_csv(wl, tmp_path / "t.csv")
    assert [layer.name for layer in read_scalesim_csv(tmp_path / "t.csv").layers] == ["c", "fc"]


# ---------------------------------------------------------------------- cycles / latency
@pytest.mark.parametrize("df", ["os", "ws", "is"])
def test_compute_cycles_are_systolic_cycles_times_timesteps(df):
    layers = (conv("a", timesteps=1), conv("b", spiking_input=True, timesteps=4),
              conv("s2", ifmap_h=17, ifmap_w=17, stride=2, channels=16, num_filters=24, timesteps=2),
              Layer("fc", "linear", channels=64, num_filters=10, timesteps=3))
    rep = model(dataflow=df, pe_array__rows=12, pe_array__cols=14).cost(Workload(layers))
    for i, layer in enumerate(layers):
        one = systolic_compute_cycles(df, 12, 14, layer.ifmap_h, layer.ifmap_w, layer.filter_h,
                                      layer.filter_w, layer.channels, layer.num_filters, layer.stride)
        assert rep.compute_cycles[i] == int(one) * layer.timesteps


def test_latency_is_compute_plus_exposed_fill_or_dram_over_clock():
    """Double-buffered transfers overlap compute except the first tile's load and the last
    tile's store (half a buffer each, or the whole operand when smaller): a layer takes
    max(compute + exposed, all DRAM traffic) cycles."""
    # a 1x1 conv on a 32x32x16 map (every operand within half its buffer: all exposed), and a
    # 1024 -> 1024 linear layer whose 1 MiB of weights stream through a 16 KiB filter buffer
    # (DRAM bound on some dataflows and bandwidths: exposure capped at half the buffer)
    FC = conv("fc", ifmap_h=1, ifmap_w=1, filter_h=1, filter_w=1, channels=1024, num_filters=1024)
    pw = conv("pw", ifmap_h=32, ifmap_w=32, filter_h=1, filter_w=1, channels=16, num_filters=8)
    half = 8 * 1024 * 8  # half of a 16 KiB buffer, in bits
    cases = [
        (pw, {}, 16 * 8 * WB + 32 * 32 * 16 * AB + 32 * 32 * 8 * AB, 16 * 8 * WB + 32 * 32 * 16 * AB + 32 * 32 * 8 * AB),
        (FC, {"buffers__filter_kb": 16}, 1024 * 1024 * WB + 1024 * AB + 1024 * AB,
         half + 1024 * AB + 1024 * AB),
    ]
    regimes = set()
    for layer, bufs, dram_bits, exposed in cases:
        for df in ("os", "ws"):
            for clock in (200, 400):
                for bw in (4, 8, 16):
                    m = model(dataflow=df, clock_mhz=clock, bandwidth__dram_bytes_per_cycle=bw, **bufs)
                    rep = m.cost(Workload((layer,)))
                    assert rep.energy["dram"][0] == approx(dram_bits * E_DRAM)
                    compute = int(systolic_compute_cycles(
                        df, 8, 8, layer.ifmap_h, layer.ifmap_w, layer.filter_h, layer.filter_w,
                        layer.channels, layer.num_filters, 1))
                    assert rep.compute_cycles[0] == compute
                    fill, dram = math.ceil(exposed / 8 / bw), math.ceil(dram_bits / 8 / bw)
                    assert rep.cycles[0] == max(compute + fill, dram)
                    assert rep.latency_s[0] == approx(max(compute + fill, dram) / (clock * 1e6))
                    regimes.add("dram" if dram > compute + fill else "compute")
    assert regimes == {"dram", "compute"}


def test_fold_tiles_expose_one_fold_of_each_operand():
    """bandwidth.exposed: fold: the exposed first load and last store are each operand's share
    of one fold of the array (its words over the layer's folds), never more than half its buffer."""
    # pw: 1x1 conv, 32x32 map, 16 -> 8 channels; on 8x8 PEs ws folds W = 16 rows into 2 and
    # K = 8 columns into 1 (2 folds); os folds Npx = 1024 pixels into 128 and K into 1 (128).
    pw = conv("pw", ifmap_h=32, ifmap_w=32, filter_h=1, filter_w=1, channels=16, num_filters=8)
    i_bits, w_bits, o_bits = 32 * 32 * 16 * AB, 16 * 8 * WB, 32 * 32 * 8 * AB
    # FC: 1024 -> 1024 with a 16 KiB filter buffer: ws folds 1024 rows and 1024 columns into
    # 128 x 128; the weights' fold share, 8 Mib / 16384 = 512 bits, is far below half the buffer.
    FC = conv("fc", ifmap_h=1, ifmap_w=1, filter_h=1, filter_w=1, channels=1024, num_filters=1024)
    cases = [(pw, "ws", {}, 2, (i_bits, w_bits, o_bits)), (pw, "os", {}, 128, (i_bits, w_bits, o_bits)),
             (FC, "ws", {"buffers__filter_kb": 16}, 128 * 128, (1024 * AB, 1024 * 1024 * WB, 1024 * AB))]
    for layer, df, bufs, folds, operands in cases:
        base = model(dataflow=df, **bufs)
        t = base.t
        fold = CostModel(dataclasses.replace(t, bandwidth=dataclasses.replace(t.bandwidth, exposed="fold")), _TABLE)
        rep, rep_buffer = fold.cost(Workload((layer,))), base.cost(Workload((layer,)))
        exposed = sum(b / folds for b in operands)
        fill = math.ceil(exposed / 8 / 8)
        assert rep.compute_cycles[0] == rep_buffer.compute_cycles[0]
        dram = math.ceil(sum(operands) / 8 / 8)
        assert rep.cycles[0] == max(rep.compute_cycles[0] + fill, dram), (layer.name, df)
        assert rep.energy_j.sum() == rep_buffer.energy_j.sum()  # only when transfers happen changes


def test_more_dram_bandwidth_never_increases_latency():
    rng = np.random.default_rng(0)
    layers = []
    for i in range(40):
        k = int(rng.choice([1, 3, 5]))
        s = int(rng.choice([1, 2]))
        h = int(rng.integers(k, 40))
        ch, nf = int(rng.integers(1, 96)), int(rng.integers(1, 128))
        layers.append(Layer(f"l{i}", "conv", h, h, k, k, ch, nf, s,
                            spiking_input=bool(rng.integers(2)), timesteps=int(rng.choice([1, 4]))))
    wl = Workload(tuple(layers))
    strictly = 0
    for df in ("os", "ws", "is"):
        lat = [model(dataflow=df, bandwidth__dram_bytes_per_cycle=bw, buffers__ifmap_kb=16,
                     buffers__filter_kb=16).cost(wl).latency_s for bw in (4, 8, 16)]
        assert np.all(lat[1] <= lat[0]) and np.all(lat[2] <= lat[1])
        strictly += int(np.sum(lat[2] < lat[0]))
    assert strictly > 0


def test_grouped_conv_costs_groups_times_one_group():
    dw = conv("dw", channels=16, num_filters=16, groups=16)
    one = conv("one", channels=1, num_filters=1)
    for df in ("os", "ws", "is"):
        rep = model(dataflow=df).cost(Workload((dw, one)))
        assert rep.compute_cycles[0] == 16 * rep.compute_cycles[1]
        assert rep.energy["sram"][0] == approx(16 * rep.energy["sram"][1])
        assert rep.macs[0] == 16 * rep.macs[1] == 8 * 8 * 16 * 9
        assert rep.compute_cycles[0] == 16 * int(systolic_compute_cycles(df, 8, 8, 10, 10, 3, 3, 1, 1, 1))
    assert dw.params == 16 * 9 and dw.macs == 8 * 8 * 16 * 9


def test_dataflows_differ_on_a_nontrivial_layer():
    # os: Sr=Npx=64, Sc=16, T=72 -> 8*2 folds of 72+8+8-2; is: Sr=72, Sc=64, T=16 -> 9*8 folds
    expect = {"os": 16 * (72 + 8 + 8 - 2) - 1, "ws": WS_CYCLES, "is": 72 * (16 + 16 + 8 - 2) - 1}
    reps = {df: model(dataflow=df).cost(Workload((conv(),))) for df in ("os", "ws", "is")}
    assert {df: int(r.compute_cycles[0]) for df, r in reps.items()} == expect
    assert len({float(r.energy["sram"][0]) for r in reps.values()}) == 3
    assert all(r.energy["compute"][0] == reps["os"].energy["compute"][0] for r in reps.values())
    assert all(r.assumptions["dataflow"] == df for df, r in reps.items())


# ---------------------------------------------------------------------- area
@pytest.mark.parametrize("rows,cols,kb", [(8, 8, (32, 32, 16)), (12, 14, (16, 64, 32)),
                                         (32, 32, (64, 16, 16))])
def test_area_formula(rows, cols, kb):
    m = model(pe_array__rows=rows, pe_array__cols=cols, buffers__ifmap_kb=kb[0], buffers__filter_kb=kb[1],
              buffers__ofmap_kb=kb[2])
    pe = A_MULT8 * WB * AB / 64 + A_ADD32 * ACC / 32 + A_REG * (WB + AB + ACC)
    sram = sum(kb) * 1024 * 8 * A_SRAM
    lif = cols * (2 * A_ADD8 * MB / 8 + A_REG * MB)
    ann = rows * cols * pe + sram
    assert m.area_mm2(False) == approx(ann)
    assert m.area_mm2(True) == approx(ann + lif)
    # the report charges the LIF units only when the workload has neuron layers
    assert m.cost(Workload((conv(),))).area_mm2 == approx(ann)
    neuron = Layer("n", "neuron", timesteps=2, elements=64)
    assert m.cost(Workload((conv(), neuron))).area_mm2 == approx(ann + lif)


# ---------------------------------------------------------------------- SCALE-Sim CSV
HEADER = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
          "Strides,\n")


def _csv(tmp_path, body: str, header: str = HEADER):
    p = tmp_path / "topo.csv"
    p.write_text(header + body)
    return p


def test_scalesim_csv_ceil_output_size(tmp_path):
    p = _csv(tmp_path, "conv1, 14, 14, 5, 5, 3, 8, 2,\n"
                       "conv2, 12, 10, 3, 3, 8, 16, 1,\n"
                       "fc, 1, 1, 1, 1, 64, 10, 1,\n")
    wl = read_scalesim_csv(p)
    assert wl.name == "topo" and [layer.name for layer in wl.layers] == ["conv1", "conv2", "fc"]
    c1, c2, fc = wl.layers
    assert (c1.ofmap_h, c1.ofmap_w) == (6, 6)  # ceil((14 - 5) / 2) + 1
    assert c1.macs == 6 * 6 * 8 * 5 * 5 * 3
    assert (c2.ofmap_h, c2.ofmap_w) == (10, 8) and (c2.channels, c2.num_filters, c2.stride) == (8, 16, 1)
    assert fc.macs == 640
    # the cost model then matches SCALE-Sim on the file's own numbers
    for df in ("os", "ws", "is"):
        rep = model(dataflow=df).cost(wl)
        assert rep.compute_cycles[0] == int(systolic_compute_cycles(df, 8, 8, 14, 14, 5, 5, 3, 8, 2))


@pytest.mark.parametrize("header,body,line,match", [
    ("Layer, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n",
     "c, 8, 8, 3, 3, 3, 8, 1,\n", 1, "header"),
    (HEADER, "c, 8, 8, 3, 3, 3, 8, 1,\nd, 8, 8.5, 3, 3, 3, 8, 1,\n", 3, "integers"),
    (HEADER, "c, 8, 8, 3, 3, 3, 8, 1,\nd, 8, 8, x, 3, 3, 8, 1,\n", 3, "integers"),
    (HEADER, "c, 4, 4, 5, 5, 3, 8, 1,\n", 2, "filter no larger"),
    (HEADER, "c, 8, 8, 3, 3, 3, 0, 1,\n", 2, "positive"),
    (HEADER, "c, 8, 8, 3, 3,\n", 2, "8 values"),
])
def test_scalesim_csv_errors_name_file_and_line(tmp_path, header, body, line, match):
    p = _csv(tmp_path, body, header)
    with pytest.raises(SpecError, match=match) as err:
        read_scalesim_csv(p)
    assert err.value.file == str(p) and err.value.line == line
    assert f"{p}:{line}:" in str(err.value)


def test_scalesim_csv_empty_and_missing(tmp_path):
    p = tmp_path / "empty.csv"
    p.write_text("\n\n")
    with pytest.raises(SpecError, match="empty"):
        read_scalesim_csv(p)
    with pytest.raises(SpecError) as err:
        read_scalesim_csv(tmp_path / "nope.csv")
    assert err.value.file == str(tmp_path / "nope.csv")


def test_scalesim_csv_line_numbers_count_blank_lines(tmp_path):
    p = _csv(tmp_path, "c, 8, 8, 3, 3, 3, 8, 1,\n\nd, 8, 8, x, 3, 3, 8, 1,\n")
    with pytest.raises(SpecError) as err:
        read_scalesim_csv(p)
    assert err.value.line == 4
