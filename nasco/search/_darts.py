"""Differentiable architecture search on a nasco supernet: DARTS, DARTS-PT, hardware-aware.

* DARTS (Liu, Simonyan & Yang, ICLR 2019): the training split is halved; network weights w
  descend the loss on one half, architecture weights alpha on the other (bi-level).
  First order uses dL_val/dalpha at the current w; second order unrolls one weight step,
  w' = w - xi * dL_train/dw, and corrects with the finite-difference Hessian-vector product
  of the paper's eq. 8 (epsilon = 0.01 / ||dL_val/dw'||).
* Hardware-aware loss: the alpha step minimises L_val + lambda * sum_m E_alpha[m] / m_0,
  m in the chosen cost metrics, E_alpha from :class:`ExpectedCost` (the cost model on the
  template, with spike rates measured during the epoch for SNNs) and m_0 the expectation
  under uniform weights at the start, so lambda is unit-free.
* DARTS-PT (Wang, Cheng, Chen, Tang & Hsieh, ICLR 2021, "Rethinking Architecture Selection
  in Differentiable NAS"): after the supernet is trained, each edge in a random order
  keeps the op whose removal lowers the supernet's validation accuracy most, then the
  supernet is tuned; for DARTS cells each node then keeps the inputs whose removal hurts
  most.
* Learning-rate schedules for w: cosine (DARTS) or sharpDARTS's cosine power annealing
  (Hundt, Jain & Hager, arXiv 1903.09900): lr = lr_min + (lr_max - lr_min) *
  (p ** c - 1) / (p - 1), c = (1 + cos(pi * t / T)) / 2, p = 10 (their default order).

A search writes a checkpoint after every epoch; a killed search resumes from it.
"""
from __future__ import annotations

import copy
import math
import os
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nasco.dsl import ArchSpace
from nasco.dsl._vocab import OPS, PARAMETER_FREE
from nasco.evaluate._train import TrainingDiverged, _amp_context, _check_device, mean_spike_rate, reset_states
from nasco.nn import SupernetPlan, plan_supernet

__all__ = ["DartsConfig", "DartsFit", "collapse_report", "cosine_power", "fit_darts", "genotype_str"]

SCHEDULES = ("cosine", "cosine_power")


@dataclass(frozen=True)
class DartsConfig:
    """Settings of one differentiable search. Defaults are sized for digits on a CPU;
    DARTS's CIFAR-10 settings are 50 epochs, batch 64, lr 0.025, alpha lr 3e-4."""

    epochs: int = 4
    warmup_epochs: int = 2          # w only, alpha frozen (hardware-independent)
    batch_size: int = 32
    lr: float = 0.05
    lr_min: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 3e-4
    # alpha moves at Adam(3e-4) in DARTS over ~25k steps; a digits search takes ~100, so
    # the default is larger.
    alpha_lr: float = 6e-3
    alpha_weight_decay: float = 1e-3
    order: int = 1
    # Second order: the finite-difference step is fd_epsilon / ||dL_val/dw'|| (DARTS: 0.01).
    # With ReLUs and max-pools the gradient is only piecewise smooth, so steps this large
    # straddle kinks and the product is a noisy estimate; 1e-4 matches autograd's exact
    # hypergradient in tests/search/test_darts.py, at the same cost.
    fd_epsilon: float = 0.01
    schedule: str = "cosine"
    power: float = 10.0
    lam: float = 0.0
    cost: tuple[str, ...] = ("energy",)
    pt: bool = False
    pt_samples: int = 64            # validation images per DARTS-PT perturbation
    pt_tune_steps: int = 2          # weight steps after each DARTS-PT decision
    grad_clip: float = 5.0
    seed: int = 0
    device: str = "cpu"
    amp: bool = True                # bf16/fp16 autocast of the forward passes, on cuda only

    def __post_init__(self) -> None:
        if self.epochs < 1 or not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(f"epochs={self.epochs} must be >= 1 and warmup_epochs={self.warmup_epochs} "
                             f"in 0..epochs-1")
        if self.order not in (1, 2):
            raise ValueError(f"order={self.order} must be 1 (first-order DARTS) or 2 (second-order)")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule={self.schedule!r} must be one of {', '.join(SCHEDULES)}")
        if self.power <= 1:
            raise ValueError(f"power={self.power} must be > 1")
        if self.lam < 0 or not math.isfinite(self.lam):
            raise ValueError(f"lam={self.lam} must be a finite number >= 0")
        bad = [c for c in self.cost if c not in ("energy", "latency")]
        if bad or not self.cost:
            raise ValueError(f"cost={list(self.cost)} must name energy and/or latency")
        if self.pt_samples < 1 or self.pt_tune_steps < 0:
            raise ValueError(f"pt_samples={self.pt_samples} must be >= 1 and pt_tune_steps={self.pt_tune_steps} >= 0")
        if self.batch_size < 2 or self.lr <= 0 or self.alpha_lr <= 0:
            raise ValueError("batch_size must be >= 2 and lr, alpha_lr positive")


@dataclass
class DartsFit:
    """What a search found: the derived cell and how it got there."""

    cell: dict[str, Any]
    weights: dict[str, list[list[float]]]      # final op weights per kind (edges x ops)
    history: list[dict[str, Any]]              # one row per epoch
    collapse: dict[str, Any]
    expected: dict[str, float] = field(default_factory=dict)   # cost of the derived cell (table)
    reference: dict[str, float] = field(default_factory=dict)  # m_0 of the hardware loss
    pt: list[dict[str, Any]] = field(default_factory=list)     # DARTS-PT decisions
    seconds: float = 0.0
    resumed_from: int = 0
    search: Any = field(default=None, repr=False)
    warm: dict[str, Any] | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("search", "warm")}


def cosine_power(t: float, total: float, lr_max: float, lr_min: float, power: float = 10.0) -> float:
    """sharpDARTS's cosine power annealing at step t of total (see the module docstring)."""
    c = 0.5 * (1.0 + math.cos(math.pi * min(t, total) / total))
    return lr_min + (lr_max - lr_min) * (power ** c - 1.0) / (power - 1.0)


def _cosine(t: float, total: float, lr_max: float, lr_min: float) -> float:
    return lr_min + (lr_max - lr_min) * 0.5 * (1.0 + math.cos(math.pi * min(t, total) / total))


_SHORT = {"skip_connect": "skip", "conv_1x1": "c1", "conv_3x3": "c3", "conv_5x5": "c5", "nor_conv_1x1": "c1",
          "nor_conv_3x3": "c3", "sep_conv_3x3": "s3", "sep_conv_5x5": "s5", "dil_conv_3x3": "d3",
          "avg_pool_3x3": "avg", "max_pool_3x3": "max", "none": "none"}


def genotype_str(cell: dict[str, Any]) -> str:
    """A compact one-line form of a cell genotype for progress lines: op@input per edge."""
    if "edges" in cell:
        return " ".join(_SHORT.get(o, o) for o in cell["edges"])
    return " | ".join(f"{kind}: " + ",".join(f"{_SHORT.get(op, op)}@{j}" for op, j in genes)
                      for kind, genes in cell.items())


def collapse_report(cell: dict[str, Any]) -> dict[str, Any]:
    """The share of parameter-free ops (skip, pooling, none) per cell kind, and whether
    the normal cell shows DARTS's collapse toward skip connections: more than a quarter of
    its edges skip (P-DARTS, Chen et al., ICCV 2019, caps skips at 2 of 8 for this reason)
    or more than half are parameter-free (Zela et al., ICLR 2020, "Understanding and
    Robustifying DARTS", tie the failure to such cells)."""
    kinds = {"normal": cell["edges"]} if "edges" in cell else {k: [op for op, _ in v] for k, v in cell.items()}
    out: dict[str, Any] = {}
    for kind, ops in kinds.items():
        n = max(len(ops), 1)
        out[f"{kind}_parameter_free"] = round(sum(o in PARAMETER_FREE for o in ops) / n, 4)
        out[f"{kind}_skip"] = round(sum(OPS[o].kind == "skip" for o in ops) / n, 4)
    out["collapsed"] = bool(out["normal_skip"] > 0.25 or out["normal_parameter_free"] > 0.5)
    return out


# ---------------------------------------------------------------------------- the search
class _Search:
    """One search's state: the supernet, its optimisers, the data halves, the cost table."""

    def __init__(self, arch: ArchSpace, data, hw, config: DartsConfig) -> None:
        from nasco.nn import SuperNet
        from nasco.search._expected_cost import ExpectedCost

        self.c = config
        self.dev = _check_device(config.device)
        # Autocast in bf16 only: it needs no loss scaler (fp16 would, so it is not used here).
        self.amp, dtype = _amp_context(self.dev, config.amp)
        if dtype == torch.float16:
            self.amp = nullcontext()
        self.gen = torch.Generator().manual_seed(config.seed)
        torch.manual_seed(config.seed)
        self.sp: SupernetPlan = plan_supernet(arch, data.input_shape, data.num_classes)
        self.net = SuperNet(self.sp, arch).to(self.dev)
        self.cost = ExpectedCost(self.sp, *hw) if hw is not None else None
        # DARTS's split: half of the training images train w, the other half alpha.
        n = len(data.y_train)
        perm = torch.randperm(n, generator=self.gen)
        half = n // 2
        self.xw, self.yw = data.x_train[perm[:half]], data.y_train[perm[:half]]
        self.xa, self.ya = data.x_train[perm[half:]], data.y_train[perm[half:]]
        self.w_opt = torch.optim.SGD(self.net.weight_parameters(), lr=config.lr, momentum=config.momentum,
                                     weight_decay=config.weight_decay)
        # DARTS: Adam with betas (0.5, 0.999) and weight decay 1e-3 on alpha.
        self.a_opt = torch.optim.Adam(self.net.arch_parameters(), lr=config.alpha_lr, betas=(0.5, 0.999),
                                      weight_decay=config.alpha_weight_decay)
        self.steps = max(1, len(self.yw) // config.batch_size)
        self.total = self.steps * config.epochs
        self.reference: dict[str, float] = {}
        if self.cost is not None:
            self.cost.update(self._probe_rates())
            self._set_reference()

    def _set_reference(self) -> None:
        """m_0: each cost metric's expectation under uniform op weights, at the current rates."""
        with torch.no_grad():
            uniform = {k: torch.full(s, 1.0 / s[1]) for k, s in self.sp.alpha_shapes().items()}
            self.reference = {m: float(self.cost.expected(uniform, m)) for m in self.c.cost}

    # ------------------------------------------------------------------ pieces
    def _lr(self, step: int) -> float:
        c = self.c
        if c.schedule == "cosine_power":
            return cosine_power(step, self.total, c.lr, c.lr_min, c.power)
        return _cosine(step, self.total, c.lr, c.lr_min)

    def _batch(self, x, y, idx):
        return x[idx].to(self.dev, non_blocking=True), y[idx].to(self.dev, non_blocking=True)

    def _ce(self, x, y) -> tuple[torch.Tensor, torch.Tensor]:
        with self.amp:
            logits = self.net(x)
        return F.cross_entropy(logits.float(), y), logits

    def _probe_rates(self) -> dict[str, float]:
        """Input spike rates of one forward pass on an alpha batch (before training)."""
        if not self.sp.plan.spiking:
            return {}
        with torch.no_grad(), self.net.spike_rate_recorder() as rec:
            self.net(self.xa[: self.c.batch_size].to(self.dev))
        reset_states(self.net)
        return rec.rates()

    def _hw_term(self) -> tuple[torch.Tensor | None, dict[str, float]]:
        if self.cost is None:
            return None, {}
        w = self.net.weights()
        exp = {m: self.cost.expected(w, m) for m in self.c.cost}
        term = sum(exp[m] / self.reference[m] for m in self.c.cost)
        return term, {m: float(v.detach()) for m, v in exp.items()}

    def _check(self, value: float, epoch: int, b: int) -> None:
        if not math.isfinite(value):
            reset_states(self.net)
            raise TrainingDiverged(f"supernet training diverged: loss is {value} at epoch {epoch + 1}/"
                                   f"{self.c.epochs}, step {b + 1}/{self.steps}", epoch=epoch + 1, batch=b + 1)

    def _alpha_step(self, xa, ya, xw, yw, lr: float) -> float:
        net, A = self.net, self.net.arch_parameters()
        self.a_opt.zero_grad(set_to_none=True)
        if self.c.order == 1:
            loss, _ = self._ce(xa, ya)
            grads = torch.autograd.grad(loss, A)
            reset_states(net)
        else:
            loss, grads = self._unrolled(xa, ya, xw, yw, lr)
        hw, _ = self._hw_term() if self.c.lam > 0 else (None, {})
        if hw is not None:
            hw_grads = torch.autograd.grad(self.c.lam * hw, A, allow_unused=True)
            grads = [g + (h if h is not None else 0) for g, h in zip(grads, hw_grads)]
        for p, g in zip(A, grads):
            p.grad = g.detach()
        self.a_opt.step()
        return float(loss.detach())

    def _unrolled(self, xa, ya, xw, yw, xi: float):
        """DARTS eq. 7-8: the alpha gradient at the one-step-unrolled weights, minus
        xi times the finite-difference Hessian-vector product."""
        net = self.net
        W, A = net.weight_parameters(), net.arch_parameters()
        saved = [p.detach().clone() for p in W]
        loss_w, _ = self._ce(xw, yw)
        gw = torch.autograd.grad(loss_w, W, allow_unused=True)
        reset_states(net)
        with torch.no_grad():
            for p, g in zip(W, gw):
                p.sub_(xi * ((g if g is not None else 0) + self.c.weight_decay * p))
        loss_a, _ = self._ce(xa, ya)
        g_all = torch.autograd.grad(loss_a, A + W, allow_unused=True)
        reset_states(net)
        dA = [g if g is not None else torch.zeros_like(p) for g, p in zip(g_all[:len(A)], A)]
        dW = [g if g is not None else torch.zeros_like(p) for g, p in zip(g_all[len(A):], W)]
        norm = torch.sqrt(sum((g * g).sum() for g in dW))
        eps = self.c.fd_epsilon / float(norm.clamp_min(1e-12))

        def alpha_grad(sign: float) -> list[torch.Tensor]:
            with torch.no_grad():
                for p, s, g in zip(W, saved, dW):
                    p.copy_(s + sign * eps * g)
            loss, _ = self._ce(xw, yw)
            out = torch.autograd.grad(loss, A, allow_unused=True)
            reset_states(net)
            return [g if g is not None else torch.zeros_like(p) for g, p in zip(out, A)]

        plus, minus = alpha_grad(1.0), alpha_grad(-1.0)
        with torch.no_grad():
            for p, s in zip(W, saved):
                p.copy_(s)
        grads = [d - xi * (gp - gm) / (2 * eps) for d, gp, gm in zip(dA, plus, minus)]
        return loss_a, grads

    def _w_step(self, xw, yw, lr: float) -> tuple[float, int]:
        for g in self.w_opt.param_groups:
            g["lr"] = lr
        loss, logits = self._ce(xw, yw)
        self.w_opt.zero_grad(set_to_none=True)
        loss.backward()
        # alpha's gradients from this loss are not used (bi-level): drop them.
        for p in self.net.arch_parameters():
            p.grad = None
        torch.nn.utils.clip_grad_norm_(self.net.weight_parameters(), self.c.grad_clip)
        self.w_opt.step()
        reset_states(self.net)
        return float(loss.detach()), int((logits.argmax(1) == yw).sum())

    @torch.no_grad()
    def accuracy(self, n: int | None = None) -> tuple[float, float]:
        """(loss, accuracy) of the supernet on the alpha half (its first ``n`` images).

        BN normalises with batch statistics here, as during the search: after the few
        hundred steps of a CPU search the running averages still lag the weights (on digits
        they cost the supernet about half its accuracy), and the batches are large.
        """
        self.net.train()
        x, y = (self.xa, self.ya) if n is None else (self.xa[:n], self.ya[:n])
        loss, correct = 0.0, 0
        for i in range(0, len(y), 256):
            xb, yb = self._batch(x, y, slice(i, i + 256))
            with self.amp:
                logits = self.net(xb)
            reset_states(self.net)
            loss += float(F.cross_entropy(logits.float(), yb, reduction="sum"))
            correct += int((logits.argmax(1) == yb).sum())
        return loss / max(len(y), 1), correct / max(len(y), 1)

    # ------------------------------------------------------------------ an epoch
    def epoch(self, e: int) -> dict[str, Any]:
        t0 = time.perf_counter()
        c = self.c
        self.net.train()
        search = e >= c.warmup_epochs
        perm_w = torch.randperm(len(self.yw), generator=self.gen)
        perm_a = torch.randperm(len(self.ya), generator=self.gen)
        loss_sum, correct, seen, a_loss = 0.0, 0, 0, 0.0
        recorder = self.net.spike_rate_recorder() if self.sp.plan.spiking else None
        with recorder if recorder is not None else nullcontext():
            for b in range(self.steps):
                step = e * self.steps + b
                lr = self._lr(step)
                xw, yw = self._batch(self.xw, self.yw, perm_w[b * c.batch_size:(b + 1) * c.batch_size])
                if search:
                    ia = perm_a[(b * c.batch_size) % len(self.ya):][:c.batch_size]
                    xa, ya = self._batch(self.xa, self.ya, ia)
                    a_loss += self._alpha_step(xa, ya, xw, yw, lr)
                    self._check(a_loss, e, b)
                loss, ok = self._w_step(xw, yw, lr)
                self._check(loss, e, b)
                loss_sum += loss * len(yw)
                correct += ok
                seen += len(yw)
        if recorder is not None and self.cost is not None:
            self.cost.update(recorder.rates())
        v_loss, v_acc = self.accuracy()
        cell = self.net.derive()
        row: dict[str, Any] = {
            "epoch": e + 1, "phase": "search" if search else "warmup", "lr": round(lr, 6),
            "train_loss": loss_sum / max(seen, 1), "train_accuracy": correct / max(seen, 1),
            "alpha_loss": a_loss / self.steps if search else None,
            "search_valid_loss": v_loss, "search_valid_accuracy": v_acc, "cell": cell,
            "seconds": time.perf_counter() - t0,
        }
        if recorder is not None:
            rates = recorder.rates()
            row["mean_spike_rate"] = mean_spike_rate(rates)
        if self.cost is not None:
            with torch.no_grad():
                _, exp = self._hw_term()
            row["expected"] = exp
            row["derived"] = {m: self.cost.of_cell(cell, m) for m in c.cost}
        return row

    # ------------------------------------------------------------------ DARTS-PT
    def _tune(self, steps: int) -> None:
        perm = torch.randperm(len(self.yw), generator=self.gen)
        bs = self.c.batch_size
        for b in range(steps):
            idx = perm[(b * bs) % len(self.yw):][:bs]
            xw, yw = self._batch(self.xw, self.yw, idx)
            self._w_step(xw, yw, self.c.lr_min)

    def perturbation_selection(self) -> list[dict[str, Any]]:
        """DARTS-PT's op then topology selection on the trained supernet."""
        net, c = self.net, self.c
        rng = np.random.default_rng(c.seed)
        decisions: list[dict[str, Any]] = []
        for kind, edges in self.sp.kinds.items():
            mask, fixed = net.mask(kind), net.fixed(kind)
            for e in rng.permutation(len(edges)):
                e = int(e)
                scores = {}
                for o, op in enumerate(self.sp.ops):
                    if mask[e, o] == 0:
                        continue
                    mask[e, o] = 0.0
                    scores[op] = self.accuracy(c.pt_samples)[1]
                    mask[e, o] = 1.0
                # Keep the op whose removal lowers the accuracy most (ties: vocabulary order).
                keep = min(scores, key=lambda op: (scores[op], self.sp.ops.index(op)))
                fixed[e] = self.sp.ops.index(keep)
                decisions.append({"kind": kind, "edge": list(edges[e]), "op": keep,
                                  "accuracy_without": {k: round(v, 4) for k, v in scores.items()}})
                self._tune(c.pt_tune_steps)
            if net.cell_spec.type != "darts":
                continue
            k = net.cell_spec.edges_per_node or 2
            for i in range(net.cell_spec.nodes):
                rows = [e for e, (node, _j) in enumerate(edges) if node == i]
                scores = {}
                for e in rows:
                    saved = mask[e].clone(), int(fixed[e])
                    mask[e] = 0.0
                    fixed[e] = -1
                    scores[e] = self.accuracy(c.pt_samples)[1]
                    mask[e], fixed[e] = saved
                keep = sorted(rows, key=lambda e: (scores[e], e))[:k]
                for e in rows:
                    if e not in keep:
                        mask[e] = 0.0
                        fixed[e] = -1
                decisions.append({"kind": kind, "node": i, "inputs": [edges[e][1] for e in sorted(keep)],
                                  "accuracy_without": {str(edges[e][1]): round(scores[e], 4) for e in rows}})
                self._tune(c.pt_tune_steps)
        return decisions

    # ------------------------------------------------------------------ checkpoints
    def state(self, epoch: int, history: list[dict[str, Any]]) -> dict[str, Any]:
        return {"epoch": epoch, "net": self.net.state_dict(), "w_opt": self.w_opt.state_dict(),
                "a_opt": self.a_opt.state_dict(), "gen": self.gen.get_state(), "torch_rng": torch.get_rng_state(),
                "history": history, "rates": dict(self.cost.rates) if self.cost is not None else {},
                "reference": dict(self.reference)}

    def load(self, state: dict[str, Any], *, same_template: bool = True) -> tuple[int, list[dict[str, Any]]]:
        """Continue from a copy of ``state`` (an optimiser would otherwise keep its tensors and
        change them as it steps, and a warm-up state serves several searches). A warm start
        from another template's search keeps the network, optimisers and spike rates, and
        takes its own hardware reference."""
        state = copy.deepcopy(state)
        self.net.load_state_dict(state["net"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
        self.gen.set_state(state["gen"])
        torch.set_rng_state(state["torch_rng"])
        if self.cost is not None:
            self.cost.update(state["rates"])
            if same_template and state["reference"]:
                self.reference = dict(state["reference"])
            else:
                self._set_reference()
        return int(state["epoch"]), list(state["history"])


# Settings that do not change the epochs a checkpoint holds: a finished search's checkpoint
# serves a DARTS-PT selection with any of them, on any device.
_NOT_IN_KEY = ("device", "amp", "pt", "pt_samples", "pt_tune_steps")


def _config_key(config: DartsConfig, arch: ArchSpace) -> dict[str, Any]:
    return {"config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()
                       if k not in _NOT_IN_KEY}, "space": arch.name}


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Atomically: a killed search leaves the previous checkpoint whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """A checkpoint this module wrote, read with ``weights_only=True`` (tensors and plain
    containers only: nothing in it can run code)."""
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged checkpoint restarts the search
        warnings.warn(f"{path}: cannot read the checkpoint ({type(exc).__name__}: {exc}); the search "
                      f"starts again", RuntimeWarning, stacklevel=2)
        return None


def fit_darts(arch: ArchSpace, data, config: DartsConfig, *, hw=None, checkpoint: str | Path | None = None,
              log: Callable[[str], None] | None = None, warm_start: dict[str, Any] | None = None) -> DartsFit:
    """Search the cell of the resolved space ``arch`` on ``data`` (its training split only).

    ``hw`` is (resolved AcceleratorTemplate, EnergyTable): the hardware term's cost model
    (None: no hardware term and no cost figures).
    ``checkpoint`` is a file written after every epoch and resumed from when it exists
    with the same settings; the state after the warm-up epochs is kept beside it
    (``NAME.warmup.pt``), so a search resumed past its warm-up still returns it as
    ``fit.warm``. ``warm_start`` is a checkpoint state to start from (the
    hardware-independent warm-up shared by several searches).
    """
    t0 = time.perf_counter()
    log = log or (lambda _s: None)
    if config.lam > 0 and hw is None:
        raise ValueError("lam > 0 needs an accelerator template for its cost")
    s = _Search(arch, data, hw, config)
    key = _config_key(config, arch)
    start, history = 0, []
    path = Path(checkpoint) if checkpoint is not None else None
    warm_path = path.with_name(f"{path.stem}.warmup{path.suffix}") if path is not None else None
    state = load_checkpoint(path) if path is not None else None
    if state is not None and state.get("key") != key:
        warnings.warn(f"{path}: the checkpoint was written with other settings; the search starts again",
                      RuntimeWarning, stacklevel=2)
        state = None
    resumed = 0
    warm = None
    if state is not None:
        start, history = s.load(state)
        resumed = start
        log(f"[darts] resumed from {path} after epoch {start}/{config.epochs}")
        if warm_path is not None and 0 < config.warmup_epochs <= start:
            warm = load_checkpoint(warm_path)
            if warm is not None and warm.get("key") != key:
                warm = None
    elif warm_start is not None:
        start, history = s.load(warm_start, same_template=False)
        history = [dict(h, shared=True) for h in history]
        log(f"[darts] starting from the shared warm-up ({start} epoch(s))")
    last_cell = history[-1]["cell"] if history else s.net.derive()
    for e in range(start, config.epochs):
        try:
            row = s.epoch(e)
        except TrainingDiverged as exc:
            # The candidate the search would have proposed, for the record of its failure.
            exc.cell = last_cell
            exc.history = history
            log(f"[darts] {exc}")
            raise
        history.append(row)
        last_cell = row["cell"]
        log(_epoch_line(row, config))
        if path is not None or e + 1 == config.warmup_epochs:
            state = {**s.state(e + 1, history), "key": key}
            if e + 1 == config.warmup_epochs:
                # A copy: the state's tensors and history are the live ones, which the
                # search epochs go on to change.
                warm = copy.deepcopy(state)
                if warm_path is not None:
                    save_checkpoint(warm_path, warm)
            if path is not None:
                save_checkpoint(path, state)
    return _fit_of(s, config, history, resumed, warm, t0, log)


def _fit_of(s: _Search, config: DartsConfig, history: list[dict[str, Any]], resumed: int,
            warm: dict[str, Any] | None, t0: float, log: Callable[[str], None]) -> DartsFit:
    """The searched supernet's outcome: DARTS-PT's selection when asked, the derived cell,
    its collapse report (a warning when collapsed) and its expected cost."""
    pt: list[dict[str, Any]] = []
    if config.pt:
        t_pt = time.perf_counter()
        pt = s.perturbation_selection()
        log(f"[darts] DARTS-PT selection: {len(pt)} decisions in {time.perf_counter() - t_pt:.0f} s")
    cell = s.net.derive()
    report = collapse_report(cell)
    if report["collapsed"]:
        msg = (f"DARTS collapse warning: the derived normal cell has {report['normal_skip']:.0%} skip "
               f"connections and {report['normal_parameter_free']:.0%} parameter-free ops; consider "
               f"DARTS-PT (pt=true), more warm-up epochs or a smaller lam (a skip costs no energy)")
        warnings.warn(msg, RuntimeWarning, stacklevel=2)
        log(f"[darts] {msg}")
    with torch.no_grad():
        w = {k: v.cpu().numpy().round(5).tolist() for k, v in s.net.weights().items()}
    fit = DartsFit(cell=cell, weights=w, history=history, collapse=report, pt=pt, resumed_from=resumed,
                   reference=dict(s.reference), seconds=time.perf_counter() - t0)
    if s.cost is not None:
        fit.expected = {m: s.cost.of_cell(cell, m) for m in config.cost}
    # Not serialised: the trained supernet (for tests and reports) and the state after the
    # warm-up epochs, which other searches of the same settings can start from.
    fit.search = s
    fit.warm = warm
    return fit


def _epoch_line(row: dict[str, Any], config: DartsConfig) -> str:
    parts = [f"[darts] epoch {row['epoch']}/{config.epochs} {row['phase']}",
             f"loss {row['train_loss']:.3f} acc {row['train_accuracy']:.3f}",
             f"search-valid acc {row['search_valid_accuracy']:.3f}", f"lr {row['lr']:.4f}"]
    if "derived" in row:
        d = row["derived"]
        if "energy" in d:
            parts.append(f"derived energy {d['energy'] * 1e6:.2f} uJ")
        if "latency" in d:
            parts.append(f"latency {d['latency'] * 1e3:.3f} ms")
    parts.append(f"{row['seconds']:.0f} s")
    parts.append(genotype_str(row["cell"]))
    return " | ".join(parts)
