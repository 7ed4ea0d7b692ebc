"""Datasets as seeded train/valid/test splits: the split type, the user-error type, and the
seeded, stratified splitting and normalisation every source shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

__all__ = ["DataSplits", "DatasetError"]


class DatasetError(ValueError):
    """A user mistake about a dataset; the message is one line with a hint."""


@dataclass(frozen=True, eq=False)  # eq=False: comparing tensors field-wise is ambiguous
class DataSplits:
    """Normalised train/valid/test tensors (float32 NCHW images, int64 labels).

    Event data (``timesteps`` not None) is float32 ``(N, T, C, H, W)`` instead: T binary
    frames per recording (1 where a pixel had at least one event of that polarity in the
    time bin), not normalised, so ``mean`` and ``std`` stay empty; ``input_shape`` is the
    per-timestep ``(C, H, W)`` with C the polarities.
    """

    x_train: torch.Tensor = field(repr=False)
    y_train: torch.Tensor = field(repr=False)
    x_valid: torch.Tensor = field(repr=False)
    y_valid: torch.Tensor = field(repr=False)
    x_test: torch.Tensor = field(repr=False)
    y_test: torch.Tensor = field(repr=False)
    name: str
    num_classes: int
    input_shape: tuple[int, int, int]
    source: str
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    classes: tuple[str, ...] = ()
    timesteps: int | None = None  # frames per sample for event data; None for static images

    def sizes(self) -> dict[str, int]:
        """Number of examples per split."""
        return {"train": len(self.y_train), "valid": len(self.y_valid),
                "test": len(self.y_test)}


# A split before conversion: images (N, C, H, W) as uint8 or float, labels int64.
_Part = tuple[np.ndarray, np.ndarray]


def _check_split(split: Sequence[float]) -> tuple[float, float, float]:
    try:
        fr = tuple(float(f) for f in split)
    except (TypeError, ValueError):
        raise DatasetError(
            f"split={split!r} is invalid; expected three fractions like (0.6, 0.2, 0.2)") from None
    if len(fr) != 3 or any(not np.isfinite(f) or f <= 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
        raise DatasetError(
            f"split={tuple(split)!r} is invalid; expected three positive train/valid/test "
            "fractions summing to 1, e.g. (0.6, 0.2, 0.2)")
    return fr  # type: ignore[return-value]


def _allocate(n: int, fractions: Sequence[float]) -> list[int]:
    """Split ``n`` items by ``fractions`` (largest remainder), >=1 per positive fraction."""
    raw = [n * f for f in fractions]
    counts = [int(np.floor(r)) for r in raw]
    order = sorted(range(len(raw)), key=lambda k: (-(raw[k] - counts[k]), k))
    for k in order[: n - sum(counts)]:
        counts[k] += 1
    for k, f in enumerate(fractions):
        if f > 0 and counts[k] == 0:  # steal from the biggest split so every split sees the class
            donor = max(range(len(counts)), key=lambda j: (counts[j], -j))
            counts[donor] -= 1
            counts[k] += 1
    return counts


def _stratified(labels: np.ndarray, fractions: Sequence[float], rng: np.random.Generator,
                names: Sequence[str], where: str) -> list[np.ndarray]:
    """Seeded per-class split of ``labels`` into index arrays, one per fraction."""
    needed = sum(1 for f in fractions if f > 0)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for c in np.unique(labels):  # sorted, so the rng draw order is fixed
        idx = rng.permutation(np.flatnonzero(labels == c))
        if len(idx) < needed:
            raise DatasetError(
                f"{where}: class {names[int(c)]!r} has only {len(idx)} example(s); need at "
                f"least {needed} so that every split contains every class")
        start = 0
        for k, n in enumerate(_allocate(len(idx), fractions)):
            parts[k].append(idx[start:start + n])
            start += n
    return [rng.permutation(np.concatenate(p)) if p else np.zeros(0, np.int64) for p in parts]


def _subsample(x: np.ndarray, y: np.ndarray, limit: int, rng: np.random.Generator) -> _Part:
    if len(y) <= limit:
        return x, y
    keep = np.sort(rng.permutation(len(y))[:limit])
    return x[keep], y[keep]


def _finalise(parts: dict[str, _Part], scale: float, meta: dict) -> DataSplits:
    """Scale to [0,1], normalise per channel with train statistics, build tensors."""
    xs = {k: np.ascontiguousarray(x, dtype=np.float32) / np.float32(scale) for k, (x, _) in parts.items()}
    train = xs["train"].astype(np.float64)  # float64 stats: no drift on large splits
    mean = train.mean(axis=(0, 2, 3))
    std = train.std(axis=(0, 2, 3))
    std = np.where(std < 1e-8, 1.0, std)  # a constant channel must not divide by zero
    m = mean.astype(np.float32)[None, :, None, None]
    s = std.astype(np.float32)[None, :, None, None]
    t = {k: torch.from_numpy(np.ascontiguousarray((x - m) / s, dtype=np.float32)) for k, x in xs.items()}
    y = {k: torch.from_numpy(np.ascontiguousarray(lab, dtype=np.int64)) for k, (_, lab) in parts.items()}
    c, h, w = (int(d) for d in t["train"].shape[1:])
    return DataSplits(
        x_train=t["train"], y_train=y["train"], x_valid=t["valid"], y_valid=y["valid"],
        x_test=t["test"], y_test=y["test"], name=meta["name"],
        num_classes=len(meta["classes"]), input_shape=(c, h, w), source=meta["source"],
        mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in std),
        classes=tuple(meta["classes"]))


def _split_parts(x: np.ndarray, y: np.ndarray, fractions: Sequence[float],
                 rng: np.random.Generator, names: Sequence[str], where: str) -> dict[str, _Part]:
    idx = _stratified(y, fractions, rng, names, where)
    return {k: (x[i], y[i]) for k, i in zip(("train", "valid", "test"), idx)}
