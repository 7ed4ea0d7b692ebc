"""Memoised training in the joint evaluator: the key (hardware out, every training setting
in), one training per architecture whatever its hardware, weights that load back to the same
network, and damaged records trained again with a warning."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nasco.dsl import load_spec
from nasco.evaluate import TrainCostEvaluator, _train
from nasco.evaluate._data import load_dataset
from nasco.evaluate._train import reset_states
from nasco.evaluate._trainings import TrainingStore
from nasco.space import SearchSpace

TINY = {("macro", "cells"): 1, ("macro", "stem", "channels"): 4, ("macro", "reductions"): [],
        ("timesteps",): 2}


def _space(more: dict | None = None) -> SearchSpace:
    return SearchSpace(load_spec("darts_snn", overrides={**TINY, **(more or {})}), load_spec("asic_template"))


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return _space()


@pytest.fixture(scope="module")
def data():
    return load_dataset("digits", seed=0, limit=60)


@pytest.fixture
def trainings(monkeypatch):
    """The models train_and_evaluate trained, in call order."""
    models: list[torch.nn.Module] = []
    real = _train.train_and_evaluate

    def counting(model, data, config=None):
        models.append(model)
        return real(model, data, config)

    monkeypatch.setattr(_train, "train_and_evaluate", counting)
    return models


def _pair(space, seed: int = 0):
    """Two candidates with the same architecture and different accelerator choices."""
    a = space.sample(np.random.default_rng(seed))
    hw = space.sample(np.random.default_rng(5)).hw
    b = space.make(a.arch["cell"], a.arch["hp"], hw)
    assert a.hw != b.hw and a.id != b.id
    return a, b


def _ev(space, data, **kw) -> TrainCostEvaluator:
    return TrainCostEvaluator(space, data, epochs=kw.pop("epochs", 1), lr=kw.pop("lr", 0.1), **kw)


def test_key_ignores_the_hardware_and_changes_with_each_training_setting(space, data):
    a, b = _pair(space)
    base = _ev(space, data)
    (key,) = base.training_keys(a)
    assert base.training_keys(b) == (key,) and len(key) == 64
    other_arch = space.sample(np.random.default_rng(1))
    assert other_arch.arch != a.arch
    variants = {
        "epochs": (_ev(space, data, epochs=2), a),
        "batch size": (_ev(space, data, batch_size=16), a),
        "lr": (_ev(space, data, lr=0.2), a),
        "max seconds": (_ev(space, data, max_seconds=100.0), a),
        "run seed": (_ev(space, data, seed=1), a),
        "data content (split seed)": (_ev(space, load_dataset("digits", seed=1, limit=60)), a),
        "data size": (_ev(space, load_dataset("digits", seed=0, limit=50)), a),
        "architecture": (base, other_arch),
    }
    for setting, value in (("optimizer", "adam"), ("weight_decay", 0.0), ("spike_penalty", 1.0)):
        sp = _space({("training", setting): value})
        variants[setting] = (_ev(sp, data), sp.make(a.arch["cell"], a.arch["hp"], a.hw))
    keys = {name: ev.training_keys(c)[0] for name, (ev, c) in variants.items()}
    same = sorted(name for name, k in keys.items() if k == key)
    assert same == [], same
    assert len(set(keys.values())) == len(keys)
    # The device says where a training runs: a resume on another device reuses the trainings.
    assert TrainCostEvaluator(space, data, epochs=1, lr=0.1, device="meta").training_keys(a) == (key,)


def test_a_zero_spike_penalty_is_left_out_of_the_training_settings(space, data):
    # Trainings without the penalty keep the keys and seeds they had before it existed: the
    # settings that make the key hold no spike_penalty at 0, and hold it otherwise.
    a = space.sample(np.random.default_rng(0))
    for penalty, held in ((0.0, False), (2.5, True)):
        sp = _space({("training", "spike_penalty"): penalty})
        c = sp.make(a.arch["cell"], a.arch["hp"], a.hw)
        arch, geno = sp.resolve(c)[0], {"cell": c.arch["cell"], "hp": c.arch["hp"]}
        _key, inputs, cfg = _ev(sp, data)._training(0, arch, geno)
        assert ("spike_penalty" in inputs["training"]) is held and cfg.spike_penalty == penalty
        if held:
            assert inputs["training"]["spike_penalty"] == penalty


def test_same_architecture_on_other_hardware_trains_once(space, data, trainings):
    a, b = _pair(space)
    ev = _ev(space, data)
    ra, rb = ev.evaluate(a, seed=0), ev.evaluate(b, seed=1)
    assert (ra.status, rb.status) == ("ok", "ok") and len(trainings) == 1
    assert ra.metrics["trained"] is True and rb.metrics["trained"] is False
    assert ra.metrics["training"] == rb.metrics["training"] == ev.training_keys(a)[0]
    # The training's figures are shared; the hardware is costed for each.
    for k in ("valid_accuracy", "test_accuracy", "train_loss", "spike_rates", "params"):
        assert ra.metrics[k] == rb.metrics[k], k
    assert ra.objectives["accuracy"] == rb.objectives["accuracy"]
    assert ra.objectives["area"] != rb.objectives["area"]


def _logits(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    reset_states(model)
    with torch.no_grad():
        out = model(x)
    reset_states(model)
    return out


@pytest.mark.parametrize("where", ["run directory", "memory"])
def test_weights_round_trip_to_bit_identical_logits(space, data, trainings, tmp_path, where):
    a, _ = _pair(space, seed=1)  # an architecture whose trained logits differ between inputs
    ev = _ev(space, data)
    if where == "run directory":
        ev.attach_run_dir(tmp_path, resume=False, seed=0)
    res = ev.evaluate(a, seed=0)
    key = res.metrics["training"]
    (trained,) = trainings
    loaded = ev.load_trained(key)
    assert loaded is not trained and not loaded.training
    x = data.x_valid[:16]
    want = _logits(trained, x)
    assert float(want.std(dim=0).max()) > 0  # the logits depend on the input, so on every layer's weights
    assert torch.equal(_logits(loaded, x), want)
    # A fresh evaluator on the same run directory (a resumed run, another process) too.
    if where == "run directory":
        fresh = _ev(space, data)
        fresh.attach_run_dir(tmp_path, resume=True, seed=0)
        assert torch.equal(_logits(fresh.load_trained(key), x), want)
        files = sorted(p.name for p in (tmp_path / "trainings").iterdir())
        assert files == [f"{key}.json", f"{key}.measures", f"{key}.safetensors"]
        record = json.loads((tmp_path / "trainings" / f"{key}.json").read_text())
        assert record["valid_accuracy"] == res.metrics["valid_accuracy"]
        assert record["inputs"]["data"]["sizes"] == data.sizes()
        assert record["spike_rates"] and record["params"] == res.metrics["params"]


def _damage(path, how: str) -> None:
    weights = path.with_suffix(".safetensors")
    if how == "bad json":
        path.write_text('{"key": ')
    elif how == "missing weights":
        weights.unlink()
    elif how == "truncated weights":
        blob = weights.read_bytes()
        weights.write_bytes(blob[: len(blob) - 8])
    elif how == "other weights":
        blob = bytearray(weights.read_bytes())
        blob[-1] ^= 0xFF
        weights.write_bytes(bytes(blob))


def test_damaged_record_is_trained_again_with_a_warning(space, data, trainings, tmp_path):
    a, b = _pair(space)
    ev = _ev(space, data)
    ev.attach_run_dir(tmp_path, resume=False, seed=0)
    first = ev.evaluate(a, seed=0)
    key = first.metrics["training"]
    path = tmp_path / "trainings" / f"{key}.json"
    for n, how in enumerate(["bad json", "missing weights", "truncated weights", "other weights"], start=2):
        _damage(path, how)
        with pytest.warns(RuntimeWarning, match=r"damaged training record .*training it again"):
            again = ev.evaluate(b, seed=0)
        assert len(trainings) == n, how
        assert again.status == "ok" and again.metrics["trained"] is True
        assert again.objectives["accuracy"] == first.objectives["accuracy"], how  # the same training, redone
        # The record is whole again: the next evaluation reads it back.
        assert ev.evaluate(a, seed=0).metrics["trained"] is False and len(trainings) == n


def test_diverged_training_is_remembered(space, data, monkeypatch, tmp_path):
    calls = []

    def diverging(model, data, config=None):
        calls.append(config)
        raise _train.TrainingDiverged("training diverged: loss is nan at epoch 1/1, batch 1/2",
                                      epoch=1, batch=1)

    monkeypatch.setattr(_train, "train_and_evaluate", diverging)
    a, b = _pair(space)
    ev = _ev(space, data)
    ev.attach_run_dir(tmp_path, resume=False, seed=0)
    first = ev.evaluate(a, seed=0)
    assert first.status == "failed" and first.reason.startswith("TrainingDiverged: training diverged")
    again = ev.evaluate(b, seed=0)
    assert again.status == "failed" and again.reason == first.reason and len(calls) == 1
    assert again.metrics["training"] == first.metrics["training"] == ev.training_keys(a)[0]
    record = TrainingStore(tmp_path / "trainings").get(first.metrics["training"])
    assert record is not None and record.diverged == first.reason


def test_quantized_accuracies_are_kept_with_the_training(space, data, tmp_path, monkeypatch):
    """Each precision the inner loop measured is a file beside the training; an evaluator that
    attaches to the run later (a worker, a resume) reads them instead of measuring, and scores
    as one that measured; a file taken with other settings, or unreadable, is measured again."""
    import nasco.evaluate._quant as quant

    a, b = _pair(space)
    ev = _ev(space, data)
    ev.attach_run_dir(tmp_path, resume=False, seed=0)
    key = ev.evaluate(a, seed=0).metrics["training"]
    folder = tmp_path / "trainings" / f"{key}.measures"
    files = sorted(folder.glob("*.json"))
    assert len(files) == ev.evaluate(a, seed=0).metrics["hw_front"]["precisions"] == 19
    measured = []
    real = quant.quantized_accuracy
    monkeypatch.setattr(quant, "quantized_accuracy", lambda *x, **k: measured.append(1) or real(*x, **k))
    later = _ev(space, data)
    later.attach_run_dir(tmp_path, resume=True, seed=0)
    got = later.evaluate(b, seed=0)
    assert measured == [] and got.metrics["trained"] is False
    fresh = _ev(space, data)
    fresh.attach_run_dir(tmp_path / "fresh", resume=False, seed=0)
    want = fresh.evaluate(b, seed=0)
    assert len(measured) == 19
    assert (got.objectives, got.members) == (want.objectives, want.members)
    stale = json.loads(files[0].read_text())
    stale["settings"]["calibration_batches"] += 1
    files[0].write_text(json.dumps(stale))
    files[1].write_text('{"key": ')
    measured.clear()
    again = _ev(space, data)
    again.attach_run_dir(tmp_path, resume=True, seed=0)
    with pytest.warns(RuntimeWarning, match="unreadable measure"):
        assert again.evaluate(b, seed=0).members == want.members
    assert len(measured) == 2 and json.loads(files[0].read_text())["settings"]["calibration_batches"] == 8
