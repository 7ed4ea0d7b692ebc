"""A job (one evaluation the driver hands an executor), its evaluation into a ledger row, and the
retry policy every executor applies when the worker running a job dies.

Every executor runs :func:`evaluate_job` where the evaluation happens, so a row means the
same wherever it was made: an exception, a ``MemoryError`` or a timeout inside the
evaluation becomes a failed row with its reason; only the death of the worker process
itself escapes, and the executor then follows its :class:`RetryPolicy`: the job is run
again, at most ``max_retries`` times, each death's reason recorded in the row's
``retries``; a job whose worker died on every attempt becomes a failed row
(:meth:`RetryPolicy.failed_row`).

Timeouts (``trial_timeout``): the evaluation runs under a ``SIGALRM`` interval timer in the
thread that runs it (the main thread in every executor here), whose handler raises
:class:`TrialTimeout` (a ``BaseException``, so evaluator code that catches ``Exception``
cannot swallow it). Python code, torch's training loops included, is interrupted at the
next bytecode; a single native call that never returns is not (Ray's executor then cancels
the task, see there).
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from nasco.core import FRONT_METRICS, Evaluator, Result, evaluator_hook
from nasco.run._rundir import utc_now
from nasco.space import Candidate

__all__ = ["DEFAULT_RETRIES", "Job", "RetryPolicy", "TrialTimeout", "evaluate_job", "failed_row",
           "with_front"]

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
    # Where the budget counts trainings: the training keys this evaluation is the first of
    # the run to use (it pays for them); None where the budget counts evaluations.
    trains: tuple[str, ...] | None = None

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
                 timeout: float | None = None, threads: int | None = None, *, head: bool = False
                 ) -> dict[str, Any]:
    """Evaluate ``job`` here and return its ledger row (with ``head``, the row of the
    evaluator's ``evaluate_head``: all but the hardware front, see :func:`with_front`).

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
            how = evaluator_hook(evaluator, "evaluate_head") if head else evaluator.evaluate
            res = Result.failed(job.failed) if job.failed else how(cand, job.seed)
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
    if job.trains is not None and "training" in metrics:
        metrics["trained"] = _paid(metrics["training"], job.trains)
    row = {
        "seq": job.seq, "id": cand.id, "arch": cand.arch, "hw": cand.hw, "seed": job.seed,
        "status": res.status, "reason": res.reason,
        "objectives": {k: float(v) for k, v in res.objectives.items()},
        "violations": {k: float(v) for k, v in res.violations.items()},
        "metrics": metrics, "seconds": seconds, "started_at": started, "finished_at": utc_now(),
        "attempts": job.attempts, "retries": list(job.retries), "worker": _worker_name(),
    }
    if res.members and res.status != "failed":
        row["members"] = [dict(m) for m in res.members]
    return row


def with_front(head: dict[str, Any], front: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The ledger row made of a job's head row (:func:`evaluate_job` with ``head``) and the
    evaluator's ``evaluate_front`` of the same job, which took ``seconds``: the metrics of
    :data:`~nasco.core.FRONT_METRICS` filled in their places, the members added as
    :func:`evaluate_job` adds them, the seconds summed; so the row is the one
    :func:`evaluate_job` without ``head`` makes, timings aside."""
    row = dict(head)
    metrics = dict(row["metrics"])
    for key in FRONT_METRICS:
        if key in front:
            metrics[key] = front[key]
    row["metrics"] = metrics
    row["seconds"] = float(row["seconds"]) + float(seconds)
    row["finished_at"] = utc_now()
    if front.get("members") and row["status"] != "failed":
        row["members"] = [dict(m) for m in front["members"]]
    return row


def _paid(training: Any, trains: tuple[str, ...]) -> bool | list[bool]:
    """A row's ``trained`` metric as the run accounts for it: whether the row is the first of
    the run to use its training (a list, one per task, for a list of keys; a key twice in
    one row is paid by its first task). Not whether this attempt ran the training: one that
    a killed session finished is read back from the store, and the row still says True, as
    in an uninterrupted run."""
    if not isinstance(training, list):
        return training in trains
    out, seen = [], set()
    for key in training:
        out.append(key in trains and key not in seen)
        seen.add(key)
    return out


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


@dataclass(frozen=True)
class RetryPolicy:
    """What an executor does when the worker running a job dies (killed, out of memory, its
    node lost): run the job again, at most ``max_retries`` times.

    Each death is recorded where the ledger keeps it: its reason joins the job's
    ``retries`` (so the row's ``attempts`` is ``len(retries) + 1``), and a warning is
    logged. A job that has had all ``max_retries + 1`` attempts becomes
    :meth:`failed_row`. The executor decides only how to run the next attempt (a new
    pool, a task of its own, Tune's trial restart).
    """

    max_retries: int = DEFAULT_RETRIES

    def __post_init__(self) -> None:
        n = self.max_retries
        if isinstance(n, bool) or int(n) != n or n < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {self.max_retries!r}")
        object.__setattr__(self, "max_retries", int(self.max_retries))

    @property
    def attempts(self) -> int:
        """Attempts a job gets at most."""
        return self.max_retries + 1

    def record(self, job: Job, reason: str) -> bool:
        """Record that an attempt of ``job`` died, for ``reason``; True when another attempt is
        due, False when the job has had all of its attempts (then take :meth:`failed_row`)."""
        job.retries.append(reason)
        if len(job.retries) > self.max_retries:
            log.warning("evaluation %d (%s): %s; recorded as failed after %d attempts", job.seq, job.cand.id,
                        reason, len(job.retries))
            return False
        log.warning("evaluation %d (%s): %s; attempt %d of %d", job.seq, job.cand.id, reason, job.attempts,
                    self.attempts)
        return True

    def failed_row(self, job: Job, *, died: bool = True) -> dict[str, Any]:
        """The failed row of a job whose every attempt ended (``died``: its worker died; else the
        attempts failed otherwise): the last attempt's reason, how many attempts there were, and
        every attempt's reason in ``retries``."""
        if not job.retries:
            raise ValueError(f"evaluation {job.seq}: no attempt recorded (call record() first)")
        n = len(job.retries)
        how = "worker died" if died else "failed"
        return failed_row(job, f"{job.retries[-1]} ({how} on all {n} attempts)", n)
