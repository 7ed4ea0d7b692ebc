"""A combination of predictors: the mixture of their predictive distributions."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["Combination"]


class Combination:
    """Fits every member on the same data; mean = average of the members' means, std from the
    mixture (average variance plus the spread of the means). With the ``path+zc`` encoding
    this joins a learned model of the path features with the structural zero-cost features
    (the "predictor + zero-cost" combination of White et al., NeurIPS 2021)."""

    def __init__(self, members: Sequence[Any]) -> None:
        if not members:
            raise ValueError("Combination needs at least one member predictor")
        self.members = list(members)

    def fit(self, x: np.ndarray, y: np.ndarray) -> "Combination":
        for m in self.members:
            m.fit(x, y)
        return self

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        preds = [m.predict(x) for m in self.members]
        means = np.stack([p[0] for p in preds])
        var = np.stack([p[1] ** 2 for p in preds]).mean(axis=0) + means.var(axis=0)
        return means.mean(axis=0), np.sqrt(var)
