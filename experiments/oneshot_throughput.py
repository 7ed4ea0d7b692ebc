"""Candidates scored per minute: the one-shot evaluator against the train evaluator, in one run.

    OMP_NUM_THREADS=1 python experiments/oneshot_throughput.py [--train 6] [--oneshot 40] [--seed 0]
        [--results experiments/results/oneshot_throughput.md]

The problem is the default one (darts_snn x asic_template on digits, objectives accuracy,
energy, latency, area). The candidates are random cells, neuron settings, timesteps and
accelerator configurations, with the shape choices (cells, channels) at their defaults so that
one supernet serves them all; every candidate is a distinct architecture, so the train evaluator
trains each. Four arms, each a fresh evaluator in its own run directory: train and oneshot, each
with the hardware inner loop on (the default: the network's hardware front) and off (the
proposed configuration only). The one-shot arms train their supernet first (the default epochs)
and that time is reported on its own, not counted in the rate. The arms run one after the
other in this process, so their rates compare on one machine at one time.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _provenance import git_commit  # noqa: E402

from nasco.dsl import load_spec  # noqa: E402
from nasco.evaluate import OneShotEvaluator, TrainCostEvaluator, load_dataset  # noqa: E402
from nasco.evaluate._oneshot import shares_weights  # noqa: E402
from nasco.space import SearchSpace  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OBJECTIVES = ("accuracy", "energy", "latency", "area")


def candidates(space: SearchSpace, n: int, seed: int) -> list:
    """``n`` candidates of distinct architectures, the shape choices at the first one's values."""
    rng = np.random.default_rng(seed)
    first = space.sample(rng)
    shape = {k: v for k, v in first.arch["hp"].items() if not shares_weights(k)}
    out, seen = [], set()
    while len(out) < n:
        c = space.sample(rng)
        c = space.make(cell=c.arch["cell"], hp={**c.arch["hp"], **shape}, hw=c.hw)
        arch_key = repr((c.arch["cell"], sorted(c.arch["hp"].items())))
        if arch_key not in seen:
            seen.add(arch_key)
            out.append(c)
    return out


def arm(kind: str, inner: bool, space: SearchSpace, data, cands: list, seed: int, root: Path) -> dict:
    cls = OneShotEvaluator if kind == "oneshot" else TrainCostEvaluator
    ev = cls(space, data, OBJECTIVES, hw_inner=inner, seed=seed)
    ev.attach_run_dir(root / f"{kind}-{'on' if inner else 'off'}", resume=False, seed=seed)
    supernet_s = 0.0
    if kind == "oneshot":
        t0 = time.perf_counter()
        ev._supernet(space.task_archs(cands[0])[0])
        supernet_s = time.perf_counter() - t0
    statuses = []
    t0 = time.perf_counter()
    for c in cands:
        statuses.append(ev.evaluate(c, seed).status)
    secs = time.perf_counter() - t0
    return {"kind": kind, "inner": inner, "n": len(cands), "seconds": secs,
            "per_min": 60 * len(cands) / secs, "supernet_s": supernet_s, "ok": statuses.count("ok"),
            "infeasible": statuses.count("infeasible"), "failed": statuses.count("failed")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=6,
                    help="candidates the train evaluator scores per arm (default 6)")
    ap.add_argument("--oneshot", type=int, default=40,
                    help="candidates the one-shot evaluator scores per arm (default 40)")
    ap.add_argument("--seed", type=int, default=0, help="run and candidate seed (default 0)")
    ap.add_argument("--results", default=str(ROOT / "experiments" / "results" / "oneshot_throughput.md"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    space = SearchSpace(load_spec("darts_snn"), load_spec("asic_template"))
    data = load_dataset("digits", seed=args.seed)
    cands = candidates(space, max(args.train, args.oneshot), args.seed)
    t_all = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for inner in (True, False):
            for kind, n in (("train", args.train), ("oneshot", args.oneshot)):
                r = arm(kind, inner, space, data, cands[:n], args.seed, Path(tmp))
                rows.append(r)
                print(r, flush=True)
    by = {(r["kind"], r["inner"]): r for r in rows}
    lines = [
        "# One-shot against train: candidates scored per minute", "",
        f"Command: `OMP_NUM_THREADS=1 python experiments/oneshot_throughput.py --train {args.train} "
        f"--oneshot {args.oneshot} --seed {args.seed}`", "",
        f"Finished {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, commit {git_commit()}, Python "
        f"{platform.python_version()}, torch {torch.__version__}, 1 thread, {os.cpu_count()} cores shared "
        f"with other work; {(time.perf_counter() - t_all) / 60:.1f} min in all.", "",
        "| evaluator | hardware inner loop | candidates | seconds | candidates / min "
        "| ok / infeasible / failed | supernet training s (not in the rate) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['kind']} | {'on' if r['inner'] else 'off'} | {r['n']} | {r['seconds']:.1f} "
                     f"| {r['per_min']:.2f} | {r['ok']} / {r['infeasible']} / {r['failed']} "
                     f"| {r['supernet_s']:.1f} |")
    lines.append("")
    for inner in (True, False):
        ratio = by[("oneshot", inner)]["per_min"] / by[("train", inner)]["per_min"]
        lines.append(f"Ratio one-shot / train, inner loop {'on' if inner else 'off'}: **{ratio:.1f}x**.")
    Path(args.results).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
