"""Learned performance predictors (installed as ``nasco.predictors``).

A predictor maps candidate encodings to a mean and an uncertainty, so that a search can
spend real evaluations where they matter. Encodings: ``space.encode`` for any space, and
for dense (NAS-Bench-201-style) cells :func:`encode_cells` (one-hot, adjacency, path, and
the structural ``zc`` features, joinable as ``"path+zc"``), and the synflow zero-cost proxy
on the cell's real network (:func:`zero_cost_scores`, the ``synflow`` encoding).
:data:`PROXIES` is :data:`nasco.evaluate.PROXIES`, where every zero-cost proxy is defined
(imported when first used: it loads torch and the network builder); :data:`CELL_PROXIES`
are those of them that :func:`zero_cost_scores` scores per cell.

>>> import numpy as np
>>> x = np.random.default_rng(0).random((40, 3)); y = x @ [1.0, 2.0, 0.0]
>>> mean, std = BaggedGBT(n_members=2, max_iter=20).fit(x, y).predict(x[:2])
>>> mean.shape, std.shape
((2,), (2,))
"""
from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from nasco.core import Registry
from nasco.predictors._combined import Combination
from nasco.predictors._encodings import (
    ENCODINGS,
    adjacency_encoding,
    cell_feature_names,
    cell_features,
    cell_ops,
    encode_cells,
    live_edges,
    onehot_encoding,
    path_encoding,
)
from nasco.predictors._gnn import GraphNetEnsemble
from nasco.predictors._mlp import MLPEnsemble
from nasco.predictors._trees import BaggedGBT, RandomForest
from nasco.predictors._zerocost import CELL_PROXIES, synflow, zero_cost_cache_path, zero_cost_scores

__all__ = ["BaggedGBT", "CELL_PROXIES", "Combination", "ENCODINGS", "GraphNetEnsemble", "MLPEnsemble",
           "PREDICTORS", "PROXIES", "Predictor", "RandomForest", "adjacency_encoding", "cell_feature_names",
           "cell_features", "cell_ops", "encode_cells", "live_edges", "make_predictor", "onehot_encoding",
           "path_encoding", "synflow", "zero_cost_cache_path", "zero_cost_scores"]


class Predictor(Protocol):
    """fit on encoded candidates and their scores; predict a mean and a standard deviation."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> "Predictor": ...

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


PREDICTORS: Registry[type] = Registry("predictor")
for _name, _cls in (("gbt", BaggedGBT), ("mlp", MLPEnsemble), ("gnn", GraphNetEnsemble),
                    ("rf", RandomForest)):
    PREDICTORS.register(_name, _cls)
del _name, _cls


def make_predictor(name: str, *, seed: int = 0, **kw: Any) -> Predictor:
    """The predictor registered as ``name`` (``gbt``, ``mlp``, ``gnn``, ``rf``)."""
    return PREDICTORS.get(name)(seed=seed, **kw)


def __getattr__(name: str) -> Any:
    if name == "PROXIES":  # torch and the network builder only when asked for
        from nasco.evaluate._proxies import PROXIES

        return PROXIES
    raise AttributeError(f"module 'nasco.predictors' has no attribute {name!r}")
