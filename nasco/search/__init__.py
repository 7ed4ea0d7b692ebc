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
           "check_searcher_options", "make_searcher", "searcher_class"]

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


def _kind_of(default: Any, annotation: Any) -> type | None:
    """The scalar type a constructor setting takes: its default's, else the one its
    annotation names (``int | None`` -> int); None when it is not a plain scalar."""
    if isinstance(default, bool):
        return bool
    if isinstance(default, (int, float, str)):
        return type(default)
    words = str(annotation).replace("|", " ").replace(",", " ").split()
    for kind in (bool, int, float):
        if kind.__name__ in words and "Sequence" not in str(annotation) and "dict" not in str(annotation):
            return kind
    return None


def check_searcher_options(name: str, options: dict[str, Any]) -> None:
    """Raise NascoError (one line) for a setting of searcher ``name`` whose value is not of
    the type the constructor takes: a number for a number, true/false for a flag."""
    import inspect

    from nasco.core import NascoError

    params = inspect.signature(searcher_class(name).__init__).parameters
    words = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    for key, value in options.items():
        p = params.get(key)
        if p is None or value is None:
            continue
        kind = _kind_of(p.default, p.annotation)
        ok = (kind is None or (kind is bool and isinstance(value, bool))
              or (kind is int and isinstance(value, int) and not isinstance(value, bool))
              or (kind is float and isinstance(value, (int, float)) and not isinstance(value, bool))
              or (kind is str and isinstance(value, str)))
        if not ok:
            raise NascoError(f"searcher {name}: option {key}: expected {words[kind]} (default "
                             f"{p.default!r}), found {value!r}")


def make_searcher(name: str, space: SearchSpace, objectives: Any, seed: int, **kw: Any) -> Searcher:
    """The searcher registered as ``name``; ``kw`` go to its constructor, after a check of
    their types (:func:`check_searcher_options`). ``objectives``: names of built-in
    objectives, a ``{name: direction}`` mapping or :class:`~nasco.core.Objective` s."""
    check_searcher_options(name, {k: v for k, v in kw.items() if k not in ("data", "device", "log")})
    return searcher_class(name)(space, objectives, seed=seed, **kw)
