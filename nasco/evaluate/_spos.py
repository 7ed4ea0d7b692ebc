"""Single-path one-shot training of a supernet (SPOS: Guo et al., ECCV 2020), resumable.

Every step samples one architecture (``sample(rng) -> (resolved space, cell)``) and trains
only its path (:meth:`nasco.nn.OneShotNet.single_path`) on one batch: the shared trainer's
optimizer, per-step cosine schedule, batches and loss (:mod:`nasco.evaluate._train`), with the
path's gradient clipped to an L2 norm of at most ``grad_clip`` (:data:`GRAD_CLIP` by default). The
sampling generator, the batch order and torch's generator are seeded from the config's seed.

:class:`SupernetCheckpoint` keeps the state after every epoch in a folder: ``epochN.safetensors``
(the supernet's state dict, the optimizer's tensors, torch's generator states) and
``state.json`` (the epochs done, their losses, the optimizer's other state, the sampling
generator's state and the weights file's size and sha256). Both are written atomically, the
weights first, so a present ``state.json`` names a complete file; a resumed training ends
bit-identical to one that was never interrupted (CPU). Never pickle.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from nasco.evaluate._train import (
    _EPOCH_REPORTER,
    TrainConfig,
    TrainingDiverged,
    _batch_slices,
    _check_device,
    _optimizer,
    _seed_everything,
    cosine_factor,
    reset_states,
)
from nasco.evaluate._trainings import _atomic_write

__all__ = ["GRAD_CLIP", "SposResult", "SupernetCheckpoint", "train_supernet"]

CHECKPOINT_FORMAT = 1
# The largest L2 norm of a step's gradient (the value of DARTS's supernet training, Liu et al.,
# ICLR 2019). Paths of different ops feed the shared layers features of very different scales
# (a max-pool's output is not normalised); unclipped, a darts_snn supernet's loss diverges.
GRAD_CLIP = 5.0
_STATE = "state.json"


@dataclass(frozen=True)
class SposResult:
    """How a supernet's training went: the epochs it ran (in every session), each one's mean
    training loss, and the seconds of this session's epochs."""

    epochs: int
    epoch_losses: tuple[float, ...]
    seconds: float


@dataclass
class _Progress:
    """The training state a checkpoint restores besides the tensors."""

    epochs: int
    losses: list[float]
    rng: np.random.Generator
    gen: torch.Generator


class SupernetCheckpoint:
    """A supernet training's state after its last finished epoch, in the folder ``root``
    (see the module docstring); ``inputs`` (JSON) say what the training is, for the reader."""

    def __init__(self, root: str | Path, inputs: dict[str, Any] | None = None) -> None:
        self.root = Path(root)
        self.inputs = dict(inputs or {})

    def save(self, net: torch.nn.Module, opt: torch.optim.Optimizer, p: _Progress) -> None:
        from safetensors.torch import save

        osd = opt.state_dict()
        tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
        other: dict[str, dict[str, Any]] = {}
        for idx, st in osd["state"].items():
            for name, v in st.items():
                if isinstance(v, torch.Tensor):
                    tensors[f"optim.{idx}.{name}"] = v.detach().cpu().contiguous()
                else:
                    other.setdefault(str(idx), {})[name] = v
        tensors["rng.torch"] = torch.get_rng_state()
        tensors["rng.batches"] = p.gen.get_state()
        blob = save(tensors)
        weights = self.root / f"epoch{p.epochs}.safetensors"
        self.root.mkdir(parents=True, exist_ok=True)
        _atomic_write(weights, blob)
        meta = {"format": CHECKPOINT_FORMAT, "epochs": p.epochs, "epoch_losses": p.losses,
                "optimizer": {"param_groups": osd["param_groups"], "state": other},
                "sampling_rng": p.rng.bit_generator.state, "inputs": self.inputs,
                "weights": {"file": weights.name, "bytes": len(blob),
                            "sha256": hashlib.sha256(blob).hexdigest()}}
        _atomic_write(self.root / _STATE, (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode())
        for old in self.root.glob("epoch*.safetensors"):
            if old.name != weights.name:
                old.unlink(missing_ok=True)

    def _read(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]] | None:
        """(state.json, the tensors it names); None when there is no checkpoint, or (with a
        RuntimeWarning) when it cannot be read back."""
        from safetensors.torch import load

        path = self.root / _STATE
        if not path.exists():
            return None
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
            info = meta["weights"]
            blob = (self.root / str(info["file"])).read_bytes()
            if len(blob) != info["bytes"] or hashlib.sha256(blob).hexdigest() != info["sha256"]:
                raise ValueError(f"{info['file']} is not the file state.json names")
            if meta.get("format") != CHECKPOINT_FORMAT:
                raise ValueError(f"format {meta.get('format')!r}, expected {CHECKPOINT_FORMAT}")
            return meta, load(blob)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            warnings.warn(f"{path}: unreadable supernet checkpoint ({exc}); training from the start",
                          RuntimeWarning, stacklevel=3)
            return None

    def load(self, net: torch.nn.Module, opt: torch.optim.Optimizer, p: _Progress) -> None:
        """Restore ``net``, ``opt`` and ``p`` to the checkpoint, when there is a readable one."""
        read = self._read()
        if read is None:
            return
        meta, tensors = read
        net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        state: dict[int, dict[str, Any]] = {}
        for k, v in tensors.items():
            if k.startswith("optim."):
                _, idx, name = k.split(".", 2)
                state.setdefault(int(idx), {})[name] = v
        for idx, st in meta["optimizer"]["state"].items():
            state.setdefault(int(idx), {}).update(st)
        opt.load_state_dict({"state": state, "param_groups": meta["optimizer"]["param_groups"]})
        torch.set_rng_state(tensors["rng.torch"])
        p.gen.set_state(tensors["rng.batches"])
        p.rng.bit_generator.state = meta["sampling_rng"]
        p.epochs, p.losses = int(meta["epochs"]), [float(v) for v in meta["epoch_losses"]]


def train_supernet(net: Any, sample: Callable[[np.random.Generator], tuple[Any, dict[str, Any]]], data: Any,
                   config: TrainConfig, *, checkpoint: SupernetCheckpoint | None = None,
                   grad_clip: float | None = GRAD_CLIP) -> SposResult:
    """Train ``net`` (a :class:`nasco.nn.OneShotNet`) for ``config.epochs`` epochs of SPOS on
    ``data.x_train``; one architecture ``sample(rng)`` per step. With ``checkpoint`` the
    state is saved after every epoch and a training that has one continues from it (a
    finished one returns at once). Each step's gradient (the sampled path's parameters) is
    scaled to an L2 norm of at most ``grad_clip`` (None: not clipped). After each epoch the
    :func:`~nasco.evaluate.epoch_reporter` hook, when set, gets the epoch and
    ``{"epochs", "train_loss"}``. Raises :class:`~nasco.evaluate.TrainingDiverged` on a
    non-finite loss."""
    if grad_clip is not None and not grad_clip > 0:
        raise ValueError(f"grad_clip={grad_clip} must be positive or None")
    start = time.perf_counter()
    device = _check_device(config.device)
    p = _Progress(0, [], np.random.default_rng(config.seed), _seed_everything(config.seed))
    net.to(device)
    opt = _optimizer(net.weight_parameters(), config)
    if checkpoint is not None:
        checkpoint.load(net, opt, p)
    n = len(data.y_train)
    slices = _batch_slices(n, config.batch_size)
    total = max(1, len(slices) * config.epochs)
    for epoch in range(p.epochs, config.epochs):
        net.train()
        perm = torch.randperm(n, generator=p.gen)
        loss_sum, seen = 0.0, 0
        for b, sl in enumerate(slices):
            for group in opt.param_groups:
                group["lr"] = config.lr * cosine_factor(epoch * len(slices) + b, total)
            arch, cell = sample(p.rng)
            path = net.single_path(arch, cell).to(device).train()
            idx = perm[sl]
            loss = F.cross_entropy(path(data.x_train[idx].to(device)), data.y_train[idx].to(device),
                                   label_smoothing=config.label_smoothing)
            value = float(loss.item())
            if not math.isfinite(value):
                reset_states(path)
                raise TrainingDiverged(f"supernet training diverged: loss is {value} at epoch {epoch + 1}/"
                                       f"{config.epochs}, batch {b + 1}/{len(slices)}",
                                       epoch=epoch + 1, batch=b + 1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip is not None:
                # Parameters off the path have no gradient: clip_grad_norm_ leaves them out.
                torch.nn.utils.clip_grad_norm_(net.weight_parameters(), grad_clip)
            opt.step()
            reset_states(path)  # after backward: the graph still references the state
            loss_sum += value * len(idx)
            seen += len(idx)
        p.epochs += 1
        p.losses.append(loss_sum / max(seen, 1))
        if checkpoint is not None:
            checkpoint.save(net, opt, p)
        hook = _EPOCH_REPORTER.get()
        if hook is not None:
            hook[0](p.epochs, {"epochs": float(config.epochs), "train_loss": p.losses[-1]})
    return SposResult(p.epochs, tuple(p.losses), time.perf_counter() - start)
