"""Regularized (aging) evolution, made multi-objective through non-dominated ranking.

Real, Aggarwal, Huang & Le, "Regularized Evolution for Image Classifier Architecture
Search", AAAI 2019: keep a population of the ``P`` most recent members; to make a child,
draw ``S`` members at random, mutate the best of them, and let the oldest member die.
Aging (rather than killing the worst) is what regularizes: a member survives only as
long as its descendants keep winning, so lucky evaluations do not dominate forever.

With several objectives "best" is ordered as in NSGA-II's crowded comparison (Deb et al.,
IEEE TEVC 2002): non-dominated rank first, then crowding distance. Feasibility comes
before both, following Deb's constraint-domination rule (Deb, CMAME 2000): every ok
member beats every infeasible one, which beats every failed one, and infeasible members
are ordered by their total violation.
"""
from __future__ import annotations

import json
import warnings
from collections import deque
from typing import Any, Sequence

import numpy as np
from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from nasco.core import Objective, ObjectiveSpec, Result, resolve_objectives
from nasco.search._base import Searcher
from nasco.space import Candidate, SearchSpace

__all__ = ["RegularizedEvolution", "tournament_order"]

_CLASS = {"ok": 0, "infeasible": 1, "failed": 2}


def _total_violation(result: Result) -> float:
    """Sum of the positive violations; unknown (none recorded) counts as the worst."""
    if not result.violations:
        return float("inf")
    return float(sum(max(float(v), 0.0) for v in result.violations.values()))


def tournament_order(results: Sequence[Result], objectives: Sequence[str | Objective],
                     tiebreak: np.ndarray) -> np.ndarray:
    """Indices of ``results`` from best to worst.

    The key is (feasibility class, total violation, non-dominated rank, -crowding
    distance, ``tiebreak``). Rank and crowding are computed among the ok results only,
    on the objectives in minimisation form, with pymoo. ``tiebreak`` (one float per
    result, drawn from the searcher's generator) makes the order of exact ties seeded
    instead of positional.
    """
    n = len(results)
    cls = np.array([_CLASS[r.status] for r in results], dtype=float)
    viol = np.array([_total_violation(r) if r.status == "infeasible" else 0.0 for r in results])
    rank = np.zeros(n)
    crowd = np.zeros(n)
    ok = [i for i, r in enumerate(results) if r.status == "ok"]
    if ok:
        defs = resolve_objectives(list(objectives))
        F = np.array([[o.to_min(float(results[i].objectives[o.name])) for o in defs] for i in ok])
        fronts = NonDominatedSorting().do(F)
        for k, front in enumerate(fronts):
            # The extremes of a front (so every point of a front of one or two) have
            # infinite crowding distance, as in NSGA-II; skip pymoo's call for those.
            if len(front) <= 2:
                cd = np.full(len(front), np.inf)
            else:
                cd = np.nan_to_num(calc_crowding_distance(F[front]), nan=0.0, posinf=np.inf)
            for j, pos in enumerate(front):
                rank[ok[pos]] = k
                crowd[ok[pos]] = cd[j]
    # np.lexsort sorts by the last key first.
    return np.lexsort((np.asarray(tiebreak, dtype=float), -crowd, rank, viol, cls))


class RegularizedEvolution(Searcher):
    """Aging evolution with a tournament of ``sample_size`` among ``population_size``.

    The defaults (population 6, tournament of half of it, 2..5) suit the short default
    budget of 10 evaluations: a population of 6 leaves four rounds of evolution. Real et
    al. (AAAI 2019) use 20..100 for long runs; pass ``population_size`` for those.

    The first ``population_size`` asks are random samples (the initial population); every
    later ask mutates a tournament winner with ``space.mutate``. A child (or sample) whose id
    was already asked or told is drawn again, up to ``FRESH_TRIES`` times: in a small space
    such as NB201 about one child in eight is a repeat otherwise, a wasted evaluation. Every told result joins
    the population, and the oldest member leaves when it is full.
    """

    name = "evolution"

    def __init__(self, space: SearchSpace, objectives: ObjectiveSpec, *, seed: int = 0,
                 population_size: int = 6, sample_size: int | None = None) -> None:
        super().__init__(space, objectives, seed=seed)
        if int(population_size) < 1:
            raise ValueError(f"population_size must be >= 1, got {population_size}")
        if sample_size is None:
            sample_size = max(min(2, int(population_size)), min(5, int(population_size) // 2))
        if not 1 <= int(sample_size) <= int(population_size):
            raise ValueError(f"sample_size must be in 1..population_size={population_size}, "
                             f"got {sample_size}")
        self.population_size = int(population_size)
        self.sample_size = int(sample_size)
        self._population: deque[tuple[Candidate, Result]] = deque(maxlen=self.population_size)
        self._n_asked = 0

    @property
    def population(self) -> list[tuple[Candidate, Result]]:
        """The living members, oldest first (a copy)."""
        return list(self._population)

    # ---------------------------------------------------------------- hooks
    def _ask(self, n: int) -> list[Candidate]:
        out = []
        for _ in range(n):
            picked = {c.id for c in out}
            if self._n_asked < self.population_size:
                out.append(self._fresh(lambda: self.space.sample(self.rng), picked))
            elif not self._population:
                # Asked past the initial phase without any result told back: there is
                # nothing to select from, so keep sampling, but say so.
                warnings.warn("RegularizedEvolution: no result told yet, asking a random sample",
                              RuntimeWarning, stacklevel=3)
                out.append(self._fresh(lambda: self.space.sample(self.rng), picked))
            else:
                # A child already evaluated is drawn again, each time from a new tournament.
                out.append(self._fresh(lambda: self.space.mutate(self._tournament(), self.rng), picked))
            self._n_asked += 1
        return out

    def _tournament(self) -> Candidate:
        k = min(self.sample_size, len(self._population))
        picks = self.rng.choice(len(self._population), size=k, replace=False)
        members = [self._population[int(i)] for i in picks]
        order = tournament_order([r for _, r in members], self.objective_defs, self.rng.random(k))
        return members[int(order[0])][0]

    def _tell(self, candidate: Candidate, result: Result) -> None:
        self._require_objectives(candidate, result)
        self._population.append((candidate, result))

    def _state(self) -> dict[str, Any]:
        return {
            "population_size": self.population_size,
            "sample_size": self.sample_size,
            "n_asked": self._n_asked,
            "population": [{"candidate": c.to_json(), "result": _plain(r.to_dict())}
                           for c, r in self._population],
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        for key in ("population_size", "sample_size"):
            if state[key] != getattr(self, key):
                raise ValueError(f"state has {key}={state[key]}, this searcher has {getattr(self, key)}")
        self._n_asked = int(state["n_asked"])
        members = [(Candidate.from_json(m["candidate"]), Result.from_dict(m["result"]))
                   for m in state["population"]]
        self._population = deque(members, maxlen=self.population_size)


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    """A JSON round trip, so the state holds only plain JSON types (numpy scalars in
    metrics would otherwise make ``json.dumps(state_dict())`` fail)."""
    return json.loads(json.dumps(d, default=_json_default))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
