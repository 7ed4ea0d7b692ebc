"""Accelerator templates -> cost models: cycles, latency, energy and area per layer."""
from __future__ import annotations

from nasco.hw._configs import SIZED, cost_configurations
from nasco.hw._cost import ENERGY_PARTS, MAX_CYCLES, CostError, CostModel, CostReport, MappingError
from nasco.hw._rowstationary import rs_accesses, rs_compute_cycles, rs_mapping
from nasco.hw._snn import (
    ann_twin,
    break_even_rate,
    compare,
    literature_energy,
    quantised_template,
    quantised_twin,
    snn_twin,
    twin_total,
)
from nasco.hw._systolic import (
    DATAFLOWS,
    systolic_compute_cycles,
    systolic_sram_accesses,
    systolic_utilization,
)
from nasco.hw._unrolled import unrolled_cycles
from nasco.hw._workload import COLUMNS, Layer, Workload, read_scalesim_csv, stack_columns, write_scalesim_csv
from nasco.hw._zigzag import LPF_LIMIT as ZIGZAG_LPF_LIMIT
from nasco.hw._zigzag import OPTIMIZE as ZIGZAG_OPTIMIZE
from nasco.hw._zigzag import (
    ZIGZAG_ACCELERATORS,
    ZIGZAG_EXTRA,
    ZigZagError,
    ZigZagReport,
    require_zigzag,
    zigzag_accelerator,
    zigzag_available,
    zigzag_cost,
    zigzag_costs,
)
from nasco.hw._zigzag import side_by_side as zigzag_side_by_side

__all__ = ["COLUMNS", "CostError", "CostModel", "CostReport", "DATAFLOWS", "ENERGY_PARTS", "Layer",
           "MAX_CYCLES", "MappingError", "SIZED",
           "Workload", "ann_twin", "break_even_rate", "compare", "cost_configurations", "literature_energy",
           "quantised_template",
           "quantised_twin", "read_onnx",
           "read_scalesim_csv", "rs_accesses", "rs_compute_cycles", "rs_mapping",
           "snn_twin", "stack_columns", "systolic_compute_cycles", "systolic_sram_accesses",
           "systolic_utilization",
           "twin_total", "unrolled_cycles", "write_scalesim_csv", "ZIGZAG_ACCELERATORS", "ZIGZAG_EXTRA",
           "ZIGZAG_LPF_LIMIT",
           "ZIGZAG_OPTIMIZE", "ZigZagError", "ZigZagReport", "require_zigzag", "zigzag_accelerator",
           "zigzag_available", "zigzag_cost", "zigzag_costs", "zigzag_side_by_side"]


def __getattr__(name: str):
    # read_onnx is loaded on first use: importing onnx costs about 1.3 s, which every command
    # that never reads an ONNX file (`nasco --help` included) would otherwise pay.
    if name == "read_onnx":
        from nasco.hw._onnx import read_onnx

        return read_onnx
    raise AttributeError(f"module 'nasco.hw' has no attribute {name!r}")
