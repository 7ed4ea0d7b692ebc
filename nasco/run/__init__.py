"""Running a search: the durable ledger, the driver and its resume-by-replay, the executors
(in-process, process pool, Ray tasks, Ray Tune trials)."""
from __future__ import annotations

from nasco.run._base import Executor
from nasco.run._driver import RunOutcome, Schedule, eval_seed, run_search
from nasco.run._executors import InProcessExecutor, PoolExecutor
from nasco.run._job import DEFAULT_RETRIES, Job, RetryPolicy
from nasco.run._ledger import LEDGER_COLUMNS, Ledger, LedgerError
from nasco.run._registry import EXECUTORS, make_executor
from nasco.run._rundir import RunDirError

__all__ = ["DEFAULT_RETRIES", "EXECUTORS", "Executor", "LEDGER_COLUMNS", "InProcessExecutor", "Job", "Ledger",
           "LedgerError", "PoolExecutor", "RetryPolicy", "RunDirError", "RunOutcome", "Schedule", "eval_seed",
           "make_executor", "run_search"]
