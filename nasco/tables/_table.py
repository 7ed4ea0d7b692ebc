"""Lookup tables: a NAS-Bench-style table held as numpy columns, keyed by official index.

``load_table('nb201')`` reads the ``lookup_table`` DSL file, then either the parquet cache
built from it before (pyarrow only: no pandas on this path, which keeps a cold load fast
and small) or, the first time, the data file itself: parsed with pandas, checked row by
row against the space, and written to the cache. Every check runs before anything is
cached or returned, so a faulty file is never half-loaded: a row with more or fewer fields
than the header, a key that is not a cell of the space, and a metric value that is not
finite or lies outside its metric's range (see ``nasco.tables._bounds``) are each a
:class:`TableError`. A cache is served only when its recorded source hash and key match
the data and DSL files (see ``nasco.tables._cache``); any other is rebuilt with a warning.
"""
from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nasco.dsl import LookupTableSpec, SpecError, builtin_dir, find_file, load_file
from nasco.dsl._errors import close_matches
from nasco.tables._bounds import bounds_of
from nasco.tables._cache import (
    atomic_write_parquet,
    cache_dir,
    cache_key,
    source_digest,
    stamp,
    stamp_mismatch,
)
from nasco.tables._errors import TableError
from nasco.tables._source import Frame, known_format, raw_cell, read_frame, read_header

__all__ = ["STATS", "Table", "find_table", "load_table"]

log = logging.getLogger("nasco.tables")

# Counters for tests and benchmarks: data files parsed, cache files read.
STATS = {"parsed": 0, "cache_hits": 0}

_INDEX = "__index__"   # official index, int64, ascending
_ID = "__id__"         # canonical candidate id, string


def find_table(name_or_path: str | Path) -> Path:
    """A built-in table (``nb201`` or ``nb201_table`` -> search_spaces/nb201_table.yaml) or a DSL path."""
    text = str(name_or_path)
    if "/" not in text and not text.endswith((".yaml", ".yml")) and not Path(text).is_file():
        p = builtin_dir() / f"{text}_table.yaml"
        if p.is_file():
            return p
    return find_file(text, what="lookup table", kind="lookup_table")


@dataclass(frozen=True)
class _Where:
    spec_file: Path
    source: Path
    space_file: Path


class Table:
    """A loaded lookup table: one float64 numpy array per metric column, rows in
    ascending official index. Query with :meth:`query`; see :meth:`info`."""

    def __init__(self, spec: LookupTableSpec, columns: dict[str, np.ndarray], index: np.ndarray,
                 ids: Any, where: _Where, cache_path: Path | None) -> None:
        self.spec = spec
        self.name = spec.name
        self.columns = columns
        self.index = index
        self._ids = ids                       # pyarrow array or list of str
        self._id_row: dict[str, int] | None = None
        self._arch_row: dict[str, int] | None = None
        self.where = where
        self.cache_path = cache_path
        n = int(index.max()) + 1 if len(index) else 0
        self._row_of = np.full(n, -1, dtype=np.int64)
        self._row_of[index] = np.arange(len(index), dtype=np.int64)

    # ------------------------------------------------------------------ naming
    def __len__(self) -> int:
        return len(self.index)

    @property
    def metric_names(self) -> list[str]:
        return list(dict.fromkeys(m.metric for m in self.spec.metrics.values()))

    def direction(self, metric: str) -> str:
        for m in self.spec.metrics.values():
            if m.metric == metric:
                return m.direction
        raise self._unknown_metric(metric)

    def _unknown_metric(self, metric: str) -> TableError:
        known = self.metric_names + list(self.spec.metrics)
        return TableError(f"no metric or column '{metric}'", file=str(self.where.spec_file),
                          hint=close_matches(metric, known) or "metrics: " + ", ".join(self.metric_names))

    def column_for(self, metric: str, *, dataset: str | None = None, split: str | None = None,
                   fidelity: int | None = None) -> str:
        """The column holding ``metric`` on (dataset, split, fidelity); a column name works too.

        Criteria left None match anything; the match must be unique.
        """
        if metric in self.spec.metrics and metric not in self.metric_names:
            return metric
        cols = [c for c, m in self.spec.metrics.items() if m.metric == metric]
        if not cols:
            raise self._unknown_metric(metric)
        sel = [c for c in cols
               if all(want is None or getattr(self.spec.metrics[c], attr) == want
                      for attr, want in (("dataset", dataset), ("split", split), ("fidelity", fidelity)))]
        asked = ", ".join(f"{k}={v}" for k, v in (("dataset", dataset), ("split", split), ("fidelity", fidelity))
                          if v is not None) or "no dataset, split or fidelity"
        if len(sel) == 1:
            return sel[0]
        opts = "; ".join(f"{c} ({self._describe(c)})" for c in (sel or cols))
        if not sel:
            raise TableError(f"no '{metric}' column for {asked}", file=str(self.where.spec_file),
                             hint=f"columns: {opts}")
        raise TableError(f"'{metric}' with {asked} matches {len(sel)} columns", file=str(self.where.spec_file),
                         hint=f"give dataset, split and fidelity (or a column name): {opts}")

    def _describe(self, col: str) -> str:
        m = self.spec.metrics[col]
        parts = [f"{k}={v}" for k, v in (("dataset", m.dataset), ("split", m.split), ("fidelity", m.fidelity))
                 if v is not None]
        return ", ".join(parts + ([f"unit={m.unit}"] if m.unit else [])) or "-"

    # ------------------------------------------------------------------ rows
    def rows(self, keys: Any) -> np.ndarray:
        """Row numbers of official indices (ints), candidate ids or NB201 arch strings."""
        arr = np.asarray(keys)
        if arr.dtype.kind in "iu":
            idx = arr.astype(np.int64, copy=False)
            n = len(self._row_of)
            bad = (idx < 0) | (idx >= n)
            rows = self._row_of[np.where(bad, 0, idx)] if n else np.full(idx.shape, -1)
            rows = np.where(bad, -1, rows)
        elif arr.dtype.kind in "UO":
            rows = np.array([self._row_of_text(str(k)) for k in arr.ravel()], dtype=np.int64).reshape(arr.shape)
        else:
            raise TypeError(f"table keys are official indices (int) or candidate ids (str), got {arr.dtype}")
        if (rows < 0).any():
            first = arr.ravel()[int(np.argmax((rows < 0).ravel()))]
            if arr.dtype.kind in "iu":
                raise KeyError(f"table '{self.name}' has no row for index {int(first)}; its official indices "
                               f"run 0..{len(self._row_of) - 1}")
            what = "arch string" if str(first).startswith("|") else "candidate id"
            raise KeyError(f"table '{self.name}' has no row for {what} '{first}'")
        return rows

    def _row_of_text(self, key: str) -> int:
        if key.startswith("|"):
            if self._arch_row is None:
                from nasco.space._nb201 import official_index_table
                idx = official_index_table(str(self._index_file()))
                self._arch_row = {s: int(self._row_of[i]) for s, i in idx.items()
                                  if i < len(self._row_of) and self._row_of[i] >= 0}
            return self._arch_row.get(key, -1)
        if self._id_row is None:
            ids = self._ids.to_pylist() if hasattr(self._ids, "to_pylist") else list(self._ids)
            self._id_row = {s: i for i, s in enumerate(ids)}
        return self._id_row.get(key, -1)

    def _index_file(self) -> Path:
        space = load_file(self.where.space_file, kind="arch_space")
        return find_file(space.official_index, relative_to=self.where.space_file.parent, what="index table")

    def row_of(self, candidate: Any) -> int:
        """The row of a Candidate (its official index when it has one, else its id)."""
        arch = getattr(candidate, "arch", None) or {}
        i = arch.get("index") if isinstance(arch, dict) else None
        return int(self.rows(np.int64(i) if i is not None else np.str_(candidate.id)))

    # ------------------------------------------------------------------ query
    def query(self, keys: Any, metric: str, *, dataset: str | None = None, split: str | None = None,
              fidelity: int | None = None) -> Any:
        """Values of ``metric`` for official indices, candidate ids or arch strings.

        A scalar key gives a float, an array of keys an array (numpy take: vectorised).
        """
        col = self.columns[self.column_for(metric, dataset=dataset, split=split, fidelity=fidelity)]
        rows = self.rows(keys)
        out = col.take(rows)
        return float(out) if np.ndim(out) == 0 else out

    def ids(self) -> list[str]:
        return self._ids.to_pylist() if hasattr(self._ids, "to_pylist") else list(self._ids)

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame({"index": self.index, "id": self.ids(), **self.columns})

    def info(self) -> dict[str, Any]:
        cols = []
        for c, m in self.spec.metrics.items():
            v = self.columns[c]
            finite = v[np.isfinite(v)]
            cols.append({"column": c, "metric": m.metric, "dataset": m.dataset, "split": m.split,
                         "fidelity": m.fidelity, "unit": m.unit, "direction": m.direction,
                         "missing": int(len(v) - len(finite)),
                         "min": float(finite.min()) if len(finite) else None,
                         "max": float(finite.max()) if len(finite) else None})
        return {"name": self.name, "description": self.spec.description, "file": str(self.where.spec_file),
                "source": str(self.where.source), "space": self.spec.space, "provenance": self.spec.provenance,
                "rows": len(self), "cache": str(self.cache_path) if self.cache_path else None,
                "metrics": self.metric_names, "columns": cols}


# ---------------------------------------------------------------------- loading
def load_table(name_or_path: str | Path, *, cache: Path | str | None = None, rebuild: bool = False) -> Table:
    """Load a table by built-in name or DSL path, from its cache when one is current.

    ``cache``: the cache folder (default :func:`nasco.tables.cache_dir`). Raises
    :class:`TableError` (or SpecError for the DSL file) on any fault.
    """
    spec_file = find_table(name_or_path)
    spec = load_file(spec_file, kind="lookup_table")
    source = spec_file.parent / spec.data
    if not source.is_file():
        raise TableError(f"data '{spec.data}': no such file ({source})", file=str(spec_file))
    if not known_format(source):
        raise TableError(f"data '{spec.data}': not a table file, the format of '{source.name}' is unknown "
                         f"({source})", file=str(spec_file), hint="use .csv, .csv.gz, .tsv or .parquet")
    try:
        space_file = find_file(spec.space, relative_to=spec_file.parent, what="architecture space",
                               kind="arch_space")
    except SpecError as exc:
        raise TableError(f"space '{spec.space}': {exc}", file=str(spec_file)) from None
    where = _Where(spec_file, source, space_file)
    folder = Path(cache) if cache is not None else cache_dir()
    digest = source_digest(source)
    key = cache_key(spec_file, space_file, digest, _index_file_of(space_file))
    path = folder / f"{spec.name}-{key[:20]}.parquet"
    if path.is_file() and not rebuild:
        try:
            table = _read_cache(spec, path, where, key, digest)
            STATS["cache_hits"] += 1
            return table
        except _ForeignCache as exc:
            warnings.warn(f"{path}: not the cache of {spec_file.name}: {exc}; rebuilding it from {source}",
                          RuntimeWarning, stacklevel=2)
        except Exception as exc:  # noqa: BLE001 - our own cache: rebuild it, and say so
            warnings.warn(f"{path}: unreadable cache ({type(exc).__name__}: {exc}); rebuilding it from "
                          f"{source}", RuntimeWarning, stacklevel=2)
    index, ids, columns = _parse_source(spec, where)
    table = Table(spec, columns, index, ids, where, None)
    try:
        _write_cache(table, path, stamp(key, digest))
        table.cache_path = path
    except OSError as exc:
        warnings.warn(f"{path}: cannot write the table cache ({exc}); the table stays in memory only",
                      RuntimeWarning, stacklevel=2)
    return table


class _ForeignCache(ValueError):
    """A readable cache file that was built from other data or for another table."""


def _read_cache(spec: LookupTableSpec, path: Path, where: _Where, key: str, digest: str) -> Table:
    import pyarrow.parquet as pq

    # The footer alone first: a foreign cache is never read. (Holding the memory-mapped file
    # open across both steps would add its size to the load's peak RSS.)
    why = stamp_mismatch(pq.read_schema(path).metadata, key, digest)
    if why:
        raise _ForeignCache(why)
    pa_table = pq.ParquetFile(path, memory_map=True, pre_buffer=False).read(use_threads=False)
    names = set(pa_table.column_names)
    missing = ({_INDEX, _ID} | set(spec.metrics)) - names
    if missing:
        raise ValueError(f"cache lacks columns {sorted(missing)}")
    columns = {c: _numpy(pa_table.column(c), np.float64) for c in spec.metrics}
    index = _numpy(pa_table.column(_INDEX), np.int64)
    if len(index) and (index[0] < 0 or (np.diff(index) <= 0).any()):
        raise ValueError("cache index is not ascending and non-negative")
    return Table(spec, columns, index, pa_table.column(_ID), where, path)


def _numpy(col: Any, dtype: Any) -> np.ndarray:
    """A null-free numeric arrow column as numpy, without pyarrow's pandas shim (importing
    pandas would triple the time and memory of a cold load)."""
    arr = col.combine_chunks() if hasattr(col, "combine_chunks") else col
    if arr.null_count:
        raise ValueError(f"cache column holds {arr.null_count} nulls")
    dt = np.dtype(dtype)
    out = np.frombuffer(arr.buffers()[1], dtype=dt, count=len(arr), offset=arr.offset * dt.itemsize)
    out.setflags(write=False)
    return out


def _index_file_of(space_file: Path) -> Path | None:
    """The official index file of the space in ``space_file``; None when there is none to
    find (parsing the table then says what is wrong)."""
    try:
        space = load_file(space_file, kind="arch_space")
        if not getattr(space, "official_index", None):
            return None
        return find_file(space.official_index, relative_to=space_file.parent, what="index table")
    except SpecError:
        return None


def _write_cache(table: Table, path: Path, metadata: dict[bytes, bytes]) -> None:
    import pyarrow as pa

    data = {_INDEX: pa.array(table.index, pa.int64()), _ID: pa.array(table.ids(), pa.string())}
    data.update({c: pa.array(v, pa.float64()) for c, v in table.columns.items()})
    atomic_write_parquet(pa.table(data), path, metadata)


def _parse_source(spec: LookupTableSpec, where: _Where) -> tuple[np.ndarray, list[str], dict[str, np.ndarray]]:
    import pandas as pd

    from nasco.space import SearchSpace
    from nasco.space._nb201 import arch_str_ops, index_table_of

    file = str(where.source)
    # The space and the declared columns first: a table that cannot match its data fails
    # before the data file is parsed.
    try:
        arch = load_file(where.space_file, kind="arch_space")
    except SpecError as exc:
        raise TableError(f"space '{spec.space}': {exc}", file=str(where.spec_file)) from None
    if not getattr(arch, "official_index", None):
        raise TableError(f"space: '{arch.name}' has no official index; tables key their rows by it",
                         file=str(where.spec_file), hint="use a space with official_index, such as nb201")
    header = read_header(where.source)
    if header is not None:
        _check_columns(spec, header, where)
    frame = read_frame(where.source, file)
    df = frame.data
    STATS["parsed"] += 1
    if len(df) == 0:
        raise TableError("no data rows", file=file)
    _check_columns(spec, [str(c) for c in df.columns], where)
    official = index_table_of(arch)     # arch_str -> index
    index = _key_index(spec, df, official, arch.name, file)
    order = np.argsort(index, kind="stable")
    sorted_idx = index[order]
    dup = np.flatnonzero(sorted_idx[1:] == sorted_idx[:-1])
    if len(dup):
        k = sorted_idx[dup[0]]
        rows = np.flatnonzero(index == k)[:2] + 1
        raise TableError(f"duplicate key: index {k} appears in rows {rows[0]} and {rows[1]}", file=file)
    columns: dict[str, np.ndarray] = {}
    for c in spec.metrics:
        s = df[c]
        v = pd.to_numeric(s, errors="coerce")
        bad = v.isna() & s.notna()
        if bad.any():
            r = int(np.argmax(bad.to_numpy()))
            raise TableError(f"row {r + 1}: column '{c}' holds {_plain(s.iloc[r])!r}, not a number",
                             file=file)
        values = v.to_numpy(dtype=np.float64, na_value=np.nan)
        _check_bounds(values, c, spec, frame, int(df.columns.get_loc(c)), file)
        columns[c] = values[order]
    space = SearchSpace(arch, None)
    by_index = {i: a for a, i in official.items()}
    ids = [space.make({"edges": list(arch_str_ops(by_index[int(i)]))}).id for i in sorted_idx]
    log.info("%s: parsed %d rows", file, len(sorted_idx))
    return sorted_idx, ids, columns


def _key_index(spec: LookupTableSpec, df: Any, official: dict[str, int], space_name: str,
               file: str) -> np.ndarray:
    """Each data row's official cell index, from the key columns (index, arch string or
    both, which must agree); a TableError names the first row that does not map."""
    import pandas as pd

    n_cells = len(official)
    index: np.ndarray | None = None
    if spec.key.index:
        s = df[spec.key.index]
        _no_nan(s, spec.key.index, file)
        v = pd.to_numeric(s, errors="coerce")
        bad = v.isna() | (v != np.floor(v))
        if bad.any():
            r = int(np.argmax(bad.to_numpy()))
            raise TableError(f"row {r + 1}: column '{spec.key.index}' holds {_plain(s.iloc[r])!r}, not an "
                             "integer index", file=file)
        index = v.to_numpy(dtype=np.int64)
        out = (index < 0) | (index >= n_cells)
        if out.any():
            r = int(np.argmax(out))
            raise TableError(f"row {r + 1}: index {index[r]} does not map to space '{space_name}' "
                             f"(official indices 0..{n_cells - 1})", file=file)
    if spec.key.arch_str:
        s = df[spec.key.arch_str]
        _no_nan(s, spec.key.arch_str, file)
        strs = s.astype(str).to_numpy()
        from_str = np.fromiter((official.get(a, -1) for a in strs), dtype=np.int64, count=len(strs))
        if (from_str < 0).any():
            r = int(np.argmax(from_str < 0))
            raise TableError(f"row {r + 1}: arch_str '{strs[r]}' is not a cell of space '{space_name}'",
                             file=file)
        if index is not None and (from_str != index).any():
            r = int(np.argmax(from_str != index))
            raise TableError(f"row {r + 1}: index {index[r]} but arch_str '{strs[r]}' is the cell of index "
                             f"{from_str[r]}", file=file, hint="the key columns disagree; check the join")
        index = from_str
    assert index is not None  # the DSL requires at least one key column
    return index


def _check_columns(spec: LookupTableSpec, columns: list[str], where: _Where) -> None:
    """A TableError naming the DSL file and key of the first declared column the data lacks."""
    declared = [(("key", "index"), spec.key.index), (("key", "arch_str"), spec.key.arch_str)]
    declared += [(("metrics", c), c) for c in spec.metrics]
    for path, col in declared:
        if col and col not in columns:
            raise TableError(f"{'.'.join(path)}: column '{col}' is not in the data file {where.source}",
                             file=str(where.spec_file),
                             hint=close_matches(col, columns) or f"its columns: {', '.join(columns[:12])}")


def _plain(value: Any) -> Any:
    """A cell as an error shows it: numpy scalars as the Python value (15, not np.int64(15))."""
    return value.item() if isinstance(value, np.generic) else value


def _no_nan(s, col: str, file: str) -> None:
    na = s.isna().to_numpy()
    if na.any():
        raise TableError(f"row {int(np.argmax(na)) + 1}: key column '{col}' is empty (NaN) in {int(na.sum())} "
                         f"row{'s' if na.sum() > 1 else ''}", file=file)


def _check_bounds(values: np.ndarray, col: str, spec: LookupTableSpec, frame: Frame, position: int,
                  file: str) -> None:
    """Raise TableError at the first value of ``col`` that is infinite or outside its metric's
    range; NaN (an empty cell) is a missing value and passes."""
    b = bounds_of(spec.metrics[col])
    with np.errstate(invalid="ignore"):
        bad = np.isinf(values) | (values < b.lo) | (values > b.hi)
    if not bad.any():
        return
    r = int(np.argmax(bad))
    value = float(values[r])
    shown, where = repr(value), f"row {r + 1}"
    if frame.lines is not None and frame.sep is not None:
        line = int(frame.lines[r])
        where += f" (line {line})"
        text = (raw_cell(Path(file), frame.sep, line, position) or "").strip()
        if text and text.lower().lstrip("+-") not in ("inf", "infinity"):
            shown = text + (f" (read as {value!r})" if math.isinf(value) else "")
    raise TableError(f"{where}: column '{col}' holds {shown}, expected {b.describe()}", file=file,
                     hint="correct the value, or the column's unit in the table's DSL file")
