"""The run directory's identity file, run.json, and the checks made before resuming."""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nasco.core import RunDirError
from nasco.search._base import Searcher
from nasco.space import SearchSpace

__all__ = ["RUN_FILE", "RunDirError", "atomic_write_text", "check_run_json", "run_meta", "write_run_json"]

RUN_FILE = "run.json"
RUN_FORMAT = 1




def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _searcher_settings(searcher: Searcher) -> dict[str, Any]:
    """The fresh searcher's state without the generator (which follows from the seed):
    its name, seed and constructor settings such as population_size."""
    state = json.loads(json.dumps(searcher.state_dict()))
    return {k: v for k, v in state.items() if k not in ("rng", "n_told")}


def run_meta(*, space: SearchSpace, searcher: Searcher, objectives: tuple[str, ...], seed: int,
             config: dict[str, Any]) -> dict[str, Any]:
    desc = space.describe()
    return {
        "format": RUN_FORMAT,
        "created_at": utc_now(),
        "seed": seed,
        "searcher": _searcher_settings(searcher),
        "objectives": list(objectives),
        "space": {"arch": desc["arch"], "hw": desc["hw"],
                  "arch_choices": desc["arch_choices"], "hw_choices": desc["hw_choices"]},
        "config": config,
    }


def write_run_json(out_dir: Path, meta: dict[str, Any]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / RUN_FILE, json.dumps(meta, indent=2, sort_keys=True) + "\n")


def check_run_json(out_dir: Path, meta: dict[str, Any]) -> None:
    """Raise RunDirError (one line) unless ``meta`` describes the run recorded in out_dir."""
    path = out_dir / RUN_FILE
    if not path.exists():
        raise RunDirError(f"{path} is missing, so the ledger in {out_dir} cannot be resumed safely; "
                          f"choose another --out")
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise RunDirError(f"{path} is not valid JSON ({exc}); choose another --out") from None
    fix = "resume with the same settings or choose another --out"

    def differ(what: str, new: Any, was: Any) -> RunDirError:
        return RunDirError(f"cannot resume {out_dir}: this run's {what} is {new}, "
                           f"the recorded run's is {was}; {fix}")

    if old.get("seed") != meta["seed"]:
        raise differ("seed", meta["seed"], old.get("seed"))
    new_s, old_s = meta["searcher"], old.get("searcher") or {}
    if new_s.get("name") != old_s.get("name"):
        raise differ("searcher", repr(new_s.get("name")), repr(old_s.get("name")))
    if new_s != old_s:
        keys = sorted(k for k in set(new_s) | set(old_s) if new_s.get(k) != old_s.get(k))
        raise differ(f"searcher setting {', '.join(keys)}", {k: new_s.get(k) for k in keys},
                     {k: old_s.get(k) for k in keys})
    if old.get("objectives") != meta["objectives"]:
        raise differ("objectives", meta["objectives"], old.get("objectives"))
    new_sp, old_sp = meta["space"], old.get("space") or {}
    for key in ("arch", "hw"):
        if new_sp[key] != old_sp.get(key):
            raise differ(f"{key} space", repr(new_sp[key]), repr(old_sp.get(key)))
    for key in ("arch_choices", "hw_choices"):
        if new_sp[key] != old_sp.get(key):
            names = sorted(k for k in set(new_sp[key]) | set(old_sp.get(key) or {})
                           if new_sp[key].get(k) != (old_sp.get(key) or {}).get(k))
            raise RunDirError(f"cannot resume {out_dir}: the space's {key.replace('_', ' ')} differ from the "
                              f"recorded run's (in {', '.join(names)}); {fix}")
