"""Kill anywhere: a ``nasco search`` killed with SIGKILL at random moments and resumed must end
exactly as an uninterrupted run of the same command, and leave no process behind.

:func:`kill_anywhere` runs, for one searcher and one executor, ``python -m nasco search`` as a
subprocess with a fixed seed on a fast problem (:func:`search_argv`):

1. the reference: one uninterrupted run, whose wall time ``T`` is measured;
2. the victim: a run in a directory of its own, SIGKILLed at a moment drawn uniformly from
   ``[0, T)`` by a seeded generator (so kills land in the interpreter's start-up, the
   imports, the table load, mid-evaluation, mid-write of the ledger, of run.json, of the
   Optuna storage, of the outputs...), then started again, killed again at a new moment, and
   so on until ``kills`` kills have landed; then started once more and left to finish.

A start that ends on its own before its kill moment is not a kill: when it finished the run
(exit status 0), the victim's round is over and, while kills are still due, a new round starts
in a new directory; a start that fails (any other exit status) ends the check with its last
line of stderr as the error. Every round's finished directory is checked against the
reference.

The command a user would type after a kill: the same ``nasco search ...`` command again while
the run directory has no run.json yet (nothing of the run was recorded, so the run starts
afresh), and ``nasco search --resume --out DIR`` with the executor's flags once it has one
(a resumed run takes every other setting from run.json; where evaluations run is not
recorded, so the executor's flags are given again).

Checks, after each round's run finished: the ledger holds the reference's rows, row for row
by ``seq``, the fields of timing and placement aside
(:data:`nasco.testing.executor_contract.VOLATILE`, and in ``metrics`` every key ending in
``seconds`` and those in :data:`METRICS_VOLATILE`), with no torn line; ``pareto.csv`` is the
reference's, byte for byte. After every start (killed or not): every process started for
the check carries the environment variable :data:`TOKEN_VAR` set to a random token, and
``/proc/*/environ`` is scanned for it (the processes this user can read) until none is left or
``settle`` seconds have passed; any left then is a survivor, reported by pid and command
line, and killed (only processes carrying the token, by pid). How long the last of them took
to end is reported too: a pool worker that the driver's death found still importing ends
only once it reaches its initializer (the parent-death signal is set there).
"""
from __future__ import annotations

import os
import random
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from nasco.run._ledger import FILENAME, Ledger
from nasco.run._rundir import RUN_FILE

__all__ = ["EXECUTORS", "KillReport", "METRICS_VOLATILE", "Start", "TOKEN_VAR", "compare_ledgers",
           "default_budget", "kill_anywhere", "resume_argv", "scan_token", "search_argv", "searcher_names"]

TOKEN_VAR = "NASCO_KILL_ANYWHERE_TOKEN"
EXECUTORS = ("inprocess", "pool")
POOL_WORKERS = 2
PARETO = "pareto.csv"
# Metrics that say how an evaluation's search ran rather than what it found (a DARTS search
# resumed from its checkpoint); with every metric whose key ends in "seconds", they may differ.
METRICS_VOLATILE = ("resumed_from_epoch",)
# The fast problem: NB201 looked up in its table (no training), two objectives so that the
# front has several rows.
TABLE_PROBLEM = ("--space", "nb201", "--evaluator", "table", "--table", "nb201",
                 "--objectives", "accuracy,eyeriss_latency")
# The darts searcher trains a supernet and retrains what it derives: the smallest setting that
# tests/search/test_darts.py runs end to end (a 4-channel, 2-timestep cell on 60 digits
# images), with one retraining epoch.
DARTS_PROBLEM = ("--space", "darts_snn", "--hw", "asic_template", "--limit", "60",
                 "--set", "macro.stem.channels=4", "--set", "timesteps=2", "--epochs", "1",
                 "--searcher-opt", "epochs=2", "--searcher-opt", "warmup_epochs=1",
                 "--searcher-opt", "batch_size=16")
# Evaluations per run: long enough that the evaluations, not the start-up, fill a good part
# of the run's wall time, short enough for 50 kills per combination.
TABLE_BUDGET = 60
DARTS_BUDGET = 3


def searcher_names() -> list[str]:
    """Every registered searcher, the differentiable ones last."""
    from nasco.search import DIFFERENTIABLE, SEARCHERS

    return [*SEARCHERS.names(), *DIFFERENTIABLE.names()]


def default_budget(searcher: str) -> int:
    """The evaluations of a checked run of ``searcher``."""
    from nasco.search import DIFFERENTIABLE

    return DARTS_BUDGET if searcher in DIFFERENTIABLE else TABLE_BUDGET


def _executor_flags(executor: str) -> list[str]:
    if executor not in EXECUTORS:
        raise ValueError(f"executor: expected one of {', '.join(EXECUTORS)}, found {executor!r}")
    return ["--executor", "pool", "--workers", str(POOL_WORKERS)] if executor == "pool" else []


def search_argv(searcher: str, executor: str, out: Path, *, seed: int, budget: int) -> list[str]:
    """The arguments (after ``python -m nasco``) of a fresh run of the checked problem."""
    from nasco.search import DIFFERENTIABLE

    problem = DARTS_PROBLEM if searcher in DIFFERENTIABLE else TABLE_PROBLEM
    return ["search", *problem, "--searcher", searcher, "--seed", str(seed), "--budget", str(budget),
            *_executor_flags(executor), "--out", str(out), "--quiet"]


def resume_argv(executor: str, out: Path) -> list[str]:
    """The arguments of the resume a user types: the run directory and where evaluations run."""
    return ["search", "--resume", "--out", str(out), *_executor_flags(executor), "--quiet"]


# ---------------------------------------------------------------------------- processes
def scan_token(token: str) -> list[int]:
    """The pids of the processes (readable by this user) whose environment holds
    ``TOKEN_VAR=token``; a zombie's environment is empty, so zombies are not listed."""
    needle = f"{TOKEN_VAR}={token}".encode()
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            env = (p / "environ").read_bytes()
        except OSError:  # gone, or another user's
            continue
        if needle in env.split(b"\0"):
            out.append(int(p.name))
    return sorted(out)


def _cmdline(pid: int) -> str:
    try:
        return (Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                .strip()[:200])
    except OSError:
        return "?"


def _reap_survivors(token: str, settle: float) -> tuple[list[str], float]:
    """Wait up to ``settle`` seconds for the token's processes to end; SIGKILL and describe
    those left (each carries the token). Also how long the last of them took to end."""
    t0 = time.monotonic()
    left = scan_token(token)
    while left and time.monotonic() < t0 + settle:
        time.sleep(0.1)
        left = scan_token(token)
    linger = time.monotonic() - t0
    found = [f"pid {pid}: {_cmdline(pid)}" for pid in left]
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return found, linger


@dataclass(frozen=True)
class Start:
    """One start of the victim: its form, when it was to be killed, what happened."""

    round: int
    form: str                 # "fresh" or "resume"
    rows_before: int          # complete ledger rows when it started
    kill_at: float | None     # seconds after the start; None: left to finish
    killed: bool              # the SIGKILL landed (the process died of it)
    returncode: int
    seconds: float
    survivors: tuple[str, ...]
    linger: float             # seconds until its last process (a pool worker) had ended


@dataclass
class KillReport:
    """What :func:`kill_anywhere` found for one searcher and executor."""

    searcher: str
    executor: str
    kills: int                          # kills asked for
    reference_seconds: float = 0.0
    starts: list[Start] = field(default_factory=list)
    rounds: int = 0
    ledger_equal: bool = False          # every round's ledger, and each round finished
    pareto_equal: bool = False
    differences: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def kills_landed(self) -> int:
        return sum(s.killed for s in self.starts)

    @property
    def resumes(self) -> int:
        return sum(s.form == "resume" for s in self.starts)

    @property
    def survivors(self) -> list[str]:
        return [x for s in self.starts for x in s.survivors]

    @property
    def linger(self) -> float:
        return max((s.linger for s in self.starts), default=0.0)

    @property
    def ok(self) -> bool:
        return (self.ledger_equal and self.pareto_equal and not self.survivors and not self.errors
                and self.kills_landed == self.kills)


# ---------------------------------------------------------------------------- checks
def _rows(out: Path) -> tuple[list[dict[str, Any]], bool]:
    """The ledger's rows by seq, and whether its last line was torn (read without the
    ledger's warning, whose capture is not thread-safe)."""
    rows, _, torn = Ledger(out / FILENAME)._scan()
    return sorted(rows, key=lambda r: r["seq"]), bool(torn)


def _untimed(obj: Any) -> Any:
    """``obj`` without the keys, at any depth, of :func:`compare_ledgers`'s volatile metrics."""
    if isinstance(obj, dict):
        return {k: _untimed(v) for k, v in obj.items()
                if not (isinstance(k, str) and (k.endswith("seconds") or k in METRICS_VOLATILE))}
    if isinstance(obj, list):
        return [_untimed(v) for v in obj]
    return obj


def compare_ledgers(reference: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]]) -> list[str]:
    """The differences of ``rows`` from ``reference`` (both by seq), the :data:`VOLATILE`
    fields aside, and in ``metrics`` (at any depth) the keys that end in ``seconds`` and those
    in :data:`METRICS_VOLATILE`: one line per differing seq or field, empty when equal."""
    from nasco.testing.executor_contract import VOLATILE

    out = []
    if len(rows) != len(reference):
        out.append(f"{len(rows)} rows, the reference has {len(reference)}")
    for i in range(max(len(rows), len(reference))):
        if i >= len(rows) or i >= len(reference):
            which = rows[i] if i < len(rows) else reference[i]
            out.append(f"row {i} (seq {which.get('seq')}, id {which.get('id')}) is only in the "
                       f"{'run' if i < len(rows) else 'reference'}")
            continue
        a, b = dict(rows[i]), dict(reference[i])
        for r in (a, b):
            if "metrics" in r:
                r["metrics"] = _untimed(r["metrics"])
        keys = sorted((set(a) | set(b)) - set(VOLATILE))
        bad = [k for k in keys if a.get(k) != b.get(k)]
        if bad:
            out.append(f"row {i}: {', '.join(f'{k} {a.get(k)!r} != {b.get(k)!r}' for k in bad)}"[:400])
    return out


def _check_round(ref: Path, out: Path, report: KillReport) -> tuple[bool, bool]:
    ref_rows, _ = _rows(ref)
    rows, torn = _rows(out)
    diffs = compare_ledgers(ref_rows, rows)
    if torn:
        diffs.append("the ledger ends with a torn line")
    report.differences += [f"{out.name}: {d}" for d in diffs]
    pareto = (out / PARETO).is_file() and (out / PARETO).read_bytes() == (ref / PARETO).read_bytes()
    if not pareto:
        report.differences.append(f"{out.name}: {PARETO} differs from the reference's")
    return not diffs, pareto


# ---------------------------------------------------------------------------- the campaign
def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except OSError:
        return 0


@dataclass(frozen=True)
class _Ran:
    landed: bool              # died of the SIGKILL
    returncode: int
    seconds: float
    first_row: float | None   # seconds from the start to its first new ledger row
    last_row: float | None    # ... to its last
    last: str                 # the last line of its stderr


def _run(argv: list[str], *, env: dict[str, str], kill_at: float | None, limit: float, log: Path,
         ledger: Path, after_row: bool = False) -> _Ran:
    """Start ``python -m nasco *argv`` and SIGKILL it ``kill_at`` seconds after its start (or
    after its first new row in ``ledger``, with ``after_row``); past ``limit`` seconds it is
    killed as hung."""
    errfile = log.with_name(log.name + ".stderr")
    rows0 = _lines(ledger)
    with open(log, "ab") as fh, open(errfile, "w+b") as efh:
        fh.write(f"\n$ nasco {' '.join(argv)}  # kill at {kill_at}{' after a row' if after_row else ''}\n"
                 .encode())
        fh.flush()
        t0 = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "nasco", *argv], env=env, stdout=fh, stderr=efh,
                                start_new_session=True)
        first_row: float | None = None
        last_row: float | None = None
        hung = False
        while proc.poll() is None:
            now = time.monotonic() - t0
            rows = _lines(ledger)
            if rows > rows0:
                first_row = now if first_row is None else first_row
                last_row, rows0 = now, rows
            anchor = first_row if after_row else 0.0
            if kill_at is not None and anchor is not None and now >= anchor + kill_at:
                break
            if now >= limit:
                hung = True
                break
            time.sleep(0.01)
        if proc.returncode is None:
            os.kill(proc.pid, signal.SIGKILL)  # our child, not yet reaped: the pid is still its
            proc.wait()
        seconds = time.monotonic() - t0
        efh.seek(0)
        err = efh.read()
        fh.write(err)
    lines = err.decode(errors="replace").strip().splitlines()
    last = lines[-1] if lines else ""
    if hung:
        last = f"no exit within {limit:.0f} s; killed. {last}"
    landed = proc.returncode == -signal.SIGKILL and not hung
    return _Ran(landed, proc.returncode, seconds, first_row, last_row, last)


def kill_anywhere(searcher: str, executor: str, workdir: str | os.PathLike[str], *, kills: int = 50,
                  seed: int = 0, budget: int | None = None, window: tuple[float, float] = (0.0, 1.0),
                  after_row: bool = False, settle: float = 60.0,
                  on_start: Callable[[KillReport, Start], None] | None = None) -> KillReport:
    """Check ``searcher`` on ``executor`` ('inprocess' or 'pool' with two workers) with
    ``kills`` kills (see the module docstring); files go to ``workdir``.

    Kill moments are drawn uniformly from ``window`` (fractions of the reference's wall time;
    the whole run by default) by a generator seeded with ``seed``, the searcher and the
    executor, and count from the start. With ``after_row`` they count from the start's first
    new ledger row instead, and the window is in fractions of the reference's time from its
    first row to its last: a kill lands while evaluations are being recorded (or after),
    whatever the start-up took, so a resume meets a partial ledger. ``on_start`` is called
    after every start of the victim (for progress)."""
    lo, hi = (float(x) for x in window)
    if not 0.0 <= lo < hi:
        raise ValueError(f"window: expected fractions 0 <= lo < hi, found {window!r}")
    t_all = time.monotonic()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    budget = default_budget(searcher) if budget is None else int(budget)
    report = KillReport(searcher, executor, int(kills))
    token = secrets.token_hex(16)
    env = dict(os.environ, **{TOKEN_VAR: token, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                              "MPLBACKEND": "Agg"})
    log = workdir / "starts.log"
    rng = random.Random(f"{seed}:{searcher}:{executor}")
    ref = workdir / "reference"
    ran = _run(search_argv(searcher, executor, ref, seed=seed, budget=budget), env=env, kill_at=None,
               limit=1800.0, log=log, ledger=ref / FILENAME)
    report.reference_seconds = ran.seconds
    left, _ = _reap_survivors(token, settle)
    if ran.returncode != 0 or left or ran.first_row is None:
        report.errors.append(f"reference run: exit {ran.returncode}: {ran.last}" if ran.returncode
                             else f"reference run left {left}" if left else "reference run wrote no row")
        report.wall_seconds = time.monotonic() - t_all
        return report
    assert ran.last_row is not None
    scale = ran.last_row - ran.first_row if after_row else ran.seconds
    # A start that takes far longer than the reference is hung (a lock never let go, a loop).
    limit = max(120.0, 20 * ran.seconds)
    ledger_ok = pareto_ok = True
    while report.kills_landed < kills or report.rounds == 0:
        report.rounds += 1
        out = workdir / f"victim-{report.rounds}"
        while True:
            form = "resume" if (out / RUN_FILE).exists() else "fresh"
            argv = (resume_argv(executor, out) if form == "resume"
                    else search_argv(searcher, executor, out, seed=seed, budget=budget))
            kill_at = rng.uniform(lo, hi) * scale if report.kills_landed < kills else None
            before = len(_rows(out)[0])
            ran = _run(argv, env=env, kill_at=kill_at, limit=limit, log=log, ledger=out / FILENAME,
                       after_row=after_row)
            left, linger = _reap_survivors(token, settle)
            start = Start(report.rounds, form, before, kill_at, ran.landed, ran.returncode, ran.seconds,
                          tuple(left), linger)
            report.starts.append(start)
            if on_start is not None:
                on_start(report, start)
            if ran.landed:
                continue
            if ran.returncode != 0:
                report.errors.append(f"round {report.rounds}, start {len(report.starts)} ({form}): "
                                     f"exit {ran.returncode}: {ran.last}")
            break
        if report.errors:
            ledger_ok = pareto_ok = False
            break
        a, b = _check_round(ref, out, report)
        ledger_ok, pareto_ok = ledger_ok and a, pareto_ok and b
    report.ledger_equal, report.pareto_equal = ledger_ok, pareto_ok
    report.wall_seconds = time.monotonic() - t_all
    return report
