"""Searchers: ask for candidates, tell them results (the optuna/pymoo shape)."""
from __future__ import annotations

from typing import Any

from nasco.core import Registry
from nasco.search._base import Searcher
from nasco.search._darts import DartsConfig, DartsFit, collapse_report, cosine_power, fit_darts
from nasco.search._evolution import RegularizedEvolution
from nasco.search._guided import PredictorGuided
from nasco.search._joint_darts import DartsSearcher
from nasco.search._optuna import OptunaNSGA2, OptunaRandom, OptunaTPE
from nasco.search._pymoo import NSGA2Searcher, NSGA3Searcher
from nasco.search._random import RandomSearch
from nasco.space import SearchSpace

__all__ = ["DIFFERENTIABLE", "DartsConfig", "DartsFit", "DartsSearcher", "NSGA2Searcher", "NSGA3Searcher",
           "OptunaNSGA2", "OptunaRandom", "OptunaTPE", "PredictorGuided", "RandomSearch",
           "RegularizedEvolution", "SEARCHERS", "Searcher", "collapse_report", "cosine_power", "fit_darts",
           "make_searcher", "searcher_class"]

# Name -> class; the CLI and configs pick searchers by these names, and the contract tests
# in nasco.testing run over every entry.
SEARCHERS: Registry[type[Searcher]] = Registry("searcher")
for _cls in (RandomSearch, RegularizedEvolution, NSGA2Searcher, NSGA3Searcher, OptunaTPE, OptunaNSGA2,
             OptunaRandom, PredictorGuided):
    SEARCHERS.register(_cls.name, _cls)

# Searchers that train a supernet to propose each candidate: they need the training data
# (``data=``) and are driven like the others, but the ask/tell contract tests, whose toy
# results need no training, do not run over them.
DIFFERENTIABLE: Registry[type[Searcher]] = Registry("differentiable searcher")
DIFFERENTIABLE.register(DartsSearcher.name, DartsSearcher)
del _cls


def searcher_class(name: str) -> type[Searcher]:
    """The searcher class registered as ``name`` in :data:`SEARCHERS` or :data:`DIFFERENTIABLE`;
    an unknown name raises ``ValueError`` listing every searcher and the closest names."""
    every: Registry[type[Searcher]] = Registry("searcher")
    for registry in (SEARCHERS, DIFFERENTIABLE):
        for key, cls in registry.items():
            every.register(key, cls)
    return every.get(name)


def make_searcher(name: str, space: SearchSpace, objectives: tuple[str, ...], seed: int,
                  **kw: Any) -> Searcher:
    """The searcher registered as ``name``; ``kw`` go to its constructor."""
    return searcher_class(name)(space, tuple(objectives), seed=seed, **kw)
