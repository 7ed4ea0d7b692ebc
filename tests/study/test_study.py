"""The study facade: the CLI and create_study(...).optimize(...) write the same ledger,
--resume alone continues every kind of run, ask/tell, enqueue, plain functions as
evaluators with the design specs applied, and reading old run directories."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nasco
from nasco.cli import main
from nasco.core import Objective, Result
from nasco.search import SEARCHERS

TIMING_KEYS = {"seconds", "started_at", "finished_at", "worker"}
TIMING_METRICS = {"train_seconds", "evaluator_seconds", "proxy_seconds", "hw_front_seconds"}
TINY = ["--limit", "150", "--epochs", "1"]


def _ledger(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "ledger.jsonl").read_text().splitlines()]
    for r in rows:
        for k in TIMING_KEYS:
            r.pop(k, None)
        for metrics in (r["metrics"], *r["metrics"].get("tasks", [])):  # a multi-task row's tasks too
            for k in TIMING_METRICS:
                metrics.pop(k, None)
        if isinstance(r["metrics"].get("search"), dict):  # a differentiable search's own clock
            r["metrics"]["search"].pop("search_seconds", None)
    return sorted(rows, key=lambda r: r["seq"])


def _cut(run: Path, keep: int) -> None:
    """The run as a kill after ``keep`` evaluations leaves it: the ledger's first rows."""
    lines = (run / "ledger.jsonl").read_text().splitlines(keepends=True)
    (run / "ledger.jsonl").write_text("".join(lines[:keep]))
    for name in ("optuna.db", "pareto.csv", "summary.json"):
        (run / name).unlink(missing_ok=True)


def test_quick_start_writes_the_cli_ledger(tmp_path):
    cli = tmp_path / "cli"
    # 8 trainings: past the evolution searcher's random population of 6, so its settings show (the
    # budget counts trainings; a mutation of a winner's hardware alone reuses its training).
    assert main(["search", "--space", "darts_snn", "--hw", "asic_template", "--budget", "8",
                 "--out", str(cli), "--quiet", *TINY]) == 0
    study = nasco.create_study(space="darts_snn", hw="asic_template", storage=tmp_path / "api", seed=0)
    study.optimize(study.make_evaluator("train", limit=150, epochs=1), budget=8, progress=False)
    api_rows, cli_rows = _ledger(tmp_path / "api"), _ledger(cli)
    assert len({r["metrics"]["training"] for r in api_rows}) == 8 and api_rows == cli_rows
    assert (tmp_path / "api" / "pareto.csv").read_text() == (cli / "pareto.csv").read_text()
    # The run records what rebuilds it: the evaluator's settings and the searcher's defaults.
    run = json.loads((tmp_path / "api" / "run.json").read_text())
    assert run["config"]["evaluator_options"]["epochs"] == 1 and run["searcher"]["population_size"] == 6


@pytest.mark.parametrize("searcher", sorted(SEARCHERS))
def test_resume_alone_continues_every_searcher(searcher, tmp_path, capsys):
    base = ["search", "--space", "nb201", "--evaluator", "table", "--table", "nb201", "--objectives",
            "accuracy,eyeriss_latency", "--searcher", searcher, "--budget", "8", "--seed", "3", "--quiet"]
    if searcher == "predictor-guided":
        base += ["--searcher-opt", "n_initial=3", "--searcher-opt", "pool_size=20"]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert main(base + ["--out", str(whole)]) == 0
    assert main(base + ["--out", str(cut)]) == 0
    _cut(cut, 3)
    assert main(["search", "--out", str(cut), "--resume", "--quiet"]) == 0
    assert _ledger(cut) == _ledger(whole) and len(_ledger(whole)) == 8
    summary = json.loads((cut / "summary.json").read_text())
    assert summary["evaluated_this_session"] == 5 and summary["budget"] == 8
    assert summary["hypervolume"] == json.loads((whole / "summary.json").read_text())["hypervolume"]


@pytest.mark.parametrize("kind", ["train", "proxy", "multi_task", "darts"])
def test_resume_alone_continues_every_evaluator_kind(kind, tmp_path):
    base = {
        "train": ["--space", "darts_snn", "--hw", "asic_template", "--budget", "3", *TINY],
        "proxy": ["--space", "darts_snn", "--hw", "asic_template", "--evaluator", "proxy", "--limit", "150",
                  "--budget", "3"],
        "multi_task": ["--space", "darts_snn", "--space", "darts", "--hw", "hetero_2task", "--budget", "3",
                       *TINY],
        "darts": ["--space", "darts_snn", "--hw", "asic_template", "--searcher", "darts", "--limit", "60",
                  "--set", "macro.stem.channels=4", "--set", "timesteps=2", "--searcher-opt", "epochs=2",
                  "--searcher-opt", "warmup_epochs=1", "--searcher-opt", "batch_size=16", "--budget", "2"],
    }[kind]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert main(["search", *base, "--out", str(whole), "--quiet"]) == 0
    assert main(["search", *base, "--out", str(cut), "--quiet"]) == 0
    _cut(cut, 1)
    assert main(["search", "--out", str(cut), "--resume", "--quiet"]) == 0
    assert _ledger(cut) == _ledger(whole)


def test_resume_refuses_a_contradicting_flag(tmp_path, capsys):
    run = tmp_path / "run"
    base = ["search", "--space", "nb201", "--evaluator", "table", "--table", "nb201", "--budget", "4",
            "--quiet"]
    assert main(base + ["--out", str(run)]) == 0
    capsys.readouterr()
    for flag, shown in ((["--seed", "1"], "--seed 1 (the run has 0)"),
                        (["--table-fidelity", "12"], "evaluator setting 'table_fidelity' is 12, the recorded "
                                                     "run's is 200"),
                        (["--table-dataset", "c100", "--table-split", "valtest"],
                         "evaluator setting 'table_dataset' is 'c100', the recorded run's is 'c10'"),
                        (["--searcher", "random"], "--searcher 'random' (the run has 'evolution')"),
                        (["--objectives", "accuracy,eyeriss_latency"], "--objectives")):
        with pytest.raises(SystemExit) as e:
            main(["search", "--out", str(run), "--resume", *flag])
        err = capsys.readouterr().err
        assert e.value.code == 2 and shown in err and len(err.strip().splitlines()) == 1, err
    # A larger budget is what resuming is for.
    assert main(["search", "--out", str(run), "--resume", "--budget", "6", "--quiet"]) == 0
    assert len(_ledger(run)) == 6


def test_a_loaded_study_refuses_another_evaluator_setting(tmp_path, capsys):
    # The library path: optimize() with an evaluator whose settings give rows another meaning.
    study = nasco.create_study(space="nb201", objectives="accuracy", storage=tmp_path / "t", seed=0)
    study.optimize(study.make_evaluator("table", table="nb201"), budget=3, progress=False)
    again = nasco.load_study(tmp_path / "t")
    for opts, shown in (({"table_dataset": "c100", "table_split": "valtest"},
                         "evaluator setting 'table_dataset' is 'c100', the recorded run's is 'c10'"),
                        ({"table_fidelity": 12},
                         "evaluator setting 'table_fidelity' is 12, the recorded run's is 200")):
        with pytest.raises(nasco.run.RunDirError, match=shown):
            again.optimize(again.make_evaluator("table", table="nb201", **opts), budget=5, progress=False)
    assert len(again.trials_dataframe()) == 3
    again.optimize(again.make_evaluator("table", table="nb201"), budget=4, progress=False)
    assert len(again.trials_dataframe()) == 4
    with pytest.raises(ValueError, match="holds a study with sets"):
        nasco.create_study(space="nb201", sets=["cell.ops=[none, skip_connect]"], storage=tmp_path / "t",
                           load_if_exists=True)
    # Training settings: dataset, epochs, limit; the device and threads may change.
    train = nasco.create_study(space="darts_snn", hw="asic_template", storage=tmp_path / "tr", seed=0)
    train.optimize(train.make_evaluator("train", limit=150, epochs=1), budget=1, progress=False)
    loaded = nasco.load_study(tmp_path / "tr")
    for opts, shown in (({"limit": 100, "epochs": 1}, "'limit' is 100, the recorded run's is 150"),
                        ({"limit": 150, "epochs": 2}, "'epochs' is 2, the recorded run's is 1"),
                        ({"limit": 150, "epochs": 1, "max_seconds": 5.0},
                         "'max_seconds' is 5.0, the recorded run's is None")):
        with pytest.raises(nasco.run.RunDirError, match=shown):
            loaded.optimize(loaded.make_evaluator("train", **opts), budget=2, progress=False)
    capsys.readouterr()
    for flags, shown in ((["--epochs", "2"], "evaluator setting 'epochs' is 2, the recorded run's is 1"),
                         (["--limit", "100"], "evaluator setting 'limit' is 100, the recorded run's is 150"),
                         (["--dataset", str(tmp_path)], f"evaluator setting 'dataset' is '{tmp_path}', the "
                                                        f"recorded run's is 'digits'")):
        with pytest.raises(SystemExit) as e:
            main(["search", "--out", str(tmp_path / "tr"), "--resume", "--budget", "2", *flags])
        err = capsys.readouterr().err
        assert e.value.code == 2 and shown in err and len(err.strip().splitlines()) == 1, err
    assert main(["search", "--out", str(tmp_path / "tr"), "--resume", "--budget", "2", "--threads", "1",
                 "--device", "cpu", "--quiet"]) == 0
    assert len(loaded.trials_dataframe()) == 2


def test_candidates_must_be_objects(tmp_path):
    study = nasco.create_study(space="nb201", objectives="accuracy", storage=tmp_path / "e")
    with pytest.raises(nasco.core.NascoError, match="enqueue: expected arch .* found NoneType"):
        study.enqueue(None)
    with pytest.raises(nasco.core.NascoError,
                       match=r"candidate: key 'arch': expected a JSON object .*found null"):
        nasco.core.Candidate.from_json('{"arch": null, "hw": {}}')
    with pytest.raises(nasco.core.NascoError,
                       match=r"candidate: key 'hw': expected a JSON object .*found \[1\]"):
        nasco.core.Candidate.make({"cell": {}}, [1])
    first = study.space.sample(np.random.default_rng(0))
    study.enqueue(first.arch)
    study.optimize(lambda c: {"accuracy": 0.5}, budget=1, progress=False)
    meta = json.loads((tmp_path / "e" / "run.json").read_text())
    meta["enqueued"][0]["arch"] = None
    (tmp_path / "e" / "run.json").write_text(json.dumps(meta))
    with pytest.raises(nasco.core.NascoError, match=r"run.json: key 'enqueued\[0\]': candidate: key 'arch'"):
        nasco.load_study(tmp_path / "e")


def test_ask_tell_replays_and_continues(tmp_path):
    objs = {"accuracy": "max", "eyeriss_latency": "min"}
    whole = nasco.create_study(space="nb201", objectives=objs, storage=tmp_path / "whole", seed=1)
    ev = whole.make_evaluator("table", table="nb201")
    for _ in range(6):
        cand = whole.ask()
        row = whole.tell(cand, ev.evaluate(cand, 0))
        assert row["id"] == cand.id
    with pytest.raises(ValueError, match="not the one ask"):
        whole.tell(cand, {"accuracy": 0.5, "eyeriss_latency": 1.0})
    # A new process (a new study object) replays the four rows it finds and asks what the
    # uninterrupted loop asked next.
    part = nasco.create_study(space="nb201", objectives=objs, storage=tmp_path / "part", seed=1)
    for _ in range(4):
        cand = part.ask()
        part.tell(cand, ev.evaluate(cand, 0))
    part.close()  # as the end of that process would
    again = nasco.load_study(tmp_path / "part")
    for _ in range(2):
        cand = again.ask()
        again.tell(cand, ev.evaluate(cand, 0))
    strip = lambda rows: [{k: r[k] for k in ("seq", "id", "status", "objectives")} for r in rows]  # noqa: E731
    assert strip(_ledger(tmp_path / "part")) == strip(_ledger(tmp_path / "whole"))
    assert len(again.trials_dataframe()) == 6


def test_function_evaluator_gets_the_design_specs_and_enqueue(tmp_path):
    # asic_template's latency spec is 0.5 ms (search_spaces/asic_template.yaml).
    study = nasco.create_study(space="darts_snn", hw="asic_template", storage=tmp_path / "fn",
                               objectives={"accuracy": "max", "latency": "min"}, seed=2)
    first = study.space.sample(np.random.default_rng(7))
    study.enqueue(first.arch, first.hw)
    seen = []

    def objective(cand):
        seen.append(cand.id)
        slow = len(seen) % 2 == 0
        return {"accuracy": 0.5 + 0.01 * len(seen), "latency": 7e-4 if slow else 3e-4}

    out = study.optimize(objective, budget=4, progress=False)
    df = study.trials_dataframe()
    assert seen[0] == first.id and df["id"].tolist()[0] == first.id
    assert df["status"].tolist() == ["ok", "infeasible", "ok", "infeasible"]
    assert df["violations.latency"].iloc[[1, 3]].tolist() == pytest.approx([2e-4, 2e-4], rel=1e-12)
    assert out.counts == {"ok": 2, "failed": 0, "infeasible": 2, "total": 4}
    # The front: ok rows only; seq 2 is better on accuracy at the same latency.
    assert study.front["id"].tolist() == [df["id"][2]]
    assert study.best("accuracy")["id"] == df["id"][2]
    with pytest.raises(ValueError, match="has started"):
        study.enqueue(first.arch, first.hw)


def test_trials_dataframe_is_flat_with_units(tmp_path):
    run = tmp_path / "run"
    assert main(["search", "--space", "nb201", "--evaluator", "table", "--table", "nb201", "--objectives",
                 "accuracy,eyeriss_latency", "--budget", "5", "--out", str(run), "--quiet"]) == 0
    study = nasco.load_study(run)
    df = study.trials_dataframe()
    rows = _ledger(run)
    assert df["id"].tolist() == [r["id"] for r in rows]
    assert df["eyeriss_latency"].tolist() == [r["objectives"]["eyeriss_latency"] for r in rows]
    assert df["metrics.test_accuracy"].tolist() == [r["metrics"]["test_accuracy"] for r in rows]
    assert df.attrs["units"] == {"accuracy": "fraction", "eyeriss_latency": "ms"}
    assert list(df.columns[:5]) == ["seq", "id", "status", "accuracy", "eyeriss_latency"]
    front = pd.read_csv(run / "pareto.csv")
    assert study.front["id"].tolist() == front["id"].tolist()


def test_load_study_reads_a_run_made_before_objective_definitions(tmp_path):
    run = tmp_path / "old"
    assert main(["search", "--space", "nb201", "--evaluator", "table", "--table", "nb201", "--objectives",
                 "accuracy,eyeriss_latency", "--budget", "5", "--out", str(run), "--quiet"]) == 0
    # What an older nasco wrote: run.json without objective definitions, bounds or evaluator
    # settings; summary.json with the directions.
    meta = json.loads((run / "run.json").read_text())
    for key in ("objective_defs", "objective_bounds", "settings", "design_specs"):
        meta.pop(key)
    meta["config"].pop("evaluator_options")
    (run / "run.json").write_text(json.dumps(meta))
    study = nasco.load_study(run)
    assert [(o.name, o.direction) for o in study.objectives] == [("accuracy", "max"),
                                                                 ("eyeriss_latency", "min")]
    assert study.front["id"].tolist() == pd.read_csv(run / "pareto.csv")["id"].tolist()
    assert len(study.trials_dataframe()) == 5
    assert main(["search", "--out", str(run), "--resume", "--budget", "7", "--quiet"]) == 0
    assert len(_ledger(run)) == 7


def test_study_errors_are_one_line(tmp_path):
    with pytest.raises(ValueError, match="did you mean 'evolution'"):
        nasco.create_study(space="nb201", searcher="evolutoin", storage=tmp_path / "a")
    with pytest.raises(ValueError, match="expected a run directory"):
        nasco.load_study(tmp_path / "nothing")
    study = nasco.create_study(space="nb201", objectives="accuracy", storage=tmp_path / "b")
    study.optimize(lambda c: {"accuracy": 0.5}, budget=1, progress=False)
    with pytest.raises(ValueError, match="already holds a study"):
        nasco.create_study(space="nb201", storage=tmp_path / "b")
    assert nasco.create_study(space="nb201", storage=tmp_path / "b", load_if_exists=True).seed == 0
    with pytest.raises(ValueError, match="direction expected 'max' or 'min'"):
        Objective("power", "up")
    assert Result  # the core names are importable from nasco.core


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_a_stopped_run_writes_its_outputs_and_resumes(sig, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    argv = [sys.executable, "-m", "nasco", "search", "--space", "darts_snn", "--hw", "asic_template",
            "--budget", "6", "--out", str(run), "--quiet", *TINY]
    proc = subprocess.Popen(argv, env=dict(os.environ, OMP_NUM_THREADS="1"), stderr=subprocess.PIPE,
                            text=True)
    ledger = run / "ledger.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (ledger.exists() and ledger.read_text().count("\n") >= 2):
        time.sleep(0.05)
    alive = proc.poll() is None
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=120)
    assert alive, "the run finished before it could be stopped"
    assert proc.returncode == 130, err
    rows = ledger.read_text().splitlines()
    assert 2 <= len(rows) < 6
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stopped"] == "interrupted" and summary["counts"]["total"] == len(rows)
    assert (run / "pareto.csv").exists() and "rerun with --resume" in err
    assert main(["search", "--out", str(run), "--resume", "--quiet"]) == 0
    assert len(_ledger(run)) == 6
    assert json.loads((run / "summary.json").read_text())["stopped"] == "budget"


def test_one_driver_per_run_directory(tmp_path, capsys):
    import os
    import subprocess
    import sys

    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from nasco.run._lock import RunLock; "
                               "RunLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(60)",
                               str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        base = ["search", "--space", "nb201", "--evaluator", "table", "--table", "nb201", "--budget", "3",
                "--out", str(run), "--quiet"]
        with pytest.raises(SystemExit) as e:
            main(base)
        err = capsys.readouterr().err
        assert e.value.code == 2 and len(err.strip().splitlines()) == 1
        assert f"is in use by another nasco run (pid {holder.pid} on {os.uname().nodename})" in err
        assert not (run / "ledger.jsonl").exists()
        # An ask/tell loop holds the lock too.
        study = nasco.create_study(space="nb201", objectives="accuracy", storage=tmp_path / "loop")
        study.ask()
        with pytest.raises(ValueError, match="in use by another nasco run"):
            nasco.load_study(tmp_path / "loop").ask()
    finally:
        holder.kill()
        holder.wait()
    # The holder was killed: its lock went with it, and the run starts.
    assert main(base) == 0 and len(_ledger(run)) == 3
