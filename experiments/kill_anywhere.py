"""Kill anywhere: every searcher on every local executor, ``nasco search`` SIGKILLed at random
moments and resumed, checked against an uninterrupted run (:mod:`nasco.testing.kill_anywhere`
says how). Writes a markdown table to experiments/results/kill_anywhere.md.

    nice -n 10 python experiments/kill_anywhere.py --kills 50 --jobs 2          # the campaign
    python experiments/kill_anywhere.py --searchers evolution,optuna-tpe --executors pool --kills 3

Exit status 0 when every combination held (its ledger and pareto.csv equal to the
reference's, no process left behind, every kill landed), 1 otherwise.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

from nasco.testing.kill_anywhere import (
    EXECUTORS,
    KillReport,
    Start,
    default_budget,
    kill_anywhere,
    searcher_names,
)

RESULTS = Path(__file__).resolve().parent / "results" / "kill_anywhere.md"
SETTLE = 60.0  # seconds a start's processes may take to end before they count as left over


def _names(text: str, known: list[str], flag: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise SystemExit(f"kill_anywhere.py: {flag}: expected names from {', '.join(known)}, found "
                         f"{', '.join(bad) or 'none'}")
    return names


def _row(r: KillReport) -> str:
    yes = {True: "yes", False: "**no**"}
    left = str(len(r.survivors)) if not r.survivors else f"**{len(r.survivors)}**"
    return (f"| {r.searcher} | {r.executor} | {r.kills_landed} | {r.resumes} | {r.rounds} | "
            f"{yes[r.ledger_equal]} | {yes[r.pareto_equal]} | {left} | {r.linger:.1f} | "
            f"{r.reference_seconds:.1f} | {r.wall_seconds / 60:.1f} |")


def _kill_spread(reports: list[KillReport]) -> str:
    """Where in the run (as a fraction of the reference's wall time) the kills landed."""
    fr = [s.kill_at / r.reference_seconds for r in reports for s in r.starts
          if s.killed and s.kill_at is not None and r.reference_seconds > 0]
    if not fr:
        return "no kill landed"
    bins = [0] * 5
    for f in fr:
        bins[min(int(f * 5), 4)] += 1
    return ", ".join(f"{i * 20}-{i * 20 + 20} %: {n}" for i, n in enumerate(bins))


def write_markdown(path: Path, reports: list[KillReport], args: argparse.Namespace, command: str,
                   missing: list[str], seconds: float) -> None:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parent, check=False).stdout.strip()
    except OSError:
        commit = ""
    lines = [
        "# Kill anywhere: `nasco search` SIGKILLed at random moments, then resumed",
        "",
        f"Command: `{command}`",
        "",
        f"Finished {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, commit {commit or '?'}, "
        f"Python {platform.python_version()}, {os.cpu_count()} cores shared with other work; "
        f"{seconds / 60:.0f} min in all.",
        "",
        "Each row: one uninterrupted reference run, then a victim run in a directory of its own, SIGKILLed "
        "at a moment drawn uniformly over the reference's wall time (seeded), started again, killed again, "
        f"... until {args.kills} kills landed, then left to finish. A start that finished before its kill "
        "moment ends the victim's round; a new round (a new directory) starts while kills are due. After "
        "a kill the user's command is the same `nasco search ...` while the run directory has no run.json, "
        "else `nasco search --resume --out DIR` with the executor's flags. Every round's finished ledger "
        "is compared with the reference's row for row (timing and placement fields aside), its pareto.csv "
        "byte for byte; after every start the processes carrying the check's token are counted: "
        f"leftover are those alive {SETTLE:.0f} s after the start ended, the longest linger is the most "
        "seconds any start's processes took to end.",
        "",
        "Problem: NB201 looked up in its table, objectives accuracy and Eyeriss latency, "
        f"budget {default_budget('evolution')} (darts: darts_snn x asic_template, 4-channel 2-timestep "
        f"cells on 60 digits images, budget {default_budget('darts')}); pool: 2 workers; seed {args.seed}.",
        "",
        "| searcher | executor | kills landed | resumes | rounds | ledger equal | pareto equal | "
        "leftover processes | longest linger s | reference s | wall min |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *[_row(r) for r in reports],
        "",
        f"Kills by moment (fraction of the reference's wall time): {_kill_spread(reports)}.",
    ]
    problems = [(r, x) for r in reports for x in [*r.errors, *r.differences, *r.survivors]]
    if problems:
        lines += ["", "Problems found:", ""]
        lines += [f"- {r.searcher} / {r.executor}: {x}" for r, x in problems]
    if missing:
        lines += ["", f"Not run (the campaign was stopped first): {', '.join(missing)}."]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _line(r: KillReport) -> str:
    """One combination's outcome, with its first problems, for the terminal."""
    head = (f"{r.searcher}/{r.executor}: {'ok' if r.ok else 'FAILED'}: {r.kills_landed} kills, {r.resumes} "
            f"resumes, {r.rounds} rounds, ledger equal {r.ledger_equal}, pareto equal {r.pareto_equal}, "
            f"{len(r.survivors)} left over, {r.wall_seconds / 60:.1f} min")
    return head + "".join(f"\n  {x}" for x in [*r.errors, *r.differences, *r.survivors][:10])


def main(argv: list[str] | None = None) -> int:
    searchers = searcher_names()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--searchers", default=",".join(searchers),
                   help=f"comma-separated (default all: {', '.join(searchers)})")
    p.add_argument("--executors", default=",".join(EXECUTORS),
                   help="comma-separated (default inprocess,pool)")
    p.add_argument("--kills", type=int, default=50, help="kills that must land per combination (default 50)")
    p.add_argument("--seed", type=int, default=0, help="the runs' seed and the kill moments' (default 0)")
    p.add_argument("--jobs", type=int, default=1, help="combinations checked at once (default 1)")
    p.add_argument("--workdir", default=None, help="where the runs go (default a temporary folder, removed)")
    p.add_argument("--out", default=str(RESULTS), help=f"the markdown table (default {RESULTS})")
    args = p.parse_args(argv)
    if args.kills < 0 or args.jobs < 1:
        p.error("--kills must be >= 0 and --jobs >= 1")
    combos = [(s, e) for s in _names(args.searchers, searchers, "--searchers")
              for e in _names(args.executors, list(EXECUTORS), "--executors")]
    command = "python experiments/kill_anywhere.py " + " ".join(argv if argv is not None else sys.argv[1:])
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="kill-anywhere-"))
    t0 = time.monotonic()
    reports: dict[tuple[str, str], KillReport] = {}
    lock = threading.Lock()
    bar = tqdm(total=len(combos) * args.kills, unit="kill", desc="kills landed", dynamic_ncols=True)

    def on_start(report: KillReport, start: Start) -> None:
        with lock:
            if start.killed:
                bar.update(1)
            bar.set_postfix_str(f"{report.searcher}/{report.executor} round {start.round} {start.form}")

    def one(searcher: str, executor: str) -> KillReport:
        return kill_anywhere(searcher, executor, work / f"{searcher}-{executor}", kills=args.kills,
                             seed=args.seed, settle=SETTLE, on_start=on_start)

    try:
        with ThreadPoolExecutor(args.jobs) as pool:
            futures = {pool.submit(one, s, e): (s, e) for s, e in combos}
            for fut in as_completed(futures):
                r = fut.result()
                reports[futures[fut]] = r
                with lock:
                    bar.write(_line(r))
                done = [reports[c] for c in combos if c in reports]
                missing = [f"{s}/{e}" for s, e in combos if (s, e) not in reports]
                write_markdown(Path(args.out), done, args, command, missing, time.monotonic() - t0)
    finally:
        bar.close()
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {args.out}")
    return 0 if all(r.ok for r in reports.values()) and len(reports) == len(combos) else 1


if __name__ == "__main__":
    sys.exit(main())
