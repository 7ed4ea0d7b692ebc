"""The executor base class: where the driver's evaluations run, and every hook the driver may
call, with its default."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar

from nasco.core import Evaluator
from nasco.run._job import DEFAULT_RETRIES, Job, RetryPolicy

__all__ = ["Executor"]


class Executor(ABC):
    """Runs jobs somewhere and hands their ledger rows back as they finish.

    The driver gives an executor :class:`~nasco.run._job.Job` s and takes ledger rows back,
    in whatever order they finish; it alone decides what is evaluated and when, and alone
    writes the ledger. The driver calls :meth:`start`, then either :meth:`submit` /
    :meth:`wait` in a loop or, for an executor that :attr:`drives` (Ray Tune asks for work
    rather than being given it), :meth:`drive` once; then :meth:`close`.

    A subclass sets :attr:`name` and implements :meth:`start`, :meth:`describe` and either
    :meth:`submit` and :meth:`wait` or :meth:`drive`. Its ``retry`` policy
    (:class:`~nasco.run._job.RetryPolicy`) says what it does when a worker dies.
    """

    name: ClassVar[str]
    # Evaluations that can run at once (the driver's default window is built from it); an
    # executor that joins a cluster sets it in start().
    slots: int = 1
    # Evaluations sent to a worker together (one Ray task runs ``batch`` of them).
    batch: int = 1
    # True: the executor runs its own control loop (drive) instead of submit/wait.
    drives: ClassVar[bool] = False
    # True: evaluations run in the driver's own process, so a death during one is the driver's
    # (the ledger keeps every finished row, and resume evaluates the lost one again) and there
    # is no worker to retry on; False: in worker processes, whose deaths ``retry`` handles.
    in_driver_process: ClassVar[bool] = False

    def __init__(self, *, max_retries: int = DEFAULT_RETRIES, trial_timeout: float | None = None) -> None:
        self.retry = RetryPolicy(max_retries)
        self.trial_timeout = trial_timeout

    @classmethod
    def from_options(cls, **options: Any) -> Executor:
        """The executor for the settings a caller collected for any executor (``make_executor``,
        the CLI); by default the constructor's keywords."""
        return cls(**options)

    @property
    def max_retries(self) -> int:
        return self.retry.max_retries

    @abstractmethod
    def start(self, evaluator: Evaluator, objectives: tuple[str, ...]) -> None:
        """Get ready to evaluate with ``evaluator`` (join a cluster, start workers)."""

    def submit(self, job: Job) -> None:
        """Queue ``job``; its row comes back from a later :meth:`wait`."""
        raise NotImplementedError(f"the {self.name} executor drives its own loop (drive), "
                                  "it takes no submit()")

    def wait(self) -> list[dict[str, Any]]:
        """Block until at least one submitted job has finished, or has a head to tell (see
        :meth:`take_heads`); return the finished rows (possibly none when a head is due)."""
        raise NotImplementedError(f"the {self.name} executor drives its own loop (drive), "
                                  "it takes no wait()")

    def take_heads(self) -> list[dict[str, Any]]:
        """The heads made since the last call: rows of jobs still in flight, whole but for
        their hardware front (the evaluator's ``evaluate_head``), which the driver tells the
        searcher before the full rows come from :meth:`wait`. The default makes none."""
        return []

    def drive(self, sched: Any, record: Callable[[dict[str, Any]], dict[str, Any]],
              say: Callable[[], None]) -> None:
        """Run the schedule's evaluations with a control loop of the executor's own: take jobs
        from ``sched.advance()``, pass each finished row to ``record`` (which writes the ledger
        and returns the stored row) and call ``say()`` to print the schedule's news, until
        ``sched.done()``. Only for executors that set :attr:`drives`."""
        raise NotImplementedError(f"the {self.name} executor is driven by submit() and wait()")

    def close(self) -> None:
        """Release what :meth:`start` took (workers, a local cluster); safe to call twice."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """The executor's settings as JSON data (recorded in the run's summary)."""
