"""Dataset loading for candidate evaluation: small, local, deterministic.

Three sources are supported, none of which ever downloads anything:

* ``"digits"`` - scikit-learn's bundled 8x8 handwritten digits (the default);
* a local image folder laid out as ``root/<class_name>/*.png|jpg``;
* a local CIFAR-10 python-version folder (``cifar-10-batches-py``), which is
  made of pickles and is therefore only read behind ``trust_pickle=True``.

Every split is derived from ``seed`` with a numpy ``Generator`` so the same
seed yields bit-identical tensors in any process.
"""

from __future__ import annotations

import difflib
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

__all__ = ["DataSplits", "DatasetError", "KNOWN_DATASETS", "load_dataset"]

KNOWN_DATASETS: tuple[str, ...] = ("digits",)
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})
_CIFAR_DIRNAME = "cifar-10-batches-py"
_CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_TEST = "test_batch"
_CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                  "dog", "frog", "horse", "ship", "truck")


class DatasetError(ValueError):
    """A user mistake about a dataset; the message is one line with a hint."""


@dataclass(frozen=True, eq=False)  # eq=False: comparing tensors field-wise is ambiguous
class DataSplits:
    """Normalised train/valid/test tensors (float32 NCHW images, int64 labels)."""

    x_train: torch.Tensor = field(repr=False)
    y_train: torch.Tensor = field(repr=False)
    x_valid: torch.Tensor = field(repr=False)
    y_valid: torch.Tensor = field(repr=False)
    x_test: torch.Tensor = field(repr=False)
    y_test: torch.Tensor = field(repr=False)
    name: str
    num_classes: int
    input_shape: tuple[int, int, int]
    source: str
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    classes: tuple[str, ...] = ()

    def sizes(self) -> dict[str, int]:
        """Number of examples per split."""
        return {"train": len(self.y_train), "valid": len(self.y_valid),
                "test": len(self.y_test)}


# A split before conversion: images (N, C, H, W) as uint8 or float, labels int64.
_Part = tuple[np.ndarray, np.ndarray]


def load_dataset(
    spec: str = "digits",
    *,
    seed: int,
    split: Sequence[float] = (0.6, 0.2, 0.2),
    trust_pickle: bool = False,
    limit: int | None = None,
    size: int | tuple[int, int] | None = None,
) -> DataSplits:
    """Load ``spec`` (a known name or a local folder) into seeded splits.

    ``split`` gives the train/valid/test fractions (stratified per class).  For
    CIFAR-10 the test split is the fixed ``test_batch`` and ``split[1]`` is the
    fraction of the training batches held out for validation.  ``limit`` caps
    every split (random seeded subset) for quick runs; ``size`` ((H, W) or a
    side length) resizes image-folder images, which otherwise take the size of
    the first image.
    """
    fractions = _check_split(split)
    if limit is not None and (isinstance(limit, bool) or int(limit) != limit or limit < 1):
        raise DatasetError(f"limit={limit!r} is invalid; expected a positive integer or None")
    rng = np.random.default_rng(seed)
    spec = str(spec).strip()

    if spec.lower() in KNOWN_DATASETS:
        parts, scale, meta = _load_digits(fractions, rng)
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            raise DatasetError(_missing_message(spec))
        if not path.is_dir():
            raise DatasetError(
                f"dataset path {spec!r} is a file; expected a folder "
                f"(root/<class_name>/*.png|jpg or {_CIFAR_DIRNAME})")
        cifar_dir = _find_cifar_dir(path)
        if cifar_dir is not None:
            parts, scale, meta = _load_cifar(cifar_dir, fractions[1], rng, trust_pickle)
        else:
            parts, scale, meta = _load_image_folder(path, fractions, rng, size)

    if limit is not None:
        parts = {k: _subsample(x, y, int(limit), rng) for k, (x, y) in parts.items()}
        meta["source"] += f", limited to {int(limit)} per split"
    return _finalise(parts, scale, meta)


# --------------------------------------------------------------------------- helpers


def _check_split(split: Sequence[float]) -> tuple[float, float, float]:
    try:
        fr = tuple(float(f) for f in split)
    except (TypeError, ValueError):
        raise DatasetError(
            f"split={split!r} is invalid; expected three fractions like (0.6, 0.2, 0.2)") from None
    if len(fr) != 3 or any(not np.isfinite(f) or f <= 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
        raise DatasetError(
            f"split={tuple(split)!r} is invalid; expected three positive train/valid/test "
            "fractions summing to 1, e.g. (0.6, 0.2, 0.2)")
    return fr  # type: ignore[return-value]


def _missing_message(spec: str) -> str:
    """Explain an unknown name or a missing path, suggesting close names."""
    looks_like_path = any(c in spec for c in "/\\") or spec.startswith((".", "~"))
    if looks_like_path:
        return (f"dataset folder {spec!r} does not exist; expected a local image folder "
                f"(root/<class_name>/*.png|jpg) or a {_CIFAR_DIRNAME} folder")
    if spec.lower().replace("-", "").replace("_", "") in {"cifar", "cifar10"}:
        return (f"dataset {spec!r} is not bundled and nothing is downloaded; extract "
                f"cifar-10-python.tar.gz yourself and pass the {_CIFAR_DIRNAME} folder "
                "path together with --trust-pickle")
    close = difflib.get_close_matches(spec.lower(), KNOWN_DATASETS, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    return (f"unknown dataset {spec!r} (not a known name and no such folder); {hint}"
            f"known names: {', '.join(KNOWN_DATASETS)}; or pass the path of a local image "
            f"folder or {_CIFAR_DIRNAME} folder (nothing is downloaded)")


def _allocate(n: int, fractions: Sequence[float]) -> list[int]:
    """Split ``n`` items by ``fractions`` (largest remainder), >=1 per positive fraction."""
    raw = [n * f for f in fractions]
    counts = [int(np.floor(r)) for r in raw]
    order = sorted(range(len(raw)), key=lambda k: (-(raw[k] - counts[k]), k))
    for k in order[: n - sum(counts)]:
        counts[k] += 1
    for k, f in enumerate(fractions):
        if f > 0 and counts[k] == 0:  # steal from the biggest split so every split sees the class
            donor = max(range(len(counts)), key=lambda j: (counts[j], -j))
            counts[donor] -= 1
            counts[k] += 1
    return counts


def _stratified(labels: np.ndarray, fractions: Sequence[float], rng: np.random.Generator,
                names: Sequence[str], where: str) -> list[np.ndarray]:
    """Seeded per-class split of ``labels`` into index arrays, one per fraction."""
    needed = sum(1 for f in fractions if f > 0)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for c in np.unique(labels):  # sorted, so the rng draw order is fixed
        idx = rng.permutation(np.flatnonzero(labels == c))
        if len(idx) < needed:
            raise DatasetError(
                f"{where}: class {names[int(c)]!r} has only {len(idx)} example(s); need at "
                f"least {needed} so that every split contains every class")
        start = 0
        for k, n in enumerate(_allocate(len(idx), fractions)):
            parts[k].append(idx[start:start + n])
            start += n
    return [rng.permutation(np.concatenate(p)) if p else np.zeros(0, np.int64) for p in parts]


def _subsample(x: np.ndarray, y: np.ndarray, limit: int, rng: np.random.Generator) -> _Part:
    if len(y) <= limit:
        return x, y
    keep = np.sort(rng.permutation(len(y))[:limit])
    return x[keep], y[keep]


def _finalise(parts: dict[str, _Part], scale: float, meta: dict) -> DataSplits:
    """Scale to [0,1], normalise per channel with train statistics, build tensors."""
    xs = {k: np.ascontiguousarray(x, dtype=np.float32) / np.float32(scale) for k, (x, _) in parts.items()}
    train = xs["train"].astype(np.float64)  # float64 stats: no drift on large splits
    mean = train.mean(axis=(0, 2, 3))
    std = train.std(axis=(0, 2, 3))
    std = np.where(std < 1e-8, 1.0, std)  # a constant channel must not divide by zero
    m = mean.astype(np.float32)[None, :, None, None]
    s = std.astype(np.float32)[None, :, None, None]
    t = {k: torch.from_numpy(np.ascontiguousarray((x - m) / s, dtype=np.float32)) for k, x in xs.items()}
    y = {k: torch.from_numpy(np.ascontiguousarray(lab, dtype=np.int64)) for k, (_, lab) in parts.items()}
    c, h, w = (int(d) for d in t["train"].shape[1:])
    return DataSplits(
        x_train=t["train"], y_train=y["train"], x_valid=t["valid"], y_valid=y["valid"],
        x_test=t["test"], y_test=y["test"], name=meta["name"],
        num_classes=len(meta["classes"]), input_shape=(c, h, w), source=meta["source"],
        mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in std),
        classes=tuple(meta["classes"]))


def _split_parts(x: np.ndarray, y: np.ndarray, fractions: Sequence[float],
                 rng: np.random.Generator, names: Sequence[str], where: str) -> dict[str, _Part]:
    idx = _stratified(y, fractions, rng, names, where)
    return {k: (x[i], y[i]) for k, i in zip(("train", "valid", "test"), idx)}


# --------------------------------------------------------------------------- sources


def _load_digits(fractions: Sequence[float], rng: np.random.Generator):
    from sklearn.datasets import load_digits  # bundled with sklearn: no download

    bunch = load_digits()
    x = np.asarray(bunch.images, dtype=np.float32)[:, None]  # (N, 1, 8, 8), values 0..16
    y = np.asarray(bunch.target, dtype=np.int64)
    names = [str(c) for c in range(10)]
    parts = _split_parts(x, y, fractions, rng, names, "digits")
    meta = {"name": "digits", "classes": names,
            "source": f"sklearn load_digits, {len(y)} images (8x8 grayscale)"}
    return parts, 16.0, meta


def _load_image_folder(root: Path, fractions: Sequence[float], rng: np.random.Generator,
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


def _find_cifar_dir(path: Path) -> Path | None:
    """Return the folder holding CIFAR-10 batches: ``path`` itself or its child."""
    for cand in (path, path / _CIFAR_DIRNAME):
        if (cand / _CIFAR_TRAIN[0]).is_file() or (cand / _CIFAR_TEST).is_file():
            return cand
    return path if path.name == _CIFAR_DIRNAME else None


def _load_cifar(folder: Path, valid_fraction: float, rng: np.random.Generator, trust_pickle: bool):
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
