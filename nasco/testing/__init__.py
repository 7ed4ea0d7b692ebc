"""Contract tests and test helpers that ship with nasco (no pytest needed to import)."""
from __future__ import annotations

from nasco.testing.searcher_contract import SearcherContract, check_searcher, default_space, drive, toy_result

__all__ = ["SearcherContract", "check_searcher", "default_space", "drive", "toy_result"]
