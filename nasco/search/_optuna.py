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
its study file: :meth:`OptunaSearcher.attach_run_dir` opens ``optuna.journal``
(``JournalStorage(JournalFileBackend(...))``) in the run directory; on resume the stored
trials' candidates are asked again first, in their order (the driver's replay tells
them their ledger results, which are not told twice), and new trials continue exactly
where an uninterrupted run would.

Repeats: when the sampler proposes a candidate whose result the study already holds (TPE
does so for ~1 trial in 5 on NB201 at 100 trials, and for half of them with two objectives
at 300), the searcher ends that trial as FAIL, marked ``nasco_repeat_of`` (the sampler's
model keeps the one real observation, and a failed trial costs it nothing), and asks again
with the next trial number, hence another seed; after ``SAMPLER_RETRIES`` repeats in a row
it enqueues a random candidate not yet seen (``study.enqueue_trial``), so an ask never
loops. The caller is not asked to evaluate a candidate twice. Retelling the repeats their
result instead was tried first: the sampler then proposes the same cells again and again,
the study grows by thousands of duplicate trials and each ask slows down with them.
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
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState, create_trial

from nasco.evaluate._result import OBJECTIVES, Result
from nasco.search._base import Searcher
from nasco.search._codec import SpaceCodec
from nasco.space import Candidate, SearchSpace

__all__ = ["OptunaNSGA2", "OptunaRandom", "OptunaSearcher", "OptunaTPE", "STUDY_FILE"]

log = logging.getLogger("nasco.search")

STUDY_FILE = "optuna.journal"
_CANDIDATE_ATTR = "nasco_candidate"
_CONSTRAINT = "violation"
_REPEAT_ATTR = "nasco_repeat_of"  # on a trial dropped as a repeat: the number of the trial it repeats
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


class OptunaSearcher(Searcher):
    """Base of the Optuna searchers; subclasses build the sampler in :meth:`_sampler`."""

    name = "optuna"

    def __init__(self, space: SearchSpace, objectives: tuple[str, ...], *, seed: int = 0) -> None:
        super().__init__(space, objectives, seed=seed)
        # Optuna logs every trial at INFO; the run's progress line already says it all.
        if optuna.logging.get_verbosity() == optuna.logging.INFO:
            optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.codec = SpaceCodec(space)
        # Per variable: the choices Optuna stores (the options, or their indices).
        self._choices = {n: (list(o) if all(isinstance(x, _STORABLE) for x in o) and len(set(map(repr, o))) == len(o)
                             else list(range(len(o))))
                         for n, o in self.codec.variables.items()}
        self.storage_path: Path | None = None
        self._open(None)

    # ---------------------------------------------------------------- study
    def _sampler(self) -> BaseSampler:
        raise NotImplementedError

    def _open(self, storage: Any) -> None:
        self.study = optuna.create_study(
            storage=storage, sampler=self._sampler(), study_name=f"nasco-{self.name}-seed{self.seed}",
            directions=["maximize" if OBJECTIVES[o] == "max" else "minimize" for o in self.objectives],
            load_if_exists=True)
        self._live: dict[int, optuna.Trial] = {}
        self._pending: dict[str, list[int]] = {}
        self._replay: deque[tuple[int, Candidate]] = deque()
        self._done: dict[str, int] | None = None  # id -> number of a finished trial; built lazily

    def attach_run_dir(self, out_dir: str | Path, *, resume: bool) -> None:
        """Keep the study in ``out_dir/optuna.journal``. With ``resume``, an existing
        study is reattached and its trials are asked again first (see the module
        docstring); without, a stale study file is replaced (and that is logged)."""
        if self.n_told or self.study.trials:
            raise ValueError(f"{self.name}: attach the run directory before the first ask")
        path = Path(out_dir) / STUDY_FILE
        if path.exists() and not resume:
            log.warning("%s: %s holds a study but the run starts afresh; replacing it", self.name, path)
            path.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.storage_path = path
        self._open(JournalStorage(JournalFileBackend(str(path))))
        for t in self.study.get_trials(deepcopy=False):
            if _REPEAT_ATTR in t.user_attrs:
                continue  # dropped as a repeat when it was asked: nothing to replay
            cand = Candidate.from_json(t.user_attrs[_CANDIDATE_ATTR])
            self._replay.append((t.number, cand))
        if self._replay:
            log.info("%s: reattached %d trials from %s", self.name, len(self._replay), path)

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
            return
        self._trial(number).set_constraint(_CONSTRAINT, self._violation(result))
        self.study.tell(number, values)
        self._live.pop(number, None)

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
        self._finished().setdefault(candidate.id, len(self.study.get_trials(deepcopy=False)) - 1)

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
                 population_size: int = 20) -> None:
        if int(population_size) < 2:
            raise ValueError(f"population_size must be >= 2, got {population_size}")
        self.population_size = int(population_size)
        super().__init__(space, objectives, seed=seed)

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
