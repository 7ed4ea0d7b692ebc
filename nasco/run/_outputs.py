"""The files a run leaves next to its ledger: pareto.csv, pareto.png and summary.json.

All three are derived from the ledger alone, so they can be rewritten at any time (the
driver does so at the end of every session, resumed ones included).
"""
from __future__ import annotations

import json
import math
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from nasco.evaluate._result import OBJECTIVES
from nasco.pareto import hypervolume, minimisation_matrix, pareto_front, plot_front, reference_point
from nasco.run._ledger import Ledger
from nasco.run._rundir import atomic_write_text

__all__ = ["FrontReport", "package_versions", "write_outputs"]

PARETO_CSV = "pareto.csv"
PARETO_PNG = "pareto.png"
SUMMARY_JSON = "summary.json"


@dataclass(frozen=True, eq=False)
class FrontReport:
    counts: dict[str, int]
    front: pd.DataFrame
    hypervolume: float
    reference_point: dict[str, float | None]  # minimisation form; None where undefined
    eval_seconds: float


def package_versions() -> dict[str, str | None]:
    """Versions from the installed metadata (importing torch just for its version is slow)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("nasco", "torch", "numpy", "pymoo"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _front_report(df: pd.DataFrame, objectives: tuple[str, ...],
                  limits: Mapping[str, float] | None) -> FrontReport:
    status = df["status"] if len(df) else pd.Series([], dtype=object)
    counts = {s: int((status == s).sum()) for s in ("ok", "failed", "infeasible")}
    counts["total"] = int(len(df))
    front = pareto_front(df, objectives)
    ok = df[status == "ok"]
    ok = ok[ok[list(objectives)].notna().all(axis=1)] if len(ok) else ok
    values = ok[list(objectives)].to_numpy(dtype=float) if len(ok) else np.zeros((0, len(objectives)))
    used = {k: float(v) for k, v in (limits or {}).items() if k in objectives and v is not None}
    ref = reference_point(objectives, values, used)
    hv = 0.0
    if len(front) and np.isfinite(ref).all():
        hv = hypervolume(minimisation_matrix(front, objectives), ref)
    ref_d = {o: (float(r) if math.isfinite(r) else None) for o, r in zip(objectives, ref)}
    secs = float(pd.to_numeric(df["seconds"], errors="coerce").fillna(0).sum()) if len(df) else 0.0
    return FrontReport(counts, front, hv, ref_d, secs)


def _with_metrics(front: pd.DataFrame, names: tuple[str, ...]) -> pd.DataFrame:
    """The front with the named ledger metrics as columns (NaN where a row lacks one)."""
    front = front.copy()
    parsed = [json.loads(m) if isinstance(m, str) else (m or {}) for m in front.get("metrics", [])]
    for n in names:
        front[n] = [float(p[n]) if isinstance(p.get(n), (int, float)) else math.nan for p in parsed]
    return front


def write_outputs(out_dir: Path, ledger: Ledger, objectives: tuple[str, ...],
                  limits: Mapping[str, float] | None, summary: dict[str, Any],
                  report_metrics: tuple[str, ...] = ()) -> FrontReport:
    """Write pareto.csv, pareto.png and summary.json (``summary`` holds the run's
    identity and session facts; the ledger-derived numbers are added here).

    ``report_metrics``: ledger metrics that pareto.csv and summary.json report for the
    front's candidates (a table evaluator's test accuracy, which the searcher never saw).
    """
    df = ledger.to_frame(objectives)
    rep = _front_report(df, objectives, limits)
    report_metrics = tuple(report_metrics)
    front = _with_metrics(rep.front, report_metrics) if report_metrics else rep.front
    cols = ["id", *objectives, *report_metrics, "arch", "hw"]
    atomic_write_text(out_dir / PARETO_CSV, front.reindex(columns=cols).to_csv(index=False))
    plot_front(df, objectives, out_dir / PARETO_PNG)
    full = {
        **summary,
        "versions": package_versions(),
        "objectives": {o: OBJECTIVES[o] for o in objectives},
        "counts": rep.counts,
        "eval_seconds_total": rep.eval_seconds,
        "front_size": int(len(rep.front)),
        "front_ids": rep.front["id"].tolist() if len(rep.front) else [],
        "hypervolume": rep.hypervolume,
        # Maximised objectives are negated in this form (accuracy 0 -> 0, 0.9 -> -0.9).
        "reference_point": rep.reference_point,
        "hypervolume_form": "minimisation (maximised objectives negated)",
        "limits": {k: float(v) for k, v in (limits or {}).items()},
    }
    if report_metrics:
        full["front_report"] = {n: [None if math.isnan(v) else v for v in front[n].tolist()] for n in report_metrics}
    atomic_write_text(out_dir / SUMMARY_JSON, json.dumps(full, indent=2, default=str) + "\n")
    return rep
