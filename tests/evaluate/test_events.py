"""Event-camera data: synthetic (N, T, C, H, W) frames through a spiking GraphNet with
``encoding: events`` (no tonic needed), the tonic loader's errors, and, when the optional
tonic package is installed, tiny NMNIST / DVSGesture folders written here and read offline."""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import socket  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from nasco.dsl import SpecError, find_file, load_file, load_spec, parse_overrides  # noqa: E402
from nasco.evaluate import TrainCostEvaluator  # noqa: E402
from nasco.evaluate._data import (  # noqa: E402
    DEFAULT_FRAMES, EVENT_DATASETS, DatasetError, DataSplits, load_dataset,
)
from nasco.nn import GraphNet, plan_network, plan_workload  # noqa: E402
from nasco.space import SearchSpace  # noqa: E402

torch.set_num_threads(1)
pytest.importorskip("spikingjelly.activation_based.neuron")

T = 2
SHAPE = (2, 12, 12)  # two polarities, a small sensor
CLASSES = 3


def _space(encoding: str = "events", timesteps: int = T, hw: bool = False) -> SearchSpace:
    sets = [f"encoding={encoding}", f"timesteps={timesteps}", "macro.stem.channels=8", "macro.cells=3",
            "neuron.v_threshold=0.25"]  # a low threshold so that the random net spikes at all
    arch = load_file(find_file("darts_snn"), overrides=parse_overrides(sets))
    return SearchSpace(arch, load_spec("asic_template")) if hw else SearchSpace(arch)


def _build(space: SearchSpace, seed: int = 0):
    cand = space.sample(np.random.default_rng(seed))
    arch, _hw = space.resolve(cand)
    plan = plan_network(arch, cand.arch["cell"], SHAPE, CLASSES)
    torch.manual_seed(seed)
    return cand, plan, GraphNet(plan, arch)


def _frames(n: int, steps: int = T, p: float = 0.2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((n, steps, *SHAPE), generator=g) < p).float()


# ------------------------------------------------------------------ the DSL and the plan
def test_dsl_accepts_events_and_lists_it_for_bad_encodings():
    arch = load_file(find_file("darts_snn"), overrides=parse_overrides(["encoding=events"]))
    assert arch.encoding == "events"
    with pytest.raises(SpecError, match="events"):
        load_file(find_file("darts_snn"), overrides=parse_overrides(["encoding=dvs"]))


def test_event_input_is_binary_and_time_varying_in_plan_and_workload():
    _cand, plan, net = _build(_space())
    assert plan.binary()["encode"] and not plan.static()["encode"]
    stem = next(layer for layer in plan_workload(plan).layers if layer.name == "stem.conv")
    assert stem.spiking_input and stem.timesteps == T  # the stem runs on spikes at every step
    assert "stem.conv" in net.spike_inputs
    # a directly encoded net keeps its stem static and non-spiking
    _c, plan_d, _n = _build(_space("direct"))
    stem_d = next(layer for layer in plan_workload(plan_d).layers if layer.name == "stem.conv")
    assert not stem_d.spiking_input and stem_d.timesteps == 1


# ------------------------------------------------------------------ GraphNet on frames
def test_graphnet_runs_event_frames_time_major_and_records_rates():
    _cand, _plan, net = _build(_space())
    x = _frames(5)
    seen = []
    handle = net.module_of("stem.conv").register_forward_pre_hook(lambda _m, a: seen.append(a[0].detach()))
    try:
        with net.spike_rate_recorder() as rec:
            out = net.eval()(x)
    finally:
        handle.remove()
    assert out.shape == (5, CLASSES) and torch.isfinite(out).all()
    # [T*B, C, H, W], time-major: rows t*B .. t*B+B-1 are timestep t of every sample
    assert torch.equal(seen[0], x.transpose(0, 1).reshape(T * 5, *SHAPE))
    rates = rec.rates()
    assert set(rates) == set(net.spike_inputs)
    assert rates["stem.conv"] == pytest.approx(float(x.mean()))  # the frames are its spikes
    assert all(0.0 <= r <= 1.0 for r in rates.values())


def test_count_frames_are_clipped_to_spikes():
    _cand, _plan, net = _build(_space())
    x = _frames(3)
    with net.spike_rate_recorder() as rec:
        net.eval()(x * 3.0)  # event counts, not {0, 1}
    assert rec.rates()["stem.conv"] == pytest.approx(float(x.mean()))


def test_graphnet_rejects_mismatched_inputs():
    _cand, _plan, net = _build(_space())
    with pytest.raises(ValueError, match=r"expects input \(B, T=2"):
        net(_frames(2, steps=3))
    with pytest.raises(ValueError, match="expects input"):
        net(torch.rand(2, *SHAPE))  # a static image into an events net
    _c, _p, net_d = _build(_space("direct"))
    with pytest.raises(ValueError, match="needs encoding 'events'"):
        net_d(_frames(2))


# ------------------------------------------------------------------ the evaluator
def _splits(steps: int, n: int = 6) -> DataSplits:
    x = _frames(3 * n, steps=steps, seed=1)
    y = torch.arange(3 * n) % CLASSES
    return DataSplits(x_train=x[:n], y_train=y[:n], x_valid=x[n:2 * n], y_valid=y[n:2 * n],
                      x_test=x[2 * n:], y_test=y[2 * n:], name="synthetic-events", num_classes=CLASSES,
                      input_shape=SHAPE, source="test", timesteps=steps)


def test_evaluator_trains_and_costs_event_data():
    space = _space(hw=True)
    ev = TrainCostEvaluator(space, _splits(T), epochs=1, batch_size=4)
    res = ev.evaluate(space.sample(np.random.default_rng(1)), seed=0)
    assert res.status in ("ok", "infeasible"), res.reason
    assert "stem.conv" in res.metrics["spike_rates"]  # measured, so the cost model uses it
    assert "spike_rate_assumed" not in res.metrics
    assert res.objectives["energy"] > 0


@pytest.mark.parametrize("encoding, steps, data_steps", [("events", 2, 4), ("direct", 2, 2)])
def test_evaluator_requires_events_encoding_and_matching_timesteps(encoding, steps, data_steps):
    space = _space(encoding, steps)
    ev = TrainCostEvaluator(space, _splits(data_steps), objectives=("accuracy",), epochs=1)
    with pytest.raises(ValueError, match="event data needs encoding: events and timesteps equal"):
        ev.evaluate(space.sample(np.random.default_rng(0)), seed=0)


def test_evaluator_rejects_static_images_for_an_events_space():
    space = _space()
    d = _splits(T)
    static = DataSplits(x_train=d.x_train[:, 0], y_train=d.y_train, x_valid=d.x_valid[:, 0],
                        y_valid=d.y_valid, x_test=d.x_test[:, 0], y_test=d.y_test, name="images",
                        num_classes=CLASSES, input_shape=SHAPE, source="test")
    ev = TrainCostEvaluator(space, static, objectives=("accuracy",), epochs=1)
    with pytest.raises(ValueError, match="has no time bins"):
        ev.evaluate(space.sample(np.random.default_rng(0)), seed=0)


# ------------------------------------------------------------------ tiny on-disk datasets
def _nmnist_bytes(events: list[tuple[int, int, int, int]]) -> bytes:
    """(x, y, p, t[us]) events in N-MNIST's 40-bit format (https://www.garrickorchard.com/datasets/
    n-mnist): byte 0 x, byte 1 y, then bit 23 the polarity and bits 22-0 the timestamp."""
    out = bytearray()
    for x, y, p, t in events:
        assert 0 <= t < 2 ** 23
        out += bytes([x, y, (p << 7) | (t >> 16), (t >> 8) & 0xFF, t & 0xFF])
    return bytes(out)


def _nmnist_events(label: int, k: int, steps: int) -> list[tuple[int, int, int, int]]:
    """Bin b (of ``steps`` 1 ms bins) holds one marker at x=b+1, y=label, polarity b % 2 (twice,
    so that the count 2 is clipped); the first and last events fix the recording's span."""
    ev = [(0, 0, 0, 0)]
    for b in range(steps):
        ev += [(b + 1, label, b % 2, b * 1000 + 400 + k)] * 2
    return ev + [(33, 33, 1, steps * 1000)]


def _write_nmnist(root: Path, train: int = 3, test: int = 1, steps: int = DEFAULT_FRAMES) -> Path:
    for split, n in (("Train", train), ("Test", test)):
        for label in range(CLASSES):
            d = root / "NMNIST" / split / str(label)
            d.mkdir(parents=True)
            for k in range(n):
                (d / f"{k:05d}.bin").write_bytes(_nmnist_bytes(_nmnist_events(label, k, steps)))
    return root


def test_spec_errors_are_one_line_and_list_the_supported_names(tmp_path):
    for spec, pattern in [("tonic:CIFAR10DVS:" + str(tmp_path), "supported: NMNIST, DVSGesture"),
                          ("tonic:NMNIST", r"expected 'tonic:<name>\[@T\]:<root>'"),
                          ("tonic:NMNIST@x:" + str(tmp_path), "not a number of time bins"),
                          ("tonic:NMNIST@0:" + str(tmp_path), "positive integer"),
                          ("nmnist", "tonic:NMNIST:<root>")]:
        with pytest.raises(DatasetError, match=pattern) as info:
            load_dataset(spec, seed=0)
        assert "\n" not in str(info.value)
    with pytest.raises(DatasetError, match="asks for 2 time bins but frames=4"):
        load_dataset(f"tonic:NMNIST@2:{tmp_path}", seed=0, frames=4)
    with pytest.raises(DatasetError, match="applies to event data only"):
        load_dataset("digits", seed=0, frames=4)
    assert EVENT_DATASETS == ("NMNIST", "DVSGesture")


@pytest.mark.parametrize("name, expected", [("NMNIST", "NMNIST/Train/<digit 0-9>/*.bin"),
                                            ("DVSGesture", "DVSGesture/ibmGestureTrain/<userNN_lighting>")])
def test_missing_folder_says_what_is_expected(tmp_path, name, expected):
    with pytest.raises(DatasetError, match="nothing is downloaded") as info:
        load_dataset(f"tonic:{name}:{tmp_path / 'absent'}", seed=0)
    msg = str(info.value)
    assert expected in msg and "does not exist" in msg and "\n" not in msg
    (tmp_path / name / "Train").mkdir(parents=True)  # an existing root without both splits
    with pytest.raises(DatasetError, match="does not hold them"):
        load_dataset(f"tonic:{name}:{tmp_path}", seed=0)


def test_missing_tonic_names_the_extra(tmp_path, monkeypatch):
    root = _write_nmnist(tmp_path)
    monkeypatch.setitem(sys.modules, "tonic", None)  # 'import tonic' now raises ImportError
    hint = r"pip install 'nasco\[events\]' \(which pins tonic==1\.7\.0\)"
    with pytest.raises(DatasetError, match=hint) as info:
        load_dataset(f"tonic:NMNIST:{root}", seed=0)
    assert "\n" not in str(info.value)


@pytest.fixture()
def offline(monkeypatch):
    """Any network connection fails the test: nothing may be downloaded."""
    def refuse(*_a, **_k):
        raise AssertionError("the loader tried to open a network connection")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)  # tonic's downloader resolves the host first


def test_tiny_nmnist_folder_loads_offline(tmp_path, offline):
    pytest.importorskip("tonic")
    root = _write_nmnist(tmp_path)
    d = load_dataset(f"tonic:NMNIST:{root}", seed=0)
    assert d.timesteps == DEFAULT_FRAMES and d.input_shape == (2, 34, 34) and d.num_classes == 10
    assert d.sizes() == {"train": 6, "valid": 3, "test": 3}  # 3 per class, 1 of them held out
    for x, y in ((d.x_train, d.y_train), (d.x_valid, d.y_valid), (d.x_test, d.y_test)):
        assert x.dtype == torch.float32 and x.shape[1:] == (DEFAULT_FRAMES, 2, 34, 34)
        assert set(torch.unique(x).tolist()) <= {0.0, 1.0}  # binarised: the doubled markers give 1
        for frames, label in zip(x, y.tolist()):
            for b in range(DEFAULT_FRAMES):  # each marker lands in its bin, polarity and pixel
                assert frames[b, b % 2, label, b + 1] == 1
                assert frames[:, b % 2, label, b + 1].sum() == 1
    assert sorted(d.y_test.tolist()) == [0, 1, 2]
    # the same seed gives the same split; the root may also be the NMNIST folder itself
    again = load_dataset(f"tonic:NMNIST:{root / 'NMNIST'}", seed=0)
    assert torch.equal(d.x_train, again.x_train) and torch.equal(d.y_valid, again.y_valid)
    # fewer bins through the spec, a limit applied before reading, and a smaller grid
    small = load_dataset(f"tonic:NMNIST@2:{root}", seed=1, limit=2, size=17)
    assert small.timesteps == 2 and small.x_train.shape == (2, 2, 2, 17, 17)
    assert small.sizes() == {"train": 2, "valid": 2, "test": 2}


def test_tiny_nmnist_trains_a_matching_space(tmp_path, offline):
    pytest.importorskip("tonic")
    data = load_dataset(f"tonic:NMNIST@2:{_write_nmnist(tmp_path, steps=2)}", seed=0, size=12)
    space = _space()
    res = TrainCostEvaluator(space, data, objectives=("accuracy",), epochs=1, batch_size=4).evaluate(
        space.sample(np.random.default_rng(0)), seed=0)
    assert res.status == "ok" and 0.0 <= res.objectives["accuracy"] <= 1.0


def test_truncated_nmnist_file_is_a_clear_error(tmp_path, offline):
    pytest.importorskip("tonic")
    root = _write_nmnist(tmp_path)
    bad = root / "NMNIST" / "Test" / "1" / "00000.bin"
    bad.write_bytes(bad.read_bytes()[:-2])
    with pytest.raises(DatasetError, match="not a whole number of 5-byte N-MNIST events"):
        load_dataset(f"tonic:NMNIST:{root}", seed=0)


def test_tiny_dvsgesture_folder_loads_offline(tmp_path, offline):
    pytest.importorskip("tonic")
    layout = (("ibmGestureTrain", ("user01_led", "user02_natural")), ("ibmGestureTest", ("user24_led",)))
    for split, users in layout:
        for user in users:
            d = tmp_path / "DVSGesture" / split / user
            d.mkdir(parents=True)
            for label in (0, 5):
                # x, y, p, t [ms] (tonic's preprocessed layout); one event per ms bin at x=label
                ev = np.array([[label, 10 * b, b % 2, b] for b in range(DEFAULT_FRAMES)]
                              + [[0, 0, 0, DEFAULT_FRAMES]], dtype=np.int64)
                np.save(d / f"{label}.npy", ev)
    data = load_dataset(f"tonic:DVSGesture:{tmp_path}", seed=0, size=64)
    assert data.timesteps == DEFAULT_FRAMES and data.input_shape == (2, 64, 64) and data.num_classes == 11
    assert data.sizes() == {"train": 2, "valid": 2, "test": 2}
    for frames, label in zip(data.x_test, data.y_test.tolist()):
        for b in range(DEFAULT_FRAMES):  # 128 -> 64: pixel (x, y) moves to (x // 2, y // 2)
            assert frames[b, b % 2, 5 * b, label // 2] == 1
    (tmp_path / "DVSGesture" / "ibmGestureTest" / "user24_led" / "x.npy").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"named <label>\.npy"):
        load_dataset(f"tonic:DVSGesture:{tmp_path}", seed=0)
