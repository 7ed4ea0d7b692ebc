"""Wall time of the README's default run against the same run at a baseline commit.

    OMP_NUM_THREADS=1 python experiments/default_run_wall.py [--baseline 80cb0ad] [--repeats 2]
        [--args "--budget 12 --seed 0"] [--seeds 0 1 2 3 4] [--variant "--front-worker off" ...]
        [--results experiments/results/default_run_wall.md]

The baseline commit is checked out into a temporary git worktree (removed afterwards) and run
with this checkout's interpreter and packages, the baseline's code first on ``PYTHONPATH``. Both
run ``python -m nasco search --space darts_snn --hw asic_template ARGS --quiet`` into fresh
directories, alternating (baseline, current, then each ``--variant``: the current code with
those arguments added) ``--repeats`` times, so that all meet the same load on a shared
machine. Each run's wall time (process start to exit), its ledger rows, its distinct trainings,
the seconds those trainings took and its summary's front size are recorded; the report gives
the median wall times and their ratio, and each arm's wall time per second of training. With
``--seeds``, every arm runs once per seed (``--seed S`` added to ``--args``) in each repeat, and
the report gives each seed's ratio and their median: the searchers of both arms draw their
architectures by seed, and which ones they draw sets much of a run's training time. The
default baseline, 80cb0ad, is the last commit whose train evaluator trained every candidate and
costed it on its own configuration only (no memoised trainings, no quantization, no hardware
inner loop).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMAND = ["-m", "nasco", "search", "--space", "darts_snn", "--hw", "asic_template"]
# Top-level folders that the package installs as nasco.<name> (pyproject.toml's package-dir).
PACKAGED_FOLDERS = ("search_spaces", "predictors")


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


def run(code: Path, out: Path, extra: list[str]) -> dict:
    """One default run with the code at ``code``; its wall seconds and what its run directory says."""
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, *COMMAND, *extra, "--out", str(out), "--quiet"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env, cwd=code)
    wall = time.perf_counter() - t0
    rows = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines() if line.strip()]
    summary = json.loads((out / "summary.json").read_text())
    trained = [r for r in rows if (r.get("metrics") or {}).get("trained", True)]
    train_s = sum(float((r.get("metrics") or {}).get("train_seconds", 0.0)) for r in trained)
    return {"wall": wall, "rows": len(rows), "trainings": len(trained), "train_s": train_s,
            "front": summary.get("front_size")}


def _seed_median(runs: list[dict], seed: int, key: str) -> float:
    """The median of ``key`` over the runs of ``seed``."""
    return statistics.median(r[key] for r in runs if r["seed"] == seed)


def report(records: dict[str, list[dict]], args: argparse.Namespace, base_rev: str, current: str,
           minutes: float) -> tuple[list[str], list[str]]:
    """The results file's lines, and its summary lines (also printed)."""
    med = {k: statistics.median(r["wall"] for r in v) for k, v in records.items()}
    seeds_arg = "" if args.seeds is None else " --seeds " + " ".join(map(str, args.seeds))
    lines = [
        "# Default-run wall time against a baseline commit", "",
        f"Command: `OMP_NUM_THREADS=1 python experiments/default_run_wall.py --baseline {args.baseline} "
        f"--repeats {args.repeats} --args \"{args.args}\"{seeds_arg}"
        + "".join(f" --variant \"{v}\"" for v in args.variant) + "`", "",
        f"Finished {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, current commit {current}, baseline "
        f"{base_rev}, Python {platform.python_version()}, {os.cpu_count()} cores; "
        f"{minutes:.0f} min in all. Each arm: `" + " ".join(
            ["nasco search --space darts_snn --hw asic_template", *shlex.split(args.args)]
            + (["--seed S"] if args.seeds is not None else [])) + "` (a variant's arguments added), "
        "runs alternating.", "",
        "The trainings' own seconds (``train_seconds`` of the rows that trained) are given apart: the "
        "arms' searchers are told different accuracies (float, quantized), so they train different "
        "architectures, whose training times differ; wall / training is each arm's time per second of "
        "training.", "",
        "| arm | seed | repeat | wall s | training s | wall / training | ledger rows | trainings | front |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, rs in records.items():
        for r in rs:
            per_s = r["wall"] / r["train_s"]
            seed = "" if r["seed"] is None else r["seed"]
            lines.append(f"| {name} | {seed} | {r['repeat']} | {r['wall']:.1f} | {r['train_s']:.1f} "
                         f"| {per_s:.2f} | {r['rows']} | {r['trainings']} | {r['front']} |")
    per = {k: statistics.median(r["wall"] / r["train_s"] for r in v) for k, v in records.items()}
    summary: list[str] = []
    for name in med:
        if name == "baseline":
            continue
        if args.seeds is not None:
            ratios, per_ratios = [], []
            for seed in args.seeds:
                wall = _seed_median(records[name], seed, "wall")
                base = _seed_median(records["baseline"], seed, "wall")
                ratios.append(wall / base)
                per_ratios.append((wall / _seed_median(records[name], seed, "train_s"))
                                  / (base / _seed_median(records["baseline"], seed, "train_s")))
            summary.append(f"Per seed, {name} / baseline wall: "
                           + ", ".join(f"seed {s} {q:.2f}" for s, q in zip(args.seeds, ratios))
                           + f"; median **{statistics.median(ratios):.2f}** "
                           f"(range {min(ratios):.2f}-{max(ratios):.2f}). Per second of training: median "
                           f"{statistics.median(per_ratios):.2f} "
                           f"(range {min(per_ratios):.2f}-{max(per_ratios):.2f}).")
            walls = {a: sum(r["wall"] for r in records[a]) for a in ("baseline", name)}
            trains = {a: sum(r["train_s"] for r in records[a]) for a in ("baseline", name)}
            summary.append(f"All seeds together: wall baseline {walls['baseline']:.1f} s, {name} "
                           f"{walls[name]:.1f} s (ratio {walls[name] / walls['baseline']:.2f}); training "
                           f"{trains['baseline']:.1f} s and {trains[name]:.1f} s "
                           f"(ratio {trains[name] / trains['baseline']:.2f}).")
            continue
        summary.append(f"Median wall: baseline {med['baseline']:.1f} s, {name} "
                       f"{med[name]:.1f} s; ratio {name} / baseline **{med[name] / med['baseline']:.2f}** "
                       f"(wall per second of training: {per['baseline']:.2f} and {per[name]:.2f}).")
    lines += [""] + summary + [""]
    return lines, summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="80cb0ad", help="the commit to compare with (default 80cb0ad)")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each (default 2)")
    ap.add_argument("--args", default="--budget 12 --seed 0", help="arguments of both runs")
    ap.add_argument("--seeds", type=int, nargs="+", default=None, metavar="S",
                    help="run every arm once per seed (--seed S added to --args; leave --seed out of it)")
    ap.add_argument("--variant", action="append", default=[], metavar="ARGS",
                    help="also run the current code with these arguments added (an arm of its own)")
    ap.add_argument("--results", default=str(ROOT / "experiments" / "results" / "default_run_wall.md"))
    args = ap.parse_args()
    extra = shlex.split(args.args)
    if args.seeds is not None and "--seed" in extra:
        ap.error("--seeds adds --seed to every run: leave --seed out of --args")
    seeds: list[int | None] = list(args.seeds) if args.seeds is not None else [None]
    base_rev = _git("rev-parse", "--short", args.baseline)
    current = _git("rev-parse", "--short", "HEAD")
    arms = [("baseline", None, []), ("current", ROOT, [])]
    arms += [(f"current {v}", ROOT, shlex.split(v)) for v in args.variant]
    records: dict[str, list[dict]] = {name: [] for name, _, _ in arms}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nasco-wall-") as tmp:
        tree = Path(tmp) / "baseline"
        _git("worktree", "add", "--detach", str(tree), base_rev)
        # The editable install maps nasco.search_spaces and nasco.predictors to this checkout's
        # top-level folders; links inside the baseline's package make it load its own DSL files.
        for name in PACKAGED_FOLDERS:
            if (tree / name).is_dir() and not (tree / "nasco" / name).exists():
                (tree / "nasco" / name).symlink_to(tree / name, target_is_directory=True)
        try:
            for i in range(args.repeats):
                for seed in seeds:
                    by_seed = [] if seed is None else ["--seed", str(seed)]
                    for k, (name, code, more) in enumerate(arms):
                        r = run(code or tree, Path(tmp) / f"arm{k}-{i}-{seed}", extra + by_seed + more)
                        r.update(repeat=i, seed=seed)
                        records[name].append(r)
                        print(json.dumps({"arm": name, **r}), flush=True)
        finally:
            _git("worktree", "remove", "--force", str(tree))
    lines, summary = report(records, args, base_rev, current, (time.perf_counter() - t0) / 60)
    Path(args.results).write_text("\n".join(lines))
    print("\n".join(summary))


if __name__ == "__main__":
    main()
