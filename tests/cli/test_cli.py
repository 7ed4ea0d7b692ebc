"""The command line end to end: spaces, validate, cost (against SCALE-Sim) and search."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest

from nasco.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "scalesim" / "cases.csv"
TIMING_KEYS = {"seconds", "started_at", "finished_at", "worker"}
TIMING_METRICS = {"train_seconds", "evaluator_seconds", "hw_front_seconds"}
# A search small enough for a test: 150 images per split, one epoch.
# No BN after the pooling ops: the one-epoch networks of these runs were measured to score differently.
TINY = ["--limit", "150", "--epochs", "1", "--quiet", "--set", "cell.pool_bn=false"]


def test_spaces_lists_the_four_builtins(capsys, run_cli):
    code, out, _ = run_cli(capsys, "spaces")
    assert code == 0
    for name in ("darts_snn", "darts", "nb201", "asic_template", "systolic_template"):
        assert f"  {name} " in out
    code, out, _ = run_cli(capsys, "spaces", "nb201", "--json")
    d = json.loads(out)
    assert d["size"]["cells"] == 15625 and d["size"]["arch"] == 15625
    code, out, _ = run_cli(capsys, "spaces", "systolic_template", "--json")
    d = json.loads(out)
    assert d["size"] == 3 * 4 * 4 * 3 * 3 * 2 * 3 * 2
    assert d["choices"]["dataflow"] == ["os", "ws", "is"]


@pytest.mark.parametrize("argv", [["--help"], ["validate", "darts"],
                                  ["cost", "--hw", "systolic_template", "--workload", "example"]])
def test_commands_that_need_no_network_import_neither_torch_nor_onnx(argv):
    """`nasco --help`, `validate` and `cost` of a SCALE-Sim topology run without importing torch
    or onnx: those imports are most of a command's start-up time, and these commands need neither."""
    code = ("import sys\nfrom nasco.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('LOADED', sorted(m for m in ('torch', 'onnx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    assert out.splitlines()[-1] == "LOADED []"


def test_validate_ok_and_one_line_error_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema: 1\nkind: arch_space\nname: x\nmacro:\n  stem: {channels: 8}\n  cells: 3\n"
                   "cell:\n  type: dense\n  nodes: 3\n  ops: [none, conv_3x5]\n")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ok = subprocess.run([sys.executable, "-m", "nasco", "validate", "darts_snn", "asic_template"],
                        capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count(": ok (") == 2
    res = subprocess.run([sys.executable, "-m", "nasco", "validate", str(bad)], capture_output=True, text=True,
                         env=env)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    assert f"{bad}:10: cell.ops[1]" in lines[0]
    assert "did you mean" in lines[0] and "'conv_3x3'" in lines[0].split("did you mean")[1]


def test_usage_errors_exit_2_with_one_line(capsys, run_cli):
    code, _, err = run_cli(capsys, "search", "--space", "darts_snn", "--objectives", "acuracy")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "did you mean 'accuracy'" in err
    code, _, err = run_cli(capsys, "search", "--space", "darts_snnn")
    assert code == 2 and "darts_snn" in err
    code, _, err = run_cli(capsys, "cost", "--hw", "asic_template")
    assert code == 2 and "--workload" in err and len(err.strip().splitlines()) == 1


def _fixture_groups() -> dict[tuple[str, int, int], list[dict]]:
    rows = list(csv.DictReader(line for line in FIXTURES.read_text().splitlines() if not line.startswith("#")))
    groups: dict[tuple[str, int, int], list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["dataflow"], int(r["array_rows"]), int(r["array_cols"]))].append(r)
    return groups


def test_cost_reproduces_scalesim_compute_cycles(tmp_path, capsys, run_cli):
    """Every SCALE-Sim fixture (OS/WS/IS, several array shapes, strides 1-2, 1x1..7x7) through
    `nasco cost --json`: compute cycles equal SCALE-Sim's Total - Stall cycles exactly."""
    groups = _fixture_groups()
    assert {g[0] for g in groups} == {"os", "ws", "is"}
    checked = 0
    for (df, rows, cols), cases in groups.items():
        topo = tmp_path / f"{df}_{rows}_{cols}.csv"
        with open(topo, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["Layer name", "IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width", "Channels",
                        "Num Filter", "Strides", ""])
            for r in cases:
                w.writerow([f"case{r['case_id']}", r["ifmap_h"], r["ifmap_w"], r["filter_h"], r["filter_w"],
                            r["channels"], r["num_filters"], r["stride"], ""])
        code, out, err = run_cli(capsys, "cost", "--hw", "systolic_template", "--workload", str(topo), "--json",
                                 "--set", f"dataflow={df}", "--set", f"pe_array.rows={rows}",
                                 "--set", f"pe_array.cols={cols}")
        assert code == 0, err
        report = json.loads(out)
        assert [layer["name"] for layer in report["layers"]] == [f"case{r['case_id']}" for r in cases]
        for layer, r in zip(report["layers"], cases):
            assert layer["compute_cycles"] == int(r["total_cycles"]) - int(r["stall_cycles"]), (df, rows, cols, r)
            assert layer["cycles"] >= layer["compute_cycles"]
            checked += 1
        assert report["assumptions"]["hw"]["dataflow"] == df
    assert checked >= 150


def test_cost_text_output_names_the_defaults_taken(tmp_path, capsys, run_cli):
    topo = tmp_path / "t.csv"
    topo.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
                    "conv1, 10, 10, 3, 3, 16, 32, 1,\n")
    code, out, err = run_cli(capsys, "cost", "--hw", "systolic_template", "--workload", str(topo))
    assert code == 0
    assert "defaults taken: dataflow=ws" in err
    assert out.splitlines()[1].startswith("conv1")


def _ledger(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in (path / "ledger.jsonl").read_text().splitlines()]
    for r in rows:
        for k in TIMING_KEYS:
            r.pop(k, None)
        for k in TIMING_METRICS:
            r["metrics"].pop(k, None)
    return rows


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "a"
    code = main(["search", "--space", "darts_snn", "--hw", "asic_template", "--budget", "4", "--seed", "3",
                 "--out", str(out), *TINY])
    assert code == 0
    return out


def test_search_writes_ledger_front_plot_summary(tiny_run):
    out = tiny_run
    for name in ("ledger.jsonl", "pareto.csv", "pareto.png", "summary.json", "run.json"):
        assert (out / name).is_file(), name
    ledger = pd.read_json(out / "ledger.jsonl", lines=True)
    assert len(ledger) == 4 and ledger["id"].is_unique
    assert set(ledger["status"]) <= {"ok", "infeasible", "failed"}
    ok = ledger[ledger["status"] != "failed"]
    acc = [o["accuracy"] for o in ok["objectives"]]
    energy = [o["energy"] for o in ok["objectives"]]
    assert len(set(acc)) > 1 and all(0.0 <= a <= 1.0 for a in acc)  # real, varying accuracies
    assert len(set(energy)) == len(energy)  # costs differ across candidates
    front = pd.read_csv(out / "pareto.csv")
    assert list(front.columns) == ["id", "accuracy", "energy", "latency", "area", "arch", "hw", "row_id", "pair"]
    # Each front member is a row's proposed configuration (pair 0) or one of its members.
    rows = {r["id"]: r for r in _ledger(out)}
    for _, m in front.iterrows():
        row = rows[m["row_id"]]
        hw = json.loads(m["hw"])
        assert (hw == row["hw"]) == (m["pair"] == 0)
        objs = row["objectives"] if m["pair"] == 0 else next(x for x in row["members"] if x["hw"] == hw)["objectives"]
        assert {o: m[o] for o in ("accuracy", "energy", "latency", "area")} == objs
    json.loads(front["arch"].iloc[0])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seed"] == 3
    assert summary["counts"]["total"] == 4
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_seed_same_ledger_and_resume(tiny_run, tmp_path):
    again = tmp_path / "b"
    assert main(["search", "--space", "darts_snn", "--hw", "asic_template", "--budget", "2", "--seed", "3",
                 "--out", str(again), *TINY]) == 0
    assert main(["search", "--space", "darts_snn", "--hw", "asic_template", "--budget", "4", "--seed", "3",
                 "--out", str(again), "--resume", *TINY]) == 0
    assert _ledger(again) == _ledger(tiny_run)


def _lines(path: Path) -> list[bytes]:
    """The complete lines of a file (a torn last line left by a kill is not one)."""
    data = path.read_bytes()
    return data[:data.rfind(b"\n") + 1].splitlines(keepends=True)


def test_search_killed_then_resumed_completes_without_duplicates(tiny_run, tmp_path):
    """`nasco search` killed with SIGKILL while it runs, then `--resume`: the rows written
    before the kill stay byte for byte, the resume evaluates exactly the missing seqs, and
    the ledger equals an uninterrupted run's."""
    budget = 4
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "nasco", "search", "--space", "darts_snn", "--hw", "asic_template",
           "--budget", str(budget), "--seed", "3", "--out", str(out), *TINY]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ledger = out / "ledger.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if ledger.exists() and len(_lines(ledger)) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _lines(ledger)
    assert 2 <= len(before) < budget  # killed mid-run, not after the last row
    seqs_before = [json.loads(line)["seq"] for line in before]
    missing = sorted(set(range(budget)) - set(seqs_before))
    res = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    after = _lines(ledger)
    assert after[:len(before)] == before
    assert sorted(json.loads(line)["seq"] for line in after[len(before):]) == missing
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed"] is True
    assert (summary["replayed"], summary["evaluated_this_session"]) == (len(before), len(missing))
    rows = _ledger(out)
    assert len(rows) == budget and len({r["id"] for r in rows}) == budget
    assert rows == _ledger(tiny_run)


def test_existing_run_without_resume_is_a_one_line_error(tiny_run, capsys, run_cli):
    code, _, err = run_cli(capsys, "search", "--space", "darts_snn", "--hw", "asic_template", "--budget", "4",
                           "--seed", "3", "--out", str(tiny_run), *TINY)
    assert code == 2 and "--resume" in err and len(err.strip().splitlines()) == 1


def test_cost_of_a_candidate_from_the_ledger(tiny_run, tmp_path, capsys, run_cli):
    row = json.loads((tiny_run / "ledger.jsonl").read_text().splitlines()[0])
    cand = tmp_path / "cand.json"
    cand.write_text(json.dumps(row | {"space": "darts_snn"}))
    code, out, err = run_cli(capsys, "cost", "--hw", "asic_template", "--workload", str(cand), "--json")
    assert code == 0, err
    rep = json.loads(out)
    if row["status"] != "failed":
        # the same workload, hardware and measured spike rates give the same numbers as the search
        assert rep["total"]["energy_j"] == pytest.approx(row["objectives"]["energy"], rel=1e-9)
        assert rep["total"]["latency_s"] == pytest.approx(row["objectives"]["latency"], rel=1e-9)
    assert "spike_rate_assumed" not in rep["assumptions"]
