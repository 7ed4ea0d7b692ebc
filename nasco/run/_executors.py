"""Executors: where the driver's evaluations run.

The driver gives an executor :class:`Job` s (a candidate with its ledger ``seq`` and its
evaluation seed) and takes ledger rows back, in whatever order they finish. The driver
alone decides what is evaluated and when, and alone writes the ledger.

* :class:`InProcessExecutor`: the driver's own process, one evaluation at a time (the
  default: no start-up cost, what a laptop run and most tests use).
* :class:`PoolExecutor`: a local pool of worker processes (``concurrent.futures`` with the
  ``spawn`` start method, so no forked torch state), no service to run.
* :class:`~nasco.run._ray.RayExecutor`: Ray tasks, on a local Ray instance bound to
  loopback or on an existing cluster (``nasco.run._ray``).

Every executor runs :func:`evaluate_job` where the evaluation happens, so a row means the
same wherever it was made: an exception, a ``MemoryError`` or a timeout inside the
evaluation becomes a failed row with its reason; only the death of the worker process
itself escapes, and the executor then submits the job again, at most ``max_retries``
times, recording each death's reason in the row's ``retries``.

Timeouts (``trial_timeout``): the evaluation runs under a ``SIGALRM`` interval timer in the
thread that runs it (the main thread in every executor here), whose handler raises
:class:`TrialTimeout` (a ``BaseException``, so evaluator code that catches ``Exception``
cannot swallow it). Python code, torch's training loops included, is interrupted at the
next bytecode; a single native call that never returns is not (Ray's executor then cancels
the task, see there).
"""
from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import pickle
import signal
import socket
import sys
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol

from nasco.core import Evaluator, Result
from nasco.run._rundir import utc_now
from nasco.space import Candidate

__all__ = ["DEFAULT_RETRIES", "EXECUTORS", "Executor", "InProcessExecutor", "Job", "PoolExecutor",
           "TrialTimeout", "evaluate_job", "make_executor"]

log = logging.getLogger("nasco.run")

# Resubmissions of a job whose worker died before the job is recorded as failed. Two keep
# one unlucky kill (a preempted node, an OOM kill caused by a neighbour) from costing a
# candidate, while a candidate that crashes its worker every time costs three attempts.
DEFAULT_RETRIES = 2


class TrialTimeout(BaseException):
    """Raised inside an evaluation that ran past the trial timeout."""


@dataclass
class Job:
    """One evaluation to run: ledger ``seq``, candidate, seed, and what the driver knows."""

    seq: int
    cand: Candidate
    seed: int
    failed: str | None = None          # record a failed row with this reason, do not evaluate
    info: dict[str, Any] | None = None  # the searcher's record of how it proposed the candidate
    retries: list[str] = field(default_factory=list)  # reasons of earlier attempts' deaths

    @property
    def attempts(self) -> int:
        return len(self.retries) + 1


@contextmanager
def _deadline(seconds: float | None) -> Iterator[None]:
    """Raise TrialTimeout in this thread after ``seconds`` (no-op without a limit, or off
    the main thread, where Python cannot take signals)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise TrialTimeout(f"timeout: the evaluation ran past the trial timeout of {seconds:g} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def evaluate_job(evaluator: Evaluator, objectives: tuple[str, ...], job: Job,
                 timeout: float | None = None, threads: int | None = None) -> dict[str, Any]:
    """Evaluate ``job`` here and return its ledger row.

    Any exception but KeyboardInterrupt/SystemExit, a ``MemoryError`` and a
    :class:`TrialTimeout` become a failed row, so one bad candidate cannot end the search.
    ``threads`` sets torch's CPU threads first when torch is loaded (a worker process
    starts with torch's default of one thread per core, 50x slower on a busy machine).
    """
    if threads and "torch" in sys.modules:
        torch = sys.modules["torch"]
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    started = utc_now()
    t0 = time.perf_counter()
    cand = job.cand
    try:
        with _deadline(timeout):
            res = Result.failed(job.failed) if job.failed else evaluator.evaluate(cand, job.seed)
        if not isinstance(res, Result):
            res = Result.failed(f"TypeError: evaluator returned {type(res).__name__}, not a Result")
        elif res.status == "ok":
            missing = [o for o in objectives if o not in res.objectives]
            if missing:
                res = Result.failed(f"ValueError: ok result lacks objectives {missing}",
                                    **{**res.metrics, "objectives_given": dict(res.objectives)})
    except TrialTimeout as exc:
        res = Result.failed(str(exc))
    except MemoryError as exc:
        res = Result.failed(f"out of memory: MemoryError: {exc}")
    except Exception as exc:  # noqa: BLE001 - recorded as a failed row, see docstring
        res = Result.failed(f"{type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - t0
    metrics = dict(res.metrics)
    if res.seconds and "evaluator_seconds" not in metrics:
        # The row's seconds are the wall clock of the evaluation; keep the evaluator's own
        # figure (e.g. a lookup table's training time) instead of dropping it.
        metrics["evaluator_seconds"] = res.seconds
    if job.info:
        metrics["search"] = job.info  # what the searcher did to propose it
    return {
        "seq": job.seq, "id": cand.id, "arch": cand.arch, "hw": cand.hw, "seed": job.seed,
        "status": res.status, "reason": res.reason,
        "objectives": {k: float(v) for k, v in res.objectives.items()},
        "violations": {k: float(v) for k, v in res.violations.items()},
        "metrics": metrics, "seconds": seconds, "started_at": started, "finished_at": utc_now(),
        "attempts": job.attempts, "retries": list(job.retries), "worker": _worker_name(),
    }


def failed_row(job: Job, reason: str, attempts: int) -> dict[str, Any]:
    """A failed row made by the executor, not by the evaluation: a job whose worker died
    on every attempt (its ``retries`` then hold every death), or one cancelled."""
    now, cand = utc_now(), job.cand
    return {
        "seq": job.seq, "id": cand.id, "arch": cand.arch, "hw": cand.hw, "seed": job.seed,
        "status": "failed", "reason": reason, "objectives": {}, "violations": {},
        "metrics": {"search": job.info} if job.info else {}, "seconds": 0.0, "started_at": now,
        "finished_at": now, "attempts": attempts, "retries": list(job.retries), "worker": None,
    }


class Executor(Protocol):
    """Runs jobs somewhere and hands their ledger rows back as they finish.

    An executor with a control loop of its own (Ray Tune asks for work rather than being
    given it) has ``drive(schedule, record, say)`` instead of submit/wait: it takes jobs
    from ``schedule.advance()``, passes each finished row to ``record`` (which writes the
    ledger and returns the stored row) and calls ``say()`` to print the schedule's news.
    """

    name: str
    slots: int      # evaluations that can run at once (the driver's default window)

    def start(self, evaluator: Evaluator, objectives: tuple[str, ...]) -> None: ...

    def submit(self, job: Job) -> None: ...

    def wait(self) -> list[dict[str, Any]]:
        """Block until at least one submitted job has finished; return the finished rows."""
        ...

    def close(self) -> None: ...

    def describe(self) -> dict[str, Any]: ...


class InProcessExecutor:
    """Evaluations in the driver's process, one at a time, in the order submitted."""

    name = "inprocess"
    slots = 1

    def __init__(self, *, trial_timeout: float | None = None) -> None:
        self.trial_timeout = trial_timeout
        self._queue: deque[Job] = deque()

    def start(self, evaluator: Evaluator, objectives: tuple[str, ...]) -> None:
        self._evaluator, self._objectives = evaluator, objectives

    def submit(self, job: Job) -> None:
        self._queue.append(job)

    def wait(self) -> list[dict[str, Any]]:
        if not self._queue:
            raise RuntimeError("wait() with nothing submitted")
        return [evaluate_job(self._evaluator, self._objectives, self._queue.popleft(), self.trial_timeout)]

    def close(self) -> None:
        self._queue.clear()

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "workers": 1, "trial_timeout": self.trial_timeout}


# ---------------------------------------------------------------------- process pool
_POOL_STATE: dict[str, Any] = {}


def _pool_init(payload: bytes, threads: int) -> None:
    # Each worker unpickles the evaluator once, not once per job.
    _POOL_STATE["evaluator"], _POOL_STATE["objectives"] = pickle.loads(payload)
    _POOL_STATE["threads"] = threads
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))


def _pool_run(job: Job, timeout: float | None) -> dict[str, Any]:
    return evaluate_job(_POOL_STATE["evaluator"], _POOL_STATE["objectives"], job, timeout,
                        _POOL_STATE["threads"])


class PoolExecutor:
    """A local pool of ``workers`` processes (``spawn`` start method).

    A worker that dies (killed, segfault, out of memory) breaks a ``concurrent.futures``
    pool as a whole, and the pool cannot say which job killed it: the pool is rebuilt and
    every job that was running is submitted again, each with the death recorded as one of
    its retries.
    """

    name = "pool"

    def __init__(self, workers: int | None = None, *, trial_timeout: float | None = None,
                 max_retries: int = DEFAULT_RETRIES, threads: int = 1) -> None:
        self.slots = int(workers or os.cpu_count() or 1)
        if self.slots < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.trial_timeout, self.max_retries, self.threads = trial_timeout, int(max_retries), int(threads)
        self._pool: cf.ProcessPoolExecutor | None = None
        self._running: dict[cf.Future, Job] = {}
        self._done: list[dict[str, Any]] = []

    def start(self, evaluator: Evaluator, objectives: tuple[str, ...]) -> None:
        try:
            self._payload = pickle.dumps((evaluator, tuple(objectives)))
        except Exception as exc:  # noqa: BLE001 - re-raised with what to do
            raise ValueError(f"the pool executor sends the evaluator to its workers, but "
                             f"{type(evaluator).__name__} cannot be pickled ({exc})") from None
        self._new_pool()

    def _new_pool(self) -> None:
        self._pool = cf.ProcessPoolExecutor(self.slots, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_pool_init, initargs=(self._payload, self.threads))

    def submit(self, job: Job) -> None:
        assert self._pool is not None, "start() first"
        self._running[self._pool.submit(_pool_run, job, self.trial_timeout)] = job

    def wait(self) -> list[dict[str, Any]]:
        while not self._done:
            if not self._running:
                raise RuntimeError("wait() with nothing submitted")
            done, _ = cf.wait(list(self._running), return_when=cf.FIRST_COMPLETED)
            broken: list[Job] = []
            for fut in done:
                job = self._running.pop(fut)
                try:
                    self._done.append(fut.result())
                except cf.process.BrokenProcessPool as exc:
                    broken.append(job)
                    reason = f"worker died: {exc}"
            if broken:
                # Every job still in the broken pool is lost with it.
                broken += list(self._running.values())
                self._running.clear()
                assert self._pool is not None
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._new_pool()
                for job in sorted(broken, key=lambda j: j.seq):
                    self._retry(job, reason)
        out, self._done = self._done, []
        return out

    def _retry(self, job: Job, reason: str) -> None:
        job.retries.append(reason)
        if len(job.retries) > self.max_retries:
            log.warning("evaluation %d (%s): %s; %d attempts, recorded as failed", job.seq, job.cand.id,
                        reason, job.attempts - 1)
            self._done.append(failed_row(job, f"{reason} (worker died on all {len(job.retries)} attempts)",
                                         len(job.retries)))
        else:
            log.warning("evaluation %d (%s): %s; attempt %d of %d", job.seq, job.cand.id, reason,
                        job.attempts, self.max_retries + 1)
            self.submit(job)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "workers": self.slots, "trial_timeout": self.trial_timeout,
                "max_retries": self.max_retries, "threads": self.threads}


EXECUTORS = ("inprocess", "pool", "ray", "tune")


def make_executor(name: str, **kw: Any) -> Executor:
    """An executor by name: ``inprocess``, ``pool`` (``workers``), ``ray`` or ``tune`` (see
    :class:`~nasco.run._ray.RayExecutor` and :class:`~nasco.run._tune.TuneExecutor` for
    their keywords)."""
    if name == "inprocess":
        return InProcessExecutor(trial_timeout=kw.get("trial_timeout"))
    if name == "pool":
        return PoolExecutor(kw.get("workers"), trial_timeout=kw.get("trial_timeout"),
                            max_retries=kw.get("max_retries", DEFAULT_RETRIES), threads=kw.get("threads", 1))
    if name == "ray":
        from nasco.run._ray import RayExecutor

        return RayExecutor(**kw)
    if name == "tune":
        from nasco.run._tune import TuneExecutor

        return TuneExecutor(**kw)
    raise ValueError(f"unknown executor '{name}'; known: {', '.join(EXECUTORS)}")
