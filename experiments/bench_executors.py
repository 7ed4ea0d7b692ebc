"""Throughput of the executors against the in-process one, measured in the same run.

Two workloads, the same random-search candidates for every executor (random search does
not depend on results, so each configuration evaluates the same cells):

* ``train``: real evaluations of about 2 s: darts_snn x asic_template candidates trained
  one epoch on a slice of digits plus the cost model (TrainCostEvaluator, one torch
  thread), fixed work per candidate, not a time cap.
* ``cheap``: 10 ms of CPU work per evaluation (nasco.testing.faults.FaultyEvaluator with
  ``busy=0.01``), where Ray's per-task overhead shows; with ``--batch`` evaluations per task.

Times run from the executor's start to the last result: they exclude starting Ray and
warming its workers (reported separately: paid once per run) and writing the outputs, and
include everything the driver does per evaluation (asking, telling, the ledger's fsync'ed
appends). Each configuration runs ``--repeats`` times, interleaved, and the
median is reported. The machine is shared and noisy: ratios are the median of each repeat's ratio to the
in-process run of the same repeat.

    python experiments/bench_executors.py                 # both workloads, about 14 minutes
    python experiments/bench_executors.py --only cheap
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from nasco.dsl import load_spec  # noqa: E402
from nasco.evaluate import TrainCostEvaluator, load_dataset  # noqa: E402
from nasco.run import InProcessExecutor, run_search  # noqa: E402
from nasco.run._ray import RayExecutor, connect  # noqa: E402
from nasco.search import RandomSearch  # noqa: E402
from nasco.space import SearchSpace  # noqa: E402
from nasco.testing.faults import FaultyEvaluator  # noqa: E402


class Timed:
    """An executor whose start (Ray connection, worker warm-up) is timed apart, and whose
    evaluation phase ends when the last result comes back (before the outputs are written)."""

    def __init__(self, inner) -> None:
        self.inner, self.start_seconds = inner, 0.0
        self.started = self.last = 0.0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def start(self, evaluator, objectives) -> None:
        t = time.perf_counter()
        self.inner.start(evaluator, objectives)
        self.started = time.perf_counter()
        self.start_seconds = self.started - t

    def wait(self):
        rows = self.inner.wait()
        self.last = time.perf_counter()
        return rows


def run_once(space, evaluator, objectives, executor, budget: int, tmp: Path) -> tuple[float, float]:
    window = getattr(executor, "window", None)
    ex = Timed(executor)
    out = Path(tempfile.mkdtemp(dir=tmp))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outcome = run_search(space=space, evaluator=evaluator, searcher=RandomSearch(space, objectives, seed=0),
                             budget=budget, out_dir=out, seed=0, progress=False, executor=ex,
                             window=window)
    assert outcome.counts["total"] == budget
    return ex.last - ex.started, ex.start_seconds


def windowed(executor, window: int):
    """The executor, run with ``window`` proposals out (default: one per worker)."""
    executor.window = window
    return executor


def bench(label: str, space, evaluator, objectives, configs: dict, budget: int, repeats: int, tmp: Path,
          per_eval: float | None) -> list[dict]:
    times: dict[str, list[float]] = {k: [] for k in configs}
    starts: dict[str, list[float]] = {k: [] for k in configs}
    for r in range(repeats):
        for name, make in configs.items():
            sec, start = run_once(space, evaluator, objectives, make(), budget, tmp)
            times[name].append(sec)
            starts[name].append(start)
            print(f"  [{label}] repeat {r + 1}: {name:<22s} {sec:7.2f} s (start {start:5.2f} s)", flush=True)
    rows = []
    for name in configs:
        med = statistics.median(times[name])
        # Paired: each repeat's ratio against the in-process run of the same repeat (the
        # machine's load drifts between repeats more than within one).
        ratio = statistics.median(b / t for b, t in zip(times["inprocess"], times[name]))
        row = {"workload": label, "executor": name, "evaluations": budget, "seconds": round(med, 3),
               "evals_per_s": round(budget / med, 3), "throughput_vs_inprocess": round(ratio, 3),
               "start_seconds": round(statistics.median(starts[name]), 2)}
        if per_eval is not None:
            workers = int(name.split("w")[0].split()[-1]) if "w" in name and name != "inprocess" else 1
            row["overhead_ms_per_eval"] = round(1e3 * (med - budget * per_eval / workers) / budget, 3)
        rows.append(row)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=("train", "cheap"), default=None)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--train-budget", type=int, default=20)
    ap.add_argument("--train-limit", type=int, default=150, help="digits images per split (sets ~2 s/evaluation)")
    ap.add_argument("--cheap-budget", type=int, default=300)
    ap.add_argument("--out", default="experiments/results/bench_executors.jsonl")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t = time.perf_counter()
    info = connect(None, num_cpus=2)  # one local Ray instance for every Ray configuration
    print(f"Ray {info['address']}, {info['resources'].get('CPU', 0):g} CPUs, started in "
          f"{time.perf_counter() - t:.1f} s; host has {os.cpu_count()} cores", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench_exec"))
    rows: list[dict] = []
    space = SearchSpace(load_spec("darts_snn"), load_spec("asic_template"))
    if args.only in (None, "train"):
        objectives = ("accuracy", "energy", "latency", "area")
        data = load_dataset("digits", seed=0, limit=args.train_limit)
        ev = TrainCostEvaluator(space, data, objectives, epochs=1, device="cpu")
        configs = {
            "inprocess": lambda: InProcessExecutor(),
            "ray 1w": lambda: RayExecutor(workers=1),
            "ray 2w": lambda: RayExecutor(workers=2),                       # window 4, the default
            "ray 2w window 2": lambda: windowed(RayExecutor(workers=2), 2),  # one job per worker
        }
        rows += bench("train", space, ev, objectives, configs, args.train_budget, args.repeats, tmp, None)
    if args.only in (None, "cheap"):
        objectives = ("accuracy", "energy")
        ev = FaultyEvaluator(space, objectives, busy=0.01)
        configs = {
            "inprocess": lambda: InProcessExecutor(),
            "ray 1w batch 1": lambda: RayExecutor(workers=1),
            "ray 2w batch 1": lambda: RayExecutor(workers=2),
            "ray 2w batch 4": lambda: RayExecutor(workers=2, batch=4),
            "ray 2w batch 16": lambda: RayExecutor(workers=2, batch=16),
        }
        rows += bench("cheap", space, ev, objectives, configs, args.cheap_budget, args.repeats, tmp, 0.01)
    print()
    for r in rows:
        print(json.dumps(r))
    train = {r["executor"]: r for r in rows if r["workload"] == "train"}
    if train:
        per = train["inprocess"]["seconds"] / args.train_budget
        print(f"\ntrain ({per:.2f} s per evaluation in-process): 2 Ray workers reach "
              f"{train['ray 2w']['throughput_vs_inprocess']:.2f}x the in-process throughput "
              f"with the default window of 4 ({train['ray 2w window 2']['throughput_vs_inprocess']:.2f}x with 2 "
              f"proposals out); 1 Ray worker costs {100 * (1 / train['ray 1w']['throughput_vs_inprocess'] - 1):+.1f} %")
    cheap = [r for r in rows if r["workload"] == "cheap" and r["executor"] != "inprocess"]
    for r in cheap:
        print(f"cheap (10 ms): {r['executor']:<16s} overhead {r['overhead_ms_per_eval']:6.2f} ms per evaluation, "
              f"{r['throughput_vs_inprocess']:.2f}x in-process throughput")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
