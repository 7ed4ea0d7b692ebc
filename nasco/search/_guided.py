"""Predictor-guided search (BANANAS / LINAS style).

White, Neiswanger & Savani, "BANANAS: Bayesian Optimization with Neural Architectures for
Neural Architecture Search", AAAI 2021: after a random initial batch, each round fits a
predictor with uncertainty on every result so far, proposes a pool of candidates (mutations
of the best ones and random samples), and evaluates the pool members with the best
acquisition value. With several objectives the pool is ranked as in LINAS (Cummings et al.,
2022): non-dominated sort of the predicted means, then crowding distance.
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
from scipy.stats import norm

from nasco.evaluate._result import Result, to_minimisation
from nasco.predictors import encode_cells, make_predictor
from nasco.search._base import Searcher
from nasco.search._evolution import _plain, tournament_order
from nasco.space import Candidate, DenseCell, SearchSpace

__all__ = ["PredictorGuided", "expected_improvement"]

ACQUISITIONS = ("ei", "ucb")


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """EI of a minimised objective below ``best`` (Jones et al., J. Global Optim. 1998)."""
    std = np.maximum(std, 1e-12)
    z = (best - mean) / std
    return (best - mean) * norm.cdf(z) + std * norm.pdf(z)


class PredictorGuided(Searcher):
    """Random ``n_initial`` candidates, then predictor-ranked pools.

    Each later ask builds a pool of ``pool_size`` new candidates (a ``mutation_share`` of it
    mutations of the ``n_parents`` best results, the rest random samples; ids already asked
    are left out), predicts every objective with mean and std, and returns the best ``n`` by
    expected improvement (``acquisition="ei"``) or by the lower confidence bound
    mean - ``kappa`` * std (``"ucb"``, in minimisation form); with several objectives, by
    non-dominated rank and crowding of the predicted means.

    The predictor (``predictor``: a name of ``nasco.predictors.PREDICTORS``, default a small
    bagged GBT so that a refit takes a fraction of a second) is refit from the whole history
    once the data grew by ``refit_fraction`` since the last fit (every result while the
    history is small). It fits ok and infeasible results that carry objective values;
    failed candidates only stay out of the pool. Encoding ``"auto"``: ``space.encode``, plus
    the path and structural features for dense (NB201-style) cells.

    The state holds the history and the ids asked; the predictor is refit on load (fits
    are seeded by the searcher's seed and the history size, so a restored searcher asks
    what the original would).
    """

    name = "predictor-guided"

    def __init__(self, space: SearchSpace, objectives: tuple[str, ...], *, seed: int = 0, n_initial: int = 10,
                 pool_size: int = 100, mutation_share: float = 0.5, n_parents: int = 5,
                 acquisition: str = "ei", kappa: float = 1.0, predictor: str = "gbt",
                 predictor_kwargs: dict[str, Any] | None = None, encoding: str = "auto",
                 refit_fraction: float = 0.25) -> None:
        super().__init__(space, objectives, seed=seed)
        if int(n_initial) < 2:
            raise ValueError(f"n_initial must be >= 2 (a predictor needs data), got {n_initial}")
        if int(pool_size) < 1:
            raise ValueError(f"pool_size must be >= 1, got {pool_size}")
        if not 0.0 <= float(mutation_share) <= 1.0:
            raise ValueError(f"mutation_share must be in [0, 1], got {mutation_share}")
        if acquisition not in ACQUISITIONS:
            raise ValueError(f"acquisition must be one of {ACQUISITIONS}, got {acquisition!r}")
        if predictor_kwargs is None and predictor == "gbt":
            predictor_kwargs = {"n_members": 3, "max_iter": 30, "learning_rate": 0.2, "backend": "exact"}
        make_predictor(predictor, **(predictor_kwargs or {}))  # fail now on a bad name or keyword
        self.n_initial = int(n_initial)
        self.pool_size = int(pool_size)
        self.mutation_share = float(mutation_share)
        self.n_parents = int(n_parents)
        self.acquisition = acquisition
        self.kappa = float(kappa)
        self.predictor = predictor
        self.predictor_kwargs = dict(predictor_kwargs or {})
        self.refit_fraction = float(refit_fraction)
        self.encoding = encoding
        self._dense = encoding == "auto" and _is_dense(space)
        self._history: list[tuple[Candidate, Result]] = []
        self._asked: set[str] = set()
        self._asked_order: list[str] = []
        self._n_asked = 0
        self._models: list[Any] | None = None
        self._fitted_n = 0

    # ---------------------------------------------------------------- encoding / fitting
    def _encode(self, cands: list[Candidate]) -> np.ndarray:
        x = np.stack([self.space.encode(c) for c in cands]).astype(np.float32)
        if self._dense:
            x = np.concatenate([x, encode_cells(self.space, cands, "path+zc")], axis=1)
        return x

    def _training_data(self) -> tuple[list[Candidate], np.ndarray]:
        rows = [(c, r) for c, r in self._history
                if r.status != "failed" and all(o in r.objectives for o in self.objectives)]
        y = np.array([[to_minimisation(o, float(r.objectives[o])) for o in self.objectives] for _, r in rows])
        return [c for c, _ in rows], y.reshape(len(rows), len(self.objectives))

    def _refit(self) -> bool:
        """Refit if the data grew enough; False when there is too little to fit."""
        cands, y = self._training_data()
        if len(cands) < 2:
            return False
        grow = max(1, math.ceil(self.refit_fraction * self._fitted_n))
        if self._models is not None and len(cands) - self._fitted_n < grow:
            return True
        x = self._encode(cands)
        models = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "few points": known, it is the start of a search
            for j in range(y.shape[1]):
                seed = self.seed * 100_003 + len(cands) * 7 + j
                models.append(make_predictor(self.predictor, seed=seed, **self.predictor_kwargs).fit(x, y[:, j]))
        self._models, self._fitted_n = models, len(cands)
        return True

    # ---------------------------------------------------------------- pool and choice
    def _parents(self) -> list[Candidate]:
        if not self._history:
            return []
        results = [r for _, r in self._history]
        order = tournament_order(results, self.objectives, np.arange(len(results), dtype=float))
        return [self._history[int(i)][0] for i in order[:self.n_parents]]

    def _pool(self) -> list[Candidate]:
        parents = self._parents()
        n_mut = int(round(self.mutation_share * self.pool_size)) if parents else 0
        seen = set(self._asked)
        pool: list[Candidate] = []
        tries = 0
        while len(pool) < self.pool_size and tries < 4 * self.pool_size:
            tries += 1
            if len(pool) < n_mut:
                cand = self.space.mutate(parents[int(self.rng.integers(len(parents)))], self.rng)
            else:
                cand = self.space.sample(self.rng)
            if cand.id not in seen:
                seen.add(cand.id)
                pool.append(cand)
        return pool

    def _choose(self, pool: list[Candidate], n: int) -> list[int]:
        x = self._encode(pool)
        preds = [m.predict(x) for m in self._models]
        if len(self.objectives) == 1:
            mean, std = preds[0]
            if self.acquisition == "ei":
                _, y = self._training_data()
                ok = [to_minimisation(self.objectives[0], float(r.objectives[self.objectives[0]]))
                      for _, r in self._history if r.status == "ok"]
                best = min(ok) if ok else float(y[:, 0].min())
                score = -expected_improvement(mean, std, best)
            else:
                score = mean - self.kappa * std
            return np.lexsort((np.arange(len(pool)), score))[:n].tolist()
        f = np.column_stack([p[0] for p in preds])
        if self.acquisition == "ucb":
            f = f - self.kappa * np.column_stack([p[1] for p in preds])
        rank = np.zeros(len(pool))
        crowd = np.zeros(len(pool))
        for k, front in enumerate(NonDominatedSorting().do(f)):
            cd = (np.full(len(front), np.inf) if len(front) <= 2
                  else np.nan_to_num(calc_crowding_distance(f[front]), nan=0.0, posinf=np.inf))
            rank[front], crowd[front] = k, cd
        return np.lexsort((np.arange(len(pool)), -crowd, rank))[:n].tolist()

    # ---------------------------------------------------------------- hooks
    def _ask(self, n: int) -> list[Candidate]:
        out: list[Candidate] = []
        if self._n_asked >= self.n_initial and self._refit():
            pool = self._pool()
            if len(pool) < n:
                warnings.warn(f"PredictorGuided: only {len(pool)} new candidates found for a pool, asking "
                              f"random samples for the rest", RuntimeWarning, stacklevel=3)
            out = [pool[i] for i in self._choose(pool, n)] if pool else []
        elif self._n_asked >= self.n_initial:
            warnings.warn("PredictorGuided: fewer than 2 results with objective values after the initial "
                          "batch; asking a random sample", RuntimeWarning, stacklevel=3)
        while len(out) < n:
            out.append(self.space.sample(self.rng))
        for c in out:
            if c.id not in self._asked:
                self._asked.add(c.id)
                self._asked_order.append(c.id)
        self._n_asked += n
        return out

    def _tell(self, candidate: Candidate, result: Result) -> None:
        self._require_objectives(candidate, result)
        self._history.append((candidate, result))
        if candidate.id not in self._asked:
            self._asked.add(candidate.id)
            self._asked_order.append(candidate.id)

    def _settings(self) -> dict[str, Any]:
        return {"n_initial": self.n_initial, "pool_size": self.pool_size, "mutation_share": self.mutation_share,
                "n_parents": self.n_parents, "acquisition": self.acquisition, "kappa": self.kappa,
                "predictor": self.predictor, "predictor_kwargs": _plain(self.predictor_kwargs),
                "encoding": self.encoding, "refit_fraction": self.refit_fraction}

    def _state(self) -> dict[str, Any]:
        return {"settings": self._settings(), "n_asked": self._n_asked, "asked": list(self._asked_order),
                "fitted_n": self._fitted_n,
                "history": [{"candidate": c.to_json(), "result": _plain(r.to_dict())} for c, r in self._history]}

    def _load_state(self, state: dict[str, Any]) -> None:
        mine = _plain(self._settings())
        for key, value in state["settings"].items():
            if mine.get(key) != value:
                raise ValueError(f"state has {key}={value!r}, this searcher has {mine.get(key)!r}")
        self._n_asked = int(state["n_asked"])
        self._asked_order = list(state["asked"])
        self._asked = set(self._asked_order)
        self._history = [(Candidate.from_json(h["candidate"]), Result.from_dict(h["result"]))
                         for h in state["history"]]
        # Refit now on the data the saved predictor saw, so the refit schedule continues.
        self._models, self._fitted_n = None, 0
        fitted = int(state["fitted_n"])
        if fitted:
            saved = self._history
            cands_seen = 0
            for k, (c, r) in enumerate(saved):
                if r.status != "failed" and all(o in r.objectives for o in self.objectives):
                    cands_seen += 1
                    if cands_seen == fitted:
                        self._history = saved[:k + 1]
                        self._models = None
                        self._refit()
                        break
            self._history = saved


def _is_dense(space: SearchSpace) -> bool:
    return not space.multi_task and isinstance(space.cells, DenseCell)
