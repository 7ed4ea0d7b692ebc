"""The values a metric column may hold, from the metric and unit its table declares.

Every value must be finite (a missing value is an empty cell, never inf). An accuracy lies in
[0, 100] when its unit is '%' and in [0, 1] otherwise (the table evaluator reads a '%' column
as percent and any other as a fraction). Latency, energy, power, size and operation counts
are never negative: a metric named with one of those words, or measured in one of those
units, must be >= 0. Any other metric (a score, a correlation) only has to be finite.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from nasco.dsl import TableMetric

__all__ = ["Bounds", "bounds_of"]

_ACCURACY = frozenset({"accuracy", "acc"})
# Words of a metric name (split at '_', '-', ...) that make it a non-negative quantity.
_NON_NEGATIVE_WORDS = frozenset({"latency", "energy", "power", "params", "flops", "macs", "area", "memory",
                                 "time", "size", "throughput", "cycles"})
# Units of time, energy, power, storage, area and operation counts, compared in lower case.
_NON_NEGATIVE_UNITS = frozenset({"s", "ms", "us", "µs", "ns", "j", "mj", "uj", "µj", "nj", "pj", "w", "mw",
                                 "uw", "µw", "b", "kb", "mb", "gb", "kib", "mib", "gib", "mm2", "um2", "µm2",
                                 "flops", "mflops", "gflops", "tflops", "macs", "params", "cycles"})


@dataclass(frozen=True)
class Bounds:
    """Closed interval [lo, hi] of a column's values, and the reason for it."""

    lo: float
    hi: float
    why: str

    def describe(self) -> str:
        if self.lo == -math.inf and self.hi == math.inf:
            return "a finite number"
        if self.hi == math.inf:
            return f"a finite number >= {self.lo:g} ({self.why})"
        return f"a number in [{self.lo:g}, {self.hi:g}] ({self.why})"


def bounds_of(metric: TableMetric) -> Bounds:
    """The interval a column declared as ``metric`` must keep its values in."""
    words = set(re.split(r"[^0-9a-z]+", metric.metric.lower()))
    unit = metric.unit.strip()
    if words & _ACCURACY:
        if unit == "%":
            return Bounds(0.0, 100.0, "an accuracy in %")
        return Bounds(0.0, 1.0, "an accuracy as a fraction, its unit not being '%'")
    if words & _NON_NEGATIVE_WORDS:
        return Bounds(0.0, math.inf, f"'{metric.metric}' is never negative")
    if unit.lower() in _NON_NEGATIVE_UNITS:
        return Bounds(0.0, math.inf, f"a quantity in {unit} is never negative")
    return Bounds(-math.inf, math.inf, "")
