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
from typing import Any

from nasco.dsl import find_file

__all__ = ["arch_str_ops", "index_table_of", "official_index_table"]


@functools.lru_cache(maxsize=4)
def official_index_table(path: str) -> dict[str, int]:
    """arch_str -> official index, read once per process."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(Path(path), "rt", newline="") as fh:
        return {row["arch_str"]: int(row["index"]) for row in csv.DictReader(fh)}


def arch_str_ops(arch_str: str) -> tuple[str, ...]:
    """The edge ops of an arch string ``|op~0|+|op~0|op~1|+...``, in its token order."""
    return tuple(tok.split("~")[0] for grp in arch_str.split("+") for tok in grp.strip("|").split("|"))


def index_table_of(space: Any) -> dict[str, int]:
    """The official index table a space names (``official_index:``), found beside its file."""
    base = Path(getattr(space, "source", "") or ".").parent
    return official_index_table(str(find_file(space.official_index, relative_to=base, what="index table")))
