"""Few-shot supernets (Zhao et al., ICML 2021): the one-shot supernet split on one edge of the
cell into one sub-supernet per op of that edge, each trained only on architectures with that
op there.

An edge is named as network plans name it (``cells.<position>.nI.eJ``):

* darts cells: ``KIND.nI.eJ``, ``KIND`` ``normal`` or ``reduce``, ``I`` the intermediate node
  (0 first), ``J`` its input (0 and 1 the cell inputs, 2 + j node j). A node keeps
  ``edges_per_node`` of its inputs: where it may leave the edge out, the cells without it form
  one more sub-supernet, ``none``;
* dense (nb201) cells: ``nI.eJ``, ``I`` in 1..nodes, ``J`` < ``I`` (0 the cell input).

``few_shot: true`` splits :data:`DEFAULT_DARTS_EDGE` (the normal cell's first node and first
input) or :data:`DEFAULT_DENSE_EDGE`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from nasco.dsl import SpecError
from nasco.dsl._errors import close_matches, shown

__all__ = ["DEFAULT_DARTS_EDGE", "DEFAULT_DENSE_EDGE", "SplitEdge", "restricted_sampler", "split_edge"]

DEFAULT_DARTS_EDGE = "normal.n0.e0"
DEFAULT_DENSE_EDGE = "n1.e0"
ABSENT = "none"  # the op of a darts edge its node leaves out
_DARTS = re.compile(r"^(normal|reduce)\.n(\d+)\.e(\d+)$")
_DENSE = re.compile(r"^n(\d+)\.e(\d+)$")
# Draws of the space's sampler before a restricted sampler gives up. The rarest op of a
# split edge has a probability of at least 1 / (ops x inputs of the last node) (darts_snn: 1/35),
# so this many draws all missing it means the op cannot occur, not bad luck.
MAX_DRAWS = 100_000


@dataclass(frozen=True)
class SplitEdge:
    """The edge a supernet is split on: its name, its cell ``kind`` (``normal``/``reduce``;
    None for a dense cell), ``node`` and ``src`` input, and the ``ops`` it can carry, one
    sub-supernet each."""

    name: str
    kind: str | None
    node: int
    src: int
    ops: tuple[str, ...]
    per_node: int  # darts: the edges each node keeps; dense: 0

    def op_of(self, cell: dict[str, Any]) -> str:
        """The op ``cell`` (a genotype) has on this edge; ``none`` where a darts node leaves
        the edge out."""
        if self.kind is None:
            pairs = [(i, j) for i in range(1, self.node + 1) for j in range(i)]
            return str(cell["edges"][pairs.index((self.node, self.src))])
        k = self.per_node
        ops = [op for op, j in cell[self.kind][self.node * k:(self.node + 1) * k] if j == self.src]
        return str(ops[0]) if ops else ABSENT


def _edge_names(cell: Any) -> list[str]:
    if cell.type == "darts":
        return [f"{kind}.n{i}.e{j}" for kind in ("normal", "reduce") for i in range(cell.nodes)
                for j in range(2 + i)]
    return [f"n{i}.e{j}" for i in range(1, cell.nodes + 1) for j in range(i)]


def split_edge(space: Any, edge: str | bool) -> SplitEdge:
    """The edge named ``edge`` of the resolved space ``space``'s cell (``True``: the default
    edge); a :class:`~nasco.dsl.SpecError` (key path ``few_shot``) names the edge grammar and
    close matches when the cell has no such edge."""
    cell = space.cell
    darts = cell.type == "darts"
    if edge is True:
        edge = DEFAULT_DARTS_EDGE if darts else DEFAULT_DENSE_EDGE
    grammar = (f"an edge of {space.name}'s darts cell, KIND.nI.eJ (KIND normal or reduce, node I in "
               f"0..{cell.nodes - 1}, input J in 0..I+1; e.g. {DEFAULT_DARTS_EDGE}), or True for that one"
               if darts else
               f"an edge of {space.name}'s dense cell, nI.eJ (node I in 1..{cell.nodes}, input J in 0..I-1; "
               f"e.g. {DEFAULT_DENSE_EDGE}), or True for that one")
    names = _edge_names(cell)
    if not isinstance(edge, str) or edge not in names:
        hint = close_matches(edge, names) if isinstance(edge, str) else None
        raise SpecError(grammar, shown(edge), path=("few_shot",), hint=hint)
    if darts:
        m = _DARTS.match(edge)
        assert m is not None  # a name of _edge_names
        kind, node, src = m.group(1), int(m.group(2)), int(m.group(3))
        k = int(cell.edges_per_node or 2)
        ops = tuple(o for o in cell.ops if o != ABSENT)
        # Node ``node`` keeps k of its 2 + node inputs: only when it has no other may it not drop this one.
        return SplitEdge(edge, kind, node, src, ops if 2 + node == k else ops + (ABSENT,), k)
    m = _DENSE.match(edge)
    assert m is not None
    return SplitEdge(edge, None, int(m.group(1)), int(m.group(2)), tuple(cell.ops), 0)


def restricted_sampler(sample: Callable[[np.random.Generator], tuple[dict[str, Any], dict[str, Any]]],
                       edge: SplitEdge, op: str) -> Callable[[np.random.Generator], tuple[dict[str, Any],
                                                                                         dict[str, Any]]]:
    """``sample`` (rng -> (cell, hp)) conditioned on ``op`` on ``edge``: its draws, on the same
    generator, until one has that op there (rejection sampling, so the cells keep the space's
    own distribution within the sub-space). RuntimeError after :data:`MAX_DRAWS` misses."""
    if op not in edge.ops:
        raise ValueError(f"op '{op}' is not one of edge {edge.name}'s ops {list(edge.ops)}")

    def draw(rng: np.random.Generator) -> tuple[dict[str, Any], dict[str, Any]]:
        for _ in range(MAX_DRAWS):
            cell, hp = sample(rng)
            if edge.op_of(cell) == op:
                return cell, hp
        raise RuntimeError(f"{MAX_DRAWS} sampled cells, none with op '{op}' on edge {edge.name}")

    return draw
