"""Ray Tune: evaluations as Tune trials, with nasco's own searcher inside Tune.

Tasks or trials
---------------
``--executor ray`` (:class:`~nasco.run._ray.RayExecutor`) runs each evaluation as a Ray
*task*: milliseconds of scheduling on a warm worker, and nothing else to pay for. This
executor runs each evaluation as a Ray Tune *trial*: a trainable actor, Tune's result
bookkeeping (``result.json``, ``progress.csv`` and ``params.json`` per trial, an
experiment state file) and Tune's control loop. Use it when you want what Tune adds: its
trial schedulers (ASHA early stopping of training-based evaluations), Tune's
``OptunaSearch`` proposing the candidates (``optuna=True``), or Tune's result logging and
tools. For everything else the task executor is cheaper.

Measured on 2 cores (local Ray instance of 2 CPUs, 20 trials of a 0-second evaluation):
a trial costs about 0.035-0.058 s once running, 4-8x a task's 0.005-0.010 s, plus 7-10 s
per run to start the trial actors (12-30 s under load). ``reuse_actors=True``, the default
here, keeps one actor for consecutive trials; Tune's own default, a new actor per trial,
cost 5-8 s per trial, each one importing nasco and torch again. Negligible beside
evaluations of minutes; dominant beside lookups and proxies.

How Tune and the driver meet
----------------------------
The driver keeps its single mechanism: the :class:`~nasco.run._driver.Schedule` (ask/tell
order, window, replay on resume) and the ledger. :meth:`TuneExecutor.drive` hands Tune a
:class:`ray.tune.search.Searcher` that wraps the schedule:

* ``suggest(trial_id)`` returns the next queued :class:`~nasco.run._job.Job` as a
  JSON config (``seq``, ``seed``, ``candidate`` as ``{"id", "arch", "hw"}``, ``failed``,
  ``info``, and ``shared``: the keys of the shared state its evaluation uses, see below); the
  queue is filled from ``sched.advance()``. Nothing queued: None (Tune asks
  again next step) while evaluations are out, ``Searcher.FINISHED`` once ``sched.done()``.
* ``on_trial_complete(trial_id, result, error)`` builds the ledger row, calls the
  driver's ``record(row)`` (ledger first, then the schedule), then ``sched.advance()``
  queues what the window now allows, and ``say()`` prints the schedule's messages.

Tune's concurrency limit is the driver's window (``max_concurrent_trials``). The trial
function gets the evaluator as an object reference boxed in a list and caches it per
worker process, like the task executor. State that evaluations share (a one-shot
evaluator's supernet weights, its ``shared_state`` hook) is made in the driver when
``suggest`` hands out the first job that uses it, put in the object store once, and held by
a small named actor (:class:`~nasco.run._ray.SharedRefs`, started with the first shared state
and killed when the run closes) by key; a trial fetches the keys its
config names that its worker lacks, so no trial trains a supernet. The trial then runs
:func:`~nasco.run._job.evaluate_job` (so exceptions, ``MemoryError`` and bad results become
failed rows exactly as elsewhere) and reports once at the end: the objectives as flat
floats (for Tune's logs) and the whole row as JSON (``nasco_row``), which is what the driver
records.

Retries follow the executors' one :class:`~nasco.run._job.RetryPolicy`: Tune restarts a
trial whose actor died (``FailureConfig.max_failures`` = ``max_retries``), and a
:class:`ray.tune.Callback` (``on_trial_recover``) records each death's reason in the
trial's job; the row then carries them in ``retries`` and ``attempts`` = retries + 1. A
trial that fails more than ``max_retries`` times becomes the policy's failed row, whose
``retries`` hold every death; the last one's reason is read when Tune tells the search
algorithm (``on_trial_complete(error=True)``, which Tune calls before the callbacks'
``on_trial_error``). The reasons come from the exception Tune saves in the trial's
directory: ``worker died: ActorDiedError: ...`` for a killed or crashed actor, ``out of
memory: ...`` for Ray's memory monitor, ``worker error: ...`` when the trial function
itself raised (the evaluator could not be loaded).

Timeouts: a function trainable runs in a thread of its actor, where the ``SIGALRM`` timer
of :func:`evaluate_job` cannot work, so the limit is kept by the driver. The trial
scheduler that nasco gives Tune (a wrapper around FIFO or ASHA) is consulted by Tune's
controller on every step (``choose_trial_to_run``); it kills the actor of every trial
that has been running for more than ``trial_timeout`` seconds since its actor started
(per attempt). Killed, not stopped: an evaluation stuck in ``time.sleep`` or in a native
call also blocks the actor's main thread (it waits for the trial's next result), so
Tune's polite stop would queue behind it, and a stopped actor may be kept for reuse.
The trial's ``max_failures`` is set to 0 first, so Tune takes the death as the trial's
final error instead of retrying it, and the row is a failed one whose reason starts
with ``timeout:``.

ASHA (``scheduler="asha"``): Tune's ``ASHAScheduler`` on the first objective, which must
be ``accuracy``, with ``time_attr="training_iteration"``. The trial sets the training
loop's epoch hook (:func:`nasco.evaluate._train.epoch_reporter`), so the training
evaluator reports the validation accuracy after every epoch (``tune.report``, one
training iteration per epoch; a multi-task candidate's tasks count on). A trial that
ASHA stops is recorded as a failed row, ``stopped early by ASHA after N epochs
(accuracy = x)``, with its partial metrics. ASHA's ``stop_last_trials`` is off: a trial
that survives every rung runs to the end and records its real row. Which trials ASHA
stops depends on the order in which results arrive, so an ASHA run is not reproducible
the way a plain run is; the ledger records what happened and a resume replays it.

Optuna inside Tune (``optuna=True``, for nasco's Optuna searchers only): the searcher
given to ``run_search`` is replaced, before its first proposal, by
:class:`TuneOptunaSearcher`, a nasco searcher whose ``ask``/``tell`` call Tune's
``OptunaSearch.suggest`` / ``on_trial_complete``. That ``OptunaSearch`` has the nasco
searcher's sampler (same class, settings and seed), ``metric`` = the objectives,
``mode`` = their senses, and a define-by-run space that asks the same
``suggest_categorical`` questions as the nasco searcher (its codec). Why an adapter
rather than ``OptunaSearch`` as Tune's search algorithm: the ledger and the schedule
stay the one mechanism for ordering, the window, repeats, replay and resume, and a run
with Tune's Optuna is resumable the way every nasco run is. Proposals are deterministic
for a seed (the schedule tells results in proposal order); they are not those of the
nasco searcher itself (which reseeds its sampler per trial and keeps its study in
``optuna.db``; here the study lives in memory and is rebuilt by replay, so the run's
``optuna.db`` stays empty). A run started with ``optuna=True`` must be resumed with it.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
import uuid
from collections import deque
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from nasco.core import Evaluator
from nasco.core._result import evaluator_hook
from nasco.run._base import Executor
from nasco.run._job import DEFAULT_RETRIES, Job, RetryPolicy, failed_row
from nasco.run._ray import SharedRefs, join
from nasco.run._tune_trial import _EPOCH, _ROW, _death_reason, _job_config, _trial
from nasco.search._optuna_tune import TuneOptunaSearcher

__all__ = ["ASHA_DEFAULTS", "TuneExecutor", "TuneOptunaSearcher"]

log = logging.getLogger("nasco.run")

# ASHA's settings unless ``asha`` says otherwise. A stopped trial is a failed row that
# the searcher is told, so the reduction factor is gentler than Tune's 4: half of the
# trials at a rung go on.
ASHA_DEFAULTS = {"grace_period": 1, "reduction_factor": 2, "max_t": 100, "brackets": 1}
# Set while Tune runs (where unset): Tune's own console output off (nasco prints its own
# progress line, and each failure is a ledger row with its reason), and trials run in the
# working directory of their worker, as Ray tasks do (relative paths in an evaluator's
# settings keep their meaning), not in their trial directories.
_TUNE_ENV = {"RAY_AIR_NEW_OUTPUT": "0", "TUNE_PRINT_ALL_TRIAL_ERRORS": "0", "RAY_CHDIR_TO_TRIAL_DIR": "0"}


def _trial_dirname(trial: Any) -> str:
    """The name (and directory name) nasco gives a trial: ``SEQ_ID`` of its candidate."""
    c = trial.config
    return f"{int(c.get('seq', 0)):05d}_{c.get('candidate', {}).get('id', trial.trial_id)}"


class _Bridge:
    """What the searcher, the scheduler and the callback that nasco gives Tune share:
    the schedule and the driver's hooks, the jobs by trial id, and what happened to each
    trial (starts, deaths, stops decided by nasco). Never pickled with Tune's state."""

    def __init__(self, sched: Any, record: Callable[[dict[str, Any]], dict[str, Any]],
                 say: Callable[[], None], timeout: float | None, retry: RetryPolicy,
                 share: Callable[[Job], list[str]] = lambda job: []) -> None:
        self.sched, self.record, self.say, self.share = sched, record, say, share
        self.timeout, self.retry = timeout, retry
        self.queue: deque[Job] = deque()
        self.jobs: dict[str, Job] = {}          # trial id -> its job (its retries: earlier attempts' deaths)
        self.trials: dict[str, Any] = {}        # trial id -> Tune's Trial
        self.started: dict[str, float] = {}     # trial id -> when its current attempt's actor started
        # trial id -> (reason, partial metrics, row fields) of a trial that nasco stopped
        self.stopped: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {}
        self.error: BaseException | None = None  # raised by the driver's hooks: ends the run
        self.recorded = 0
        self.experiment: str | None = None  # this session's Tune experiment directory (storage side)

    def __reduce__(self) -> tuple:
        return (_Bridge.__new__, (_Bridge,))  # Tune pickles its config (tuner.pkl): nothing of ours

    def advance(self) -> None:
        self.queue.extend(self.sched.advance())
        self.say()

    def guard(self, fn: Callable[[], Any]) -> Any:
        """Run a driver hook; an exception in it (a full disk, Ctrl-C) ends the run and is
        raised by drive() once Tune has stopped, instead of being logged by Tune."""
        if self.error is not None:
            return None
        try:
            return fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised by drive()
            self.error = exc
            return None

    def error_of(self, trial_id: str) -> BaseException | None:
        """The exception that ended the trial's latest attempt, as Tune saved it (in the
        trial's local staging directory; it reaches the storage path only when synced).

        The file is a pickle, and unpickling runs code: it is loaded only for a trial this
        session suggested, and only from that trial's own directory (:meth:`own_error_file`),
        never from elsewhere in a shared ``storage``."""
        trial = self.trials.get(trial_id)
        if trial is None:
            return None
        path = self.own_error_file(trial)
        if path is None:
            return None
        try:
            import ray.cloudpickle as cloudpickle

            with open(path, "rb") as fh:
                return cloudpickle.load(fh)
        except Exception:  # noqa: BLE001 - an unreadable error file: the reason says Tune recorded none
            return None

    def own_error_file(self, trial: Any) -> Path | None:
        """The pickled error file of ``trial`` when it is a regular file (no link) named
        by Tune, directly inside the directory nasco named for this trial
        (:func:`_trial_dirname`) in this session's experiment: the storage's
        ``EXPERIMENT/TRIAL`` or the driver's staging ``EXPERIMENT/driver_artifacts/TRIAL``.
        None otherwise."""
        name = getattr(getattr(trial, "run_metadata", None), "pickled_error_filename", None)
        if not self.experiment or not name or Path(name).name != name or name in (".", ".."):
            return None
        experiment, dirname = Path(self.experiment), _trial_dirname(trial)
        own = [experiment / dirname]
        staging = Path(trial.local_path) if getattr(trial, "local_path", None) else None
        if staging is not None and staging.name == dirname and staging.parent.name == "driver_artifacts" \
                and staging.parent.parent.name == experiment.name:
            own.insert(0, staging)
        for folder in own:
            path = folder / name
            if path.is_file() and not path.is_symlink() and \
                    os.path.realpath(path) == os.path.join(os.path.realpath(folder), name):
                return path
        return None

    def row(self, trial_id: str, job: Job, result: dict[str, Any] | None, error: bool) -> dict[str, Any]:
        self.started.pop(trial_id, None)
        stopped = self.stopped.pop(trial_id, None)
        if result and result.get(_ROW):
            row = json.loads(result[_ROW])
            row["retries"] = list(job.retries) + list(row.get("retries") or [])
            row["attempts"] = len(row["retries"]) + 1
            return row
        if stopped is not None:
            reason, partial, fields = stopped
            row = failed_row(job, reason, job.attempts)
            row["metrics"].update(partial)
            row.update(fields)
            return row
        if error:
            # Tune has run out of restarts (max_failures = max_retries): this was the last attempt.
            reason, died = _death_reason(self.error_of(trial_id))
            self.retry.record(job, reason)
            return self.retry.failed_row(job, died=died)
        return failed_row(job, "trial ended without a result", job.attempts)


def _make_searcher(bridge: _Bridge) -> Any:
    from ray.tune.search import Searcher

    class ScheduleSearcher(Searcher):
        """Tune's search algorithm: the driver's schedule (see the module docstring)."""

        def __init__(self) -> None:
            super().__init__(metric=None, mode=None)
            self.bridge = bridge

        def set_search_properties(self, metric: str | None, mode: str | None, config: dict,
                                  **spec: Any) -> bool:
            return True

        def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
            b = self.bridge
            if b.error is not None:
                return Searcher.FINISHED
            if not b.queue and not b.jobs:
                b.guard(b.advance)  # nothing out and nothing queued: ask (normally done on completion)
            if b.queue:
                job = b.queue.popleft()
                b.jobs[trial_id] = job
                shared = b.guard(lambda: b.share(job))
                if b.error is not None:  # making the shared state failed: the run ends with it
                    return Searcher.FINISHED
                return {**_job_config(job), "shared": shared}
            if b.sched.done() or b.error is not None:
                return Searcher.FINISHED
            return None

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            b = self.bridge
            job = b.jobs.pop(trial_id, None)
            if job is None:
                return

            def complete() -> None:
                b.record(b.row(trial_id, job, result, error))
                b.recorded += 1
                b.advance()

            b.guard(complete)

        def save_to_dir(self, checkpoint_dir: str, session_str: str = "default") -> None:
            pass  # the ledger is the run's state; a resume replays it

        def __reduce__(self) -> tuple:
            return (Searcher, ())

    return ScheduleSearcher()


def _record_asha_stop(bridge: _Bridge, trial_id: str, result: dict, metric: str) -> None:
    """Record why ASHA stopped a trial (its row's reason, metrics and timing)."""
    value = float(result[metric])
    epochs = int(result[_EPOCH])
    worker = f"{result['hostname']}:{result['pid']}" if "hostname" in result and "pid" in result else None
    bridge.stopped[trial_id] = (
        f"stopped early by ASHA after {epochs} epoch{'s' if epochs != 1 else ''} ({metric} = {value:.4g})",
        {"epochs": epochs, "valid_accuracy": value, "train_loss": float(result.get("train_loss", math.nan)),
         "stopped_by": "asha"},
        {"seconds": float(result.get("time_total_s") or 0.0), "worker": worker})


def _enforce_timeout(b: _Bridge) -> None:
    """Kill the actor of every running trial past the trial timeout, recording why."""
    if not b.timeout:
        return
    now = time.monotonic()
    for trial_id, t0 in list(b.started.items()):
        trial = b.trials.get(trial_id)
        if trial is None or trial.status != "RUNNING" or now - t0 <= b.timeout:
            continue
        b.started.pop(trial_id, None)
        actor = getattr(trial.temporary_state, "ray_actor", None)
        if actor is None:
            continue
        b.stopped[trial_id] = (f"timeout: the evaluation ran past the trial timeout of {b.timeout:g} "
                               f"s and was stopped (its actor was killed)", {}, {"seconds": now - t0})
        job = b.jobs.get(trial_id)
        log.warning("evaluation %s (%s) ran past the trial timeout of %g s; killing its actor",
                    job.seq if job else "?", job.cand.id if job else trial_id, b.timeout)
        # Killed, not stopped: a stuck evaluation blocks the actor's main thread too, so a
        # polite stop would wait behind it (and a stopped actor may be cached for reuse).
        # No retry for this trial: Tune reports the death as its final error, and the
        # row says why (the reason above).
        trial.max_failures = 0
        import ray

        try:
            ray.kill(actor, no_restart=True)
        except Exception:  # noqa: BLE001 - already gone
            pass


def _make_scheduler(bridge: _Bridge, inner: Any, asha_metric: str | None) -> Any:
    from ray.tune.schedulers import TrialScheduler

    class Limits(TrialScheduler):
        """FIFO or ASHA, plus nasco's trial timeout; the metric checks of Tune are left to
        the inner scheduler's decisions (the final report need not carry the metric)."""

        def __init__(self) -> None:
            super().__init__()
            self.bridge, self.inner, self.asha_metric = bridge, inner, asha_metric
            self._supports_buffered_results = inner.supports_buffered_results

        def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
            return True

        def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
            self.bridge.trials[trial.trial_id] = trial
            self.inner.on_trial_add(tune_controller, trial)

        def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
            self.inner.on_trial_error(tune_controller, trial)

        def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
            if _ROW in result:
                return TrialScheduler.CONTINUE  # the evaluation is over: nothing to decide
            decision = self.inner.on_trial_result(tune_controller, trial, result)
            if decision == TrialScheduler.STOP and self.asha_metric and _EPOCH in result:
                _record_asha_stop(self.bridge, trial.trial_id, result, self.asha_metric)
            return decision

        def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
            self.inner.on_trial_complete(tune_controller, trial, result)

        def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
            try:
                self.inner.on_trial_remove(tune_controller, trial)
            except KeyError:
                pass

        def choose_trial_to_run(self, tune_controller: Any) -> Any:
            self._enforce_timeout(tune_controller)
            return self.inner.choose_trial_to_run(tune_controller)

        def _enforce_timeout(self, tune_controller: Any) -> None:
            _enforce_timeout(self.bridge)

        def debug_string(self) -> str:
            return self.inner.debug_string()

        def __reduce__(self) -> tuple:
            return (TrialScheduler, ())

    return Limits()


def _make_callback(bridge: _Bridge) -> Any:
    from ray.tune import Callback

    class Events(Callback):
        """Start times (for the timeout) and deaths (for the rows' retries), by trial id."""

        def __init__(self) -> None:
            self.bridge = bridge

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.bridge.started[trial.trial_id] = time.monotonic()

        def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            b = self.bridge
            b.started.pop(trial.trial_id, None)
            reason, _ = _death_reason(b.error_of(trial.trial_id))
            job = b.jobs.get(trial.trial_id)
            if job is None:  # not one of the schedule's trials: no row to record it in
                log.warning("trial %s: %s; Tune restarts it", trial.trial_id, reason)
                return
            b.retry.record(job, reason)  # Tune itself runs the next attempt

        def __reduce__(self) -> tuple:
            return (Callback, ())

    return Events()


def _make_stopper(bridge: _Bridge) -> Any:
    from ray.tune import Stopper

    class OnError(Stopper):
        """Ends the experiment when a driver hook raised (the error is re-raised after)."""

        def __call__(self, trial_id: str, result: dict) -> bool:
            return False

        def stop_all(self) -> bool:
            return bridge.error is not None

        def __reduce__(self) -> tuple:
            return (Stopper, ())

    return OnError()


def _not_incomplete(record: logging.LogRecord) -> bool:
    # Tune logs every errored trial again at the end ("Trials did not complete: [...]");
    # the ledger has each of them as a failed row with its reason.
    return not str(record.msg).startswith("Trials did not complete")


@contextmanager
def _quiet_tune() -> Iterator[None]:
    """Tune's environment for this executor (see _TUNE_ENV; set where unset) and its
    end-of-run error list off, while Tune runs."""
    old = {k: os.environ.get(k) for k in _TUNE_ENV}
    for k, v in _TUNE_ENV.items():
        os.environ.setdefault(k, v)
    tune_log = logging.getLogger("ray.tune.tune")
    tune_log.addFilter(_not_incomplete)
    try:
        yield
    finally:
        tune_log.removeFilter(_not_incomplete)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class TuneExecutor(Executor):
    """Evaluations as Ray Tune trials (see the module docstring).

    ``workers`` caps the evaluations at once (the driver's default window); without it,
    as many as the cluster's CPUs (and GPUs) fit at ``cpus_per_trial`` /
    ``gpus_per_trial``. ``max_retries``: restarts of a trial whose actor died.
    ``trial_timeout``: seconds per attempt, kept by the driver. ``storage``: where Tune
    writes its experiment (default: ``tune/`` in the run directory; one experiment per
    driver session, named ``nasco-TIME-ID``). ``scheduler``: None (FIFO) or ``"asha"``,
    with ``asha`` overriding :data:`ASHA_DEFAULTS` (a non-empty ``asha`` alone means ASHA).
    ``optuna``: run the search's Optuna sampler through Tune's ``OptunaSearch``
    (:class:`TuneOptunaSearcher`). ``reuse_actors``: run consecutive trials in the same
    trainable actor (Tune resets it between trials) instead of a new actor process each.
    """

    name = "tune"
    drives = True

    def __init__(self, *, address: str | None = None, workers: int | None = None, cpus_per_trial: float = 1.0,
                 gpus_per_trial: float = 0.0, max_retries: int = DEFAULT_RETRIES,
                 trial_timeout: float | None = None,
                 threads: int | None = None, storage: str | os.PathLike[str] | None = None,
                 scheduler: str | None = None, asha: dict[str, Any] | None = None, optuna: bool = False,
                 reuse_actors: bool = True) -> None:
        if cpus_per_trial <= 0 or gpus_per_trial < 0:
            raise ValueError(f"cpus_per_trial must be > 0 and gpus_per_trial >= 0, got {cpus_per_trial}, "
                             f"{gpus_per_trial}")
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if trial_timeout is not None and not trial_timeout > 0:
            raise ValueError(f"trial_timeout must be a positive number of seconds, got {trial_timeout}")
        if scheduler is None and asha:
            scheduler = "asha"
        if scheduler not in (None, "fifo", "asha"):
            raise ValueError(f"scheduler must be None, 'fifo' or 'asha', got {scheduler!r}")
        unknown = sorted(set(asha or {}) - set(ASHA_DEFAULTS))
        if unknown:
            raise ValueError(f"unknown ASHA settings {unknown}; known: {sorted(ASHA_DEFAULTS)}")
        super().__init__(max_retries=max_retries, trial_timeout=trial_timeout)
        self.address, self.workers = address, workers
        self.cpus_per_trial, self.gpus_per_trial = float(cpus_per_trial), float(gpus_per_trial)
        self.threads = threads or max(1, int(cpus_per_trial))
        self.storage = storage
        self.scheduler = None if scheduler == "fifo" else scheduler
        self.asha = {**ASHA_DEFAULTS, **(asha or {})} if self.scheduler == "asha" else None
        self.optuna = bool(optuna)
        self.reuse_actors = bool(reuse_actors)
        self.slots = workers or 1
        self.cluster: dict[str, Any] = {}
        self.experiment: str | None = None  # Tune's experiment directory of the last drive()
        self._objectives: tuple[str, ...] = ()

    # ---------------------------------------------------------------- lifecycle
    def start(self, evaluator: Evaluator, objectives: tuple[str, ...]) -> None:
        objectives = tuple(objectives)
        if self.scheduler == "asha" and objectives[0] != "accuracy":
            raise ValueError(f"ASHA stops trials on the first objective's value per training epoch; the "
                             f"training loop reports validation accuracy, so the first objective must be "
                             f"'accuracy', not '{objectives[0]}'")
        self.cluster, self.slots = join(self.address, self.workers, self.cpus_per_trial, self.gpus_per_trial)
        import ray

        self._objectives = objectives
        self._key = uuid.uuid4().hex
        self._ref = ray.put((evaluator, objectives))
        self._shared_of = evaluator_hook(evaluator, "shared_state")
        self._shared: dict[str, Any] = {}  # shared-state key -> object reference (kept alive here)
        # The actor that gives trials the references, by name: started with the first shared
        # state a job uses (never, for evaluators that share none), killed when close() ends the run.
        self._holder: Any = None
        self._holder_name = f"nasco-shared-{self._key}"
        log.info("Tune executor: %s, %d trials at once", self.cluster["address"], self.slots)

    def _share(self, job: Job) -> list[str]:
        """The keys of the shared state ``job``'s evaluation uses (a one-shot evaluator's
        supernet weights), each made here in the driver and put in the object store the first
        time a job needs it, for the trial to fetch from the holder actor: no trial makes it."""
        import ray

        if job.failed is not None:
            return []
        state = self._shared_of([job.cand])
        for k, value in state.items():
            if k not in self._shared:
                if self._holder is None:
                    self._holder = ray.remote(SharedRefs).options(num_cpus=0, name=self._holder_name).remote()
                self._shared[k] = ray.put(value)
                ray.get(self._holder.put.remote(k, [self._shared[k]]))
        return list(state)

    def drive(self, sched: Any, record: Callable[[dict[str, Any]], dict[str, Any]],
              say: Callable[[], None]) -> None:
        """Run the schedule's evaluations as Tune trials until it is done."""
        if self.optuna:
            sched.searcher = TuneOptunaSearcher.wrap(sched.searcher)
        bridge = _Bridge(sched, record, say, self.trial_timeout, self.retry, self._share)
        bridge.advance()
        if bridge.error is None and sched.done() and not bridge.queue:
            return  # all replayed: nothing for Tune to run
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

        primary = self._objectives[0]
        asha_metric = None
        if self.scheduler == "asha":
            assert self.asha is not None
            asha_metric = primary
            # The primary objective is accuracy (checked in start()), maximised.
            inner = ASHAScheduler(time_attr="training_iteration", metric=primary, mode="max",
                                  stop_last_trials=False, **self.asha)
        else:
            inner = FIFOScheduler()
        storage = Path(self.storage) if self.storage is not None else Path(sched.out_dir) / "tune"
        storage = storage.expanduser().resolve()
        storage.mkdir(parents=True, exist_ok=True)
        name = f"nasco-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self.experiment = bridge.experiment = str(storage / name)
        run = {"key": self._key, "boxed": [self._ref], "threads": self.threads, "asha_metric": asha_metric,
               "shared": self._holder_name}
        trainable = tune.with_resources(tune.with_parameters(_trial, run=run),
                                        {"cpu": self.cpus_per_trial, "gpu": self.gpus_per_trial})

        with _quiet_tune():
            tuner = tune.Tuner(
                trainable,
                tune_config=tune.TuneConfig(
                    search_alg=_make_searcher(bridge), scheduler=_make_scheduler(bridge, inner, asha_metric),
                    num_samples=-1, max_concurrent_trials=int(sched.window), reuse_actors=self.reuse_actors,
                    trial_name_creator=_trial_dirname, trial_dirname_creator=_trial_dirname),
                run_config=tune.RunConfig(
                    name=name, storage_path=str(storage), verbose=0, log_to_file=False,
                    failure_config=tune.FailureConfig(max_failures=self.max_retries),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=None, checkpoint_frequency=0,
                                                            checkpoint_at_end=False),
                    callbacks=[_make_callback(bridge)], stop=_make_stopper(bridge)))
            tuner.fit()
        if bridge.error is not None:
            raise bridge.error
        if not sched.done():
            # Tune ended without the schedule being done: Ctrl-C (Tune's own handler takes
            # the first one and ends the experiment). The ledger holds what was recorded.
            raise KeyboardInterrupt(f"Ray Tune stopped before the search was done ({bridge.recorded} "
                                    f"evaluations recorded this session); resume to continue")

    def close(self) -> None:
        import ray

        if getattr(self, "_holder", None) is not None:
            if ray.is_initialized():
                ray.kill(self._holder)
            self._holder, self._shared = None, {}
        if self.cluster.get("local") and ray.is_initialized():
            ray.shutdown()

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "workers": self.slots, "ray_address": self.address,
                "cpus_per_trial": self.cpus_per_trial, "gpus_per_trial": self.gpus_per_trial,
                "max_retries": self.max_retries, "trial_timeout": self.trial_timeout, "threads": self.threads,
                "scheduler": self.scheduler or "fifo", "asha": self.asha, "optuna": self.optuna,
                "reuse_actors": self.reuse_actors, "experiment": self.experiment}
