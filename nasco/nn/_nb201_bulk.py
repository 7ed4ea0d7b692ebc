"""Workloads of many dense-cell (NAS-Bench-201) networks at once.

Planning every network on its own (``plan_workload(plan_network(...))``) is slow for all
15,625 cells; this assembles them from a few planned networks instead (timings in the README,
"Validation and benchmarks"). This works because in an ANN with dense cells an edge's
layers depend only on its op and on the stage it sits in (every state of a cell has the
cell's shape, every edge has stride 1), and which edges are live depends only on which edges
are 'none' (the pruning of :func:`nasco.space.cell_graph`); a cell node's add layer (the sum of
its live in-edges) depends only on the stage and on how many of them there are. So the network is assembled from
per-edge segments cut out of a few planned networks (one per op, every edge carrying that
op), with the macro layers (stem, reduction blocks, head) in between; the segments are cut
from ``plan_network``'s own output, which stays the one source of truth.

The assembly is checked against ``plan_network`` for every op's network and for the
all-'none' cell when the builder is made, and tests compare it on random NB201 indices.
Spiking spaces are refused: there an edge's first neuron depends on whether its input
state is already spikes, which depends on the neighbouring cells.

Workload conventions (:class:`CellConvention`, by name ``convention="nasco"`` or
``"hwnasbench"``) say which layers a cell's edges cost:

* ``"nasco"`` (the default) costs the network nasco builds: dead branches (edges whose output
  never reaches the cell output, or whose input node has no input) are pruned as in
  :func:`nasco.space.cell_graph`, and avg_pool_3x3 runs on the vector unit beside the array.
* ``"hwnasbench"`` costs the networks the way HW-NAS-Bench's simulated latencies (Li et al.,
  ICLR 2021) behave: every non-'none' edge is computed, live or not, and an avg_pool_3x3 edge
  is costed as a 3x3 conv with the same input and output channels (nor_conv_3x3's conv).
  This is inferred from HW-NAS-Bench's data, not from its code: its ``eyeriss_ms`` is exactly
  linear in the number of edges carrying each op, counted over all six edges whether live or
  not, with avg_pool_3x3 and nor_conv_3x3 edges costing the same (the fit and what it rules
  out are in the README and experiments/results/nb201_hwnasbench.md). Only the cells' edge ops
  change; the reduction blocks' 2x2 shortcut pool, the same in every network, keeps nasco's
  costing.

Under both conventions each assembled workload equals :meth:`DenseCellWorkloads.planned`, the
workload of ``plan_network(..., prune_dead=convention.prune_dead)`` with the convention's
pooling applied layer by layer.
"""
from __future__ import annotations

import dataclasses
import difflib
import itertools
import re
from collections.abc import Sequence

import numpy as np

from nasco.dsl import ArchSpace
from nasco.dsl._vocab import OPS
from nasco.hw._workload import COLUMNS, Layer, Workload
from nasco.nn._plan import plan_network
from nasco.nn._workload import plan_workload
from nasco.space import cell_graph
from nasco.space._nb201 import arch_str_ops, index_table_of

__all__ = ["CONVENTIONS", "CellConvention", "DenseCellWorkloads", "cell_convention", "nb201_workloads",
           "official_cells"]

_EDGE_LAYER = re.compile(r"^cells\.(\d+)\.n(\d+)\.e(\d+)\.")
_SUM_LAYER = re.compile(r"^cells\.(\d+)\.n(\d+)\.sum$")
_EMPTY = np.zeros((len(COLUMNS), 0), dtype=np.int64)
_EMPTY.setflags(write=False)


@dataclasses.dataclass(frozen=True)
class CellConvention:
    """Which layers a dense cell's edges cost (experimental; see the module docstring).

    ``prune_dead``: leave out the edges :func:`nasco.space.cell_graph` prunes (True), or cost
    every non-'none' edge (False, as HW-NAS-Bench does). ``avg_pool_as_conv``: cost an
    average-pooling edge as a conv with the pool's window, stride and channels (as HW-NAS-Bench
    does) instead of as a pool layer on the vector unit.
    """

    prune_dead: bool = True
    avg_pool_as_conv: bool = False


CONVENTIONS: dict[str, CellConvention] = {
    "nasco": CellConvention(),
    "hwnasbench": CellConvention(prune_dead=False, avg_pool_as_conv=True),
}


def cell_convention(convention: str | CellConvention) -> CellConvention:
    """A convention by name (``"nasco"``, ``"hwnasbench"``) or as given."""
    if isinstance(convention, CellConvention):
        return convention
    if convention in CONVENTIONS:
        return CONVENTIONS[convention]
    close = difflib.get_close_matches(str(convention), CONVENTIONS, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ValueError(f"unknown workload convention {convention!r}; known: {', '.join(CONVENTIONS)}{hint} "
                     "(or pass a CellConvention)")


def _avg_pool_as_conv(layer: Layer) -> Layer:
    """A pool layer costed as the conv with its geometry: window, stride, padded ifmap and
    channels in = out (nor_conv_3x3's conv for NB201's avg_pool_3x3)."""
    return dataclasses.replace(layer, kind="conv", elements=0)


def official_cells(space: ArchSpace) -> list[tuple[str, ...]]:
    """The edge ops of every cell of a space with an official index (NB201), in index order.

    Edge order is the genotype's: (1,0), (2,0), (2,1), (3,0), (3,1), (3,2), i.e. the order
    of the ``|op~j|`` tokens of NB201's arch strings (as in ``SearchSpace.from_index``).
    """
    if not space.official_index:
        raise ValueError(f"space '{space.name}' has no official index (official_index: in its YAML)")
    by_index = sorted((i, s) for s, i in index_table_of(space).items())
    if [i for i, _ in by_index] != list(range(len(by_index))):
        raise ValueError(f"{space.official_index}: indices are not 0..{len(by_index) - 1} without gaps")
    return [arch_str_ops(s) for _, s in by_index]


class DenseCellWorkloads:
    """Builds the workload of any cell of one resolved ANN dense-cell space, fast.

    >>> from nasco.dsl import load_spec
    >>> b = DenseCellWorkloads(load_spec("nb201"), (3, 32, 32), 10)
    >>> len(b(["nor_conv_3x3"] * 6)) == 1 + 15 * (6 + 2) + 2 * (3 + 2) + 1
    True

    ``convention`` (a name in :data:`CONVENTIONS` or a :class:`CellConvention`) chooses which
    layers the edges cost: with ``"hwnasbench"`` a dead conv branch is costed too.

    >>> dead = ["nor_conv_3x3", "none", "none", "skip_connect", "none", "none"]  # node 1: a dead end
    >>> hw = DenseCellWorkloads(load_spec("nb201"), (3, 32, 32), 10, convention="hwnasbench")
    >>> hw(dead).macs > b(dead).macs
    True
    """

    def __init__(self, space: ArchSpace, input_shape: tuple[int, int, int], num_classes: int, *,
                 convention: str | CellConvention = "nasco") -> None:
        if space.cell.type != "dense":
            raise ValueError(f"space '{space.name}': DenseCellWorkloads needs a dense cell, "
                             f"got cell.type '{space.cell.type}'; use plan_network per genotype")
        if space.neuron is not None:
            raise ValueError(f"space '{space.name}' is spiking: an edge's layers then depend on its "
                             "neighbours (see module docstring); use plan_workload(plan_network(...))")
        self.space = space
        self.input_shape = tuple(input_shape)
        self.num_classes = int(num_classes)
        self.convention = cell_convention(convention)
        n = space.cell.nodes
        self.pairs = [(i, j) for i in range(1, n + 1) for j in range(i)]  # as in _Builder.dense_cell
        self.ops = tuple(space.cell.ops)
        fixed = self.planned(["none"] * len(self.pairs)).layers
        # (position, edge number, op) -> the layers of that edge; position -> how many macro
        # layers come before that cell.
        seg: dict[tuple[int, int, str], list[Layer]] = {}
        insert_at: dict[int, int] = {}
        # (position, cell node) -> that node's add layer in a network where every edge is live
        sums: dict[tuple[int, int], Layer] = {}
        for op in self.ops:
            if op == "none":
                continue
            rest = []
            for layer in self.planned([op] * len(self.pairs)).layers:
                m = _EDGE_LAYER.match(layer.name)
                if m is None:
                    s = _SUM_LAYER.match(layer.name)
                    if s is None:
                        rest.append(layer)
                    elif sums.setdefault((int(s.group(1)), int(s.group(2))), layer) != layer:
                        raise RuntimeError(f"the add layer {layer.name} changes with the cell op '{op}'")
                    continue
                pos, edge = int(m.group(1)), self.pairs.index((int(m.group(2)), int(m.group(3))))
                seg.setdefault((pos, edge, op), []).append(layer)
                if insert_at.setdefault(pos, len(rest)) != len(rest):
                    raise RuntimeError(f"cell {pos}'s layers sit at different places in different networks")
            if tuple(rest) != fixed:
                raise RuntimeError(f"the macro layers change with the cell op '{op}'; cannot assemble")
        self.positions = sorted(insert_at)
        cuts = [0] + [insert_at[p] for p in self.positions] + [len(fixed)]
        self._fixed = [(fixed[a:b], Workload(fixed[a:b]).columns()) for a, b in zip(cuts[:-1], cuts[1:])]
        # position -> {(edge, op): its layers}, and their columns
        self._layers_at = {p: {(e, op): tuple(v) for (q, e, op), v in seg.items() if q == p}
                           for p in self.positions}
        self._cols_at = {p: {k: Workload(v).columns() for k, v in at.items()}
                         for p, at in self._layers_at.items()}
        # (position, node, live in-edges) -> the node's add layer, for 2..all its in-edges
        fan_in = {i: sum(1 for d, _ in self.pairs if d == i) for i in range(1, n + 1)}
        self._sums = {(p, i, k): (dataclasses.replace(layer, operands=k),)
                      for (p, i), layer in sums.items() for k in range(2, fan_in[i] + 1)}
        for key, layers in self._sums.items():
            self._cols_at[key[0]][("sum",) + key[1:]] = Workload(layers).columns()

        def same(p: int, q: int) -> bool:
            a, b = self._cols_at[p], self._cols_at[q]
            return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)

        # Cells whose edges have the same layer columns (the cells of one stage) share them.
        self._stage = {p: next(q for q in self.positions if same(p, q)) for p in self.positions}
        self._live: dict[tuple[bool, ...], tuple[int, ...]] = {}
        for cell in [["none"] * len(self.pairs)] + [[op] * len(self.pairs) for op in self.ops]:
            if self(cell).layers != self.planned(cell).layers:  # pragma: no cover - a planner change
                raise RuntimeError(f"assembled workload differs from plan_network for cell {cell}")

    def _check(self, cell: Sequence[str]) -> None:
        if len(cell) != len(self.pairs):
            raise ValueError(f"a cell of space '{self.space.name}' has {len(self.pairs)} edges, "
                             f"got {len(cell)}")
        bad = [op for op in cell if op not in self.ops]
        if bad:
            close = difflib.get_close_matches(bad[0], self.ops, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ValueError(f"unknown op {bad[0]!r}; known: {', '.join(self.ops)}{hint}")

    def planned(self, cell: Sequence[str], name: str = "network") -> Workload:
        """The workload of the network with this cell, built the slow way (5-10 ms) under the
        builder's convention: ``plan_workload(plan_network(space, {"edges": cell}, input_shape,
        num_classes, prune_dead=...), name)``, with each average-pooling edge's pool layer
        costed as a conv when the convention says so. ``__call__`` equals it."""
        self._check(cell)
        plan = plan_network(self.space, {"edges": list(cell)}, self.input_shape, self.num_classes,
                            prune_dead=self.convention.prune_dead)
        w = plan_workload(plan, name)
        if not self.convention.avg_pool_as_conv:
            return w
        layers = []
        for layer in w.layers:
            m = _EDGE_LAYER.match(layer.name)
            if (m is not None and layer.kind == "pool"
                    and OPS[cell[self.pairs.index((int(m.group(2)), int(m.group(3))))]].kind == "pool_avg"):
                layer = _avg_pool_as_conv(layer)
            layers.append(layer)
        return Workload(tuple(layers), name=name)

    def _live_edges(self, cell: Sequence[str]) -> tuple[int, ...]:
        """Edge numbers the convention costs, in the builder's order: those that survive
        cell_graph's pruning, or with ``prune_dead=False`` every non-'none' edge."""
        mask = tuple(op != "none" for op in cell)
        live = self._live.get(mask)
        if live is None:
            if self.convention.prune_dead:
                g = cell_graph(self.space.cell, [(i, j, op) for (i, j), op in zip(self.pairs, cell)])
                found = (self.pairs.index((i, j)) for j, i in g.edges)
            else:
                found = (e for e, m in enumerate(mask) if m)
            live = tuple(sorted(found, key=lambda e: self.pairs[e]))
            self._live[mask] = live
        return live

    def __call__(self, cell: Sequence[str], name: str = "network") -> Workload:
        """The workload of the network with this cell under the builder's convention; equal
        to :meth:`planned` (with the default convention, to ``plan_workload(plan_network(
        space, {"edges": cell}, input_shape, num_classes), name)``)."""
        self._check(cell)
        edges = [(e, cell[e]) for e in self._live_edges(cell)]
        # (edge, op) keys in the builder's order, each node's ("sum", node, in-edges) key
        # after its last live in-edge when it has two or more
        keys: list[tuple] = []
        for node, group in itertools.groupby(edges, key=lambda k: self.pairs[k[0]][0]):
            group = list(group)
            keys += group
            if len(group) > 1:
                keys.append(("sum", node, len(group)))
        layers = list(self._fixed[0][0])
        pieces = [self._fixed[0][1]]
        stage_cols: dict[int, np.ndarray] = {}
        for pos, (fixed, fixed_cols) in zip(self.positions, self._fixed[1:]):
            at = self._layers_at[pos]
            for k in keys:
                if k[0] == "sum":
                    layers += self._sums[(pos,) + k[1:]]
                elif k in at:
                    layers += at[k]
            stage = self._stage[pos]
            cols = stage_cols.get(stage)
            if cols is None:
                at_cols = self._cols_at[stage]
                found = [at_cols[k] for k in keys if k in at_cols]
                cols = stage_cols[stage] = np.concatenate(found or [_EMPTY], axis=1)
            pieces.append(cols)
            if fixed:
                layers += fixed
                pieces.append(fixed_cols)
        return Workload._with_columns(tuple(layers), np.concatenate(pieces, axis=1), name)


def nb201_workloads(space: ArchSpace, cells: Sequence[Sequence[str]] | None = None,
                    input_shape: tuple[int, int, int] = (3, 32, 32), num_classes: int = 10,
                    names: Sequence[str] | None = None, *,
                    convention: str | CellConvention = "nasco") -> list[Workload]:
    """Workloads of many cells of a resolved ANN dense-cell space (by default: every
    official cell, in index order, named ``<space>-<index>``); CIFAR-10 shapes by default.
    ``convention``: ``"nasco"`` (dead branches pruned, pooling on the vector unit) or
    ``"hwnasbench"`` (every edge costed, avg_pool_3x3 as a 3x3 conv), see the module docstring."""
    if cells is None:
        cells = official_cells(space)
        if names is None:
            names = [f"{space.name}-{i}" for i in range(len(cells))]
    if names is not None and len(names) != len(cells):
        raise ValueError(f"{len(names)} names for {len(cells)} cells")
    build = DenseCellWorkloads(space, input_shape, num_classes, convention=convention)
    return [build(cell, "network" if names is None else names[k]) for k, cell in enumerate(cells)]
