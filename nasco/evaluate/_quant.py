"""Accuracy of a trained network after post-training quantization (:func:`nasco.nn.quantize`)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from nasco.evaluate._train import evaluate_accuracy
from nasco.nn._quant import Precision, quantize

if TYPE_CHECKING:
    from nasco.evaluate._data import DataSplits

__all__ = ["calibration_set", "quantized_accuracy"]


def calibration_set(data: DataSplits, *, batches: int, batch_size: int, seed: int) -> list[torch.Tensor]:
    """The first ``batches`` batches of ``batch_size`` images of a seeded shuffle of the training split
    (fewer when the split is smaller)."""
    for name, value in (("batches", batches), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"calibration {name}={value!r}: expected a positive integer")
    gen = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(len(data.y_train), generator=gen)
    return [data.x_train[perm[i:i + batch_size]] for i in range(0, len(perm), batch_size)][:batches]


def quantized_accuracy(model: nn.Module, data: DataSplits, precision: Precision, *,
                       calibration_batches: int = 8, batch_size: int = 64, seed: int = 0) -> float:
    """Validation accuracy (a fraction in [0, 1], as :attr:`TrainResult.valid_accuracy`) of ``model``
    quantized to ``precision``, calibrated on ``calibration_batches`` training batches of
    ``batch_size``. ``model`` is unchanged. The same seed gives the same accuracy: it picks the
    calibration batches and seeds the random draws (rate encoding) of calibration and evaluation,
    without touching the caller's random state."""
    batches = calibration_set(data, batches=calibration_batches, batch_size=batch_size, seed=seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        qmodel = quantize(model, precision, batches)
        torch.manual_seed(int(seed))
        return evaluate_accuracy(qmodel, data.x_valid, data.y_valid)

