"""Quantities with units in design specs and energy tables ("2 ms", "0.23 pJ")."""
from __future__ import annotations

import math
import re

from nasco.dsl._errors import SpecError, close_matches, shown

__all__ = ["UNITS", "parse_quantity"]

# SI scale of every unit the DSL understands, grouped by quantity; values are
# converted to the base unit (s, J, mm2, W) that the cost model reports.
UNITS: dict[str, dict[str, float]] = {
    "latency": {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "cycles": float("nan")},
    "energy": {"J": 1.0, "mJ": 1e-3, "uJ": 1e-6, "nJ": 1e-9, "pJ": 1e-12},
    "area": {"mm2": 1.0, "um2": 1e-6, "cm2": 100.0},
    "power": {"W": 1.0, "mW": 1e-3, "uW": 1e-6},
}

_QTY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z0-9]+)\s*$")


def parse_quantity(text: object, quantity: str, path: tuple) -> float:
    """Parse ``"2 ms"`` as 0.002 (base unit of ``quantity``); SpecError names the known units."""
    units = {k: v for k, v in UNITS[quantity].items() if v == v}  # drop NaN-scaled
    if not isinstance(text, str):
        raise SpecError(f"a {quantity} with a unit such as '2 {next(iter(units))}'", shown(text),
                        path=path, hint="quote the number and its unit: \"2 ms\"")
    m = _QTY.match(text)
    if not m:
        raise SpecError(f"'<number> <unit>' for {quantity}", shown(text), path=path,
                        hint="units: " + ", ".join(units))
    value, unit = float(m.group(1)), m.group(2)
    if unit not in units:
        raise SpecError(
            f"a {quantity} unit (" + ", ".join(units) + ")", shown(unit), path=path,
            hint=close_matches(unit, units) or "convert the value to one of these units",
        )
    if value < 0:
        raise SpecError(f"a non-negative {quantity}", shown(text), path=path)
    if not math.isfinite(value):  # e.g. '1e999 ms' reads as infinity
        raise SpecError(f"a finite {quantity}", shown(text), path=path, hint="check the exponent")
    return value * units[unit]
