"""The local executors: the driver's own process, and a pool of worker processes.

* :class:`InProcessExecutor`: the driver's own process, one evaluation at a time (the
  default: no start-up cost, what a laptop run and most tests use).
* :class:`PoolExecutor`: a local pool of worker processes (``concurrent.futures`` with the
  ``spawn`` start method, so no forked torch state), no service to run.

Ray tasks and Ray Tune trials are in :mod:`nasco.run._ray` and :mod:`nasco.run._tune`;
the executors by name in :mod:`nasco.run._registry`.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import pickle
import signal
import sys
from collections import deque
from typing import Any

from nasco.core import Evaluator, evaluator_hook
from nasco.run._base import Executor
from nasco.run._job import DEFAULT_RETRIES, Job, evaluate_job

__all__ = ["InProcessExecutor", "PoolExecutor"]


class InProcessExecutor(Executor):
    """Evaluations in the driver's process, one at a time, in the order submitted. Nothing
    here outlives a death of the process, so there is nothing to retry."""

    name = "inprocess"
    in_driver_process = True

    def __init__(self, *, trial_timeout: float | None = None) -> None:
        super().__init__(max_retries=0, trial_timeout=trial_timeout)
        self._queue: deque[Job] = deque()

    @classmethod
    def from_options(cls, **options: Any) -> InProcessExecutor:
        """Only ``trial_timeout`` applies: workers, retries and threads are other executors'."""
        return cls(trial_timeout=options.get("trial_timeout"))

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


def _die_with(parent: int) -> None:
    """Have the kernel SIGKILL this worker when the driver that started it dies (Linux's
    PR_SET_PDEATHSIG; elsewhere nothing), so a killed driver leaves no worker behind; a
    driver already gone ends the worker at once."""
    if sys.platform.startswith("linux"):
        import ctypes

        # No library wraps prctl; PR_SET_PDEATHSIG is option 1 (linux/prctl.h).
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def _pool_init(payload: bytes, threads: int, parent: int | None = None) -> None:
    if parent is not None:
        _die_with(parent)
    # Each worker unpickles the evaluator once, not once per job.
    _POOL_STATE["evaluator"], _POOL_STATE["objectives"] = pickle.loads(payload)
    _POOL_STATE["threads"] = threads
    _POOL_STATE["adopted"] = set()
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))


def _pool_run(job: Job, timeout: float | None, shared: dict[str, Any] | None = None) -> dict[str, Any]:
    new = {k: v for k, v in (shared or {}).items() if k not in _POOL_STATE["adopted"]}
    if new:
        evaluator_hook(_POOL_STATE["evaluator"], "adopt_shared_state")(new)
        _POOL_STATE["adopted"].update(new)
    return evaluate_job(_POOL_STATE["evaluator"], _POOL_STATE["objectives"], job, timeout,
                        _POOL_STATE["threads"])


class PoolExecutor(Executor):
    """A local pool of ``workers`` processes (``spawn`` start method).

    A worker that dies (killed, segfault, out of memory) breaks a ``concurrent.futures``
    pool as a whole, and the pool cannot say which job killed it: the pool is rebuilt and
    every job that was running is submitted again, each with the death recorded as one of
    its retries.

    State that the evaluator's evaluations share (its ``shared_state`` hook: a one-shot
    evaluator's supernet weights) is made in the driver before a job that uses it is sent, so
    no worker makes it. It travels with each job that uses it, and a worker takes only the keys
    it lacks: the pool's initializer runs before any candidate is known, and a
    ``concurrent.futures`` pool cannot send to one chosen worker.
    """

    name = "pool"

    def __init__(self, workers: int | None = None, *, trial_timeout: float | None = None,
                 max_retries: int = DEFAULT_RETRIES, threads: int = 1) -> None:
        super().__init__(max_retries=max_retries, trial_timeout=trial_timeout)
        self.slots = int(workers or os.cpu_count() or 1)
        if self.slots < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.threads = int(threads)
        self._pool: cf.ProcessPoolExecutor | None = None
        self._running: dict[cf.Future, Job] = {}
        self._done: list[dict[str, Any]] = []

    def start(self, evaluator: Evaluator, objectives: tuple[str, ...]) -> None:
        try:
            self._payload = pickle.dumps((evaluator, tuple(objectives)))
        except Exception as exc:  # noqa: BLE001 - re-raised with what to do
            raise ValueError(f"the pool executor sends the evaluator to its workers, but "
                             f"{type(evaluator).__name__} cannot be pickled ({exc})") from None
        self._shared_of = evaluator_hook(evaluator, "shared_state")
        self._new_pool()

    def _new_pool(self) -> None:
        self._pool = cf.ProcessPoolExecutor(self.slots, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_pool_init,
                                            initargs=(self._payload, self.threads, os.getpid()))

    def submit(self, job: Job) -> None:
        assert self._pool is not None, "start() first"
        shared = self._shared_of([job.cand]) if job.failed is None else {}
        self._running[self._pool.submit(_pool_run, job, self.trial_timeout, shared)] = job

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
        if self.retry.record(job, reason):
            self.submit(job)
        else:
            self._done.append(self.retry.failed_row(job))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "workers": self.slots, "trial_timeout": self.trial_timeout,
                "max_retries": self.max_retries, "threads": self.threads}
