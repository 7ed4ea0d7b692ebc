"""nasco.hw's ZigZag backend: nasco layers translated into ZigZag's layer format, and ZigZag's costs
of them held to the numbers the real ZigZag wrote into tests/hw/fixtures/zigzag (layers.csv).

The translation tests need no ZigZag; the costing tests skip where zigzag-dse is not installed
(pip install 'nasco[zigzag]')."""
from __future__ import annotations

import csv
import json
import math
import tomllib
from pathlib import Path

import pytest

from nasco.dsl import load_spec, resolve
from nasco.hw import (
    ZIGZAG_EXTRA,
    Layer,
    Workload,
    ZigZagError,
    read_onnx,
    zigzag_accelerator,
    zigzag_side_by_side,
)
from nasco.hw._zigzag import zigzag_layers, zigzag_mapping

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "zigzag"
BITS = {"weight": 8, "activation": 8, "accumulator": 16}


def _fixture(net: str, acc: str, name: str) -> dict:
    with open(FIXTURES / "layers.csv", newline="") as f:
        (row,) = [r for r in csv.DictReader(f)
                  if (r["network"], r["accelerator"], r["name"]) == (net, acc, name)]
    return row


def test_the_extra_named_in_the_hint_installs_zigzag():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    name = ZIGZAG_EXTRA.removeprefix("nasco[").removesuffix("]")
    assert any(req.startswith("zigzag-dse") for req in extras[name])
    assert any(req.startswith("six") for req in extras[name])


def test_a_grouped_padded_conv_has_zigzags_own_loop_sizes():
    # alexnet's Op4 as nasco reads it: the padded side is ofmap 26 + filter 5 - 1 = 30 (stride 1),
    # 96 -> 256 channels in 2 groups. ZigZag's ONNX
    # parser wrote K 128, C 48, OX OY 26, FX FY 5, G 2, B 1 and 207,667,200 MACs (layers.csv).
    row = _fixture("alexnet", "tpu_like", "Op4")
    layer = Layer("Op4", "conv", ifmap_h=30, ifmap_w=30, filter_h=5, filter_w=5, channels=96, num_filters=256,
                  groups=2)
    (data,), skipped = zigzag_layers(Workload([layer], name="w"), BITS)
    sizes = dict(zip(data["loop_dims"], data["loop_sizes"]))
    assert sizes == {d: int(row[d]) for d in ("B", "K", "G", "OX", "OY", "C", "FX", "FY")}
    assert math.prod(data["loop_sizes"]) == int(row["macs"]) == layer.macs
    assert data["dimension_relations"] == ["ix=1*ox+1*fx", "iy=1*oy+1*fy"]
    assert skipped == []


def test_linear_layers_are_gemms_and_vector_layers_are_left_out():
    layers = [Layer("fc", "linear", channels=4096, num_filters=1000, timesteps=3),
              Layer("p", "pool", ifmap_h=4, ifmap_w=4, filter_h=2, filter_w=2, stride=2, channels=8,
                    num_filters=8),
              Layer("fc2", "linear", channels=1000, num_filters=10, spiking_input=True)]
    data, skipped = zigzag_layers(Workload(layers, name="w"), BITS)
    assert skipped == ["p"]
    assert [d["name"] for d in data] == ["fc", "fc2"]
    assert dict(zip(data[0]["loop_dims"], data[0]["loop_sizes"])) == {"C": 4096, "D": 3, "K": 1000}
    assert data[0]["operand_source"] == {"W": 0, "I": 0}   # the first layer's input is constant
    assert data[1]["operand_source"] == {"W": 1, "I": 0}   # later ones read the layer before
    assert data[1]["operand_precision"] == {"W": 8, "I": 1, "O_final": 8, "O": 16}


def test_a_template_without_a_zigzag_description_is_one_line():
    with pytest.raises(ZigZagError) as err:
        zigzag_accelerator("asic_template")
    assert str(err.value) == ("template 'asic_template' has no ZigZag description; templates with one: "
                              "zigzag_tpu_like, zigzag_edge_tpu_like, zigzag_eyeriss_like, "
                              "zigzag_tesla_npu_like (--hw NAME)")
    assert zigzag_accelerator("zigzag_tpu_like") == "tpu_like"
    assert zigzag_accelerator("zigzag_eyeriss_like") == "eyeriss_like"


def test_eyeriss_like_runs_with_the_mapping_nasco_ships():
    # zigzag-dse 3.9.1 ships no zigzag/inputs/mapping/eyeriss_like.yaml: the one ZigZag runs with is
    # package data (pyproject's package-data globs for nasco.hw cover it), found without ZigZag.
    from fnmatch import fnmatch

    import yaml

    path = zigzag_mapping("eyeriss_like")
    assert path.is_file()
    rel = path.relative_to(ROOT / "nasco" / "hw").as_posix()
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    globs = setuptools["package-data"]["nasco.hw"]
    assert any(fnmatch(rel, g) for g in globs), (rel, globs)
    # operand links only (the ones of every mapping ZigZag ships), so ZigZag searches the spatial mapping
    assert yaml.safe_load(path.read_text()) == [{"name": "default",
                                                 "memory_operand_links": {"O": "O", "W": "I2", "I": "I1"}}]
    # the fixtures name it as the mapping eyeriss_like ran with
    hardware = json.loads((FIXTURES / "hardware.json").read_text())
    assert ROOT / hardware["eyeriss_like"]["mapping_file"] == path


def test_the_side_by_side_totals_cover_the_layers_both_cost():
    # nasco costs a and b, ZigZag b and c: only b is compared, on both sides
    out = {"layers": [{"name": "a", "energy_j": 1.0, "latency_s": 10.0},
                      {"name": "b", "energy_j": 3.0, "latency_s": 6.0}]}
    zz = {"layers": [{"name": "b", "energy_j": 2.0, "latency_s": 4.0},
                     {"name": "c", "energy_j": 5.0, "latency_s": 7.0}],
          "total": {"energy_j": 7.0, "latency_s": 11.0}}
    assert zigzag_side_by_side(out, zz) == {"layers": 1, "nasco_energy_j": 3.0, "zigzag_energy_j": 2.0,
                                            "energy_ratio": 1.5, "nasco_latency_s": 6.0,
                                            "zigzag_latency_s": 4.0, "latency_ratio": 1.5}
    # no layer in common: nothing compared, the ratios NaN, not a ZeroDivisionError
    none = zigzag_side_by_side(out, {"layers": [{"name": "c", "energy_j": 5.0, "latency_s": 7.0}]})
    assert none["layers"] == 0 and math.isnan(none["energy_ratio"]) and math.isnan(none["latency_ratio"])


@pytest.mark.parametrize("optimize,energy_col,cycles_col", [
    ("energy", "energy_opt_energy_pj", "latency_opt_energy_cycles"),
    ("latency", "energy_opt_latency_pj", "latency_opt_latency_cycles")])
def test_zigzag_costs_translated_layers_as_it_costs_its_own_onnx(optimize, energy_col, cycles_col):
    pytest.importorskip("zigzag.api")
    from nasco.hw import zigzag_cost

    # alexnet's first conv (no padding) and last Gemm, read by nasco, translated and costed by ZigZag
    # with the fixtures' search limit (lpf 3): the numbers ZigZag wrote for its own ONNX parse.
    w = read_onnx(FIXTURES / "onnx" / "alexnet.onnx", skip_unsupported=True)
    sub = Workload([layer for layer in w.layers if layer.name in ("Op0", "Op22")], name="alexnet_part")
    template = resolve(load_spec(ROOT / "search_spaces" / "zigzag_tpu_like.yaml"), {})
    rep = zigzag_cost(sub, template, optimize=optimize, lpf_limit=3)
    assert rep.names == ("Op0", "Op22")
    assert rep.kinds == ("conv", "linear")
    for i, name in enumerate(rep.names):
        row = _fixture("alexnet", "tpu_like", name)
        # pJ -> J and back: one rounding of a float product, under 1e-15 relative
        assert rep.energy_j[i] * 1e12 == pytest.approx(float(row[energy_col]), rel=1e-15), name
        assert rep.cycles[i] == float(row[cycles_col]), name
        assert rep.macs[i] == int(row["macs"]), name
    # the 1000 MHz clock of the template: a cycle is a nanosecond
    assert rep.latency_s == tuple(c / 1e9 for c in rep.cycles)


def test_zigzag_costs_eyeriss_like_with_the_shipped_mapping_as_the_fixtures_say():
    pytest.importorskip("zigzag.api")
    from nasco.hw import zigzag_costs

    # eyeriss_like, whose spatial mapping ZigZag searches: a 1x1 conv of mobilenetv2 and its Gemm,
    # read by nasco and translated, costed with the fixtures' search limit (lpf 3). Both minima
    # come from one search and equal what ZigZag wrote for its own ONNX parse (layers.csv).
    conv, gemm = "/features/features.7/conv/conv.2/Conv", "/classifier/classifier.1/Gemm"
    w = read_onnx(FIXTURES / "onnx" / "mobilenetv2.onnx", skip_unsupported=True)
    sub = Workload([layer for layer in w.layers if layer.name in (conv, gemm)], name="mobilenetv2_part")
    template = resolve(load_spec(ROOT / "search_spaces" / "zigzag_eyeriss_like.yaml"), {})
    reps = zigzag_costs(sub, template, lpf_limit=3)
    assert set(reps) == {"energy", "latency"}
    columns = (("energy", "energy_opt_energy_pj", "latency_opt_energy_cycles"),
               ("latency", "energy_opt_latency_pj", "latency_opt_latency_cycles"))
    for optimize, energy_col, cycles_col in columns:
        rep = reps[optimize]
        assert rep.accelerator == "eyeriss_like" and rep.optimize == optimize
        assert rep.names == (conv, gemm)
        for i, name in enumerate(rep.names):
            row = _fixture("mobilenetv2", "eyeriss_like", name)
            # pJ -> J and back: one rounding of a float product, under 1e-15 relative
            assert rep.energy_j[i] * 1e12 == pytest.approx(float(row[energy_col]), rel=1e-15), name
            assert rep.cycles[i] == float(row[cycles_col]), name
            assert rep.macs[i] == int(row["macs"]), name
