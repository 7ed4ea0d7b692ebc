"""Encodings of dense (NAS-Bench-201-style) cells for predictors, vectorised over many cells.

Every function takes the space and either a sequence of candidates or an ``(N, E)`` integer
array of op indices (``space.cells.ops`` order, edges in the space's order (1,0), (2,0),
(2,1), ...), so encoding all 15,625 NB201 cells is one numpy pass (see :func:`cell_ops`).

* ``onehot``: one-hot of each edge's op (the space's own ``encode`` of the cell).
* ``adjacency``: the cell as an op-on-node DAG (input, one node per edge, output) as in
  NAS-Bench-101 / BANANAS' adjacency encoding: the flattened adjacency matrix, then the op
  one-hot of every node. 'none' edges become isolated nodes.
* ``path``: BANANAS' path encoding (White, Neiswanger & Savani, AAAI 2021): one feature per
  op sequence of an input -> output path, counting the paths with that sequence (paths
  through a 'none' edge do not exist). Sequences longer than ``max_path_len`` are cut off,
  as BANANAS truncates to the shortest paths, since the number of features is
  sum_L k^L for k ops.
* ``zc``: cheap structural features of the genotype (:func:`cell_features`), the training-free
  "zero-cost" side of a combined predictor. They are counts on the live cell, not the
  gradient-based proxies (synflow, jacob_cov) of Abdelfattah et al., ICLR 2021.

* ``synflow``: log of the synflow zero-cost proxy measured on the cell's real network;
  registered in :data:`ENCODINGS` by :mod:`nasco.predictors._zerocost` (~0.1 s per new cell
  on one CPU thread, cached in the user cache dir).

``"a+b"`` concatenates encodings, e.g. ``"path+zc"`` or ``"path+zc+synflow"``.
"""
from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from nasco.core import Registry
from nasco.space import Candidate, DenseCell, SearchSpace

__all__ = ["ENCODINGS", "adjacency_encoding", "cell_feature_names", "cell_features", "cell_ops",
           "encode_cells", "live_edges", "onehot_encoding", "path_encoding"]

# Encoding name -> fn(space, ops) -> (N, F) array, in the order of the module docstring.
ENCODINGS: Registry[Any] = Registry("encoding")

Cells = Sequence[Candidate] | np.ndarray


def _dense(space: SearchSpace) -> DenseCell:
    cells = space.cells
    if not isinstance(cells, DenseCell) or space.multi_task:
        raise ValueError(f"cell encodings need a single-task dense cell space (NAS-Bench-201 style); "
                         f"'{space.arch_spec.name}' has {type(cells).__name__}"
                         f"{' and several tasks' if space.multi_task else ''}: use space.encode instead")
    return cells


def cell_ops(space: SearchSpace, cells: Cells) -> np.ndarray:
    """The ``(N, E)`` op indices of candidates (an int array is checked and passed through)."""
    dense = _dense(space)
    if isinstance(cells, np.ndarray):
        ops = np.asarray(cells)
        if ops.ndim != 2 or ops.shape[1] != len(dense.edges) or not np.issubdtype(ops.dtype, np.integer):
            raise ValueError(f"op array must be integer of shape (N, {len(dense.edges)}), got {ops.dtype} "
                             f"{ops.shape}")
        if ops.size and (ops.min() < 0 or ops.max() >= len(dense.ops)):
            raise ValueError(f"op indices must be in 0..{len(dense.ops) - 1}")
        return ops
    index = {op: i for i, op in enumerate(dense.ops)}
    return np.array([[index[op] for op in space.task_archs(c)[0]["cell"]["edges"]] for c in cells],
                    dtype=np.int64).reshape(-1, len(dense.edges))


@functools.lru_cache(maxsize=16)
def _paths(nodes: int) -> tuple[tuple[int, ...], ...]:
    """Every input -> output path of a dense cell with ``nodes`` nodes after the input, as
    edge positions, shortest first (node 0 is the input, node ``nodes`` the output)."""
    pos = {}
    k = 0
    for i in range(1, nodes + 1):
        for j in range(i):
            pos[(i, j)] = k
            k += 1
    out = []
    for r in range(nodes):
        for mids in itertools.combinations(range(1, nodes), r):
            seq = (0, *mids, nodes)
            out.append(tuple(pos[(b, a)] for a, b in zip(seq, seq[1:])))
    return tuple(out)


def _op_roles(dense: DenseCell) -> tuple[int | None, list[int]]:
    none = dense.ops.index("none") if "none" in dense.ops else None
    return none, [i for i in range(len(dense.ops)) if i != none]


@ENCODINGS.register("onehot")
def onehot_encoding(space: SearchSpace, cells: Cells) -> np.ndarray:
    """``(N, E * n_ops)``: each edge's op one-hot, edges in order (as ``space.cells.encode``)."""
    ops = cell_ops(space, cells)
    n_ops = len(space.cells.ops)
    out = np.zeros((ops.shape[0], ops.shape[1], n_ops), dtype=np.float32)
    np.put_along_axis(out, ops[:, :, None], 1.0, axis=2)
    return out.reshape(ops.shape[0], -1)


@ENCODINGS.register("adjacency")
def adjacency_encoding(space: SearchSpace, cells: Cells) -> np.ndarray:
    """``(N, V*V + V*(n_ops + 2))`` with V = E + 2 nodes: input, the E edges, output.

    Row-major adjacency (``A[u, v] = 1`` for u -> v), then per node a one-hot over
    ``[input, output, *ops]``. :class:`~nasco.predictors.GraphNetEnsemble` unpacks it.
    """
    dense = _dense(space)
    ops = cell_ops(space, cells)
    n, n_e = ops.shape
    v = n_e + 2
    base = np.zeros((v, v), dtype=np.float32)
    last = dense.spec.nodes
    for e, (dst, src) in enumerate(dense.edges):
        if src == 0:
            base[0, 1 + e] = 1.0
        if dst == last:
            base[1 + e, v - 1] = 1.0
        for f, (dst2, src2) in enumerate(dense.edges):
            if src2 == dst:
                base[1 + e, 1 + f] = 1.0
    none, _ = _op_roles(dense)
    alive = np.ones((n, v), dtype=np.float32)
    if none is not None:
        alive[:, 1:-1] = ops != none
    adj = base[None] * alive[:, :, None] * alive[:, None, :]
    feats = np.zeros((n, v, len(dense.ops) + 2), dtype=np.float32)
    feats[:, 0, 0] = 1.0
    feats[:, -1, 1] = 1.0
    np.put_along_axis(feats[:, 1:-1], 2 + ops[:, :, None], 1.0, axis=2)
    return np.concatenate([adj.reshape(n, -1), feats.reshape(n, -1)], axis=1)


@ENCODINGS.register("path")
def path_encoding(space: SearchSpace, cells: Cells, *, max_path_len: int = 3) -> np.ndarray:
    """``(N, sum_{L<=max_path_len} k^L)`` path counts, k = number of non-'none' ops.

    Feature order: length-1 sequences, then length 2, ...; within a length the sequence is
    read as a base-k number of op positions among the non-'none' ops (first edge most
    significant). The all-'none' cell is all zeros.
    """
    dense = _dense(space)
    ops = cell_ops(space, cells)
    none, real = _op_roles(dense)
    k = len(real)
    rank = np.full(len(dense.ops), -1, dtype=np.int64)
    rank[real] = np.arange(k)
    r = rank[ops]  # -1 on 'none' edges
    lengths = range(1, max_path_len + 1)
    offset = dict(zip(lengths, np.cumsum([0, *[k ** L for L in lengths]])))
    out = np.zeros((ops.shape[0], int(sum(k ** L for L in lengths))), dtype=np.float32)
    rows = np.arange(ops.shape[0])
    for path in _paths(dense.spec.nodes):
        if len(path) > max_path_len:
            continue
        seq = r[:, list(path)]
        ok = (seq >= 0).all(axis=1)
        code = (seq * (k ** np.arange(len(path) - 1, -1, -1))).sum(axis=1)
        np.add.at(out, (rows[ok], offset[len(path)] + code[ok]), 1.0)
    return out


def _liveness(dense: DenseCell, ops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(N, P)`` whether each input -> output path is free of 'none', ``(N, E)`` whether each
    edge lies on such a path."""
    none, _ = _op_roles(dense)
    n, n_e = ops.shape
    paths = _paths(dense.spec.nodes)
    alive_path = np.stack([(ops[:, list(p)] != none).all(axis=1) if none is not None else np.ones(n, bool)
                           for p in paths], axis=1)
    on_path = np.zeros((len(paths), n_e), dtype=bool)
    for i, p in enumerate(paths):
        on_path[i, list(p)] = True
    return alive_path, (alive_path.astype(np.int64) @ on_path.astype(np.int64)) > 0


def live_edges(space: SearchSpace, cells: Cells) -> np.ndarray:
    """``(N, E)`` bool: the edge lies on an input -> output path free of 'none' (the edges
    ``plan_network`` keeps; the others are dead)."""
    return _liveness(_dense(space), cell_ops(space, cells))[1]


def cell_feature_names(space: SearchSpace) -> list[str]:
    dense = _dense(space)
    _, real = _op_roles(dense)
    return ([f"live_{dense.ops[i]}" for i in real]
            + ["live_edges", "live_paths", "longest_path", "longest_conv_path", "trivial_score"])


@ENCODINGS.register("zc")
def cell_features(space: SearchSpace, cells: Cells) -> np.ndarray:
    """Cheap genotype-derived features (the ``zc`` encoding), one row per cell.

    Columns (:func:`cell_feature_names`): the number of live edges of each op (an edge is
    live when it lies on an input -> output path free of 'none'), live edges, live paths,
    the longest live path (edges), the most convolutions on one live path, and the trivial
    score 9 * #conv3x3 + #conv1x1 over live edges (REFERENCES.md: tau 0.58 on NB201 alone;
    it is roughly the cell's conv parameter count).
    """
    dense = _dense(space)
    ops = cell_ops(space, cells)
    none, real = _op_roles(dense)
    paths = _paths(dense.spec.nodes)
    alive_path, live = _liveness(dense, ops)
    counts = np.stack([((ops == i) & live).sum(axis=1) for i in real], axis=1)
    conv = np.array(["conv" in op for op in dense.ops])
    is_conv = conv[ops]
    plen = np.array([len(p) for p in paths])
    longest = np.where(alive_path, plen[None], 0).max(axis=1)
    conv_on = np.stack([is_conv[:, list(p)].sum(axis=1) for p in paths], axis=1)
    longest_conv = np.where(alive_path, conv_on, 0).max(axis=1)
    w = np.array([9.0 if ("conv" in op and "3x3" in op) else 1.0 if ("conv" in op and "1x1" in op) else 0.0
                  for op in dense.ops])
    trivial = (w[ops] * live).sum(axis=1)
    return np.column_stack([counts, live.sum(axis=1), alive_path.sum(axis=1), longest, longest_conv,
                            trivial]).astype(np.float32)


def encode_cells(space: SearchSpace, cells: Cells, kind: str = "path") -> np.ndarray:
    """The encoding ``kind`` (one of :data:`ENCODINGS`, or several joined by '+')."""
    parts = kind.split("+")
    unknown = [p for p in parts if p not in ENCODINGS]
    if unknown:
        raise ValueError(f"unknown encoding {unknown[0]!r} in {kind!r}; known: {', '.join(ENCODINGS)} "
                         f"(join several with '+', e.g. 'path+zc')")
    ops = cell_ops(space, cells)
    return np.concatenate([ENCODINGS.get(p)(space, ops) for p in parts], axis=1)
