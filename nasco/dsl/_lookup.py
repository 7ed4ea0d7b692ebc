"""The ``lookup_table`` kind: a NAS-Bench-style table (CSV or parquet) and how its columns
map to a space's cells and to named metrics."""
from __future__ import annotations

from dataclasses import dataclass

from nasco.dsl._build import spec_field as F
from nasco.dsl._errors import SpecError

__all__ = ["LookupTableSpec", "TableKey", "TableMetric", "SPLITS"]

# train / valid / test, and NB201's "valtest" (valid + test sets combined).
SPLITS = ("train", "valid", "test", "valtest")


@dataclass(frozen=True, kw_only=True)
class TableMetric:
    """One metric column: what it measures, on which data, after how much training."""

    metric: str = F(doc="the metric name queries and objectives use (accuracy, eyeriss_latency, ...)")
    direction: str = F(doc="better when larger (max) or smaller (min)", enum=("max", "min"))
    unit: str = F("", doc="unit of the values as stored ('%', 'ms', 'mJ')")
    dataset: str | None = F(None, doc="dataset the figure is measured on (c10, c100, in16)")
    split: str | None = F(None, doc="data split", enum=SPLITS)
    fidelity: int | None = F(None, doc="training epochs behind the figure (12, 200)", min=1)
    description: str = F("")


@dataclass(frozen=True, kw_only=True)
class TableKey:
    """The columns that say which cell a row holds (one or both)."""

    index: str | None = F(None, doc="column of official indices of the space")
    arch_str: str | None = F(None, doc="column of NAS-Bench-201 arch strings |op~0|+|op~0|op~1|+...")

    def _check(self, path: tuple) -> None:
        if self.index is None and self.arch_str is None:
            raise SpecError("'index: COLUMN' or 'arch_str: COLUMN' (or both)", "neither", path=path,
                            hint="name the column that identifies each row's cell")


@dataclass(frozen=True, kw_only=True)
class LookupTableSpec:
    """A table of per-cell figures: ``data`` (CSV, CSV.gz or parquet, relative to this
    file), the ``space`` its rows belong to, the ``key`` columns and the ``metrics``
    (column name -> what it holds)."""

    schema: int = F()
    kind: str = F(enum=("lookup_table",))
    name: str = F()
    description: str = F("")
    space: str = F(doc="the architecture space: built-in name or .yaml path")
    data: str = F(doc="the data file (CSV, CSV.gz, TSV or parquet), relative to this file")
    provenance: str = F("", doc="where the figures come from")
    key: TableKey = F(doc="the columns that identify each row's cell")
    metrics: dict[str, TableMetric] = F(doc="column name -> metric")

    def _check(self, path: tuple) -> None:
        if not self.metrics:
            raise SpecError("at least one metric column", "none", path=path + ("metrics",))
        keys = {self.key.index, self.key.arch_str} - {None}
        for col in self.metrics:
            if col in keys:
                raise SpecError("metric columns other than the key columns", f"'{col}'",
                                path=path + ("metrics", col))
        seen: dict[tuple, str] = {}
        for col, m in self.metrics.items():
            sig = (m.metric, m.dataset, m.split, m.fidelity)
            if sig in seen:
                raise SpecError("one column per (metric, dataset, split, fidelity)",
                                f"'{col}' and '{seen[sig]}' both {sig}", path=path + ("metrics", col),
                                hint="set dataset, split or fidelity to tell them apart")
            seen[sig] = col
        dirs: dict[str, str] = {}
        for col, m in self.metrics.items():
            if dirs.setdefault(m.metric, m.direction) != m.direction:
                raise SpecError(f"direction '{dirs[m.metric]}' like the other '{m.metric}' columns",
                                f"'{m.direction}'", path=path + ("metrics", col, "direction"))
