"""The search driver: ask, evaluate in-process, record in the ledger, tell; resume by replay.

Resume works by replay rather than by saving searcher snapshots: a fresh searcher with
the run's seed is asked again from the start, and as long as it proposes the ledger's
candidates in order it is told their recorded results instead of evaluating them. A
searcher is a deterministic function of its seed and of what it is told, so it ends
the replay in exactly the state it had when the run stopped, and the resumed run writes
the same ledger an uninterrupted one would (timings aside). To make that hold, the
searcher is always told the result as the ledger stores it (after the JSON round trip),
never the evaluator's in-memory object.
"""
from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

import nasco
from nasco.evaluate._result import Evaluator, Result
from nasco.run._ledger import FILENAME, Ledger, to_json_line
from nasco.run._outputs import write_outputs
from nasco.run._progress import Progress
from nasco.run._rundir import RunDirError, check_run_json, run_meta, utc_now, write_run_json
from nasco.search._base import Searcher
from nasco.space import Candidate, SearchSpace

__all__ = ["REPEAT_FACTOR", "RunOutcome", "eval_seed", "run_search"]

log = logging.getLogger("nasco.run")

# The driver gives up after this many x budget proposals in a row that are all already
# in the ledger: the searcher has converged (or the space is nearly exhausted).
REPEAT_FACTOR = 50


@dataclass(frozen=True, eq=False)
class RunOutcome:
    """What a call of :func:`run_search` produced (all of it is also on disk)."""

    out_dir: Path
    counts: dict[str, int]          # ok, failed, infeasible, total (rows in the ledger)
    front: pd.DataFrame             # feasible front: id, one column per objective, arch, hw
    hypervolume: float
    reference_point: dict[str, float | None]  # minimisation form, keyed by objective
    wall_seconds: float             # this call only
    evaluated: int                  # evaluations run by this call
    replayed: int                   # ledger rows replayed to the searcher on resume
    stopped: str                    # "budget", "repeats" or "complete" (nothing left to do)


def eval_seed(seed: int, seq: int) -> int:
    """The seed of evaluation ``seq`` of a run seeded ``seed`` (independent streams)."""
    return int(np.random.SeedSequence([seed, seq]).generate_state(1)[0])


def _told(row: dict[str, Any]) -> Result:
    """The Result a ledger row stands for."""
    return Result.from_dict({k: row.get(k) for k in ("status", "objectives", "metrics", "violations",
                                                     "reason", "seconds")})


def _evaluate(evaluator: Evaluator, cand: Candidate, seed: int, seq: int,
              objectives: tuple[str, ...], failed: str | None = None) -> dict[str, Any]:
    """Evaluate in-process and return the ledger row. Any exception but
    KeyboardInterrupt/SystemExit becomes a failed row, so one bad candidate cannot end
    the search. ``failed`` (a reason) records a failed row without evaluating."""
    started = utc_now()
    t0 = time.perf_counter()
    try:
        res = Result.failed(failed) if failed else evaluator.evaluate(cand, seed)
        if not isinstance(res, Result):
            res = Result.failed(f"TypeError: evaluator returned {type(res).__name__}, not a Result")
        elif res.status == "ok":
            missing = [o for o in objectives if o not in res.objectives]
            if missing:
                res = Result.failed(f"ValueError: ok result lacks objectives {missing}",
                                    **{**res.metrics, "objectives_given": dict(res.objectives)})
    except Exception as exc:  # noqa: BLE001 - recorded as a failed row, see docstring
        res = Result.failed(f"{type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - t0
    metrics = dict(res.metrics)
    if res.seconds and "evaluator_seconds" not in metrics:
        # The row's seconds are the driver's wall clock; keep the evaluator's own figure
        # (e.g. a lookup table's training time) instead of dropping it.
        metrics["evaluator_seconds"] = res.seconds
    if res.status == "failed":
        log.warning("evaluation %d (%s) failed: %s", seq, cand.id, res.reason)
    return {
        "seq": seq, "id": cand.id, "arch": cand.arch, "hw": cand.hw, "seed": seed,
        "status": res.status, "reason": res.reason,
        "objectives": {k: float(v) for k, v in res.objectives.items()},
        "violations": {k: float(v) for k, v in res.violations.items()},
        "metrics": metrics, "seconds": seconds, "started_at": started, "finished_at": utc_now(),
    }


def _check_args(space: SearchSpace, evaluator: Evaluator, searcher: Searcher, budget: int,
                seed: int, config: dict[str, Any]) -> tuple[str, ...]:
    if not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ValueError(f"budget must be a positive number of evaluations, got {budget!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    objectives = tuple(getattr(evaluator, "objectives", ()))
    if not objectives:
        raise ValueError(f"{type(evaluator).__name__} declares no objectives (attribute 'objectives')")
    if tuple(searcher.objectives) != objectives:
        raise ValueError(f"searcher objectives {list(searcher.objectives)} differ from the evaluator's "
                         f"{list(objectives)}; build both with the same objectives, in the same order")
    if searcher.space is not space and searcher.space.describe() != space.describe():
        raise ValueError("the searcher was built on a different search space than the one given")
    if searcher.n_told:
        raise ValueError(f"run_search needs a fresh searcher (this one was told {searcher.n_told} results); "
                         f"resume replays the ledger into a new one")
    try:
        json.dumps(config)
    except TypeError as exc:
        raise ValueError(f"config must be JSON data: {exc}") from None
    return objectives


def run_search(*, space: SearchSpace, evaluator: Evaluator, searcher: Searcher, budget: int,
               out_dir: str | Path, seed: int, resume: bool = False, config: dict[str, Any] | None = None,
               progress: bool | TextIO = True, limits: dict[str, float] | None = None) -> RunOutcome:
    """Run a search until the ledger in ``out_dir`` holds ``budget`` distinct evaluations.

    ``searcher`` must be fresh (nothing told). ``limits`` (base units, keyed by objective)
    are the design-spec limits used as the hypervolume reference point; the evaluator
    applies its own constraints. Raises :class:`RunDirError` if ``out_dir`` holds a
    ledger and ``resume`` is False, or if ``resume`` is True and run.json records a
    different seed, searcher, space or objectives.
    """
    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    config = dict(config or {})
    objectives = _check_args(space, evaluator, searcher, budget, seed, config)
    seed, budget = int(seed), int(budget)
    ledger = Ledger(out_dir / FILENAME)
    recorded = ledger.rows() if ledger.path.exists() else []
    meta = run_meta(space=space, searcher=searcher, objectives=objectives, seed=seed, config=config)
    if recorded and not resume:
        raise RunDirError(f"{out_dir} already holds a run ({len(recorded)} evaluations in {FILENAME}); "
                          f"pass --resume (resume=True) to continue it, or choose another --out")
    if recorded:  # and resume
        check_run_json(out_dir, meta)
    else:
        write_run_json(out_dir, meta)
    attach = getattr(searcher, "attach_run_dir", None)
    if callable(attach):
        # A searcher that keeps files of its own (an Optuna study) keeps them in the run
        # directory; on resume it reattaches to them.
        attach(out_dir, resume=bool(recorded))

    candidate_info = getattr(searcher, "candidate_info", None)
    prog = Progress(progress, budget=budget, objective=objectives[0], label=searcher.name)
    known: dict[str, dict[str, Any]] = {}   # id -> ledger row, for every row seen so far
    for row in recorded:
        prog.record(row["status"], row.get("objectives"))
    n_rows, pos, replaying = len(recorded), 0, bool(recorded)
    repeats, limit = 0, REPEAT_FACTOR * budget
    evaluated, stopped = 0, "budget"
    t_new = time.perf_counter()  # start of the new evaluations, for the time-left estimate
    if n_rows >= budget:
        stopped = "complete"
        if n_rows > budget:
            warnings.warn(f"{out_dir}: the ledger already holds {n_rows} evaluations, more than the budget "
                          f"{budget}; nothing to evaluate", RuntimeWarning, stacklevel=2)
    try:
        while n_rows < budget:
            cand = searcher.ask(1)[0]
            if replaying:
                expect = recorded[pos]
                if cand.id == expect["id"]:
                    known[cand.id] = expect
                    searcher.tell(cand, _told(expect))
                    pos, repeats = pos + 1, 0
                    if pos == len(recorded):
                        replaying, t_new = False, time.perf_counter()
                        prog.message(f"[{searcher.name}] replayed {pos} ledger rows from {ledger.path}")
                    continue
                if cand.id not in known:
                    # Same code and seed never get here; a changed searcher or evaluator does.
                    warnings.warn(f"{out_dir}: replay diverged at seq {pos}: the searcher proposed "
                                  f"{cand.id}, the ledger has {expect['id']}; the {len(recorded) - pos} "
                                  f"remaining rows are kept and are told when proposed",
                                  RuntimeWarning, stacklevel=2)
                    known.update((r["id"], r) for r in recorded[pos:])
                    replaying, t_new = False, time.perf_counter()
            if cand.id in known:
                searcher.tell(cand, _told(known[cand.id]))
                repeats += 1
                if repeats > limit:
                    warnings.warn(f"{searcher.name} proposed {repeats} already-evaluated candidates in a "
                                  f"row; stopping at {n_rows}/{budget} evaluations",
                                  RuntimeWarning, stacklevel=2)
                    stopped = "repeats"
                    break
                continue
            info = candidate_info(cand) if callable(candidate_info) else None
            # A searcher that could not finish the search proposing it (a diverged supernet):
            # a failed row with that reason, nothing to evaluate.
            failed = f"search failed: {info['search_failed']}" if info and info.get("search_failed") else None
            row = _evaluate(evaluator, cand, eval_seed(seed, n_rows), n_rows, objectives, failed)
            if info:
                # What the searcher did to propose it (a differentiable search's record).
                row["metrics"]["search"] = info
            ledger.append(row)
            row = json.loads(to_json_line(row))  # exactly what a replay will read back
            known[cand.id] = row
            searcher.tell(cand, _told(row))
            n_rows, evaluated, repeats = n_rows + 1, evaluated + 1, 0
            prog.record(row["status"], row["objectives"])
            now = time.perf_counter()
            prog.show(elapsed=now - t_start, new=evaluated, new_seconds=now - t_new)
    finally:
        prog.close()

    summary = {
        "nasco_version": nasco.__version__,
        "seed": seed,
        "searcher": meta["searcher"],
        "config": config,
        "budget": budget,
        "resumed": bool(recorded),
        "replayed": pos,
        "evaluated_this_session": evaluated,
        "stopped": stopped,
        "wall_seconds": time.perf_counter() - t_start,
        "space": space.describe(),
    }
    rep = write_outputs(out_dir, ledger, objectives, limits, summary,
                        report_metrics=tuple(getattr(evaluator, "report_metrics", ())))
    front = rep.front.reindex(columns=["id", *objectives, "arch", "hw"])
    prog.message(f"[{searcher.name}] done: {rep.counts['total']} evaluations ({rep.counts['ok']} ok, "
                 f"{rep.counts['infeasible']} infeasible, {rep.counts['failed']} failed), front of "
                 f"{len(front)}, hypervolume {rep.hypervolume:.4g}; files in {out_dir}")
    return RunOutcome(out_dir=out_dir, counts=rep.counts, front=front, hypervolume=rep.hypervolume,
                      reference_point=rep.reference_point, wall_seconds=time.perf_counter() - t_start,
                      evaluated=evaluated, replayed=pos, stopped=stopped)
