"""Non-dominated sets, hypervolume and its reference point (all through pymoo).

Every array here is in minimisation form (maximised objectives negated, see
``nasco.evaluate.to_minimisation``) unless a docstring says otherwise.
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

from nasco.evaluate._result import OBJECTIVES, to_minimisation

__all__ = ["hypervolume", "minimisation_matrix", "nondominated_mask", "pareto_front", "reference_point"]


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
                        objectives: Sequence[str]) -> np.ndarray:
    """Columns ``objectives`` of a frame (natural units) as an (n, m) minimisation array."""
    if not objectives:
        raise ValueError("at least one objective is needed")
    return np.column_stack([[to_minimisation(o, float(v)) for v in values[o]] for o in objectives])


def _rows_frame(rows: pd.DataFrame | Iterable[Mapping[str, Any]], objectives: Sequence[str]) -> pd.DataFrame:
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


def pareto_front(rows: pd.DataFrame | Iterable[Mapping[str, Any]], objectives: Sequence[str]) -> pd.DataFrame:
    """The feasible non-dominated rows, in their original order (index reset).

    ``rows`` is a flat frame (``Ledger.to_frame()``: a ``status`` column and one column per
    objective in natural units) or an iterable of ledger rows (dicts with a nested
    ``objectives`` dict). Only ``status == 'ok'`` rows are candidates; an ok row missing an
    objective value is left out with a warning. Rows with equal objective vectors are all
    kept.
    """
    objectives = list(objectives)
    unknown = [o for o in objectives if o not in OBJECTIVES]
    if unknown:
        raise ValueError(f"unknown objectives {unknown}; known: {list(OBJECTIVES)}")
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
    mask = nondominated_mask(minimisation_matrix(ok, objectives))
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


def reference_point(objectives: Sequence[str], feasible_values: np.ndarray,
                    limits: Mapping[str, float] | None = None) -> np.ndarray:
    """The hypervolume reference point, in minimisation form.

    ``feasible_values`` is (n, m) in natural units (columns in ``objectives`` order).

    - maximised objectives (accuracy, which lies in [0, 1]): 0, the worst possible value,
      so the volume does not depend on which points happened to be found. If a value
      below 0 was observed (an objective not bounded by 0), the reference is that
      minimum minus 10 % of its magnitude, with a warning.
    - minimised objectives: ``limits[name]`` (the design-spec limit, base units) when
      given, else 1.1 x the largest observed value (max + 10 % of |max| in general; 1.0
      when the largest is exactly 0). With no observation and no limit it is NaN, and the
      hypervolume of the (empty) front is 0 anyway.

    ``limits`` entries for maximised objectives or for names that are not objectives are
    not used.
    """
    limits = dict(limits or {})
    V = np.asarray(feasible_values, dtype=float).reshape(-1, len(objectives))
    ref = np.empty(len(objectives))
    for j, name in enumerate(objectives):
        col = V[:, j][np.isfinite(V[:, j])]
        if OBJECTIVES[name] == "max":
            natural = 0.0
            if col.size and col.min() < 0:
                natural = float(col.min() - 0.1 * abs(col.min()))
                warnings.warn(f"reference_point: {name} has values below 0; using {natural:g}",
                              RuntimeWarning, stacklevel=2)
        elif limits.get(name) is not None:
            natural = float(limits[name])
        elif col.size:
            m = float(col.max())
            natural = m + 0.1 * abs(m) if m != 0 else 1.0
        else:
            natural = math.nan
        # + 0.0 turns -0.0 (negated zero accuracy) into 0.0 for clean JSON output.
        ref[j] = to_minimisation(name, natural) + 0.0
    return ref
