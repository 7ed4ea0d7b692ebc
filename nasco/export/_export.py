"""Export one candidate's network of a run in a format, with a JSON sidecar.

The sidecar (``nasco_export.json``) says what was exported: the candidate's architecture,
accelerator configuration, precision and objectives, which training the weights are and
whether their accuracy is stand-alone or inherited, the network as nasco rebuilds it (the
resolved space, the cell, the input shape), the format's own facts (files, opset, dt, the
approximations made) and the versions of nasco and the libraries involved. The export is
written to a temporary folder beside ``out`` and renamed into place, so an interrupted
export leaves no half-written folder.
"""
from __future__ import annotations

import importlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from nasco.export._errors import ExportError
from nasco.export._network import TrainedNetwork, load_network
from nasco.run._outputs import package_versions
from nasco.run._rundir import utc_now

__all__ = ["EXPORTS_DIR", "FORMATS", "Format", "SIDECAR", "export", "export_network"]

SIDECAR = "nasco_export.json"
EXPORTS_DIR = "exports"  # a run directory's exports, one folder per candidate and format
SIDECAR_VERSION = 1


@dataclass(frozen=True)
class Format:
    """A format's writer, ``write(plan, space, state, out_dir, **options) -> facts``, by module
    and name (imported when used: each format's libraries load only for it), whether it takes
    ``approximate``, and the distributions whose versions its sidecar records."""

    module: str
    function: str
    approximates: bool
    packages: tuple[str, ...]
    about: str

    def writer(self) -> Callable[..., dict[str, Any]]:
        return getattr(importlib.import_module(self.module), self.function)


FORMATS: dict[str, Format] = {
    "torch": Format("nasco.export._torch", "write_torch", False, ("safetensors",),
                    "weights in safetensors; nasco.export.load_torch rebuilds the module, no pickle"),
    "nir": Format("nasco.export._nir", "write_nir", True, ("nir",),
                  "spiking networks as a NIR graph (snnTorch, Norse, Sinabs, Lava-DL, ... read it)"),
    "onnx": Format("nasco.export._onnx", "write_onnx", False, ("onnx", "onnxruntime"),
                   "plain ONNX operators; a spiking network unrolled over its timesteps"),
}


def _accelerator(pair: dict[str, Any], space: Any, task: int | None) -> tuple[Any, Any]:
    """(the pair's accelerator configuration resolved in ``space``, with every default, as data;
    its precision as results record it); (None, None) without a space or an accelerator."""
    if space is None or getattr(space, "hw", None) is None or not pair.get("hw"):
        return None, None
    from nasco.core import Candidate
    from nasco.dsl import to_data
    from nasco.evaluate._precision import precision_metric, precision_of

    template = space.resolve_hw(Candidate.make(pair["arch"], pair["hw"]))[task or 0]
    return to_data(template), precision_metric(precision_of(template))


def _sidecar(net: TrainedNetwork, fmt: str, facts: dict[str, Any], run_dir: Path | None, space: Any,
             task: int | None) -> dict[str, Any]:
    pair, inputs = net.pair, net.inputs
    metrics = pair.get("metrics") or {}
    resolved, precision = _accelerator(pair, space, task)
    source = metrics.get("accuracy_source") or ("inherited" if net.store == "inherited" else "stand-alone")
    return {
        "nasco_export": SIDECAR_VERSION, "format": fmt, "created_at": utc_now(),
        "id": pair.get("id"), "row_id": pair.get("row_id", pair.get("id")),
        "run": str(run_dir.resolve()) if run_dir is not None else None,
        "arch": pair.get("arch"), "hw": pair.get("hw"), "accelerator": resolved, "precision": precision,
        "objectives": pair.get("objectives"), "status": pair.get("status"), "accuracy_source": source,
        "training": {"key": net.key, "store": net.store, "settings": inputs.get("training"),
                     "seed": inputs.get("seed")},
        "network": {"space": inputs["space"], "cell": inputs["arch"]["cell"],
                    "hp": inputs["arch"].get("hp", {}),
                    "input_shape": list(inputs["data"]["input_shape"]),
                    "num_classes": int(inputs["data"]["num_classes"]), "spiking": bool(net.plan.spiking),
                    "timesteps": int(net.plan.timesteps)},
        "format_facts": facts,
        "versions": package_versions("spikingjelly", *FORMATS[fmt].packages),
    }


def _check_format(fmt: str, approximate: bool) -> Format:
    if fmt not in FORMATS:
        raise ExportError("--format", f"expected one of {', '.join(FORMATS)}, found '{fmt}'",
                          "see 'nasco export --help'")
    if approximate and not FORMATS[fmt].approximates:
        raise ExportError("--approximate", f"the {fmt} format is exact and makes no approximations",
                          "leave out --approximate, or export with --format nir")
    return FORMATS[fmt]


def _prepare_out(out: Path) -> None:
    """``out`` may be new, empty or an earlier export (replaced); anything else is refused."""
    if out.exists() and not out.is_dir():
        raise ExportError(str(out), "expected a folder to export into, found a file", "give another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / SIDECAR).exists():
        raise ExportError(str(out), f"expected an empty folder or an earlier export, found other files "
                          f"(no {SIDECAR})", "give another --out")


def _as_umask_allows(folder: Path) -> None:
    """Give ``folder`` and its files the modes a plain ``mkdir`` and ``open`` would (mkdtemp and
    some writers make them private)."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for f in folder.iterdir():
        f.chmod(0o666 & ~umask)


def export_network(net: TrainedNetwork, fmt: str, out: str | Path, *, approximate: bool = False,
                   run_dir: str | Path | None = None, space: Any = None, task: int | None = None) -> Path:
    """Write ``net`` in format ``fmt`` to the folder ``out`` (replacing an earlier export
    there), with the sidecar; returns ``out``. ``space`` (the run's
    :class:`~nasco.space.SearchSpace`) resolves the accelerator configuration and its
    precision for the sidecar (None without it)."""
    spec = _check_format(fmt, approximate)
    out = Path(out)
    _prepare_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        options = {"approximate": True} if approximate else {}
        facts = spec.writer()(net.plan, net.space, net.state, tmp, **options)
        meta = _sidecar(net, fmt, facts, None if run_dir is None else Path(run_dir), space, task)
        (tmp / SIDECAR).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        _as_umask_allows(tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def export(run_dir: str | Path, cid: str, fmt: str = "torch", out: str | Path | None = None, *,
           approximate: bool = False, task: int | None = None, key: str | None = None,
           space: Any = None) -> Path:
    """Export the network of candidate ``cid`` (a front or ledger id, or a unique prefix) of
    the run in ``run_dir`` in format ``fmt`` (``torch``, ``nir``, ``onnx``) to ``out``
    (default ``RUN/exports/ID-FORMAT``); returns the folder. ``key`` exports that training
    instead of the one the candidate's row names (a network trained for the export); ``space``
    is the run's search space, which the sidecar's accelerator and precision need. An
    :class:`ExportError` (one line) refuses what the format cannot express exactly
    (``approximate`` maps what NIR can approximate, and the sidecar lists each
    approximation) and a candidate whose network the run did not keep."""
    _check_format(fmt, approximate)
    run_dir = Path(run_dir)
    net = load_network(run_dir, cid, task=task, key=key)
    suffix = f"-task{task}" if task is not None else ""
    out = Path(out) if out is not None else run_dir / EXPORTS_DIR / f"{net.pair['id']}{suffix}-{fmt}"
    return export_network(net, fmt, out, approximate=approximate, run_dir=run_dir, space=space, task=task)
