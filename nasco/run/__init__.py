"""Running a search: the durable ledger, the driver and its resume-by-replay."""
from __future__ import annotations

from nasco.run._driver import RunOutcome, eval_seed, run_search
from nasco.run._ledger import LEDGER_COLUMNS, Ledger, LedgerError
from nasco.run._rundir import RunDirError

__all__ = ["LEDGER_COLUMNS", "Ledger", "LedgerError", "RunDirError", "RunOutcome", "eval_seed", "run_search"]
