"""Shared pieces of the predictors: input checks and target scaling."""
from __future__ import annotations

import warnings

import numpy as np

__all__ = ["check_xy", "Standardizer"]


def check_xy(x: np.ndarray, y: np.ndarray | None = None, *, who: str) -> tuple[np.ndarray, np.ndarray | None]:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"{who}: x must be 2-D (n_samples, n_features), got shape {x.shape}")
    if y is None:
        return x, None
    y = np.asarray(y, dtype=np.float64).ravel()
    if len(y) != len(x):
        raise ValueError(f"{who}: x has {len(x)} rows but y has {len(y)} values")
    if not np.isfinite(y).all():
        raise ValueError(f"{who}: y holds {int((~np.isfinite(y)).sum())} non-finite values; drop failed "
                         f"evaluations before fitting")
    if len(y) < 2:
        raise ValueError(f"{who}: needs at least 2 training points, got {len(y)}")
    if len(y) < 10:
        warnings.warn(f"{who}: fitting on only {len(y)} points; predictions will be rough",
                      RuntimeWarning, stacklevel=3)
    return x, y


class Standardizer:
    """y -> (y - mean) / std and back; a constant target gets std 1."""

    def fit(self, y: np.ndarray) -> "Standardizer":
        self.mean = float(np.mean(y))
        sd = float(np.std(y))
        self.std = sd if sd > 1e-12 else 1.0
        return self

    def forward(self, y: np.ndarray) -> np.ndarray:
        return (np.asarray(y) - self.mean) / self.std

    def inverse(self, z: np.ndarray, std: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        mean = np.asarray(z) * self.std + self.mean
        return mean, (None if std is None else np.asarray(std) * self.std)
