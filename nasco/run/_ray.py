"""Ray: joining or starting a Ray instance, and the executor that runs evaluations as Ray tasks.

Tasks, not Tune trials, are what ``--executor ray`` runs. A task costs about a millisecond
of scheduling on a warm worker; a Tune trial is an actor with its own start-up and its
result bookkeeping, a fixed cost that dominates evaluations of seconds or less (a lookup,
a proxy, a short training). The driver keeps the ask/tell loop and the ledger, so a task
has nothing to do but evaluate. Runs that want Tune itself (its schedulers, such as ASHA,
or Optuna inside Tune) use ``--executor tune`` (``nasco.run._tune``).

Loopback by default: a Ray instance that nasco starts itself (no ``--ray-address``) binds
every service to 127.0.0.1 (Ray uses the loopback address when its multi-node mode is off,
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``; set before Ray starts its processes) and runs no
dashboard. Joining a cluster (``--ray-address auto|HOST:PORT``) uses whatever addresses
that cluster was started with. Ray 2.60 starts local clusters (``ray start --head``) with
token authentication; a driver joining one reads the token from ``~/.ray/auth_token``
(or ``RAY_AUTH_TOKEN`` / ``RAY_AUTH_TOKEN_PATH``), which is why nasco sets
``RAY_AUTH_MODE=token`` when a token is there and the variable is unset.
"""
from __future__ import annotations

import logging
import math
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Sequence

from nasco.core import Evaluator, evaluator_hook
from nasco.run._base import Executor
from nasco.run._job import DEFAULT_RETRIES, Job, evaluate_job, failed_row

__all__ = ["RayExecutor", "connect", "join", "load_evaluator"]

log = logging.getLogger("nasco.run")

_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _token_available() -> bool:
    return bool(os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
                or (Path.home() / ".ray" / "auth_token").exists())


def connect(address: str | None = None, *, num_cpus: float | None = None,
            num_gpus: float | None = None) -> dict[str, Any]:
    """Join the Ray cluster at ``address`` (``auto`` or ``HOST:PORT``), or start a local
    instance bound to loopback when ``address`` is None. Returns what was joined:
    ``address`` (the GCS address), ``local`` (started here) and the cluster's resources.
    A second call reuses the connection."""
    host = None if address is None else address.rpartition(":")[0].strip("[]")
    if address is None or host in _LOOPBACK:
        # Loopback only (a local instance, or a cluster started on loopback): read by Ray
        # at import and passed to the processes it starts. Ray imported earlier has read it
        # already, and would look for this node's raylet on the network address instead.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        if "ray" in sys.modules and os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0":
            from ray._private import ray_constants

            ray_constants.ENABLE_RAY_CLUSTER = False
    if address is not None and "RAY_AUTH_MODE" not in os.environ and _token_available():
        os.environ["RAY_AUTH_MODE"] = "token"
    import ray

    started = False
    if not ray.is_initialized():
        kw: dict[str, Any] = dict(log_to_driver=False, logging_level=logging.WARNING,
                                  configure_logging=True)
        if address is None:
            if "RAY_ADDRESS" in os.environ:
                # An inherited RAY_ADDRESS would make ray.init join that cluster instead.
                os.environ.pop("RAY_ADDRESS")
            ray.init(num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False, **kw)
            started = True
        else:
            try:
                ray.init(address=address, **kw)
            except ConnectionError as exc:
                raise ConnectionError(f"cannot join the Ray cluster at {address!r} ({exc}); start one with "
                                      f"'ray start --head' or check the address") from None
    gcs = ray.get_runtime_context().gcs_address
    if started and gcs.rpartition(":")[0].strip("[]") not in _LOOPBACK:
        log.warning("the local Ray instance listens on %s, not on loopback: Ray was imported before nasco "
                    "could set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0", gcs)
    return {"address": gcs, "local": started, "resources": dict(ray.cluster_resources())}


def join(address: str | None, workers: int | None, cpus_per_trial: float,
         gpus_per_trial: float) -> tuple[dict[str, Any], int]:
    """Connect (see :func:`connect`; a local instance gets the CPUs and GPUs that
    ``workers`` evaluations need, all cores without it) and return (what was joined, how
    many evaluations fit at once: the cluster's CPUs and GPUs over the per-evaluation
    reservation, capped by ``workers``). Shared by the task and the Tune executors."""
    local_cpus = local_gpus = None
    if address is None:
        local_cpus = max(workers * cpus_per_trial if workers else float(os.cpu_count() or 1), cpus_per_trial)
        local_gpus = (workers or 1) * gpus_per_trial if gpus_per_trial else None
    cluster = connect(address, num_cpus=local_cpus, num_gpus=local_gpus)
    res = cluster["resources"]
    fits = math.floor(res.get("CPU", 0) / cpus_per_trial + 1e-9)
    if gpus_per_trial:
        fits = min(fits, math.floor(res.get("GPU", 0) / gpus_per_trial + 1e-9))
    if fits < 1:
        raise ValueError(f"the Ray cluster at {cluster['address']} has {res.get('CPU', 0):g} CPUs and "
                         f"{res.get('GPU', 0):g} GPUs: not enough for one evaluation with "
                         f"--cpus-per-trial {cpus_per_trial:g} --gpus-per-trial {gpus_per_trial:g}")
    return cluster, (min(workers, fits) if workers else fits)


# Evaluators unpickled in this worker process, by run key: a task or trial gets the
# evaluator's object reference boxed in a list (so Ray does not fetch it for every task)
# and fetches it only the first time this worker sees the run.
_EVALUATORS: dict[str, tuple[Evaluator, tuple[str, ...]]] = {}


def load_evaluator(key: str, boxed: list) -> tuple[Evaluator, tuple[str, ...]]:
    """(evaluator, objectives) of run ``key`` in this worker process, fetched once."""
    if key not in _EVALUATORS:
        import ray

        _EVALUATORS.clear()  # one run at a time per worker: drop an earlier run's evaluator
        _EVALUATORS[key] = ray.get(boxed[0])
    return _EVALUATORS[key]


# The shared-state keys the evaluator of run key has adopted in this worker process.
_ADOPTED: dict[str, set[str]] = {}


def _adopt(key: str, evaluator: Evaluator, shared: Sequence[tuple[str, Any]]) -> None:
    """Fetch the shared state of ``shared`` ((key, object reference) pairs) that this worker's
    evaluator of run ``key`` lacks, and hand it to the evaluator: each key once per worker."""
    if key not in _ADOPTED:
        _ADOPTED.clear()  # as _EVALUATORS: one run at a time per worker
        _ADOPTED[key] = set()
    new = [(k, ref) for k, ref in shared if k not in _ADOPTED[key]]
    if new:
        import ray

        evaluator_hook(evaluator, "adopt_shared_state")(dict(zip([k for k, _ in new],
                                                                 ray.get([ref for _, ref in new]))))
        _ADOPTED[key].update(k for k, _ in new)


class SharedRefs:
    """A Ray actor's class that holds, by key, the object references of the shared state a run's
    driver put in the object store, for trials (whose configs carry only the keys) to fetch.
    References travel boxed in lists, so Ray hands on the reference, not its value."""

    def __init__(self) -> None:
        self._refs: dict[str, Any] = {}

    def put(self, key: str, boxed: list) -> None:
        self._refs.setdefault(key, boxed[0])

    def get(self, keys: Sequence[str]) -> list[tuple[str, list]]:
        return [(k, [self._refs[k]]) for k in keys]


def adopt_shared(key: str, evaluator: Evaluator, holder: str, keys: Sequence[str]) -> None:
    """Hand the evaluator of run ``key`` the shared state of ``keys`` that the
    :class:`SharedRefs` actor named ``holder`` holds (each key fetched once per worker)."""
    if keys:
        import ray

        refs = ray.get(ray.get_actor(holder).get.remote(list(keys)))
        _adopt(key, evaluator, [(k, boxed[0]) for k, boxed in refs])


def _run_tasks(key: str, boxed: list, jobs: list[Job], timeout: float | None,
               threads: int | None, shared: Sequence[tuple[str, Any]] = ()) -> list[dict[str, Any]]:
    evaluator, objectives = load_evaluator(key, boxed)
    _adopt(key, evaluator, shared)
    return [evaluate_job(evaluator, objectives, job, timeout, threads) for job in jobs]


class RayExecutor(Executor):
    """Evaluations as Ray tasks: ``batch`` evaluations per task, ``cpus_per_trial`` /
    ``gpus_per_trial`` reserved per evaluation.

    ``workers`` caps the evaluations that run at once (the driver's window); without it,
    as many as the cluster's CPUs (and GPUs) allow. A worker that dies (killed, node lost,
    killed by Ray's memory monitor) loses its task: each of the task's jobs is submitted
    again on its own, at most ``max_retries`` times, and each death is recorded in the
    row's ``retries``. Ray's own task retries are off (``max_retries=0``), because Ray
    does not tell the caller that, or why, a task was run again, and the ledger must.

    State that the evaluator's evaluations share (its ``shared_state`` hook: a one-shot
    evaluator's supernet weights) is made in the driver before the first job that uses it is
    sent, put in the object store once per key, and fetched by each worker once: no worker
    makes it again (a one-shot run trains each supernet once, in the driver, outside any
    evaluation's trial timeout).

    A task that outlives ``trial_timeout`` x its evaluations + ``grace`` seconds after it
    started (an evaluation stuck in a native call, which the in-task timer cannot
    interrupt) is cancelled, killing its worker, and its unfinished evaluations are
    recorded as timed out.
    """

    name = "ray"

    def __init__(self, *, address: str | None = None, workers: int | None = None, cpus_per_trial: float = 1.0,
                 gpus_per_trial: float = 0.0, batch: int = 1, max_retries: int = DEFAULT_RETRIES,
                 trial_timeout: float | None = None, threads: int | None = None, grace: float = 30.0) -> None:
        if cpus_per_trial <= 0 or gpus_per_trial < 0:
            raise ValueError(f"cpus_per_trial must be > 0 and gpus_per_trial >= 0, got {cpus_per_trial}, "
                             f"{gpus_per_trial}")
        if batch < 1 or (workers is not None and workers < 1):
            raise ValueError(f"batch and workers must be >= 1, got {batch}, {workers}")
        super().__init__(max_retries=max_retries, trial_timeout=trial_timeout)
        self.address, self.workers = address, workers
        self.cpus_per_trial, self.gpus_per_trial = float(cpus_per_trial), float(gpus_per_trial)
        self.batch, self.grace = int(batch), float(grace)
        self.threads = threads or max(1, int(cpus_per_trial))
        self.slots = workers or 1
        self.cluster: dict[str, Any] = {}
        self._buffer: list[Job] = []
        self._tasks: dict[Any, tuple[list[Job], float]] = {}  # ref -> (jobs, submit time)
        self._done: list[dict[str, Any]] = []

    def start(self, evaluator: Evaluator, objectives: tuple[str, ...]) -> None:
        self.cluster, self.slots = join(self.address, self.workers, self.cpus_per_trial, self.gpus_per_trial)
        import ray

        self._key = uuid.uuid4().hex
        self._ref = ray.put((evaluator, tuple(objectives)))
        self._shared_of = evaluator_hook(evaluator, "shared_state")
        self._shared: dict[str, Any] = {}  # shared-state key -> object reference
        self._remote = ray.remote(_run_tasks).options(
            num_cpus=self.cpus_per_trial, num_gpus=self.gpus_per_trial, max_retries=0, retry_exceptions=False)
        # Warm the workers: start them and load the evaluator (a worker's first task imports
        # nasco and torch, seconds that would otherwise land on the first evaluations).
        ray.get([self._remote.remote(self._key, [self._ref], [], None, self.threads)
                 for _ in range(self.slots)])
        log.info("Ray executor: %s, %d evaluations at once", self.cluster["address"], self.slots)

    def submit(self, job: Job) -> None:
        self._buffer.append(job)
        if len(self._buffer) >= self.batch:
            self._launch(self._buffer[:self.batch])
            del self._buffer[:self.batch]

    def _launch(self, jobs: list[Job]) -> None:
        shared = self._share(jobs)
        ref = self._remote.remote(self._key, [self._ref], jobs, self.trial_timeout, self.threads, shared)
        self._tasks[ref] = (jobs, time.monotonic())

    def _share(self, jobs: list[Job]) -> list[tuple[str, Any]]:
        """(key, object reference) of the shared state the jobs' evaluations use, each key put
        in the object store the first time a job needs it. The references travel inside a list,
        so Ray does not fetch them for every task: a worker fetches the keys it lacks."""
        import ray

        state = self._shared_of([job.cand for job in jobs if job.failed is None])
        for k, value in state.items():
            if k not in self._shared:
                self._shared[k] = ray.put(value)
        return [(k, self._shared[k]) for k in state]

    def wait(self) -> list[dict[str, Any]]:
        import ray

        if self._buffer:  # the driver waits: send what it gave, even a short batch
            self._launch(self._buffer)
            self._buffer = []
        while not self._done:
            if not self._tasks:
                raise RuntimeError("wait() with nothing submitted")
            poll = 1.0 if self.trial_timeout else None
            ready, _ = ray.wait(list(self._tasks), num_returns=1, timeout=poll)
            if ready:
                ready, _ = ray.wait(list(self._tasks), num_returns=len(self._tasks), timeout=0)
            for ref in ready:
                jobs, _t = self._tasks.pop(ref)
                self._collect(ref, jobs)
            if self.trial_timeout:
                self._cancel_overdue()
        out, self._done = self._done, []
        return out

    def _collect(self, ref: Any, jobs: list[Job]) -> None:
        import ray
        from ray import exceptions as rex

        try:
            self._done.extend(ray.get(ref))
        except rex.TaskCancelledError:
            reason = (f"timeout: the evaluation ran past the trial timeout of {self.trial_timeout:g} s and "
                      f"was cancelled (its worker was killed)")
            self._done.extend(failed_row(job, reason, job.attempts) for job in jobs)
        except rex.RayTaskError as exc:
            # _run_tasks itself raised: the evaluator could not be loaded on the worker.
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            first = str(cause).splitlines()[0] if str(cause) else ""
            reason = f"worker error: {type(cause).__name__}: {first}"
            self._done.extend(failed_row(job, reason, job.attempts) for job in jobs)
        except (rex.RayError, ConnectionError) as exc:
            # The worker (or its node) died: OOM kill, SIGKILL, preemption.
            if isinstance(exc, rex.OutOfMemoryError):
                what = "out of memory: Ray's memory monitor killed the worker"
            elif isinstance(exc, rex.NodeDiedError):
                what = "node died"
            else:
                what = "worker died"
            reason = f"{what}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
            for job in sorted(jobs, key=lambda j: j.seq):
                self._retry(job, reason)

    def _retry(self, job: Job, reason: str) -> None:
        if self.retry.record(job, reason):
            self._launch([job])  # alone: a job that kills its worker must not take others with it
        else:
            self._done.append(self.retry.failed_row(job))

    def _cancel_overdue(self) -> None:
        import ray

        now = time.monotonic()
        # A task may wait for a free worker; count from when it could have started at the
        # latest: its submission, plus the tasks ahead of it divided among the slots.
        order = sorted(self._tasks.items(), key=lambda kv: kv[1][1])
        for i, (ref, (jobs, t)) in enumerate(order):
            queued = (i // max(self.slots, 1)) * self.trial_timeout * self.batch
            if now - t > queued + self.trial_timeout * len(jobs) + self.grace:
                log.warning("cancelling a Ray task of %d evaluation(s) %.0f s after submission "
                            "(trial timeout %g s)", len(jobs), now - t, self.trial_timeout)
                ray.cancel(ref, force=True)

    def close(self) -> None:
        import ray

        for ref in list(self._tasks):
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - best effort at shutdown
                pass
        self._tasks.clear()
        self._shared = {}
        if self.cluster.get("local") and ray.is_initialized():
            ray.shutdown()

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "workers": self.slots, "ray_address": self.address,
                "gcs_address": self.cluster.get("address"), "local_instance": self.cluster.get("local"),
                "cpus_per_trial": self.cpus_per_trial, "gpus_per_trial": self.gpus_per_trial,
                "batch": self.batch, "max_retries": self.max_retries, "trial_timeout": self.trial_timeout}
