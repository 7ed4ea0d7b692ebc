"""Tests for nasco.evaluate._data: digits, image folders, CIFAR-10 batches, errors."""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(1)

from nasco.evaluate._data import DatasetError, DataSplits, load_dataset  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _digest(d: DataSplits) -> str:
    h = hashlib.sha256()
    for t in (d.x_train, d.y_train, d.x_valid, d.y_valid, d.x_test, d.y_test):
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _raw(d: DataSplits, x: torch.Tensor) -> torch.Tensor:
    """Undo the per-channel normalisation."""
    mean = torch.tensor(d.mean, dtype=torch.float32)[None, :, None, None]
    std = torch.tensor(d.std, dtype=torch.float32)[None, :, None, None]
    return x * std + mean


# --------------------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits() -> DataSplits:
    return load_dataset("digits", seed=0)


def test_digits_sizes_shapes_dtypes(digits: DataSplits) -> None:
    sizes = digits.sizes()
    assert sum(sizes.values()) == 1797
    # 60/20/20 per class, so the totals land close to the nominal fractions
    assert 1060 <= sizes["train"] <= 1100 and 340 <= sizes["valid"] <= 380
    assert digits.x_train.shape == (sizes["train"], 1, 8, 8)
    assert digits.x_valid.shape == (sizes["valid"], 1, 8, 8)
    assert digits.x_test.shape == (sizes["test"], 1, 8, 8)
    assert digits.x_train.dtype == torch.float32 and digits.y_train.dtype == torch.int64
    assert digits.num_classes == 10 and digits.input_shape == (1, 8, 8)
    assert digits.name == "digits" and "load_digits" in digits.source


def test_digits_stratified(digits: DataSplits) -> None:
    all_y = torch.cat([digits.y_train, digits.y_valid, digits.y_test])
    for c in range(10):
        total = int((all_y == c).sum())
        n_train = int((digits.y_train == c).sum())
        assert int((digits.y_valid == c).sum()) > 0 and int((digits.y_test == c).sum()) > 0
        assert abs(n_train - 0.6 * total) <= 1


def test_digits_normalised_with_train_statistics(digits: DataSplits) -> None:
    assert abs(float(digits.x_train.mean())) < 1e-5
    assert abs(float(digits.x_train.std()) - 1.0) < 1e-3
    # valid uses the train statistics, so its own mean is not exactly zero
    assert abs(float(digits.x_valid.mean())) > 1e-4
    for x in (digits.x_train, digits.x_valid, digits.x_test):
        raw = _raw(digits, x)
        assert float(raw.min()) > -1e-5 and float(raw.max()) < 1 + 1e-5
    # pixel values are multiples of 1/16 after undoing normalisation
    scaled = _raw(digits, digits.x_test) * 16
    assert torch.allclose(scaled, scaled.round(), atol=1e-4)


def test_digits_same_seed_identical_other_seed_differs(digits: DataSplits) -> None:
    again = load_dataset("digits", seed=0)
    for a, b in ((digits.x_train, again.x_train), (digits.y_test, again.y_test),
                 (digits.x_valid, again.x_valid)):
        assert torch.equal(a, b)
    other = load_dataset("digits", seed=1)
    assert not torch.equal(digits.y_train, other.y_train)
    assert sum(other.sizes().values()) == 1797


def test_digits_identical_across_processes(digits: DataSplits) -> None:
    code = ("import hashlib, torch; torch.set_num_threads(1)\n"
            "from nasco.evaluate._data import load_dataset\n"
            "d = load_dataset('digits', seed=0); h = hashlib.sha256()\n"
            "for t in (d.x_train, d.y_train, d.x_valid, d.y_valid, d.x_test, d.y_test):\n"
            "    h.update(t.numpy().tobytes())\n"
            "print(h.hexdigest())")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO),
           "PYTHONHASHSEED": "123"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True,
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == _digest(digits)


def test_limit_caps_every_split() -> None:
    d = load_dataset("digits", seed=3, limit=50)
    assert d.sizes() == {"train": 50, "valid": 50, "test": 50}
    assert "limited to 50" in d.source


@pytest.mark.parametrize("split", [(0.5, 0.5), (0.6, 0.3, 0.3), (1.0, 0.0, 0.0), (0.8, -0.1, 0.3)])
def test_bad_split_rejected(split: tuple[float, ...]) -> None:
    with pytest.raises(DatasetError, match="split"):
        load_dataset("digits", seed=0, split=split)


def test_unknown_name_suggests_close_match() -> None:
    with pytest.raises(DatasetError) as err:
        load_dataset("digts", seed=0)
    msg = str(err.value)
    assert "'digts'" in msg and "did you mean 'digits'" in msg and "\n" not in msg


def test_cifar_name_explains_no_download() -> None:
    with pytest.raises(DatasetError, match="--trust-pickle"):
        load_dataset("cifar10", seed=0)


# --------------------------------------------------------------------------- image folder

Image = pytest.importorskip("PIL.Image")


def _write_folder(root: Path, classes=("cat", "ant", "bee"), per_class: int = 5,
                  mode: str = "RGB", size=(7, 5)) -> None:
    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
            arr = rng.integers(0, 256, size=shape, dtype=np.uint8)
            arr[0, 0] = 40 * k  # marks the class in a known pixel
            Image.fromarray(arr).save(root / name / f"img{i}.png")


def test_image_folder_loads(tmp_path: Path) -> None:
    _write_folder(tmp_path / "pets")
    d = load_dataset(str(tmp_path / "pets"), seed=0)
    assert d.num_classes == 3 and d.classes == ("ant", "bee", "cat")  # sorted by name
    assert d.sizes() == {"train": 9, "valid": 3, "test": 3}  # 3/1/1 per class
    assert d.x_train.shape == (9, 3, 5, 7) and d.input_shape == (3, 5, 7)
    for y in (d.y_train, d.y_valid, d.y_test):
        assert set(y.tolist()) == {0, 1, 2}
    # the marker pixel ties each example to its label: 'cat' was written with 0, 'ant' with 40
    raw = _raw(d, d.x_train)[:, 0, 0, 0] * 255
    marker = {0: 40.0, 1: 80.0, 2: 0.0}
    for value, label in zip(raw.tolist(), d.y_train.tolist()):
        assert abs(value - marker[label]) < 1e-2
    assert len(d.mean) == 3 and d.name == "pets"


def test_image_folder_grayscale_and_resize(tmp_path: Path) -> None:
    _write_folder(tmp_path / "g", classes=("a", "b"), mode="L", size=(6, 6))
    d = load_dataset(str(tmp_path / "g"), seed=0, size=(4, 3))
    assert d.x_train.shape[1:] == (1, 4, 3) and d.num_classes == 2


def test_image_folder_mixed_sizes_use_first(tmp_path: Path) -> None:
    _write_folder(tmp_path / "m", classes=("a",), size=(8, 4))
    _write_folder(tmp_path / "m2", classes=("b",), size=(3, 3))
    (tmp_path / "m2" / "b").rename(tmp_path / "m" / "b")
    d = load_dataset(str(tmp_path / "m"), seed=0)
    assert d.input_shape == (3, 4, 8)


def test_missing_folder_error_names_path(tmp_path: Path) -> None:
    path = str(tmp_path / "nowhere")
    with pytest.raises(DatasetError) as err:
        load_dataset(path, seed=0)
    assert path in str(err.value) and "does not exist" in str(err.value)


def test_folder_without_class_dirs(tmp_path: Path) -> None:
    (tmp_path / "loose.png").write_bytes(b"")
    with pytest.raises(DatasetError) as err:
        load_dataset(str(tmp_path), seed=0)
    assert str(tmp_path) in str(err.value) and "no class subfolders" in str(err.value)


def test_empty_class_and_bad_image(tmp_path: Path) -> None:
    _write_folder(tmp_path / "d", classes=("a", "b"))
    (tmp_path / "d" / "c").mkdir()
    with pytest.raises(DatasetError, match="no .png"):
        load_dataset(str(tmp_path / "d"), seed=0)
    (tmp_path / "d" / "c" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="broken.png"):
        load_dataset(str(tmp_path / "d"), seed=0)


def test_too_few_images_for_stratified_split(tmp_path: Path) -> None:
    _write_folder(tmp_path / "f", classes=("a", "b"), per_class=2)
    with pytest.raises(DatasetError, match="only 2 example"):
        load_dataset(str(tmp_path / "f"), seed=0)


# --------------------------------------------------------------------------- CIFAR-10


def _write_cifar(folder: Path, per_batch: int = 20, n_test: int = 10) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    written = {}
    for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", n_test)]:
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [(i * 3 + len(written)) % 10 for i in range(n)]
        with open(folder / name, "wb") as fh:
            pickle.dump({b"batch_label": name.encode(), b"data": data, b"labels": labels}, fh)
        written[name] = data
        written[name + "_labels"] = np.asarray(labels)
    return written


def test_cifar_requires_trust_pickle(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar(folder)
    with pytest.raises(DatasetError) as err:
        load_dataset(str(folder), seed=0)
    msg = str(err.value)
    assert "--trust-pickle" in msg and str(folder) in msg and "\n" not in msg


def test_cifar_loads_with_trust(tmp_path: Path) -> None:
    written = _write_cifar(tmp_path / "cifar-10-batches-py")
    # the parent folder is accepted too
    d = load_dataset(str(tmp_path), seed=0, trust_pickle=True)
    assert d.sizes() == {"train": 80, "valid": 20, "test": 10}
    assert d.x_train.shape == (80, 3, 32, 32) and d.x_test.shape == (10, 3, 32, 32)
    assert d.num_classes == 10 and d.name == "cifar10" and d.classes[0] == "airplane"
    assert d.y_test.tolist() == written["test_batch_labels"].tolist()
    # channel-major layout: the first 1024 bytes are the red plane
    expect = torch.from_numpy(written["test_batch"].reshape(-1, 3, 32, 32).astype(np.float32) / 255)
    assert torch.allclose(_raw(d, d.x_test), expect, atol=1e-5)
    assert set(d.y_valid.tolist()) == set(range(10))  # stratified 20% hold-out
    assert load_dataset(str(tmp_path), seed=0, trust_pickle=True, limit=7).sizes() == \
        {"train": 7, "valid": 7, "test": 7}


def test_cifar_missing_batch(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar(folder)
    (folder / "data_batch_4").unlink()
    with pytest.raises(DatasetError, match="data_batch_4"):
        load_dataset(str(folder), seed=0, trust_pickle=True)


def test_named_datasets_come_from_the_registry(monkeypatch):
    """load_dataset finds a name in DATASETS: a loader registered there is taken like digits."""
    import nasco.evaluate._data as data
    from nasco.core import Registry
    from nasco.evaluate._data_splits import _split_parts

    assert data.DATASETS.names() == ["digits"] and data.KNOWN_DATASETS == ("digits",)

    def toy(fractions, rng):
        x = np.arange(12 * 4, dtype=np.float32).reshape(12, 1, 2, 2)
        y = np.repeat(np.arange(2), 6)
        parts = _split_parts(x, y, fractions, rng, ["a", "b"], "toy")
        return parts, 1.0, {"name": "toy", "classes": ["a", "b"], "source": "a toy"}

    reg = Registry("dataset")
    reg.register("toy", toy)
    monkeypatch.setattr(data, "DATASETS", reg)
    d = data.load_dataset("toy", seed=0)
    # 6 per class split 0.6/0.2/0.2: 3.6, 1.2, 1.2 -> 3, 1, 1 and the spare one to train.
    assert d.name == "toy" and d.sizes() == {"train": 8, "valid": 2, "test": 2}
    assert d.input_shape == (1, 2, 2) and d.num_classes == 2
