"""Gradient-based zero-cost proxies on the real network nasco builds for a dense cell.

* ``synflow`` (Tanaka et al., NeurIPS 2020, "Pruning neural networks without any data by
  iteratively conserving synaptic flow"), as used as a NAS proxy by Abdelfattah et al.,
  ICLR 2021 ("Zero-Cost Proxies for Lightweight NAS"): take ``|theta|`` of every parameter
  and buffer, feed an all-ones input (batch 1), ``R = sum(output)``, score
  ``sum |theta * dR/dtheta|``. In float64, since the score of a conv-heavy NB201 network is
  ~1e50 (beyond float32). BN runs in eval mode on its initial statistics (mean 0, var 1),
  i.e. without batch statistics, as in the reference code. REFERENCES.md: Spearman rho 0.74
  on all of NB201 CIFAR-10.

The network is ``GraphNet(plan_network(arch, {"edges": cell}, (3, 32, 32), 10))``: dead
edges are pruned by the planner, so every cell with the same live edges has the same
network and score; scores are cached per live cell under the user cache dir
(``$NASCO_CACHE/zerocost``, default ``~/.cache/nasco/zerocost``), one TSV line per cell,
appended as they are computed (an interrupted run keeps its work). Weights are initialised
with ``torch.manual_seed(seed)``, so a score is deterministic for a given torch version.
Cost on one CPU thread: 0.11 s per cell on average (0.01-0.5 s, conv-heavy cells slowest);
NB201's 15,625 cells have 9,445 distinct live cells, ~17 min for all of them.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from nasco.core import Registry
from nasco.predictors._encodings import ENCODINGS, Cells, _dense, cell_ops, live_edges
from nasco.space import SearchSpace

__all__ = ["CELL_PROXIES", "synflow", "synflow_encoding", "zero_cost_cache_path", "zero_cost_scores"]

# Bump when a proxy's definition or the network changes: the cache file name carries it.
_VERSION = 1
# The zero-cost proxies (of nasco.evaluate's PROXIES, where each is defined) that
# zero_cost_scores scores per dense cell: name -> fn(space, edges, *, seed, arch). They need no
# data (synflow feeds an all-ones input), so a cell's score depends on the cell alone.
CELL_PROXIES: Registry[Callable[..., float]] = Registry("zero-cost proxy")


def _arch(space: SearchSpace):
    _dense(space)
    # The network's hyperparameters are those of candidate 0 (NB201 has none to choose).
    arch, _ = space.resolve(space.from_index(0))
    return arch


@CELL_PROXIES.register("synflow")
def synflow(space: SearchSpace, edges: Sequence[str], *, seed: int = 0,
            input_shape: tuple[int, int, int] = (3, 32, 32), num_classes: int = 10, arch=None) -> float:
    """The synflow score of the network of the cell with these edge ops (op names).

    One mechanism for every space: :func:`nasco.evaluate._proxies.synflow_score` on the
    network built with ``torch.manual_seed(seed)`` (same values as cache version 1).
    """
    import torch

    from nasco.evaluate._proxies import synflow_score
    from nasco.nn import GraphNet, plan_network

    arch = arch if arch is not None else _arch(space)
    plan = plan_network(arch, {"edges": list(edges)}, input_shape, num_classes)
    torch.manual_seed(seed)
    return synflow_score(GraphNet(plan, arch))


def zero_cost_cache_path(space: SearchSpace, proxy: str = "synflow", *, seed: int = 0) -> Path:
    """The cache file of ``proxy`` scores: $NASCO_CACHE, else $XDG_CACHE_HOME/nasco, else
    ~/.cache/nasco (as the tables' cache), then ``zerocost/<space>_<proxy>_v<version>_seed<seed>.tsv``."""
    root = os.environ.get("NASCO_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = str(Path(xdg) / "nasco") if xdg else str(Path.home() / ".cache" / "nasco")
    return Path(root) / "zerocost" / f"{space.arch_spec.name}_{proxy}_v{_VERSION}_seed{seed}.tsv"


# path -> ((size, mtime_ns), scores): a search asks for the proxy of every pool, so the TSV
# is parsed again only when it changed on disk behind our back (another process appended).
# The dict is shared: zero_cost_scores adds what it computes and then re-stamps it.
_MEMO: dict[Path, tuple[tuple[int, int], dict[str, float]]] = {}


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _load(path: Path) -> dict[str, float]:
    if not path.is_file():
        return {}
    stamp = _stamp(path)
    hit = _MEMO.get(path)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    out: dict[str, float] = {}
    for line in path.read_text().splitlines():
        k, _, v = line.partition("\t")
        if v:
            out[k] = float(v)
    _MEMO[path] = (stamp, out)
    return out


def zero_cost_scores(space: SearchSpace, cells: Cells, proxy: str = "synflow", *, seed: int = 0,
                     cache: bool = True, progress: bool = False) -> np.ndarray:
    """``(N,)`` scores of ``proxy`` for the cells, computed once per live cell and cached.

    The cache key is the cell's live edges ('none' where an edge is dead), comma-joined.
    """
    score = CELL_PROXIES.get(proxy)
    dense = _dense(space)
    ops = cell_ops(space, cells)
    none = dense.ops.index("none") if "none" in dense.ops else None
    pruned = np.where(live_edges(space, ops), ops, none) if none is not None else ops
    names = np.array(dense.ops)
    keys = [",".join(names[row]) for row in pruned]
    path = zero_cost_cache_path(space, proxy, seed=seed)
    known = _load(path) if cache else {}
    todo = list(dict.fromkeys(k for k in keys if k not in known))
    if todo:
        arch = _arch(space)
        if cache:
            path.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        with open(path, "a") if cache else open(os.devnull, "w") as f:
            for i, k in enumerate(todo):
                known[k] = score(space, k.split(","), seed=seed, arch=arch)
                f.write(f"{k}\t{known[k]!r}\n")
                f.flush()
                if progress and (i + 1) % 200 == 0:
                    dt = time.perf_counter() - t0
                    print(f"{proxy}: {i + 1}/{len(todo)} cells, {dt / (i + 1):.3f} s/cell", flush=True)
        if cache:
            _MEMO[path] = (_stamp(path), known)  # what we appended is already in ``known``
    return np.array([known[k] for k in keys], dtype=np.float64)


@ENCODINGS.register("synflow")
def synflow_encoding(space: SearchSpace, cells: Cells) -> np.ndarray:
    """``(N, 1)``: log synflow of each cell's network (computed once per live cell, cached)."""
    s = zero_cost_scores(space, cells, "synflow")
    return np.log(np.maximum(s, 1e-300)).astype(np.float32)[:, None]
