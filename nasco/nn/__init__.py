"""Genotypes -> networks: plans, torch modules (ANN and spiking) and workloads."""
from __future__ import annotations

from nasco.nn._nb201_bulk import CONVENTIONS, CellConvention, DenseCellWorkloads, nb201_workloads, official_cells
from nasco.nn._plan import Node, Plan, SupernetPlan, plan_network, plan_supernet
from nasco.dsl._vocab import OPS, PARAMETER_FREE, OpDef
from nasco.nn._workload import plan_workload

__all__ = ["ActivationQuantizer", "CONVENTIONS", "CellConvention", "DenseCellWorkloads", "FixedPointNeuron", "GraphNet",
           "Node", "OPS", "OneShotNet", "OpDef", "PARAMETER_FREE", "Plan", "Precision", "QuantRanges", "QuantizedInput", "SuperNet",
           "SupernetPlan", "build_module", "derive_cell", "nb201_workloads", "observe_ranges", "official_cells",
           "plan_network", "plan_supernet", "plan_workload", "quantize", "quantize_weight", "round_to_grid"]

_QUANT = ("ActivationQuantizer", "FixedPointNeuron", "Precision", "QuantRanges", "QuantizedInput", "observe_ranges",
          "quantize", "quantize_weight", "round_to_grid")


def __getattr__(name: str):
    # torch is imported only when a module is built: the cost model and the CLI's
    # validate/cost commands stay torch-free.
    if name == "GraphNet":
        from nasco.nn._torch import GraphNet
        return GraphNet
    if name in _QUANT:
        from nasco.nn import _quant
        return getattr(_quant, name)
    if name == "OneShotNet":
        from nasco.nn._oneshot import OneShotNet
        return OneShotNet
    if name in ("SuperNet", "derive_cell"):
        from nasco.nn import _supernet
        return getattr(_supernet, name)
    if name == "build_module":
        from nasco.nn._torch import GraphNet

        def build_module(plan, space):
            return GraphNet(plan, space)
        return build_module
    raise AttributeError(name)
