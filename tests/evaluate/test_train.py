"""Tests for nasco.evaluate._train: learning, determinism, divergence, SNN support."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

torch.set_num_threads(1)

from spikingjelly.activation_based import neuron, surrogate  # noqa: E402

from nasco.evaluate._data import DataSplits, load_dataset  # noqa: E402
from nasco.evaluate._train import (  # noqa: E402
    FiringRatePenalty, SpikeRateRecorder, SpikeRateSource, TrainConfig, TrainingDiverged, TrainResult,
    evaluate_accuracy, set_torch_threads, train_and_evaluate,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def digits() -> DataSplits:
    return load_dataset("digits", seed=0)


def make_ann(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


class TinySNN(nn.Module):
    """Linear -> LIF -> Linear, unrolled for ``T`` single-step timesteps."""

    def __init__(self, T: int = 2) -> None:
        super().__init__()
        self.T = T
        self.flat = nn.Flatten()
        self.fc1 = nn.Linear(64, 64)
        self.lif = neuron.LIFNode(surrogate_function=surrogate.ATan(), step_mode="s")
        self.fc2 = nn.Linear(64, 10)
        self.forwards = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # after reset_net the membrane is the float v_reset, never a stale tensor
        assert not isinstance(self.lif.v, torch.Tensor), "neuron state leaked between batches"
        self.forwards += 1
        h = self.fc1(self.flat(x))
        return sum(self.fc2(self.lif(h)) for _ in range(self.T)) / self.T

    def spike_rate_recorder(self) -> SpikeRateRecorder:
        return SpikeRateRecorder(self, {"lif": self.lif})


def _key(r: TrainResult) -> tuple:
    return (r.valid_accuracy, r.test_accuracy, r.train_loss, r.epoch_losses, r.epochs_run, r.params)


def test_ann_learns_digits(digits: DataSplits) -> None:
    r = train_and_evaluate(make_ann(), digits, TrainConfig(epochs=3, seed=0))
    # measured 0.931 valid / 0.933 test with torch 2.13 CPU
    assert r.valid_accuracy > 0.9 and r.test_accuracy > 0.88
    assert r.epochs_run == 3 and not r.stopped_early
    assert r.params == 64 * 64 + 64 + 64 * 10 + 10
    assert r.spike_rates == {}
    assert r.epoch_losses[0] > r.epoch_losses[-1] == r.train_loss
    assert r.seconds > 0


def test_same_seed_is_bit_identical(digits: DataSplits) -> None:
    cfg = TrainConfig(epochs=2, seed=5)
    m1, m2 = make_ann(1), make_ann(1)
    r1, r2 = train_and_evaluate(m1, digits, cfg), train_and_evaluate(m2, digits, cfg)
    assert _key(r1) == _key(r2)
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p1, p2)
    # a different shuffling seed takes a different path
    r3 = train_and_evaluate(make_ann(1), digits, TrainConfig(epochs=2, seed=6))
    assert r3.epoch_losses != r1.epoch_losses


_CHILD = """
import json, torch
torch.set_num_threads(1)
from torch import nn
from nasco.evaluate._data import load_dataset
from nasco.evaluate._train import TrainConfig, train_and_evaluate
torch.manual_seed(0)
m = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
r = train_and_evaluate(m, load_dataset("digits", seed=0), TrainConfig(epochs=2, seed=3))
print(json.dumps([r.valid_accuracy.hex(), r.test_accuracy.hex(), [v.hex() for v in r.epoch_losses]]))
"""


def test_bit_identical_across_processes(digits: DataSplits) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "PYTHONHASHSEED": "7"}
    out = subprocess.run([sys.executable, "-c", _CHILD], cwd=REPO, env=env, check=True,
                         capture_output=True, text=True, timeout=120)
    child = json.loads(out.stdout.strip().splitlines()[-1])
    r = train_and_evaluate(make_ann(0), digits, TrainConfig(epochs=2, seed=3))
    assert child == [r.valid_accuracy.hex(), r.test_accuracy.hex(), [v.hex() for v in r.epoch_losses]]


class NaNModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1)) * float("nan")


def test_nan_output_raises_training_diverged(digits: DataSplits) -> None:
    with pytest.raises(TrainingDiverged, match="epoch 1/2, batch 1/") as err:
        train_and_evaluate(NaNModel(), digits, TrainConfig(epochs=2))
    assert err.value.epoch == 1 and err.value.batch == 1


def test_exploding_lr_raises_training_diverged(digits: DataSplits) -> None:
    with pytest.raises(TrainingDiverged, match="loss is (nan|inf)"):
        train_and_evaluate(make_ann(), digits, TrainConfig(epochs=2, lr=1e6, momentum=0.0))


def test_snn_trains_and_reports_spike_rates(digits: DataSplits) -> None:
    torch.manual_seed(0)
    model = TinySNN(T=2)
    assert isinstance(model, SpikeRateSource) and not isinstance(make_ann(), SpikeRateSource)
    r = train_and_evaluate(model, digits, TrainConfig(epochs=3, optimizer="adam", lr=0.01))
    # measured 0.928 valid / 0.910 test; chance is 0.1
    assert r.valid_accuracy > 0.8 and r.test_accuracy > 0.8
    assert set(r.spike_rates) == {"lif"} and 0.0 < r.spike_rates["lif"] < 1.0
    assert not model.lif._forward_hooks  # recorder hooks were removed
    assert model.forwards > 3 * (1078 // 64)  # the state assertion ran on every batch


def test_spike_rate_recorder_exact_mean() -> None:
    model = nn.Sequential(nn.Identity(), nn.Identity())
    first, unused = model[0], model[1]
    rec = SpikeRateRecorder(model, {"a": first})
    with rec as entered:
        assert entered is rec and len(first._forward_hooks) == 1
        first(torch.ones(2, 2))  # 4 ones
        first(torch.zeros(3, 4))  # 12 zeros
    assert rec.rates() == {"a": 0.25}
    assert not first._forward_hooks
    first(torch.ones(5))  # outside the context: not recorded
    assert rec.rates() == {"a": 0.25}
    with SpikeRateRecorder(model, {"a": first, "never": unused}) as rec2:
        first(torch.tensor([1.0, 0.0]))
    assert rec2.rates() == {"a": 0.5}  # modules that never ran are left out
    with pytest.raises(ValueError, match="not a submodule"):
        SpikeRateRecorder(model, {"x": nn.Identity()})


def test_max_seconds_stops_at_epoch_boundary(digits: DataSplits) -> None:
    r = train_and_evaluate(make_ann(), digits, TrainConfig(epochs=3, max_seconds=1e-6))
    assert r.epochs_run == 1 and r.stopped_early and len(r.epoch_losses) == 1


def test_label_smoothing_and_sgd_vs_adam_change_losses(digits: DataSplits) -> None:
    base = train_and_evaluate(make_ann(), digits, TrainConfig(epochs=1))
    smooth = train_and_evaluate(make_ann(), digits, TrainConfig(epochs=1, label_smoothing=0.2))
    adam = train_and_evaluate(make_ann(), digits, TrainConfig(epochs=1, optimizer="adam", lr=1e-3))
    assert len({base.train_loss, smooth.train_loss, adam.train_loss}) == 3


def test_evaluate_accuracy_counts_every_example(digits: DataSplits) -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    y = digits.y_valid[:257]  # 256 + a trailing single example
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.copy_(torch.arange(10.0))  # always predicts class 9
    acc = evaluate_accuracy(model, digits.x_valid[:257], y, batch_size=256)
    assert acc == float((y == 9).sum()) / 257


def test_firing_rate_penalty_is_the_mean_of_the_neuron_modules_rates() -> None:
    # Two IF neurons (threshold 1, hard reset): one driven at 2.0 fires every step (rate 1),
    # one driven at 0.5 on 2 elements fires at the second step only (0, 1: rate 1/2); the
    # penalty is the mean of the two modules' rates, 3/4, whatever their sizes.
    fire, half = (neuron.IFNode(surrogate_function=surrogate.ATan(), step_mode="m") for _ in range(2))
    model = nn.ModuleDict({"fire": fire, "slow": half})
    penalty = FiringRatePenalty(model)
    x = torch.full((3, 4), 2.0, requires_grad=True)
    fire(x.unsqueeze(0))
    half(torch.full((2, 1, 2), 0.5))
    rate = penalty.take()
    assert rate.item() == 0.75
    rate.backward()  # the surrogate gradient reaches the input
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert penalty.take() is None  # taken: forgotten
    model.eval()
    fire.reset()
    fire(torch.full((1, 2), 2.0).unsqueeze(0))
    assert penalty.take() is None  # evaluation passes are not penalised
    penalty.remove()
    model.train()
    fire.reset()
    fire(torch.full((1, 2), 2.0).unsqueeze(0))
    assert penalty.take() is None and not fire._forward_hooks


def test_spike_penalty_lowers_the_measured_spike_rate(digits: DataSplits) -> None:
    # Same seed, same model, same data: the penalty is the only difference. Measured (TinySNN,
    # 2 epochs): rate 0.333 and accuracy 0.890 without it, 0.242 and 0.876 at 0.2 (at 2.0 the
    # network stops firing: 0.0006, accuracy 0.105).
    def run(penalty: float) -> TrainResult:
        torch.manual_seed(0)
        model = TinySNN(T=2)
        r = train_and_evaluate(model, digits, TrainConfig(epochs=2, optimizer="adam", lr=0.01,
                                                          spike_penalty=penalty))
        assert not model.lif._forward_hooks  # the penalty's hooks were removed
        return r

    plain, penalised = run(0.0), run(0.2)
    assert penalised.spike_rates["lif"] < plain.spike_rates["lif"]


@pytest.mark.parametrize("kwargs", [{"optimizer": "rmsprop"}, {"epochs": 0}, {"lr": -1.0},
                                    {"label_smoothing": 1.0}, {"max_seconds": 0.0},
                                    {"spike_penalty": -0.5}, {"spike_penalty": float("inf")}])
def test_bad_config_rejected(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        TrainConfig(**kwargs)


def test_unavailable_cuda_rejected(digits: DataSplits) -> None:
    if torch.cuda.is_available():
        pytest.skip("cuda is available here")
    with pytest.raises(ValueError, match="CUDA is not available"):
        train_and_evaluate(make_ann(), digits, TrainConfig(device="cuda"))


def test_set_torch_threads_sets_the_count_and_skips_an_equal_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # The suite runs with one thread (conftest), so start from a different count: a
    # set_torch_threads that did nothing would leave it there.
    try:
        torch.set_num_threads(2)
        set_torch_threads(1)
        assert torch.get_num_threads() == 1
        set_torch_threads(3)
        assert torch.get_num_threads() == 3
        # Equal to the current count: torch is not called at all.
        calls: list[int] = []
        real = torch.set_num_threads
        monkeypatch.setattr(torch, "set_num_threads", lambda n: calls.append(n) or real(n))
        set_torch_threads(3)
        assert calls == [] and torch.get_num_threads() == 3
        set_torch_threads(2)
        assert calls == [2] and torch.get_num_threads() == 2
        with pytest.raises(ValueError, match="thread count must be >= 1, got 0"):
            set_torch_threads(0)
    finally:
        monkeypatch.undo()
        torch.set_num_threads(1)


def test_mean_spike_rate_does_not_depend_on_the_order_of_the_rates():
    """A record read back from JSON may list its layers in another order than its training
    did: the mean must be the same number. These values sum to 1.0 exactly (hand-checked), but
    a left-to-right float sum gives 0.0 or 1.0 depending on the order."""
    from nasco.evaluate._train import mean_spike_rate

    ordered = {"a": 1e16, "b": 1.0, "c": -1e16}
    shuffled = {"a": 1e16, "c": -1e16, "b": 1.0}
    assert mean_spike_rate(ordered) == mean_spike_rate(shuffled) == 1.0 / 3
    assert mean_spike_rate({}) == 0.0
