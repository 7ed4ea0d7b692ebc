"""Non-dominated sets and hypervolume at a fixed reference (through pymoo).

Every array here is in minimisation form (maximised objectives negated, see
:meth:`nasco.core.Objective.to_min`) unless a docstring says otherwise. Objectives are
:class:`~nasco.core.Objective` s or names of the built-in ones.
"""
from __future__ import annotations

import json
import math
import warnings
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from pymoo.indicators.hv import HV
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from nasco.core import Objective, resolve_objectives

__all__ = ["fix_bounds", "hypervolume", "minimisation_matrix", "nondominated_mask", "normalised_hypervolume",
           "pareto_front"]

Objectives = Sequence["str | Objective"]


def _as_matrix(F: Any, what: str = "F") -> np.ndarray:
    F = np.asarray(F, dtype=float)
    if F.ndim == 1:
        F = F[:, None] if F.size else F.reshape(0, 1)
    if F.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (points x objectives), got shape {F.shape}")
    if np.isnan(F).any():
        raise ValueError(f"{what} holds NaN values; drop or fix those points first")
    return F


def nondominated_mask(F: np.ndarray) -> np.ndarray:
    """True for each row of ``F`` (minimisation) that no other row dominates.

    Equal rows do not dominate each other, so duplicates of a front point are all kept.
    A 1-D ``F`` is one objective.
    """
    F = _as_matrix(F)
    mask = np.zeros(len(F), dtype=bool)
    if len(F):
        mask[NonDominatedSorting().do(F, only_non_dominated_front=True)] = True
    return mask


def minimisation_matrix(values: Mapping[str, Sequence[float]] | pd.DataFrame,
                        objectives: Objectives) -> np.ndarray:
    """Columns ``objectives`` of a frame (natural units) as an (n, m) minimisation array."""
    defs = resolve_objectives(list(objectives))
    return np.column_stack([[o.to_min(float(v)) for v in values[o.name]] for o in defs])


def _rows_frame(rows: pd.DataFrame | Iterable[Mapping[str, Any]], objectives: list[str]) -> pd.DataFrame:
    """Ledger rows (dicts with a nested ``objectives``) or a flat frame -> a flat frame."""
    if isinstance(rows, pd.DataFrame):
        return rows
    flat = []
    for r in rows:
        d = {k: v for k, v in r.items() if k != "objectives"}
        objs = r.get("objectives") or {}
        for o in objectives:
            d[o] = objs.get(o, math.nan)
        for k in ("arch", "hw", "violations", "metrics"):
            if isinstance(d.get(k), (dict, list)):
                d[k] = json.dumps(d[k], sort_keys=True)
        flat.append(d)
    return pd.DataFrame(flat)


def pareto_front(rows: pd.DataFrame | Iterable[Mapping[str, Any]], objectives: Objectives) -> pd.DataFrame:
    """The feasible non-dominated rows, in their original order (index reset).

    ``rows`` is a flat frame (``Ledger.to_frame()``: a ``status`` column and one column per
    objective in natural units) or an iterable of ledger rows (dicts with a nested
    ``objectives`` dict). Only ``status == 'ok'`` rows are candidates; an ok row missing an
    objective value is left out with a warning. Rows with equal objective vectors are all
    kept.
    """
    defs = resolve_objectives(list(objectives))
    objectives = [o.name for o in defs]
    df = _rows_frame(rows, objectives)
    if df.empty or "status" not in df.columns:
        return df.iloc[0:0].reset_index(drop=True)
    missing_cols = [o for o in objectives if o not in df.columns]
    if missing_cols:
        raise ValueError(f"rows have no column for objectives {missing_cols}; columns: {list(df.columns)}")
    ok = df[df["status"] == "ok"]
    complete = ok[objectives].notna().all(axis=1)
    if not complete.all():
        warnings.warn(f"pareto_front: {int((~complete).sum())} ok row(s) lack an objective value and are "
                      f"left out", RuntimeWarning, stacklevel=2)
        ok = ok[complete]
    if ok.empty:
        return ok.reset_index(drop=True)
    mask = nondominated_mask(minimisation_matrix(ok, defs))
    return ok[mask].reset_index(drop=True)


def hypervolume(F: np.ndarray, ref: Sequence[float]) -> float:
    """The hypervolume dominated by ``F`` and bounded by ``ref`` (both minimisation form).

    Computed by pymoo's ``HV`` (moocore underneath). Points that do not strictly dominate
    ``ref`` add nothing: moocore clips them away, so a point beyond a design limit used
    as the reference does not count. An empty ``F`` has hypervolume 0.
    """
    F = _as_matrix(F)
    ref = np.asarray(ref, dtype=float).ravel()
    if len(F) == 0:
        return 0.0
    if F.shape[1] != ref.size:
        raise ValueError(f"F has {F.shape[1]} objectives but the reference point has {ref.size}")
    if not np.isfinite(ref).all():
        raise ValueError(f"the reference point must be finite, got {ref.tolist()}")
    return float(HV(ref_point=ref).do(F))


def fix_bounds(objectives: Objectives, *, limits: Mapping[str, float] | None = None,
               ref_point: Mapping[str, float] | None = None) -> tuple[Objective, ...]:
    """The objectives with the bound each hypervolume uses.

    Per objective, the first that applies: ``ref_point[name]`` (natural units), the
    design-spec limit ``limits[name]`` (base units; minimised objectives only), the objective's own bound (the
    documented default of a built-in objective, or a table's worst value). The ideal is
    the objective's own. An objective left without ideal or bound gets none, and
    :func:`normalised_hypervolume` then says which is missing. ``ref_point`` names that
    are not objectives are an error; ``limits`` of other names are ignored.
    """
    defs = resolve_objectives(list(objectives))
    ref_point = dict(ref_point or {})
    stray = sorted(set(ref_point) - {o.name for o in defs})
    if stray:
        raise ValueError(f"ref_point names {', '.join(stray)}, which are not objectives of this study "
                         f"({', '.join(o.name for o in defs)})")
    out = []
    for o in defs:
        bound = ref_point.get(o.name)
        # A design spec is an upper limit: it bounds minimised objectives only.
        if bound is None and not o.maximise and limits and limits.get(o.name) is not None:
            bound = limits[o.name]
        out.append(o.with_bounds(bound=float(bound)) if bound is not None else o)
    return tuple(out)


def normalised_hypervolume(values: np.ndarray, objectives: Sequence[Objective]) -> float:
    """The hypervolume of ``values`` (n, m, natural units) with every objective scaled to
    0 at its ideal and 1 at its bound, at the reference point (1, ..., 1).

    The result lies in [0, 1] (1 only when a point reaches every ideal at once) and
    depends on the points and the objectives' bounds alone, so two runs with the same
    bounds report the same number for the same front. Points beyond a bound add nothing.
    """
    defs = tuple(objectives)
    V = np.asarray(values, dtype=float).reshape(-1, len(defs))
    if len(V) == 0:
        return 0.0
    Z = np.column_stack([[o.normalise(v) for v in V[:, j]] for j, o in enumerate(defs)])
    return hypervolume(Z, np.ones(len(defs)))
