"""The search driver: ask, evaluate (through an executor), record in the ledger, tell; resume
by replay.

Resume works by replay rather than by saving searcher snapshots: a fresh searcher with
the run's seed is asked again from the start, and as long as it proposes the ledger's
candidates in order it is told their recorded results instead of evaluating them. A
searcher is a deterministic function of its seed and of what it is told, so it ends
the replay in exactly the state it had when the run stopped, and the resumed run writes
the same ledger an uninterrupted one would (timings aside). To make that hold, the
searcher is always told the result as the ledger stores it (after the JSON round trip),
never the evaluator's in-memory object, and always in the order the candidates were
proposed (see :class:`Schedule`), whichever order their evaluations finish in.

Where evaluations run is the executor's business (:class:`~nasco.run._base.Executor`: in this
process, a process pool, Ray tasks, Ray Tune trials); the driver alone writes the ledger.
"""
from __future__ import annotations

import json
import logging
import signal
import threading
import time
import warnings
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TextIO

import numpy as np
import pandas as pd

import nasco
from nasco.core import FRONT_METRICS, Candidate, Evaluator, Objective, Result, evaluator_attr, evaluator_hook
from nasco.pareto import fix_bounds
from nasco.run._base import Executor
from nasco.run._executors import InProcessExecutor
from nasco.run._job import Job, evaluate_job
from nasco.run._ledger import FILENAME, RETRAIN_PHASE, Ledger, is_retrain, search_rows, to_json_line
from nasco.run._lock import RunLock
from nasco.run._outputs import write_outputs
from nasco.run._progress import Progress
from nasco.run._retrain import STAND_ALONE, arch_of, retrain_plan
from nasco.run._rundir import RUN_FILE, RunDirError, check_run_json, read_run_json, run_meta, write_run_json
from nasco.search import DIFFERENTIABLE
from nasco.search._base import Searcher
from nasco.space import SearchSpace

__all__ = ["BUDGET_COUNTS", "REPEAT_FACTOR", "ROW_FACTOR", "ROW_FLOOR", "RunOutcome", "Schedule", "default_window",
           "eval_seed", "record_run", "run_bounds", "run_search"]

log = logging.getLogger("nasco.run")

# The driver gives up after this many x budget (or x the space's size, when smaller)
# proposals in a row that are all already in the ledger: the searcher has converged (or the
# space is nearly exhausted).
REPEAT_FACTOR = 50
# What a run's budget counts: evaluations (ledger rows), or, with an evaluator that memoises
# its trainings (``trains``), distinct trainings; run.json records which, for the resume.
BUDGET_COUNTS = ("evaluations", "trainings")
# Where the budget counts trainings, a row that reuses a training costs nothing, so a searcher
# that keeps proposing trained architectures with other hardware would never spend it: the run
# stops after max(ROW_FLOOR, ROW_FACTOR x budget) rows in all (stopped "row_limit").
ROW_FACTOR = 20
ROW_FLOOR = 100


@dataclass(frozen=True, eq=False)
class RunOutcome:
    """What a call of :func:`run_search` produced (all of it is also on disk)."""

    out_dir: Path
    counts: dict[str, int]          # ok, failed, infeasible, total (search rows in the ledger); retrained
    #                                 (retrain rows, when there are any)
    front: pd.DataFrame             # feasible front: id, one column per objective, arch, hw
    hypervolume: float | None       # normalised at the objectives' ideal and bound (summary.json)
    reference_point: dict[str, float | None]  # each objective's bound, natural units
    wall_seconds: float             # this call only
    evaluated: int                  # evaluations run by this call
    replayed: int                   # ledger rows replayed to the searcher on resume
    stopped: str                    # "budget", "exhausted", "repeats", "row_limit", "complete", "timeout"
    #                                 or "interrupted"
    trainings: int | None = None    # distinct trainings in the ledger, where the budget counts them
    retrained: int = 0              # retrain rows written by this call (architectures trained stand-alone)
    sources: dict[str, int] | None = None  # front pairs per accuracy source (inherited, stand-alone)


def eval_seed(seed: int, seq: int) -> int:
    """The seed of evaluation ``seq`` of a run seeded ``seed`` (independent streams)."""
    return int(np.random.SeedSequence([seed, seq]).generate_state(1)[0])


def _told(row: dict[str, Any]) -> Result:
    """The Result a ledger row stands for, as a searcher is told it (a failed row written
    without a reason: that said): without its members and the metrics of its hardware front
    (:data:`~nasco.core.FRONT_METRICS`), which an executor may make after the searcher is told
    the rest (:meth:`Schedule.tell_head`), so that a searcher is told the same whether the front
    was made with the row or apart."""
    d = {k: row.get(k) for k in ("status", "objectives", "metrics", "violations", "reason", "seconds")}
    d["metrics"] = {k: v for k, v in (d["metrics"] or {}).items() if k not in FRONT_METRICS}
    if d["status"] == "failed" and not d["reason"]:
        d["reason"] = "no reason recorded"
    return Result.from_dict(d)


@dataclass(eq=False)
class _Proposal:
    cand: Candidate
    row: dict[str, Any] | None = None  # its result, once known


class Schedule:
    """What to evaluate and when: the ask/tell bookkeeping of a run, apart from where
    evaluations run (the executor's business) and how rows get back.

    Determinism with evaluations in flight: at most ``window`` proposals are asked and not
    yet told; results are told in the order the candidates were asked, whatever order they
    finish in; and after each tell exactly one more is asked. So proposal ``p`` is asked
    right after proposal ``p - window`` is told, whatever the timing, and a searcher that
    is deterministic given its seed and what it is told proposes the same candidates in a
    parallel run, a resumed one and an uninterrupted one. ``window`` = 1 is the plain
    ask-evaluate-tell loop.

    A proposal already in the ledger is told its recorded row; one already being evaluated
    waits for that evaluation: no candidate is evaluated twice. Each new candidate gets
    the next ledger ``seq`` and the seed ``eval_seed(seed, seq)``.

    Resume: ``recorded`` (the ledger's rows, possibly finished out of order and with gaps
    where evaluations were lost with the driver) is replayed by seq: a new candidate whose
    seq is recorded under the same id is told that row; one whose seq is missing is
    evaluated (the evaluation that was lost).

    Exhaustion: ``space_size`` is how many distinct candidates the space holds (default:
    the searcher's space's :meth:`~nasco.space.SearchSpace.size`). Every evaluation is of a
    distinct candidate, so once that many are in the ledger or being evaluated no new one
    can be proposed: nothing more is asked, and ``stopped`` is ``"exhausted"`` (with a
    message) when the budget asked for more.

    Trainings: with ``keys_of`` (an evaluator's ``training_keys``) each new job's ``trains``
    holds the training keys that no earlier proposal uses (the row's ``trained``). Budget
    in trainings (``counts`` = ``"trainings"``): the budget counts the distinct training
    keys of the ledger's rows and of the proposals being evaluated; a new candidate whose
    trainings are all among them costs nothing (it is still evaluated, and costed on its
    hardware). With
    ``tasks`` per candidate (a multi-task space trains one network per task) the run makes
    ``budget x tasks`` trainings (:attr:`quota`); a candidate that brings several new ones at
    once may pass that by the tasks less one. The run also stops, ``stopped`` = ``"exhausted"``, once
    ``arch_size`` distinct trainings (every architecture of a single-task space) are done,
    and ``"row_limit"`` after max(:data:`ROW_FLOOR`, :data:`ROW_FACTOR` x budget) rows in
    all. A new candidate that needs a training that an earlier job in flight runs waits
    until that job is recorded, so it reads the training back instead of running it again.
    """

    def __init__(self, searcher: Searcher, *, recorded: list[dict[str, Any]], budget: int, window: int,
                 seed: int, out_dir: Path, enqueued: Sequence[Candidate] = (),
                 space_size: int | None = None, keys_of: Callable[[Candidate], Sequence[str]] | None = None,
                 counts: str = "evaluations", arch_size: int | None = None, tasks: int = 1) -> None:
        self.searcher, self.budget, self.window, self.seed = searcher, budget, int(window), seed
        self.out_dir = out_dir
        self.space_size = int(space_size if space_size is not None else searcher.space.size().total)
        self.by_seq = {int(r["seq"]): r for r in recorded}
        self.assigned = len(self.by_seq)   # rows in the ledger or being evaluated
        self.next_seq = 0
        self.known: dict[str, dict[str, Any]] = {}  # id -> ledger row
        self.running: dict[str, Job] = {}
        self.pending: deque[_Proposal] = deque()
        self.replaying = bool(self.by_seq)
        self.replayed = 0
        self.repeats, self.repeat_limit = 0, REPEAT_FACTOR * min(budget, self.space_size)
        self.stopped = "budget"
        self._halt = False
        self._info = searcher.candidate_info
        self.messages: list[str] = []
        # Candidates the user asked for first: proposed before the searcher is asked, and
        # told to it like any result (a warm start).
        self.enqueued: deque[Candidate] = deque(enqueued)
        if counts not in BUDGET_COUNTS or (counts == "trainings" and keys_of is None):
            raise ValueError(f"counts must be one of {BUDGET_COUNTS} (trainings with keys_of), got {counts!r}")
        self.keys_of, self.counts = keys_of, counts
        in_trainings = counts == "trainings"
        self.arch_size = arch_size if in_trainings else None
        self.row_limit = max(ROW_FLOOR, ROW_FACTOR * budget) if in_trainings else None
        self.quota = budget * int(tasks) if in_trainings else budget  # what spent may reach
        self.first_use: dict[str, int] = first_uses(recorded, keys_of) if keys_of is not None else {}
        self._paid: Counter[int] = Counter(self.first_use.values())  # seq -> trainings it pays for
        self.training_now: dict[str, str] = {}  # training key -> id of the job in flight that runs it
        self.waiting: list[tuple[Job, tuple[str, ...]]] = []  # jobs whose trainings run in another job

    @property
    def spent(self) -> int:
        """How much of the budget the ledger and the evaluations in flight use."""
        return len(self.first_use) if self.counts == "trainings" else self.assigned

    def cost(self, seq: int) -> int:
        """What row ``seq`` costs of the budget: 1, or the trainings it is the first to use."""
        return self._paid.get(int(seq), 0) if self.counts == "trainings" else 1

    def can_ask(self) -> bool:
        if self._halt or self.spent >= self.quota or len(self.pending) >= self.window:
            return False
        name, unit = self.searcher.name, self.counts
        if self.assigned >= self.space_size:
            self.halt("exhausted")
            self.messages.append(f"[{name}] the space is exhausted: all {self.space_size} "
                                 f"distinct candidates are in {self.out_dir / FILENAME} or being evaluated; "
                                 f"stopping at {self.spent} of the {self.quota} {unit} of the budget")
            return False
        if self.arch_size is not None and self.spent >= self.arch_size:
            self.halt("exhausted")
            self.messages.append(f"[{name}] the space is exhausted: all its {self.arch_size} architectures are "
                                 f"trained (or in training); stopping at {self.spent} of the {self.quota} "
                                 f"trainings of the budget")
            return False
        if self.row_limit is not None and self.assigned >= self.row_limit:
            self.halt("row_limit")
            self.messages.append(f"[{name}] stopping at {self.assigned} evaluations, the most a run with a "
                                 f"budget of {self.budget} trainings makes (max({ROW_FLOOR}, {ROW_FACTOR} x "
                                 f"budget)); the searcher kept proposing trained architectures: {self.spent} "
                                 f"of the {self.quota} trainings of the budget")
            return False
        return True

    def done(self) -> bool:
        return not self.pending and not self.running and not self.can_ask()

    def advance(self) -> list[Job]:
        """Tell every result that is due, ask what the window allows; the new jobs (and
        those whose trainings the jobs in flight have finished)."""
        jobs: list[Job] = self._released()
        while True:
            while self.can_ask():
                job = self._ask_one()
                if job is not None:
                    jobs.append(job)
            if self.pending and self.pending[0].row is not None:
                p = self.pending.popleft()
                self.searcher.tell(p.cand, _told(p.row))
                continue
            return jobs

    def complete(self, row: dict[str, Any]) -> dict[str, Any]:
        """Take a finished evaluation's row (as the ledger stores it)."""
        self.running.pop(row["id"], None)
        self.known[row["id"]] = row
        self._heard(row)
        return row

    def _heard(self, row: dict[str, Any]) -> None:
        """The job of ``row`` has trained (a job waiting for its trainings may start), and its
        proposals are due to be told ``row``."""
        for key in [k for k, who in self.training_now.items() if who == row["id"]]:
            del self.training_now[key]
        for p in self.pending:
            if p.row is None and p.cand.id == row["id"]:
                p.row = row

    def tell_head(self, row: dict[str, Any]) -> None:
        """Take the head of a job's row: all of it but its hardware front (see
        :func:`_told`), whose full row comes to :meth:`complete` later. The searcher is told
        it in proposal order as if it were the row, and the job's trainings count as done (a
        job waiting for them may start), but the job stays in flight until the row comes."""
        self._heard(row)

    def _released(self) -> list[Job]:
        """The waiting jobs whose trainings no job in flight runs any more, in order."""
        out, still = [], []
        for job, keys in self.waiting:
            # A key it trains itself maps to its own id: only another job's training holds it back.
            blocked = any(self.training_now.get(k, job.cand.id) != job.cand.id for k in keys)
            if blocked:
                still.append((job, keys))
            else:
                out.append(job)
        self.waiting = still
        return out

    def _use(self, key: str, seq: int) -> None:
        prev = self.first_use.get(key)
        if prev is None or seq < prev:
            if prev is not None:
                self._paid[prev] -= 1
            self.first_use[key] = seq
            self._paid[seq] += 1

    def _end_replay(self) -> None:
        self.replaying = False
        self.messages.append(f"[{self.searcher.name}] replayed {self.replayed} ledger rows from "
                             f"{self.out_dir / FILENAME}")

    def halt(self, why: str) -> None:
        """Ask nothing more; what is in flight is still told."""
        self.stopped, self._halt = why, True

    def _ask_one(self) -> Job | None:
        cand = self.enqueued.popleft() if self.enqueued else self.searcher.ask(1)[0]
        prop = _Proposal(cand)
        self.pending.append(prop)
        if self.replaying and cand.id not in self.known and cand.id not in self.running:
            expect = self.by_seq.get(self.next_seq)
            if expect is not None and expect["id"] == cand.id:
                prop.row = self.known[cand.id] = expect
                self.next_seq += 1
                self.replayed += 1
                self.repeats = 0
                if self.next_seq > max(self.by_seq):
                    self._end_replay()
                return None
            if expect is not None:
                # Same code and seed never get here; a changed searcher or evaluator does.
                later = [r for q, r in self.by_seq.items() if q >= self.next_seq]
                warnings.warn(f"{self.out_dir}: replay diverged at seq {self.next_seq}: the searcher "
                              f"proposed {cand.id}, the ledger has {expect['id']}; the {len(later)} remaining "
                              f"rows are kept and are told when proposed", RuntimeWarning, stacklevel=4)
                self.known.update((r["id"], r) for r in later)
                self.next_seq = max(self.by_seq) + 1
                self._end_replay()
        if cand.id in self.known or cand.id in self.running:
            prop.row = self.known.get(cand.id)
            self.repeats += 1
            if self.repeats > self.repeat_limit:
                warnings.warn(f"{self.searcher.name} proposed {self.repeats} already-evaluated candidates in a "
                              f"row; stopping at {self.assigned}/{self.budget} evaluations",
                              RuntimeWarning, stacklevel=4)
                self.stopped, self._halt = "repeats", True
            return None
        seq = self.next_seq
        self.next_seq += 1
        if self.replaying and self.next_seq > max(self.by_seq):
            self._end_replay()
        self.assigned += 1
        self.repeats = 0
        info = self._info(cand)
        # A searcher that could not finish the search proposing it (a diverged supernet):
        # a failed row with that reason, nothing to evaluate.
        failed = f"search failed: {info['search_failed']}" if info and info.get("search_failed") else None
        if self.keys_of is None:
            job = Job(seq, cand, eval_seed(self.seed, seq), failed=failed, info=info)
            self.running[cand.id] = job
            return job
        try:
            keys = tuple(dict.fromkeys(self.keys_of(cand)))
        except Exception:  # noqa: BLE001 - the evaluation meets the same fault and records it as failed
            keys = ()
        trains = tuple(k for k in keys if k not in self.first_use or self.first_use[k] > seq)
        for k in keys:
            self._use(k, seq)
        job = Job(seq, cand, eval_seed(self.seed, seq), failed=failed, info=info, trains=trains)
        self.running[cand.id] = job
        if failed is not None:
            return job
        busy = any(k in self.training_now for k in keys)
        for k in trains:
            self.training_now[k] = cand.id
        if busy:
            self.waiting.append((job, keys))
            return None
        return job


def first_uses(recorded: Sequence[dict[str, Any]], keys_of: Callable[[Candidate], Sequence[str]]
               ) -> dict[str, int]:
    """Training key -> seq of the first of the ``recorded`` rows that uses it (a row whose
    keys cannot be made, as when it was proposed, uses none)."""
    out: dict[str, int] = {}
    for row in sorted(recorded, key=lambda r: int(r["seq"])):
        try:
            keys = tuple(keys_of(Candidate.make(row["arch"], row["hw"])))
        except Exception:  # noqa: BLE001 - see Schedule._ask_one
            keys = ()
        for key in keys:
            out.setdefault(key, int(row["seq"]))
    return out


def default_window(executor: Executor) -> int:
    """Proposals out at once unless the caller says: one in-process; with workers, a batch
    running on each worker plus one waiting. Results are told in proposal order, so with
    exactly one job per worker a worker that finishes before an older proposal's worker
    idles until that one is told; the waiting job keeps it busy (the more evaluation times
    spread, the more that matters; the README's executor figures compare both windows).
    The searcher then proposes with up to this many results outstanding.
    """
    slots, batch = int(executor.slots), int(executor.batch)
    return 1 if slots <= 1 and batch <= 1 else slots * (batch + 1)


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


class _Interrupted(BaseException):
    """SIGTERM, turned into an exception so that the run writes its outputs before it ends.
    A BaseException, like KeyboardInterrupt, so that no evaluation records it as its failure."""


def _on_sigterm() -> Callable[[], None]:
    """Make SIGTERM raise :class:`_Interrupted` in the main thread until the returned
    function is called (elsewhere the default handling stays)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def raise_(signum: int, frame: Any) -> None:
        raise _Interrupted("SIGTERM")

    old = signal.signal(signal.SIGTERM, raise_)
    return lambda: signal.signal(signal.SIGTERM, old)


def _json_safe(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def run_bounds(objectives: Sequence[Objective], out_dir: Path, *, limits: Mapping[str, float] | None,
               ref_point: Mapping[str, float] | None) -> tuple[Objective, ...]:
    """The objectives with the hypervolume bounds of the run in ``out_dir``: those recorded
    in its run.json when it has them (so a resumed run keeps its scale), else fixed now
    from ``ref_point``, the design-spec ``limits`` and the objectives' own bounds."""
    path = out_dir / RUN_FILE
    if path.exists():
        recorded = read_run_json(out_dir).get("objective_bounds")
        if isinstance(recorded, dict) and set(recorded) == {o.name for o in objectives}:
            out = []
            for o in objectives:
                b = recorded[o.name] if isinstance(recorded[o.name], dict) else {}
                out.append(Objective(o.name, o.direction, o.unit, b.get("ideal"), b.get("bound"), o.description))
            return tuple(out)
    return fix_bounds(objectives, limits=limits, ref_point=ref_point)


def _run_search(*, space: SearchSpace, evaluator: Evaluator, searcher: Searcher, budget: int,
                out_dir: str | Path, seed: int, resume: bool = False, config: dict[str, Any] | None = None,
                progress: bool | TextIO = True, limits: dict[str, float] | None = None,
                executor: Executor | None = None, window: int | None = None,
                ref_point: Mapping[str, float] | None = None, timeout: float | None = None,
                callbacks: Sequence[Callable[[dict[str, Any]], None]] = (),
                enqueued: Sequence[Candidate] = (), retrain_top: int = 0) -> RunOutcome:
    """:func:`run_search` without the run-directory lock (which it holds around this)."""
    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    config = dict(config or {})
    objectives = _check_args(space, evaluator, searcher, budget, seed, config)
    _check_limits(timeout, window)
    seed, budget = int(seed), int(budget)
    # What scored the rows, for the resume check, when the config does not say (a Study's does).
    meta = run_meta(space=space, searcher=searcher, objectives=objectives, seed=seed, config=config,
                    evaluator=type(getattr(evaluator, "inner", evaluator)).__name__)
    retrainer = _retrainer(evaluator, objectives, retrain_top)
    ledger, recorded = _open_ledger(out_dir, meta, resume)
    # The search's rows; rows written after it (retrain rows) are not the searcher's to replay.
    closed = len(recorded) - len(search_rows(recorded))
    recorded = search_rows(recorded)
    defs = run_bounds(searcher.objective_defs, out_dir, limits=limits, ref_point=ref_point)
    executor = executor if executor is not None else InProcessExecutor()
    meta["budget_counts"] = counts = _budget_counts(out_dir, evaluator, searcher, recorded)
    # The evaluator learns the run directory before it is sent to workers, and before the
    # recorded rows' training keys are read from it.
    evaluator_hook(evaluator, "attach_run_dir")(out_dir, resume=bool(recorded), seed=seed)
    keys_of = evaluator_hook(evaluator, "training_keys") if evaluator_attr(evaluator, "trains") else None
    paid = Counter(first_uses(recorded, keys_of).values()) if counts == "trainings" else None
    spent = sum(paid.values()) if paid is not None else len({r.get("seq") for r in recorded})
    tasks = len(space.tasks) if paid is not None else 1
    budget_asked, budget = budget, _open_budget(out_dir, closed, spent, budget, tasks)
    started = spent < budget * tasks
    prog = Progress(progress, budget=budget * tasks, objective=defs[0], label=searcher.name)
    interrupted: BaseException | None = None
    restore = _on_sigterm()
    sched: Schedule | None = None
    rec: _Recorder | None = None
    retrained: list[str] = []  # ids of the retrain rows this session wrote
    try:
        window = _begin(out_dir, recorded, meta, defs, searcher=searcher, evaluator=evaluator, executor=executor,
                        objectives=objectives, prog=prog, window=window, budget=budget * tasks, start=started,
                        enqueued=enqueued, paid=paid)
        sched = _new_schedule(searcher, recorded, budget=budget, window=int(window), seed=seed,
                              out_dir=out_dir, enqueued=enqueued, keys_of=keys_of, counts=counts,
                              arch_size=None if space.multi_task else space.size().arch, tasks=tasks)
        rec = _Recorder(ledger, sched, prog, callbacks,
                        deadline=None if timeout is None else t_start + timeout)
        _drive(executor, sched, rec)
        if retrainer is not None and sched.stopped != "timeout":
            _retrain(ledger, retrainer, objectives, defs, top=retrain_top, seed=seed, out_dir=out_dir,
                     prog=prog, written=retrained)
    except (KeyboardInterrupt, _Interrupted) as exc:
        interrupted = exc
    finally:
        restore()
        if started:
            executor.close()
        prog.close()

    summary = {
        "nasco_version": nasco.__version__, "seed": seed, "searcher": meta["searcher"],
        "searcher_state": _json_safe(searcher.state_dict()), "config": config, "budget": budget,
        "resumed": bool(recorded), "replayed": sched.replayed if sched else 0, "window": window,
        "executor": executor.describe(), "evaluated_this_session": rec.evaluated if rec else 0,
        "stopped": "interrupted" if interrupted is not None or sched is None else sched.stopped,
        "wall_seconds": time.perf_counter() - t_start, "space": space.describe(), "budget_counts": counts,
    }
    summary.update(_spent(ledger, evaluator, counts, budget_asked, retrain_top, closed, len(retrained)))
    rep = write_outputs(out_dir, ledger, defs, limits, summary,
                        report_metrics=tuple(evaluator_attr(evaluator, "report_metrics")))
    if interrupted is not None:
        prog.message(f"[{searcher.name}] interrupted after {rep.counts['total']} evaluations; pareto.csv and "
                     f"summary.json written for them; resume with --resume (resume=True)")
        raise KeyboardInterrupt(str(interrupted) or "interrupted") from None
    return _outcome(out_dir, rep, objectives, summary, t_start, len(retrained))


def _spent(ledger: Ledger, evaluator: Evaluator, counts: str, budget: int, retrain_top: int, closed: int,
           retrained: int) -> dict[str, Any]:
    """The summary's account of what the run spent: its trainings (when the budget counts
    them) and, for a run with retraining, the budget asked and the retrains."""
    out: dict[str, Any] = {}
    if retrain_top or closed:
        out["budget"] = budget
        out["retrain"] = {"top": int(retrain_top), "retrained_this_session": retrained}
    if counts == "trainings":
        keys_of = evaluator_hook(evaluator, "training_keys")
        out["trainings"] = len(first_uses(search_rows(ledger.rows()), keys_of))
    return out


def _check_limits(timeout: float | None, window: int | None) -> None:
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if window is not None and (not isinstance(window, (int, np.integer)) or window < 1):
        raise ValueError(f"window must be a positive number of proposals, got {window!r}")


def _open_budget(out_dir: Path, closed: int, spent: int, budget: int, tasks: int) -> int:
    """The budget this session runs to: ``budget``, unless ``closed`` rows (retrains) closed the
    search, which then stays as it is (with a warning when more was asked)."""
    if closed and spent < budget * tasks:
        warnings.warn(f"{out_dir}: the search is over ({closed} architectures of its front were retrained "
                      f"after it); its {spent} evaluations stand and nothing more is evaluated, whatever the "
                      f"budget ({budget}); search further in another --out", RuntimeWarning, stacklevel=4)
        return max(1, -(-spent // tasks))
    return budget


def _retrainer(evaluator: Evaluator, objectives: tuple[str, ...], top: int) -> Evaluator | None:
    """The evaluator that retrains the front after the search (None for ``top`` 0): a
    ValueError for a ``top`` that is not a non-negative integer, an evaluator without a
    retrainer, or objectives without ``accuracy``."""
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 0:
        raise ValueError(f"retrain_top must be a non-negative integer (architectures to retrain), "
                         f"got {top!r}")
    if not top:
        return None
    retrainer = evaluator_hook(evaluator, "retrainer")()
    if retrainer is None:
        kind = type(getattr(evaluator, "inner", evaluator)).__name__
        raise ValueError(f"retrain_top {top}: {kind} needs no retraining (its accuracies are not inherited); "
                         f"retraining applies to the one-shot evaluator")
    if "accuracy" not in objectives:
        raise ValueError(f"retrain_top {top}: the front's architectures are ranked by accuracy, which is not "
                         f"among the objectives ({', '.join(objectives)})")
    return retrainer


def _retrain(ledger: Ledger, retrainer: Evaluator, objectives: tuple[str, ...], defs: Sequence[Objective], *,
             top: int, seed: int, out_dir: Path, prog: Progress, written: list[str]) -> None:
    """Train the ``top`` best architectures of the search's front stand-alone
    (:func:`~nasco.run._retrain.retrain_plan`) with ``retrainer``, one after another in this
    process, each written to the ledger as a retrain row as soon as it is scored; an
    architecture with a retrain row already (an earlier session's) is not retrained. A row
    gets the next free seq and the seed :func:`eval_seed` gives it; ``phase``
    :data:`~nasco.run._ledger.RETRAIN_PHASE`; and the metrics ``accuracy_source``
    (stand-alone), ``retrained`` (True), ``retrains`` (the seqs of the search rows of its
    architecture) and ``inherited_accuracy`` (its best accuracy on the search's front). The
    retrainer keeps its trainings in the run directory, so a retraining interrupted before its
    row was written reads the training back. The id of each row written is appended to
    ``written`` as it is written."""
    rows = ledger.rows()
    done = {arch_of(r) for r in rows if is_retrain(r)}
    plan = retrain_plan(rows, defs, top)
    todo = [p for p in plan if arch_of({"arch": p.cand.arch}) not in done]
    if not todo:
        return
    evaluator_hook(retrainer, "attach_run_dir")(out_dir, resume=bool(done), seed=seed)
    keys_of = evaluator_hook(retrainer, "training_keys")
    seq = max(int(r["seq"]) for r in rows) + 1
    before = f" ({len(plan) - len(todo)} retrained before)" if len(todo) < len(plan) else ""
    prog.message(f"[retrain] training {len(todo)} of the {len(plan)} best architectures of the front "
                 f"stand-alone{before}")
    for i, p in enumerate(todo):
        job = Job(seq, p.cand, eval_seed(seed, seq), trains=tuple(keys_of(p.cand)))
        row = evaluate_job(retrainer, objectives, job)
        row = {"seq": row.pop("seq"), "id": row.pop("id"), "phase": RETRAIN_PHASE, **row}
        row["metrics"].update(accuracy_source=STAND_ALONE, retrained=True, retrains=list(p.retrains),
                              inherited_accuracy=p.inherited_accuracy)
        ledger.append(row)
        written.append(row["id"])
        acc = row["objectives"].get("accuracy")
        prog.message(f"[retrain] {i + 1}/{len(todo)} {p.cand.id}: {row['status']}, accuracy "
                     + ("n/a" if acc is None else f"{acc:.4f}") + f" (inherited {p.inherited_accuracy:.4f})")
        seq += 1


def _begin(out_dir: Path, recorded: list[dict[str, Any]], meta: dict[str, Any], defs: Sequence[Objective], *,
           searcher: Searcher, evaluator: Evaluator, executor: Executor, objectives: tuple[str, ...],
           prog: Progress, window: int | None, budget: int, start: bool, enqueued: Sequence[Candidate],
           paid: Counter[int] | None) -> int:
    """Open the session: say what it does, start the executor (when anything is left to
    evaluate), fix the window (recorded on resume, else written to a new run.json), attach
    the searcher to the run directory and count the recorded rows in the progress (``paid``:
    seq -> the trainings each row is the first to use, where the budget counts trainings);
    the window."""
    unit = "evaluations" if paid is None else "trainings"
    spent = len(recorded) if paid is None else sum(paid.values())
    have = (f"{spent} of {budget} {unit} in the ledger" + ("" if paid is None else f" ({len(recorded)} evaluations)")
            if recorded else f"budget {budget}" + ("" if paid is None else " trainings"))
    prog.message(f"[{searcher.name}] {'resuming' if recorded else 'starting'} {out_dir}: {have}, "
                 f"{executor.name} executor")
    if start:
        # Started before the window is fixed: how many evaluations fit at once may
        # depend on the cluster that the executor joins.
        executor.start(evaluator, objectives)
    if recorded:
        window = _recorded_window(out_dir, window)
    else:
        window = int(window or default_window(executor))
        record_run(out_dir, meta, defs, window=window, enqueued=enqueued)
    # A searcher that keeps files of its own (an Optuna study) keeps them in the run
    # directory; on resume it reattaches to them.
    searcher.attach_run_dir(out_dir, resume=bool(recorded))
    for row in recorded:
        prog.record(row["status"], row.get("objectives"), 1 if paid is None else paid.get(int(row["seq"]), 0))
    return int(window)


def _outcome(out_dir: Path, rep: Any, objectives: Sequence[str], summary: dict[str, Any],
             t_start: float, retrained: int = 0) -> RunOutcome:
    """What the run returns, from what :func:`write_outputs` reported and the summary."""
    sources = ["accuracy_source"] if rep.sources is not None else []
    front = rep.front.reindex(columns=["id", *objectives, *sources, "arch", "hw"])
    return RunOutcome(out_dir=out_dir, counts=rep.counts, front=front, hypervolume=rep.hypervolume,
                      reference_point=rep.reference_point, wall_seconds=time.perf_counter() - t_start,
                      evaluated=summary["evaluated_this_session"], replayed=summary["replayed"],
                      stopped=summary["stopped"], trainings=summary.get("trainings"), retrained=retrained,
                      sources=rep.sources)


def _open_ledger(out_dir: Path, meta: dict[str, Any], resume: bool) -> tuple[Ledger, list[dict[str, Any]]]:
    """The run's ledger and its rows: a RunDirError for a ledger without ``resume``, or for a
    resume of a run that run.json records differently (:func:`check_run_json`)."""
    ledger = Ledger(out_dir / FILENAME)
    recorded = ledger.rows() if ledger.path.exists() else []
    if recorded and not resume:
        raise RunDirError(f"{out_dir} already holds a run ({len(recorded)} evaluations in {FILENAME}); "
                          f"pass --resume (resume=True) to continue it, or choose another --out")
    if recorded:
        check_run_json(out_dir, meta)
    return ledger, recorded


def _budget_counts(out_dir: Path, evaluator: Evaluator, searcher: Searcher, recorded: list[dict[str, Any]]) -> str:
    """What the run's budget counts: what run.json records on resume (evaluations for a run
    recorded before the choice existed), else trainings for an evaluator that ``trains``,
    unless the searcher is a differentiable one, each of whose proposals is a supernet search
    of its own (it counts evaluations)."""
    if recorded and (out_dir / RUN_FILE).exists():
        counts = read_run_json(out_dir).get("budget_counts", "evaluations")
        if counts not in BUDGET_COUNTS:
            raise RunDirError(f"{out_dir / RUN_FILE}: budget_counts: expected one of {', '.join(BUDGET_COUNTS)}, "
                              f"found {counts!r}; restore the file or start afresh in another --out")
        return str(counts)
    if searcher.name in DIFFERENTIABLE:
        return "evaluations"
    return "trainings" if evaluator_attr(evaluator, "trains") else "evaluations"


def _new_schedule(searcher: Searcher, recorded: list[dict[str, Any]], *, budget: int, **kw: Any) -> Schedule:
    """The session's :class:`Schedule`; ``stopped`` is "complete" when the ledger already
    holds the budget (a warning when it holds more evaluations than a budget of evaluations)."""
    sched = Schedule(searcher, recorded=recorded, budget=budget, **kw)
    if sched.spent >= sched.quota:
        sched.stopped = "complete"
        if sched.counts == "evaluations" and len(sched.by_seq) > budget:
            warnings.warn(f"{sched.out_dir}: the ledger already holds {len(sched.by_seq)} evaluations, more "
                          f"than the budget {budget}; nothing to evaluate", RuntimeWarning, stacklevel=3)
    return sched


def record_run(out_dir: Path, meta: dict[str, Any], objectives: Sequence[Objective], *, window: int,
               enqueued: Sequence[Candidate] = ()) -> None:
    """Write a new run's run.json: ``meta`` (:func:`run_meta`) with the window, the
    objectives and their hypervolume bounds, and the enqueued candidates."""
    meta.update(window=int(window),
                objective_bounds={o.name: {"ideal": o.ideal, "bound": o.bound} for o in objectives},
                objective_defs=[o.to_dict() for o in objectives])
    if enqueued:
        meta["enqueued"] = [json.loads(c.to_json()) for c in enqueued]
    write_run_json(out_dir, meta)


def _recorded_window(out_dir: Path, asked: int | None) -> int:
    """The window run.json records (a resumed run keeps it, with a warning if asked for another)."""
    was = 1
    if (out_dir / RUN_FILE).exists():
        was = read_run_json(out_dir).get("window", 1)
    if asked is not None and asked != was:
        warnings.warn(f"{out_dir}: resuming with the recorded window {was} (proposals out at once), "
                      f"not {asked}: the window shapes the searcher's trajectory", RuntimeWarning, stacklevel=4)
    return int(was)


class _Recorder:
    """Finished evaluations: into the ledger first (one fsync per batch), then to the
    schedule, the progress display and the callbacks; past ``deadline`` it halts the asking."""

    def __init__(self, ledger: Ledger, sched: Schedule, prog: Progress,
                 callbacks: Sequence[Callable[[dict[str, Any]], None]], *, deadline: float | None) -> None:
        self.ledger, self.sched, self.prog, self.callbacks = ledger, sched, prog, callbacks
        self.deadline = deadline
        self.evaluated = 0
        self.headed: set[int] = set()  # seqs whose heads were told and whose rows are to come

    def all(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not rows:  # only heads came back
            return []
        self.ledger.extend(rows)
        stored = []
        for row in rows:
            row = self.sched.complete(json.loads(to_json_line(row)))  # exactly what a replay reads back
            self.evaluated += 1
            seq = int(row["seq"])
            self.prog.record(row["status"], row["objectives"], self.sched.cost(seq), headed=seq in self.headed)
            self.headed.discard(seq)
            stored.append(row)
        self.prog.show()
        for row in stored:
            for callback in self.callbacks:
                callback(row)
        if self.deadline is not None and time.perf_counter() > self.deadline and not self.sched._halt:
            self.sched.halt("timeout")
        return stored

    def one(self, row: dict[str, Any]) -> dict[str, Any]:
        return self.all([row])[0]

    def head(self, row: dict[str, Any]) -> None:
        """A row's head (its hardware front still being made, see Executor.take_heads): told to
        the schedule as a replay would read it back, and counted by the progress display."""
        self.sched.tell_head(json.loads(to_json_line(row)))
        seq = int(row["seq"])
        self.prog.head(self.sched.cost(seq))
        self.headed.add(seq)

    def say(self) -> None:
        for text in self.sched.messages:
            self.prog.message(text)
        self.sched.messages.clear()
        self.prog.open()  # once, after what the replay said


def _drive(executor: Executor, sched: Schedule, rec: _Recorder) -> None:
    """Ask, submit, wait and record until the schedule is done."""
    if executor.drives:
        # An executor with its own control loop (Ray Tune calls in for suggestions).
        executor.drive(sched, rec.one, rec.say)
        return
    jobs = sched.advance()
    while True:
        rec.say()
        for job in jobs:
            executor.submit(job)
        if sched.done():
            return
        rows = executor.wait()
        for head in executor.take_heads():
            rec.head(head)
        rec.all(rows)
        jobs = sched.advance()


def run_search(*, out_dir: str | Path, **kw: Any) -> RunOutcome:
    """Run a search until the ledger in ``out_dir`` holds ``budget`` distinct evaluations, or,
    where the evaluator memoises its trainings (``trains``; not with a differentiable
    searcher), ``budget`` distinct trainings (see :class:`Schedule`, whose ``"row_limit"``
    stop bounds the rows of such a run). run.json records which (``budget_counts``), and a
    resume counts the same way. The evaluator's ``attach_run_dir`` hook gets the run
    directory, the resume flag and the seed before the first evaluation.

    ``executor`` runs the evaluations (default: in this process, one at a time; see
    :class:`~nasco.run._base.Executor`); ``window`` is how many proposals may be out at once
    (default: :func:`default_window`). The window shapes what the searcher sees when it
    proposes, so it is recorded in run.json and a resumed run keeps the recorded one.

    ``searcher`` must be fresh (nothing told); its objectives (with their directions) are
    the run's. The hypervolume in summary.json is normalised at each objective's ideal and
    bound: ``ref_point[name]`` (natural units), else the design-spec limit in ``limits``
    (base units; the evaluator applies its own constraints), else the objective's own
    bound; they are fixed in run.json on the first session and kept on resume.

    ``progress`` (True: stderr, a stream: there, False: silent) shows a line as the run
    starts, then a bar (:class:`nasco.run._progress.Progress`; one line per evaluation off a
    terminal) that stays as the run's last line; the outcome is the caller's to report.

    ``timeout`` (seconds of this session) stops asking for new candidates once passed;
    what is in flight is finished. Each callback gets every new ledger row, as stored,
    right after it is written. ``enqueued`` candidates are evaluated first, in order, and
    told to the searcher like its own proposals (they must be the same on resume).

    SIGTERM and Ctrl-C stop the run after writing pareto.csv and summary.json for what
    finished, then raise KeyboardInterrupt; the ledger resumes as after any interruption.
    The run holds an OS lock on ``out_dir`` (:class:`~nasco.run._lock.RunLock`) from before
    it reads the ledger until it returns: a second driver on the same directory gets a
    RunDirError naming the holder, and a killed run's lock never blocks its resume.
    Raises :class:`RunDirError` if ``out_dir`` holds a ledger and ``resume`` is False, or
    if ``resume`` is True and run.json records a different seed, searcher, space, design
    specs, objectives or evaluator setting (``config["evaluator"]`` and
    ``config["evaluator_options"]``, see :func:`~nasco.run._rundir.row_settings`; without
    them, the evaluator's class name), or if run.json or the ledger is damaged (a line
    other than a torn last one that is not a valid, distinct row).

    The run also ends, with ``stopped`` = ``"exhausted"``, once every distinct candidate of
    the space is in the ledger (see :class:`Schedule`), whatever the budget.

    ``retrain_top`` K > 0 (an evaluator with a ``retrainer``, such as the one-shot evaluator,
    and an ``accuracy`` objective; else a ValueError): once the search is over (not after a
    ``timeout`` or an interruption), the K best architectures of its front are trained from
    scratch by the retrainer and written to the ledger as retrain rows (see :func:`_retrain`);
    they come after the budget, which counts the search alone. The reported front (pareto.csv,
    summary.json, the outcome) then takes each retrained architecture's stand-alone scores in
    place of its inherited ones (:func:`~nasco.run._retrain.reported_rows`). A resume retrains
    what is left and redoes no retrain row; a ledger with retrain rows is a finished search,
    so a resume evaluates nothing more for the search (with a warning when the budget asks
    for more).
    """
    with RunLock(out_dir):
        return _run_search(out_dir=out_dir, **kw)
