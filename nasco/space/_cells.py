"""Cell genotypes: DARTS cells (two inputs, k inputs kept per node) and dense NB201 cells.

The cell DAG of a genotype is a networkx graph (:func:`cell_graph`), which the network
builder walks in topological order.
"""
from __future__ import annotations

import math
from typing import Any

import networkx as nx
import numpy as np

from nasco.dsl._specs import CellSpec

__all__ = ["CellFamily", "DartsCells", "DenseCell", "cell_family", "cell_graph"]


class CellFamily:
    """Sampling, mutation, counting and encoding of one cell family's genotypes."""

    def __init__(self, spec: CellSpec) -> None:
        self.spec = spec
        self.ops = list(spec.ops)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        raise NotImplementedError

    def mutate(self, cell: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        raise NotImplementedError

    def count(self) -> int:
        raise NotImplementedError

    def encode(self, cell: dict[str, Any]) -> np.ndarray:
        raise NotImplementedError

    def check(self, cell: Any) -> None:
        raise NotImplementedError

    def canonical(self, cell: dict[str, Any]) -> dict[str, Any]:
        """The one form of a genotype that ids are computed from."""
        return cell


class DartsCells(CellFamily):
    """A normal and a reduction cell; node i keeps ``k`` distinct inputs among the two cell
    inputs and nodes < i, each with a non-'none' op (Liu et al., ICLR 2019). Inputs are
    numbered 0, 1 (cells k-2, k-1), then 2 + j for node j."""

    KINDS = ("normal", "reduce")

    def __init__(self, spec: CellSpec) -> None:
        super().__init__(spec)
        self.k = spec.edges_per_node or 2
        self.edge_ops = [o for o in self.ops if o != "none"]

    def _node(self, i: int, rng: np.random.Generator) -> list[list[Any]]:
        inputs = rng.choice(2 + i, size=self.k, replace=False)
        return sorted([[self.edge_ops[int(rng.integers(len(self.edge_ops)))], int(j)] for j in inputs],
                      key=lambda e: (e[1], e[0]))

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {kind: [e for i in range(self.spec.nodes) for e in self._node(i, rng)] for kind in self.KINDS}

    def mutate(self, cell: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        out = {k: [list(e) for e in v] for k, v in cell.items()}
        kind = self.KINDS[int(rng.integers(2))]
        edges = out[kind]
        pos = int(rng.integers(len(edges)))
        node = pos // self.k
        if rng.random() < 0.5 and len(self.edge_ops) > 1:
            others = [o for o in self.edge_ops if o != edges[pos][0]]
            edges[pos][0] = others[int(rng.integers(len(others)))]
        else:
            taken = {e[1] for e in edges[node * self.k:(node + 1) * self.k]}
            free = [j for j in range(2 + node) if j not in taken]
            if free:
                edges[pos][1] = free[int(rng.integers(len(free)))]
            else:  # the first node has no other input: change its op instead
                others = [o for o in self.edge_ops if o != edges[pos][0]] or self.edge_ops
                edges[pos][0] = others[int(rng.integers(len(others)))]
        return self.canonical(out)

    def canonical(self, cell: dict[str, Any]) -> dict[str, Any]:
        """Each node's kept edges sorted by (input, op): the order a genotype is written in
        does not change the network, so it must not change the id either."""
        out = {}
        for kind, edges in cell.items():
            edges = [list(e) for e in edges]
            for i in range(len(edges) // self.k):
                edges[i * self.k:(i + 1) * self.k] = sorted(edges[i * self.k:(i + 1) * self.k],
                                                            key=lambda e: (e[1], e[0]))
            out[kind] = edges
        return out

    def count(self) -> int:
        per_cell = 1
        for i in range(self.spec.nodes):
            per_cell *= math.comb(2 + i, self.k) * len(self.edge_ops) ** self.k
        return per_cell ** 2

    def encode(self, cell: dict[str, Any]) -> np.ndarray:
        """One-hot of (input, op) per node, normal then reduce."""
        n_in = 2 + self.spec.nodes - 1
        vec = []
        for kind in self.KINDS:
            for i in range(self.spec.nodes):
                block = np.zeros((n_in, len(self.edge_ops)))
                for op, j in cell[kind][i * self.k:(i + 1) * self.k]:
                    block[j, self.edge_ops.index(op)] = 1.0
                vec.append(block.ravel())
        return np.concatenate(vec)

    def check(self, cell: Any) -> None:
        if not isinstance(cell, dict) or set(cell) != set(self.KINDS):
            raise ValueError("a darts cell is {'normal': [...], 'reduce': [...]}")
        for kind in self.KINDS:
            edges = cell[kind]
            if len(edges) != self.k * self.spec.nodes:
                raise ValueError(f"{kind}: expected {self.k * self.spec.nodes} edges, got {len(edges)}")
            for pos, (op, j) in enumerate(edges):
                node = pos // self.k
                if op not in self.edge_ops:
                    raise ValueError(f"{kind}[{pos}]: op '{op}' is not in {self.edge_ops}")
                if not (isinstance(j, int) and 0 <= j < 2 + node):
                    raise ValueError(f"{kind}[{pos}]: node {node} cannot take input {j}")
            for i in range(self.spec.nodes):
                ins = [e[1] for e in edges[i * self.k:(i + 1) * self.k]]
                if len(set(ins)) != len(ins):
                    raise ValueError(f"{kind}: node {i} repeats an input {ins}")


class DenseCell(CellFamily):
    """Every edge j -> i (j < i) of an (n+1)-node DAG carries one op, 'none' included
    (NAS-Bench-201). Edges are ordered (1,0), (2,0), (2,1), (3,0), ... as in its arch string."""

    def __init__(self, spec: CellSpec) -> None:
        super().__init__(spec)
        self.edges = [(i, j) for i in range(1, spec.nodes + 1) for j in range(i)]

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"edges": [self.ops[int(rng.integers(len(self.ops)))] for _ in self.edges]}

    def mutate(self, cell: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        edges = list(cell["edges"])
        pos = int(rng.integers(len(edges)))
        others = [o for o in self.ops if o != edges[pos]]
        edges[pos] = others[int(rng.integers(len(others)))]
        return {"edges": edges}

    def count(self) -> int:
        return len(self.ops) ** len(self.edges)

    def encode(self, cell: dict[str, Any]) -> np.ndarray:
        vec = np.zeros((len(self.edges), len(self.ops)))
        for e, op in enumerate(cell["edges"]):
            vec[e, self.ops.index(op)] = 1.0
        return vec.ravel()

    def check(self, cell: Any) -> None:
        if not isinstance(cell, dict) or list(cell) != ["edges"]:
            raise ValueError("a dense cell is {'edges': [op, ...]}")
        if len(cell["edges"]) != len(self.edges):
            raise ValueError(f"expected {len(self.edges)} edges, got {len(cell['edges'])}")
        for e, op in enumerate(cell["edges"]):
            if op not in self.ops:
                raise ValueError(f"edges[{e}]: op '{op}' is not in {self.ops}")

    def arch_str(self, cell: dict[str, Any]) -> str:
        """NAS-Bench-201's string form ``|op~0|+|op~0|op~1|+...``."""
        groups, k = [], 0
        for i in range(1, self.spec.nodes + 1):
            groups.append("|" + "|".join(f"{cell['edges'][k + j]}~{j}" for j in range(i)) + "|")
            k += i
        return "+".join(groups)


def cell_family(spec: CellSpec) -> CellFamily:
    return DartsCells(spec) if spec.type == "darts" else DenseCell(spec)


def cell_graph(spec: CellSpec, edges: list[tuple[int, int, str]]) -> nx.DiGraph:
    """The cell DAG: node ids are input/node numbers, edges carry their op.

    For a dense cell node 0 is the input and 1..n the nodes; for a darts cell 0, 1 are the
    inputs and 2..n+1 the nodes. 'none' edges are left out, and nodes that cannot reach
    the output are pruned, so the builder never computes dead branches.
    """
    g = nx.DiGraph()
    n_inputs = 1 if spec.type == "dense" else 2
    g.add_nodes_from(range(n_inputs + spec.nodes))
    for dst, src, op in edges:
        if op != "none":
            g.add_edge(src, dst, op=op)
    outputs = [n_inputs + spec.nodes - 1] if spec.type == "dense" else list(range(n_inputs, n_inputs + spec.nodes))
    # A node is live if it both reaches an output and is reached from an input; the
    # others would only ever carry zeros.
    reaches = set(outputs).union(*(nx.ancestors(g, o) for o in outputs))
    reached = set(range(n_inputs)).union(*(nx.descendants(g, i) for i in range(n_inputs)))
    live = (reaches & reached) | set(range(n_inputs)) | set(outputs)
    return g.subgraph(live).copy()
