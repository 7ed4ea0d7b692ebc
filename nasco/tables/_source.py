"""A table's data file (CSV or TSV, plain or compressed, or parquet) read into a pandas frame.

pandas fills a row with fewer fields than the header with NaN, so a file cut off mid-row
would load with its last value cut short and the rest of the row missing. A delimited file is
therefore read twice: first by the csv module, which checks that every row has exactly as
many fields as the header and records each row's line number (for error messages), then by
pandas for the values. A file whose last line has no line end is read, with a warning, since
a cut inside the last field leaves a row of the right length.
"""
from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import warnings
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from nasco.tables._errors import TableError

__all__ = ["Frame", "known_format", "raw_cell", "read_frame", "read_header"]

_DELIMITED = {".csv": ",", ".tsv": "\t"}
_COMPRESSED = (".gz", ".bz2", ".xz", ".zst")


@dataclass(frozen=True)
class Frame:
    """The file's rows (``data``, a DataFrame) and, for a delimited file, the line each row
    starts on (``lines[r]`` for data row ``r``, the header being line 1); None for parquet."""

    data: Any
    lines: np.ndarray | None
    sep: str | None


def read_frame(source: Path, file: str) -> Frame:
    """Read ``source`` (CSV, TSV, optionally .gz/.bz2/.xz/.zst, or parquet); raise
    :class:`TableError` naming ``file`` if it is corrupt, truncated or has a row of the wrong length."""
    import pandas as pd

    sep = _separator(source)
    try:
        if sep is None:
            if source.name.lower().endswith((".parquet", ".pq")):
                return Frame(pd.read_parquet(source), None, None)
            raise TableError(f"data file '{source.name}': unknown format", file=file,
                             hint="use .csv, .csv.gz, .tsv or .parquet")
        lines = _row_lines(source, sep, file)
        df = pd.read_csv(source, sep=sep, dtype_backend="numpy_nullable")
    except TableError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is a corrupt or truncated file
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise TableError(f"cannot read the data file {source} ({type(exc).__name__}: {msg}); "
                         "it is corrupt, truncated or not in the format its name says", file=file) from None
    # Both readers skip blank lines, so they see the same rows; if they ever differ, rows are
    # named without their line rather than with a wrong one.
    return Frame(df, lines if len(lines) == len(df) else None, sep)


def known_format(source: Path) -> bool:
    """Whether ``source``'s name is that of a format :func:`read_frame` reads."""
    return _separator(source) is not None or source.name.lower().endswith((".parquet", ".pq"))


def read_header(source: Path) -> list[str] | None:
    """The column names of ``source``, read without its rows; None when they cannot be read
    (then :func:`read_frame` names the fault)."""
    sep = _separator(source)
    try:
        if sep is None:
            import pyarrow.parquet as pq

            return list(pq.read_schema(source).names)
        with _open_text(source) as fh:
            return next(csv.reader(fh, delimiter=sep), None)
    except Exception:  # noqa: BLE001 - a damaged file: read_frame reports it with its details
        return None


def raw_cell(source: Path, sep: str, line: int, position: int) -> str | None:
    """The text of field ``position`` of the row starting on ``line``, as the file holds it."""
    with _open_text(source) as fh:
        reader = csv.reader(fh, delimiter=sep)
        start = 1
        for row in reader:
            if start == line:
                return row[position] if position < len(row) else None
            start = reader.line_num + 1
    return None


def _separator(source: Path) -> str | None:
    name = source.name.lower()
    for ext in _COMPRESSED:
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    return next((sep for ext, sep in _DELIMITED.items() if name.endswith(ext)), None)


def _open_text(source: Path) -> IO[str]:
    name = source.name.lower()
    kw: dict[str, Any] = {"encoding": "utf-8", "newline": ""}
    if name.endswith(".gz"):
        return gzip.open(source, "rt", **kw)
    if name.endswith(".bz2"):
        return bz2.open(source, "rt", **kw)
    if name.endswith(".xz"):
        return lzma.open(source, "rt", **kw)
    if name.endswith(".zst"):
        import zstandard  # pandas reads .zst through the same package

        return io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(open(source, "rb")), **kw)
    return open(source, "rt", **kw)


class _Lines:
    """The lines of a text file, remembering the last one read."""

    def __init__(self, fh: IO[str]) -> None:
        self._fh = fh
        self.last = ""

    def __iter__(self) -> Iterator[str]:
        for line in self._fh:
            self.last = line
            yield line


def _row_lines(source: Path, sep: str, file: str) -> np.ndarray:
    """The first line of every data row; a row with more or fewer fields than the header
    raises TableError with its line, its row number and both counts."""
    out = array("q")
    with _open_text(source) as fh:
        lines = _Lines(fh)
        reader = csv.reader(lines, delimiter=sep)
        header = next(reader, None)
        if header is None:
            return np.frombuffer(out, dtype=np.int64)
        n = len(header)
        start = reader.line_num + 1
        for row in reader:
            if row:   # a blank line holds no row, for pandas as here
                if len(row) != n:
                    raise _wrong_length(file, start, len(out) + 1, len(row), n)
                out.append(start)
            start = reader.line_num + 1
    if len(out) and lines.last and not lines.last.endswith(("\n", "\r")):
        warnings.warn(f"{file}: line {out[-1]} (row {len(out)}), the last, has no line end; if the file was "
                      "cut off there, the row's last value is incomplete", RuntimeWarning, stacklevel=2)
    return np.frombuffer(out, dtype=np.int64)


def _wrong_length(file: str, line: int, row: int, found: int, expected: int) -> TableError:
    hint = ("the row is short: the file may be cut off mid-row, or the row lacks values (leave a field "
            "empty for a missing value, but keep its separator)" if found < expected else
            "a value holds the separator: quote it, or remove the extra fields")
    fields = f"{found} field{'s' if found != 1 else ''}"
    return TableError(f"line {line} (row {row}): {fields}, expected {expected} as in the header", file=file,
                      hint=hint)
