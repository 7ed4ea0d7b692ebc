"""Weight-sharing supernets for differentiable search, and the genotype they derive.

A :class:`SuperNet` executes a :class:`~nasco.nn.SupernetPlan` with :class:`GraphNet`'s
interpreter; only its 'mix' nodes are new: ``sum_o w[kind][edge, o] * op_o(x)`` with
``w = softmax(alpha[kind])`` per edge (Liu et al., ICLR 2019). In a spiking supernet the op
outputs are pre-spike currents, so the mix is at the membrane and the consumer fires once
(SpikeDHS, Che et al., NeurIPS 2022).

Ops can be masked (their weight forced to 0) and edges fixed to one op (one-hot weights):
DARTS-PT's perturbation-based selection works through these (Wang et al., ICLR 2021).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from nasco.dsl import ArchSpace
from nasco.dsl._vocab import OPS
from nasco.nn._plan import SupernetPlan
from nasco.nn._torch import GraphNet

__all__ = ["ABSENT", "SuperNet", "derive_cell"]

# A ``fixed`` entry that removes its edge: the edge's mix contributes zeros (a DARTS cell's
# node reads only the inputs of its genotype).
ABSENT = -2


class SuperNet(GraphNet):
    """A supernet module; input ``[B, C, H, W]``, output logits ``[B, classes]``."""

    def __init__(self, sp: SupernetPlan, space: ArchSpace, *, alpha_init: float = 1e-3) -> None:
        super().__init__(sp.plan, space)
        self.sp = sp
        self.cell_spec = space.cell
        # DARTS initialises alpha at 1e-3 * N(0, 1): near-uniform op weights.
        self.alphas = nn.ParameterDict({k: nn.Parameter(alpha_init * torch.randn(e, o))
                                        for k, (e, o) in sp.alpha_shapes().items()})
        for k, (e, o) in sp.alpha_shapes().items():
            self.register_buffer(f"mask_{k}", torch.ones(e, o))
            self.register_buffer(f"fixed_{k}", torch.full((e,), -1, dtype=torch.long))
        # Which ops feed each mix, as buffers so that they follow the module to its device.
        self._slots: dict[str, str] = {}
        for i, n in enumerate(n for n in sp.plan.nodes if n.op == "mix"):
            self._slots[n.name] = f"slots_{i}"
            self.register_buffer(f"slots_{i}", torch.tensor(n.attrs["slots"]), persistent=False)
        self._w: dict[str, torch.Tensor] = {}

    # ------------------------------------------------------------------ parameters
    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.alphas.values())

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if not name.startswith("alphas.")]

    def mask(self, kind: str) -> torch.Tensor:
        return getattr(self, f"mask_{kind}")

    def fixed(self, kind: str) -> torch.Tensor:
        return getattr(self, f"fixed_{kind}")

    def weights(self) -> dict[str, torch.Tensor]:
        """Per kind, the ``(edges, ops)`` op weights the mixes use: softmax(alpha) with masked
        ops at 0, fixed edges one-hot and :data:`ABSENT` edges all 0."""
        out = {}
        for k, a in self.alphas.items():
            w = torch.softmax(a, dim=-1) * self.mask(k)
            fixed = self.fixed(k)
            if bool((fixed >= 0).any()):
                one_hot = torch.zeros_like(w)
                rows = torch.nonzero(fixed >= 0).flatten()
                one_hot[rows, fixed[rows]] = 1.0
                w = torch.where((fixed >= 0)[:, None], one_hot, w)
            w = torch.where((fixed == ABSENT)[:, None], torch.zeros_like(w), w)
            out[k] = w
        return out

    def fix_cell(self, cell: dict[str, Any]) -> None:
        """Fix every edge to the op the cell genotype gives it; a DARTS cell's edges that the
        genotype does not name are :data:`ABSENT`. The mixes then compute that cell."""
        ops = list(self.sp.ops)
        for kind, edges in self.sp.kinds.items():
            fixed = torch.full((len(edges),), ABSENT, dtype=torch.long)
            if self.cell_spec.type == "darts":
                k = self.cell_spec.edges_per_node or 2
                chosen = {(pos // k, j): op for pos, (op, j) in enumerate(cell[kind])}
                for e, pair in enumerate(edges):
                    if pair in chosen:
                        fixed[e] = ops.index(chosen[pair])
            else:
                fixed = torch.tensor([ops.index(op) for op in cell["edges"]], dtype=torch.long)
            self.fixed(kind).copy_(fixed)

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._w = self.weights()
        try:
            return super().forward(x)
        finally:
            self._w = {}

    def _mix(self, node, ins: list[torch.Tensor]) -> torch.Tensor:
        a = node.attrs
        w = self._w[a["kind"]][a["edge"]].index_select(0, getattr(self, self._slots[node.name]))
        stacked = torch.stack(ins)
        return (w.to(stacked.dtype).view(-1, *([1] * (stacked.dim() - 1))) * stacked).sum(0)

    # ------------------------------------------------------------------ genotype
    def derive(self, k: int | None = None) -> dict[str, Any]:
        """The discrete cell of the current weights (see :func:`derive_cell`)."""
        with torch.no_grad():
            w = {kind: v.detach().cpu().numpy() for kind, v in self.weights().items()}
        return derive_cell(self.sp, self.cell_spec, w, k)


def derive_cell(sp: SupernetPlan, cell_spec, weights: dict[str, np.ndarray], k: int | None = None
                ) -> dict[str, Any]:
    """The discrete genotype of op weights ``(edges, ops)`` per kind.

    DARTS cells: for every node, the ``k`` (the space's ``edges_per_node``) incoming edges
    with the strongest non-'none' op, each with that op (Liu et al., ICLR 2019, section 2.4).
    Dense cells: the strongest op of every edge, 'none' included (as NAS-Bench-201's DARTS
    baselines derive their cells).
    """
    ops = sp.ops
    real = np.array([OPS[o].kind != "none" for o in ops])
    if cell_spec.type == "darts":
        k = int(k or cell_spec.edges_per_node or 2)
        out = {}
        for kind in ("normal", "reduce"):
            w = weights.get(kind, weights["normal"])
            edges = sp.kinds.get(kind, sp.kinds["normal"])
            genes: list[list[Any]] = []
            for i in range(cell_spec.nodes):
                rows = [(e, j) for e, (node, j) in enumerate(edges) if node == i]
                scored = []
                for e, j in rows:
                    masked = np.where(real, w[e], -np.inf)
                    o = int(np.argmax(masked))
                    scored.append((float(masked[o]), j, ops[o]))
                # Strongest first; ties go to the lower input, then the op name (deterministic).
                best = sorted(scored, key=lambda t: (-t[0], t[1], t[2]))[:k]
                genes.extend(sorted(([op, j] for _s, j, op in best), key=lambda g: (g[1], g[0])))
            out[kind] = genes
        return out
    w = weights["normal"]
    return {"edges": [ops[int(np.argmax(w[e]))] for e in range(len(sp.kinds["normal"]))]}
