"""`nasco report --zigzag`: without zigzag-dse a one-line error; a pair whose template has no ZigZag
description says so in its row; with ZigZag (a stand-in here, the real one where installed) nasco's
and ZigZag's energy and latency side by side, energy against ZigZag's best mapping for energy and
latency against its best mapping for latency."""
from __future__ import annotations

import contextlib
import io
import json
import math
import re
import sys

import pytest

from nasco.cli import main
from nasco.hw import ZigZagReport
from nasco.report._front import arch_groups
from nasco.report._member import front_member, layer_energy, member_cost
from nasco.report._report import MAX_ARCHITECTURES
from nasco.report._run import load_run
from nasco.report._zigzag import ZIGZAG_DATA_ID

COSTED = ("conv", "linear")  # the layer kinds ZigZag costs


def _macs(layer) -> int:
    """MACs of a layer over all its timesteps (ZigZag's batch), as both tools count them."""
    return layer.macs * layer.timesteps


def _report(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["report", *argv])
        except SystemExit as exc:  # argparse and one-line user errors exit
            code = int(exc.code)
    return code, out.getvalue(), err.getvalue()


def _rows(folder) -> list[dict]:
    text = (folder / "report.html").read_text(encoding="utf-8")
    found = re.findall(rf'<script type="application/json" id="{ZIGZAG_DATA_ID}">(.*?)</script>', text, re.S)
    (block,) = found
    return json.loads(block)


def _shown(run_dir) -> list:
    """The members the report re-costs: each shown front architecture's best pair."""
    run = load_run(run_dir)
    members = [front_member(run, f) for f in run.front]
    return [g.best for g in arch_groups(members, run.objectives)[:MAX_ARCHITECTURES]]


def test_without_zigzag_the_flag_is_one_line_exit_2(train_run, tmp_path, monkeypatch):
    # A None entry in sys.modules makes `import zigzag.api` raise ImportError, as where it is not installed.
    monkeypatch.setitem(sys.modules, "zigzag", None)
    monkeypatch.setitem(sys.modules, "zigzag.api", None)
    run_dir, _ = train_run
    code, out, err = _report([str(run_dir), "--zigzag", "--out", str(tmp_path / "r")])
    assert code == 2
    assert out == ""
    assert err == ("nasco: error: --zigzag needs zigzag-dse, which is not importable here: "
                   "pip install 'nasco[zigzag]'\n")
    assert not (tmp_path / "r").exists()  # checked before anything is written


def test_a_template_without_a_zigzag_description_says_so_in_its_row(train_run, tmp_path, monkeypatch):
    # asic_template's members (nvdla_like, ...) have no ZigZag description: no ZigZag run, one row each.
    monkeypatch.setattr("nasco.hw._zigzag.zigzag_available", lambda: True)
    run_dir, _ = train_run
    code, _, err = _report([str(run_dir), "--zigzag", "--out", str(tmp_path)])
    assert code == 0, err
    shown = _shown(run_dir)
    rows = _rows(tmp_path)
    assert [r["id"] for r in rows] == [m.id for m in shown] != []
    for row, m in zip(rows, shown):
        assert row["compared"] is None and row["layers"] == []
        assert row["template"] == m.template.name
        assert row["note"] == (f"template '{m.template.name}' has no ZigZag description; templates with one: "
                               "zigzag_tpu_like, zigzag_edge_tpu_like, zigzag_eyeriss_like, "
                               "zigzag_tesla_npu_like (--hw NAME)")
    section = (tmp_path / "report.md").read_text(encoding="utf-8").split("## nasco vs ZigZag", 1)[1]
    for m in shown:
        assert f"| {m.id} | {m.template.name} |" in section
    assert '<a href="#zigzag">ZigZag</a>' in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_without_the_flag_there_is_no_zigzag_section(zigzag_run, tmp_path):
    code, _, err = _report([str(zigzag_run), "--out", str(tmp_path)])
    assert code == 0, err
    assert ZIGZAG_DATA_ID not in (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "ZigZag" not in (tmp_path / "report.md").read_text(encoding="utf-8")


def test_a_fixed_template_is_the_members_accelerator(zigzag_run):
    # zigzag_tpu_like has no choices, so the front rows' hw is {}: the member still runs on it.
    run = load_run(zigzag_run)
    (m,) = [front_member(run, f) for f in run.front]
    assert m.hw == {}
    assert m.template is not None and m.template.name == "zigzag_tpu_like"
    assert layer_energy(run, m) is not None


def _stand_in(calls: list[int]):
    """A zigzag_costs whose numbers are known: per MAC, 1 pJ and 2 cycles on the mapping best for
    energy, 3 pJ and 0.5 cycles on the one best for latency; vector layers not costed."""

    def zigzag_costs(workload, template, *, lpf_limit, onnx=None):
        calls.append(lpf_limit)
        costed = [layer for layer in workload.layers if layer.kind in COSTED]
        skipped = tuple(layer.name for layer in workload.layers if layer.kind not in COSTED)

        def report(optimize: str, pj: float, cycles: float) -> ZigZagReport:
            return ZigZagReport(accelerator="tpu_like", optimize=optimize, lpf_limit=lpf_limit,
                                clock_hz=float(template.clock_mhz) * 1e6,
                                names=tuple(layer.name for layer in costed),
                                kinds=tuple(layer.kind for layer in costed),
                                macs=tuple(_macs(layer) for layer in costed),
                                energy_j=tuple(_macs(layer) * pj * 1e-12 for layer in costed),
                                cycles=tuple(_macs(layer) * cycles for layer in costed), skipped=skipped)

        return {"energy": report("energy", 1.0, 2.0), "latency": report("latency", 3.0, 0.5)}

    return zigzag_costs


def test_energy_meets_the_best_energy_mapping_and_latency_the_best_latency_one(zigzag_run, tmp_path,
                                                                                 monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr("nasco.hw._zigzag.zigzag_available", lambda: True)
    monkeypatch.setattr("nasco.hw.zigzag_costs", _stand_in(calls))
    code, _, err = _report([str(zigzag_run), "--zigzag", "--zigzag-lpf-limit", "2", "--out", str(tmp_path)])
    assert code == 0, err
    assert calls == [2]
    run = load_run(zigzag_run)
    (m,) = [front_member(run, f) for f in run.front]
    workload, rates, rep = member_cost(run, m)
    nasco = {row["name"]: row for row in rep.to_dict()["layers"]}
    costed = [layer for layer in workload.layers if layer.kind in COSTED]
    (row,) = _rows(tmp_path)
    assert (row["id"], row["template"], row["accelerator"]) == (m.id, "zigzag_tpu_like", "tpu_like")
    assert [r["name"] for r in row["layers"]] == [layer.name for layer in costed]
    for r, layer in zip(row["layers"], costed):
        assert r["macs"] == r["zigzag_macs"] == _macs(layer)
        assert r["nasco_energy_j"] == nasco[layer.name]["energy_j"]
        assert r["nasco_latency_s"] == nasco[layer.name]["latency_s"]
        assert r["zigzag_energy_j"] == _macs(layer) * 1.0 * 1e-12              # the energy mapping's energy
        assert r["zigzag_latency_s"] == _macs(layer) * 0.5 / (m.template.clock_mhz * 1e6)  # the latency one's
    c = row["compared"]
    n_e = math.fsum(nasco[layer.name]["energy_j"] for layer in costed)
    n_l = math.fsum(nasco[layer.name]["latency_s"] for layer in costed)
    z_e = math.fsum(_macs(layer) * 1e-12 for layer in costed)
    z_l = math.fsum(_macs(layer) * 0.5 / (m.template.clock_mhz * 1e6) for layer in costed)
    assert c == {"layers": len(costed), "nasco_energy_j": n_e, "zigzag_energy_j": z_e,
                 "energy_ratio": n_e / z_e, "nasco_latency_s": n_l, "zigzag_latency_s": z_l,
                 "latency_ratio": n_l / z_l}
    left_out = len(workload.layers) - len(costed)
    assert rates  # a spiking network: the note says ZigZag sees dense spikes
    assert row["note"] == (f"{left_out} layer(s) ZigZag does not cost (it costs conv and linear only) "
                           "left out of both sides; spiking: nasco costs the spike rates measured in "
                           "training, ZigZag dense 1-bit inputs")
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "LOMA loop-prime-factor limit 2" in md
    section = md.split("## nasco vs ZigZag", 1)[1]
    (line,) = [t for t in section.splitlines() if t.startswith(f"| {m.id} |")]
    cells = [t.strip() for t in line.strip("|").split("|")]
    assert cells[1:3] == ["zigzag_tpu_like (tpu_like)", str(len(costed))]
    assert cells[5] == f"{n_e / z_e:.4g}" and cells[8] == f"{n_l / z_l:.4g}"


def test_the_real_zigzag_recosts_the_member(zigzag_run, tmp_path):
    pytest.importorskip("zigzag.api")
    # LOMA's smallest search (lpf 1) keeps this to seconds; the numbers are ZigZag's all the same.
    code, _, err = _report([str(zigzag_run), "--zigzag", "--zigzag-lpf-limit", "1", "--out", str(tmp_path)])
    assert code == 0, err
    run = load_run(zigzag_run)
    (m,) = [front_member(run, f) for f in run.front]
    workload, _, rep = member_cost(run, m)
    nasco = {row["name"]: row for row in rep.to_dict()["layers"]}
    costed = [layer for layer in workload.layers if layer.kind in COSTED]
    (row,) = _rows(tmp_path)
    assert row["accelerator"] == "tpu_like"
    assert [r["name"] for r in row["layers"]] == [layer.name for layer in costed]
    for r, layer in zip(row["layers"], costed):
        # ZigZag counts MACs from its loop sizes, nasco from its layer: the translation keeps them
        assert r["zigzag_macs"] == r["macs"] == _macs(layer)
        assert r["nasco_energy_j"] == nasco[layer.name]["energy_j"]
        assert r["zigzag_energy_j"] > 0 and r["zigzag_latency_s"] > 0
    c = row["compared"]
    assert c["layers"] == len(costed)
    assert c["zigzag_energy_j"] == math.fsum(r["zigzag_energy_j"] for r in row["layers"])
    assert c["zigzag_latency_s"] == math.fsum(r["zigzag_latency_s"] for r in row["layers"])
    assert c["energy_ratio"] == c["nasco_energy_j"] / c["zigzag_energy_j"]
    assert c["latency_ratio"] == c["nasco_latency_s"] / c["zigzag_latency_s"]


def test_the_python_api_takes_the_same_choice(zigzag_run, tmp_path, monkeypatch):
    from nasco import load_study
    from nasco.hw import ZIGZAG_LPF_LIMIT, ZigZagError

    monkeypatch.setitem(sys.modules, "zigzag", None)
    monkeypatch.setitem(sys.modules, "zigzag.api", None)
    with pytest.raises(ZigZagError, match=r"^--zigzag needs zigzag-dse, .* pip install 'nasco\[zigzag\]'$"):
        load_study(zigzag_run).report(tmp_path / "none", zigzag=True)
    calls: list[int] = []
    monkeypatch.setattr("nasco.hw._zigzag.zigzag_available", lambda: True)
    monkeypatch.setattr("nasco.hw.zigzag_costs", _stand_in(calls))
    load_study(zigzag_run).report(tmp_path / "a", zigzag=True, zigzag_lpf_limit=4)
    load_study(zigzag_run).report(tmp_path / "b", zigzag=True)
    assert calls == [4, ZIGZAG_LPF_LIMIT]
    assert _rows(tmp_path / "a")[0]["compared"] is not None
