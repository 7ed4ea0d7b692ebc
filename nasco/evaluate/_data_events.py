"""Event-camera recordings already on disk (``"tonic:NMNIST:/root"``, ``"tonic:DVSGesture:/root"``),
read and binned into frames with the optional ``tonic`` package (``pip install 'nasco[events]'``);
nothing is downloaded. Their x tensors are ``(N, T, C, H, W)`` and :attr:`DataSplits.timesteps`
is ``T``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from nasco.core import Registry
from nasco.evaluate._data_splits import DatasetError, DataSplits, _stratified, _subsample

__all__ = ["DEFAULT_FRAMES", "EVENT_DATASETS", "EVENT_SETS", "TONIC_REQUIREMENT", "load_tonic"]

TONIC_REQUIREMENT = "tonic==1.7.0"  # the pin of the 'events' extra in pyproject.toml
# Time bins per recording when neither frames= nor "tonic:<name>@T:<root>" says otherwise:
# the default timesteps of the built-in spiking space (darts_snn: timesteps default 4), since
# the data's T must equal the network's timesteps.
DEFAULT_FRAMES = 4


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
# The spec's <name>, lower-cased -> the dataset's layout.
EVENT_SETS: Registry[_EventSet] = Registry("tonic dataset")
EVENT_SETS.register("nmnist", _EventSet("NMNIST", "Train", "Test", "<digit 0-9>/*.bin"))
EVENT_SETS.register("dvsgesture", _EventSet("DVSGesture", "ibmGestureTrain", "ibmGestureTest",
                                            "<userNN_lighting>/<label 0-10>.npy"))
# The names "tonic:<name>:<root>" takes (tonic's dataset classes).
EVENT_DATASETS: tuple[str, ...] = tuple(e.name for e in EVENT_SETS.values())


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
    if name.strip().lower() not in EVENT_SETS:
        raise DatasetError(f"unknown tonic dataset {name.strip()!r} in {spec!r}; supported: "
                           f"{', '.join(EVENT_DATASETS)} (read from disk, never downloaded)")
    es = EVENT_SETS.get(name.strip().lower())
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


def load_tonic(spec: str, fractions: Sequence[float], rng: np.random.Generator, limit: int | None,
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
