"""Contract tests and test helpers that ship with nasco (no pytest needed to import)."""
from __future__ import annotations

from nasco.testing.hw_contract import check_hw_space, write_standins
from nasco.testing.searcher_contract import SearcherContract, check_searcher, default_space, drive, toy_result

__all__ = ["SearcherContract", "check_hw_space", "check_searcher", "default_space", "drive", "toy_result",
           "write_standins"]
