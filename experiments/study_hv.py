"""Hypervolumes that compare across runs: several searchers on one problem, each run's
normalised hypervolume as its summary.json reports it, and the same figure recomputed
from its pareto.csv by an independent two-objective staircase (no nasco or pymoo code).

    OMP_NUM_THREADS=1 python experiments/study_hv.py [--budget 300] [--seed 0] [--out DIR]

Problem: nb201 with the table evaluator, objectives validation accuracy (max) and
HW-NAS-Bench Eyeriss latency (min). The bounds come from the table (its best and worst
value of each column), so every run normalises the same way. Writes a markdown table to
experiments/results/study_hv.md.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

import nasco

ROOT = Path(__file__).resolve().parents[1]
SEARCHERS = ("random", "evolution", "nsga2", "optuna-tpe", "predictor-guided")


def staircase_hv(points: list[tuple[float, float]]) -> float:
    """Area dominated by ``points`` (both coordinates minimised, in [0, 1]) up to (1, 1)."""
    inside = sorted((x, y) for x, y in points if x < 1 and y < 1)
    area, best_y = 0.0, 1.0
    for i, (x, y) in enumerate(inside):
        best_y = min(best_y, y)
        nxt = inside[i + 1][0] if i + 1 < len(inside) else 1.0
        area += (nxt - x) * (1.0 - best_y)
    return area


def recompute(run: Path) -> float:
    summary = json.loads((run / "summary.json").read_text())
    ideal, ref = summary["ideal_point"], summary["reference_point"]
    front = pd.read_csv(run / "pareto.csv")
    acc = (ideal["accuracy"] - front["accuracy"]) / (ideal["accuracy"] - ref["accuracy"])
    lo, hi = ideal["eyeriss_latency"], ref["eyeriss_latency"]
    lat = (front["eyeriss_latency"] - lo) / (hi - lo)
    return staircase_hv(list(zip(acc.tolist(), lat.tolist())))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="/tmp/nasco-study-hv")
    args = ap.parse_args()
    rows = []
    for name in SEARCHERS:
        run = Path(args.out) / f"{name}-seed{args.seed}"
        study = nasco.create_study(space="nb201", objectives="accuracy,eyeriss_latency", searcher=name,
                                   storage=run, seed=args.seed, load_if_exists=True)
        t0 = time.perf_counter()
        study.optimize(study.make_evaluator("table", table="nb201"), budget=args.budget, progress=False)
        summary = study.summary
        rows.append({"searcher": name, "front": summary["front_size"], "hv_summary": summary["hypervolume"],
                     "hv_recomputed": recompute(run), "seconds": time.perf_counter() - t0})
        print(rows[-1], flush=True)
    bounds = study.summary
    lines = [f"# Normalised hypervolume across searchers (nb201, accuracy x eyeriss_latency, "
             f"{args.budget} queries, seed {args.seed})", "",
             "Command: `OMP_NUM_THREADS=1 python experiments/study_hv.py "
             f"--budget {args.budget} --seed {args.seed}`",
             "", f"Ideal point {bounds['ideal_point']}, reference point {bounds['reference_point']} "
             "(the table's best and worst value of each column; accuracy as a fraction, latency in ms).", "",
             "| searcher | front size | HV (summary.json) | HV recomputed from pareto.csv | |difference| |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['searcher']} | {r['front']} | {r['hv_summary']:.6f} | {r['hv_recomputed']:.6f} | "
                     f"{abs(r['hv_summary'] - r['hv_recomputed']):.1e} |")
    out = ROOT / "experiments" / "results" / "study_hv.md"
    out.write_text("\n".join(lines) + "\n")
    print(out.read_text())


if __name__ == "__main__":
    main()
