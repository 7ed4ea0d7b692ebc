"""The table evaluator: a candidate's figures looked up in a NAS-Bench-style table.

The NAS-Bench-201 protocol (Dong & Yang, ICLR 2020): the searcher sees validation
accuracy only (``split='valid'`` at the search fidelity, 12 or 200 epochs); the test
accuracy of what it returns, at the report fidelity (200 epochs), is recorded beside it
in the ledger's metrics (``test_accuracy``) for reports, never told to the searcher.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from nasco.core import EvaluatorBase, Objective, Result
from nasco.space import Candidate

__all__ = ["TableEvaluator"]


class TableEvaluator(EvaluatorBase):
    """Scores candidates of a table's space by lookup; one evaluation is one query.

    ``accuracy`` is the table's ``accuracy`` metric on (dataset, split, fidelity), as a
    fraction (tables in % are divided by 100, like the trained evaluator's accuracy); any
    other objective is a table metric by name (``eyeriss_latency``), in the table's unit,
    with the direction the table declares.
    """

    cheap = True
    report_metrics = ("valid_accuracy", "test_accuracy")

    def __init__(self, table: Any, objectives: tuple[str, ...] | list[str], *, dataset: str = "c10",
                 fidelity: int = 200, split: str = "valid", report_fidelity: int = 200) -> None:
        self.table = table
        self.objectives = tuple(objectives)
        self.dataset, self.fidelity, self.split, self.report_fidelity = dataset, fidelity, split, report_fidelity
        self.columns: dict[str, str] = {}
        self.scale: dict[str, float] = {}
        for o in self.objectives:
            if o == "accuracy":
                col = table.column_for("accuracy", dataset=dataset, split=split, fidelity=fidelity)
            else:
                matches = [c for c, m in table.spec.metrics.items() if m.metric == o]
                on_data = [c for c in matches if table.spec.metrics[c].dataset in (None, dataset)]
                col = table.column_for(o, dataset=dataset if len(on_data) == 1 and len(matches) > 1 else None)
            m = table.spec.metrics[col]
            self.columns[o] = col
            self.scale[o] = 0.01 if (o == "accuracy" and m.unit == "%") else 1.0
        self.valid_column = table.column_for("accuracy", dataset=dataset, split=split, fidelity=fidelity)
        self.test_column = table.column_for("accuracy", dataset=dataset, split="test", fidelity=report_fidelity)
        acc = table.spec.metrics[self.test_column]
        self._acc_scale = 0.01 if acc.unit == "%" else 1.0

    @property
    def objective_defs(self) -> tuple[Objective, ...]:
        """The objectives with the table's directions and units, bounded by the best and
        worst value of their column over the whole table (fixed for a table, so a
        hypervolume on them compares across runs)."""
        out = []
        for o, col in self.columns.items():
            m = self.table.spec.metrics[col]
            values = np.asarray(self.table.columns[col], dtype=float) * self.scale[o]
            lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
            best, worst = (hi, lo) if m.direction == "max" else (lo, hi)
            unit = "fraction" if self.scale[o] != 1.0 else m.unit
            out.append(Objective(o, m.direction, unit, ideal=best, bound=worst,
                                 description=f"table '{self.table.name}' column {col}"))
        return tuple(out)

    def describe(self) -> dict[str, Any]:
        return {"table": self.table.name, "table_file": str(self.table.where.spec_file),
                "columns": dict(self.columns), "valid_column": self.valid_column,
                "test_column": self.test_column, "dataset": self.dataset, "split": self.split,
                "fidelity": self.fidelity, "report_fidelity": self.report_fidelity}

    def evaluate(self, candidate: Candidate, seed: int) -> Result:
        try:
            row = self.table.row_of(candidate)
        except KeyError as exc:
            return Result.failed(f"KeyError: {exc.args[0]}")
        cols = self.table.columns
        raw = {c: float(cols[c][row]) for c in {*self.columns.values(), self.valid_column, self.test_column}}
        missing = sorted(c for c, v in raw.items() if math.isnan(v))
        if missing:
            return Result.failed(f"table '{self.table.name}' has no value for {', '.join(missing)} at row {row}",
                                 **raw)
        objectives = {o: raw[c] * self.scale[o] for o, c in self.columns.items()}
        metrics: dict[str, Any] = {
            **raw, "table": self.table.name, "index": int(self.table.index[row]),
            "valid_accuracy": raw[self.valid_column] * self._acc_scale,
            "test_accuracy": raw[self.test_column] * self._acc_scale,
        }
        return Result("ok", objectives, metrics)
