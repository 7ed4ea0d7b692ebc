"""An ensemble of small MLPs (torch), the predictor of BANANAS (White et al., AAAI 2021)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nasco.predictors._base import Standardizer, check_xy

__all__ = ["MLPEnsemble", "train_ensemble"]


def pairwise_rank_loss(pred: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Mean logistic loss over the ordered pairs of a batch: -log sigmoid((p_i - p_j) sign(z_i - z_j))
    (RankNet, Burges et al., ICML 2005; used for NAS predictors by ReNAS, Xu et al., CVPR 2021).
    Pairs of equal targets do not count."""
    dz = z[:, None] - z[None, :]
    dp = pred[:, None] - pred[None, :]
    mask = dz > 0
    if not bool(mask.any()):
        return pred.sum() * 0.0
    return torch.nn.functional.softplus(-dp[mask]).mean()


def train_ensemble(make: "callable", inputs: tuple[torch.Tensor, ...], z: torch.Tensor, *, n_members: int,
                   steps: int, batch_size: int, lr: float, weight_decay: float, seed: int,
                   rank_weight: float = 0.0) -> list[nn.Module]:
    """Train ``n_members`` models from ``make()`` on (inputs, z) with Adam and MSE (plus
    ``rank_weight`` x :func:`pairwise_rank_loss`), each from its own seed and batch order;
    minibatches when there are more points than ``batch_size``."""
    n = len(z)
    members = []
    for m in range(n_members):
        g = torch.Generator().manual_seed(seed * 1000 + m)
        torch.manual_seed(seed * 1000 + m)
        model = make()
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
        model.train()
        for _ in range(steps):
            idx = torch.randperm(n, generator=g)[:batch_size] if n > batch_size else slice(None)
            opt.zero_grad()
            pred = model(*(t[idx] for t in inputs)).squeeze(-1)
            loss = torch.mean((pred - z[idx]) ** 2)
            if rank_weight:
                loss = loss + rank_weight * pairwise_rank_loss(pred, z[idx])
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        members.append(model)
    return members


class MLPEnsemble:
    """``n_members`` MLPs (ReLU, ``hidden`` widths), each trained from its own seed on the
    standardised target; mean and std across members (deep ensembles, Lakshminarayanan et
    al., NeurIPS 2017). ``rank_weight`` > 0 adds a pairwise ranking loss to the squared error
    (:func:`pairwise_rank_loss`), for when the order of the predictions matters more than
    their values (a searcher's ranking). Deterministic for a seed on CPU."""

    def __init__(self, *, hidden: tuple[int, ...] = (64, 64), n_members: int = 3, steps: int = 1000,
                 batch_size: int = 64, lr: float = 3e-3, weight_decay: float = 1e-4, rank_weight: float = 0.0,
                 seed: int = 0) -> None:
        self.hidden = tuple(int(h) for h in hidden)
        self.n_members = int(n_members)
        self.steps = int(steps)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.rank_weight = float(rank_weight)
        self.seed = int(seed)
        self.members: list[nn.Module] = []

    def _make(self, d: int) -> nn.Module:
        layers: list[nn.Module] = []
        for h in self.hidden:
            layers += [nn.Linear(d, h), nn.ReLU()]
            d = h
        layers.append(nn.Linear(d, 1))
        return nn.Sequential(*layers)

    def fit(self, x: np.ndarray, y: np.ndarray) -> "MLPEnsemble":
        x, y = check_xy(x, y, who=type(self).__name__)
        self.scale = Standardizer().fit(y)
        # Feature scaling keeps count features (path counts, the trivial score) on the
        # scale of the one-hot bits.
        self.x_mean = x.mean(axis=0)
        self.x_std = np.where(x.std(axis=0) > 1e-6, x.std(axis=0), 1.0).astype(np.float32)
        xt = torch.from_numpy((x - self.x_mean) / self.x_std)
        zt = torch.from_numpy(self.scale.forward(y).astype(np.float32))
        self.members = train_ensemble(lambda: self._make(x.shape[1]), (xt,), zt, n_members=self.n_members,
                                      steps=self.steps, batch_size=self.batch_size, lr=self.lr,
                                      weight_decay=self.weight_decay, seed=self.seed,
                                      rank_weight=self.rank_weight)
        return self

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, _ = check_xy(x, who=type(self).__name__)
        if not self.members:
            raise RuntimeError("MLPEnsemble.predict before fit")
        xt = torch.from_numpy((x - self.x_mean) / self.x_std)
        with torch.no_grad():
            p = np.stack([m(xt).squeeze(-1).numpy() for m in self.members]).astype(np.float64)
        return self.scale.inverse(p.mean(axis=0), p.std(axis=0))
