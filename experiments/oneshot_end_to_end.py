"""One-shot search with retraining against a train-evaluator search of the same wall time.

    OMP_NUM_THREADS=1 python experiments/oneshot_end_to_end.py [--budget 2000] [--retrain-top 5]
        [--seeds 0 1 2] [--hw-inner on|off] [--set KEY=VALUE ...] [--out DIR]
        [--results experiments/results/oneshot_end_to_end.md]

Per seed, two runs of the default problem (darts_snn x asic_template on digits, objectives
accuracy, energy, latency, area, evolution), one after the other in this process:

* one-shot: ``--evaluator oneshot --budget B --retrain-top K``, its wall time W (supernets,
  scoring and retraining included);
* train: ``--evaluator train`` with no budget limit that binds, stopped after W seconds (what
  is in flight then finishes).

Each run's front is scored by the normalised hypervolume at the fixed bounds its summary.json
reports (the same for both arms); the one-shot run's counts only its retrained, stand-alone
members (``accuracy_source: stand-alone``), since inherited accuracies are estimates. ``--set``
applies to both arms (e.g. fixing the macro choices so that one supernet serves the run).
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from _provenance import git_commit  # noqa: E402

import nasco  # noqa: E402
from nasco.pareto import normalised_hypervolume  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NO_LIMIT = 10**6  # a budget no run here reaches: the train arm stops on its timeout


def hv_of(run: Path, study: object, stand_alone_only: bool) -> tuple[float, int]:
    """(normalised hypervolume of the run's front at its summary's bounds, front pairs counted)."""
    summary = json.loads((run / "summary.json").read_text())
    objs = tuple(dataclasses.replace(o, ideal=summary["ideal_point"][o.name],
                                     bound=summary["reference_point"][o.name]) for o in study.objectives)
    front = study.front
    if stand_alone_only and len(front):
        front = front[front.get("metrics.accuracy_source") == "stand-alone"]
    values = front[[o.name for o in objs]].to_numpy(dtype=float) if len(front) else np.zeros((0, len(objs)))
    return normalised_hypervolume(values, objs), int(len(front))


def arm(kind: str, seed: int, out: Path, args: argparse.Namespace, timeout: float | None) -> dict:
    if out.exists():
        shutil.rmtree(out)
    study = nasco.create_study(space="darts_snn", hw="asic_template", storage=out, seed=seed, sets=args.set)
    ev = study.make_evaluator(kind, hw_inner=args.hw_inner == "on")
    t0 = time.perf_counter()
    if kind == "oneshot":
        outcome = study.optimize(ev, budget=args.budget, retrain_top=args.retrain_top, progress=False)
    else:
        outcome = study.optimize(ev, budget=NO_LIMIT, timeout=timeout, progress=False)
    wall = time.perf_counter() - t0
    hv, front = hv_of(out, nasco.load_study(out), stand_alone_only=kind == "oneshot")
    rows = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines() if line.strip()]
    return {"kind": kind, "seed": seed, "wall": wall, "hv": hv, "front": front, "rows": len(rows),
            "retrained": sum(1 for r in rows if r.get("phase") == "retrain"), "stopped": outcome.stopped}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=2000,
                    help="one-shot evaluations per run (default 2000)")
    ap.add_argument("--retrain-top", type=int, default=5, help="architectures retrained (default 5)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="run seeds (default 0 1 2)")
    ap.add_argument("--hw-inner", choices=("on", "off"), default="on",
                    help="hardware inner loop (default on)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a --set for both arms")
    ap.add_argument("--out", default="/tmp/nasco-oneshot-e2e", help="where the runs go")
    ap.add_argument("--results", default=str(ROOT / "experiments" / "results" / "oneshot_end_to_end.md"))
    args = ap.parse_args()
    t_all = time.perf_counter()
    rows = []
    for seed in args.seeds:
        one = arm("oneshot", seed, Path(args.out) / f"oneshot-{seed}", args, None)
        print(one, flush=True)
        train = arm("train", seed, Path(args.out) / f"train-{seed}", args, one["wall"])
        print(train, flush=True)
        rows += [one, train]
    sets = " ".join(f"--set {s}" for s in args.set)
    lines = [
        "# One-shot search with retraining against train at the same wall time", "",
        f"Command: `OMP_NUM_THREADS=1 python experiments/oneshot_end_to_end.py --budget {args.budget} "
        f"--retrain-top {args.retrain_top} --seeds {' '.join(map(str, args.seeds))} "
        f"--hw-inner {args.hw_inner}{' ' + sets if sets else ''}`", "",
        f"Finished {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, commit {git_commit()}, Python "
        f"{platform.python_version()}, 1 thread, {os.cpu_count()} cores shared with other work; "
        f"{(time.perf_counter() - t_all) / 60:.1f} min in all.", "",
        "| seed | arm | wall s | ledger rows | retrained | front pairs (one-shot: stand-alone only) "
        "| normalised HV | stopped |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['seed']} | {r['kind']} | {r['wall']:.0f} | {r['rows']} | {r['retrained']} "
                     f"| {r['front']} | {r['hv']:.4f} | {r['stopped']} |")
    wins = sum(1 for s in args.seeds
               if next(r for r in rows if r["seed"] == s and r["kind"] == "oneshot")["hv"]
               >= next(r for r in rows if r["seed"] == s and r["kind"] == "train")["hv"])
    lines += ["", f"One-shot's retrained front at least the train run's HV in {wins} of {len(args.seeds)} "
              "seeds."]
    Path(args.results).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
