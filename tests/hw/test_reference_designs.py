"""The row-stationary model against outside references: Timeloop/Accelergy's Eyeriss-like
example and the Eyeriss chip's AlexNet figures (tests/fixtures/timeloop/REFERENCE.md)."""
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


def test_timeloop_eyeriss_like_example_within_30pct_cycles_35pct_energy(reference):
    run = next(r for r in reference["timeloop_reference_runs"] if r["name"] == "mobilenet_v1_conv1_like_default_problem")
    template = load_spec(FIXTURES / "eyeriss_like_v0_4.yaml")
    layer = _conv("layer", run["R"], run["S"], run["P"], run["Q"], run["C"], run["M"], run["stride"])
    tot = _model(template).cost(Workload((layer,))).total()
    assert tot["macs"] == run["macs"]
    cycles_dev = tot["cycles"] / run["cycles"] - 1
    pj_per_mac = tot["energy_j"] / tot["macs"] * 1e12
    energy_dev = pj_per_mac / run["pJ_per_mac"] - 1
    assert abs(cycles_dev) <= 0.30, (tot["cycles"], run["cycles"])
    assert abs(energy_dev) <= 0.35, (pj_per_mac, run["pJ_per_mac"])
    # The levels that dominate agree one by one: scratchpads and DRAM within 15 %.
    ref = run["per_level_pJ_per_mac"]
    rf = tot["energy"]["register"] / tot["macs"] * 1e12
    assert rf == pytest.approx(ref["psum_spad"] + ref["weights_spad"] + ref["ifmap_spad"], rel=0.15)
    assert tot["energy"]["dram"] / tot["macs"] * 1e12 == pytest.approx(ref["DRAM"], rel=0.15)
    assert tot["energy"]["compute"] / tot["macs"] * 1e12 == pytest.approx(ref["mac"], rel=1e-3)
    # The global buffer within 25 %: ifmap rows serve the p filters a PE's scratchpads hold and
    # vertically stacked channels add their psums in the array, as in Timeloop's mapping.
    assert tot["energy"]["sram"] / tot["macs"] * 1e12 == pytest.approx(ref["shared_glb"], rel=0.25)


def test_eyeriss_chip_alexnet_frame_rate_within_25pct(reference):
    chip = reference["eyeriss_chip_alexnet"]
    layers = tuple(_conv(x["name"], x["R"], x["S"], x["P"], x["Q"], x["C"], x["M"], x["stride"],
                         groups=2 if x["name"] in ("CONV2", "CONV4", "CONV5") else 1) for x in chip["layers"])
    rep = _model(load_spec("eyeriss_like"), clock_mhz=200).cost(Workload(layers))
    assert int(rep.macs.sum()) * 4 == pytest.approx(chip["total"]["macs_G"] * 1e9, rel=0.01)
    fps = 1.0 / rep.latency_s.sum()
    assert abs(fps / chip["total"]["fps"] - 1) <= 0.25, fps
    # Never faster than the array allows: each layer's latency covers its MACs on 168 PEs.
    assert (rep.cycles * 168 >= rep.macs).all()


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
