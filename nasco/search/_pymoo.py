"""pymoo's genetic algorithms (NSGA-II, NSGA-III) as nasco searchers, through pymoo's ask/tell.

Deb, Pratap, Agarwal & Meyarivan, "A fast and elitist multiobjective genetic algorithm:
NSGA-II", IEEE TEVC 2002; Deb & Jain, "An evolutionary many-objective optimization
algorithm using reference-point-based nondominated sorting approach" (NSGA-III), IEEE
TEVC 2014. (pymoo's AGE-MOEA needs numba, which nasco does not depend on.)

A candidate is a dict of pymoo ``Choice`` variables (the indices of the options of
:class:`~nasco.search._codec.SpaceCodec`'s variables), bred with pymoo's mixed-variable
operators (uniform crossover and random-choice mutation per variable) under binary
tournament selection. The initial population is drawn with ``space.sample``, so it has the
space's own distribution (and budgets of multi-accelerators); offspring are decoded, and
so repaired, by the codec. Duplicates are eliminated on the decoded candidate, against
every candidate asked so far, so a generation never spends a query twice.

Results become pymoo values: objectives in minimisation form (``F``) and one inequality
constraint (``G``): 0 for ok results, the total positive violation for infeasible ones
(a large constant where none is recorded), and a larger constant for failed ones. pymoo's
survival then ranks by Deb's constraint domination, as regularized evolution does: ok
before infeasible before failed.

``ask(n)`` serves the current generation; once it is used up, every result told since
the last generation (late ones included) is told to pymoo, which then breeds the next.
State dicts hold the log of asks and tells; loading one replays it into a fresh
algorithm with the same seed (pymoo's own generator is seeded from the searcher's seed).
"""
from __future__ import annotations

import json
import math
import warnings
from collections import deque
from typing import Any, Sequence

import numpy as np
from pymoo.algorithms.base.genetic import GeneticAlgorithm
from pymoo.algorithms.moo.nsga2 import NSGA2, binary_tournament
from pymoo.algorithms.moo.nsga3 import NSGA3
from pymoo.core.duplicate import DuplicateElimination
from pymoo.core.individual import Individual
from pymoo.core.mixed import MixedVariableMating
from pymoo.core.population import Population
from pymoo.core.problem import Problem
from pymoo.core.sampling import Sampling
from pymoo.core.termination import NoTermination
from pymoo.core.variable import Choice as PymooChoice
from pymoo.operators.selection.tournament import TournamentSelection, compare
from pymoo.util.ref_dirs import get_reference_directions

from nasco.core import Objective, Result, resolve_objectives
from nasco.search._base import Searcher
from nasco.search._codec import SpaceCodec
from nasco.space import Candidate, SearchSpace

__all__ = ["NSGA2Searcher", "NSGA3Searcher", "PymooSearcher", "result_to_pymoo"]

# Objective value of unscored results and constraint values of infeasible/failed ones;
# finite, so that pymoo's normalisations never see inf or nan. Ordering: any recorded
# violation < _CV_UNKNOWN (infeasible, nothing recorded) < _CV_FAILED.
_F_WORST = 1e30
_CV_UNKNOWN = 1e12
_CV_FAILED = 1e15
# Generations asked in a row that bring nothing new before falling back to random samples.
# Once that happened, for the rest of the run a generation is bred only when a population's
# worth of new results is in, and random samples fill the asks between (near an exhausted
# space every ask would otherwise breed 20 generations of repeats, seconds each).
_MAX_EMPTY_GENERATIONS = 20


def result_to_pymoo(result: Result, objectives: Sequence[str | Objective]) -> tuple[np.ndarray, np.ndarray]:
    """(F, G) of a result: objectives in minimisation form and one constraint value."""
    if result.status == "failed":
        return np.full(len(objectives), _F_WORST), np.array([_CV_FAILED])
    defs = resolve_objectives(list(objectives))
    if all(o.name in result.objectives for o in defs):
        F = np.array([o.to_min(float(result.objectives[o.name])) for o in defs])
    else:
        F = np.full(len(objectives), _F_WORST)
    if result.status == "ok":
        return F, np.array([0.0])
    viol = sum(max(float(v), 0.0) for v in result.violations.values())
    return F, np.array([viol if viol > 0 else _CV_UNKNOWN])


class _SpaceSampling(Sampling):
    """The initial population from ``space.sample`` with pymoo's generator."""

    def __init__(self, searcher: PymooSearcher) -> None:
        super().__init__()
        self.searcher = searcher

    def _do(self, problem: Problem, n_samples: int, random_state: Any = None, **kwargs: Any) -> list:
        s = self.searcher
        return [s._x_of(s.space.sample(random_state), None) for _ in range(n_samples)]


class _SameCandidate(DuplicateElimination):
    """Duplicates are individuals that decode to the same candidate, or to one already asked."""

    def __init__(self, searcher: PymooSearcher) -> None:
        super().__init__()
        self.searcher = searcher

    def _do(self, pop: Population, other: Population | None, is_duplicate: np.ndarray) -> np.ndarray:
        ids = [self.searcher._decode(ind.X).id for ind in pop]
        if other is None:
            asked, seen = self.searcher._asked, set()  # no copy of asked: it grows with the run
            for i, cid in enumerate(ids):
                if cid in asked or cid in seen:
                    is_duplicate[i] = True
                seen.add(cid)
        else:
            others = {self.searcher._decode(ind.X).id for ind in other}
            for i, cid in enumerate(ids):
                if cid in others:
                    is_duplicate[i] = True
        return is_duplicate


def _comp_by_cv_then_random(pop: Population, P: np.ndarray, random_state: Any = None,
                            **kwargs: Any) -> np.ndarray:
    """NSGA-III's tournament (pymoo's ``comp_by_cv_then_random``): the smaller constraint
    violation wins, a tie at random. Written out because pymoo 0.6.2's version breaks a tie
    between two infeasible individuals with an unseeded generator (it does not pass its
    ``random_state`` to ``compare``), so two runs of one seed could differ."""
    S = np.full(P.shape[0], -1, dtype=int)
    for i, (a, b) in enumerate(P[:, :2]):
        if pop[a].CV > 0.0 or pop[b].CV > 0.0:
            S[i] = compare(a, pop[a].CV, b, pop[b].CV, method="smaller_is_better",
                           return_random_if_equal=True, random_state=random_state)
        else:
            S[i] = random_state.choice([a, b])
    return S[:, None]


class PymooSearcher(Searcher):
    """Base of the pymoo searchers; subclasses say which algorithm in :meth:`_algorithm`.

    ``population_size`` defaults to 20, as regularized evolution's: at budgets of 50-300
    evaluations that gives 2-15 generations, where pymoo's default of 100 would leave
    little more than the random initial population.
    """

    name = "pymoo"

    def __init__(self, space: SearchSpace, objectives: tuple[str, ...], *, seed: int = 0,
                 population_size: int = 20) -> None:
        super().__init__(space, objectives, seed=seed)
        if int(population_size) < 2:
            raise ValueError(f"population_size must be >= 2, got {population_size}")
        self.population_size = int(population_size)
        self.codec = SpaceCodec(space)
        self._vars = self.codec.variables
        self._cache: dict[tuple, Candidate] = {}
        self._reset()

    # ---------------------------------------------------------------- pymoo plumbing
    # Each algorithm's own tournament (NSGA-III's compares by violation, then at random).
    _compare: Any = staticmethod(binary_tournament)

    def _algorithm(self, **kw: Any) -> GeneticAlgorithm:
        raise NotImplementedError

    def _reset(self) -> None:
        problem = Problem(vars={n: PymooChoice(options=list(range(len(o)))) for n, o in self._vars.items()},
                          n_obj=len(self.objectives), n_ieq_constr=1)
        dedup = _SameCandidate(self)
        algo = self._algorithm(
            pop_size=self.population_size, n_offsprings=self.population_size,
            sampling=_SpaceSampling(self),
            mating=MixedVariableMating(selection=TournamentSelection(func_comp=type(self)._compare),
                                       eliminate_duplicates=dedup),
            eliminate_duplicates=dedup, seed=self.seed)
        algo.setup(problem, termination=NoTermination(), verbose=False)
        self._algo = algo
        self._queue: deque[tuple[Individual, Candidate]] = deque()
        self._pending: dict[str, list[Individual]] = {}
        self._done: list[Individual] = []
        self._asked: set[str] = set()
        self._log: list[list[Any]] = []
        self._stalled = False  # a refill fell back to a random sample

    def _decode(self, X: dict[str, Any]) -> Candidate:
        key = tuple(int(X[n]) for n in self._vars)
        cand = self._cache.get(key)
        if cand is None:
            cand = self.codec.decode(lambda n, opts: opts[int(X[n])])
            if len(self._cache) > 200_000:  # bound the memory of very long runs
                self._cache.clear()
            self._cache[key] = cand
        return cand

    def _x_of(self, cand: Candidate, base: dict[str, Any] | None) -> dict[str, Any]:
        """The variables of ``cand``; inactive ones (other members of a template set) keep
        their values in ``base`` (their first option without it)."""
        enc = self.codec.encode(cand)
        out = {}
        for n, opts in self._vars.items():
            out[n] = opts.index(enc[n]) if n in enc else (int(base[n]) if base is not None else 0)
        return out

    def _refill(self) -> None:
        generations = _MAX_EMPTY_GENERATIONS
        if self._stalled:
            generations = 1 if len(self._done) >= self.population_size else 0
        for _ in range(generations):
            if self._done:
                self._algo.tell(infills=Population.create(*self._done))
                self._done = []
            pop = self._algo.ask()
            queued = {c.id for _, c in self._queue}
            for ind in pop if pop is not None else []:
                cand = self._decode(ind.X)
                if cand.id in self._asked or cand.id in queued:
                    continue
                ind.X = self._x_of(cand, ind.X)  # a repaired multi-accelerator keeps its repair
                self._queue.append((ind, cand))
                queued.add(cand.id)
            if self._queue:
                return
        if not self._stalled:
            warnings.warn(f"{self.name}: {_MAX_EMPTY_GENERATIONS} generations brought no candidate not asked "
                          f"before; asking random samples until one does", RuntimeWarning, stacklevel=4)
        self._stalled = True
        for _ in range(1000):
            cand = self.space.sample(self.rng)
            if cand.id not in self._asked:
                break
        self._queue.append((Individual(X=self._x_of(cand, None)), cand))

    # ---------------------------------------------------------------- hooks
    def _ask(self, n: int) -> list[Candidate]:
        out = []
        for _ in range(n):
            if not self._queue:
                self._refill()
            ind, cand = self._queue.popleft()
            self._pending.setdefault(cand.id, []).append(ind)
            self._asked.add(cand.id)
            out.append(cand)
        self._log.append(["ask", [c.id for c in out]])
        return out

    def _tell(self, candidate: Candidate, result: Result) -> None:
        self._require_objectives(candidate, result)
        F, G = result_to_pymoo(result, self.objective_defs)
        waiting = self._pending.get(candidate.id)
        if waiting:
            ind = waiting.pop(0)
            if not waiting:
                del self._pending[candidate.id]
        else:  # told without being asked (a warm start): it joins the next generation
            self.space.check(candidate)
            ind = Individual(X=self._x_of(candidate, None))
            self._asked.add(candidate.id)
        ind.set("F", F)
        ind.set("G", G)
        ind.set("CV", np.array([max(float(G[0]), 0.0)]))
        self._done.append(ind)
        self._log.append(["tell", candidate.to_json(), _plain(result.to_dict())])

    def _state(self) -> dict[str, Any]:
        return {"population_size": self.population_size, "log": [list(e) for e in self._log]}

    def _load_state(self, state: dict[str, Any]) -> None:
        if state["population_size"] != self.population_size:
            raise ValueError(f"state has population_size={state['population_size']}, this searcher has "
                             f"{self.population_size}")
        rng_state = state["rng"]
        self.rng = np.random.default_rng(self.seed)
        self._reset()
        for event in state["log"]:
            if event[0] == "ask":
                got = [c.id for c in self._ask(len(event[1]))]
                if got != list(event[1]):
                    raise ValueError(f"{self.name}: the state does not replay (asked {got}, the state has "
                                     f"{event[1]}); was it saved by another nasco or pymoo version?")
            else:
                self._tell(Candidate.from_json(event[1]), Result.from_dict(event[2]))
        self.rng.bit_generator.state = rng_state


class NSGA2Searcher(PymooSearcher):
    """NSGA-II (pymoo): non-dominated rank and crowding distance survival."""

    name = "nsga2"

    def _algorithm(self, **kw: Any) -> GeneticAlgorithm:
        return NSGA2(**kw)


class NSGA3Searcher(PymooSearcher):
    """NSGA-III (pymoo): non-dominated rank, then niching around Das-Dennis reference
    directions instead of crowding distance; keeps a spread front with three or more
    objectives. The directions are as many as fit in the population (the most
    partitions p with C(p + m - 1, m - 1) <= population_size for m objectives)."""

    name = "nsga3"
    _compare = staticmethod(_comp_by_cv_then_random)

    def _algorithm(self, **kw: Any) -> GeneticAlgorithm:
        m = len(self.objectives)
        if m == 1:
            ref_dirs = np.ones((1, 1))
        else:
            p = 1
            while math.comb(p + 1 + m - 1, m - 1) <= self.population_size:
                p += 1
            ref_dirs = get_reference_directions("das-dennis", m, n_partitions=p)
        return NSGA3(ref_dirs=ref_dirs, **kw)


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(d, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)))
