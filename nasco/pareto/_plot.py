"""Pairwise scatter panels of a run in engineering units, with its Pareto front, its
design-spec limits and one colour per accelerator template."""
from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

from nasco.core import Objective, resolve_objectives
from nasco.pareto._front import minimisation_matrix, nondominated_mask
from nasco.pareto._units import axis_label, display_unit

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["front_figure", "plot_front", "template_colours", "template_of"]

TEMPLATE_KEY = "template"   # the hw genotype's key of an accelerator set (nasco.dsl._hwsets)
SINGLE = "ok"               # the one series name when the candidates carry no template
LIMIT_STYLE = {"color": "0.25", "linestyle": "--", "linewidth": 1.0}


def template_of(hw: Any) -> str | None:
    """The accelerator template a ledger row's ``hw`` (a dict or its JSON) names, or None."""
    if isinstance(hw, str):
        try:
            hw = json.loads(hw)
        except ValueError:
            return None
    if isinstance(hw, Mapping) and isinstance(hw.get(TEMPLATE_KEY), str):
        return hw[TEMPLATE_KEY]
    return None


def template_colours(templates: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    """One distinct colour per template (sorted by name, so a template keeps its colour in
    every panel): tab10, tab20 beyond ten templates."""
    from matplotlib import colormaps

    names = sorted(set(templates))
    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {t: tuple(cmap.colors[i % len(cmap.colors)]) for i, t in enumerate(names)}


def _front_mask(df: pd.DataFrame, defs: Sequence[Objective]) -> np.ndarray:
    """True for the rows of ``df`` on the feasible front (ok, every value present)."""
    names = [o.name for o in defs]
    mask = np.zeros(len(df), dtype=bool)
    if "status" not in df.columns or any(n not in df.columns for n in names):
        return mask
    cand = (df["status"] == "ok").to_numpy() & df[names].notna().all(axis=1).to_numpy()
    if cand.any():
        mask[np.flatnonzero(cand)] = nondominated_mask(minimisation_matrix(df[cand], defs))
    return mask


def _use_log(values: np.ndarray) -> bool:
    # Energies and latencies of a joint space often span several decades; a linear axis
    # would squeeze the interesting (small) end of the front into one corner.
    v = values[np.isfinite(values)]
    return bool(v.size and (v > 0).all() and v.max() / v.min() > 100)


def front_figure(df: pd.DataFrame, objectives: Sequence[str | Objective], *,
                 limits: Mapping[str, float] | None = None) -> Figure:
    """The figure :func:`plot_front` writes.

    Every pair of objectives gets a panel (one objective: against the evaluation order,
    ``seq``), values in the units of :func:`nasco.pareto.display_unit`. Ok points are
    dots in their template's colour (one colour when no row names a template), front
    points are larger with a black edge on top, infeasible points that carry values are
    crosses in their template's colour, and each design-spec limit (``limits``: base
    units, keyed by objective) is a dashed line on the axis it constrains. Failed rows have
    no values and are not drawn. Artists carry a ``gid``: ``ok:T``, ``front:T`` and
    ``infeasible:T`` per template ``T``, and ``limit:NAME``.
    """
    from matplotlib.figure import Figure  # imported here: matplotlib is slow to import

    defs = resolve_objectives(list(objectives))
    by_name = {o.name: o for o in defs}
    limits = {k: float(v) for k, v in (limits or {}).items() if k in by_name and v is not None}
    status = df["status"] if "status" in df.columns else pd.Series([""] * len(df), index=df.index)
    on_front = _front_mask(df, defs)
    templates = np.array([template_of(h) for h in df["hw"]] if "hw" in df.columns else [None] * len(df),
                         dtype=object)
    named = sorted({t for t in templates if t is not None})
    colours = template_colours(named or [SINGLE])
    groups = [(t, templates == t) for t in named] if named else [(SINGLE, np.ones(len(df), dtype=bool))]
    ok = (status == "ok").to_numpy()
    bad = (status == "infeasible").to_numpy()

    pairs: list[tuple[str, str]] = ([("seq", defs[0].name)] if len(defs) == 1
                                    else list(itertools.combinations([o.name for o in defs], 2)))
    ncols = min(3, len(pairs))
    nrows = math.ceil(len(pairs) / ncols)
    fig = Figure(figsize=(4.2 * ncols + 1.8, 3.6 * nrows), dpi=110, layout="constrained")
    counts = {s: int((status == s).sum()) for s in ("ok", "infeasible", "failed")}
    fig.suptitle(f"{len(df)} evaluations: {counts['ok']} ok, {counts['infeasible']} infeasible, "
                 f"{counts['failed']} failed; front of {int(on_front.sum())}", fontsize=10)

    def column(name: str) -> np.ndarray:
        if name == "seq":
            return (pd.to_numeric(df["seq"], errors="coerce").to_numpy(dtype=float) if "seq" in df.columns
                    else np.arange(len(df), dtype=float))
        if name not in df.columns:
            return np.full(len(df), np.nan)
        return display_unit(by_name[name])[1] * pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)

    for k, (x, y) in enumerate(pairs):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        xs, ys = column(x), column(y)
        if not np.isfinite(ys).any():
            ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
        _scatter(ax, xs, ys, groups, colours, ok=ok, bad=bad, on_front=on_front)
        for axis, name in (("x", x), ("y", y)):
            shown = column(name)
            if name in limits:
                unit, factor = display_unit(by_name[name])
                at = factor * limits[name]
                line = ax.axvline if axis == "x" else ax.axhline
                line(at, zorder=3, gid=f"limit:{name}", **LIMIT_STYLE)
                shown = np.append(shown, at)
            if name != "seq" and _use_log(shown):
                (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
        ax.set_xlabel("evaluation (seq)" if x == "seq" else axis_label(by_name[x]))
        ax.set_ylabel(axis_label(by_name[y]))
        ax.grid(True, alpha=0.3)

    _legend(fig, groups, colours, infeasible=bool(bad.any()), limits=limits, by_name=by_name,
            titled=bool(named))
    return fig


def _scatter(ax: Any, xs: np.ndarray, ys: np.ndarray, groups: list, colours: Mapping[str, Any], *,
             ok: np.ndarray, bad: np.ndarray, on_front: np.ndarray) -> None:
    """One panel's points: per template, ok dots, front points on top, infeasible crosses."""
    has = np.isfinite(xs) & np.isfinite(ys)
    for t, member in groups:
        sel = ok & member & has & ~on_front
        ax.scatter(xs[sel], ys[sel], s=14, color=colours[t], alpha=0.6, linewidths=0, zorder=2, gid=f"ok:{t}")
        sel = member & has & on_front
        ax.scatter(xs[sel], ys[sel], s=46, color=colours[t], edgecolors="k", linewidths=1.0, zorder=4,
                   gid=f"front:{t}")
        sel = bad & member & has
        ax.scatter(xs[sel], ys[sel], s=22, marker="x", color=colours[t], linewidths=0.9, zorder=1,
                   gid=f"infeasible:{t}")


def _legend(fig: Any, groups: list, colours: Mapping[str, Any], *, infeasible: bool,
            limits: Mapping[str, float], by_name: Mapping[str, Objective], titled: bool) -> None:
    """One legend for the figure: templates, the front, infeasible points, spec limits."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], ls="", marker="o", ms=5, color=colours[t], label=t) for t, _ in groups]
    handles.append(Line2D([], [], ls="", marker="o", ms=7, markerfacecolor="0.8", markeredgecolor="k",
                          label="Pareto front"))
    if infeasible:
        handles.append(Line2D([], [], ls="", marker="x", color="0.45", label="infeasible"))
    for name, v in limits.items():
        unit, factor = display_unit(by_name[name])
        handles.append(Line2D([], [], label=f"{name} limit {factor * v:g} {unit}".rstrip(), **LIMIT_STYLE))
    fig.legend(handles=handles, loc="outside right center", fontsize=7,
               title="template" if titled else None, title_fontsize=7)


def plot_front(df: pd.DataFrame, objectives: Sequence[str | Objective], path: str | Path, *,
               limits: Mapping[str, float] | None = None) -> Path:
    """Write :func:`front_figure` as a PNG at ``path`` and return the path.

    ``df`` is a flat ledger frame (``Ledger.to_frame()``); ``limits`` are design-spec
    limits in base units keyed by objective name (others are ignored). Uses the Agg canvas
    directly, so no display or pyplot state is touched.
    """
    path = Path(path)
    fig = front_figure(df, objectives, limits=limits)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
