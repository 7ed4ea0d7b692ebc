"""Accelerator templates -> cost models: cycles, latency, energy and area per layer."""
from __future__ import annotations

from nasco.hw._cost import ENERGY_PARTS, CostModel, CostReport
from nasco.hw._systolic import (
    DATAFLOWS, systolic_compute_cycles, systolic_sram_accesses, systolic_utilization,
)
from nasco.hw._workload import Layer, Workload, read_scalesim_csv, write_scalesim_csv

__all__ = ["CostModel", "CostReport", "DATAFLOWS", "ENERGY_PARTS", "Layer", "Workload",
           "read_scalesim_csv", "systolic_compute_cycles", "systolic_sram_accesses",
           "systolic_utilization", "write_scalesim_csv"]
