"""The row-stationary model against outside references (tests/fixtures/timeloop/REFERENCE.md):
Timeloop/Accelergy's Eyeriss-like example under both stored mappings, the older 16-bit design on
AlexNet CONV1, exercise 06's eyeriss-256 on a VGG-like layer, and the Eyeriss chip's AlexNet and
VGG-16 figures (JSSC 2017)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from nasco.dsl import load_energy_table, load_spec, resolve
from nasco.hw import CostModel, Layer, Workload
from nasco.hw._rowstationary import rs_layer_accesses

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "timeloop"


@pytest.fixture(scope="module")
def reference() -> dict:
    text = (FIXTURES / "REFERENCE.md").read_text()
    return yaml.safe_load(re.findall(r"```yaml\n(.*?)```", text, re.S)[0])


def _model(template, **choices):
    t = resolve(template, choices)
    return CostModel(t, load_energy_table(t))


def _conv(name, r, s, p, q, c, m, stride, groups=1):
    """A conv layer from Timeloop/Eyeriss shape names (C per group, M in all), padded ifmap."""
    return Layer(name, ifmap_h=(p - 1) * stride + r, ifmap_w=(q - 1) * stride + s, filter_h=r, filter_w=s,
                 channels=c * groups, num_filters=m, stride=stride, groups=groups)


# Every bound below is a deviation measured on the current model plus MARGIN: room for
# refinements that move a figure by less than 2 points; a larger move must re-measure the figure
# and restate it here. Deviations are nasco / reference - 1.
MARGIN = 0.02


def _dev(got: float, ref: float) -> float:
    return got / ref - 1


def _timeloop_run(reference, name):
    run = next(r for r in reference["timeloop_reference_runs"] if r["name"] == name)
    template = load_spec(FIXTURES / "eyeriss_like_v0_4.yaml")
    layer = _conv("layer", run["R"], run["S"], run["P"], run["Q"], run["C"], run["M"], run["stride"])
    tot = _model(template).cost(Workload((layer,))).total()
    per_mac = {k: v / tot["macs"] * 1e12 for k, v in tot["energy"].items()}  # pJ per MAC
    return run, tot, per_mac


def test_timeloop_eyeriss_like_example_cycles_and_energy(reference):
    run, tot, pj = _timeloop_run(reference, "mobilenet_v1_conv1_like_default_problem")
    assert tot["macs"] == run["macs"]
    # Measured -15.4 % (72,812 vs 86,016 cycles: nasco's RS mapping keeps more PEs busy than the
    # mapping Timeloop's mapper found); bound 17.4 %.
    assert abs(_dev(tot["cycles"], run["cycles"])) <= 0.154 + MARGIN, (tot["cycles"], run["cycles"])
    # Measured -1.8 % (5.370 vs 5.470 pJ/MAC); bound 3.8 %.
    assert abs(_dev(tot["energy_j"] / tot["macs"] * 1e12, run["pJ_per_mac"])) <= 0.018 + MARGIN
    ref = run["per_level_pJ_per_mac"]
    # The levels one by one. Scratchpads: measured +3.6 %, bound 5.6 %; DRAM: measured -3.2 %,
    # bound 5.2 %; global buffer: measured -12.1 % (ifmap rows serve the p filters a PE's
    # scratchpads hold and vertically stacked channels add their psums in the array, as in
    # Timeloop's mapping), bound 14.1 %.
    spads = ref["psum_spad"] + ref["weights_spad"] + ref["ifmap_spad"]
    assert abs(_dev(pj["register"], spads)) <= 0.036 + MARGIN
    assert abs(_dev(pj["dram"], ref["DRAM"])) <= 0.032 + MARGIN
    assert abs(_dev(pj["sram"], ref["shared_glb"])) <= 0.121 + MARGIN
    # The MAC is the ERT's 0.207692 pJ; the stats print 0.20769 (measured 9.6e-6): bound half a
    # unit of the printed last digit, 0.000005 / 0.20769 = 2.4e-5.
    assert abs(_dev(pj["compute"], ref["mac"])) <= 0.000005 / ref["mac"]


def test_timeloop_eyeriss_like_older_mapping(reference):
    """The same layer as mapped by an older Timeloop mapper (A1-b in REFERENCE.md): 72 PEs busy,
    150,528 cycles. Energy is mostly DRAM and scratchpad traffic, which the mapping moves little."""
    run, tot, pj = _timeloop_run(reference, "mobilenet_v1_conv1_like_default_problem_older_mapping")
    newer = next(r for r in reference["timeloop_reference_runs"]
                 if r["name"] == "mobilenet_v1_conv1_like_default_problem")
    assert tot["macs"] == run["macs"]
    # nasco's mapping is faster than both mappings Timeloop found (-51.6 % against this one).
    assert tot["cycles"] < newer["cycles"] < run["cycles"]
    # Total: measured -6.5 % (5.370 vs 5.74 pJ/MAC), bound 8.5 %. DRAM: measured -2.0 %, bound
    # 4.0 %; scratchpads: measured -6.6 %, bound 8.6 % (these figures are printed to 0.01 pJ,
    # i.e. to 0.5-2 %, which the margin also covers). The global buffer is left out: its traffic
    # depends on the mapping (measured -37.8 % against this one, -12.1 % against the newer).
    assert abs(_dev(tot["energy_j"] / tot["macs"] * 1e12, run["pJ_per_mac"])) <= 0.065 + MARGIN
    ref = run["per_level_pJ_per_mac"]
    assert abs(_dev(pj["dram"], ref["DRAM"])) <= 0.020 + MARGIN
    spads = ref["psum_spad"] + ref["weights_spad"] + ref["ifmap_spad"]
    assert abs(_dev(pj["register"], spads)) <= 0.066 + MARGIN


def _timeloop_other(reference, name, template):
    """A Timeloop run on another design (REFERENCE.md A2/A3), costed per image on the fixture
    template and energy table written from that design's architecture and ERT."""
    run = next(r for r in reference["timeloop_reference_runs"] if r["name"] == name)
    t = load_spec(FIXTURES / template)
    layer = _conv("layer", run["R"], run["S"], run["P"], run["Q"], run["C"], run["M"], run["stride"])
    tot = _model(t).cost(Workload((layer,))).total()
    return run, tot, {k: v / tot["macs"] * 1e12 for k, v in tot["energy"].items()}


def test_timeloop_v0_3_alexnet_conv1(reference):
    """AlexNet CONV1 on the 16-bit, 45 nm Eyeriss-like v0.3 (A2). Timeloop's mapper kept the
    DRAM loop over Q outermost, so it reads the weights from DRAM 55 times (1,916,640 reads of
    34,848 weights); nasco's mapping reads them once, so its DRAM energy, and with it the total,
    sits far below Timeloop's, but above the compulsory traffic."""
    run, tot, pj = _timeloop_other(reference, "alexnet_conv1", "eyeriss_like_v0_3.yaml")
    assert tot["macs"] == run["macs"]
    # Measured -11.2 % (709,184 vs 798,600 cycles); bound 13.2 %.
    assert abs(_dev(tot["cycles"], run["cycles"])) <= 0.112 + MARGIN, tot["cycles"]
    ref = run["per_level_pJ_per_mac"]
    # Scratchpads measured -2.1 % (2.330 vs 2.38), bound 4.1 %; global buffer measured -2.5 %
    # (0.448 vs 0.46), bound 4.5 %; the MAC is the stats' 2.20 pJ (printed to 0.01 pJ).
    spads = ref["psum_spad"] + ref["weights_spad"] + ref["ifmap_spad"]
    assert abs(_dev(pj["register"], spads)) <= 0.021 + MARGIN
    assert abs(_dev(pj["sram"], ref["shared_glb"])) <= 0.025 + MARGIN
    assert abs(pj["compute"] - ref["mac"]) <= 0.005
    # DRAM between the compulsory traffic (every weight, input and output word once, 128 pJ per
    # 16-bit word) and Timeloop's; total measured -30.3 % (5.73 vs 8.22 pJ/MAC), bound 32.3 %.
    side = (run["P"] - 1) * run["stride"] + run["R"]  # the 227 x 227 input
    words = run["R"] * run["S"] * run["C"] * run["M"] + run["C"] * side * side + run["M"] * run["P"] * run["Q"]
    assert words * 128 / run["macs"] <= pj["dram"] < ref["DRAM"]
    assert abs(_dev(tot["energy_j"] / tot["macs"] * 1e12, run["pJ_per_mac"])) <= 0.303 + MARGIN


def test_timeloop_eyeriss_256_vgg_like_layer(reference):
    """A VGG-like layer (C 256, M 512, 56x56, batch 16) on exercise 06's 16x16 eyeriss-256 (A3),
    per image (Timeloop's figures / 16: nasco's workloads are per image)."""
    run, tot, pj = _timeloop_other(reference, "vgg_like_conv_C256_M512_56x56_N16", "eyeriss_256.yaml")
    n = run["N"]
    assert tot["macs"] * n == run["macs"]
    # Cycles measured -15.5 % (282.1 M vs 334.0 M for 16 images), bound 17.5 %; compute cycles
    # measured -8.6 % (281.9 M vs 308.3 M), bound 10.6 %.
    assert abs(_dev(tot["cycles"] * n, run["cycles"])) <= 0.155 + MARGIN, tot["cycles"]
    assert abs(_dev(tot["compute_cycles"] * n, run["compute_cycles"])) <= 0.086 + MARGIN
    # Total measured +8.4 % (4.47 vs 4.12 pJ/MAC), bound 10.4 %.
    assert abs(_dev(tot["energy_j"] / tot["macs"] * 1e12, run["pJ_per_mac"])) <= 0.084 + MARGIN
    ref = run["per_level_pJ_per_mac"]
    # Register files measured -1.9 % (2.129 vs 2.17), bound 3.9 %; MAC the stats' 1.21 pJ. The
    # template's buffer split is our reading of the exercise (weights bypass the global buffer);
    # global buffer measured +37.5 % (0.316 vs 0.23), bound 39.5 %; DRAM measured +59.1 %
    # (0.812 vs 0.51), bound 61.1 %.
    assert abs(_dev(pj["register"], ref["psum_rf"] + ref["weight_rf"] + ref["input_rf"])) <= 0.019 + MARGIN
    assert abs(pj["compute"] - ref["mac"]) <= 0.005
    assert abs(_dev(pj["sram"], ref["glb"])) <= 0.375 + MARGIN
    assert abs(_dev(pj["dram"], ref["DRAM"])) <= 0.591 + MARGIN


def _chip(reference, key, grouped=()):
    chip = reference[key]
    layers = tuple(_conv(x["name"], x["R"], x["S"], x["P"], x["Q"], x["C"], x["M"], x["stride"],
                         groups=2 if x["name"] in grouped else 1) for x in chip["layers"])
    rep = _model(load_spec("eyeriss_like"), clock_mhz=200).cost(Workload(layers))
    n = chip["layers"][0]["N"]  # images per published row
    processing_ms = np.array([x["processing_latency_ms"] for x in chip["layers"]]) / n
    return chip, rep, n, processing_ms


def test_eyeriss_chip_alexnet_frame_rate_and_layers(reference):
    chip, rep, n, processing_ms = _chip(reference, "eyeriss_chip_alexnet", ("CONV2", "CONV4", "CONV5"))
    # The table prints 2.66 G: half a unit of its last digit is 0.19 % (measured +0.12 %).
    assert abs(_dev(int(rep.macs.sum()) * n, chip["total"]["macs_G"] * 1e9)) <= 0.005 / 2.66
    # Measured +24.2 % (43.1 vs 34.7 fps): the chip's frame rate counts off-chip I/O it does not
    # overlap with compute, which nasco's double-buffered model hides; bound 26.2 %.
    fps = 1.0 / rep.latency_s.sum()
    assert abs(_dev(fps, chip["total"]["fps"])) <= 0.242 + MARGIN, fps
    # Against the chip's processing latency (time in the array) layer by layer, measured -12.4,
    # -14.0, -9.7, -6.9 and +1.0 %; bounds 2 points above each.
    measured = np.array([0.124, 0.140, 0.097, 0.069, 0.010])
    dev = rep.latency_s * 1e3 / processing_ms - 1
    assert (np.abs(dev) <= measured + MARGIN).all(), dev
    # Never faster than the array allows: each layer's latency covers its MACs on 168 PEs.
    assert (rep.cycles * 168 >= rep.macs).all()


def test_eyeriss_chip_vgg16_frame_rate_and_layers(reference):
    """VGG-16 runs at about a fifth of its PEs' rate on the chip (5.55 GMACs of CONV1-2 in
    810.6 ms at 200 MHz is 34 MACs per cycle), for reasons the published figures do not give;
    nasco's RS mapping keeps ~150 PEs busy. The model is a lower bound on every layer's time."""
    chip, rep, n, processing_ms = _chip(reference, "eyeriss_chip_vgg16")
    # The table prints 46.04 G: half a unit of its last digit is 1.1e-4 (measured -2.3e-6).
    assert abs(_dev(int(rep.macs.sum()) * n, chip["total"]["macs_G"] * 1e9)) <= 0.005 / 46.04
    # Measured +207.2 % (2.150 vs 0.7 fps, the abstract's rounded figure); bound 209.2 %.
    fps = 1.0 / rep.latency_s.sum()
    assert abs(_dev(fps, chip["total"]["fps"])) <= 2.072 + MARGIN, fps
    # Layer by layer against the processing latency: measured -14 % (CONV5-x) to -80 %
    # (CONV1-2 to CONV2-2); never slower than the chip, and within 2 points of each measurement.
    measured = np.array([0.262, 0.796, 0.795, 0.796, 0.593, 0.594, 0.594, 0.211, 0.212, 0.212, 0.137,
                         0.141, 0.141])
    dev = rep.latency_s * 1e3 / processing_ms - 1
    assert (dev < 0).all() and (np.abs(dev) <= measured + MARGIN).all(), dev


def test_rs_depthwise_fills_the_array_with_groups():
    """A depthwise 3x3 layer: 64 groups of one (channel, filter) pair; 3x8 sets, so 4x1
    copies of different groups run at once instead of one group at a time."""
    acc = rs_layer_accesses(12, 14, 3, 3, 8, 8, 1, 1, groups=64)
    # passes = ceil(64 pairs / 4 copies) * 1 strip * 1 fold = 16; cycles = 16 * S * F = 16 * 3 * 8
    assert int(acc["cycles"]) == 16 * 3 * 8
    one_at_a_time = 64 * 3 * 8
    assert int(acc["cycles"]) * 4 == one_at_a_time


def test_rs_stride_and_dilation_widen_the_ifmap_rows_read():
    base = rs_layer_accesses(12, 14, 3, 3, 10, 10, 4, 4)
    strided = rs_layer_accesses(12, 14, 3, 3, 10, 10, 4, 4, stride=2)
    dilated = rs_layer_accesses(12, 14, 3, 3, 10, 10, 4, 4, dilation=2)
    assert int(base["cycles"]) == int(strided["cycles"]) == int(dilated["cycles"])
    # rows per pass: (set_w - 1) * U + (set_h - 1) * D + 1 = 12 / 21 / 14 rows of 12 / 21 / 14 words
    assert int(base["ifmap_reads"]) * 21 * 21 == int(strided["ifmap_reads"]) * 12 * 12
    assert int(base["ifmap_reads"]) * 14 * 14 == int(dilated["ifmap_reads"]) * 12 * 12


def test_rs_template_costs_every_level(reference):
    """Row stationary charges register files, the NoC (Eyeriss table: 2x per 16 bits), the
    global buffer and DRAM, and a larger array never takes more compute cycles."""
    template = load_spec("eyeriss_like")
    layer = _conv("c", 3, 3, 16, 16, 32, 64, 1)
    small = _model(template, **{"pe_array.rows": 8, "pe_array.cols": 8}).cost(Workload((layer,))).total()
    big = _model(template, **{"pe_array.rows": 16, "pe_array.cols": 16}).cost(Workload((layer,))).total()
    assert big["compute_cycles"] <= small["compute_cycles"]
    for part in ("compute", "register", "noc", "sram", "dram"):
        assert small["energy"][part] > 0, part
    assert np.isclose(sum(small["energy"].values()), small["energy_j"])


def test_a_layer_rs_cannot_map_names_itself_and_why():
    from nasco.hw import MappingError

    model = _model(load_spec("eyeriss_like"))
    ok = _conv("ok", 3, 3, 8, 8, 4, 4, 1)
    wide = Layer("wide", ifmap_h=20, ifmap_w=20, filter_h=3, filter_w=13, channels=4, num_filters=4)
    with pytest.raises(MappingError, match=r"layer 'wide' of 'net'.*ifmap window of 13 values.*12-word"):
        model.cost(Workload((ok, wide), name="net"))
    with pytest.raises(MappingError, match=r"layer 'wide' of 'second'"):
        model.cost_many([Workload((ok,), name="first"), Workload((ok, wide), name="second")])
    dilated = Layer("dil", ifmap_h=20, ifmap_w=20, filter_h=5, filter_w=5, dilation=3, channels=4, num_filters=4)
    with pytest.raises(MappingError, match=r"ifmap window of 13 values \(filter width 5, dilation 3\)"):
        model.cost(Workload((dilated,), name="net"))
    assert model.cost(Workload((ok,), name="net")).total()["macs"] == ok.macs
