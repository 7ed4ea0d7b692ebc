"""The ledger: one durable JSON line per evaluation, the single source of truth of a run.

A row is written with one ``write`` of a whole line, then flushed and fsync'ed before
the driver moves on, so after a crash the file holds every finished evaluation and at
most one torn (partial) last line. Readers skip that line with a warning, and the next
``append`` cuts it off, so the file is again a clean sequence of lines.

Any other damage is a :class:`LedgerError` that names the file and the line: a line before
the last that is not UTF-8 JSON, a row without a non-negative integer ``seq``, a string
``id``, a known ``status``, a known ``phase`` (absent, or :data:`RETRAIN_PHASE`) and numeric
objectives (NaN is not one), and a row whose ``seq``, or whose ``id`` within its phase, an
earlier line already holds (a retrain row scores again a candidate of the search, under the
same id). The driver writes every evaluation once, so a repeated row (even a byte-identical
copy) means the file was edited or two files were joined; it is refused rather than dropped,
since which copy is right cannot be told from the file.
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

from nasco.core import STATUSES, Candidate, NascoError, member_error
from nasco.pareto import expand_pairs

__all__ = ["LEDGER_COLUMNS", "Ledger", "LedgerError", "RETRAIN_PHASE", "is_retrain", "rows_frame",
           "search_rows", "to_json_line"]

FILENAME = "ledger.jsonl"
# The ``phase`` of a row written after the search: an architecture of the front trained
# stand-alone (a search row has no ``phase``).
RETRAIN_PHASE = "retrain"
# The flat columns of to_frame(), before the objective columns; arch, hw, violations and
# metrics follow the objectives, as canonical JSON strings.
LEDGER_COLUMNS = ("seq", "id", "status", "reason", "seed", "seconds", "started_at", "finished_at")
_JSON_COLUMNS = ("arch", "hw", "violations", "metrics")


class LedgerError(NascoError):
    """A ledger line other than the last one cannot be read, or a row is not a valid,
    distinct evaluation."""


def _line_error(raw: bytes) -> str | None:
    """Why ``raw`` is not one ledger line of JSON (None: it is a JSON object)."""
    if not raw.strip():
        return "an empty line"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8: byte 0x{raw[exc.start]:02x} at column {exc.start + 1}"
    try:
        row = json.loads(text)
    except ValueError as exc:
        return f"not JSON: {exc}"
    return None if isinstance(row, dict) else f"a JSON {type(row).__name__}, expected an object"


def _row_error(row: dict[str, Any]) -> str | None:
    """Why ``row`` is not a ledger row (None: it is one)."""
    seq = row.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        return f"key 'seq': expected a non-negative integer, found {json.dumps(seq)}"
    if not isinstance(row.get("id"), str) or not row["id"]:
        return f"key 'id': expected the candidate's id (a string), found {json.dumps(row.get('id'))}"
    for key in ("objectives", "metrics", "violations"):
        if row.get(key) is not None and not isinstance(row[key], dict):
            return f"key '{key}': expected an object, found {json.dumps(row[key])[:40]}"
    if "phase" in row and row["phase"] != RETRAIN_PHASE:
        return f"key 'phase': expected '{RETRAIN_PHASE}' or no phase, found {json.dumps(row['phase'])[:40]}"
    if row.get("status") not in STATUSES:
        return f"key 'status': expected one of {', '.join(STATUSES)}, found {json.dumps(row.get('status'))}"
    for name, value in (row.get("objectives") or {}).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            return f"key 'objectives.{name}': expected a number, found {json.dumps(value)}"
    members = row.get("members")
    if members is not None:
        if not isinstance(members, list):
            return f"key 'members': expected a list, found {json.dumps(members)[:40]}"
        for i, m in enumerate(members):
            problem = member_error(m)
            if problem:
                return f"key 'members[{i}]': {problem}"
    if isinstance(row.get("arch"), dict) and isinstance(row.get("hw", {}), dict):
        content = Candidate.make(row["arch"], row.get("hw") or {}).id
        if content != row["id"]:
            return f"key 'id': {row['id']} is not the id of the row's arch and hw ({content})"
    return None


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
        # A directory named like the ledger is a damaged run directory, not a place for one.
        self.path = path / FILENAME if path.is_dir() and path.name != FILENAME else path
        self._clean = False  # set once the tail has been checked (and cut) by append()

    # ---------------------------------------------------------------- reading
    def _scan(self) -> tuple[list[dict[str, Any]], int, bytes]:
        """(rows, byte offset just after the last good line, torn tail bytes)."""
        if not self.path.exists():
            return [], 0, b""
        if not self.path.is_file():
            raise LedgerError(f"{self.path}: expected the ledger file, found a directory or another "
                              f"non-file; restore the run's ledger or choose another --out")
        data = self.path.read_bytes()
        rows: list[dict[str, Any]] = []
        seen: dict[tuple[Any, ...], int] = {}  # ("seq", seq) and ("id", phase, id) -> line number
        pos = 0
        lines = data.split(b"\n")
        for i, raw in enumerate(lines):
            last = i == len(lines) - 1
            if last and raw == b"":  # the file ends with a newline: nothing torn
                break
            why = _line_error(raw)
            if why is not None:
                # Only the final line can be torn by a crash (a write cut short, or a block of
                # zeros some file systems leave); anything earlier is real corruption.
                tail_is_last = last or all(not x.strip(b"\x00 \t\r") for x in lines[i + 1:])
                if tail_is_last:
                    return rows, pos, data[pos:]
                raise LedgerError(f"{self.path}:{i + 1}: cannot read ledger line ({why}); "
                                  f"the file was edited or corrupted, not torn by a crash; restore it or "
                                  f"remove the line") from None
            if last:  # parsed, but no newline after it: the write may have been cut short
                return rows, pos, data[pos:]
            row = json.loads(raw.decode("utf-8"))
            why = _row_error(row)
            if why is None:
                first = seen.get(("seq", row["seq"])) or seen.get(("id", row.get("phase"), row["id"]))
                if first is not None:
                    why = (f"row seq {row['seq']} (id {row['id']}) repeats line {first}: a ledger records "
                           f"each evaluation once")
            if why is not None:
                raise LedgerError(f"{self.path}:{i + 1}: {why}; the file was edited or corrupted; restore it "
                                  f"or remove the line")
            seen[("seq", row["seq"])] = seen[("id", row.get("phase"), row["id"])] = i + 1
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
    def to_frame(self, objectives: Sequence[str] | None = None, *, pairs: bool = False) -> pd.DataFrame:
        """One flat row per evaluation, or with ``pairs`` one per (architecture, accelerator)
        pair scored (:func:`nasco.pareto.expand_pairs`: a row with members is several).

        Columns: ``seq, id, status, reason, seed, seconds, started_at, finished_at``, one
        column per objective (``objectives``, else every name seen, in order of first
        appearance; NaN where a row has none), then ``arch, hw, violations, metrics`` as
        JSON strings with sorted keys; with ``pairs``, when some row has members, ``pair`` and
        ``row_id`` last (NaN for a row without members).
        """
        return rows_frame(self.rows(), objectives, pairs=pairs)


def is_retrain(row: dict[str, Any]) -> bool:
    """Whether ``row`` is a retrain row (an architecture trained stand-alone after the search)."""
    return row.get("phase") == RETRAIN_PHASE


def search_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of the search: every row but the retrain rows, in order."""
    return [r for r in rows if not is_retrain(r)]


def rows_frame(rows: Sequence[dict[str, Any]], objectives: Sequence[str] | None = None, *,
               pairs: bool = False) -> pd.DataFrame:
    """Ledger ``rows`` as :meth:`Ledger.to_frame` gives them."""
    if pairs:
        rows = expand_pairs(rows)
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
    if pairs and any("pair" in r for r in rows):
        for d, r in zip(flat, rows):
            d["pair"], d["row_id"] = r.get("pair"), r.get("row_id")
        columns += ["pair", "row_id"]
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
