"""Predictor-guided search (BANANAS / LINAS style).

White, Neiswanger & Savani, "BANANAS: Bayesian Optimization with Neural Architectures for
Neural Architecture Search", AAAI 2021: after a random initial batch, each round fits a
predictor with uncertainty on every result so far, proposes a pool of candidates (mutations
of the best ones and random samples), and evaluates the pool members with the best
acquisition value. With several objectives the pool is ranked by the hypervolume its
predicted points add to the front found so far (SMS-EGO, Ponweiser et al., PPSN 2008), ties
by non-dominated sort and crowding distance of the predictions as in LINAS (Cummings et
al., 2022).
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from pymoo.indicators.hv import HV
from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
from scipy.stats import norm

from nasco.core import Result
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
    the lower confidence bound mean - ``kappa`` * std (``acquisition="ucb"``, in minimisation
    form; the default, kappa 0.5) or by expected improvement (``"ei"``). With several
    objectives: the greatest hypervolume improvement over the front of the ok results so far,
    of the confidence bounds (``"ucb"``) or of the predicted means (``"ei"``), chosen
    greedily for a batch; pool points that add nothing are ranked by non-dominated rank and
    crowding. The default (UCB, kappa 0.5) was chosen on NB201 CIFAR-10 (the README's
    searcher table and experiments/results/nb201_harness.md).

    The predictor (``predictor``: a name of ``nasco.predictors.PREDICTORS``, default a small
    bagged GBT so that a refit takes a fraction of a second) is refit from the whole history
    once the data grew by ``refit_fraction`` since the last fit (every result while the
    history is small). It fits ok and infeasible results that carry objective values;
    failed candidates only stay out of the pool. Encoding ``"auto"``: ``space.encode``, plus
    the path and structural features for dense (NB201-style) cells.

    Zero-cost proxies (``zero_cost``: a name of ``nasco.predictors.CELL_PROXIES``, e.g.
    ``"synflow"``; dense-cell spaces only): the proxy of each candidate's untrained network
    becomes one more predictor feature, and with ``warmup`` > 0 the initial batch is not
    random but the ``n_initial`` best by the proxy among ``warmup`` random candidates (the
    zero-cost warmup of Abdelfattah et al., ICLR 2021, "Zero-Cost Proxies for Lightweight
    NAS"). Proxies are computed on the network, never on the evaluator, so they are not
    evaluations; each costs ~0.1 s of CPU per new NB201 cell, and is cached on disk.

    The state holds the history (the base class keeps the ids asked); the predictor is
    refit on load (fits are seeded by the searcher's seed and the history size, so a
    restored searcher asks what the original would).
    """

    name = "predictor-guided"

    def __init__(self, space: SearchSpace, objectives: tuple[str, ...], *, seed: int = 0, n_initial: int = 10,
                 pool_size: int = 100, mutation_share: float = 0.5, n_parents: int = 5,
                 acquisition: str = "ucb", kappa: float = 0.5, predictor: str = "gbt",
                 predictor_kwargs: dict[str, Any] | None = None, encoding: str = "auto",
                 refit_fraction: float = 0.25, zero_cost: str | None = None, warmup: int = 0) -> None:
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
        if zero_cost is not None:
            from nasco.predictors import CELL_PROXIES

            if zero_cost not in CELL_PROXIES:
                raise ValueError(f"zero_cost must be one of {tuple(CELL_PROXIES)} or None, got {zero_cost!r}")
            if not _is_dense(space):
                raise ValueError(f"zero_cost={zero_cost!r} needs a single-task dense-cell space (NB201-style); "
                                 f"{space.arch_spec.name!r} is not one")
        if int(warmup) < 0 or (int(warmup) and zero_cost is None):
            raise ValueError(f"warmup must be 0, or > 0 together with a zero_cost proxy; got warmup={warmup}, "
                             f"zero_cost={zero_cost!r}")
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
        self.zero_cost = zero_cost
        self.warmup = int(warmup)
        self._warm_queue: list[Candidate] | None = None
        self._dense = encoding == "auto" and _is_dense(space)
        self._history: list[tuple[Candidate, Result]] = []
        self._n_asked = 0
        self._models: list[Any] | None = None
        self._fitted_n = 0

    # ---------------------------------------------------------------- encoding / fitting
    def _encode(self, cands: list[Candidate]) -> np.ndarray:
        x = np.stack([self.space.encode(c) for c in cands]).astype(np.float32)
        if self._dense:
            x = np.concatenate([x, encode_cells(self.space, cands, "path+zc")], axis=1)
        if self.zero_cost is not None:
            x = np.concatenate([x, self._proxy(cands)[:, None].astype(np.float32)], axis=1)
        return x

    def _proxy(self, cands: list[Candidate]) -> np.ndarray:
        """The zero-cost proxy of each candidate, on a log scale (synflow spans ~1e10..1e60)."""
        from nasco.predictors import zero_cost_scores

        s = zero_cost_scores(self.space, cands, self.zero_cost)
        return np.log(np.maximum(s, 1e-300))

    def _warm_start(self) -> list[Candidate]:
        """The ``n_initial`` best of ``warmup`` distinct random candidates by the proxy."""
        pool: dict[str, Candidate] = {}
        tries = 0
        while len(pool) < self.warmup and tries < 4 * self.warmup:
            tries += 1
            c = self.space.sample(self.rng)
            pool.setdefault(c.id, c)
        cands = list(pool.values())
        order = np.lexsort((np.arange(len(cands)), -self._proxy(cands)))  # best first, ties by draw order
        return [cands[int(i)] for i in order[:self.n_initial]]

    def _training_data(self) -> tuple[list[Candidate], np.ndarray]:
        rows = [(c, r) for c, r in self._history
                if r.status != "failed" and all(o in r.objectives for o in self.objectives)]
        y = np.array([self.minimisation_form(r) for _, r in rows])
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
        order = tournament_order(results, self.objective_defs, np.arange(len(results), dtype=float))
        return [self._history[int(i)][0] for i in order[:self.n_parents]]

    def _pool(self) -> list[Candidate]:
        parents = self._parents()
        n_mut = int(round(self.mutation_share * self.pool_size)) if parents else 0
        seen = set(self._seen)  # the base class's ids asked or told
        pool: list[Candidate] = []
        # Each part has its own attempt budget: once the parents' neighbourhoods are used up
        # (mutations only give ids already asked), the random part still fills the pool.
        for target, draw in ((n_mut, lambda: self.space.mutate(parents[int(self.rng.integers(len(parents)))],
                                                               self.rng)),
                             (self.pool_size, lambda: self.space.sample(self.rng))):
            tries = 0
            while len(pool) < target and tries < 4 * self.pool_size:
                tries += 1
                cand = draw()
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
                ok = [self.objective_defs[0].to_min(float(r.objectives[self.objectives[0]]))
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
        order = np.lexsort((np.arange(len(pool)), -crowd, rank))
        return self._by_hv_improvement(f, order, n)

    def _by_hv_improvement(self, f: np.ndarray, order: np.ndarray, n: int) -> list[int]:
        """Greedy: the pool point whose predicted objectives add the most hypervolume to the
        front of the ok results so far (and of the points already picked), n times; points
        that add none keep the (rank, crowding) ``order``. Hypervolume is taken on objectives
        scaled by the observed ranges, at 1.1 x the observed nadir (SMS-EGO's criterion,
        Ponweiser et al., PPSN 2008, on the predictor's means or optimistic bounds)."""
        obs = np.array([[o.to_min(float(r.objectives[o.name])) for o in self.objective_defs]
                        for _, r in self._history if r.status == "ok"], dtype=float)
        if len(obs) < 2:
            return order[:n].tolist()
        lo, hi = obs.min(axis=0), obs.max(axis=0)
        scale = np.where(hi > lo, hi - lo, 1.0)
        z_obs, z = (obs - lo) / scale, (f - lo) / scale
        hv = HV(ref_point=np.full(f.shape[1], 1.1))
        front = z_obs[NonDominatedSorting().do(z_obs, only_non_dominated_front=True)]
        base = float(hv(front))
        picked: list[int] = []
        left = [int(i) for i in order]
        while len(picked) < n and left:
            gain = np.array([float(hv(np.vstack([front, z[i]]))) - base for i in left])
            j = int(np.argmax(gain)) if gain.max() > 1e-12 else 0  # ties: the first in ``order``
            i = left.pop(j)
            picked.append(i)
            front = np.vstack([front, z[i]])
            base = float(hv(front))
        return picked

    # ---------------------------------------------------------------- hooks
    def _ask(self, n: int) -> list[Candidate]:
        out: list[Candidate] = []
        if self.warmup and self._n_asked < self.n_initial:
            if self._warm_queue is None:
                self._warm_queue = self._warm_start()
            while len(out) < min(n, self.n_initial - self._n_asked) and self._warm_queue:
                out.append(self._warm_queue.pop(0))
        need = n - len(out)
        if need and self._n_asked >= self.n_initial:
            if self._refit():
                pool = self._pool()
                if len(pool) < need:
                    warnings.warn(f"PredictorGuided: only {len(pool)} new candidates found for a pool, asking "
                                  f"random samples for the rest", RuntimeWarning, stacklevel=3)
                out += [pool[i] for i in self._choose(pool, need)] if pool else []
            else:
                warnings.warn("PredictorGuided: fewer than 2 results with objective values after the initial "
                              "batch; asking a random sample", RuntimeWarning, stacklevel=3)
        while len(out) < n:
            out.append(self.space.sample(self.rng))
        self._n_asked += n
        return out

    def _tell(self, candidate: Candidate, result: Result) -> None:
        self._require_objectives(candidate, result)
        self._history.append((candidate, result))

    def _settings(self) -> dict[str, Any]:
        return {"n_initial": self.n_initial, "pool_size": self.pool_size, "mutation_share": self.mutation_share,
                "n_parents": self.n_parents, "acquisition": self.acquisition, "kappa": self.kappa,
                "predictor": self.predictor, "predictor_kwargs": _plain(self.predictor_kwargs),
                "encoding": self.encoding, "refit_fraction": self.refit_fraction, "zero_cost": self.zero_cost,
                "warmup": self.warmup}

    def _state(self) -> dict[str, Any]:
        return {"settings": self._settings(), "n_asked": self._n_asked,
                "warm_queue": (None if self._warm_queue is None else [c.to_json() for c in self._warm_queue]),
                "fitted_n": self._fitted_n,
                "history": [{"candidate": c.to_json(), "result": _plain(r.to_dict())} for c, r in self._history]}

    def _load_state(self, state: dict[str, Any]) -> None:
        mine = _plain(self._settings())
        for key, value in state["settings"].items():
            if mine.get(key) != value:
                raise ValueError(f"state has {key}={value!r}, this searcher has {mine.get(key)!r}")
        self._n_asked = int(state["n_asked"])
        queue = state.get("warm_queue")
        self._warm_queue = None if queue is None else [Candidate.from_json(c) for c in queue]
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
