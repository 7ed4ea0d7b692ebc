"""The files a run leaves next to its ledger: pareto.csv, pareto.png, history.png and
summary.json.

All four are derived from the ledger alone, so they can be rewritten at any time (the
driver does so at the end of every session, resumed ones included).
"""
from __future__ import annotations

import json
import math
import platform
from collections import Counter
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from nasco.core import Objective
from nasco.pareto import normalised_hypervolume, pareto_front, plot_front, plot_history
from nasco.run._ledger import Ledger, is_retrain, rows_frame, search_rows
from nasco.run._retrain import accuracy_sources, reported_rows
from nasco.run._rundir import atomic_write_text

__all__ = ["FrontReport", "OUTPUT_FILES", "package_versions", "write_outputs"]

PARETO_CSV = "pareto.csv"
PARETO_PNG = "pareto.png"
HISTORY_PNG = "history.png"
SUMMARY_JSON = "summary.json"
OUTPUT_FILES = (PARETO_CSV, PARETO_PNG, HISTORY_PNG, SUMMARY_JSON)  # what write_outputs writes, in order


@dataclass(frozen=True, eq=False)
class FrontReport:
    counts: dict[str, int]  # ok, failed, infeasible, total (search rows); retrained (retrain rows, if any)
    front: pd.DataFrame
    hypervolume: float | None     # normalised (0 at each ideal, 1 at each bound); None without bounds
    reference_point: dict[str, float | None]  # the bound of each objective, natural units
    ideal_point: dict[str, float | None]      # the ideal of each objective, natural units
    eval_seconds: float
    # How many of the front's pairs have each accuracy source (metric ``accuracy_source``:
    # inherited, stand-alone); None when no front row has one.
    sources: dict[str, int] | None = None


def package_versions(*extra: str) -> dict[str, str | None]:
    """Versions of nasco, torch, numpy, pymoo and the ``extra`` distributions, from the installed
    metadata (importing torch just for its version is slow); None for one not installed."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("nasco", "torch", "numpy", "pymoo", *extra):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _front_report(df: pd.DataFrame, objectives: tuple[Objective, ...], pairs: pd.DataFrame) -> FrontReport:
    """Counts and seconds of the evaluations ``df``; the front of their ``pairs``."""
    status = df["status"] if len(df) else pd.Series([], dtype=object)
    counts = {s: int((status == s).sum()) for s in ("ok", "failed", "infeasible")}
    counts["total"] = int(len(df))
    front = pareto_front(pairs, objectives)
    names = [o.name for o in objectives]
    hv: float | None = None
    if all(o.ideal is not None and o.bound is not None for o in objectives):
        values = front[names].to_numpy(dtype=float) if len(front) else np.zeros((0, len(names)))
        hv = normalised_hypervolume(values, objectives)
    ref = {o.name: o.bound for o in objectives}
    ideal = {o.name: o.ideal for o in objectives}
    secs = float(pd.to_numeric(df["seconds"], errors="coerce").fillna(0).sum()) if len(df) else 0.0
    return FrontReport(counts, front, hv, ref, ideal, secs)


def _with_metrics(front: pd.DataFrame, names: tuple[str, ...]) -> pd.DataFrame:
    """The front with the named ledger metrics as columns (NaN where a row lacks one)."""
    front = front.copy()
    parsed = [json.loads(m) if isinstance(m, str) else (m or {}) for m in front.get("metrics", [])]
    for n in names:
        front[n] = [float(p[n]) if isinstance(p.get(n), (int, float)) else math.nan for p in parsed]
    return front


def write_outputs(out_dir: Path, ledger: Ledger, objectives: tuple[Objective, ...],
                  limits: Mapping[str, float] | None, summary: dict[str, Any],
                  report_metrics: tuple[str, ...] = ()) -> FrontReport:
    """Write pareto.csv, pareto.png, history.png and summary.json (``summary`` holds the
    run's identity and session facts; the ledger-derived numbers are added here).

    pareto.png shows the objectives in engineering units with the design-spec ``limits``
    (base units, keyed by objective name) as dashed lines (:func:`nasco.pareto.plot_front`);
    history.png the normalised hypervolume and best accuracy so far over the evaluations
    (:func:`nasco.pareto.plot_history`).

    The hypervolume is normalised at the objectives' own ideal and bound (see
    :func:`nasco.pareto.normalised_hypervolume`), which the caller fixes once per run;
    it is None when an objective has no bound (a zero-cost proxy without a ref_point).

    ``report_metrics``: ledger metrics that pareto.csv and summary.json report for the
    front's candidates (a table evaluator's test accuracy, which the searcher never saw).

    The front (pareto.csv, summary.json's ``front_ids``) is taken over every (architecture,
    accelerator) pair the rows scored, their members included (:func:`nasco.pareto.expand_pairs`;
    pareto.csv then adds ``row_id`` and ``pair``), in ``seq`` order, so it does not depend on
    the order in which evaluations finished and were appended to the ledger.

    Retrain rows (architectures trained stand-alone after the search) replace the search rows
    of their architecture on the front (:func:`nasco.run._retrain.reported_rows`); the counts
    and history.png are the search's, and ``counts["retrained"]`` (only when there are any)
    the retrain rows. Where the front's rows say where their accuracy comes from (metric
    ``accuracy_source``), pareto.csv has an ``accuracy_source`` column and summary.json
    ``front_accuracy_sources``, the count of front pairs per source.
    """
    names = tuple(o.name for o in objectives)
    rows = ledger.rows()
    search = search_rows(rows)
    df = rows_frame(search, names).sort_values("seq", kind="stable").reset_index(drop=True)
    pairs = rows_frame(reported_rows(rows), names, pairs=True).sort_values("seq", kind="stable")
    pairs = pairs.reset_index(drop=True)
    rep = _front_report(df, objectives, pairs)
    retrained = sum(1 for r in rows if is_retrain(r))
    if retrained:
        rep.counts["retrained"] = retrained
    sources = accuracy_sources(rep.front)
    source_cols: list[str] = []
    if any(s is not None for s in sources):
        rep = replace(rep, front=rep.front.assign(accuracy_source=sources),
                      sources={k: int(v) for k, v in Counter(s for s in sources if s is not None).items()})
        source_cols = ["accuracy_source"]
    report_metrics = tuple(report_metrics)
    front = _with_metrics(rep.front, report_metrics) if report_metrics else rep.front
    cols = ["id", *names, *source_cols, *report_metrics, "arch", "hw",
            *(["row_id", "pair"] if "pair" in pairs.columns else [])]
    atomic_write_text(out_dir / PARETO_CSV, front.reindex(columns=cols).to_csv(index=False))
    plot_front(pairs, objectives, out_dir / PARETO_PNG, limits=limits)
    if retrained:  # the history is the search's
        pairs = rows_frame(search, names, pairs=True).sort_values("seq", kind="stable").reset_index(drop=True)
    plot_history(pairs, objectives, out_dir / HISTORY_PNG)
    full = {
        **summary,
        "versions": package_versions(),
        "objectives": {o.name: o.direction for o in objectives},
        "objective_units": {o.name: o.unit for o in objectives},
        "counts": rep.counts,
        "eval_seconds_total": rep.eval_seconds,
        "front_size": int(len(rep.front)),
        "front_ids": rep.front["id"].tolist() if len(rep.front) else [],
        "hypervolume": rep.hypervolume,
        "reference_point": rep.reference_point,
        "ideal_point": rep.ideal_point,
        "hypervolume_form": "normalised: each objective scaled to 0 at ideal_point and 1 at reference_point "
                            "(natural units), reference (1, ..., 1)",
        "limits": {k: float(v) for k, v in (limits or {}).items()},
    }
    if rep.sources is not None:
        full["front_accuracy_sources"] = rep.sources
    if report_metrics:
        full["front_report"] = {n: [None if math.isnan(v) else v for v in front[n].tolist()] for n in report_metrics}
    atomic_write_text(out_dir / SUMMARY_JSON, json.dumps(full, indent=2, default=str) + "\n")
    return rep
