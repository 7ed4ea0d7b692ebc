"""Short texts for a candidate: its objectives in display units, its architecture, its
accelerator; shared by the HTML report, the markdown summary and ``nasco show``."""
from __future__ import annotations

import math
from typing import Any, Sequence

from nasco.core import Objective
from nasco.pareto import display_unit

__all__ = ["accelerator_text", "arch_text", "cell_text", "objectives_text", "value_text"]


def value_text(value: float, objective: Objective) -> str:
    """``value`` (base units) in the objective's display unit, 4 significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    unit, factor = display_unit(objective)
    return f"{factor * float(value):.4g} {unit}".rstrip()


def arch_text(arch: dict[str, Any]) -> str:
    """The architecture's hyperparameters as ``key=value`` pairs (tasks joined with ' | ')."""
    if "tasks" in arch:
        return " | ".join(arch_text(t) for t in arch["tasks"])
    hp = arch.get("hp") or {}
    return ", ".join(f"{k}={v}" for k, v in hp.items()) or "no hyperparameters"


def cell_text(arch: dict[str, Any]) -> list[str]:
    """One line per cell of the genotype: ``normal: op<-input, ...`` (darts) or the dense
    cell's edge ops in order."""
    cell = arch.get("cell") or {}
    if "edges" in cell:
        return ["cell: " + ", ".join(str(op) for op in cell["edges"])]
    return [f"{kind}: " + ", ".join(f"{op}<-{j}" for op, j in edges) for kind, edges in cell.items()]


def accelerator_text(template: Any, hw: dict[str, Any]) -> str:
    """One line for a resolved template: name, dataflow, PE array, clock, buffers, DRAM
    bandwidth; the genotype as ``key=value`` when there is no single template."""
    if template is None:
        return ", ".join(f"{k}={v}" for k, v in hw.items()) if hw else "no accelerator"
    b = template.buffers
    kb = [f"{name} {getattr(b, name + '_kb'):g}" for name in ("ifmap", "filter", "ofmap", "membrane")
          if getattr(b, name + "_kb", None) is not None]
    return (f"{template.name}, {template.dataflow}, {template.pe_array.rows}x{template.pe_array.cols} PEs "
            f"({template.pe.type}), {template.clock_mhz:g} MHz, buffers {' / '.join(kb)} KB, DRAM "
            f"{template.bandwidth.dram_bytes_per_cycle:g} B/cycle")


def objectives_text(values: dict[str, float], objectives: Sequence[Objective]) -> str:
    return ", ".join(f"{o.name} {value_text(values.get(o.name), o)}" for o in objectives)
