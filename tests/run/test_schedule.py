"""The driver's schedule with evaluations in flight: out-of-order completion, windows, and
resume from a ledger with gaps (no Ray here: a fake executor finishes jobs in a random order)."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from nasco.run import Executor, Ledger, run_search
from nasco.run._executors import InProcessExecutor
from nasco.run._job import Job, evaluate_job
from nasco.search import SEARCHERS, make_searcher
from nasco.testing import default_space
from nasco.testing.faults import FaultyEvaluator

OBJ = ("accuracy", "energy")
VOLATILE = ("seconds", "started_at", "finished_at", "worker")


class ShuffleExecutor(Executor):
    """Holds every submitted job and finishes a random one (or two) per wait: evaluations
    that complete in any order, as on a cluster."""

    name = "shuffle"

    def __init__(self, slots: int, seed: int) -> None:
        super().__init__()
        self.slots = slots
        self.rng = np.random.default_rng(seed)
        self.jobs: list[Job] = []
        self.max_out = 0

    def start(self, evaluator, objectives) -> None:
        self.evaluator, self.objectives = evaluator, objectives

    def submit(self, job: Job) -> None:
        self.jobs.append(job)
        self.max_out = max(self.max_out, len(self.jobs))

    def wait(self) -> list[dict]:
        k = min(len(self.jobs), int(self.rng.integers(1, 3)))
        picks = sorted(self.rng.choice(len(self.jobs), size=k, replace=False), reverse=True)
        return [evaluate_job(self.evaluator, self.objectives, self.jobs.pop(i)) for i in picks]

    def describe(self) -> dict:
        return {"executor": self.name}


@pytest.fixture(scope="module")
def space():
    return default_space()


def _rows(out: Path) -> list[dict]:
    rows = sorted(Ledger(out / "ledger.jsonl").rows(), key=lambda r: r["seq"])
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in rows]


def _run(space, out: Path, executor=None, *, searcher="evolution", budget=14, window=None, resume=False,
         faults=None):
    kw = {"population_size": 4, "sample_size": 2} if searcher == "evolution" else {}
    if searcher in ("nsga2", "nsga3", "optuna-nsga2"):
        kw = {"population_size": 4}
    if searcher == "predictor-guided":  # past its initial batch by the fifth proposal, small pools
        kw = {"n_initial": 4, "pool_size": 12}
    s = make_searcher(searcher, space, OBJ, 7, **kw)
    ev = FaultyEvaluator(space, OBJ, faults=faults)
    return run_search(space=space, evaluator=ev, searcher=s, budget=budget, out_dir=out, seed=7,
                      progress=False, executor=executor, window=window, resume=resume)


def test_default_windows():
    from nasco.run._driver import default_window
    from nasco.run._ray import RayExecutor

    assert default_window(InProcessExecutor()) == 1
    assert default_window(ShuffleExecutor(2, 0)) == 4  # a job running on each worker, one waiting
    assert default_window(RayExecutor(workers=2, batch=8)) == 18


# Evolution, and predictor-guided search past its initial batch (a predictor refit on what
# it was told, so its proposals depend on the order and timing of the tells).
SCHEDULED = ["evolution", "predictor-guided"]


@pytest.mark.parametrize("searcher", SCHEDULED)
def test_window_one_is_the_plain_loop_and_windows_change_proposals(space, tmp_path, searcher):
    one = _run(space, tmp_path / "w1", searcher=searcher)
    assert json.loads((tmp_path / "w1" / "run.json").read_text())["window"] == 1
    assert [r["seq"] for r in _rows(tmp_path / "w1")] == list(range(14)) and one.evaluated == 14
    _run(space, tmp_path / "w3", searcher=searcher, window=3)
    # With three proposals out, the searcher proposes before seeing the last two results.
    assert _rows(tmp_path / "w3") != _rows(tmp_path / "w1")


@pytest.mark.parametrize("searcher", sorted(SEARCHERS))
def test_out_of_order_completion_gives_the_in_order_ledger(space, tmp_path, searcher):
    """Every searcher: with 3 proposals out, evaluations finishing in a random order give
    exactly the ledger of the same window run in order."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pymoo/optuna chatter on toy spaces
        _run(space, tmp_path / "inorder", InProcessExecutor(), searcher=searcher, window=3)
        shuffled = ShuffleExecutor(3, seed=1)
        _run(space, tmp_path / "shuffled", shuffled, searcher=searcher, window=3)
    assert shuffled.max_out == 3
    assert _rows(tmp_path / "shuffled") == _rows(tmp_path / "inorder")
    # The file holds rows in completion order, which differs from seq order here.
    seqs = [r["seq"] for r in Ledger(tmp_path / "shuffled" / "ledger.jsonl").rows()]
    assert sorted(seqs) == list(range(14))


@pytest.mark.parametrize("searcher", SCHEDULED)
def test_resume_after_lost_evaluations_fills_the_gaps(space, tmp_path, searcher):
    """A driver that died with evaluations in flight leaves a ledger with gaps (seq 5 and 8
    lost, 6, 7, 9 finished): the resume evaluates exactly the lost ones, and the ledger
    ends equal to an uninterrupted run's."""
    full = tmp_path / "full"
    _run(space, full, ShuffleExecutor(3, seed=2), searcher=searcher)
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "run.json").write_text((full / "run.json").read_text())
    keep = [r for r in Ledger(full / "ledger.jsonl").rows() if r["seq"] not in (5, 8) and r["seq"] < 10]
    led = Ledger(cut / "ledger.jsonl")
    for r in keep:
        led.append(r)
    out = _run(space, cut, ShuffleExecutor(3, seed=3), searcher=searcher, resume=True)
    assert out.evaluated == 14 - len(keep) == 6
    assert out.replayed == len(keep)
    assert _rows(cut) == _rows(full)
    # The window (3 slots: 3 running + 3 waiting) came from run.json, where it is recorded.
    assert json.loads((cut / "run.json").read_text())["window"] == 6


@pytest.mark.parametrize("searcher", SCHEDULED)
def test_resume_keeps_the_recorded_window(space, tmp_path, searcher):
    out = tmp_path / "r"
    _run(space, out, ShuffleExecutor(2, seed=0), searcher=searcher, budget=6)
    with pytest.warns(RuntimeWarning, match="recorded window 4"):
        _run(space, out, InProcessExecutor(), searcher=searcher, budget=10, window=3, resume=True)
    _run(space, tmp_path / "ref", ShuffleExecutor(2, seed=5), searcher=searcher, budget=10)
    assert _rows(out) == _rows(tmp_path / "ref")


def test_repeats_wait_for_the_running_evaluation(space, tmp_path):
    """A proposal identical to one still being evaluated is not evaluated twice."""
    from nasco.search._base import Searcher

    class Stutter(Searcher):
        """Proposes each candidate twice in a row."""
        name = "stutter"

        def __init__(self, space, objectives, seed=0):
            super().__init__(space, objectives, seed=seed)
            self._last = None

        def _ask(self, n):
            if self._last is None:
                self._last = self.space.sample(self.rng)
                return [self._last]
            c, self._last = self._last, None
            return [c]

        def _tell(self, candidate, result):
            pass

    s = Stutter(space, OBJ, seed=1)
    ev = FaultyEvaluator(space, OBJ, log_dir=tmp_path)
    run_search(space=space, evaluator=ev, searcher=s, budget=6, out_dir=tmp_path / "s", seed=1,
               progress=False, executor=ShuffleExecutor(4, seed=0))
    evaluated = (tmp_path / "evaluations.log").read_text().split()[::2]
    assert len(evaluated) == 6 == len(set(evaluated))
    # Six candidates, each proposed twice, all told; asking stops once the sixth is out, so
    # its repeat is never asked.
    assert s.n_told == 11


def test_inprocess_trial_timeout_and_memory_error(space, tmp_path):
    base = _run(space, tmp_path / "base", budget=6)
    ids = [r["id"] for r in _rows(tmp_path / "base")]
    _run(space, tmp_path / "t", InProcessExecutor(trial_timeout=0.5), budget=6,
         faults={ids[1]: "hang", ids[2]: "memory_error", ids[3]: "raise"})
    rows = {r["id"]: r for r in _rows(tmp_path / "t")}
    assert rows[ids[1]]["status"] == "failed" and rows[ids[1]]["reason"].startswith("timeout: ")
    assert rows[ids[2]]["reason"].startswith("out of memory: MemoryError")
    assert rows[ids[3]]["reason"] == f"RuntimeError: injected failure on {ids[3]}"
    assert len(rows) == 6 and base.evaluated == 6
