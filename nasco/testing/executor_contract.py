"""The contract every :class:`nasco.run.Executor` must keep, as reusable checks.

Used like :mod:`nasco.testing.searcher_contract`: call a ``check_*`` function with an
executor factory, or subclass :class:`ExecutorContract` in a test module under a ``Test*``
name and provide an ``executor_factory`` fixture, e.g. parametrised over
``nasco.run.EXECUTORS``. A factory takes the settings every executor has
(``trial_timeout``, ``max_retries``) as keywords and returns a new executor.

The checks run a small search (regularized evolution on the built-in joint space, the
deterministic :class:`~nasco.testing.faults.FaultyEvaluator`) and hold the executor to:

* :func:`check_same_ledger`: the ledger of the in-process executor for the same search and
  the same window, fields of timing and placement aside (:data:`VOLATILE`), and each row
  being its candidate's evaluation with the run's seed for its ``seq``;
* :func:`check_worker_death_retried`: an evaluation whose worker process dies (SIGKILL of
  its own process) runs again; its row records ``attempts`` 2 and the death's reason in
  ``retries``, and the ledger is still the in-process one. Not applicable to an executor
  that evaluates in the driver's process (:attr:`~nasco.run.Executor.in_driver_process`),
  where such a death ends the run; :func:`check_in_driver_process` holds what such an
  executor promises instead;
* :func:`check_trial_timeout`: an evaluation that hangs past ``trial_timeout`` becomes a
  failed row whose reason starts with ``timeout``, and the run goes on to its budget with
  the same other rows as the in-process executor given the same timeout.
"""
from __future__ import annotations

import os
import pickle
import socket
import threading
from pathlib import Path
from typing import Any, Callable

from nasco.core import Result
from nasco.run._base import Executor
from nasco.run._driver import RunOutcome, eval_seed, run_search
from nasco.run._executors import InProcessExecutor
from nasco.run._ledger import FILENAME, Ledger
from nasco.search import RegularizedEvolution
from nasco.space import Candidate
from nasco.testing.faults import FaultyEvaluator
from nasco.testing.searcher_contract import default_space

__all__ = ["CONTRACT_OBJECTIVES", "CONTRACT_SEED", "DEATH_NOT_APPLICABLE", "ExecutorContract", "HANG_SECONDS",
           "VOLATILE",
           "check_executor", "check_in_driver_process", "check_same_ledger", "check_trial_timeout",
           "check_worker_death_retried", "contract_run", "ledger_rows"]

ExecutorFactory = Callable[..., Executor]

CONTRACT_OBJECTIVES = ("accuracy", "energy")
CONTRACT_SEED = 3
# Row fields that say when, where and in how many attempts an evaluation ran: they may
# differ between executors; every other field must not.
VOLATILE = ("seconds", "started_at", "finished_at", "worker", "attempts", "retries")
# The population of the contract's evolution: its first proposals are random draws, made
# whatever the results, so a fault planted on one of them is sure to be met.
POPULATION = 4
# How long a hung evaluation sleeps: far past the contract's trial timeout, and short
# enough that an executor that ignores the timeout fails the check (an ok row) rather
# than holding the test for an hour.
HANG_SECONDS = 60.0
DEATH_NOT_APPLICABLE = ("not applicable: this executor evaluates in the driver's own process, so a death "
                        "during an evaluation ends the run (the ledger keeps every finished row and "
                        "resume evaluates the lost one again); check_in_driver_process holds it instead")


def ledger_rows(out_dir: Path) -> list[dict[str, Any]]:
    """The rows of the run in ``out_dir``, by seq."""
    return sorted(Ledger(Path(out_dir) / FILENAME).rows(), key=lambda r: r["seq"])


def _strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in rows]


def contract_run(executor: Executor, out_dir: Path, *, budget: int, window: int,
                 faults: dict[str, str] | None = None, evaluator: Any = None) -> RunOutcome:
    """The contract's search (evolution, population :data:`POPULATION`, seed
    :data:`CONTRACT_SEED`) with ``executor``; ``faults`` as :class:`FaultyEvaluator` takes
    them, a hang lasting :data:`HANG_SECONDS`. Every evaluation started appends ``id pid`` to
    a log beside ``out_dir`` (see :func:`_started`)."""
    space = default_space()
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    if evaluator is None:
        evaluator = FaultyEvaluator(space, CONTRACT_OBJECTIVES, faults=faults, marker_dir=out_dir.parent,
                                    log_dir=_log_dir(out_dir), hang_seconds=HANG_SECONDS)
    searcher = RegularizedEvolution(space, CONTRACT_OBJECTIVES, seed=CONTRACT_SEED,
                                    population_size=POPULATION, sample_size=2)
    return run_search(space=space, evaluator=evaluator, searcher=searcher, budget=budget, out_dir=out_dir,
                      seed=CONTRACT_SEED, progress=False, executor=executor, window=window)


def _log_dir(out_dir: Path) -> Path:
    d = out_dir.parent / f"log-{out_dir.name}"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _started(out_dir: Path) -> list[str]:
    """The ids whose evaluation started in the run in ``out_dir``, once per start."""
    path = _log_dir(out_dir) / "evaluations.log"
    return [line.split()[0] for line in path.read_text().splitlines()] if path.exists() else []


def _reference(out_dir: Path, *, budget: int, window: int, trial_timeout: float | None = None,
               faults: dict[str, str] | None = None) -> list[dict[str, Any]]:
    contract_run(InProcessExecutor(trial_timeout=trial_timeout), out_dir, budget=budget, window=window,
                 faults=faults)
    return ledger_rows(out_dir)


def _check_rows_are_evaluations(rows: list[dict[str, Any]], budget: int) -> None:
    """seq 0..budget-1, distinct candidates, each row its candidate's toy result with the
    run's seed for its seq (independent of any executor)."""
    space = default_space()
    assert [r["seq"] for r in rows] == list(range(budget)), [r["seq"] for r in rows]
    assert len({r["id"] for r in rows}) == budget, "a candidate was evaluated twice"
    ev = FaultyEvaluator(space, CONTRACT_OBJECTIVES)
    for r in rows:
        cand = Candidate.make(r["arch"], r["hw"])
        assert cand.id == r["id"], f"seq {r['seq']}: id {r['id']} is not its candidate's ({cand.id})"
        assert r["seed"] == eval_seed(CONTRACT_SEED, r["seq"]), f"seq {r['seq']}: seed {r['seed']}"
        want = ev.evaluate(cand, r["seed"])
        got = Result.from_dict(r)
        assert (got.status, got.reason, got.objectives, got.violations) == \
            (want.status, want.reason, want.objectives, want.violations), f"seq {r['seq']}: {got} != {want}"


def check_same_ledger(factory: ExecutorFactory, tmp: Path, *, budget: int = 6, window: int = 2) -> None:
    """The executor writes the in-process executor's ledger (:data:`VOLATILE` fields aside)
    for the same search with the same window; every row took one attempt."""
    tmp = Path(tmp)
    ref = _reference(tmp / "ref", budget=budget, window=window)
    out = contract_run(factory(), tmp / "run", budget=budget, window=window)
    rows = ledger_rows(tmp / "run")
    assert out.evaluated == budget and out.stopped == "budget", (out.evaluated, out.stopped)
    _check_rows_are_evaluations(rows, budget)
    assert _strip(rows) == _strip(ref), "the ledger differs from the in-process executor's"
    assert all(r["attempts"] == 1 and r["retries"] == [] for r in rows), \
        [(r["seq"], r["attempts"], r["retries"]) for r in rows]


def check_worker_death_retried(factory: ExecutorFactory, tmp: Path, *, budget: int = 5, window: int = 2,
                               victim_seq: int = 1) -> None:
    """The worker evaluating proposal ``victim_seq`` kills itself (SIGKILL) on the first
    attempt: the evaluation runs again, its row has ``attempts`` 2 and one retry whose reason
    starts with 'worker died', and the ledger is the in-process one. Another evaluation
    lost with the same worker (a process pool breaks as a whole) may be retried too, each
    retry a death."""
    tmp = Path(tmp)
    executor = factory(max_retries=2)
    if executor.in_driver_process:
        raise ValueError(f"the {executor.name} executor evaluates in the driver's process: "
                         f"{DEATH_NOT_APPLICABLE}")
    if not 0 <= victim_seq < POPULATION:
        raise ValueError(f"victim_seq must be one of the first {POPULATION} proposals "
                         f"(made whatever the results)")
    ref = _reference(tmp / "ref", budget=budget, window=window)
    victim = ref[victim_seq]["id"]
    out = contract_run(executor, tmp / "run", budget=budget, window=window, faults={victim: "crash_once"})
    rows = ledger_rows(tmp / "run")
    assert out.evaluated == budget and out.stopped == "budget", (out.evaluated, out.stopped)
    _check_rows_are_evaluations(rows, budget)
    assert _strip(rows) == _strip(ref), "the ledger differs from the in-process executor's"
    hit = rows[victim_seq]
    assert hit["id"] == victim
    assert hit["attempts"] == 2, hit
    assert len(hit["retries"]) == 1 and hit["retries"][0].startswith("worker died"), hit["retries"]
    for r in rows:
        assert r["attempts"] == len(r["retries"]) + 1, r
        assert all(why.startswith("worker died") for why in r["retries"]), r["retries"]
    started = _started(tmp / "run")
    assert started.count(victim) == 2, f"{victim} started {started.count(victim)} times, not 2"
    for r in rows:
        assert 1 <= started.count(r["id"]) <= r["attempts"], (r["id"], started.count(r["id"]), r["attempts"])


class _Unpicklable(FaultyEvaluator):
    """A FaultyEvaluator holding a lock: no process but its own can have it."""

    def __init__(self) -> None:
        super().__init__(default_space(), CONTRACT_OBJECTIVES)
        self.lock = threading.Lock()


def check_in_driver_process(factory: ExecutorFactory, tmp: Path, *, budget: int = 4) -> None:
    """What an executor that evaluates in the driver's process promises instead of retries:
    every evaluation runs in this very process (its row's worker is this host and pid, one
    attempt), so an evaluator that cannot be pickled is fine."""
    tmp = Path(tmp)
    executor = factory()
    if not executor.in_driver_process:
        raise ValueError(f"the {executor.name} executor evaluates in worker processes; "
                         f"check_worker_death_retried applies to it")
    ev = _Unpicklable()
    try:
        pickle.dumps(ev)
    except TypeError:
        pass
    else:  # pragma: no cover - the check would prove nothing
        raise AssertionError("the unpicklable evaluator pickled")
    out = contract_run(executor, tmp / "run", budget=budget, window=1, evaluator=ev)
    rows = ledger_rows(tmp / "run")
    assert out.evaluated == budget, out.evaluated
    _check_rows_are_evaluations(rows, budget)
    here = f"{socket.gethostname()}:{os.getpid()}"
    assert [r["worker"] for r in rows] == [here] * budget, [r["worker"] for r in rows]
    assert all(r["attempts"] == 1 and r["retries"] == [] for r in rows)


def check_trial_timeout(factory: ExecutorFactory, tmp: Path, *, budget: int = 5, window: int = 2,
                        hung_seq: int = 1, trial_timeout: float = 3.0) -> None:
    """Proposal ``hung_seq`` hangs (:data:`HANG_SECONDS`): with ``trial_timeout`` its row is a
    failed one whose reason starts with 'timeout', after one attempt, and the run goes on to
    its budget with every other row as the in-process executor's with the same timeout."""
    tmp = Path(tmp)
    if not 0 <= hung_seq < POPULATION:
        raise ValueError(f"hung_seq must be one of the first {POPULATION} proposals "
                         f"(made whatever the results)")
    plain = _reference(tmp / "ids", budget=hung_seq + 1, window=window)
    hung = plain[hung_seq]["id"]
    faults = {hung: "hang"}
    ref = _reference(tmp / "ref", budget=budget, window=window, trial_timeout=trial_timeout, faults=faults)
    out = contract_run(factory(trial_timeout=trial_timeout), tmp / "run", budget=budget, window=window,
                       faults=faults)
    rows = ledger_rows(tmp / "run")
    assert out.evaluated == budget and out.stopped == "budget", (out.evaluated, out.stopped)
    row = rows[hung_seq]
    assert row["id"] == hung
    assert row["status"] == "failed" and str(row["reason"]).startswith("timeout"), \
        (row["status"], row["reason"])
    assert row["attempts"] == 1 and row["retries"] == [], (row["attempts"], row["retries"])
    assert _started(tmp / "run").count(hung) == 1
    assert ref[hung_seq]["status"] == "failed" and ref[hung_seq]["reason"].startswith("timeout")
    others, ref_others = _strip(rows), _strip(ref)
    del others[hung_seq], ref_others[hung_seq]
    assert others == ref_others, "the rows other than the hung one differ from the in-process executor's"


def check_executor(factory: ExecutorFactory, tmp: Path) -> None:
    """Every check that applies to the executor ``factory`` makes."""
    tmp = Path(tmp)
    check_same_ledger(factory, tmp / "same")
    if factory().in_driver_process:
        check_in_driver_process(factory, tmp / "death")
    else:
        check_worker_death_retried(factory, tmp / "death")
    check_trial_timeout(factory, tmp / "timeout")


class ExecutorContract:
    """pytest mix-in: each check as a test. The test module supplies ``executor_factory``
    (a fixture: ``factory(**settings) -> Executor``); ``tmp_path`` is pytest's."""

    def test_same_ledger_as_in_process(self, executor_factory: ExecutorFactory, tmp_path: Path) -> None:
        check_same_ledger(executor_factory, tmp_path)

    def test_worker_death_or_in_process(self, executor_factory: ExecutorFactory, tmp_path: Path) -> None:
        """A worker's death is retried; an executor that evaluates in the driver's own process
        (where a death ends the driver) keeps that promise instead."""
        if executor_factory().in_driver_process:
            check_in_driver_process(executor_factory, tmp_path)
        else:
            check_worker_death_retried(executor_factory, tmp_path)

    def test_trial_timeout_fails_the_row(self, executor_factory: ExecutorFactory, tmp_path: Path) -> None:
        check_trial_timeout(executor_factory, tmp_path)
