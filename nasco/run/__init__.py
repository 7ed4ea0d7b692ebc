"""Running a search: the durable ledger, the driver and its resume-by-replay, the executors
(in-process, process pool, Ray tasks, Ray Tune trials)."""
from __future__ import annotations

from nasco.run._driver import RunOutcome, Schedule, eval_seed, run_search
from nasco.run._executors import EXECUTORS, InProcessExecutor, Job, PoolExecutor, make_executor
from nasco.run._ledger import LEDGER_COLUMNS, Ledger, LedgerError
from nasco.run._rundir import RunDirError

__all__ = ["EXECUTORS", "LEDGER_COLUMNS", "InProcessExecutor", "Job", "Ledger", "LedgerError", "PoolExecutor",
           "RunDirError", "RunOutcome", "Schedule", "eval_seed", "make_executor", "run_search"]
