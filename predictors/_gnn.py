"""A graph network on the cell DAG (plain torch): an ensemble of small GINs over the
``adjacency`` encoding (op-on-node DAG), in the spirit of the GCN predictors of
Wen et al. (ECCV 2020) and BRP-NAS (Dudziak et al., NeurIPS 2020)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nasco.predictors._base import Standardizer, check_xy
from nasco.predictors._mlp import train_ensemble

__all__ = ["GraphNetEnsemble", "split_adjacency"]


def split_adjacency(x: np.ndarray, n_nodes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(A, F)`` from rows of the adjacency encoding: ``(N, V, V)`` and ``(N, V, K)``.

    Without ``n_nodes`` the node count is the smallest V for which the feature block is a
    one-hot per node (every encoding row holds V*V adjacency entries, then V one-hot rows).
    """
    n, d = x.shape
    cands = [n_nodes] if n_nodes else [v for v in range(2, int(np.sqrt(d)) + 1) if (d - v * v) % v == 0]
    for v in cands:
        k = (d - v * v) // v
        if k < 1:
            continue
        feats = x[:, v * v:].reshape(n, v, k)
        if n_nodes or np.allclose(feats.sum(axis=2), 1.0):
            return x[:, :v * v].reshape(n, v, v), feats
    raise ValueError(f"cannot read {d} columns as an adjacency encoding (V*V adjacency + V one-hot node "
                     f"rows); encode with nasco.predictors.adjacency_encoding or pass n_nodes")


class _GIN(nn.Module):
    """GIN layers (Xu et al., ICLR 2019) with messages along and against the edges, so a
    node sees both what feeds it and what it feeds; readout: sum over nodes of every layer."""

    def __init__(self, k: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.embed = nn.Linear(k, hidden)
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Linear(3 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
            for _ in range(layers))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden * (layers + 1), hidden), nn.ReLU(),
                                  nn.Linear(hidden, 1))

    def forward(self, adj: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.embed(feats))
        reads = [h.sum(dim=1)]
        at = adj.transpose(1, 2)
        for layer in self.layers:
            h = layer(torch.cat([h, at @ h, adj @ h], dim=-1))
            reads.append(h.sum(dim=1))
        return self.head(torch.cat(reads, dim=-1))


class GraphNetEnsemble:
    """``n_members`` GINs on the adjacency encoding; mean and std across members."""

    def __init__(self, *, hidden: int = 32, layers: int = 3, dropout: float = 0.0, n_members: int = 2,
                 steps: int = 800, batch_size: int = 64, lr: float = 3e-3, weight_decay: float = 1e-4,
                 n_nodes: int | None = None, seed: int = 0) -> None:
        self.hidden = int(hidden)
        self.layers = int(layers)
        self.dropout = float(dropout)
        self.n_members = int(n_members)
        self.steps = int(steps)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.n_nodes = n_nodes
        self.seed = int(seed)
        self.members: list[nn.Module] = []

    def _tensors(self, x: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        a, f = split_adjacency(x, self.n_nodes)
        self.n_nodes = a.shape[1]
        return torch.from_numpy(np.ascontiguousarray(a)), torch.from_numpy(np.ascontiguousarray(f))

    def fit(self, x: np.ndarray, y: np.ndarray) -> "GraphNetEnsemble":
        x, y = check_xy(x, y, who=type(self).__name__)
        self.scale = Standardizer().fit(y)
        a, f = self._tensors(x)
        zt = torch.from_numpy(self.scale.forward(y).astype(np.float32))
        k = f.shape[2]
        self.members = train_ensemble(lambda: _GIN(k, self.hidden, self.layers, self.dropout), (a, f), zt,
                                      n_members=self.n_members, steps=self.steps, batch_size=self.batch_size,
                                      lr=self.lr, weight_decay=self.weight_decay, seed=self.seed)
        return self

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, _ = check_xy(x, who=type(self).__name__)
        if not self.members:
            raise RuntimeError("GraphNetEnsemble.predict before fit")
        a, f = self._tensors(x)
        with torch.no_grad():
            p = np.stack([m(a, f).squeeze(-1).numpy() for m in self.members]).astype(np.float64)
        return self.scale.inverse(p.mean(axis=0), p.std(axis=0))
