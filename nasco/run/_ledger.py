"""The ledger: one durable JSON line per evaluation, the single source of truth of a run.

A row is written with one ``write`` of a whole line, then flushed and fsync'ed before
the driver moves on, so after a crash the file holds every finished evaluation and at
most one torn (partial) last line. Readers skip that line with a warning, and the next
``append`` cuts it off, so the file is again a clean sequence of lines.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

__all__ = ["LEDGER_COLUMNS", "Ledger", "LedgerError", "to_json_line"]

FILENAME = "ledger.jsonl"
# The flat columns of to_frame(), before the objective columns; arch, hw, violations and
# metrics follow the objectives, as canonical JSON strings.
LEDGER_COLUMNS = ("seq", "id", "status", "reason", "seed", "seconds", "started_at", "finished_at")
_JSON_COLUMNS = ("arch", "hw", "violations", "metrics")


class LedgerError(ValueError):
    """A ledger line other than the last one cannot be read."""


def _default(obj: Any) -> Any:
    # Evaluators often put numpy scalars or small arrays in metrics; store their values.
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (Path, os.PathLike)):
        return os.fspath(obj)
    raise TypeError(f"ledger rows must be JSON data; {type(obj).__name__} is not ({obj!r:.60})")


def to_json_line(row: dict[str, Any]) -> str:
    """The row as one line of JSON (no newline inside; NaN/inf written as Python's json does)."""
    return json.dumps(row, default=_default, ensure_ascii=True)


class Ledger:
    """An append-only JSON Lines file.

    ``path`` is the file, or an existing directory, in which case the file is
    ``path/ledger.jsonl``. Nothing is created until the first :meth:`append`.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        path = Path(path)
        self.path = path / FILENAME if path.is_dir() else path
        self._clean = False  # set once the tail has been checked (and cut) by append()

    # ---------------------------------------------------------------- reading
    def _scan(self) -> tuple[list[dict[str, Any]], int, bytes]:
        """(rows, byte offset just after the last good line, torn tail bytes)."""
        if not self.path.exists():
            return [], 0, b""
        data = self.path.read_bytes()
        rows: list[dict[str, Any]] = []
        pos = 0
        lines = data.split(b"\n")
        for i, raw in enumerate(lines):
            last = i == len(lines) - 1
            if last and raw == b"":  # the file ends with a newline: nothing torn
                break
            try:
                if not raw.strip():
                    raise ValueError("empty line")
                row = json.loads(raw)
                if not isinstance(row, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                # Only the final line can be torn by a crash (a write cut short, or a block of
                # zeros some file systems leave); anything earlier is real corruption.
                tail_is_last = last or all(not x.strip(b"\x00 \t\r") for x in lines[i + 1:])
                if tail_is_last:
                    return rows, pos, data[pos:]
                raise LedgerError(f"{self.path}:{i + 1}: cannot read ledger line ({exc}); "
                                  f"the file was edited or corrupted, not torn by a crash") from None
            if last:  # parsed, but no newline after it: the write may have been cut short
                return rows, pos, data[pos:]
            rows.append(row)
            pos += len(raw) + 1
        return rows, pos, b""

    def rows(self) -> list[dict[str, Any]]:
        """All complete rows, in order. A torn last line is skipped with a warning."""
        rows, _, torn = self._scan()
        if torn:
            warnings.warn(f"{self.path}: ignoring a torn last line ({len(torn)} bytes) left by an "
                          f"interrupted write; it is removed at the next append",
                          RuntimeWarning, stacklevel=2)
        return rows

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows())

    def __len__(self) -> int:
        return len(self.rows())

    # ---------------------------------------------------------------- writing
    def _cut_torn_tail(self) -> None:
        _, good_end, torn = self._scan()
        if torn:
            warnings.warn(f"{self.path}: removing a torn last line ({len(torn)} bytes) left by an "
                          f"interrupted write", RuntimeWarning, stacklevel=3)
            with open(self.path, "r+b") as fh:
                fh.truncate(good_end)
                fh.flush()
                os.fsync(fh.fileno())
        self._clean = True

    def append(self, row: dict[str, Any]) -> None:
        """Write ``row`` as one line, then flush and fsync it to disk."""
        self.extend([row])

    def extend(self, rows: Sequence[dict[str, Any]]) -> None:
        """Write ``rows`` (one line each) with one write and one fsync: rows that arrive
        together (a batch of cheap evaluations) cost one disk flush, not one each."""
        if not rows:
            return
        line = "".join(to_json_line(row) + "\n" for row in rows).encode("ascii")
        if not self._clean:
            self._cut_torn_tail()
        new_file = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        if new_file:
            _fsync_dir(self.path.parent)

    # ---------------------------------------------------------------- frames
    def to_frame(self, objectives: Sequence[str] | None = None) -> pd.DataFrame:
        """One flat row per evaluation.

        Columns: ``seq, id, status, reason, seed, seconds, started_at, finished_at``, one
        column per objective (``objectives``, else every name seen, in order of first
        appearance; NaN where a row has none), then ``arch, hw, violations, metrics`` as
        JSON strings with sorted keys.
        """
        rows = self.rows()
        names = list(objectives) if objectives is not None else _seen_objectives(rows)
        flat = []
        for r in rows:
            d: dict[str, Any] = {c: r.get(c) for c in LEDGER_COLUMNS}
            objs = r.get("objectives") or {}
            for o in names:
                v = objs.get(o)
                d[o] = math.nan if v is None else v
            for c in _JSON_COLUMNS:
                d[c] = json.dumps(r.get(c) if r.get(c) is not None else {}, sort_keys=True,
                                  separators=(",", ":"), default=_default)
            flat.append(d)
        columns = [*LEDGER_COLUMNS, *names, *_JSON_COLUMNS]
        df = pd.DataFrame(flat, columns=columns)
        for o in names:
            df[o] = pd.to_numeric(df[o], errors="coerce").astype(float)
        return df


def _seen_objectives(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for r in rows:
        for o in r.get("objectives") or {}:
            seen.setdefault(o, None)
    return list(seen)


def _fsync_dir(path: Path) -> None:
    # A new file's directory entry is durable only once the directory is synced (POSIX).
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
