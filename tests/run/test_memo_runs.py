"""Runs of an evaluator that memoises its trainings: the budget counts trainings, an
architecture trains once whatever hardware it is proposed with, the run stops when the
searcher only proposes trained architectures, and a killed run resumes without training
again what had finished."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nasco.core import Candidate, EvaluatorBase, Result
from nasco.dsl import load_spec
from nasco.evaluate import _train
from nasco.evaluate._data import load_dataset
from nasco.evaluate._joint import TrainCostEvaluator
from nasco.run import Ledger, Schedule, _driver, run_search
from nasco.search import Searcher
from nasco.space import SearchSpace
from nasco.testing.kill_anywhere import compare_ledgers

OBJ = ("accuracy", "energy")
TINY = {("macro", "cells"): 1, ("macro", "stem", "channels"): 4, ("macro", "reductions"): [],
        ("timesteps",): 2}
# Architectures A, B, C, D (pool index) with accelerator configuration h (0..9), in the order proposed.
PLAN = (("A", 0), ("A", 1), ("B", 0), ("A", 2), ("C", 0), ("C", 1), ("D", 0), ("B", 1))


pytestmark = pytest.mark.usefixtures("cheap_plot")  # stub plots: see conftest.py


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return SearchSpace(load_spec("darts_snn", overrides=TINY), load_spec("asic_template"))


@pytest.fixture(scope="module")
def data():
    return load_dataset("digits", seed=0, limit=60)


class Planned(Searcher):
    """Proposes architecture x hardware pairs from ``plan`` in order, then the plan again."""

    name = "planned"

    def __init__(self, space, objectives, *, seed=0, plan=PLAN) -> None:
        super().__init__(space, objectives, seed=seed)
        rng = np.random.default_rng(seed)
        archs = {name: space.sample(rng).arch for name in "ABCD"}
        hws = [space.sample(np.random.default_rng(100 + i)).hw for i in range(10)]
        self.plan = [space.make(archs[a]["cell"], archs[a]["hp"], hws[h]) for a, h in plan]
        self.k = 0

    def _ask(self, n):
        out = [self.plan[(self.k + i) % len(self.plan)] for i in range(n)]
        self.k += n
        return out

    def _tell(self, candidate, result):
        pass

    def _state(self):
        return {"k": self.k}


@pytest.fixture
def trainings(monkeypatch):
    """The configs train_and_evaluate was called with, in order."""
    calls = []
    real = _train.train_and_evaluate

    def counting(model, data, config=None):
        calls.append(config)
        return real(model, data, config)

    monkeypatch.setattr(_train, "train_and_evaluate", counting)
    return calls


def _run(space, data, out: Path, *, budget=3, resume=False, searcher=None, evaluator=None, **kw):
    ev = evaluator or TrainCostEvaluator(space, data, objectives=OBJ, epochs=1, lr=0.1)
    return run_search(space=space, evaluator=ev, searcher=searcher or Planned(space, OBJ), budget=budget,
                      out_dir=out, seed=7, progress=False, resume=resume, **kw)


@pytest.fixture(scope="module")
def reference(space, data, tmp_path_factory):
    """An uninterrupted run of budget 3 (its train calls counted) and its ledger rows."""
    calls = []
    real = _train.train_and_evaluate

    def counting(model, data, config=None):
        calls.append(config)
        return real(model, data, config)

    mp = pytest.MonkeyPatch()
    mp.setattr(_train, "train_and_evaluate", counting)
    try:
        out = _run(space, data, tmp_path_factory.mktemp("memo") / "ref")
    finally:
        mp.undo()
    return out, Ledger(out.out_dir / "ledger.jsonl").rows(), calls


def test_an_architecture_trains_once_and_the_budget_counts_trainings(reference):
    out, rows, calls = reference
    # PLAN: A0 A1 B0 A2 C0 -> three trainings (A, B, C), five evaluations.
    assert len(calls) == 3 and out.counts["total"] == 5 and out.trainings == 3
    assert out.stopped == "budget"
    assert [r["metrics"]["trained"] for r in rows] == [True, False, True, False, True]
    keys = [r["metrics"]["training"] for r in rows]
    assert keys[0] == keys[1] == keys[3] and len({keys[0], keys[2], keys[4]}) == 3
    assert len({r["id"] for r in rows}) == 5 and all(r["status"] == "ok" for r in rows)
    # The reused training gives the architecture's accuracy; each hardware is costed on its own.
    acc = [r["objectives"]["accuracy"] for r in rows]
    assert acc[0] == acc[1] == acc[3]
    assert len({rows[i]["objectives"]["energy"] for i in (0, 1, 3)}) == 3
    store = sorted(p.name for p in (out.out_dir / "trainings").iterdir())
    # Each training's record and weights, and the folder of its quantized accuracies.
    assert store == sorted(f"{k}.{ext}" for k in set(keys) for ext in ("json", "safetensors", "measures"))
    run = json.loads((out.out_dir / "run.json").read_text())
    summary = json.loads((out.out_dir / "summary.json").read_text())
    assert run["budget_counts"] == "trainings" and summary["budget_counts"] == "trainings"
    assert summary["trainings"] == 3 and summary["stopped"] == "budget"


class _Killed(BaseException):
    """The process dying: nothing in the driver handles it."""


def test_killed_run_resumes_without_training_again_what_finished(space, data, reference, trainings, tmp_path,
                                                                 monkeypatch):
    _, ref_rows, _ = reference
    real_cost = TrainCostEvaluator._cost
    costed = []

    def dying(self, *args):
        costed.append(1)
        if len(costed) == 3:  # B0: B's training is stored, its row is not written
            raise _Killed
        return real_cost(self, *args)

    monkeypatch.setattr(TrainCostEvaluator, "_cost", dying)
    with pytest.raises(_Killed):
        _run(space, data, tmp_path / "run")
    monkeypatch.setattr(TrainCostEvaluator, "_cost", real_cost)
    store = tmp_path / "run" / "trainings"
    assert len(Ledger(tmp_path / "run" / "ledger.jsonl").rows()) == 2 and len(trainings) == 2
    before = {str(p.relative_to(store)): p.stat().st_mtime_ns for p in store.rglob("*") if p.is_file()}
    assert len([p for p in before if "/" not in p]) == 4  # A's and B's records and weights

    out = _run(space, data, tmp_path / "run", resume=True)
    # Only C trained on resume; A's and B's records and measures were read back, not written again.
    assert len(trainings) == 3 and out.trainings == 3 and out.counts["total"] == 5
    assert {str(p.relative_to(store)): p.stat().st_mtime_ns for p in store.rglob("*")
            if str(p.relative_to(store)) in before} == before
    rows = Ledger(tmp_path / "run" / "ledger.jsonl").rows()
    assert compare_ledgers(ref_rows, rows) == []
    assert [r["metrics"]["trained"] for r in rows] == [True, False, True, False, True]


class FakeTrainer(EvaluatorBase):
    """Memoises a pretend training per architecture: no torch, for the run's bookkeeping."""

    objectives = OBJ
    trains = True

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.attached: list[tuple[str, bool, int]] = []

    def attach_run_dir(self, out_dir, *, resume, seed):
        self.attached.append((str(out_dir), resume, seed))

    def training_keys(self, candidate: Candidate) -> tuple[str, ...]:
        return (hashlib.sha256(candidate.arch_json.encode()).hexdigest(),)

    def evaluate(self, candidate: Candidate, seed: int) -> Result:
        self.calls.append(candidate.id)
        key = self.training_keys(candidate)[0]
        return Result("ok", {"accuracy": int(key[:4], 16) / 65536, "energy": float(len(candidate.hw_json))},
                      {"training": key})


def test_a_searcher_that_only_proposes_trained_architectures_stops_at_the_row_limit(space, data, tmp_path,
                                                                                    monkeypatch):
    monkeypatch.setattr(_driver, "ROW_FLOOR", 4)
    monkeypatch.setattr(_driver, "ROW_FACTOR", 2)
    ev = FakeTrainer()
    only_a = Planned(space, OBJ, plan=tuple(("A", h) for h in range(10)))
    out = _run(space, data, tmp_path / "run", budget=2, searcher=only_a, evaluator=ev)
    # max(ROW_FLOOR, ROW_FACTOR x budget) = 4 rows, one training: the budget of 2 is never spent.
    assert out.stopped == "row_limit" and out.counts["total"] == 4 and out.trainings == 1
    assert ev.attached == [(str(tmp_path / "run"), False, 7)]
    rows = Ledger(tmp_path / "run" / "ledger.jsonl").rows()
    assert [r["metrics"]["trained"] for r in rows] == [True, False, False, False]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["stopped"] == "row_limit"


def test_resume_counts_the_way_run_json_records(space, data, tmp_path):
    # A run recorded as counting evaluations (an earlier nasco) keeps counting them on resume.
    first = _run(space, data, tmp_path / "run", budget=2, evaluator=FakeTrainer())
    assert first.counts["total"] == 3 and first.trainings == 2  # A0 A1 B0
    run_json = tmp_path / "run" / "run.json"
    meta = json.loads(run_json.read_text())
    meta["budget_counts"] = "evaluations"
    run_json.write_text(json.dumps(meta))
    again = _run(space, data, tmp_path / "run", budget=4, evaluator=FakeTrainer(), resume=True)
    assert again.counts["total"] == 4 and again.trainings is None
    rows = Ledger(tmp_path / "run" / "ledger.jsonl").rows()
    # Counted as evaluations, a row still says whether it was the first to use its training.
    assert [r["metrics"]["trained"] for r in rows] == [True, False, True, False]


def test_a_job_waits_for_the_training_that_a_job_in_flight_runs(space, tmp_path):
    ev = FakeTrainer()
    s = Planned(space, OBJ)
    ids = [c.id for c in s.plan]
    sched = Schedule(s, recorded=[], budget=3, window=3, seed=0, out_dir=tmp_path, keys_of=ev.training_keys,
                     counts="trainings")
    # A0 trains A; A1 needs A too, so it waits; B0 trains B.
    first = sched.advance()
    assert [j.cand.id for j in first] == [ids[0], ids[2]] and [j.trains for j in first] == [
        ev.training_keys(s.plan[0]), ev.training_keys(s.plan[2])]
    row = {"seq": 0, "id": ids[0], "status": "ok", "objectives": {"accuracy": 0.5, "energy": 1.0},
           "metrics": {}}
    sched.complete(row)
    # A is trained: A1 goes, and so does A2 (asked as A0 is told), both paying nothing.
    second = sched.advance()
    assert [(j.seq, j.cand.id, j.trains) for j in second] == [(1, ids[1], ()), (3, ids[3], ())]
    assert sched.spent == 2 and [sched.cost(q) for q in range(4)] == [1, 0, 1, 0]


SEARCH = ["--space", "darts_snn", "--hw", "asic_template", "--limit", "60", "--epochs", "1", "--budget", "3",
          "--set", "macro.stem.channels=4", "--set", "timesteps=2", "--set", "macro.cells=1",
          "--set", "macro.reductions=[]", "--searcher", "random", "--seed", "2", "--quiet"]


def _search(*argv: str, out: Path, kill_after_rows: int | None = None) -> int:
    """``python -m nasco search``; SIGKILLed once its ledger has ``kill_after_rows`` rows."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "nasco", "search", *argv, "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if kill_after_rows is not None:
        ledger = out / "ledger.jsonl"
        deadline = time.monotonic() + 600
        while proc.poll() is None and time.monotonic() < deadline:
            if ledger.exists() and len(ledger.read_bytes().splitlines()) >= kill_after_rows:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.05)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode in (0, -signal.SIGKILL), err.decode()[-2000:]
    return proc.returncode


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGKILL of a subprocess")
def test_sigkilled_search_resumes_reading_the_stored_trainings_back(tmp_path):
    assert _search(*SEARCH, out=tmp_path / "ref") == 0
    ref_rows = Ledger(tmp_path / "ref" / "ledger.jsonl").rows()
    assert _search(*SEARCH, out=tmp_path / "run", kill_after_rows=1) == -signal.SIGKILL
    store = tmp_path / "run" / "trainings"
    rows = Ledger(tmp_path / "run" / "ledger.jsonl").rows()
    before = {p.name: p.stat().st_mtime_ns for p in store.glob("*.json")}
    assert 1 <= len(rows) < len(ref_rows)
    assert {f"{r['metrics']['training']}.json" for r in rows} <= set(before)
    assert _search("--resume", "--quiet", out=tmp_path / "run") == 0
    # Every record that the killed run finished was read back, none written again.
    assert {p.name: p.stat().st_mtime_ns for p in store.glob("*.json") if p.name in before} == before
    assert compare_ledgers(ref_rows, Ledger(tmp_path / "run" / "ledger.jsonl").rows()) == []
    ref_store = tmp_path / "ref" / "trainings"
    assert sorted(p.name for p in store.glob("*.json")) == sorted(p.name for p in ref_store.glob("*.json"))
