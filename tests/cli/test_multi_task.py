"""Multi-task search on a heterogeneous multi-accelerator, and the CLI around the new kinds."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from nasco.cli import main
from nasco.dsl import load_file
from nasco.space import hw_space
from nasco.testing import write_standins

TINY = ["--limit", "120", "--epochs", "1", "--quiet"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_standins(tmp_path_factory.mktemp("hw"))


@pytest.fixture(scope="module")
def multi_run(files, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "multi"
    code = main(["search", "--space", "darts_snn", "--space", "darts", "--hw", str(files["toy_multi"]),
                 "--budget", "3", "--seed", "1", "--out", str(out), *TINY])
    assert code == 0
    return out


def test_multi_task_run_writes_outputs_with_per_task_figures(multi_run, files):
    out = multi_run
    hw = hw_space(load_file(files["toy_multi"]))
    for name in ("ledger.jsonl", "pareto.csv", "pareto.png", "summary.json", "run.json"):
        assert (out / name).is_file(), name
    rows = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and len({r["id"] for r in rows}) == 3
    scored = [r for r in rows if r["status"] != "failed"]
    assert scored, rows
    for r in scored:
        tasks = r["metrics"]["tasks"]
        assert [t["space"] for t in tasks] == ["darts_snn", "darts"]
        assert [t["dataset"] for t in tasks] == ["digits", "digits"]
        acc = [t["valid_accuracy"] for t in tasks]
        assert r["metrics"]["task_accuracy"] == acc and r["metrics"]["accuracy_aggregate"] == "mean"
        o = r["objectives"]
        assert o["accuracy"] == pytest.approx(sum(acc) / 2)
        assert o["latency"] == pytest.approx(max(t["latency"] for t in tasks))  # the slowest sub-accelerator
        assert o["energy"] == pytest.approx(sum(t["energy"] for t in tasks))
        assert o["area"] == pytest.approx(sum(t["area"] for t in tasks))
        subs = r["hw"]["sub_accelerators"]
        assert [t["template"] for t in tasks] == [s["template"] for s in subs]
        assert sum(t["pes"] for t in tasks) == r["metrics"]["pes"] <= 320
        assert sum(t["dram_bytes_per_cycle"] for t in tasks) <= 16
        assert "spike_rates" in tasks[0] and "spike_rates" not in tasks[1]  # SNN task, ANN task
        assert (r["status"] == "ok") == (o["latency"] <= 0.01 and o["area"] <= 10)
        # The hardware inner loop: the two networks' front over the budget's partitions.
        assert r["metrics"]["hw_front"]["mode"] == "exhaustive" and r["members"]
        for m in r["members"]:
            hw.check(m["hw"])  # a partition within the budget
            assert m["hw"] != r["hw"] and m["status"] == "ok" and set(m["objectives"]) == set(o)
    front = pd.read_csv(out / "pareto.csv")
    assert list(front.columns) == ["id", "accuracy", "energy", "latency", "area", "arch", "hw", "row_id",
                                   "pair"]
    assert (front["pair"] > 0).any()  # pairs the inner loop found are on the run's front
    for text in front["hw"]:
        hw.check(json.loads(text))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["total"] == 3
    assert summary["space"]["tasks"] == ["darts_snn", "darts"] and summary["space"]["hw"] == "toy_multi"
    assert summary["limits"] == {"latency": 0.01, "area": 10.0}
    run = json.loads((out / "run.json").read_text())
    assert run["space"]["arch"] == "darts_snn+darts"


def _strip_timings(row: dict) -> dict:
    """A ledger row without what differs from run to run: wall clocks and the worker."""
    row = {k: v for k, v in row.items() if k not in ("seconds", "started_at", "finished_at", "worker")}
    drop = ("train_seconds", "evaluator_seconds", "hw_front_seconds")
    metrics = {k: v for k, v in row["metrics"].items() if k not in drop}
    if "tasks" in metrics:
        metrics["tasks"] = [{k: v for k, v in t.items() if k not in drop} for t in metrics["tasks"]]
    return row | {"metrics": metrics}


@pytest.mark.parametrize("kept", [3, 2])
def test_multi_task_resume_evaluates_only_the_missing(multi_run, files, tmp_path, capsys, kept, run_cli):
    """A resume of the finished run (all 3 rows kept) evaluates nothing; of a run cut after
    2 rows, it evaluates seq 2 alone, and gets the row the uninterrupted run got."""
    out = tmp_path / "multi"
    shutil.copytree(multi_run, out)
    full = (multi_run / "ledger.jsonl").read_bytes().splitlines(keepends=True)
    (out / "ledger.jsonl").write_bytes(b"".join(full[:kept]))
    code, text, _ = run_cli(capsys, "search", "--space", "darts_snn", "--space", "darts", "--hw",
                            str(files["toy_multi"]), "--budget", "3", "--seed", "1", "--out", str(out),
                            "--resume", *TINY)
    assert code == 0 and "3 evaluations" in text
    after = (out / "ledger.jsonl").read_bytes().splitlines(keepends=True)
    assert len(after) == 3 and after[:kept] == full[:kept]  # the rows kept, byte for byte
    summary = json.loads((out / "summary.json").read_text())
    # A complete ledger has nothing to evaluate: the searcher is not even replayed.
    replayed, stopped = (0, "complete") if kept == 3 else (kept, "budget")
    counts = (summary["replayed"], summary["evaluated_this_session"], summary["stopped"])
    assert counts == (replayed, 3 - kept, stopped)
    new = [json.loads(line) for line in after[kept:]]
    assert [r["seq"] for r in new] == list(range(kept, 3))
    assert [_strip_timings(r) for r in new] == [_strip_timings(json.loads(line)) for line in full[kept:]]


def test_cost_one_task_of_a_multi_task_candidate(multi_run, files, tmp_path, capsys, run_cli):
    row = next(json.loads(line) for line in (multi_run / "ledger.jsonl").read_text().splitlines()
               if json.loads(line)["status"] != "failed")
    cand = tmp_path / "cand.json"
    cand.write_text(json.dumps(row))
    for task, space in ((0, "darts_snn"), (1, "darts")):
        code, out, err = run_cli(capsys, "cost", "--hw", str(files["toy_multi"]), "--workload", str(cand),
                                 "--space", space, "--task", str(task), "--json")
        assert code == 0, err
        figures = row["metrics"]["tasks"][task]
        total = json.loads(out)["total"]
        assert total["energy_j"] == pytest.approx(figures["energy"], rel=1e-9)
        assert total["latency_s"] == pytest.approx(figures["latency"], rel=1e-9)
        assert f"template: {figures['template']} (the candidate's member" in err


@pytest.mark.parametrize("argv,fragment", [
    (["--space", "darts"], "has 2 sub-accelerators, one per task: give --space 2 times (found 1)"),
    (["--space", "darts", "--space", "darts", "--space", "darts"], "give --space 2 times (found 3)"),
    (["--space", "darts", "--space", "darts", "--dataset", "digits", "--dataset", "digits", "--dataset", "digits"],
     "--dataset given 3 times for 2 --space"),
    (["--space", "darts", "--space", "darts", "--set", "task2.macro.cells=3"], "task0..task1"),
])
def test_space_count_mismatch_is_a_usage_error(files, capsys, argv, fragment, run_cli):
    code, _, err = run_cli(capsys, "search", *argv, "--hw", str(files["toy_multi"]), "--budget", "1", *TINY)
    assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err, err


def test_several_spaces_need_a_multi_accelerator(files, capsys, run_cli):
    code, _, err = run_cli(capsys, "search", "--space", "darts", "--space", "darts", "--hw", str(files["toy_set"]),
                           "--budget", "1", *TINY)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "2 --space (tasks) need a multi_accelerator --hw with 2 sub-accelerators" in err


def test_over_budget_file_exits_2_with_one_line(files, tmp_path, capsys, run_cli):
    bad = tmp_path / "bad_multi.yaml"
    text = files["toy_multi"].read_text().replace("pes: 320", "pes: 50").replace("[toy_set.yaml]",
                                                                                 f"[{files['toy_set']}]")
    bad.write_text(text)
    for argv in (["validate", str(bad)], ["search", "--space", "darts", "--space", "darts", "--hw", str(bad)]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err
        assert f"{bad}:7: budget.pes: expected at least 64 PEs" in lines[0]


def test_validate_and_spaces_know_the_new_kinds(files, capsys, run_cli):
    code, out, err = run_cli(capsys, "validate", str(files["toy_set"]), str(files["toy_multi"]))
    assert code == 0, err
    assert "AcceleratorSet 'toy_set', 3 templates: toy_os, toy_ws, toy_is; 36 configurations" in out
    assert "MultiAccelerator 'toy_multi', 3 templates" in out
    code, out, err = run_cli(capsys, "validate", str(files["toy_set"]), "--set", "hw.template=toy_os")
    assert code == 0 and "1 template: toy_os; 16 configurations" in out, err
    code, out, _ = run_cli(capsys, "spaces", str(files["toy_multi"]))
    assert code == 0 and "sub-accelerators: 2 (one per task), sharing 320 PEs and 16 DRAM bytes/cycle" in out
    assert "member toy_is: pe_array.rows [8, 12]" in out
    code, out, _ = run_cli(capsys, "spaces", str(files["toy_set"]), "--json")
    d = json.loads(out)
    assert d["kind"] == "accelerator_set" and d["templates"] == ["toy_os", "toy_ws", "toy_is"] and d["size"] == 36
    code, out, _ = run_cli(capsys, "spaces")
    assert code == 0 and "accelerator sets:" in out and "multi-accelerators:" in out


def test_builtin_set_and_multi_accelerator(capsys, run_cli):
    code, out, _ = run_cli(capsys, "spaces", "--json")
    d = json.loads(out)
    assert d["accelerator sets"]["asic_template"]["templates"] == [
        "eyeriss_like", "nvdla_like", "shidiannao_like", "input_stationary", "sata_like"]
    multi = d["multi-accelerators"]["hetero_2task"]
    assert multi["sub_accelerators"] == 2 and multi["templates"] == d["accelerator sets"]["asic_template"]["templates"]
    code, _, err = run_cli(capsys, "search", "--space", "darts_snn", "--space", "darts", "--hw", "hetero_2task",
                           "--set", "hw.budget.pes=100", "--budget", "1", *TINY)
    assert code == 2 and "budget.pes: expected at least 128 PEs" in err and len(err.strip().splitlines()) == 1
