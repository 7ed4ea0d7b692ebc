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

from nasco.dsl import SpecError

__all__ = ["arch_str_ops", "index_table_of", "official_index_table"]


_INDEX_TABLE = "an index table: a CSV (or .csv.gz) with columns index and arch_str, one cell per row"


@functools.lru_cache(maxsize=4)
def official_index_table(path: str) -> dict[str, int]:
    """arch_str -> official index, read once per process.

    A file that is not an index table (unreadable, no ``index`` and ``arch_str`` columns, or a
    row without an integer index and an arch string) raises SpecError naming it and the line.
    """
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(Path(path), "rt", newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            cols = reader.fieldnames or []
            if not {"index", "arch_str"} <= set(cols):
                found = "columns " + ", ".join(repr(c[:40]) for c in cols[:6]) if cols else "an empty file"
                raise SpecError(_INDEX_TABLE, found, file=path, line=1,
                                hint="official_index names the file of the space's official cell indices, "
                                     "e.g. nb201_index.csv.gz")
            out: dict[str, int] = {}
            for row in reader:
                arch, index = row.get("arch_str"), row.get("index")
                if not arch or not index or not index.strip().isdigit():
                    raise SpecError(_INDEX_TABLE, f"index {index!r:.40} and arch_str {arch!r:.60}",
                                    file=path, line=reader.line_num)
                out[arch] = int(index)
            return out
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        found = f"an unreadable file ({type(exc).__name__}: {exc})"
        raise SpecError(_INDEX_TABLE, found, file=path) from None


def arch_str_ops(arch_str: str) -> tuple[str, ...]:
    """The edge ops of an arch string ``|op~0|+|op~0|op~1|+...``, in its token order."""
    return tuple(tok.split("~")[0] for grp in arch_str.split("+") for tok in grp.strip("|").split("|"))


def index_table_of(space: Any) -> dict[str, int]:
    """The official index table a space names (``official_index:``), found beside its file.

    A missing or faulty index file raises SpecError at the space file's ``official_index``.
    """
    source = getattr(space, "source", "") or ""
    base = Path(source or ".").parent
    name = str(space.official_index)
    try:
        found = next((p for p in (Path(name), base / name) if p.is_file()), None)
        if found is None:
            raise SpecError(_INDEX_TABLE, "no such file", file=str(base / name))
        return official_index_table(str(found))
    except SpecError as exc:
        if not source:
            raise
        where = f"{exc.file}:{exc.line}" if exc.line is not None else exc.file
        raise SpecError(exc.expected, f"{where}: {exc.found}", file=source, path=("official_index",),
                        hint=exc.hint) from None
