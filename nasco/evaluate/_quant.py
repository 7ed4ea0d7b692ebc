"""Accuracy of a trained network after post-training quantization (:func:`nasco.nn.quantize`)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from nasco.evaluate._train import evaluate_accuracy
from nasco.nn._quant import Precision, QuantRanges, observe_ranges, quantize

if TYPE_CHECKING:
    from nasco.evaluate._data import DataSplits

__all__ = ["CALIBRATION_BATCHES", "CALIBRATION_BATCH_SIZE", "QUANTIZER", "calibrate", "calibration_set",
           "quantized_accuracy"]

# Calibration: 8 training batches of 64 images (512), the range of every quantized tensor
# observed by min/max.
CALIBRATION_BATCHES = 8
CALIBRATION_BATCH_SIZE = 64
# Names this module's quantization method where a quantized accuracy is stored with its
# settings, so that one measured by another method is measured again.
QUANTIZER = "ptq: per-channel weights, min/max activation ranges, membrane reach fitted to float spikes"


def calibration_set(data: DataSplits, *, batches: int, batch_size: int, seed: int) -> list[torch.Tensor]:
    """The first ``batches`` batches of ``batch_size`` images of a seeded shuffle of the training split
    (fewer when the split is smaller)."""
    for name, value in (("batches", batches), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"calibration {name}={value!r}: expected a positive integer")
    gen = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(len(data.y_train), generator=gen)
    return [data.x_train[perm[i:i + batch_size]] for i in range(0, len(perm), batch_size)][:batches]


def calibrate(model: nn.Module, data: DataSplits, *, batches: int = CALIBRATION_BATCHES,
              batch_size: int = CALIBRATION_BATCH_SIZE, seed: int = 0) -> QuantRanges:
    """The ranges (:func:`nasco.nn.observe_ranges`) of the float ``model`` on ``batches`` training
    batches of ``batch_size`` (:func:`calibration_set` with ``seed``); the random draws of the pass
    (rate encoding) are seeded with ``seed`` without touching the caller's random state."""
    sample = calibration_set(data, batches=batches, batch_size=batch_size, seed=seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return observe_ranges(model, sample)


def quantized_accuracy(model: nn.Module, data: DataSplits, precision: Precision, *,
                       ranges: QuantRanges | None = None, calibration_batches: int = CALIBRATION_BATCHES,
                       batch_size: int = CALIBRATION_BATCH_SIZE, seed: int = 0) -> float:
    """Validation accuracy (a fraction in [0, 1], as :attr:`TrainResult.valid_accuracy`) of ``model``
    quantized to ``precision``, its grids fixed from ``ranges`` (:func:`calibrate` of ``model``)
    or, without them, from :func:`calibrate` with ``calibration_batches``, ``batch_size`` and
    ``seed``. ``model`` is unchanged. The same seed gives the same accuracy: it picks the
    calibration batches and seeds the random draws (rate encoding) of calibration and evaluation,
    without touching the caller's random state; ranges from ``calibrate(model, data, seed=s)`` give
    the accuracy that ``seed=s`` without them gives."""
    if ranges is None and (precision.activation is not None or precision.membrane is not None):
        ranges = calibrate(model, data, batches=calibration_batches, batch_size=batch_size, seed=seed)
    with torch.random.fork_rng(devices=[]):
        qmodel = quantize(model, precision, ranges if ranges is not None else [])
        torch.manual_seed(int(seed))
        return evaluate_accuracy(qmodel, data.x_valid, data.y_valid)
