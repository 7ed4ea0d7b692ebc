"""The in-process executor's front worker: each network's hardware front made in a second
process while the next network trains. The searcher is told each head before its front is
done, proposes what it proposes without the worker, and the ledger is the same."""
from __future__ import annotations

import io

import numpy as np
import pytest

from nasco.core import FRONT_METRICS, EvaluatorBase, Result
from nasco.dsl import load_spec
from nasco.evaluate._data import load_dataset
from nasco.evaluate._joint import TrainCostEvaluator
from nasco.run import InProcessExecutor, Ledger, _executors, run_search
from nasco.run._driver import _told
from nasco.run._executors import make_front
from nasco.run._job import Job, evaluate_job, with_front
from nasco.search import Searcher
from nasco.space import SearchSpace
from nasco.testing.kill_anywhere import compare_ledgers

OBJ = ("accuracy", "energy")
TINY = {("macro", "cells"): 1, ("macro", "stem", "channels"): 4, ("macro", "reductions"): [],
        ("timesteps",): 2}
# Architectures (pool index) with an accelerator configuration each, in the order proposed: B0
# and A1 reuse trainings, A1 after B's front was handed on.
PLAN = (("A", 0), ("B", 0), ("A", 1), ("C", 0))

pytestmark = pytest.mark.usefixtures("cheap_plot")  # stub plots: see conftest.py


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return SearchSpace(load_spec("darts_snn", overrides=TINY), load_spec("asic_template"))


@pytest.fixture(scope="module")
def data():
    return load_dataset("digits", seed=0, limit=60)


class Watching(Searcher):
    """Proposes ``PLAN`` in order and records, at each tell, how many rows the ledger of
    ``ledger`` held then."""

    name = "watching"

    def __init__(self, space, objectives, *, seed=0, ledger=None) -> None:
        super().__init__(space, objectives, seed=seed)
        rng = np.random.default_rng(seed)
        archs = {name: space.sample(rng).arch for name in "ABC"}
        hws = [space.sample(np.random.default_rng(100 + i)).hw for i in range(2)]
        self.plan = [space.make(archs[a]["cell"], archs[a]["hp"], hws[h]) for a, h in PLAN]
        self.k = 0
        self.ledger = ledger
        self.rows_at_tell: list[int] = []
        self.told: list[dict] = []

    def _ask(self, n):
        out = [self.plan[(self.k + i) % len(self.plan)] for i in range(n)]
        self.k += n
        return out

    def _tell(self, candidate, result):
        self.rows_at_tell.append(len(Ledger(self.ledger).rows()) if self.ledger.exists() else 0)
        self.told.append(result.to_dict())

    def _state(self):
        return {"k": self.k}


def _untimed(obj):
    if isinstance(obj, dict):
        return {k: _untimed(v) for k, v in obj.items() if not k.endswith("seconds")}
    return [_untimed(v) for v in obj] if isinstance(obj, list) else obj


def _run(space, data, out, front_worker):
    ev = TrainCostEvaluator(space, data, objectives=OBJ, epochs=1, lr=0.1)
    searcher = Watching(space, OBJ, ledger=out / "ledger.jsonl")
    executor = InProcessExecutor(front_worker=front_worker)
    stream = io.StringIO()
    outcome = run_search(space=space, evaluator=ev, searcher=searcher, budget=3, out_dir=out, seed=7,
                         progress=stream, executor=executor)
    searcher.progress = stream.getvalue().splitlines()
    return outcome, Ledger(out / "ledger.jsonl").rows(), searcher, executor


@pytest.fixture(scope="module")
def runs(space, data, tmp_path_factory):
    root = tmp_path_factory.mktemp("fronts")
    return {mode: _run(space, data, root / mode, mode) for mode in ("off", "on")}


def test_the_front_worker_writes_the_ledger_of_whole_evaluations(runs):
    (off, off_rows, off_s, off_x), (on, on_rows, on_s, on_x) = runs["off"], runs["on"]
    assert [r["id"] for r in on_rows] == [c.id for c in on_s.plan] == [r["id"] for r in off_rows]
    assert compare_ledgers(off_rows, on_rows) == []
    # Every row has its front: without the worker, made with its head; with it, apart, the first
    # one always by the worker (the driver goes on to the next head), the others by the worker or,
    # when it had nothing else to do, by the driver.
    assert (off_x.fronts_in_worker, off_x.fronts_here) == (0, 0)
    assert on_x.fronts_in_worker >= 1 and on_x.fronts_in_worker + on_x.fronts_here == 4
    for row in on_rows:
        assert row["metrics"]["hw_front"]["configurations"] > 0 and row["members"]
    assert on.front.equals(off.front) and on.counts == off.counts
    # The searcher was told the same results, in the same order (timings aside).
    assert _untimed(on_s.told) == _untimed(off_s.told) and len(on_s.told) == 4


def test_the_searcher_is_told_a_head_before_its_front_is_done(runs):
    # The worker's first front cannot be done before the worker has started (a new process
    # that imports torch): the first tell comes while the ledger is still empty. Without the
    # worker, each row is in the ledger before its tell.
    assert runs["on"][2].rows_at_tell[0] == 0
    assert runs["off"][2].rows_at_tell == [1, 2, 3, 4]
    # The progress display numbers the trainings in order all the same (A, B, then C; A1 trains
    # nothing), counting the heads told before their rows.
    for mode in ("on", "off"):
        epochs = [line.split(":")[0] for line in runs[mode][2].progress if ": epoch " in line]
        assert epochs == [f"[watching] evaluation {k}/3" for k in (1, 2, 3)]


def test_a_searcher_is_not_told_the_front(runs):
    rows = runs["off"][1]
    told = _told(rows[0]).to_dict()
    assert not set(FRONT_METRICS) & set(told["metrics"]) and not told.get("members")
    assert told["objectives"] == rows[0]["objectives"] and told["status"] == rows[0]["status"]
    assert set(FRONT_METRICS) <= set(rows[0]["metrics"])


def test_head_and_front_make_the_row_of_evaluate(space, data, tmp_path):
    def evaluator(run_dir, resume=False):
        ev = TrainCostEvaluator(space, data, objectives=OBJ, epochs=1, lr=0.1)
        ev.attach_run_dir(run_dir, resume=resume, seed=3)
        return ev

    cand = Watching(space, OBJ, ledger=tmp_path / "none").plan[0]
    job = Job(0, cand, 11)
    whole = evaluate_job(evaluator(tmp_path / "whole"), OBJ, job)
    ev = evaluator(tmp_path / "split")
    head = evaluate_job(ev, OBJ, job, head=True)
    assert {k: head["metrics"][k] for k in FRONT_METRICS} == {"hw_front": None, "hw_front_seconds": None}
    assert "members" not in head and head["metrics"]["trained"] is True
    # In this process the front reuses the head's network; in a fresh copy it reads it back.
    here, _ = make_front(ev, job, None)
    there, _ = make_front(evaluator(tmp_path / "split", resume=True), job, None)
    assert compare_ledgers([whole], [with_front(head, here, 0.0)]) == []
    assert compare_ledgers([whole], [with_front(head, there, 0.0)]) == []
    assert list(with_front(head, here, 0.0)) == list(whole)  # the row's keys in evaluate's order
    assert list(with_front(head, here, 0.0)["metrics"]) == list(whole["metrics"])


class Broken(EvaluatorBase):
    objectives = OBJ
    defers_front = True

    def evaluate_head(self, candidate, seed):
        return Result("ok", {"accuracy": 0.5, "energy": 1.0}, {"hw_front": None, "hw_front_seconds": None})

    def evaluate_front(self, candidate, seed):
        raise RuntimeError("no table for this template")


def test_a_front_that_raises_is_recorded_and_the_candidate_keeps_its_result(space):
    job = Job(0, space.sample(np.random.default_rng(0)), 1)
    head = evaluate_job(Broken(), OBJ, job, head=True)
    front, _ = make_front(Broken(), job, None)
    row = with_front(head, front, 0.1)
    assert row["status"] == "ok" and row["objectives"] == {"accuracy": 0.5, "energy": 1.0}
    assert row["metrics"]["hw_front"] == {"error": "RuntimeError: no table for this template"}
    assert "members" not in row


class Fine(Broken):
    def evaluate_front(self, candidate, seed):
        return {"members": [], "hw_front": {"configurations": 1}, "hw_front_seconds": 0.0}


@pytest.mark.parametrize("spare, starts", [(0.2, False), (0.5, True), (1.5, True)])
def test_auto_starts_the_worker_only_with_a_spare_cpu(space, monkeypatch, spare, starts):
    monkeypatch.setattr(_executors, "spare_cpus", lambda: spare)
    monkeypatch.setattr(_executors, "FRONT_WORKER_AFTER", 0.0)
    started = []
    monkeypatch.setattr(InProcessExecutor, "_start_side", lambda self: started.append(True))
    executor = InProcessExecutor()
    executor.start(Fine(), OBJ)
    executor.submit(Job(0, space.sample(np.random.default_rng(0)), 1))
    (row,) = executor.wait()
    assert started == ([True] if starts else [])
    # No worker came up (its start is stubbed): the front was made here, with the row.
    assert row["metrics"]["hw_front"] == {"configurations": 1} and executor.fronts_here == 1


def test_the_front_worker_setting_is_checked():
    with pytest.raises(ValueError, match="front_worker must be one of auto, on, off"):
        InProcessExecutor(front_worker="yes")
