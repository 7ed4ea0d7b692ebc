"""Display units: objectives stored in base units (J, s, mm2, a fraction) shown in the
units people quote (uJ, ms, mm², %)."""
from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from nasco.core import Objective

__all__ = ["ENGINEERING_UNITS", "axis_label", "display_unit"]

# Stored unit -> (displayed unit, factor): displayed value = factor * stored value. The
# factors are exact powers of ten multiplied in (never divided by a small power of ten,
# whose float is inexact), so 2.5e-5 J shows as exactly 25.0 uJ.
ENGINEERING_UNITS: Mapping[str, tuple[str, float]] = MappingProxyType({
    "J": ("µJ", 1e6),
    "s": ("ms", 1e3),
    "mm2": ("mm²", 1.0),
    "fraction": ("%", 100.0),
    "count": ("M", 1e-6),
})


def display_unit(objective: Objective) -> tuple[str, float]:
    """``(unit, factor)`` to show ``objective`` in: an engineering unit for the base units
    of :data:`ENGINEERING_UNITS`, else the objective's own unit with factor 1 (a table's
    latency in ms stays in ms)."""
    return ENGINEERING_UNITS.get(objective.unit, (objective.unit, 1.0))


def axis_label(objective: Objective) -> str:
    """``"name [unit]"`` in the displayed unit; the bare name for a unitless objective."""
    unit, _ = display_unit(objective)
    return f"{objective.name} [{unit}]" if unit else objective.name
