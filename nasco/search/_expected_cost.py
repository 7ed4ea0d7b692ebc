"""The expected hardware cost of a supernet under its architecture weights, E_alpha[cost].

Every layer of the supernet's workload is costed by nasco's cost model on the chosen
accelerator template (with the spike rates measured during the search, for SNNs). A layer
that belongs to one candidate op counts with that op's weight; the rest (stem, cell
preprocessing, node sums, shared neurons, head) is a constant:

    E[cost] = fixed + sum_kind sum_edge sum_op softmax(alpha[kind])[edge, op] * c[kind][edge, op]

where ``c[kind][edge, op]`` sums the op's layers over every cell of that kind (cells of a
kind share alpha). This is the differentiable cost term of hardware-aware DARTS (FBNet,
Wu et al., CVPR 2019, uses a sum of per-op latencies weighted by the op probabilities the
same way; LitE-SNN, IJCAI 2024, weights spiking ops by their firing rates).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from nasco.dsl import AcceleratorTemplate, EnergyTable
from nasco.hw import CostModel
from nasco.nn import SupernetPlan, plan_workload

__all__ = ["COST_METRICS", "ExpectedCost"]

# Metric -> the CostReport per-layer array it sums (J and s).
COST_METRICS = ("energy", "latency")


class ExpectedCost:
    """Per-op cost tables of a supernet on one template; :meth:`update` re-costs them with
    new spike rates, :meth:`expected` is differentiable in the op weights."""

    def __init__(self, sp: SupernetPlan, template: AcceleratorTemplate, table: EnergyTable) -> None:
        self.sp = sp
        self.template = template
        self.model = CostModel(template, table)
        self.workload = plan_workload(sp.plan, name="supernet")
        shapes = sp.alpha_shapes()
        self.owner = [sp.owners.get(layer.name) for layer in self.workload.layers]
        self.fixed: dict[str, float] = {}
        self.tables: dict[str, dict[str, np.ndarray]] = {m: {k: np.zeros(s) for k, s in shapes.items()}
                                                         for m in COST_METRICS}
        self.rates: dict[str, float] = {}
        self.update({})

    def update(self, spike_rates: dict[str, float]) -> None:
        """Cost every layer again with ``spike_rates`` (layer name -> input spike rate; layers
        without one keep their last rate, or 1.0, every input spiking, before any is known)."""
        self.rates.update(spike_rates)
        rep = self.model.cost(self.workload, self.rates)
        per = {"energy": np.asarray(rep.energy_j, dtype=float), "latency": np.asarray(rep.latency_s, dtype=float)}
        for m in COST_METRICS:
            fixed = 0.0
            tabs = {k: np.zeros_like(v) for k, v in self.tables[m].items()}
            for i, own in enumerate(self.owner):
                if own is None:
                    fixed += per[m][i]
                else:
                    kind, edge, op = own
                    tabs[kind][edge, op] += per[m][i]
            self.tables[m] = tabs
            self.fixed[m] = fixed

    def expected(self, weights: dict[str, torch.Tensor], metric: str) -> torch.Tensor:
        """E[metric] under op weights ``(edges, ops)`` per kind (a differentiable scalar)."""
        total = None
        for kind, w in weights.items():
            c = torch.as_tensor(self.tables[metric][kind], dtype=w.dtype, device=w.device)
            term = (w * c).sum()
            total = term if total is None else total + term
        return total + self.fixed[metric]

    def of_cell(self, cell: dict[str, Any], metric: str) -> float:
        """The cost this table gives a discrete cell (one-hot weights on its chosen edges);
        an estimate: the derived network's own neurons and preprocessing differ slightly."""
        ops = list(self.sp.ops)
        total = self.fixed[metric]
        if "edges" in cell:
            for e, op in enumerate(cell["edges"]):
                total += self.tables[metric]["normal"][e, ops.index(op)]
            return float(total)
        for kind, genes in cell.items():
            if kind not in self.tables[metric]:
                continue
            edges = self.sp.kinds[kind]
            k = len(genes) // max(1, len({n for n, _ in edges}))
            for pos, (op, j) in enumerate(genes):
                node = pos // k
                e = edges.index((node, j))
                total += self.tables[metric][kind][e, ops.index(op)]
        return float(total)
