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
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from nasco.core import Evaluator, evaluator_attr, evaluator_hook
from nasco.run._base import Executor
from nasco.run._job import DEFAULT_RETRIES, Job, TrialTimeout, _deadline, evaluate_job, with_front

__all__ = ["FRONT_WORKERS", "FRONT_WORKER_AFTER", "InProcessExecutor", "PoolExecutor", "SPARE_CPU",
           "spare_cpus", "usable_cpus"]

log = logging.getLogger("nasco.run")


# front_worker "auto" starts the front worker after an evaluation head (a training and the
# candidate's own configuration) that took at least this long: the worker's start (a process
# that imports torch and unpickles the evaluator, 3-5 s of CPU on the project's 2-core
# machine, beside the next training) then pays for itself within a few evaluations, while
# searches whose networks train in milliseconds (tiny data, tests) never start one.
FRONT_WORKER_AFTER = 1.0
# ... and when at least this much of a CPU is spare (spare_cpus: this process's CPUs less the
# load average, which counts this process): on a machine whose other CPUs are busy (a test
# suite's parallel workers, other runs on the node) a worker would only slow them and the driver.
SPARE_CPU = 0.5
FRONT_WORKERS = ("auto", "on", "off")


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def spare_cpus() -> float:
    """CPUs this process may use that nothing runs on: :func:`usable_cpus` less the 1-minute
    load average (which counts this process); ``usable_cpus() - 1`` where the OS keeps none."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = 1.0
    return usable_cpus() - load


# Fronts the worker holds at once (one it makes, one queued in it): it never idles between two,
# and the rest wait here, where the driver's process takes them when it has nothing else to do.
FRONTS_IN_WORKER = 2


@dataclass(eq=False)
class _InFlight:
    job: Job
    row: dict[str, Any]                # the full row, or the head while its front is due
    due: bool = False                  # its front is still to make (here or in the worker)
    front: cf.Future | None = None     # the worker's make_front of the job, once handed on
    handed: float = 0.0                # when it was handed on
    pool: Any = None                   # the worker's pool it was handed to


class InProcessExecutor(Executor):
    """Evaluations in the driver's process, one at a time, in the order submitted. Nothing
    here outlives a death of the process, so there is nothing to retry.

    Front worker: with an evaluator that ``defers_front`` (the train evaluator's hardware
    inner loop), each evaluation is made in two parts: its head (``evaluate_head``: the
    training and the candidate's own configuration) and its hardware front
    (``evaluate_front``: the quantized validation passes and the search over the accelerator
    space). Without the worker both are made here, one after the other. With it, the head is
    made here and told to the searcher at once (:meth:`take_heads`), and the front is made by
    one worker process while the driver goes on to the next network; fronts that pile up wait
    here (the worker holds :data:`FRONTS_IN_WORKER`), and the driver's process makes them itself
    when it has no head to make (the run's last fronts). The row, head and front together
    (:func:`~nasco.run._job.with_front`), goes to the ledger when the front is done; rows are
    given back in the order their jobs were submitted. A searcher is never told a front
    (:func:`nasco.run._driver._told`), so it proposes what it would without the worker, and the
    ledger is the one the evaluator's ``evaluate`` alone would make, timings aside.

    ``front_worker``: ``"on"``; ``"off"`` (each evaluation whole, by ``evaluate``); ``"auto"``
    (the default): the worker starts after a head that took :data:`FRONT_WORKER_AFTER` seconds
    or more (a network worth training apart from its front), when :data:`SPARE_CPU` of a CPU
    is spare (:func:`spare_cpus`; the worker takes one). The worker uses one torch thread and
    is SIGKILLed by the kernel if the driver dies; it gets the evaluator with its first front,
    not at its start, so starting it never waits for the new process to import nasco. An
    interrupted run loses the rows whose fronts were not done, and a resume makes them again
    (their trainings are kept). A front that raises, or whose worker dies, is recorded in the
    row (``hw_front`` = ``{"error": ...}``, no members; a new worker takes the next fronts): the
    candidate keeps its own result, as in the train evaluator's ``evaluate``. ``trial_timeout``
    bounds the head and the front each.
    """

    name = "inprocess"
    in_driver_process = True

    def __init__(self, *, trial_timeout: float | None = None, front_worker: str = "auto") -> None:
        super().__init__(max_retries=0, trial_timeout=trial_timeout)
        if front_worker not in FRONT_WORKERS:
            raise ValueError(f"front_worker must be one of {', '.join(FRONT_WORKERS)}, got {front_worker!r}")
        self.front_worker = front_worker
        self._queue: deque[Job] = deque()
        self._flight: deque[_InFlight] = deque()
        self._heads: list[dict[str, Any]] = []
        self._side: cf.ProcessPoolExecutor | None = None
        self._payload: bytes | None = None  # the evaluator, for the worker's first front
        self._defers = False
        self.fronts_in_worker = 0  # fronts the worker made (for tests and the summary)
        self.fronts_here = 0   # fronts made here apart from their heads

    @classmethod
    def from_options(cls, **options: Any) -> InProcessExecutor:
        """Only ``trial_timeout`` and ``front_worker`` apply: workers, retries and threads are
        other executors'."""
        return cls(trial_timeout=options.get("trial_timeout"),
                   front_worker=options.get("front_worker") or "auto")

    def start(self, evaluator: Evaluator, objectives: tuple[str, ...]) -> None:
        self._evaluator, self._objectives = evaluator, objectives
        self._defers = bool(evaluator_attr(evaluator, "defers_front")) and self.front_worker != "off"
        if self._defers and self.front_worker == "on":
            self._start_side()

    def _start_side(self) -> None:
        try:
            self._payload = pickle.dumps(self._evaluator)
        except Exception as exc:  # noqa: BLE001 - the fronts are then made here, with the heads
            log.warning("front worker not started: the evaluator cannot be pickled (%s)", exc)
            self._defers = False
            return
        # The evaluator goes with the first front: in the initializer's arguments it would fill
        # the pipe that spawn writes them to, and the start would wait for the new process to
        # import nasco before it reads them.
        self._side = cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_front_init, initargs=(os.getpid(),))

    def submit(self, job: Job) -> None:
        self._queue.append(job)

    def wait(self) -> list[dict[str, Any]]:
        while True:
            self._hand_on()
            done = self._release()
            if done or self._heads:
                return done
            if self._queue:
                self._run(self._queue.popleft())
                continue
            if not self._flight:
                raise RuntimeError("wait() with nothing submitted")
            mine = next((f for f in reversed(self._flight) if f.due and f.front is None), None)
            if mine is not None:  # nothing else to do here: make a front the worker has not begun
                self._make_here(mine)
                continue
            # The oldest row waits for its front, which the worker (one process, first in first
            # out) makes before the others it holds.
            head = self._flight[0]
            assert head.front is not None  # due (else released) and handed (else made here above)
            cf.wait([head.front])

    def take_heads(self) -> list[dict[str, Any]]:
        out, self._heads = self._heads, []
        return out

    def _run(self, job: Job) -> None:
        split = self._defers and job.failed is None
        row = evaluate_job(self._evaluator, self._objectives, job, self.trial_timeout, head=split)
        item = _InFlight(job, row)
        self._flight.append(item)
        if not split or row["status"] == "failed" or row["metrics"].get("hw_front", 0) is not None:
            return  # whole: no front to make
        item.due = True
        if (self._side is None and self.front_worker == "auto" and row["seconds"] >= FRONT_WORKER_AFTER
                and spare_cpus() >= SPARE_CPU):
            self._start_side()
        if self._side is None:
            self._make_here(item)
        else:
            self._heads.append(row)

    def _make_here(self, item: _InFlight) -> None:
        front, seconds = make_front(self._evaluator, item.job, self.trial_timeout)
        item.row, item.due = with_front(item.row, front, seconds), False
        self.fronts_here += 1

    def _hand_on(self) -> None:
        """Give the worker the oldest fronts still here, up to FRONTS_IN_WORKER in it."""
        if self._side is None:
            return
        held = sum(1 for f in self._flight if f.due and f.front is not None and not f.front.done())
        for item in self._flight:
            if held >= FRONTS_IN_WORKER:
                return
            if item.due and item.front is None:
                payload, self._payload = self._payload, None
                try:
                    item.front = self._side.submit(_front_run, item.job, self.trial_timeout, payload)
                except cf.process.BrokenProcessPool:  # died idle: a new worker, the evaluator again
                    self._restart_side()
                    return
                item.handed, item.pool = time.perf_counter(), self._side
                held += 1

    def _release(self) -> list[dict[str, Any]]:
        """The rows at the head of the submission order that are whole."""
        out = []
        while self._flight:
            item = self._flight[0]
            if item.due and (item.front is None or not item.front.done()):
                break
            self._flight.popleft()
            if item.due:
                try:
                    front, seconds = item.front.result()  # type: ignore[union-attr]
                except Exception as exc:  # noqa: BLE001 - the worker died (or could not run it)
                    log.warning("evaluation %d (%s): the front worker died (%s); its hardware front is "
                                "recorded as failed", item.job.seq, item.job.cand.id, exc)
                    front = {"hw_front": {"error": f"front worker died: {type(exc).__name__}: {exc}"},
                             "hw_front_seconds": None, "members": []}
                    seconds = time.perf_counter() - item.handed
                    if item.pool is self._side:  # not yet replaced (one death, one new worker)
                        self._restart_side()
                item.row, item.due = with_front(item.row, front, seconds), False
                self.fronts_in_worker += 1
            out.append(item.row)
        return out

    def _restart_side(self) -> None:
        """A new worker after a death; fronts handed to the dead one are recorded as failed as
        they are released, the others go to the new one."""
        if self._side is not None:
            self._side.shutdown(wait=False, cancel_futures=True)
            self._side = None
            self._start_side()

    def close(self) -> None:
        busy = any(f.front is not None and not f.front.done() for f in self._flight)
        self._queue.clear()
        self._flight.clear()
        self._heads.clear()
        if self._side is not None:
            # concurrent.futures keeps its worker processes there; a front still running (an
            # interrupted run) would otherwise hold the driver's exit until it is done, for
            # nothing: its row is lost with the driver and the resume makes it again.
            procs = list(getattr(self._side, "_processes", {}).values()) if busy else []
            self._side.shutdown(wait=False, cancel_futures=True)
            for proc in procs:
                if proc.is_alive():
                    proc.terminate()
            self._side = None

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "workers": 1, "trial_timeout": self.trial_timeout,
                "front_worker": self.front_worker, "fronts_in_worker": self.fronts_in_worker,
                "fronts_here": self.fronts_here}


def make_front(evaluator: Evaluator, job: Job, timeout: float | None) -> tuple[dict[str, Any], float]:
    """The evaluator's ``evaluate_front`` of ``job`` and its seconds; an exception or a
    timeout gives ``{"hw_front": {"error": reason}, "members": []}``."""
    t0 = time.perf_counter()
    try:
        with _deadline(timeout):
            front = dict(evaluator_hook(evaluator, "evaluate_front")(job.cand, job.seed))
    except (Exception, TrialTimeout) as exc:  # noqa: BLE001 - recorded in the row
        front = {"hw_front": {"error": f"{type(exc).__name__}: {exc}"},
                 "hw_front_seconds": time.perf_counter() - t0, "members": []}
    return front, time.perf_counter() - t0


_FRONT_STATE: dict[str, Any] = {}


def _front_init(parent: int) -> None:
    _die_with(parent)
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _front_run(job: Job, timeout: float | None, payload: bytes | None) -> tuple[dict[str, Any], float]:
    """:func:`make_front` in the front worker (one torch thread); ``payload``, the pickled
    evaluator, comes with its first front."""
    if payload is not None:
        _FRONT_STATE["evaluator"] = pickle.loads(payload)
    if "torch" in sys.modules and sys.modules["torch"].get_num_threads() != 1:
        sys.modules["torch"].set_num_threads(1)
    return make_front(_FRONT_STATE["evaluator"], job, timeout)


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
