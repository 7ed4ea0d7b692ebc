"""What the hardware inner loop buys at equal trainings: the default search (darts_snn x
asic_template, evolution, the train evaluator on digits) with and without ``--hw-inner``,
same seeds, same number of trainings; each run's normalised hypervolume and front size as
its summary.json reports them, and its wall time.

    OMP_NUM_THREADS=1 python experiments/train_once_value.py [--budget 10] [--seeds 0,1,2,3,4]
        [--out DIR] [--results experiments/results/train_once_value.md]

Both arms run the same code: "off" costs each trained network on its proposed configuration
only (the joint search as it was: one configuration per training), "on" adds each network's
hardware front over asic_template. Trainings are memoised in both, so the budget buys the
same trainings. The hypervolume is normalised at the objectives' fixed ideals and bounds
(the catalogue's, with asic_template's design specs as the latency and area bounds), the same
for every run. Runs are sequential, so the wall times compare on one machine in one session.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(out: Path, seed: int, budget: int, inner: str) -> dict:
    """One `nasco search` of the default problem; its summary and wall seconds."""
    cmd = [sys.executable, "-m", "nasco", "search", "--space", "darts_snn", "--hw", "asic_template",
           "--budget", str(budget), "--seed", str(seed), "--hw-inner", inner, "--out", str(out), "--quiet"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    summary = json.loads((out / "summary.json").read_text())
    rows = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines() if line.strip()]
    return {"seed": seed, "inner": inner, "hv": summary["hypervolume"], "front": summary["front_size"],
            "rows": len(rows), "trainings": len({r["metrics"].get("training") for r in rows}), "wall": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=10, help="trainings per run (default 10)")
    ap.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds (default 0-4)")
    ap.add_argument("--out", default="/tmp/nasco-train-once", help="where the runs go")
    ap.add_argument("--results", default=str(ROOT / "experiments" / "results" / "train_once_value.md"))
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    records = []
    t0 = time.perf_counter()
    for seed in seeds:
        for inner in ("off", "on"):
            out = Path(args.out) / f"{inner}-seed{seed}"
            if out.exists():
                subprocess.run(["rm", "-r", str(out)], check=True)
            r = run(out, seed, args.budget, inner)
            records.append(r)
            print(json.dumps(r), flush=True)
    by = {(r["seed"], r["inner"]): r for r in records}
    lines = [
        "# The hardware inner loop at equal trainings", "",
        f"Command: `python experiments/train_once_value.py --budget {args.budget} --seeds {args.seeds}`", "",
        f"Finished {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, commit {_commit()}, Python "
        f"{platform.python_version()}, {_cpus()} cores shared with other work; "
        f"{(time.perf_counter() - t0) / 60:.0f} min in all.", "",
        "Problem: `nasco search --space darts_snn --hw asic_template --budget B --seed S` (evolution, train "
        "evaluator on digits, objectives accuracy, energy, latency, area), with `--hw-inner off` (each "
        "training costed on its proposed configuration) and `--hw-inner on` (each training's hardware "
        "front).",
        "",
        "| seed | HV off | HV on | HV ratio | front off | front on | trainings off | trainings on | rows off "
        "| rows on | wall off s | wall on s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in seeds:
        a, b = by[(s, "off")], by[(s, "on")]
        ratio = b["hv"] / a["hv"] if a["hv"] else float("inf")
        lines.append(f"| {s} | {a['hv']:.4f} | {b['hv']:.4f} | {ratio:.2f} | {a['front']} | {b['front']} | "
                     f"{a['trainings']} | {b['trainings']} | {a['rows']} | {b['rows']} | {a['wall']:.0f} | "
                     f"{b['wall']:.0f} |")
    hv_off = statistics.mean(by[(s, "off")]["hv"] for s in seeds)
    hv_on = statistics.mean(by[(s, "on")]["hv"] for s in seeds)
    wall_off = sum(by[(s, "off")]["wall"] for s in seeds)
    wall_on = sum(by[(s, "on")]["wall"] for s in seeds)
    lines += ["", f"Mean HV: off {hv_off:.4f}, on {hv_on:.4f}, ratio of means {hv_on / hv_off:.2f}. "
              f"Median front size: off {statistics.median(by[(s, 'off')]['front'] for s in seeds)}, "
              f"on {statistics.median(by[(s, 'on')]['front'] for s in seeds)}. "
              f"Wall time on / off: {wall_on / wall_off:.2f}."]
    Path(args.results).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _cpus() -> int:
    import os

    return os.cpu_count() or 1


if __name__ == "__main__":
    main()
