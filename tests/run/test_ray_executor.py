"""Fault tolerance on a real local Ray cluster (``ray start --head`` on 127.0.0.1, see
conftest.py): workers killed mid-evaluation, candidates that raise, run out of memory or
hang, and a driver killed with SIGKILL then resumed (Ray tasks, the pool, Ray Tune); batching;
a local Ray instance on loopback that leaves no process behind. What every executor keeps (the
process pool's retries included) is in test_executor_contract.py."""
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


def _run(space, out: Path, executor, *, budget=10, faults=None, sleep=0.0, log_dir=None, resume=False,
         window=2):
    ev = FaultyEvaluator(space, OBJ, sleep=sleep, faults=faults, marker_dir=out.parent, log_dir=log_dir)
    s = RegularizedEvolution(space, OBJ, seed=3, population_size=4, sample_size=2)
    return run_search(space=space, evaluator=ev, searcher=s, budget=budget, out_dir=out, seed=3,
                      progress=False, executor=executor, window=window, resume=resume)


@pytest.fixture(scope="module")
def baseline(space, tmp_path_factory) -> list[dict]:
    """The in-process ledger (window 2) that every executor must reproduce."""
    out = tmp_path_factory.mktemp("base") / "run"
    _run(space, out, InProcessExecutor())
    return _rows(out)


def _started(log_dir: Path) -> list[tuple[str, int]]:
    """(candidate id, process id) of every evaluation started, in the order they started."""
    lines = (log_dir / "evaluations.log").read_text().splitlines()
    return [(cid, int(pid)) for cid, pid in (line.split() for line in lines)]


def _evaluations(log_dir: Path) -> list[str]:
    return [cid for cid, _ in _started(log_dir)]


def _evaluation_pids(log_dir: Path, cand_id: str) -> list[int]:
    """The processes that started evaluating ``cand_id``, in the order they started."""
    return [pid for cid, pid in _started(log_dir) if cid == cand_id]


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
    # The retry ran in another process than the killed attempt, and the row names that process.
    # How Ray spreads the other (instant) evaluations over its workers is its own choice, so
    # only the victim's two processes are certain to differ.
    victim_pids = _evaluation_pids(logs, victim)
    assert len(victim_pids) == 2 and victim_pids[0] != victim_pids[1]
    assert hit["worker"].endswith(f":{victim_pids[1]}")
    # No evaluation ran in the driver.
    assert all(not r["worker"].endswith(f":{os.getpid()}") for r in rows)
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


def test_ray_batches_cheap_evaluations(space, ray_env, tmp_path, monkeypatch):
    """batch=3: the driver's jobs go out three to a Ray task (a shorter one only when the
    driver waits with fewer buffered), each task's evaluations run one after another in one
    worker, and the ledger is the in-process one of the same window."""
    window = 8  # the default for 2 workers of batch 3 would be 2 x (3 + 1): room for full batches
    base = tmp_path / "base"
    _run(space, base, InProcessExecutor(), window=window)
    tasks: list[list[int]] = []
    launch = RayExecutor._launch
    monkeypatch.setattr(RayExecutor, "_launch", lambda self, jobs: tasks.append([j.seq for j in jobs])
                        or launch(self, jobs))
    ex = RayExecutor(address=ray_env, workers=2, batch=3)
    _run(space, tmp_path / "run", ex, window=window)
    rows = _rows(tmp_path / "run")
    assert _strip(rows) == _strip(_rows(base))
    # The first 8 proposals are asked at once (evolution's random start): two full tasks,
    # then the 2 left over go when the driver waits. Later tasks hold what the driver gave
    # between two waits, never more than 3; each job goes out once (no worker died).
    assert tasks[:3] == [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert all(1 <= len(t) <= 3 for t in tasks) and sorted(q for t in tasks for q in t) == list(range(10))
    by_seq = {r["seq"]: r for r in rows}
    for t in tasks:
        # One worker ran the task's evaluations, in order, each after the one before.
        assert len({by_seq[q]["worker"] for q in t}) == 1, [by_seq[q]["worker"] for q in t]
        assert all(by_seq[a]["finished_at"] <= by_seq[b]["started_at"] for a, b in zip(t, t[1:]))
    assert json.loads((tmp_path / "run" / "run.json").read_text())["window"] == window


def _cli(out: Path, budget: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "nasco", "search", "--space", "nb201", "--evaluator", "table", "--table", "nb201",
            "--budget", str(budget), "--seed", "4", "--out", str(out), "--quiet", *extra]


def _lines(path: Path) -> list[bytes]:
    """The complete lines of a file (a torn last line left by a kill is not one)."""
    data = path.read_bytes()
    return data[:data.rfind(b"\n") + 1].splitlines(keepends=True)


# executor -> (its flags, budget, ledger rows to wait for before the kill). Budgets leave the
# driver seconds of work at the kill on 2 busy cores (Tune trials cost far more than tasks).
KILLED = {
    "ray": (lambda address: ["--ray-address", address, "--workers", "2"], 400, 30),
    "pool": (lambda address: ["--executor", "pool", "--workers", "2"], 400, 30),
    "tune": (lambda address: ["--executor", "tune", "--ray-address", address, "--workers", "2"], 40, 8),
}


@pytest.mark.parametrize("executor", sorted(KILLED))
def test_driver_killed_then_resumed(executor, request, spawn, tmp_path):
    """`nasco search` on the executor, killed with SIGKILL mid-run, then `--resume`: the rows
    written before the kill stay byte for byte, the resume evaluates exactly the missing
    seqs, and the ledger and front equal an uninterrupted run's (the same window,
    in-process)."""
    flags, budget, kill_at = KILLED[executor]
    address = request.getfixturevalue("ray_env") if executor != "pool" else ""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ref = tmp_path / "ref"
    # Two workers propose with a window of 4 by default (see nasco.run._driver.default_window).
    res = subprocess.run(_cli(ref, budget, "--window", "4"), env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    out = tmp_path / "killed"
    cmd = _cli(out, budget, *flags(address))
    proc = spawn(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ledger = out / "ledger.jsonl"
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        if ledger.exists() and len(_lines(ledger)) >= kill_at:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed; raise the budget"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _lines(ledger)
    assert kill_at <= len(before) < budget  # killed mid-run
    assert json.loads((out / "run.json").read_text())["window"] == 4
    missing = sorted(set(range(budget)) - {json.loads(line)["seq"] for line in before})
    res = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    after = _lines(ledger)
    assert after[:len(before)] == before
    assert sorted(json.loads(line)["seq"] for line in after[len(before):]) == missing
    summary = json.loads((out / "summary.json").read_text())
    # Every row present is replayed, every missing seq evaluated once: exact counts.
    assert summary["resumed"] is True
    assert (summary["replayed"], summary["evaluated_this_session"]) == (len(before), len(missing))
    rows = _rows(out)
    assert [r["seq"] for r in rows] == list(range(budget)) and len({r["id"] for r in rows}) == budget
    assert _strip(rows) == _strip(_rows(ref))
    a, b = pd.read_csv(out / "pareto.csv"), pd.read_csv(ref / "pareto.csv")
    pd.testing.assert_frame_equal(a, b)


def test_a_local_ray_instance_listens_on_loopback_only(tmp_path, spawn, proc_tools):
    """Without --ray-address nasco starts its own Ray instance, bound to 127.0.0.1 (nothing
    in the environment asks for it: nasco sets it up itself): every socket that a process
    of the run listens on is on loopback, and every process it started is gone when it
    ends."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["OMP_NUM_THREADS"] = "1"
    out = tmp_path / "local"
    with open(tmp_path / "stderr", "wb") as err:
        proc = spawn(_cli(out, 6, "--executor", "ray", "--workers", "1"), env=env, stdout=subprocess.DEVNULL,
                     stderr=err)
        # The driver leads a session of its own; Ray's processes, started by it, stay in it.
        seen: set[int] = set()
        names: set[str] = set()
        sockets: set[tuple[int, str, str]] = set()
        while proc.poll() is None:
            pids = proc_tools.session_pids(proc.pid)
            seen.update(pids)
            names.update(_comm(pid) for pid in pids)
            sockets.update(proc_tools.listening_sockets(pids))
            time.sleep(0.05)
    assert proc.returncode == 0, (tmp_path / "stderr").read_text()
    ex = json.loads((out / "summary.json").read_text())["executor"]
    assert ex["local_instance"] is True and ex["gcs_address"].startswith("127.0.0.1:")
    assert len(Ledger(out / "ledger.jsonl").rows()) == 6
    # The processes were watched: Ray's GCS server and raylet, and the GCS port listening.
    assert {"gcs_server", "raylet"} <= names, names
    gcs_port = ex["gcs_address"].rpartition(":")[2]
    assert any(addr.rpartition(":")[2] == gcs_port for _, _, addr in sockets), sockets
    outside = [s for s in sockets if s[2].rpartition(":")[0] not in ("127.0.0.1", "::1")]
    assert outside == [], outside
    # Ray's shutdown in the driver ended every process the run started, before the driver exited.
    assert proc_tools.session_pids(proc.pid) == [], [(p, _comm(p)) for p in proc_tools.session_pids(proc.pid)]


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""
