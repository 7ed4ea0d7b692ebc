"""Optuna's samplers (TPE, NSGA-II, random) as nasco searchers, through ``study.ask/tell``.

Each of :class:`~nasco.search._codec.SpaceCodec`'s variables becomes
``trial.suggest_categorical`` (define-by-run, so a template set only asks its picked
member's choices); the options themselves where Optuna can store them, else their
indices. Results go back as:

* ok: ``study.tell(values)`` (one value per objective, in the objective's own direction),
  with constraint ``violation`` = 0 (``trial.set_constraint``, Optuna 5's API; feasible
  when <= 0);
* infeasible: the same values with ``violation`` = the total positive violation (1 where
  none is recorded); without objective values, FAIL;
* failed: ``TrialState.FAIL``.

Determinism: before each ``study.ask`` every generator of the sampler is reseeded from
(seed, trial number), so what a sampler proposes depends only on the seed and the trials
in the study. That makes :meth:`state_dict` just the trials, and lets a run reattach to
its study: :meth:`OptunaSearcher.attach_run_dir` opens the study's storage; on resume
the stored trials' candidates are asked again first, in their order (the driver's replay
tells them their ledger results, which are not told twice), and new trials continue
exactly where an uninterrupted run would.

Storage (the ``storage`` keyword, ``--optuna-storage`` on the command line; the strings are
parsed and checked in :mod:`nasco.search._optuna_storage`):

* ``None`` (the default): SQLite in the run directory, ``sqlite:///RUN/optuna.db``
  (``RDBStorage``), which ``optuna-dashboard sqlite:///RUN/optuna.db`` opens. A run
  directory made before this storage, which holds ``optuna.journal`` and no
  ``optuna.db``, is resumed from its journal (``JournalStorage(JournalFileBackend)``).
  A run that starts afresh replaces a stale study file (and logs it). This study is a
  mirror of the ledger, written without fsync: one lost or deleted is rebuilt on resume,
  as the replay asks the same trials again.
* a database URL (anything with ``://``: ``sqlite:///PATH.db``,
  ``postgresql://USER:PASSWORD@HOST/DB``, ``postgresql+psycopg2://...``,
  ``mysql+pymysql://...``): ``RDBStorage(url)``, with ``pool_pre_ping`` for a server
  database, e.g. one PostgreSQL database that every job of a cluster writes to. Its
  driver must be installed (nasco brings none but SQLite's); a missing one is a
  ValueError that names the pip package.
* ``journal:PATH``, or a PATH ending in ``.journal`` or ``.log``: Optuna's journal file
  (``JournalStorage(JournalFileBackend(PATH))``).

A relative path (of a ``sqlite:///`` URL or a journal) is relative to the current
directory when the searcher is made. A study in a file inside the run directory keeps
the name ``nasco-{searcher}-seed{seed}``; one outside it may be shared by several runs
(or watched by optuna-dashboard), so its name adds the run directory's name,
``nasco-{searcher}-seed{seed}-{run dir name}``, and the study's user attributes say which
run it is (run directory, searcher, seed, objectives). A fresh run that finds its study
already holding trials there raises :class:`~nasco.core.RunDirError` (a ValueError) rather
than mixing two runs (inside the run directory it replaces the stale study); ``resume``
reattaches. Passwords never leave the searcher:
:func:`mask_url` hides them in its logs, errors and :attr:`OptunaSearcher.storage`.

Two studies: the sampler works on an in-memory study (:attr:`OptunaSearcher.study`), and the
study in the storage (:attr:`OptunaSearcher.stored`, the one optuna-dashboard opens) holds
one trial per candidate the caller was asked to evaluate, in ask order: RUNNING while it is
evaluated, then COMPLETE with its values and constraint, or FAIL for a failed evaluation.

Repeats: when the sampler proposes a candidate whose result the study already holds (TPE
does so for ~1 trial in 5 on NB201 at 100 trials, and for half of them with two objectives
at 300), the searcher ends that trial as FAIL in the sampler's study, marked
``nasco_repeat_of`` (the sampler's model keeps the one real observation, and a failed trial
costs it nothing), and asks again with the next trial number, hence another seed; after
``SAMPLER_RETRIES`` repeats in a row it enqueues a random candidate not yet seen
(``study.enqueue_trial``), so an ask never loops. The caller is not asked to evaluate a
candidate twice. The stored study does not show repeats as trials: the trial that follows
them carries their count (user attribute ``nasco_repeats``) and, in its system attribute
``nasco:repeats``, what the sampler's study holds of them, so that on resume the sampler's
study is rebuilt trial for trial (same numbers, hence the same seeds and proposals). A study
stored with repeats as FAIL trials of their own is resumed as it is.
"""
from __future__ import annotations

import logging
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import distribution_to_json, json_to_distribution
from optuna.samplers import BaseSampler, NSGAIISampler, RandomSampler, TPESampler
from optuna.samplers._lazy_random_state import LazyRandomState
from optuna.study._constrained_optimization import _CONSTRAINTS_KEY
from optuna.trial import TrialState, create_trial

from nasco.core import Result, RunDirError
from nasco.search._base import Searcher
from nasco.search._codec import SpaceCodec
from nasco.search._optuna_storage import Storage, check_storage, journal_file, mask_url, sqlite_file
from nasco.space import Candidate, SearchSpace

__all__ = ["DB_FILE", "OptunaNSGA2", "OptunaRandom", "OptunaSearcher", "OptunaTPE", "STUDY_FILE", "check_storage",
           "mask_url"]

log = logging.getLogger("nasco.search")

DB_FILE = "optuna.db"          # the study of a run directory (SQLite)
STUDY_FILE = "optuna.journal"  # the study of a run directory made before DB_FILE; still resumed
_CANDIDATE_ATTR = "nasco_candidate"
_CONSTRAINT = "violation"
_REPEAT_ATTR = "nasco_repeat_of"  # on a trial dropped as a repeat: the number of the trial it repeats
_REPEATS_ATTR = "nasco_repeats"   # stored study, user attr: repeats dropped just before this trial
_HIDDEN_ATTR = "nasco:repeats"    # stored study, system attr: those repeat trials, to rebuild the sampler's
# Sampler proposals tried per ask before a random unseen candidate is enqueued instead.
SAMPLER_RETRIES = 10
_STORABLE = (str, int, float, bool, type(None))


def _random_states(obj: Any) -> list[Any]:
    """Every generator reachable from a sampler through Optuna objects, in a fixed order
    (attribute names sorted; shared ones once)."""
    found: list[Any] = []
    seen: set[int] = set()

    def walk(o: Any, depth: int) -> None:
        if id(o) in seen or depth > 6:
            return
        seen.add(id(o))
        if isinstance(o, (LazyRandomState, np.random.RandomState)):
            found.append(o)
            return
        d = getattr(o, "__dict__", None)
        if not d:
            return
        for k in sorted(d):
            v = d[k]
            if isinstance(v, (LazyRandomState, np.random.RandomState)) or \
                    type(v).__module__.startswith("optuna."):
                walk(v, depth + 1)

    walk(obj, 0)
    return found


def _reseed(sampler: BaseSampler, seed: int, number: int) -> None:
    states = _random_states(sampler)
    seeds = np.random.SeedSequence([seed, number]).generate_state(max(len(states), 1))
    for st, s in zip(states, seeds):
        (st.rng if isinstance(st, LazyRandomState) else st).seed(int(s))


def _within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


class OptunaSearcher(Searcher):
    """Base of the Optuna searchers; subclasses build the sampler in :meth:`_sampler`.

    ``storage``: where :meth:`attach_run_dir` keeps the study (see the module docstring):
    None for ``optuna.db`` in the run directory, a database URL, ``journal:PATH`` or a
    ``.journal`` / ``.log`` file. It is checked here (a ValueError for a bad string or a
    missing database driver) and opened when the run directory is attached. :attr:`study`
    is the sampler's study, in memory, repeats included; :attr:`stored` is the study in the
    storage (None until a run directory is attached, and after :meth:`load_state_dict`)."""

    name = "optuna"

    def __init__(self, space: SearchSpace, objectives: tuple[str, ...], *, seed: int = 0,
                 storage: str | None = None) -> None:
        super().__init__(space, objectives, seed=seed)
        self._storage = check_storage(storage) if storage is not None else None
        # What the searcher may say of its storage (logs, errors): the password masked.
        self.storage: str | None = self._storage.shown if self._storage else None
        # Optuna logs every trial at INFO; the run's progress line already says it all.
        if optuna.logging.get_verbosity() == optuna.logging.INFO:
            optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.codec = SpaceCodec(space)
        # Per variable: the choices Optuna stores (the options, or their indices).
        self._choices = {n: (list(o) if all(isinstance(x, _STORABLE) for x in o) and len(set(map(repr, o))) == len(o)
                             else list(range(len(o))))
                         for n, o in self.codec.variables.items()}
        self.storage_path: Path | None = None  # the file holding the study, once attached
        self.study_name = self._base_name()
        self._open(None)

    # ---------------------------------------------------------------- study
    def _sampler(self) -> BaseSampler:
        raise NotImplementedError

    def _base_name(self) -> str:
        return f"nasco-{self.name}-seed{self.seed}"

    def _directions(self) -> list[str]:
        return ["maximize" if o.maximise else "minimize" for o in self.objective_defs]

    def _open(self, storage: Any) -> None:
        """A fresh in-memory study for the sampler; the stored study is ``storage``'s (None: none)."""
        self.study = optuna.create_study(sampler=self._sampler(), study_name=self.study_name,
                                         directions=self._directions())
        self.stored: optuna.Study | None = None
        if storage is not None:
            # Its sampler never proposes: trials are written into it as the sampler's study gets them.
            self.stored = optuna.create_study(storage=storage, sampler=RandomSampler(),
                                              study_name=self.study_name, directions=self._directions(),
                                              load_if_exists=True)
        self._live: dict[int, optuna.Trial] = {}
        self._pending: dict[str, list[int]] = {}
        self._replay: deque[tuple[int, Candidate]] = deque()
        self._done: dict[str, int] | None = None  # id -> number of a finished trial; built lazily
        self._stored_id: dict[int, int] = {}  # sampler trial number -> stored trial id, until told
        self._hidden: list[dict[str, Any]] = []  # repeats dropped since the last stored trial
        self._study_attrs: dict[str, Any] = {}  # the sampler study's system attrs as last stored

    def attach_run_dir(self, out_dir: str | Path, *, resume: bool) -> None:
        """Keep the study in the storage (``out_dir/optuna.db`` by default; see the module
        docstring). With ``resume``, an existing study is reattached, the sampler's study is
        rebuilt from it and its trials are asked again first; without, a stale study in the
        run directory is replaced (and that is logged), and one of that name elsewhere that
        holds trials is an error (:class:`~nasco.core.RunDirError`, a ValueError)."""

        if self.n_told or self.study.trials:
            raise ValueError(f"{self.name}: attach the run directory before the first ask")
        run_dir = Path(out_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        spec = self._storage or self._run_dir_storage(run_dir, resume)
        inside = spec.path is not None and _within(spec.path, run_dir)
        # Outside the run directory a storage may hold several runs' studies: name the run.
        self.study_name = self._base_name() if inside else f"{self._base_name()}-{run_dir.resolve().name}"
        try:
            storage = spec.open()
        except Exception as exc:  # noqa: BLE001 - unreachable server, bad file, old schema: one line
            first = (str(exc).strip().splitlines() or [""])[0]
            hint = ("; delete it and resume: the study is rebuilt from the ledger"
                    if self._storage is None and spec.path is not None and spec.path.exists() else "")
            raise RunDirError(f"{self.name}: cannot open the Optuna storage {spec.shown} "
                              f"({type(exc).__name__}: {mask_url(first)}){hint}") from None
        try:
            study_id = storage.get_study_id_from_name(self.study_name)
        except KeyError:
            study_id = None
        if study_id is not None and not resume:
            trials = storage.get_all_trials(study_id, deepcopy=False)
            if trials and not inside:
                made_in = storage.get_study_user_attrs(study_id).get("nasco_run_dir", "an unknown run directory")
                raise RunDirError(
                    f"{spec.shown} already holds study '{self.study_name}' with {len(trials)} trials (run "
                    f"directory {made_in}); pass --resume (resume=True) to continue that run, choose another "
                    f"--out, or delete the study: optuna delete-study --storage URL --study-name {self.study_name}")
            if trials or inside:
                if trials:
                    log.warning("%s: %s holds study '%s' but the run starts afresh; replacing it",
                                self.name, spec.shown, self.study_name)
                storage.delete_study(study_id)
        self.storage_path = spec.path
        self._open(storage)
        self._describe_run(run_dir, spec, resume)
        self._rebuild()
        if self._replay:
            log.info("%s: reattached %d trials of study '%s' from %s", self.name, len(self._replay),
                     self.study_name, spec.shown)

    def _rebuild(self) -> None:
        """Fill the sampler's study from the stored one (each trial after the repeats it
        records), and queue the stored trials' candidates for replay."""
        assert self.stored is not None
        for k, v in self.stored._storage.get_study_system_attrs(self.stored._study_id).items():
            self.study._storage.set_study_system_attr(self.study._study_id, k, v)
            self._study_attrs[k] = v
        for t in self.stored.get_trials(deepcopy=False):
            if _CANDIDATE_ATTR not in t.user_attrs:
                continue  # not a trial this searcher wrote
            for r in t.system_attrs.get(_HIDDEN_ATTR, []):
                self._add(TrialState.FAIL, None, r)
            system = {k: v for k, v in t.system_attrs.items() if k != _HIDDEN_ATTR}
            if t.state == TrialState.RUNNING:
                # A running trial's constraint was written by a tell that was interrupted; the
                # replay tells the trial again, and Optuna ignores (with a warning) a constraint
                # set twice.
                system = {k: v for k, v in system.items() if not k.startswith(_CONSTRAINTS_KEY)}
            user = {k: v for k, v in t.user_attrs.items() if k != _REPEATS_ATTR}
            number = self._add(t.state, t.values, {"params": t.params, "user_attrs": user,
                                                   "system_attrs": system, "distributions": t.distributions})
            if _REPEAT_ATTR in user:
                continue  # a repeat stored as a trial of its own: nothing to replay
            if t.state == TrialState.RUNNING:
                self._stored_id[number] = t._trial_id
            self._replay.append((number, Candidate.from_json(user[_CANDIDATE_ATTR])))

    def _add(self, state: TrialState, values: list[float] | None, t: dict[str, Any]) -> int:
        """Add a trial to the sampler's study; its number."""
        dists = {k: json_to_distribution(d) if isinstance(d, str) else d
                 for k, d in t["distributions"].items()}
        self.study.add_trial(create_trial(
            state=state, values=values if state == TrialState.COMPLETE else None, params=t["params"],
            distributions=dists, user_attrs=t["user_attrs"], system_attrs=t["system_attrs"]))
        return len(self.study.get_trials(deepcopy=False)) - 1

    # ---------------------------------------------------------------- the stored study
    def _store_asked(self, number: int) -> None:
        """Write trial ``number`` of the sampler's study into the stored study (RUNNING), with
        the repeats dropped before it."""
        hidden, self._hidden = self._hidden, []
        if self.stored is None:
            return
        # The ask may have cached study attributes (NSGA-II picks a generation's parents from
        # the results in at its first ask): they are written first, so a trial that is stored
        # never lacks them. Picked again after a resume, from more results, they would differ.
        self._store_study_attrs()
        t = self.study.get_trials(deepcopy=False)[number]
        self._stored_id[number] = self.stored._storage.create_new_trial(
            self.stored._study_id, template_trial=create_trial(
                state=TrialState.RUNNING, params=t.params, distributions=t.distributions,
                user_attrs={**t.user_attrs, _REPEATS_ATTR: len(hidden)},
                system_attrs={**t.system_attrs, _HIDDEN_ATTR: hidden}))

    def _store_told(self, number: int) -> None:
        """Finish trial ``number`` in the stored study as the sampler's study has it."""
        tid = self._stored_id.pop(number, None)
        if self.stored is None or tid is None:
            return
        storage = self.stored._storage
        t = self.study.get_trials(deepcopy=False)[number]
        for k, v in t.system_attrs.items():  # the constraint, and what the sampler keeps per trial
            storage.set_trial_system_attr(tid, k, v)
        storage.set_trial_state_values(tid, t.state, t.values)
        self._store_study_attrs()

    def _store_study_attrs(self) -> None:
        """Copy the sampler study's system attributes that changed into the stored study
        (Optuna's NSGA-II keeps each generation's parents there)."""
        assert self.stored is not None
        for k, v in self.study._storage.get_study_system_attrs(self.study._study_id).items():
            if self._study_attrs.get(k, object()) != v:
                self.stored._storage.set_study_system_attr(self.stored._study_id, k, v)
                self._study_attrs[k] = v

    def _run_dir_storage(self, run_dir: Path, resume: bool) -> Storage:
        """The default storage: ``optuna.db`` in the run directory, or on resume the
        ``optuna.journal`` of a run made before it."""
        db, journal = run_dir / DB_FILE, run_dir / STUDY_FILE
        if not resume:
            for path in (db, journal, db.with_name(DB_FILE + "-journal"), db.with_name(DB_FILE + "-wal"),
                         db.with_name(DB_FILE + "-shm")):
                if path.exists():
                    if path in (db, journal):
                        log.warning("%s: %s holds a study but the run starts afresh; replacing it", self.name, path)
                    path.unlink()
        elif journal.exists() and not db.exists():
            return journal_file(str(journal), str(journal))
        return sqlite_file(db, unsynced=True)

    def _describe_run(self, run_dir: Path, spec: Storage, resume: bool) -> None:
        """Say in the study which run it is (for a shared storage and optuna-dashboard)."""
        assert self.stored is not None
        attrs = self.stored.user_attrs
        here = str(run_dir.resolve())
        if resume and attrs.get("nasco_run_dir") not in (None, here):
            log.warning("%s: study '%s' in %s was made for run directory %s; reattaching it to %s",
                        self.name, self.study_name, spec.shown, attrs["nasco_run_dir"], here)
        new = {"nasco_run_dir": here, "nasco_searcher": self.name, "nasco_seed": self.seed,
               "nasco_objectives": list(self.objectives)}
        for k, v in new.items():
            if attrs.get(k) != v:
                self.stored.set_user_attr(k, v)

    def _trial(self, number: int) -> optuna.Trial:
        trial = self._live.get(number)
        if trial is None:
            frozen = self.study.get_trials(deepcopy=False)[number]
            trial = optuna.Trial(self.study, frozen._trial_id)
            self._live[number] = trial
        return trial

    # ---------------------------------------------------------------- hooks
    def _ask(self, n: int) -> list[Candidate]:
        out = []
        for _ in range(n):
            if self._replay:
                number, cand = self._replay.popleft()
            else:
                picked = {c.id for c in out}
                for attempt in range(SAMPLER_RETRIES + 1):
                    if attempt == SAMPLER_RETRIES:
                        fresh = self._fresh(lambda: self.space.sample(self.rng), picked)
                        self.study.enqueue_trial(self._params(fresh), skip_if_exists=False)
                    number, cand = self._new_trial(enqueued=attempt == SAMPLER_RETRIES)
                    if attempt == SAMPLER_RETRIES or cand.id in picked or not self._drop_repeat(number, cand):
                        break
                self._store_asked(number)
            self._pending.setdefault(cand.id, []).append(number)
            out.append(cand)
        return out

    def _new_trial(self, enqueued: bool = False) -> tuple[int, Candidate]:
        # An enqueued trial already exists (WAITING), as the last one; study.ask takes it.
        number = len(self.study.get_trials(deepcopy=False)) - (1 if enqueued else 0)
        _reseed(self.study.sampler, self.seed, number)
        trial = self.study.ask()
        assert trial.number == number
        cand = self.codec.decode(lambda name, options: self._suggest(trial, name, options))
        trial.set_user_attr(_CANDIDATE_ATTR, cand.to_json())
        self._live[number] = trial
        return number, cand

    def _finished(self) -> dict[str, int]:
        """Candidate id -> number of the first finished trial of it."""
        if self._done is None:
            self._done = {}
            for t in self.study.get_trials(deepcopy=False):
                if (t.state in (TrialState.COMPLETE, TrialState.FAIL) and _CANDIDATE_ATTR in t.user_attrs
                        and _REPEAT_ATTR not in t.user_attrs):
                    self._done.setdefault(Candidate.from_json(t.user_attrs[_CANDIDATE_ATTR]).id, t.number)
        return self._done

    def _drop_repeat(self, number: int, cand: Candidate) -> bool:
        """If the study already holds a result of ``cand``, end trial ``number`` as a FAIL
        marked as a repeat and return True (the caller asks again); else False."""
        src = self._finished().get(cand.id)
        if src is None:
            return False
        self._trial(number).set_user_attr(_REPEAT_ATTR, src)
        self.study.tell(number, state=TrialState.FAIL)
        self._live.pop(number, None)
        t = self.study.get_trials(deepcopy=False)[number]
        dists = {k: distribution_to_json(d) for k, d in t.distributions.items()}
        self._hidden.append({"params": dict(t.params), "user_attrs": dict(t.user_attrs),
                             "system_attrs": dict(t.system_attrs), "distributions": dists})
        return True

    def _params(self, cand: Candidate) -> dict[str, Any]:
        """The Optuna params of ``cand`` (options, or their indices where Optuna stores those)."""
        out = {}
        for name, value in self.codec.encode(cand).items():
            options = self.codec.variables[name]
            out[name] = value if list(options) == self._choices[name] else options.index(value)
        return out

    def _suggest(self, trial: optuna.Trial, name: str, options: tuple) -> Any:
        choices = self._choices[name]
        v = trial.suggest_categorical(name, choices)
        if list(options) != choices:  # indices stand for the options
            return options[int(v)]
        return v

    def _tell(self, candidate: Candidate, result: Result) -> None:
        self._require_objectives(candidate, result)
        waiting = self._pending.get(candidate.id)
        if waiting:
            number = waiting.pop(0)
            if not waiting:
                del self._pending[candidate.id]
        else:  # told without being asked (a warm start): recorded as a trial of its own
            self._add_told(candidate, result)
            return
        frozen = self.study.get_trials(deepcopy=False)[number]
        if frozen.state != TrialState.RUNNING:
            return  # a reattached trial, told in the run that created it
        values = self._values(result)
        self._finished().setdefault(candidate.id, number)
        if values is None:
            self.study.tell(number, state=TrialState.FAIL)
        else:
            self._trial(number).set_constraint(_CONSTRAINT, self._violation(result))
            self.study.tell(number, values)
        self._live.pop(number, None)
        self._store_told(number)

    def _values(self, result: Result) -> list[float] | None:
        if result.status == "failed" or not all(o in result.objectives for o in self.objectives):
            return None
        return [float(result.objectives[o]) for o in self.objectives]

    @staticmethod
    def _violation(result: Result) -> float:
        if result.status == "ok":
            return 0.0
        viol = sum(max(float(v), 0.0) for v in result.violations.values())
        return viol if viol > 0 else 1.0

    def _add_told(self, candidate: Candidate, result: Result) -> None:
        self.space.check(candidate)
        params = self._params(candidate)
        dists = {name: optuna.distributions.CategoricalDistribution(self._choices[name]) for name in params}
        values = self._values(result)
        self.study.add_trial(create_trial(
            state=TrialState.COMPLETE if values is not None else TrialState.FAIL, values=values,
            params=params, distributions=dists,
            user_attrs={_CANDIDATE_ATTR: candidate.to_json()},
            constraints={_CONSTRAINT: self._violation(result)} if values is not None else None))
        number = len(self.study.get_trials(deepcopy=False)) - 1
        self._finished().setdefault(candidate.id, number)
        self._store_asked(number)
        self._store_told(number)

    def _state(self) -> dict[str, Any]:
        trials = []
        for t in self.study.get_trials(deepcopy=False):
            trials.append({"state": t.state.name, "values": t.values, "params": dict(t.params),
                           "distributions": {k: distribution_to_json(d) for k, d in t.distributions.items()},
                           "user_attrs": dict(t.user_attrs), "system_attrs": dict(t.system_attrs)})
        # Study-level attributes too: Optuna's NSGA-II keeps each generation's parents there.
        study_attrs = self.study._storage.get_study_system_attrs(self.study._study_id)
        return {"trials": trials, "study_system_attrs": dict(study_attrs), "pending": {k: list(v) for k, v in self._pending.items()},
                "replay": [[n, c.to_json()] for n, c in self._replay]}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.storage_path = None
        self.study_name = self._base_name()
        self._open(None)
        for t in state["trials"]:
            st = TrialState[t["state"]]
            self.study.add_trial(create_trial(
                state=st, values=t["values"] if st == TrialState.COMPLETE else None, params=t["params"],
                distributions={k: json_to_distribution(d) for k, d in t["distributions"].items()},
                user_attrs=t["user_attrs"], system_attrs=t["system_attrs"]))
        for k, v in state["study_system_attrs"].items():
            self.study._storage.set_study_system_attr(self.study._study_id, k, v)
        self._pending = {k: list(v) for k, v in state["pending"].items()}
        self._replay = deque((int(n), Candidate.from_json(c)) for n, c in state["replay"])


class OptunaTPE(OptunaSearcher):
    """Optuna's TPE with Optuna 5's defaults: multivariate for one objective, constant
    liar for trials still running, 10 random startup trials (Watanabe, "Tree-structured
    Parzen estimator: understanding its algorithm components", arXiv 2304.11127)."""

    name = "optuna-tpe"

    def _sampler(self) -> BaseSampler:
        return TPESampler(seed=self.seed)


class OptunaNSGA2(OptunaSearcher):
    """Optuna's NSGA-II sampler, with a population of 20 (Optuna's 50 would leave a
    budget of 100 at two generations) unless ``population_size`` says otherwise."""

    name = "optuna-nsga2"

    def __init__(self, space: SearchSpace, objectives: tuple[str, ...], *, seed: int = 0,
                 population_size: int = 20, storage: str | None = None) -> None:
        if isinstance(population_size, bool) or not isinstance(population_size, (int, np.integer)) \
                or population_size < 2:
            raise ValueError(f"population_size must be an integer >= 2, found {population_size!r}")
        self.population_size = int(population_size)
        super().__init__(space, objectives, seed=seed, storage=storage)

    def _sampler(self) -> BaseSampler:
        return NSGAIISampler(population_size=self.population_size, seed=self.seed)

    def _state(self) -> dict[str, Any]:
        return {"population_size": self.population_size, **super()._state()}

    def _load_state(self, state: dict[str, Any]) -> None:
        if state["population_size"] != self.population_size:
            raise ValueError(f"state has population_size={state['population_size']}, this searcher has "
                             f"{self.population_size}")
        super()._load_state(state)


class OptunaRandom(OptunaSearcher):
    """Optuna's random sampler (a baseline with Optuna's bookkeeping and storage)."""

    name = "optuna-random"

    def _sampler(self) -> BaseSampler:
        return RandomSampler(seed=self.seed)
