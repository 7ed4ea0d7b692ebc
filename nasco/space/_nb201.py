"""NAS-Bench-201's official cell indices.

The table (index, arch_str) ships with the built-in spaces; it lists the 15,625 cells
in the order of the NAS-Bench-201 release (Dong & Yang, ICLR 2020), taken from
../shared/data/nb201/nb201_accuracy.csv.gz.
"""
from __future__ import annotations

import csv
import functools
import gzip
from pathlib import Path

__all__ = ["official_index_table"]


@functools.lru_cache(maxsize=4)
def official_index_table(path: str) -> dict[str, int]:
    """arch_str -> official index, read once per process."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(Path(path), "rt", newline="") as fh:
        return {row["arch_str"]: int(row["index"]) for row in csv.DictReader(fh)}
