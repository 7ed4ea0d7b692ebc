"""Dataset loading for candidate evaluation: small, local, deterministic.

Four sources are supported, none of which ever downloads anything:

* ``"digits"`` - scikit-learn's bundled 8x8 handwritten digits (the default);
* a local image folder laid out as ``root/<class_name>/*.png|jpg``;
* a local CIFAR-10 python-version folder (``cifar-10-batches-py``), which is
  made of pickles and is therefore only read behind ``trust_pickle=True``;
* event-camera recordings already on disk, ``"tonic:NMNIST:/root"`` or
  ``"tonic:DVSGesture:/root"``, read and binned into frames with the optional
  ``tonic`` package (``pip install 'nasco[events]'``); their x tensors are
  ``(N, T, C, H, W)`` and :attr:`DataSplits.timesteps` is ``T``.

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

__all__ = ["DataSplits", "DatasetError", "EVENT_DATASETS", "KNOWN_DATASETS", "load_dataset"]

KNOWN_DATASETS: tuple[str, ...] = ("digits",)
# Event datasets read through tonic (spec "tonic:<name>:<root>"); the layouts are in _EVENT_SETS.
EVENT_DATASETS: tuple[str, ...] = ("NMNIST", "DVSGesture")
TONIC_REQUIREMENT = "tonic==1.7.0"  # the pin of the 'events' extra in pyproject.toml
# Time bins per recording when neither frames= nor "tonic:<name>@T:<root>" says otherwise:
# the default timesteps of the built-in spiking space (darts_snn: timesteps default 4), since
# the data's T must equal the network's timesteps.
DEFAULT_FRAMES = 4
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
    """Normalised train/valid/test tensors (float32 NCHW images, int64 labels).

    Event data (``timesteps`` not None) is float32 ``(N, T, C, H, W)`` instead: T binary
    frames per recording (1 where a pixel had at least one event of that polarity in the
    time bin), not normalised, so ``mean`` and ``std`` stay empty; ``input_shape`` is the
    per-timestep ``(C, H, W)`` with C the polarities.
    """

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
    timesteps: int | None = None  # frames per sample for event data; None for static images

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
    frames: int | None = None,
) -> DataSplits:
    """Load ``spec`` (a known name or a local folder) into seeded splits.

    ``split`` gives the train/valid/test fractions (stratified per class).  For
    CIFAR-10 the test split is the fixed ``test_batch`` and ``split[1]`` is the
    fraction of the training batches held out for validation.  ``limit`` caps
    every split (random seeded subset) for quick runs; ``size`` ((H, W) or a
    side length) resizes image-folder images, which otherwise take the size of
    the first image.

    Event data (``"tonic:NMNIST:/root"``, ``"tonic:DVSGesture:/root"``; see
    :data:`EVENT_DATASETS`) is read from the folder layout tonic extracts its archives to
    and never downloaded: the official test recordings are the test split and ``split[1]``
    of the training recordings is held out for validation, as for CIFAR-10.  Each
    recording becomes ``frames`` (default :data:`DEFAULT_FRAMES`; or ``"tonic:NMNIST@8:..."``)
    equal time bins (tonic's ``ToFrame(n_time_bins=frames)``), binarised; ``size`` scales
    the sensor's pixel grid down.  ``limit`` is applied before any file is read.
    """
    fractions = _check_split(split)
    if limit is not None and (isinstance(limit, bool) or int(limit) != limit or limit < 1):
        raise DatasetError(f"limit={limit!r} is invalid; expected a positive integer or None")
    rng = np.random.default_rng(seed)
    spec = str(spec).strip()

    if spec.lower().startswith("tonic:"):
        return _load_tonic(spec, fractions, rng, limit, size, frames)
    if frames is not None:
        raise DatasetError(f"frames={frames!r} applies to event data only (tonic:<name>:<root>), "
                           f"not to {spec!r}")
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
    event = {n.lower(): n for n in EVENT_DATASETS}.get(spec.lower().replace("-", "").replace("_", ""))
    if event is not None:
        return (f"dataset {spec!r} is event data and nothing is downloaded; pass "
                f"'tonic:{event}:<root>' with the extracted recordings under <root>/{event}/ "
                f"(needs pip install 'nasco[events]')")
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


# --------------------------------------------------------------------------- event data (tonic)


@dataclass(frozen=True)
class _EventSet:
    name: str    # the tonic.datasets class, also the folder tonic keeps the data in under save_to
    train: str   # folder of the training recordings
    test: str    # folder of the test recordings
    layout: str  # what each split folder holds (for messages)


# The on-disk layouts tonic 1.7.0 reads (tonic/datasets/nmnist.py, tonic/datasets/dvsgesture.py):
# * NMNIST: <save_to>/NMNIST/{Train,Test}/<digit>/*.bin, the label being the digit folder; this
#   is what Train.zip / Test.zip of https://www.garrickorchard.com/datasets/n-mnist extract to.
# * DVSGesture: <save_to>/DVSGesture/{ibmGestureTrain,ibmGestureTest}/<userNN_lighting>/<label>.npy,
#   tonic's preprocessed recordings (ibmGestureTrain.tar.gz / ibmGestureTest.tar.gz): one
#   (N, 4) array of x, y, polarity, t [ms] per gesture, the label being the file name.
# tonic's own dataset classes are not instantiated: their constructors download whatever their
# _check_exists() misses (e.g. fewer than 10,000 .bin files), so nasco walks the folders itself
# and only borrows tonic's readers, constants (sensor_size, classes, dtype) and ToFrame.
_EVENT_SETS = {
    "nmnist": _EventSet("NMNIST", "Train", "Test", "<digit 0-9>/*.bin"),
    "dvsgesture": _EventSet("DVSGesture", "ibmGestureTrain", "ibmGestureTest",
                            "<userNN_lighting>/<label 0-10>.npy"),
}
assert tuple(e.name for e in _EVENT_SETS.values()) == EVENT_DATASETS


def _import_tonic(what: str):
    """tonic with the modules used here, or a one-line DatasetError on how to install it."""
    try:
        import tonic
        import tonic.datasets
        import tonic.io
        import tonic.transforms
    except ImportError as exc:
        raise DatasetError(f"{what} needs the optional package tonic ({exc}); install it with "
                           f"pip install 'nasco[events]' (which pins {TONIC_REQUIREMENT})") from None
    return tonic


def _positive_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DatasetError(f"{what}={value!r} is invalid; expected a positive integer number of time bins")
    return int(value)


def _parse_tonic_spec(spec: str, frames: int | None) -> tuple[_EventSet, Path, int]:
    parts = spec.split(":", 2)  # the root keeps any further ':' (e.g. a Windows drive)
    if len(parts) != 3 or not parts[1].strip() or not parts[2].strip():
        raise DatasetError(f"event dataset {spec!r} is invalid; expected 'tonic:<name>[@T]:<root>' with "
                           f"<name> one of {', '.join(EVENT_DATASETS)}, e.g. 'tonic:NMNIST:data/events'")
    name, at, bins = parts[1].strip().partition("@")
    es = _EVENT_SETS.get(name.strip().lower())
    if es is None:
        raise DatasetError(f"unknown tonic dataset {name.strip()!r} in {spec!r}; supported: "
                           f"{', '.join(EVENT_DATASETS)} (read from disk, never downloaded)")
    steps = None
    if at:
        if not bins.strip().isdigit():
            raise DatasetError(f"{spec!r}: '@{bins}' is not a number of time bins; "
                               f"e.g. 'tonic:{es.name}@4:<root>'")
        steps = _positive_int(int(bins), f"'@T' in {spec!r}: T")
    if frames is not None:
        frames = _positive_int(frames, "frames")
        if steps is not None and steps != frames:
            raise DatasetError(f"{spec!r} asks for {steps} time bins but frames={frames}; give one of them")
        steps = frames
    return es, Path(parts[2].strip()).expanduser(), DEFAULT_FRAMES if steps is None else steps


def _event_base(es: _EventSet, root: Path) -> Path:
    """The folder holding the split folders: <root>/<name> (tonic's save_to) or <root> itself."""
    for base in (root / es.name, root):
        if (base / es.train).is_dir() and (base / es.test).is_dir():
            return base
    state = "does not exist" if not root.exists() else "does not hold them"
    raise DatasetError(
        f"tonic:{es.name}: expected {root}/{es.name}/{es.train}/{es.layout} and "
        f"{root}/{es.name}/{es.test}/{es.layout} (or the same without /{es.name}), but {root} {state}; "
        "extract the dataset's archives there yourself (nothing is downloaded)")


def _event_files(es: _EventSet, folder: Path, n_classes: int) -> tuple[list[Path], np.ndarray]:
    files: list[Path] = []
    labels: list[int] = []
    for d in sorted((d for d in folder.iterdir() if d.is_dir()), key=lambda d: d.name):
        if es.name == "NMNIST":
            if not (len(d.name) == 1 and d.name.isdigit()):
                continue  # tonic takes the label from the folder's last character; only 0..9 are digits
            for f in sorted(d.glob("*.bin")):
                files.append(f)
                labels.append(int(d.name))
        else:
            for f in sorted(d.glob("*.npy")):
                if not f.stem.isdigit() or int(f.stem) >= n_classes:
                    raise DatasetError(f"{f}: DVSGesture recordings are named <label>.npy with a label "
                                       f"in 0..{n_classes - 1}; rename or remove the file")
                files.append(f)
                labels.append(int(f.stem))
    if not files:
        raise DatasetError(f"{folder}: no recordings found; expected {folder}/{es.layout}")
    return files, np.asarray(labels, dtype=np.int64)


def _read_events(es: _EventSet, path: Path, tonic) -> np.ndarray:
    """One recording as tonic's structured event array (fields x, y, t [us], p)."""
    if es.name == "NMNIST":
        # 5 bytes per event (x, y, then polarity in bit 23 and a 23-bit timestamp in us), as
        # documented at https://www.garrickorchard.com/datasets/n-mnist; tonic.io.read_mnist_file
        # decodes it (and the timestamp-overflow events with y == 240).
        nbytes = path.stat().st_size
        if nbytes % 5:
            raise DatasetError(f"{path}: {nbytes} bytes is not a whole number of 5-byte N-MNIST events; "
                               "the file is truncated, re-extract it")
        return tonic.io.read_mnist_file(str(path), dtype=tonic.datasets.NMNIST.dtype)
    from numpy.lib import recfunctions

    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read the recording ({exc}); re-extract it") from None
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise DatasetError(f"{path}: expected an (N, 4) array of x, y, p, t events, got shape {arr.shape}")
    arr = arr.astype(np.float64)
    arr[:, 3] *= 1000  # ms -> us, as tonic's DVSGesture.__getitem__ does
    return recfunctions.unstructured_to_structured(arr, tonic.datasets.DVSGesture.dtype)


def _event_frames(events: np.ndarray, sensor: tuple[int, int, int], hw: tuple[int, int],
                  steps: int, to_frame, path: Path) -> np.ndarray:
    """A recording -> (T, P, H, W) bool frames: any event of that polarity at that pixel in
    that time bin (tonic's ToFrame counts them; the counts are clipped to 1)."""
    (sx, sy, p), (h, w) = sensor, hw
    if len(events) == 0:  # tonic's empty-recording frames are (T, P, X, Y); ours are (T, P, H, W)
        return np.zeros((steps, p, h, w), dtype=bool)
    if not np.all(np.diff(events["t"]) >= 0):  # ToFrame bins with searchsorted on t
        events = events[np.argsort(events["t"], kind="stable")]
    if (h, w) != (sy, sx):  # scale the pixel grid down; events that land together merge
        events = events.copy()
        events["x"] = events["x"].astype(np.int64) * w // sx
        events["y"] = events["y"].astype(np.int64) * h // sy
    try:
        frames = np.asarray(to_frame(events))
    except (IndexError, ValueError) as exc:  # a coordinate or polarity outside the sensor
        raise DatasetError(f"{path}: events do not fit the {sx}x{sy}x{p} sensor ({exc}); "
                           "is this the right dataset?") from None
    if frames.shape != (steps, p, h, w):  # pragma: no cover - tonic changed its output
        raise DatasetError(f"{path}: tonic ToFrame returned shape {frames.shape}, "
                           f"expected {(steps, p, h, w)}")
    return frames > 0


def _load_tonic(spec: str, fractions: Sequence[float], rng: np.random.Generator, limit: int | None,
                size: int | tuple[int, int] | None, frames: int | None) -> DataSplits:
    es, root, steps = _parse_tonic_spec(spec, frames)
    base = _event_base(es, root)  # before importing tonic: the folder check needs no extra
    tonic = _import_tonic(f"tonic:{es.name}")
    cls = getattr(tonic.datasets, es.name)
    sx, sy, pol = (int(v) for v in cls.sensor_size)  # tonic's sensor_size is (x, y, polarities)
    names = [str(c) for c in cls.classes]
    if size is None:
        hw = (sy, sx)
    else:
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        if not (1 <= int(h) <= sy and 1 <= int(w) <= sx):
            raise DatasetError(f"size={size!r} is invalid for {es.name}; expected (H, W) within its "
                               f"{sy}x{sx} sensor (event frames can only be scaled down)")
        hw = (int(h), int(w))

    tr_files, tr_y = _event_files(es, base / es.train, len(names))
    te_files, te_y = _event_files(es, base / es.test, len(names))
    train_idx, valid_idx = _stratified(tr_y, (1.0 - fractions[1], fractions[1]), rng, names,
                                       str(base / es.train))
    chosen = {"train": (tr_files, train_idx, tr_y), "valid": (tr_files, valid_idx, tr_y),
              "test": (te_files, np.arange(len(te_y)), te_y)}
    if limit is not None:  # before reading: a quick run reads only the recordings it uses
        chosen = {k: (f, _subsample(i, y[i], int(limit), rng)[0], y) for k, (f, i, y) in chosen.items()}

    to_frame = tonic.transforms.ToFrame(sensor_size=(hw[1], hw[0], pol), n_time_bins=steps)
    xs, ys = {}, {}
    for k, (files, idx, y) in chosen.items():
        x = np.zeros((len(idx), steps, pol, *hw), dtype=np.float32)
        for row, i in enumerate(idx):
            try:
                events = _read_events(es, files[i], tonic)
            except OSError as exc:
                raise DatasetError(f"{files[i]}: cannot read the recording ({exc})") from None
            x[row] = _event_frames(events, (sx, sy, pol), hw, steps, to_frame, files[i])
        xs[k] = torch.from_numpy(x)
        ys[k] = torch.from_numpy(np.ascontiguousarray(y[idx], dtype=np.int64))
    source = (f"tonic {es.name} at {base}, {len(tr_y)} train + {len(te_y)} test recordings, "
              f"{steps} time bins each (tonic ToFrame n_time_bins), binarised, {hw[0]}x{hw[1]}x{pol}")
    if limit is not None:
        source += f", limited to {int(limit)} per split"
    return DataSplits(
        x_train=xs["train"], y_train=ys["train"], x_valid=xs["valid"], y_valid=ys["valid"],
        x_test=xs["test"], y_test=ys["test"], name=es.name, num_classes=len(names),
        input_shape=(pol, *hw), source=source, classes=tuple(names), timesteps=steps)
