"""The study: what users call (``create_study`` / ``load_study``), in Optuna's shape.

A study is a run directory (its storage): run.json says what is searched and how, the
ledger holds every evaluation. ``optimize`` runs the search driver on it; ``ask`` and
``tell`` let a user's own loop do the evaluating; ``front`` and ``trials_dataframe`` read
the ledger. Every default of a run lives here once: the command line maps its flags onto
these arguments and adds none of its own.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from nasco.core import (
    BUILTIN_OBJECTIVES,
    Candidate,
    NascoError,
    Objective,
    Result,
    RunDirError,
    resolve_objectives,
)
from nasco.core._result import evaluator_attr, evaluator_hook
from nasco.run import Ledger, RunOutcome, Schedule, run_search
from nasco.run._driver import record_run, run_bounds
from nasco.run._job import Job, evaluate_job
from nasco.run._ledger import FILENAME, is_retrain, to_json_line
from nasco.run._lock import RunLock
from nasco.run._outputs import SUMMARY_JSON
from nasco.run._retrain import reported_rows
from nasco.run._rundir import (
    RUN_FILE,
    check_run_json,
    check_settings,
    read_run_json,
    recorded_evaluator,
    row_settings,
    run_meta,
)
from nasco.search import DIFFERENTIABLE, SEARCHERS, Searcher, make_searcher
from nasco.space import SearchSpace
from nasco.study._evaluators import (
    EVALUATOR_KINDS,
    FunctionEvaluator,
    SpecChecked,
    evaluator_options,
    make_evaluator,
)
from nasco.study._spaces import build_space

__all__ = ["DEFAULT_SEARCHER", "Study", "create_study", "load_study"]

DEFAULT_SEARCHER = "evolution"


def _known_searcher(name: str) -> None:
    known = {**SEARCHERS, **DIFFERENTIABLE}
    if name not in known:
        import difflib

        close = difflib.get_close_matches(name, list(known), n=1)
        raise NascoError(f"searcher: expected one of {', '.join(known)}, found '{name}'"
                         + (f"; did you mean '{close[0]}'?" if close else ""))


class Study:
    """A search on one problem, kept in one run directory. Make one with
    :func:`create_study` or :func:`load_study`, not directly."""

    def __init__(self, *, storage: Path, space: SearchSpace, space_facts: dict[str, Any],
                 objectives: Any, searcher: str, searcher_options: dict[str, Any], seed: int,
                 ref_point: Mapping[str, float] | None, recorded: dict[str, Any] | None) -> None:
        self.storage = Path(storage)
        self.space = space
        self.seed = int(seed)
        self.searcher_name = searcher
        self.searcher_options = dict(searcher_options)
        self.ref_point = dict(ref_point or {})
        self._space_facts = space_facts
        self._objective_spec = objectives
        self._recorded = recorded or {}
        self._enqueued: list[Candidate] = []
        for i, c in enumerate(self._recorded.get("enqueued", [])):
            try:
                self._enqueued.append(Candidate.make(c.get("arch"), c.get("hw")))
            except NascoError as exc:
                raise NascoError(f"{self.storage / RUN_FILE}: key 'enqueued[{i}]': {exc}") from None
        defs = self._recorded.get("objective_defs")
        self._objectives: tuple[Objective, ...] | None = (
            tuple(Objective.from_dict(d) for d in defs) if defs else None)
        self._loop: tuple[Searcher, Schedule, Ledger, Any] | None = None
        self._asked: list[Job] = []
        self._lock: RunLock | None = None

    # ------------------------------------------------------------------ objectives
    @property
    def objectives(self) -> tuple[Objective, ...]:
        """The study's objectives with their directions and hypervolume bounds."""
        if self._objectives is None:
            if self._objective_spec is None:
                raise NascoError("objectives: not known yet; give create_study(objectives=...) or let "
                                 "optimize() take the evaluator's")
            self._objectives = resolve_objectives(self._objective_spec)
        return self._objectives

    @property
    def objective_names(self) -> tuple[str, ...] | None:
        """The names asked for (None: the evaluator's defaults)."""
        if self._objectives is not None:
            return tuple(o.name for o in self._objectives)
        spec = self._objective_spec
        if spec is None:
            return None
        if isinstance(spec, str):
            return tuple(s.strip() for s in spec.split(",") if s.strip())
        if isinstance(spec, Mapping):
            return tuple(spec)
        return tuple(o.name if isinstance(o, Objective) else str(o) for o in spec)

    def _adopt(self, evaluator: Any) -> tuple[Objective, ...]:
        """Fix the objectives against ``evaluator``: its declared definitions (a table's
        directions and ranges) resolve names the built-ins do not know."""
        names = tuple(getattr(evaluator, "objectives", ()))
        if self._objectives is None:
            known = {**BUILTIN_OBJECTIVES, **{o.name: o for o in evaluator_attr(evaluator, "objective_defs")}}
            spec = self._objective_spec if self._objective_spec is not None else names
            self._objectives = resolve_objectives(spec, known)
        mine = tuple(o.name for o in self._objectives)
        if names != mine:
            raise NascoError(f"evaluator: scores objectives {list(names)}, expected the study's {list(mine)} "
                             f"(in that order)")
        return self._objectives

    # ------------------------------------------------------------------ running
    def _config(self, evaluator_facts: Mapping[str, Any], budget: int | None,
                retrain_top: int = 0) -> dict[str, Any]:
        options = dict(self.searcher_options)
        if isinstance(options.get("storage"), str):
            from nasco.search._optuna import mask_url

            options["storage"] = mask_url(options["storage"])  # never a password on disk
        config = {**self._space_facts, **evaluator_facts, "searcher": self.searcher_name,
                  "searcher_options": options, "budget": budget, "ref_point": self.ref_point or None}
        if retrain_top:
            config["retrain_top"] = int(retrain_top)
        return config

    def _searcher(self, extra: Mapping[str, Any] | None = None) -> Searcher:
        if self._recorded:
            try:
                _known_searcher(self.searcher_name)
            except NascoError as exc:
                raise NascoError(f"{self.storage / RUN_FILE}: key 'searcher.name': {exc}; this nasco cannot "
                                 f"continue the run (reading it works)") from None
        opts = {**self.searcher_options, **(extra or {})}
        try:
            return make_searcher(self.searcher_name, self.space, self.objectives, self.seed, **opts)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, NascoError):
                raise
            shown = self._config({}, None)["searcher_options"]  # a storage URL's password masked
            raise NascoError(f"searcher {self.searcher_name} with options {shown}: {exc}") from None

    def default_budget(self) -> int:
        """Evaluations a run makes unless told: 10, 2 for a differentiable searcher (each one is
        a supernet search); the README gives the default run's wall time."""
        return 2 if self.searcher_name in DIFFERENTIABLE else 10

    def make_evaluator(self, kind: str = "train", **options: Any) -> Any:
        """The evaluator of ``kind`` ('train', 'oneshot', 'proxy', 'table') on this study's space, with
        the study's seed; see :func:`nasco.study.make_evaluator` for the settings."""
        ev, facts = make_evaluator(kind, space=self.space, objectives=self.objective_names, seed=self.seed,
                                   **options)
        ev._nasco_facts = facts  # what run.json records about it
        return ev

    def optimize(self, evaluator: Any = None, *, budget: int | None = None, timeout: float | None = None,
                 executor: Any = None, window: int | None = None,
                 callbacks: Sequence[Callable[[Study, dict[str, Any]], None]] = (),
                 progress: Any = True, device: str | None = None, log: bool = True,
                 retrain_top: int | None = None) -> RunOutcome:
        """Search until the ledger holds ``budget`` evaluations, or ``budget`` distinct
        trainings for an evaluator that memoises them (the train evaluator, see
        :class:`~nasco.run.Schedule`) (default: the recorded budget of a loaded study, else
        :meth:`default_budget`), or until ``timeout`` seconds have passed (what is in flight
        finishes).

        ``evaluator``: an Evaluator (``evaluate(candidate, seed) -> Result`` and
        ``objectives``), one from :meth:`make_evaluator`, a plain function
        ``f(candidate) -> {objective: value}``, or None for the evaluator the study's run
        recorded (a loaded study). Design specs of the space apply to every evaluator's
        results. Each callback gets ``(study, row)`` for every new ledger row. A study with
        a ledger continues it: the ledger's rows are replayed to the searcher, not re-run,
        and an evaluator whose kind or settings give rows another meaning than the recorded
        ones (another table, dataset, split, fidelity, epochs, limit; see
        :func:`~nasco.run._rundir.row_settings`) is a RunDirError that names the setting and
        both values. The run stops early, ``stopped == "exhausted"``, once every distinct
        candidate of the space is in the ledger.

        ``retrain_top`` K (default: the recorded one of a loaded study, else 0): after the
        search, and after its budget, train the K best architectures of the front from scratch
        (distinct architectures ranked by their best accuracy on the front) and report them on
        the front with their stand-alone accuracy (:func:`~nasco.run.run_search`); for the
        one-shot evaluator only, whose accuracies are inherited. A resume retrains what is left.
        """
        facts: dict[str, Any]
        if evaluator is None:
            evaluator = self._recorded_evaluator()
        if isinstance(evaluator, str):
            evaluator = self.make_evaluator(evaluator)
        if callable(evaluator) and not hasattr(evaluator, "evaluate"):
            names = self.objective_names
            if names is None:
                raise NascoError("optimize(function): expected the study's objectives (create_study("
                                 "objectives={'name': 'max' or 'min', ...})), found none")
            evaluator = FunctionEvaluator(evaluator, names)
            facts = {"evaluator": "function",
                     "evaluator_function": getattr(evaluator.fn, "__qualname__", "?")}
        else:
            facts = dict(getattr(evaluator, "_nasco_facts", None) or
                         {"evaluator": type(evaluator).__name__})
        self._adopt(evaluator)
        if budget is None:
            budget = int(self._recorded.get("config", {}).get("budget") or self.default_budget())
        retrain_top = self._retrain_top(retrain_top, evaluator, facts)
        extra: dict[str, Any] = {}
        if self.searcher_name in DIFFERENTIABLE:
            data = getattr(evaluator, "data", None)
            extra = {"data": data[0] if isinstance(data, (list, tuple)) else data,
                     "device": device or facts.get("device", "cpu"), "log": log}
        if (self.searcher_options.get("hw_search") == "enumerate" and self.space.hw is not None
                and budget > self.space.hw.size()):
            raise NascoError(f"budget {budget}: expected at most the {self.space.hw.size()} configurations "
                             f"of '{self.space.hw.name}' that hw_search=enumerate can search, found more")
        searcher = self._searcher(extra)
        hw = self.space.hw
        limits = evaluator_attr(evaluator, "limits")
        if limits is None:
            limits = hw.limits() if hw is not None else {}
        self.close()  # an ask/tell loop of this object: optimize() continues its ledger
        resume = (self.storage / FILENAME).exists()
        cbs = [lambda row, cb=cb: cb(self, row) for cb in callbacks]
        outcome = run_search(space=self.space, evaluator=SpecChecked(evaluator, self.space),
                             searcher=searcher, budget=int(budget), out_dir=self.storage, seed=self.seed,
                             resume=resume,
                             config=self._config(facts, int(budget), retrain_top), progress=progress,
                             limits=limits, executor=executor, window=window,
                             ref_point=self.ref_point or None, timeout=timeout, callbacks=cbs,
                             enqueued=self._enqueued, retrain_top=retrain_top)
        self._reload_recorded()
        return outcome

    def _retrain_top(self, retrain_top: int | None, evaluator: Any, facts: Mapping[str, Any]) -> int:
        """``retrain_top`` checked against ``evaluator`` and the objectives (None: the recorded one,
        else 0)."""
        if retrain_top is None:
            retrain_top = self._recorded.get("config", {}).get("retrain_top") or 0
        if isinstance(retrain_top, bool) or not isinstance(retrain_top, int) or retrain_top < 0:
            raise NascoError(f"retrain_top: expected a non-negative integer (architectures of the front to "
                             f"retrain), found {retrain_top!r}")
        if retrain_top and evaluator_hook(evaluator, "retrainer")() is None:
            raise NascoError(f"retrain_top {retrain_top}: expected an evaluator whose accuracies are "
                             f"inherited (make_evaluator('oneshot')), found {facts.get('evaluator')}, whose "
                             f"accuracies need no retraining")
        if retrain_top and "accuracy" not in self.objective_names:
            raise NascoError(f"retrain_top {retrain_top}: expected 'accuracy' among the objectives (it ranks "
                             f"the front's architectures for retraining), found "
                             f"{', '.join(self.objective_names)}")
        return retrain_top

    def _recorded_evaluator(self, kind: str | None = None, **given: Any) -> Any:
        """The evaluator the run recorded, with the settings in ``given`` (None: recorded)
        in place of the recorded ones: a RunDirError names a kind or setting that would give
        the ledger's rows another meaning (:func:`~nasco.run._rundir.check_settings`), before
        any data is loaded."""
        cfg = self._recorded.get("config") or {}
        was, opts = recorded_evaluator(cfg)
        kind = kind or was
        if kind != was:
            check_settings(self.storage, {"evaluator": kind}, {"evaluator": was})
        if kind not in EVALUATOR_KINDS:
            raise NascoError(f"{self.storage}: the run was scored by a {kind} evaluator, which nasco cannot "
                             f"rebuild; pass it to optimize()")
        opts = {k: v for k, v in {**opts, **{k: v for k, v in given.items() if v is not None}}.items()
                if v is not None}
        check_settings(self.storage, row_settings({**cfg, "evaluator": kind, "evaluator_options":
                                                   evaluator_options(kind, opts)}),
                       self._recorded.get("settings") or row_settings(cfg))
        return self.make_evaluator(kind, **opts)

    def _reload_recorded(self) -> None:
        if (self.storage / RUN_FILE).exists():
            self._recorded = read_run_json(self.storage)

    # ------------------------------------------------------------------ ask / tell
    def enqueue(self, arch: Mapping[str, Any], hw: Mapping[str, Any] | None = None) -> Candidate:
        """Evaluate this candidate before the searcher's own proposals (a known good
        network, a baseline). Only before the study's first evaluation; the candidate must
        belong to the space."""
        if (self.storage / FILENAME).exists() or self._loop is not None:
            raise NascoError(f"{self.storage}: enqueue() before the first evaluation; this study has started")
        if not isinstance(arch, Mapping) or not isinstance(hw, (Mapping, type(None))):
            raise NascoError(f"enqueue: expected arch (and hw) as mappings, a candidate's genotype and "
                             f"accelerator choices, found {type(arch).__name__} (and {type(hw).__name__})")
        cand = Candidate.make(dict(arch), dict(hw or {}))
        try:
            self.space.check(cand)
        except (ValueError, KeyError) as exc:
            raise NascoError(f"enqueue: the candidate is not in the space: {exc}") from None
        self._enqueued.append(cand)
        return cand

    def _ask_tell_loop(self) -> tuple[Searcher, Schedule, Ledger, Any]:
        if self._loop is None:
            # Held while this object drives the study by ask/tell (optimize() lets it go).
            self._lock = RunLock(self.storage).acquire()
            searcher = self._searcher()
            ledger = Ledger(self.storage / FILENAME)
            rows = ledger.rows() if ledger.path.exists() else []
            if any(is_retrain(r) for r in rows):
                self._lock.release()
                self._lock = None
                raise NascoError(f"{self.storage}: the search is over (its front was retrained after it); "
                                 f"ask/tell cannot continue it; search further in another storage")
            meta = run_meta(space=self.space, searcher=searcher, objectives=self.objective_names or (),
                            seed=self.seed, config=self._config({"evaluator": "ask-tell"}, None))
            if rows:
                check_run_json(self.storage, meta)
            else:
                defs = run_bounds(self.objectives, self.storage, limits=self.space.hw.limits()
                                  if self.space.hw is not None else {}, ref_point=self.ref_point or None)
                record_run(self.storage, meta, defs, window=1, enqueued=self._enqueued)
            searcher.attach_run_dir(self.storage, resume=bool(rows))
            sched = Schedule(searcher, recorded=rows, budget=10 ** 12, window=1, seed=self.seed,
                             out_dir=self.storage, enqueued=self._enqueued)
            self._loop = (searcher, sched, ledger, None)
        return self._loop

    def close(self) -> None:
        """Let go of the run directory after an ask/tell loop (its lock; another process or
        study object may then drive it). Asking again takes it back."""
        if self._lock is not None:
            self._lock.release()
        self._lock, self._loop, self._asked = None, None, []

    def ask(self) -> Candidate:
        """The next candidate to evaluate (replaying the ledger first, once). Evaluate it
        and :meth:`tell` its result before asking again. The loop holds the run directory's
        lock until :meth:`close` (or the process ends)."""
        searcher, sched, ledger, waiting = self._ask_tell_loop()
        if waiting is not None:
            raise NascoError(f"ask(): candidate {waiting.cand.id} was asked and not told yet; "
                             f"tell() it first")
        # The last tell() already asked the next proposal (the schedule asks as it tells).
        jobs, self._asked = self._asked, []
        if not jobs:
            jobs = sched.advance()
        while not jobs:  # the searcher proposed a repeat: served from the ledger, told, asked again
            if sched.done():
                raise NascoError(f"ask(): the searcher stopped proposing new candidates ({sched.stopped})")
            jobs = sched.advance()
        self._loop = (searcher, sched, ledger, jobs[0])
        return jobs[0].cand

    def tell(self, candidate: Candidate, result: Result | Mapping[str, Any]) -> dict[str, Any]:
        """Record the result of the candidate :meth:`ask` returned: a Result, a dict of
        objective values, or a dict of Result fields; design specs apply. Returns the
        ledger row, written durably before the searcher is told."""
        searcher, sched, ledger, job = self._ask_tell_loop()
        if job is None or job.cand.id != candidate.id:
            raise NascoError(f"tell(): candidate {candidate.id} is not the one ask() returned"
                             + (f" ({job.cand.id})" if job is not None else ""))
        names = tuple(o.name for o in self.objectives)
        fn = FunctionEvaluator(lambda c: result, names)
        row = evaluate_job(SpecChecked(fn, self.space), names, job)
        ledger.extend([row])
        stored = sched.complete(json.loads(to_json_line(row)))
        self._loop = (searcher, sched, ledger, None)
        self._asked = sched.advance()  # tells the searcher, and asks the next proposal
        return stored

    # ------------------------------------------------------------------ reading
    def _rows(self) -> list[dict[str, Any]]:
        path = self.storage / FILENAME
        return Ledger(path).rows() if path.exists() else []

    def trials_dataframe(self) -> pd.DataFrame:
        """One row per evaluation, flat: ``seq``, ``id``, ``status``, one column per
        objective (named as the objective, in its unit: ``self.objectives[i].unit``, base
        units J, s, mm2 and accuracy as a fraction), ``reason``, ``seconds``, and the nested
        fields flattened with dots (``metrics.test_accuracy``, ``arch.hp.timesteps``,
        ``hw.template``, ``violations.latency``). ``df.attrs['units']`` maps each
        objective column to its unit. Rows written after the search (architectures
        retrained stand-alone) have ``phase`` 'retrain'."""
        return self._frame(self._rows())

    def _frame(self, rows: list[dict[str, Any]]) -> pd.DataFrame:
        """Ledger rows (or pairs) flat, as :meth:`trials_dataframe` describes."""
        names = [o.name for o in self.objectives]
        if not rows:
            df = pd.DataFrame(columns=["seq", "id", "status", *names])
        else:
            df = pd.json_normalize(rows, sep=".")
            df = df.rename(columns={f"objectives.{n}": n for n in names})
            for n in names:
                if n not in df.columns:
                    df[n] = float("nan")
            first = [c for c in ("seq", "id", "status", *names, "reason", "seconds") if c in df.columns]
            df = df[first + [c for c in df.columns if c not in first]]
            df = df.sort_values("seq", kind="stable").reset_index(drop=True)
        df.attrs["units"] = {o.name: o.unit for o in self.objectives}
        return df

    @property
    def front(self) -> pd.DataFrame:
        """The feasible non-dominated (architecture, accelerator) pairs, flat as in
        :meth:`trials_dataframe`: an evaluation whose evaluator scored other accelerator
        configurations for the same network (its ``members``) is one pair per configuration
        (:func:`nasco.pareto.expand_pairs`, with ``pair`` and ``row_id`` columns). An
        architecture retrained after the search stands on it with its stand-alone scores, its
        search rows left out (:func:`nasco.run._retrain.reported_rows`); ``metrics.accuracy_source``
        says which accuracy each pair has, where the evaluator records it."""
        from nasco.pareto import expand_pairs, pareto_front

        df = self._frame(expand_pairs(reported_rows(self._rows())))
        if df.empty:
            return df
        front = pareto_front(df, self.objectives)
        front.attrs["units"] = df.attrs["units"]
        return front

    def best(self, objective: str | None = None) -> pd.Series:
        """The feasible evaluation with the best value of ``objective`` (default: the
        first objective), as a row of :meth:`trials_dataframe`."""
        defs = {o.name: o for o in self.objectives}
        name = objective or next(iter(defs))
        if name not in defs:
            raise NascoError(f"best(): expected one of the study's objectives ({', '.join(defs)}), "
                             f"found '{name}'")
        df = self.trials_dataframe()
        ok = df[(df["status"] == "ok") & df[name].notna()] if len(df) else df
        if ok.empty:
            raise NascoError(f"best(): {self.storage} holds no feasible evaluation yet")
        idx = ok[name].idxmax() if defs[name].maximise else ok[name].idxmin()
        return ok.loc[idx]

    # ------------------------------------------------------------------ report
    def report(self, out: str | Path | None = None, *, zigzag: bool = False,
               zigzag_lpf_limit: int | None = None) -> tuple[Path, Path]:
        """Write the run's report: one self-contained HTML file (the front, the search history,
        each front architecture's cells, accelerator, per-layer energy and spike rates, the
        counts and config) and a markdown summary, in ``out`` (default: the storage folder);
        returns (report.html, report.md). ``nasco search`` writes it at its end. ``zigzag``:
        also each shown front architecture's best pair re-costed with ZigZag beside nasco's
        numbers (:func:`nasco.report.write_report`; ``zigzag_lpf_limit`` None: ZigZag's default)."""
        from nasco.report import write_report

        if zigzag_lpf_limit is None:
            return write_report(self.storage, out, zigzag=zigzag)
        return write_report(self.storage, out, zigzag=zigzag, zigzag_lpf_limit=zigzag_lpf_limit)

    # ------------------------------------------------------------------ export
    def export(self, id: str, format: str = "torch", out: str | Path | None = None, *,  # noqa: A002
               approximate: bool = False, train: bool = False, task: int | None = None) -> Path:
        """Export the network of candidate ``id`` (a front or ledger id, or a unique prefix)
        in ``format`` (``torch``, ``nir`` or ``onnx``) to the folder ``out`` (default
        ``STORAGE/exports/ID-FORMAT``), with its sidecar; returns the folder (see
        :func:`nasco.export.export`). With ``train``, a candidate whose network the run did not
        keep is first trained stand-alone with the run's recorded evaluator, settings and seed
        (by the evaluator's retrainer where it has one, as ``retrain_top`` would), and its
        weights are kept in the run directory."""
        from nasco.export import MissingWeightsError, export, find_pair

        try:
            return export(self.storage, id, format, out, approximate=approximate, task=task, space=self.space)
        except MissingWeightsError:
            if not train:
                raise
        key = self._train_for_export(find_pair(self.storage, id), task)
        return export(self.storage, id, format, out, approximate=approximate, task=task, key=key,
                      space=self.space)

    def _train_for_export(self, pair: Mapping[str, Any], task: int | None) -> str:
        """Train the network of ``pair`` with the run's recorded evaluator (its retrainer where
        it has one); the key of the training, whose weights are now in the run directory."""
        evaluator = self._recorded_evaluator()
        trainer = evaluator_hook(evaluator, "retrainer")() or evaluator
        evaluator_hook(trainer, "attach_run_dir")(self.storage, resume=True, seed=self.seed)
        cand = Candidate.make(pair["arch"], pair.get("hw") or {})
        keys = evaluator_hook(trainer, "training_keys")(cand)
        if not keys:
            kind = (self._recorded.get("config") or {}).get("evaluator")
            raise NascoError(f"{self.storage}: --train: the run's {kind} evaluator trains no network; "
                             f"export a candidate of a train or oneshot run")
        result = trainer.evaluate(cand, int(pair.get("seed") or 0))
        if result.status == "failed":
            raise NascoError(f"candidate {pair['id']}: training it for the export failed ({result.reason}); "
                             f"export another candidate of the front")
        return str(keys[task or 0])

    @property
    def summary(self) -> dict[str, Any]:
        """summary.json of the last session (empty before the first)."""
        path = self.storage / SUMMARY_JSON
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}

    def __repr__(self) -> str:
        return (f"Study(storage='{self.storage}', space='{self._space_facts.get('space')}', "
                f"hw={self._space_facts.get('hw')!r}, searcher='{self.searcher_name}', seed={self.seed})")


def create_study(*, space: str | Sequence[str] | SearchSpace, hw: str | None = None, objectives: Any = None,
                 searcher: str = DEFAULT_SEARCHER, searcher_options: Mapping[str, Any] | None = None,
                 storage: str | Path | None = None, seed: int = 0, load_if_exists: bool = False,
                 sets: Sequence[str] = (), ref_point: Mapping[str, float] | None = None) -> Study:
    """A new study (or the one in ``storage`` with ``load_if_exists``).

    ``space``: an architecture space by built-in name (``darts_snn``, ``darts``, ``nb201``)
    or .yaml path, several for a multi-task search, or a built :class:`SearchSpace`.
    ``hw``: an accelerator template, set or multi-accelerator by name or path (None: the
    architecture alone). ``sets``: overrides (``"macro.cells=4"``, ``"hw.clock_mhz=200"``).
    ``objectives``: names (``"accuracy,energy"``, a list), a mapping name -> ``"max"`` /
    ``"min"``, or :class:`Objective` s; None takes the evaluator's defaults.
    ``searcher``: a registered name (``nasco searchers`` lists them and their options).
    ``storage``: the run directory (default ``runs/SPACE-HW-seedSEED``). ``ref_point``:
    hypervolume bounds per objective, natural units (default: design-spec limits, then
    each objective's documented bound).
    """
    _known_searcher(searcher)
    if isinstance(space, SearchSpace):
        joint, facts = space, {"space": space.describe()["arch"], "space_file": None,
                               "hw": space.hw.name if space.hw is not None else None, "hw_file": None,
                               "set": list(sets)}
        if sets:
            raise NascoError("sets: overrides apply to spaces given by name or path, not to a built "
                             "SearchSpace")
    else:
        joint, facts = build_space(space, hw, sets)
    if storage is None:
        storage = Path("runs") / f"{facts['space']}-{facts['hw'] or 'nohw'}-seed{seed}"
    storage = Path(storage)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise NascoError(f"seed: expected a non-negative integer, found {seed!r}")
    if storage.exists() and not storage.is_dir():
        raise NascoError(f"storage {storage}: expected a directory, found a file; choose another path")
    if (storage / RUN_FILE).exists() or (storage / FILENAME).exists():
        if not load_if_exists:
            raise NascoError(f"storage {storage} already holds a study; load it (load_study / --resume, "
                             f"create_study(load_if_exists=True)) or choose another path")
        loaded = load_study(storage)
        _check_same(loaded, facts, searcher, dict(searcher_options or {}), seed)
        return loaded
    return Study(storage=storage, space=joint, space_facts=facts, objectives=objectives, searcher=searcher,
                 searcher_options=dict(searcher_options or {}), seed=seed, ref_point=ref_point, recorded=None)


def _check_same(study: Study, facts: Mapping[str, Any], searcher: str, options: Mapping[str, Any],
                seed: int) -> None:
    for what, new, was in (("space", facts.get("space"), study._space_facts.get("space")),
                           ("hw", facts.get("hw"), study._space_facts.get("hw")),
                           ("sets", list(facts.get("set") or []), list(study._space_facts.get("set") or [])),
                           ("searcher", searcher, study.searcher_name), ("seed", seed, study.seed)):
        if new != was:
            raise NascoError(f"storage {study.storage}: holds a study with {what} {was!r}, not {new!r}; "
                             f"load it as it is or choose another path")


def load_study(storage: str | Path) -> Study:
    """The study in run directory ``storage``, as its run.json records it (runs made by
    any nasco version that wrote run.json)."""
    storage = Path(storage)
    path = storage / RUN_FILE
    if not path.exists():
        raise NascoError(f"{storage}: expected a run directory with {RUN_FILE}, found "
                         + ("no such directory" if not storage.exists() else f"no {RUN_FILE}")
                         + "; give the --out of an earlier nasco search")
    meta = read_run_json(storage)
    cfg = meta["config"]
    searcher = meta["searcher"]["name"]
    spaces = [p for p in (cfg.get("space_files") or [cfg.get("space_file")]) if p] or [cfg.get("space")]
    try:
        joint, facts = build_space(spaces if len(spaces) > 1 else spaces[0],
                                   cfg.get("hw_file") or cfg.get("hw"), cfg.get("set") or ())
    except ValueError as exc:  # SpecError: a space, template or override that no longer loads
        raise RunDirError(f"{path}: keys 'config.space', 'config.hw', 'config.set': the recorded space does "
                          f"not load ({exc})") from None
    facts.update(space=cfg.get("space", facts["space"]), hw=cfg.get("hw", facts["hw"]))
    objectives: Any = meta.get("objectives")
    if not meta.get("objective_defs"):
        # A run recorded before objective definitions: summary.json has the directions.
        summ = storage / SUMMARY_JSON
        dirs = json.loads(summ.read_text(encoding="utf-8")).get("objectives") if summ.exists() else None
        if isinstance(dirs, dict):
            objectives = {n: dirs[n] for n in meta.get("objectives", []) if n in dirs}
        if isinstance(objectives, dict) and set(objectives) - set(BUILTIN_OBJECTIVES):
            objectives = [BUILTIN_OBJECTIVES.get(n) or Objective(n, d) for n, d in objectives.items()]
    if not objectives:
        raise RunDirError(f"{path}: key 'objectives': expected the run's objectives (built-in names, or "
                          f"defined in objective_defs), found {json.dumps(meta.get('objectives'))[:60]} "
                          f"with no definition; restore it from a backup or choose another --out")
    options = dict(cfg.get("searcher_options") or {})
    if searcher not in {**SEARCHERS, **DIFFERENTIABLE}:
        warnings.warn(f"{path}: searcher '{searcher}' is not registered in this nasco; only reading works",
                      RuntimeWarning, stacklevel=2)
    try:
        return Study(storage=storage, space=joint, space_facts=facts, objectives=objectives,
                     searcher=cfg.get("searcher", searcher), searcher_options=options,
                     seed=int(meta.get("seed", 0)),
                     ref_point=cfg.get("ref_point"), recorded=meta)
    except RunDirError:
        raise
    except (ValueError, NascoError) as exc:  # objectives or searcher options this nasco does not take
        raise RunDirError(f"{path}: the recorded study cannot be rebuilt ({exc})") from None
