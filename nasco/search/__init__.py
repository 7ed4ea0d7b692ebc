"""Searchers: ask for candidates, tell them results (the optuna/pymoo shape)."""
from __future__ import annotations

import difflib
from typing import Any

from nasco.search._base import Searcher
from nasco.search._darts import DartsConfig, DartsFit, collapse_report, cosine_power, fit_darts
from nasco.search._joint_darts import DartsSearcher
from nasco.search._evolution import RegularizedEvolution
from nasco.search._guided import PredictorGuided
from nasco.search._optuna import OptunaNSGA2, OptunaRandom, OptunaTPE
from nasco.search._pymoo import NSGA2Searcher, NSGA3Searcher
from nasco.search._random import RandomSearch
from nasco.space import SearchSpace

__all__ = ["DIFFERENTIABLE", "DartsConfig", "DartsFit", "DartsSearcher", "collapse_report", "cosine_power",
           "fit_darts", "NSGA2Searcher", "NSGA3Searcher", "OptunaNSGA2", "OptunaRandom", "OptunaTPE", "PredictorGuided", "SEARCHERS", "RandomSearch", "RegularizedEvolution", "Searcher", "make_searcher"]

# Name -> class; the CLI and configs pick searchers by these names, and the contract tests
# in nasco.testing run over every entry.
SEARCHERS: dict[str, type[Searcher]] = {
    RandomSearch.name: RandomSearch,
    RegularizedEvolution.name: RegularizedEvolution,
    NSGA2Searcher.name: NSGA2Searcher,
    NSGA3Searcher.name: NSGA3Searcher,
    OptunaTPE.name: OptunaTPE,
    OptunaNSGA2.name: OptunaNSGA2,
    OptunaRandom.name: OptunaRandom,
    PredictorGuided.name: PredictorGuided,
}


# Searchers that train a supernet to propose each candidate: they need the training data
# (``data=``) and are driven like the others, but the ask/tell contract tests, whose toy
# results need no training, do not run over them.
DIFFERENTIABLE: dict[str, type[Searcher]] = {DartsSearcher.name: DartsSearcher}


def make_searcher(name: str, space: SearchSpace, objectives: tuple[str, ...], seed: int,
                  **kw: Any) -> Searcher:
    """The searcher registered as ``name``; ``kw`` go to its constructor."""
    known = {**SEARCHERS, **DIFFERENTIABLE}
    if name not in known:
        close = difflib.get_close_matches(name, list(known), n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"unknown searcher {name!r}; known: {', '.join(sorted(known))}{hint}")
    return known[name](space, tuple(objectives), seed=seed, **kw)
