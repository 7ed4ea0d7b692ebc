"""Pairwise scatter panels of a run, with its Pareto front highlighted."""
from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from nasco.core import Objective, resolve_objectives
from nasco.pareto._front import pareto_front

__all__ = ["AXIS_LABELS", "plot_front"]

# Objective -> axis label with its base unit (the units of nasco.core.BUILTIN_OBJECTIVES).
AXIS_LABELS: dict[str, str] = {
    "accuracy": "accuracy (fraction)",
    "energy": "energy [J]",
    "latency": "latency [s]",
    "area": "area [mm2]",
    "params": "parameters [count]",
    "macs": "MACs [count]",
}


def _label(name: str) -> str:
    return AXIS_LABELS.get(name, name)


def _scale(ax, axis: str, values: np.ndarray) -> None:
    # Energies and latencies of a joint space often span several decades; a linear axis
    # would squeeze the interesting (small) end of the front into one corner.
    v = values[np.isfinite(values)]
    if v.size and (v > 0).all() and v.max() / v.min() > 100:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    else:
        # Joules and seconds are small numbers: a power-of-ten offset keeps ticks short.
        ax.ticklabel_format(axis=axis, style="sci", scilimits=(-2, 4), useMathText=True)


def plot_front(df: pd.DataFrame, objectives: Sequence[str | Objective], path: str | Path) -> Path:
    """Write a PNG of every pair of objectives (natural units) and return its path.

    ``df`` is a flat ledger frame (``Ledger.to_frame()``). Ok points are grey dots,
    infeasible points that carry objective values are grey crosses, and the feasible
    front (``pareto_front``) is drawn in colour on top. With one objective the single
    panel plots it against the evaluation order (``seq``). Failed rows have no values and
    are not drawn. Uses the Agg canvas directly, so no display or pyplot state is touched.
    """
    from matplotlib.figure import Figure  # imported here: matplotlib is slow to import

    defs = resolve_objectives(list(objectives))
    objectives = [o.name for o in defs]
    path = Path(path)
    front = pareto_front(df, defs)
    have = [o for o in objectives if o in df.columns]
    ok = df[(df["status"] == "ok")] if "status" in df.columns else df.iloc[0:0]
    bad = df[(df["status"] == "infeasible")] if "status" in df.columns else df.iloc[0:0]
    if len(objectives) == 1:
        pairs = [("seq", objectives[0])]
    else:
        pairs = list(itertools.combinations(objectives, 2))
    ncols = min(3, len(pairs))
    nrows = math.ceil(len(pairs) / ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.6 * nrows), dpi=110)
    n_total = len(df)
    fig.suptitle(f"{n_total} evaluations: {len(ok)} ok, {len(bad)} infeasible; front of {len(front)}",
                 fontsize=10)
    for k, (x, y) in enumerate(pairs):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        if (x != "seq" and x not in have) or y not in have:
            ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
            continue
        ax.scatter(ok[x], ok[y], s=12, c="0.65", label="ok", zorder=1)
        bad_xy = bad[[x, y]].dropna() if len(bad) else bad
        if len(bad_xy):
            ax.scatter(bad_xy[x], bad_xy[y], s=18, marker="x", c="0.45", linewidths=0.8,
                       label="infeasible", zorder=1)
        if len(front):
            fr = front.sort_values(x)
            ax.scatter(fr[x], fr[y], s=30, c="tab:red", edgecolors="k", linewidths=0.5,
                       label="Pareto front", zorder=3)
        ax.set_xlabel("evaluation" if x == "seq" else _label(x))
        ax.set_ylabel(_label(y))
        if x != "seq":
            _scale(ax, "x", pd.to_numeric(df[x], errors="coerce").to_numpy(dtype=float))
        _scale(ax, "y", pd.to_numeric(df[y], errors="coerce").to_numpy(dtype=float))
        ax.grid(True, alpha=0.3)
        if k == 0:
            ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
