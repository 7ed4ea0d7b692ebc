"""Trainings memoised by key: the training half of an evaluation, done once per architecture.

A training is a pure function of its inputs: the architecture as the network sees it (the
cell and the values of the space's choices, and the resolved space), the data (its name,
sizes, shapes and a fingerprint of its content), the training settings and the training
seed. :func:`training_key` is the sha256 of those inputs as canonical JSON; the hardware a
candidate pairs with the architecture is not among them, so every accelerator configuration
of one architecture shares its training.

:class:`TrainingStore` keeps one record per key. Without a directory it keeps them in
memory. With one (a run's ``trainings/`` folder) each record is two files:
``KEY.safetensors``, the trained state dict (safetensors, never pickle), and ``KEY.json``,
the accuracies, the train loss, the epochs run, the seconds, the parameter count, the spike
rates per layer and the key's inputs in readable form. Each file is written to a temporary
file and renamed into place, the weights first and the JSON last, so a present JSON means a
complete record; workers that train the same key concurrently write identical content. A
record that cannot be read back (bad JSON, weights missing, truncated or not the ones the
JSON names) counts as absent, with a warning, and is trained again.

Measurements of a trained network that are as deterministic as its training, such as its
accuracy after quantization to some bit widths, are kept beside it by name
(:meth:`TrainingStore.get_measure`, :meth:`TrainingStore.put_measure`): in a run directory, one
JSON file per measure in ``KEY.measures/``, written the same atomic way, so that workers and a
resumed run read them instead of measuring again. A measure file that cannot be read back, or
that was taken with other settings, counts as absent.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from nasco.core import canonical_json

__all__ = ["DIRNAME", "RECORD_FORMAT", "TrainingRecord", "TrainingStore", "data_fingerprint", "training_key",
           "training_seed"]

DIRNAME = "trainings"  # the store's folder inside a run directory
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
RECORD_FORMAT = 1


def training_key(inputs: Mapping[str, Any]) -> str:
    """The key of a training: sha256 (hex) of its inputs as canonical JSON."""
    return hashlib.sha256(canonical_json(dict(inputs)).encode()).hexdigest()


def training_seed(run_seed: int, inputs: Mapping[str, Any]) -> int:
    """The seed a training with ``inputs`` (everything but the seed) trains with in a run
    seeded ``run_seed``: independent streams for different inputs, the same for equal ones."""
    digest = hashlib.sha256(canonical_json(dict(inputs)).encode()).digest()
    entropy = [int(run_seed), int.from_bytes(digest[:8], "big")]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def data_fingerprint(data: Any) -> str:
    """sha256 (hex) of a :class:`~nasco.evaluate.DataSplits`' tensors: each split's shape,
    dtype and bytes, in a fixed order."""
    h = hashlib.sha256()
    for name in ("x_train", "y_train", "x_valid", "y_valid", "x_test", "y_test"):
        arr = np.ascontiguousarray(getattr(data, name).detach().cpu().numpy())
        h.update(f"{name}:{arr.dtype.str}:{list(arr.shape)}|".encode())
        h.update(memoryview(arr).cast("B"))
    return h.hexdigest()


@dataclass(frozen=True)
class TrainingRecord:
    """What a training produced. ``diverged`` holds the reason when the loss diverged (then
    no weights exist and the figures are None)."""

    key: str
    inputs: dict[str, Any]
    valid_accuracy: float | None = None
    test_accuracy: float | None = None
    train_loss: float | None = None
    epochs: int | None = None
    seconds: float | None = None
    params: int | None = None
    spike_rates: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False
    diverged: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainingRecord:
        """The record ``d`` holds; ValueError (saying what is wrong) for anything else."""
        if not isinstance(d, Mapping):
            raise ValueError(f"expected a JSON object, found {type(d).__name__}")
        names = {f for f in cls.__dataclass_fields__}
        missing = sorted({"key", "inputs"} - set(d))
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        rec = cls(**{k: v for k, v in d.items() if k in names})
        if not isinstance(rec.inputs, dict) or not isinstance(rec.spike_rates, dict):
            raise ValueError("inputs and spike_rates must be JSON objects")
        figures = ("valid_accuracy", "test_accuracy", "train_loss", "epochs", "params")
        if rec.diverged is None and not all(isinstance(getattr(rec, k), (int, float)) for k in figures):
            raise ValueError("a training that did not diverge needs its accuracies, loss, epochs and params")
        if training_key(rec.inputs) != rec.key:
            raise ValueError(f"its inputs hash to {training_key(rec.inputs)[:16]}, not to its key")
        return rec


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place (a
    name of its own per writer, so concurrent writers never share a temporary file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class TrainingStore:
    """Training records by key: in memory, or in the folder ``root`` when given (see the
    module docstring for the files and what a damaged record does)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = None if root is None else Path(root)
        self._records: dict[str, TrainingRecord] = {}
        self._states: dict[str, dict[str, Any]] = {}
        self._measures: dict[tuple[str, str, str], float] = {}

    def __getstate__(self) -> dict[str, Any]:
        # A worker gets the folder, not this process's in-memory weights.
        state = dict(self.__dict__)
        if self.root is not None:
            state["_records"], state["_states"], state["_measures"] = {}, {}, {}
        return state

    def paths(self, key: str) -> tuple[Path, Path]:
        """(the weights file, the JSON file) of ``key``; needs a folder."""
        if self.root is None:
            raise ValueError("this training store keeps its records in memory; it has no files")
        return self.root / f"{key}.safetensors", self.root / f"{key}.json"

    def get(self, key: str) -> TrainingRecord | None:
        """The record of ``key``; None when there is none, or (with a RuntimeWarning) when
        the stored one is damaged."""
        if self.root is None:
            return self._records.get(key)
        weights, path = self.paths(key)
        if not path.exists():
            return None
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
            rec = TrainingRecord.from_dict({k: v for k, v in meta.items() if k not in ("format", "weights")})
            if rec.key != key:
                raise ValueError(f"it holds the record of {rec.key[:16]}")
            if rec.diverged is None:
                self._check_weights(weights, meta.get("weights"))
        except (OSError, ValueError, TypeError) as exc:
            warnings.warn(f"{path}: damaged training record ({exc}); training it again", RuntimeWarning,
                          stacklevel=2)
            return None
        return rec

    @staticmethod
    def _check_weights(weights: Path, info: Any) -> None:
        if not isinstance(info, dict) or not {"bytes", "sha256"} <= set(info):
            raise ValueError("no 'weights' entry with bytes and sha256")
        if not weights.exists():
            raise ValueError(f"{weights.name} is missing")
        size = weights.stat().st_size
        if size != info["bytes"]:
            raise ValueError(f"{weights.name} has {size} bytes, the record says {info['bytes']}")
        if hashlib.sha256(weights.read_bytes()).hexdigest() != info["sha256"]:
            raise ValueError(f"{weights.name} is not the file the record names (sha256 differs)")

    def put(self, record: TrainingRecord, state: Mapping[str, Any] | None) -> None:
        """Store ``record`` and the trained ``state`` dict (None for a diverged training)."""
        if self.root is None:
            self._records[record.key] = record
            if state is not None:
                self._states[record.key] = {k: v.detach().clone() for k, v in state.items()}
            return
        from safetensors.torch import save

        self.root.mkdir(parents=True, exist_ok=True)
        weights, path = self.paths(record.key)
        meta: dict[str, Any] = {"format": RECORD_FORMAT, **record.to_dict()}
        if state is not None:
            tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
            blob = save(tensors, metadata={"key": record.key})
            meta["weights"] = {"file": weights.name, "bytes": len(blob),
                               "sha256": hashlib.sha256(blob).hexdigest()}
            _atomic_write(weights, blob)
        _atomic_write(path, (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode())

    def get_measure(self, key: str, name: str, settings: Mapping[str, Any]) -> float | None:
        """The measure ``name`` of training ``key`` taken with ``settings`` (a JSON-able
        mapping that fixes its value), or None when none is stored with those settings."""
        if self.root is None:
            return self._measures.get((key, name, canonical_json(dict(settings))))
        path = self._measure_path(key, name)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            warnings.warn(f"{path}: unreadable measure ({exc}); measuring again", RuntimeWarning,
                          stacklevel=2)
            return None
        if not isinstance(d, dict) or d.get("key") != key or d.get("name") != name \
                or d.get("settings") != json.loads(canonical_json(dict(settings))) \
                or not isinstance(d.get("value"), (int, float)):
            return None
        return float(d["value"])

    def put_measure(self, key: str, name: str, settings: Mapping[str, Any], value: float) -> None:
        """Keep ``value``, the measure ``name`` of training ``key`` taken with ``settings``."""
        if self.root is None:
            self._measures[(key, name, canonical_json(dict(settings)))] = float(value)
            return
        path = self._measure_path(key, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        d = {"key": key, "name": name, "settings": json.loads(canonical_json(dict(settings))),
             "value": float(value)}
        _atomic_write(path, (json.dumps(d, sort_keys=True) + "\n").encode())

    def _measure_path(self, key: str, name: str) -> Path:
        if not name or any(c not in _NAME_CHARS for c in name):
            raise ValueError(f"measure name {name!r}: expected letters, digits, '-', '_' or '.'")
        return self.root / f"{key}.measures" / f"{name}.json"

    def state_dict(self, key: str) -> dict[str, Any]:
        """The trained weights of ``key`` (KeyError when there are none)."""
        if self.root is None:
            if key not in self._states:
                raise KeyError(f"no trained weights for {key} in this in-memory training store")
            return {k: v.clone() for k, v in self._states[key].items()}
        from safetensors.torch import load

        rec = self.get(key)
        if rec is None or rec.diverged is not None:
            raise KeyError(f"no trained weights for {key} in {self.root}")
        return load(self.paths(key)[0].read_bytes())
