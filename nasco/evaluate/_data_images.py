"""Image sources: scikit-learn's bundled digits, a local image folder, and a local CIFAR-10
python-version folder (pickles, read only behind ``trust_pickle=True``). Each loader returns
the seeded splits as raw arrays, the value that scales them to [0, 1], and what they are."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Sequence

import numpy as np

from nasco.evaluate._data_splits import DatasetError, _Part, _split_parts, _stratified

__all__ = ["CIFAR_DIRNAME", "find_cifar_dir", "load_cifar", "load_digits", "load_image_folder"]

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})
CIFAR_DIRNAME = "cifar-10-batches-py"
_CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_TEST = "test_batch"
_CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                  "dog", "frog", "horse", "ship", "truck")


def load_digits(fractions: Sequence[float], rng: np.random.Generator):
    from sklearn.datasets import load_digits  # bundled with sklearn: no download

    bunch = load_digits()
    x = np.asarray(bunch.images, dtype=np.float32)[:, None]  # (N, 1, 8, 8), values 0..16
    y = np.asarray(bunch.target, dtype=np.int64)
    names = [str(c) for c in range(10)]
    parts = _split_parts(x, y, fractions, rng, names, "digits")
    meta = {"name": "digits", "classes": names,
            "source": f"sklearn load_digits, {len(y)} images (8x8 grayscale)"}
    return parts, 16.0, meta


def load_image_folder(root: Path, fractions: Sequence[float], rng: np.random.Generator,
                       size: int | tuple[int, int] | None):
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise DatasetError(f"{root}: reading an image folder needs Pillow; "
                           "install it with 'pip install pillow'") from None

    class_dirs = sorted((d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")),
                        key=lambda d: d.name)
    if not class_dirs:
        raise DatasetError(f"{root}: no class subfolders found; expected root/<class_name>/*.png|jpg")
    if len(class_dirs) < 2:
        raise DatasetError(f"{root}: found only one class folder ({class_dirs[0].name!r}); "
                           "need at least 2 classes to train a classifier")
    files: list[tuple[Path, int]] = []
    for label, d in enumerate(class_dirs):
        imgs = sorted(f for f in d.iterdir() if f.is_file() and f.suffix.lower() in _IMAGE_SUFFIXES)
        if not imgs:
            raise DatasetError(f"{d}: class folder has no .png/.jpg/.jpeg images; "
                               "add images or remove the folder")
        files.extend((f, label) for f in imgs)

    def _open(path: Path):
        try:
            return Image.open(path)
        except (OSError, UnidentifiedImageError) as exc:
            raise DatasetError(f"{path}: cannot read image ({exc}); remove or replace the file") from None

    # One mode for all images: grayscale only if every image is grayscale.
    modes, sizes = [], []
    for f, _ in files:
        with _open(f) as im:  # lazy open: reads the header only
            modes.append(im.mode)
            sizes.append(im.size)  # PIL size is (W, H)
    mode = "L" if all(m in _GRAY_MODES for m in modes) else "RGB"
    if size is None:
        target = sizes[0]
    else:
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        if int(h) < 1 or int(w) < 1:
            raise DatasetError(f"size={size!r} is invalid; expected a positive side or (H, W)")
        target = (int(w), int(h))

    arrays = []
    for f, _ in files:
        try:
            with _open(f) as im:
                im = im.convert(mode)
                if im.size != target:
                    im = im.resize(target, Image.BILINEAR)
                arr = np.asarray(im, dtype=np.uint8)
        except OSError as exc:  # truncated files fail only on decode
            raise DatasetError(f"{f}: cannot decode image ({exc}); remove or replace the file") from None
        arrays.append(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))
    x = np.stack(arrays)
    y = np.asarray([label for _, label in files], dtype=np.int64)
    names = [d.name for d in class_dirs]
    parts = _split_parts(x, y, fractions, rng, names, str(root))
    meta = {"name": root.resolve().name or str(root), "classes": names,
            "source": (f"image folder {root}, {len(y)} images in {len(names)} classes, "
                       f"{target[1]}x{target[0]} {mode}")}
    return parts, 255.0, meta


def find_cifar_dir(path: Path) -> Path | None:
    """Return the folder holding CIFAR-10 batches: ``path`` itself or its child."""
    for cand in (path, path / CIFAR_DIRNAME):
        if (cand / _CIFAR_TRAIN[0]).is_file() or (cand / _CIFAR_TEST).is_file():
            return cand
    return path if path.name == CIFAR_DIRNAME else None


def load_cifar(folder: Path, valid_fraction: float, rng: np.random.Generator, trust_pickle: bool):
    if not trust_pickle:
        raise DatasetError(
            f"{folder}: CIFAR-10 python batches are pickle files, which can run code when "
            "loaded; pass --trust-pickle (trust_pickle=True) if you trust this folder")
    missing = [n for n in (*_CIFAR_TRAIN, _CIFAR_TEST) if not (folder / n).is_file()]
    if missing:
        raise DatasetError(f"{folder}: missing CIFAR-10 batch file(s) {', '.join(missing)}; "
                           "expected data_batch_1..5 and test_batch from cifar-10-python.tar.gz")
    batches = [_read_cifar_batch(folder / n) for n in _CIFAR_TRAIN]
    x_tr = np.concatenate([b[0] for b in batches])
    y_tr = np.concatenate([b[1] for b in batches])
    x_te, y_te = _read_cifar_batch(folder / _CIFAR_TEST)
    names = list(_CIFAR_CLASSES)
    meta_file = folder / "batches.meta"
    if meta_file.is_file():  # optional; same trust as the batches
        meta_obj = _unpickle(meta_file)
        label_names = meta_obj.get(b"label_names", meta_obj.get("label_names"))
        if label_names is not None and len(label_names) == 10:
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in label_names]
    train_idx, valid_idx = _stratified(y_tr, (1.0 - valid_fraction, valid_fraction),
                                       rng, names, str(folder))
    parts = {"train": (x_tr[train_idx], y_tr[train_idx]),
             "valid": (x_tr[valid_idx], y_tr[valid_idx]),
             "test": (x_te, y_te)}
    meta = {"name": "cifar10", "classes": names,
            "source": f"CIFAR-10 python batches at {folder}, {len(y_tr)} train + {len(y_te)} test images"}
    return parts, 255.0, meta


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            obj = pickle.load(fh, encoding="bytes")
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, IndexError) as exc:
        raise DatasetError(f"{path}: cannot unpickle CIFAR-10 batch ({exc}); "
                           "re-extract cifar-10-python.tar.gz") from None
    if not isinstance(obj, dict):
        raise DatasetError(f"{path}: expected a pickled dict with b'data' and b'labels', "
                           f"got {type(obj).__name__}")
    return obj


def _read_cifar_batch(path: Path) -> _Part:
    obj = _unpickle(path)
    data = obj.get(b"data", obj.get("data"))
    labels = obj.get(b"labels", obj.get("labels"))
    if data is None or labels is None:
        raise DatasetError(f"{path}: batch lacks b'data' or b'labels'; expected the CIFAR-10 python format")
    data = np.asarray(data)
    labels = np.asarray(labels, dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise DatasetError(f"{path}: expected uint8 data of shape (N, 3072) and N labels, got "
                           f"{data.dtype} {data.shape} and {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= 10):
        raise DatasetError(f"{path}: labels must be in 0..9 for CIFAR-10, got {labels.min()}..{labels.max()}")
    return data.reshape(-1, 3, 32, 32), labels
