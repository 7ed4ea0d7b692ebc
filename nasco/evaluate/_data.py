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

Named datasets are looked up in :data:`DATASETS`; the sources live in
:mod:`nasco.evaluate._data_images` and :mod:`nasco.evaluate._data_events`, the splitting
they share in :mod:`nasco.evaluate._data_splits`. Every split is derived from ``seed``
with a numpy ``Generator`` so the same seed yields bit-identical tensors in any process.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from nasco.core import Registry
from nasco.evaluate._data_events import DEFAULT_FRAMES, EVENT_DATASETS, TONIC_REQUIREMENT, load_tonic
from nasco.evaluate._data_images import (
    CIFAR_DIRNAME,
    find_cifar_dir,
    load_cifar,
    load_digits,
    load_image_folder,
)
from nasco.evaluate._data_splits import DatasetError, DataSplits, _check_split, _finalise, _subsample

__all__ = ["DATASETS", "DEFAULT_FRAMES", "DataSplits", "DatasetError", "EVENT_DATASETS", "KNOWN_DATASETS",
           "TONIC_REQUIREMENT", "load_dataset"]

# Name -> loader(fractions, rng) -> (raw splits, the value that scales them to [0, 1], what they
# are): the datasets ``load_dataset`` takes by name.
DATASETS: Registry[Callable[..., Any]] = Registry("dataset")
DATASETS.register("digits", load_digits)
KNOWN_DATASETS: tuple[str, ...] = tuple(DATASETS)


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
        return load_tonic(spec, fractions, rng, limit, size, frames)
    if frames is not None:
        raise DatasetError(f"frames={frames!r} applies to event data only (tonic:<name>:<root>), "
                           f"not to {spec!r}")
    if spec.lower() in DATASETS:
        parts, scale, meta = DATASETS.get(spec.lower())(fractions, rng)
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            raise DatasetError(_missing_message(spec))
        if not path.is_dir():
            raise DatasetError(
                f"dataset path {spec!r} is a file; expected a folder "
                f"(root/<class_name>/*.png|jpg or {CIFAR_DIRNAME})")
        cifar_dir = find_cifar_dir(path)
        if cifar_dir is not None:
            parts, scale, meta = load_cifar(cifar_dir, fractions[1], rng, trust_pickle)
        else:
            parts, scale, meta = load_image_folder(path, fractions, rng, size)

    if limit is not None:
        parts = {k: _subsample(x, y, int(limit), rng) for k, (x, y) in parts.items()}
        meta["source"] += f", limited to {int(limit)} per split"
    return _finalise(parts, scale, meta)


def _missing_message(spec: str) -> str:
    """Explain an unknown name or a missing path, suggesting close names."""
    looks_like_path = any(c in spec for c in "/\\") or spec.startswith((".", "~"))
    if looks_like_path:
        return (f"dataset folder {spec!r} does not exist; expected a local image folder "
                f"(root/<class_name>/*.png|jpg) or a {CIFAR_DIRNAME} folder")
    if spec.lower().replace("-", "").replace("_", "") in {"cifar", "cifar10"}:
        return (f"dataset {spec!r} is not bundled and nothing is downloaded; extract "
                f"cifar-10-python.tar.gz yourself and pass the {CIFAR_DIRNAME} folder "
                "path together with --trust-pickle")
    event = {n.lower(): n for n in EVENT_DATASETS}.get(spec.lower().replace("-", "").replace("_", ""))
    if event is not None:
        return (f"dataset {spec!r} is event data and nothing is downloaded; pass "
                f"'tonic:{event}:<root>' with the extracted recordings under <root>/{event}/ "
                f"(needs pip install 'nasco[events]')")
    close = difflib.get_close_matches(spec.lower(), DATASETS.names(), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    return (f"unknown dataset {spec!r} (not a known name and no such folder); {hint}"
            f"known names: {', '.join(DATASETS)}; or pass the path of a local image "
            f"folder or {CIFAR_DIRNAME} folder (nothing is downloaded)")
