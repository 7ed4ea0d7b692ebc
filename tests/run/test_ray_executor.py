"""Fault tolerance on a real local Ray cluster (``ray start --head`` on 127.0.0.1, see
conftest.py): workers killed mid-evaluation, candidates that raise, run out of memory or
hang, and a driver killed with SIGKILL then resumed. What every executor keeps (the process
pool's retries included) is in test_executor_contract.py."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from nasco.run import Ledger, run_search
from nasco.run._executors import InProcessExecutor
from nasco.run._ray import RayExecutor
from nasco.search import RegularizedEvolution
from nasco.testing import default_space
from nasco.testing.faults import FaultyEvaluator

OBJ = ("accuracy", "energy")
VOLATILE = ("seconds", "started_at", "finished_at", "worker", "attempts", "retries")


@pytest.fixture(scope="module")
def space():
    return default_space()


def _rows(out: Path) -> list[dict]:
    return sorted(Ledger(out / "ledger.jsonl").rows(), key=lambda r: r["seq"])


def _strip(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in rows]


def _run(space, out: Path, executor, *, budget=10, faults=None, sleep=0.0, log_dir=None, resume=False):
    ev = FaultyEvaluator(space, OBJ, sleep=sleep, faults=faults, marker_dir=out.parent, log_dir=log_dir)
    s = RegularizedEvolution(space, OBJ, seed=3, population_size=4, sample_size=2)
    return run_search(space=space, evaluator=ev, searcher=s, budget=budget, out_dir=out, seed=3,
                      progress=False, executor=executor, window=2, resume=resume)


@pytest.fixture(scope="module")
def baseline(space, tmp_path_factory) -> list[dict]:
    """The in-process ledger (window 2) that every executor must reproduce."""
    out = tmp_path_factory.mktemp("base") / "run"
    _run(space, out, InProcessExecutor())
    return _rows(out)


def _evaluations(log_dir: Path) -> list[str]:
    return [line.split()[0] for line in (log_dir / "evaluations.log").read_text().splitlines()]


def test_ray_runs_the_same_ledger_on_workers_and_retries_a_killed_worker(space, baseline, ray_env, tmp_path):
    """A worker killed (SIGKILL) while it evaluates: the evaluation runs again on another
    worker, the row says so, and every candidate is evaluated exactly once in the ledger."""
    victim = baseline[3]["id"]
    logs = tmp_path / "logs"
    logs.mkdir()
    ex = RayExecutor(address=ray_env, workers=2)
    out = _run(space, tmp_path / "run", ex, faults={victim: "crash_once"}, log_dir=logs)
    rows = _rows(tmp_path / "run")
    assert out.evaluated == 10 and len({r["id"] for r in rows}) == 10
    assert _strip(rows) == _strip(baseline)
    hit = next(r for r in rows if r["id"] == victim)
    assert hit["status"] == baseline[3]["status"] and hit["attempts"] == 2
    assert len(hit["retries"]) == 1 and hit["retries"][0].startswith("worker died: WorkerCrashedError")
    assert all(r["attempts"] == 1 and r["retries"] == [] for r in rows if r["id"] != victim)
    # Evaluations started: each candidate once, the victim twice (the killed attempt).
    started = _evaluations(logs)
    assert sorted(started) == sorted([r["id"] for r in rows] + [victim])
    # Two worker processes shared the work; none of them is the driver.
    workers = {r["worker"] for r in rows}
    assert len(workers) >= 2 and all(not w.endswith(f":{os.getpid()}") for w in workers)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["executor"]["executor"] == "ray" and summary["executor"]["workers"] == 2


def test_ray_failures_are_recorded_and_the_search_goes_on(space, baseline, ray_env, tmp_path):
    # The first four proposals are evolution's random initial population: proposed whatever
    # their results, so the faults below are sure to be met.
    ids = [r["id"] for r in baseline[:4]]
    faults = {ids[0]: "raise", ids[1]: "memory_error", ids[2]: "hang", ids[3]: "crash"}
    ex = RayExecutor(address=ray_env, workers=2, trial_timeout=2.0, max_retries=1)
    t0 = time.time()
    out = _run(space, tmp_path / "run", ex, faults=faults)
    assert time.time() - t0 < 120  # the hung evaluation did not hold the run
    rows = {r["id"]: r for r in _rows(tmp_path / "run")}
    assert out.evaluated == 10 and len(rows) == 10
    assert rows[ids[0]]["reason"] == f"RuntimeError: injected failure on {ids[0]}"
    assert rows[ids[1]]["reason"].startswith("out of memory: MemoryError")
    assert rows[ids[2]]["reason"] == "timeout: the evaluation ran past the trial timeout of 2 s"
    crashed = rows[ids[3]]
    assert crashed["status"] == "failed" and crashed["attempts"] == 2 and len(crashed["retries"]) == 2
    assert crashed["reason"].endswith("(worker died on all 2 attempts)")
    assert all(rows[i]["status"] == "failed" for i in ids)
    assert sum(r["status"] != "failed" for r in rows.values()) >= 4  # the search went on


def test_ray_batches_cheap_evaluations(space, baseline, ray_env, tmp_path):
    ex = RayExecutor(address=ray_env, workers=2, batch=3)
    _run(space, tmp_path / "run", ex)
    # Batching changes where evaluations run, not what the run computes... given the same window.
    rows = _rows(tmp_path / "run")
    assert len(rows) == 10 and json.loads((tmp_path / "run" / "run.json").read_text())["window"] == 2


def _cli(out: Path, address: str, budget: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "nasco", "search", "--space", "nb201", "--evaluator", "table", "--table", "nb201",
            "--budget", str(budget), "--seed", "4", "--out", str(out), "--quiet", *extra]


def test_driver_killed_then_resumed_on_ray(ray_env, tmp_path):
    """`nasco search --ray-address ...` killed with SIGKILL mid-run, then `--resume`: the run
    completes, nothing is lost or evaluated twice, and the front equals an uninterrupted
    run's (the same window, in-process)."""
    budget = 400
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ref = tmp_path / "ref"
    # Two workers propose with a window of 4 by default (see nasco.run._driver.default_window).
    res = subprocess.run(_cli(ref, ray_env, budget, "--window", "4"), env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    out = tmp_path / "killed"
    cmd = _cli(out, ray_env, budget, "--ray-address", ray_env, "--workers", "2")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ledger = out / "ledger.jsonl"
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        if ledger.exists() and len(ledger.read_bytes().splitlines()) >= 30:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed; raise the budget"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = len(Ledger(ledger).rows())
    assert 30 <= before < budget
    res = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    rows = _rows(out)
    assert len(rows) == budget and len({r["id"] for r in rows}) == budget
    assert [r["seq"] for r in rows] == list(range(budget))
    assert _strip(rows) == _strip(_rows(ref))
    a, b = pd.read_csv(out / "pareto.csv"), pd.read_csv(ref / "pareto.csv")
    pd.testing.assert_frame_equal(a, b)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed"] and summary["replayed"] + summary["evaluated_this_session"] >= budget - 2


def test_a_local_ray_instance_listens_on_loopback_only(tmp_path):
    """Without --ray-address nasco starts its own Ray instance, bound to 127.0.0.1 (nothing
    in the environment asks for it: nasco sets it up itself), and stops it at the end."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["OMP_NUM_THREADS"] = "1"
    out = tmp_path / "local"
    res = subprocess.run(_cli(out, "", 6, "--executor", "ray", "--workers", "1"), env=env, capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr
    ex = json.loads((out / "summary.json").read_text())["executor"]
    assert ex["local_instance"] is True and ex["gcs_address"].startswith("127.0.0.1:")
    assert len(Ledger(out / "ledger.jsonl").rows()) == 6
