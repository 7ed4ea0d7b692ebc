"""`nasco cost --backend zigzag`: without zigzag-dse a one-line error; with it, ZigZag's numbers
(tests/hw/fixtures/zigzag/layers.csv, written by the real ZigZag) beside nasco's."""
from __future__ import annotations

import csv
import json
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

torch.set_num_threads(1)
FIXTURES = Path(__file__).resolve().parents[1] / "hw" / "fixtures" / "zigzag"


def test_without_zigzag_the_backend_is_one_line_exit_2(monkeypatch, capsys, run_cli):
    # A None entry in sys.modules makes `import zigzag.api` raise ImportError, as where it is not installed.
    monkeypatch.setitem(sys.modules, "zigzag", None)
    monkeypatch.setitem(sys.modules, "zigzag.api", None)
    code, out, err = run_cli(capsys, "cost", "--workload", "example", "--hw", "zigzag_tpu_like",
                             "--backend", "zigzag")
    assert code == 2
    assert out == ""
    assert err == ("nasco: error: --backend zigzag needs zigzag-dse, which is not importable here: "
                   "pip install 'nasco[zigzag]'\n")


def test_a_template_without_a_zigzag_description_is_one_line_exit_2(monkeypatch, capsys, run_cli):
    # asic_template is a set: its default member, nvdla_like, is the template costed
    monkeypatch.setattr("nasco.cli._cost.zigzag_available", lambda: True)
    code, out, err = run_cli(capsys, "cost", "--workload", "example", "--hw", "asic_template",
                             "--backend", "zigzag")
    assert code == 2
    assert out == ""
    assert err == ("nasco: error: template 'nvdla_like' has no ZigZag description; templates with one: "
                   "zigzag_tpu_like, zigzag_edge_tpu_like, zigzag_eyeriss_like, zigzag_tesla_npu_like "
                   "(--hw NAME)\n")


def _alexnet_conv1(tmp_path: Path) -> Path:
    """ZigZag's alexnet first layer (layers.csv Op0): conv 3 -> 96, 11x11, stride 4, no padding, 224x224."""
    path = tmp_path / "conv1.onnx"
    model = nn.Sequential(nn.Conv2d(3, 96, 11, stride=4), nn.ReLU()).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 3, 224, 224),), str(path), dynamo=False)
    return path


def test_an_onnx_model_is_costed_by_both_side_by_side(tmp_path, capsys, run_cli):
    pytest.importorskip("zigzag.api")
    path = _alexnet_conv1(tmp_path)
    code, out, err = run_cli(capsys, "cost", "--workload", str(path), "--hw", "zigzag_tpu_like",
                             "--backend", "zigzag", "--zigzag-lpf-limit", "3", "--json")
    assert code == 0, err
    data = json.loads(out)
    with open(FIXTURES / "layers.csv", newline="") as f:
        (row,) = [r for r in csv.DictReader(f) if (r["network"], r["accelerator"], r["name"]) ==
                  ("alexnet", "tpu_like", "Op0")]
    (zz,) = data["zigzag"]["layers"]
    assert zz["cycles"] == float(row["latency_opt_energy_cycles"])
    # pJ -> J: one rounding of a float product, under 1e-15 relative
    assert zz["energy_j"] * 1e12 == pytest.approx(float(row["energy_opt_energy_pj"]), rel=1e-15)
    assert zz["macs"] == int(row["macs"])
    assert data["zigzag"]["assumptions"]["lpf_limit"] == 3
    assert data["zigzag"]["assumptions"]["optimize"] == "energy"
    (nasco,) = data["layers"]
    c = data["zigzag"]["compared"]
    assert c["layers"] == 1
    assert c["nasco_energy_j"] == nasco["energy_j"]
    assert c["energy_ratio"] == nasco["energy_j"] / zz["energy_j"]
    assert c["latency_ratio"] == nasco["latency_s"] / zz["latency_s"]
    # the text output carries both totals and the ratios
    code, out, err = run_cli(capsys, "cost", "--workload", str(path), "--hw", "zigzag_tpu_like",
                             "--backend", "zigzag", "--zigzag-lpf-limit", "3")
    assert code == 0, err
    last = out.strip().splitlines()[-1]
    assert last.startswith("nasco vs ZigZag over the 1 layer(s) both cost: energy ")
    assert f"(nasco / ZigZag {c['energy_ratio']:.4f})" in last
    assert f"{float(row['energy_opt_energy_pj']) * 1e-6:.4f} uJ" in last
