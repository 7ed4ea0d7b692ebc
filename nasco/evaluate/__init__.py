"""Candidate evaluation: datasets, the training loop, results and the joint evaluator.

torch is imported only when something that needs it is used, so the cost model, the
DSL and the searchers stay light.
"""
from __future__ import annotations

import importlib
from typing import Any

from nasco.core import Evaluator, Result

__all__ = ["DataSplits", "DatasetError", "Evaluator", "HW_BUDGET", "HW_EXHAUSTIVE", "HW_OBJECTIVES",
           "HW_PAIR_BUDGET", "HW_PAIR_POPULATION", "HW_POPULATION", "HardwareFront", "HwPoint",
           "MultiHardwareFront", "OneShotEvaluator", "PROXIES", "ProxyEvaluator", "Result",
           "TableEvaluator", "TaskNetwork", "TrainConfig", "TrainCostEvaluator", "TrainResult",
           "TrainingDiverged", "calibrate", "calibration_set", "check_limits", "epoch_reporter", "hardware_front",
           "load_dataset", "multi_hardware_front",
           "proxy_scores", "quantized_accuracy", "recalibrate_bn", "train_and_evaluate", "train_supernet"]

_LAZY = {
    "DataSplits": "_data", "DatasetError": "_data", "load_dataset": "_data",
    "HW_BUDGET": "_hw_front", "HW_EXHAUSTIVE": "_hw_front", "HW_OBJECTIVES": "_hw_front",
    "HW_POPULATION": "_hw_front", "HardwareFront": "_hw_front", "HwPoint": "_hw_front",
    "hardware_front": "_hw_front",
    "HW_PAIR_BUDGET": "_hw_multi", "HW_PAIR_POPULATION": "_hw_multi", "MultiHardwareFront": "_hw_multi",
    "TaskNetwork": "_hw_multi", "multi_hardware_front": "_hw_multi",
    "OneShotEvaluator": "_oneshot", "recalibrate_bn": "_oneshot", "train_supernet": "_spos",
    "TrainCostEvaluator": "_joint", "check_limits": "_joint", "TableEvaluator": "_table",
    "PROXIES": "_proxies", "ProxyEvaluator": "_proxies", "proxy_scores": "_proxies",
    "TrainConfig": "_train", "TrainResult": "_train", "TrainingDiverged": "_train",
    "train_and_evaluate": "_train", "epoch_reporter": "_train",
    "calibrate": "_quant", "calibration_set": "_quant", "quantized_accuracy": "_quant",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"nasco.evaluate.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'nasco.evaluate' has no attribute {name!r}")
