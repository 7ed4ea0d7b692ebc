"""Single paths of a weight-sharing supernet (SPOS: Guo et al., ECCV 2020).

A single path is the stand-alone network of one cell genotype (:func:`nasco.nn.plan_network`)
built on the supernet's modules: each conv, BN and linear layer of the path *is* the
supernet's layer of the same op on the same edge, so a training step on the path trains the
supernet, and the path's state dict loads into the stand-alone :class:`GraphNet` unchanged.
Edges the genotype does not choose are absent from the path, not computed as zeros.
"""
from __future__ import annotations

import math
import re
from typing import Any, Sequence

import torch
from torch import nn

from nasco.dsl import ArchSpace
from nasco.nn._plan import Node, Plan, plan_network, plan_supernet
from nasco.nn._supernet import SuperNet
from nasco.nn._torch import GraphNet, _key, make_layer, make_neuron

__all__ = ["OneShotNet"]

# A node of a cell's edge op in a network plan: cells.<position>.n<node>.e<input>.<rest>. The
# supernet names the same node cells.<position>.n<node>.e<input>.<op>.<rest>.
_EDGE = re.compile(r"^(cells\.(\d+)\.n(\d+)\.e(\d+))\.(.+)$")


class OneShotNet(nn.Module):
    """The shared weights of every architecture of a resolved space's macro skeleton.

    ``supernet`` (a :class:`SuperNet` of the space) holds one conv/BN/linear layer per op of
    every edge; :meth:`single_path` runs one cell on them. ``space`` fixes every shape (cells,
    channels); a path may take other neuron settings and timesteps (``arch`` of
    :meth:`single_path`), which change no shape: its neurons are built from ``arch``. PLIF
    neurons learn their time constant: ``plif`` holds one such parameter per neuron position
    (the neuron feeding a given conv, or a given neuron node of the supernet) and per
    initial ``taus`` value, each initialised as spikingjelly's ParametricLIFNode does
    (``w = -log(tau - 1)``) and used only by PLIF paths with that initial tau.
    """

    def __init__(self, space: ArchSpace, input_shape: tuple[int, int, int], num_classes: int, *,
                 taus: Sequence[float] = ()) -> None:
        super().__init__()
        self.space = space
        self.input_shape = tuple(input_shape)
        self.num_classes = int(num_classes)
        self.supernet = SuperNet(plan_supernet(space, self.input_shape, self.num_classes), space)
        self._nodes = self.supernet.plan.by_name()
        self.taus = tuple(float(t) for t in taus)
        slots = self._plif_slots() if space.neuron is not None else []
        self.plif = nn.ParameterDict({self._plif_key(s, i): nn.Parameter(torch.tensor(-math.log(t - 1.0)))
                                      for s in slots for i, t in enumerate(self.taus)})

    def weight_parameters(self) -> list[nn.Parameter]:
        """The parameters paths train: every layer's and the PLIF time constants (not the
        supernet's architecture weights)."""
        return self.supernet.weight_parameters() + list(self.plif.values())

    # ------------------------------------------------------------------ names
    def _plif_slots(self) -> list[str]:
        """Every PLIF position: ``out:`` a neuron node of the supernet, ``in:`` a conv whose
        input is a neuron."""
        nodes = self.supernet.plan.nodes
        return [f"out:{n.name}" for n in nodes if n.op == "neuron"] + \
            [f"in:{n.name}" for n in nodes if n.op == "conv" and self._nodes[n.inputs[0]].op == "neuron"]

    @staticmethod
    def _plif_key(slot: str, tau_index: int) -> str:
        return _key(slot.replace(":", "_")) + f"__tau{tau_index}"

    def _edge_op(self, cell: dict[str, Any], position: int, node: int, src: int) -> str:
        spec = self.space.cell
        if spec.type == "darts":
            kind = "reduce" if position in set(self.space.macro.reductions) else "normal"
            k = spec.edges_per_node or 2
            ops = [op for pos, (op, j) in enumerate(cell[kind]) if pos // k == node and j == src]
        else:
            pairs = [(i, j) for i in range(1, spec.nodes + 1) for j in range(i)]
            ops = [cell["edges"][pairs.index((node, src))]]
        if len(ops) != 1:
            raise ValueError(f"cell {cell}: edge n{node}.e{src} of cell {position} has {len(ops)} ops")
        return ops[0]

    def supernet_name(self, name: str, cell: dict[str, Any]) -> str:
        """The supernet node of a node of ``cell``'s network plan (edge ops gain the op's name)."""
        m = _EDGE.match(name)
        if m is None:
            return name
        prefix, pos, node, src, rest = m.groups()
        return f"{prefix}.{self._edge_op(cell, int(pos), int(node), int(src))}.{rest}"

    def _counterpart(self, n: Node, cell: dict[str, Any]) -> str:
        """The supernet node of the path's conv, BN or linear ``n``; RuntimeError when the
        plans disagree on it (a planner bug, never a user's)."""
        name = self.supernet_name(n.name, cell)
        s = self._nodes.get(name)
        if s is None or (s.op, s.shape, s.attrs) != (n.op, n.shape, n.attrs):
            found = "nothing" if s is None else f"{s.op} {s.shape} {s.attrs}"
            raise RuntimeError(f"single path: {n.name} ({n.op} {n.shape} {n.attrs}) maps to {name}: {found}")
        return name

    def _plif_slot(self, plan: Plan, n: Node, cell: dict[str, Any]) -> str:
        """The PLIF position of the path's neuron ``n`` (see :meth:`_plif_slots`)."""
        own = self.supernet_name(n.name, cell)
        if own in self._nodes and self._nodes[own].op == "neuron":
            return f"out:{own}"
        convs = [c for c in plan.nodes if c.op == "conv" and c.inputs == (n.name,)]
        if len(convs) == 1:
            return f"in:{self._counterpart(convs[0], cell)}"
        act = f"{self.supernet_name(n.inputs[0], cell)}.act"
        if act in self._nodes and self._nodes[act].op == "neuron":
            return f"out:{act}"
        raise RuntimeError(f"single path: neuron {n.name} has no PLIF position in the supernet")

    # ------------------------------------------------------------------ paths
    def single_path(self, arch: ArchSpace, cell: dict[str, Any]) -> GraphNet:
        """The network of ``cell`` on this supernet's layers (shared, not copied). ``arch`` is
        the resolved space of the path: the same shapes as :attr:`space`; its neuron settings
        and timesteps are the path's own."""
        plan = plan_network(arch, cell, self.input_shape, self.num_classes)
        plif = arch.neuron is not None and arch.neuron.type == "plif"
        tau_index = self.taus.index(float(arch.neuron.tau)) if plif else -1

        def layer_of(n: Node, space: ArchSpace) -> nn.Module | None:
            if n.op in ("conv", "bn", "linear"):
                return self.supernet.module_of(self._counterpart(n, cell))
            if n.op == "neuron" and plif:
                neuron = make_neuron(space)
                neuron.w = self.plif[self._plif_key(self._plif_slot(plan, n, cell), tau_index)]
                return neuron
            return make_layer(n, space)

        return GraphNet(plan, arch, layer_of)

    def path_state_dict(self, arch: ArchSpace, cell: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The weights of ``cell``'s path as the state dict of the stand-alone
        ``GraphNet(plan_network(arch, cell, ...))`` (copies)."""
        return {k: v.detach().clone() for k, v in self.single_path(arch, cell).state_dict().items()}
