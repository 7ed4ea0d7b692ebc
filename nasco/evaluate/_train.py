"""Seeded, deterministic training loop used to score ANN and SNN candidates.

A model is any ``nn.Module`` mapping ``(B, C, H, W)`` images to ``(B, classes)``
logits.  Spiking models may hold spikingjelly neurons (their state is reset
after every batch) and may expose firing rates through :class:`SpikeRateSource`.
On CPU, the same seed, model initialisation and thread count give bit-identical
results in any process.
"""

from __future__ import annotations

import math
import random
import time
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

try:  # only the functional module: spikingjelly.datasets pulls in heavy optional deps
    from spikingjelly.activation_based import functional as _sj_functional
except ImportError:  # pragma: no cover - spikingjelly is a declared dependency
    _sj_functional = None

if TYPE_CHECKING:
    from ._data import DataSplits

__all__ = [
    "RateRecorder", "SpikeRateRecorder", "SpikeRateSource", "TrainConfig", "TrainResult",
    "TrainingDiverged", "epoch_reporter", "evaluate_accuracy", "mean_spike_rate", "reset_states",
    "set_torch_threads", "train_and_evaluate",
]

_OPTIMIZERS = ("sgd", "adam")

# (reporter, validate) called after every training epoch when set; a context variable, so
# it belongs to the thread (or task) that set it. Ray Tune's ASHA and the driver's
# progress read it.
_EPOCH_REPORTER: ContextVar[tuple[Callable[[int, dict[str, float]], None], bool] | None] = ContextVar(
    "nasco_epoch_reporter", default=None)


@contextmanager
def epoch_reporter(fn: Callable[[int, dict[str, float]], None] | None, *,
                   validate: bool = True) -> Iterator[None]:
    """Within the block, :func:`train_and_evaluate` calls ``fn(epoch, metrics)`` after each
    training epoch (epoch counts from 1; metrics: ``epochs``, the planned number,
    ``train_loss`` and, with ``validate``, ``valid_accuracy``, measured only because a
    reporter asks for it). Training itself is unchanged: the extra validation pass runs in
    eval mode and draws no random numbers."""
    token = _EPOCH_REPORTER.set(None if fn is None else (fn, validate))
    try:
        yield
    finally:
        _EPOCH_REPORTER.reset(token)


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite; the candidate counts as failed."""

    def __init__(self, message: str, *, epoch: int, batch: int) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (``amp`` only has an effect on cuda)."""

    epochs: int = 4
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    optimizer: str = "sgd"
    seed: int = 0
    device: str = "cpu"
    max_seconds: float | None = None
    label_smoothing: float = 0.0
    amp: bool = True
    # Firing-rate penalty: the loss adds spike_penalty x the mean firing rate of the model's
    # spiking neurons (see train_and_evaluate); 0 trains on cross-entropy alone.
    spike_penalty: float = 0.0

    def __post_init__(self) -> None:
        # Fail at construction so a bad config never costs a training run.
        if self.epochs < 1:
            raise ValueError(f"epochs={self.epochs} must be >= 1")
        if self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size} must be >= 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr={self.lr} must be a positive finite number")
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(f"optimizer={self.optimizer!r} must be one of {', '.join(_OPTIMIZERS)}")
        if self.weight_decay < 0 or not 0 <= self.momentum < 1:
            raise ValueError("weight_decay must be >= 0 and momentum in [0, 1)")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ValueError(f"max_seconds={self.max_seconds} must be positive or None")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing={self.label_smoothing} must be in [0, 1)")
        if not (self.spike_penalty >= 0 and math.isfinite(self.spike_penalty)):
            raise ValueError(f"spike_penalty={self.spike_penalty} must be a finite number >= 0")


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train_and_evaluate`; ``spike_rates`` is empty for ANNs."""

    valid_accuracy: float
    test_accuracy: float
    train_loss: float
    epochs_run: int
    seconds: float
    spike_rates: dict[str, float]
    params: int
    stopped_early: bool = False  # max_seconds hit before the planned epochs
    epoch_losses: tuple[float, ...] = ()


@runtime_checkable
class RateRecorder(Protocol):
    """A context manager that observes forward passes and reports firing rates."""

    def __enter__(self) -> object: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool | None: ...

    def rates(self) -> dict[str, float]: ...


@runtime_checkable
class SpikeRateSource(Protocol):
    """A model that can record per-layer spike rates during evaluation."""

    def spike_rate_recorder(self) -> RateRecorder: ...


class SpikeRateRecorder:
    """Forward hooks that average module outputs: sum of elements / number of elements.

    Averages cover every batch and timestep seen while the context is active.
    Sums accumulate in float64 (on the output's device, to avoid a host sync per
    call), so long evaluations do not drift.  Modules that never ran are left
    out of :meth:`rates`.
    """

    def __init__(self, model: nn.Module, names_to_modules: Mapping[str, nn.Module]) -> None:
        owned = {id(m) for m in model.modules()}
        for name, module in names_to_modules.items():
            if id(module) not in owned:
                raise ValueError(f"module {name!r} is not a submodule of the given model")
        self._modules = dict(names_to_modules)
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}

    def __enter__(self) -> SpikeRateRecorder:
        if self._handles:
            raise RuntimeError("SpikeRateRecorder is already active")
        self._sums, self._counts = {}, {}  # each activation measures afresh
        for name, module in self._modules.items():
            self._handles.append(module.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs: object, output: object) -> None:
            out = _first_tensor(output)
            if out is None or out.numel() == 0:
                return
            total = out.detach().sum(dtype=torch.float64)
            prev = self._sums.get(name)
            self._sums[name] = total if prev is None else prev + total
            self._counts[name] = self._counts.get(name, 0) + out.numel()
        return hook

    def rates(self) -> dict[str, float]:
        """Mean output per recorded module, as python floats."""
        return {name: float(self._sums[name].item()) / self._counts[name]
                for name in self._modules if self._counts.get(name)}


def mean_spike_rate(rates: Mapping[str, float]) -> float:
    """The mean of ``rates`` (0.0 when empty), exactly rounded whatever the mapping's order
    (math.fsum): a record read back from JSON gives the value its training gave."""
    return math.fsum(rates.values()) / len(rates) if rates else 0.0


def _first_tensor(output: object) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)):
        for item in output:
            if isinstance(item, torch.Tensor):
                return item
    return None


class FiringRatePenalty:
    """Forward hooks on every spikingjelly neuron of a model that keep, with their gradients,
    the firing rate (mean output) of each neuron module in the current forward pass;
    :meth:`take` returns their mean and forgets them. Activity regularisation: penalising it
    lowers the spike rates, and with them the spike-gated work and spike traffic the cost
    model charges, at some cost in accuracy (an L1 penalty on spikes, as in Neil, Pfeiffer and
    Liu, "Learning to be efficient", ACM SAC 2016). A model without spiking neurons has nothing
    to penalise (:meth:`take` gives None)."""

    def __init__(self, model: nn.Module) -> None:
        from spikingjelly.activation_based.neuron import BaseNode

        self._rates: list[torch.Tensor] = []
        self._handles = [m.register_forward_hook(self._hook) for m in model.modules()
                         if isinstance(m, BaseNode)]

    def _hook(self, module: nn.Module, inputs: object, output: object) -> None:
        out = _first_tensor(output)
        if module.training and out is not None and out.numel():  # not the evaluation passes
            self._rates.append(out.float().mean())

    def take(self) -> torch.Tensor | None:
        rates, self._rates = self._rates, []
        return torch.stack(rates).mean() if rates else None

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


def set_torch_threads(n: int = 1) -> None:
    """Set torch's intra-op thread count; a no-op when it already equals ``n``."""
    if n < 1:
        raise ValueError(f"thread count must be >= 1, got {n}")
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def reset_states(model: nn.Module) -> None:
    """Reset stateful (spiking) modules; harmless for ANNs."""
    if _sj_functional is not None:
        _sj_functional.reset_net(model)
        return
    for module in model.modules():  # pragma: no cover - same contract as reset_net
        reset = getattr(module, "reset", None)
        if callable(reset):
            reset()


def _seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every cuda device
    return torch.Generator(device="cpu").manual_seed(seed)


def _amp_context(device: torch.device, enabled: bool):
    """bf16 autocast where supported, else fp16; only ever on cuda."""
    if not (enabled and device.type == "cuda"):
        return nullcontext(), None
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype), dtype


def cosine_factor(step: int, total_steps: int) -> float:
    """The learning rate's factor at ``step`` of ``total_steps``: cosine from 1 to 0 (SGDR
    without restarts, Loshchilov & Hutter, ICLR 2017), 0 after the last step."""
    return 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))


def _batch_slices(n: int, batch_size: int) -> list[slice]:
    """Batch boundaries; a trailing batch of one is dropped (BatchNorm cannot train on it)."""
    slices = [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    if len(slices) > 1 and slices[-1].stop - slices[-1].start == 1:
        slices.pop()
    return slices


@torch.no_grad()
def evaluate_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                      batch_size: int = 256, device: str | torch.device = "cpu",
                      amp: bool = False) -> float:
    """Top-1 accuracy of ``model`` on ``(x, y)`` in eval mode (NaN when empty)."""
    if len(y) == 0:
        return float("nan")
    dev = torch.device(device)
    model.eval()
    reset_states(model)  # no state may leak in from a previous pass
    ctx, _ = _amp_context(dev, amp)
    correct = 0
    for i in range(0, len(y), batch_size):  # eval mode: a batch of one is fine here
        xb = x[i:i + batch_size].to(dev, non_blocking=True)
        with ctx:
            logits = model(xb)
        reset_states(model)
        correct += int((logits.argmax(dim=1).cpu() == y[i:i + batch_size]).sum())
    return correct / len(y)


def _check_device(device: str) -> torch.device:
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device={device!r} is not a valid torch device") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} requested but CUDA is not available; use 'cpu'")
    return dev


def train_and_evaluate(model: nn.Module, data: DataSplits,
                       config: TrainConfig | None = None) -> TrainResult:
    """Train ``model`` on ``data.x_train`` and report valid/test accuracy.

    SGD (or Adam) with a per-step cosine schedule and cross-entropy.  The loop
    raises :class:`TrainingDiverged` on a non-finite loss.  Spike rates come from
    the final VALIDATION pass (not test, so that objectives derived from them
    never touch held-out test data) when the model is a :class:`SpikeRateSource`.
    """
    config = config or TrainConfig()
    start = time.perf_counter()
    device = _check_device(config.device)
    gen = _seed_everything(config.seed)
    model.to(device)
    params = sum(p.numel() for p in model.parameters())
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("model has no trainable parameters")
    opt = _optimizer(trainable, config)
    n = len(data.y_train)
    steps_per_epoch = len(_batch_slices(n, config.batch_size))
    total_steps = max(1, steps_per_epoch * config.epochs)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine_factor(s, total_steps))
    amp_ctx, amp_dtype = _amp_context(device, config.amp)
    # fp16 needs loss scaling; bf16 has float32's range and does not.
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None

    # reset_net caches each net's stateful modules; drop it in case the caller
    # swapped modules after an earlier reset, then clear any probing-forward state.
    invalidate = getattr(_sj_functional, "invalidate_reset_cache", None)
    if invalidate is not None:
        invalidate(model)
    reset_states(model)
    eval_bs = max(config.batch_size, 256)  # eval has no gradients, so bigger batches are cheap
    eval_kw = {"batch_size": eval_bs, "device": device, "amp": config.amp}
    epoch_losses: list[float] = []
    stopped_early = False
    penalty = FiringRatePenalty(model) if config.spike_penalty > 0 else None
    try:
        for epoch in range(config.epochs):
            model.train()
            perm = torch.randperm(n, generator=gen)
            loss_sum, seen = 0.0, 0
            for b, sl in enumerate(_batch_slices(n, config.batch_size)):
                idx = perm[sl]
                xb = data.x_train[idx].to(device, non_blocking=True)
                yb = data.y_train[idx].to(device, non_blocking=True)
                with amp_ctx:
                    logits = model(xb)
                loss = F.cross_entropy(logits.float(), yb, label_smoothing=config.label_smoothing)
                value = float(loss.item())
                if not math.isfinite(value):
                    reset_states(model)
                    raise TrainingDiverged(
                        f"training diverged: loss is {value} at epoch {epoch + 1}/{config.epochs}, "
                        f"batch {b + 1}/{steps_per_epoch}", epoch=epoch + 1, batch=b + 1)
                rate = penalty.take() if penalty is not None else None
                _step(loss if rate is None else loss + config.spike_penalty * rate, opt, scaler)
                sched.step()
                # Reset after backward: the graph still references the pre-reset state.
                reset_states(model)
                loss_sum += value * len(idx)
                seen += len(idx)
            epoch_losses.append(loss_sum / max(seen, 1))
            _report_epoch(model, data, config, epoch, epoch_losses[-1], eval_kw)
            over_time = config.max_seconds is not None and time.perf_counter() - start > config.max_seconds
            if over_time and epoch + 1 < config.epochs:
                stopped_early = True
                break
    finally:
        if penalty is not None:
            penalty.remove()

    valid_acc, spike_rates = _validate(model, data, eval_kw)
    test_acc = evaluate_accuracy(model, data.x_test, data.y_test, **eval_kw)
    return TrainResult(
        valid_accuracy=valid_acc, test_accuracy=test_acc, train_loss=epoch_losses[-1],
        epochs_run=len(epoch_losses), seconds=time.perf_counter() - start,
        spike_rates=spike_rates, params=params, stopped_early=stopped_early,
        epoch_losses=tuple(epoch_losses))


def _optimizer(trainable: list[torch.nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(trainable, lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay)
    return torch.optim.Adam(trainable, lr=config.lr, weight_decay=config.weight_decay)


def _step(loss: torch.Tensor, opt: torch.optim.Optimizer, scaler: Any) -> None:
    """One optimiser step on ``loss`` (through the fp16 loss scaler when there is one)."""
    opt.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        opt.step()


def _report_epoch(model: nn.Module, data: DataSplits, config: TrainConfig, epoch: int, loss: float,
                  eval_kw: dict[str, Any]) -> None:
    """Tell the epoch hook (:func:`epoch_reporter`), if one is set, how epoch ``epoch`` went."""
    hook = _EPOCH_REPORTER.get()
    if hook is None:
        return
    report, validate = hook
    metrics = {"epochs": float(config.epochs), "train_loss": loss}
    if validate:
        metrics["valid_accuracy"] = evaluate_accuracy(model, data.x_valid, data.y_valid, **eval_kw)
    report(epoch + 1, metrics)


def _validate(model: nn.Module, data: DataSplits, eval_kw: dict[str, Any]) -> tuple[float, dict[str, float]]:
    """Validation accuracy, and the spike rates measured on that pass for a spiking model."""
    if isinstance(model, SpikeRateSource) and callable(getattr(model, "spike_rate_recorder", None)):
        recorder = model.spike_rate_recorder()
        with recorder:  # use the returned object: __enter__ need not return it
            valid_acc = evaluate_accuracy(model, data.x_valid, data.y_valid, **eval_kw)
        return valid_acc, {str(k): float(v) for k, v in recorder.rates().items()}
    return evaluate_accuracy(model, data.x_valid, data.y_valid, **eval_kw), {}
