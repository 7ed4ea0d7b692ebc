"""A run's best-so-far history: the normalised hypervolume of the front after each
evaluation, and the best value of an objective so far."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from nasco.core import NascoError, Objective
from nasco.pareto._front import minimisation_matrix, nondominated_mask, normalised_hypervolume
from nasco.pareto._units import axis_label, display_unit

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["best_so_far", "history_figure", "hypervolume_history", "plot_history"]

HISTORY_OBJECTIVE = "accuracy"  # the objective whose best-so-far gets a panel, when the run has it
MARKERS_UP_TO = 100  # evaluations; beyond, markers would merge into a thick line


def _in_seq_order(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values("seq", kind="stable") if "seq" in df.columns else df


def _per_evaluation(df: pd.DataFrame, series: np.ndarray) -> np.ndarray:
    """``series`` (one value per row of ``df``, in seq order) at the last row of each
    evaluation: the rows of (architecture, accelerator) pairs (:func:`nasco.pareto.expand_pairs`)
    share their evaluation's seq."""
    if "seq" not in df.columns or not df["seq"].duplicated().any():
        return series
    last = ~df["seq"].duplicated(keep="last").to_numpy()
    return series[last]


def _feasible(df: pd.DataFrame, names: list[str]) -> np.ndarray:
    """True for ok rows that carry every named value (the rows a front is made of)."""
    if "status" not in df.columns or any(n not in df.columns for n in names):
        return np.zeros(len(df), dtype=bool)
    return (df["status"] == "ok").to_numpy() & df[names].notna().all(axis=1).to_numpy()


def _missing_bounds(defs: Sequence[Objective]) -> list[str]:
    return [f"'{o.name}' has no {'ideal' if o.ideal is None else 'bound'}" for o in defs
            if o.ideal is None or o.bound is None]


def hypervolume_history(df: pd.DataFrame, objectives: Sequence[Objective]) -> np.ndarray:
    """Element ``k``: the normalised hypervolume (:func:`normalised_hypervolume`) of the
    feasible front of the first ``k + 1`` evaluations of ``df`` in ``seq`` order (the rows
    of pairs that share a seq are one evaluation). Failed and infeasible rows add nothing,
    so the series never decreases. Needs every objective's
    ideal and bound (raises :class:`nasco.core.NascoError` naming those missing)."""
    defs = tuple(objectives)
    missing = _missing_bounds(defs)
    if missing:
        raise NascoError(f"no normalised hypervolume: {'; '.join(missing)}; give a ref_point (--ref-point)")
    names = [o.name for o in defs]
    df = _in_seq_order(df)
    good = _feasible(df, names)
    values = df.reindex(columns=names).to_numpy(dtype=float)
    out = np.zeros(len(df))
    front = np.zeros((0, len(names)))
    hv = 0.0
    for k in range(len(df)):
        if good[k]:
            cand = np.vstack([front, values[k]])
            keep = nondominated_mask(minimisation_matrix(dict(zip(names, cand.T)), defs))
            if keep[-1]:  # a new front point: the front (and possibly its volume) changed
                front = cand[keep]
                hv = normalised_hypervolume(front, defs)
        out[k] = hv
    return _per_evaluation(df, out)


def best_so_far(df: pd.DataFrame, objective: Objective) -> np.ndarray:
    """Element ``k``: the best value of ``objective`` among the ok rows of the first
    ``k + 1`` evaluations in ``seq`` order (natural units; the rows of pairs that share a seq
    are one evaluation); NaN until an ok row has one."""
    df = _in_seq_order(df)
    good = _feasible(df, [objective.name])
    values = df.reindex(columns=[objective.name]).to_numpy(dtype=float)[:, 0]
    out = np.full(len(df), np.nan)
    best = np.nan
    for k in range(len(df)):
        if good[k] and (np.isnan(best) or objective.worse(best, values[k])):
            best = values[k]
        out[k] = best
    return _per_evaluation(df, out)


def history_figure(df: pd.DataFrame, objectives: Sequence[Objective]) -> Figure:
    """The figure :func:`plot_history` writes: over the evaluations (x: 1..n in ``seq``
    order), the normalised hypervolume so far (:func:`hypervolume_history`; a note in its
    place when an objective has no ideal or bound) and, when ``accuracy`` is an objective,
    the best accuracy so far in %. The lines carry the ``gid`` ``hypervolume`` and
    ``best:NAME``; the note's text ``hypervolume-note``."""
    from matplotlib.figure import Figure  # imported here: matplotlib is slow to import
    from matplotlib.ticker import MaxNLocator

    defs = tuple(objectives)
    by_name = {o.name: o for o in defs}
    n = int(df["seq"].nunique()) if "seq" in df.columns else len(df)  # pairs share their evaluation's seq
    x = np.arange(1, n + 1)
    panels = ["hypervolume", *([HISTORY_OBJECTIVE] if HISTORY_OBJECTIVE in by_name else [])]
    fig = Figure(figsize=(6.4, 2.6 * len(panels) + 0.4), dpi=110, layout="constrained")
    axes = [fig.add_subplot(len(panels), 1, i + 1) for i in range(len(panels))]
    fig.suptitle(f"best so far over {n} evaluations", fontsize=10)
    # A step holds each value until the next evaluation; markers show where the last one
    # (which has no step after it) lies, as long as there are few enough to tell apart.
    marks = {"marker": "o", "markersize": 2.5} if n <= MARKERS_UP_TO else {}
    missing = _missing_bounds(defs)
    ax = axes[0]
    if missing:
        ax.text(0.5, 0.5, f"no normalised hypervolume: {'; '.join(missing)}\n"
                "(give a ref_point / --ref-point)",
                ha="center", va="center", fontsize=8, transform=ax.transAxes, gid="hypervolume-note")
        ax.set_axis_off()
    else:
        hv = hypervolume_history(df, defs)
        ax.plot(x, hv, drawstyle="steps-post", color="tab:blue", gid="hypervolume", **marks)
        ax.set_ylabel("normalised hypervolume")
        ax.set_title(f"front's normalised hypervolume: {hv[-1]:.4g}" if len(hv) else "no evaluations",
                     fontsize=9)
        ax.set_ylim(bottom=0.0)
    if len(panels) > 1:
        ax = axes[1]
        o = by_name[HISTORY_OBJECTIVE]
        unit, factor = display_unit(o)
        best = factor * best_so_far(df, o)
        ax.plot(x, best, drawstyle="steps-post", color="tab:green", gid=f"best:{o.name}", **marks)
        ax.set_ylabel(f"best {axis_label(o)}")
        last = best[np.isfinite(best)]
        ax.set_title(f"best {o.name}: {last[-1]:.4g} {unit}".rstrip() if last.size else f"no ok {o.name} yet",
                     fontsize=9)
    for ax in axes:
        if ax.axison:
            ax.grid(True, alpha=0.3)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1].set_xlabel("evaluations (ledger seq order)")
    return fig


def plot_history(df: pd.DataFrame, objectives: Sequence[Objective], path: str | Path) -> Path:
    """Write :func:`history_figure` as a PNG at ``path`` and return the path (Agg canvas,
    no pyplot state)."""
    path = Path(path)
    fig = history_figure(df, objectives)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
