"""Learned performance predictors (installed as ``nasco.predictors``).

A predictor maps candidate encodings (``nasco.space.SearchSpace.encode``) to a mean and
an uncertainty, so that a search can spend real evaluations where they matter.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

__all__ = ["Predictor"]


class Predictor(Protocol):
    """fit on encoded candidates and their scores; predict a mean and a standard deviation."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> "Predictor": ...

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
