"""The run directory's identity file, run.json, and the checks made before resuming.

run.json records what gives a ledger row its meaning: the seed, the searcher and its
settings, the objectives, the space, the design specs (the limits that make a row
infeasible) and the evaluator's settings (:func:`row_settings`). A resumed run must agree
with every one of them; a mismatch is a :class:`RunDirError` that names the setting and both
values. Settings that only say where or how fast evaluations run (the torch device, CPU
threads, the permission to unpickle data files) may change on resume.
"""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nasco.core import RunDirError
from nasco.search._base import Searcher
from nasco.space import SearchSpace

__all__ = ["PLACEMENT_SETTINGS", "RUN_FILE", "RunDirError", "atomic_write_text", "check_run_json",
           "check_settings", "read_run_json", "recorded_evaluator", "row_settings", "run_meta",
           "write_run_json"]

RUN_FILE = "run.json"
RUN_FORMAT = 1

# Evaluator settings that say where evaluations run or what the user allows, not what a row means.
PLACEMENT_SETTINGS = frozenset({"device", "threads", "trust_pickle"})
# A run.json written before ``evaluator_options`` keeps its evaluator's settings as flat config
# keys: option name -> config key, by evaluator kind.
_FLAT_KEYS: dict[str, dict[str, str]] = {
    "table": {"table": "table", "table_dataset": "dataset", "table_fidelity": "fidelity",
              "table_split": "split"},
    "train": {k: k for k in ("dataset", "limit", "device", "threads", "epochs")},
    "proxy": {k: k for k in ("dataset", "limit", "device", "threads")},
}
# Evaluator kinds whose rows the user scores in a loop of their own: their settings are unknown.
_UNKNOWN_EVALUATOR = "ask-tell"
_FIX = "resume with the same settings or choose another --out"


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


def recorded_evaluator(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(evaluator kind, its settings) as a run's config records them; a config written
    before ``evaluator_options`` has them as flat keys, renamed here."""
    kind = str(config.get("evaluator", "train"))
    opts = config.get("evaluator_options")
    if not isinstance(opts, dict):
        opts = {option: config.get(key) for option, key in _FLAT_KEYS.get(kind, {}).items()}
        if kind != "table" and config.get("datasets"):
            opts["dataset"] = config["datasets"]
    return kind, dict(opts)


def row_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The settings in a run's ``config`` that give its ledger rows their meaning: the
    evaluator's kind and settings (less :data:`PLACEMENT_SETTINGS`), the function scoring
    the rows of a function evaluator, and the overrides of the space (``set``)."""
    kind, opts = recorded_evaluator(config)
    out: dict[str, Any] = {"evaluator": kind}
    out.update((k, v) for k, v in opts.items() if k not in PLACEMENT_SETTINGS)
    if config.get("evaluator_function") is not None:
        out["evaluator_function"] = config["evaluator_function"]
    out["set"] = list(config.get("set") or [])
    return out


def _design_specs(space: SearchSpace) -> dict[str, Any] | None:
    """The limits (base units) that make a row infeasible: the accelerator's, and each
    member's of a template set or a multi-accelerator's pool."""
    hw = space.hw
    if hw is None:
        return None
    members = getattr(hw, "members", None) or getattr(getattr(hw, "pool", None), "members", None) or {}
    out = {hw.name: hw.limits(), **{f"{hw.name}.{name}": m.limits() for name, m in members.items()}}
    return json.loads(json.dumps(out))


def run_meta(*, space: SearchSpace, searcher: Searcher, objectives: tuple[str, ...], seed: int,
             config: dict[str, Any], evaluator: str | None = None) -> dict[str, Any]:
    """run.json's content for a new run; ``evaluator`` names what scores the rows when
    ``config`` has no ``"evaluator"`` of its own."""
    desc = space.describe()
    return {
        "format": RUN_FORMAT,
        "created_at": utc_now(),
        "seed": seed,
        "searcher": _searcher_settings(searcher),
        "objectives": list(objectives),
        "space": {"arch": desc["arch"], "hw": desc["hw"],
                  "arch_choices": desc["arch_choices"], "hw_choices": desc["hw_choices"]},
        "design_specs": _design_specs(space),
        "settings": row_settings({"evaluator": evaluator, **config} if evaluator and "evaluator" not in config
                                 else config),
        "config": config,
    }


def write_run_json(out_dir: Path, meta: dict[str, Any]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / RUN_FILE, json.dumps(meta, indent=2, sort_keys=True) + "\n")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# run.json's keys that nasco reads back: (check, what is expected).
_SHAPE: dict[str, tuple[Any, str]] = {
    "seed": (lambda v: _is_int(v) and v >= 0, "a non-negative integer"),
    "searcher": (lambda v: isinstance(v, dict) and isinstance(v.get("name"), str),
                 "an object with the searcher's 'name'"),
    "objectives": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
                   "a list of objective names"),
    "space": (lambda v: isinstance(v, dict), "an object"),
    "config": (lambda v: isinstance(v, dict), "an object"),
    "window": (lambda v: _is_int(v) and v >= 1, "a positive integer (proposals out at once)"),
    "settings": (lambda v: isinstance(v, dict), "an object"),
    "design_specs": (lambda v: v is None or isinstance(v, dict), "an object or null"),
    "objective_bounds": (lambda v: isinstance(v, dict), "an object"),
    "objective_defs": (lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
                       "a list of objects"),
    "enqueued": (lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
                 "a list of candidates"),
}
_REQUIRED = ("seed", "searcher", "objectives", "space", "config")
# The keys of run.json's "config" that a resume reads, and their shapes.
_CONFIG_SHAPE: dict[str, tuple[Any, str]] = {
    "budget": (lambda v: v is None or (_is_int(v) and v >= 1), "a positive integer or null"),
    "space": (lambda v: isinstance(v, str) and bool(v), "a space name or path"),
    "hw": (lambda v: v is None or isinstance(v, str), "an accelerator name or path, or null"),
    "evaluator": (lambda v: isinstance(v, str), "an evaluator kind"),
    "set": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of KEY=VALUE"),
    "searcher_options": (lambda v: isinstance(v, dict), "an object"),
}


def read_run_json(out_dir: Path) -> dict[str, Any]:
    """run.json of ``out_dir``, checked: a RunDirError (one line: the file, the key, what
    was expected and found) unless it is an object whose keys nasco reads have the right types."""
    path = Path(out_dir) / RUN_FILE
    fix = "restore it from a backup or choose another --out"
    try:
        meta = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise RunDirError(f"{path} is missing, so the run in {out_dir} cannot be resumed safely; "
                          f"choose another --out") from None
    except OSError as exc:  # a directory, no permission
        raise RunDirError(f"{path}: expected nasco's run.json, found a file that cannot be read "
                          f"({exc.strerror or type(exc).__name__}); {fix}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{path}: expected nasco's run.json, found text that is not UTF-8 JSON "
                          f"({str(exc).splitlines()[0]}); {fix}") from None
    if not isinstance(meta, dict):
        raise RunDirError(f"{path}: expected a JSON object, found {type(meta).__name__} "
                          f"{json.dumps(meta)[:40]}; {fix}")
    for key in _REQUIRED:
        if key not in meta:
            raise RunDirError(f"{path}: key '{key}': expected {_SHAPE[key][1]}, found nothing; {fix}")
    for key, (ok, expected) in _SHAPE.items():
        if key in meta and not ok(meta[key]):
            raise RunDirError(f"{path}: key '{key}': expected {expected}, found "
                              f"{json.dumps(meta[key])[:60]}; {fix}")
    for key, (ok, expected) in _CONFIG_SHAPE.items():
        if key in meta["config"] and not ok(meta["config"][key]):
            raise RunDirError(f"{path}: key 'config.{key}': expected {expected}, found "
                              f"{json.dumps(meta['config'][key])[:60]}; {fix}")
    return meta


def _differ(out_dir: Path, what: str, new: Any, was: Any, setting: str | None = None) -> RunDirError:
    """The error of a resume whose ``what`` differs; ``setting`` (an evaluator setting's name)
    is kept on the error as ``.setting`` so a front end can name its own flag."""
    err = RunDirError(f"cannot resume {out_dir}: this run's {what} is {new}, the recorded run's is {was}; "
                      f"{_FIX}")
    err.setting = setting
    return err


def check_settings(out_dir: Path, new: dict[str, Any], old: dict[str, Any]) -> None:
    """Raise RunDirError (one line, the first setting that differs and both values) unless
    the row settings ``new`` and ``old`` (:func:`row_settings`) agree. A loop that scores
    its own rows (ask/tell) on either side has evaluator settings nasco does not know: only
    the space overrides are compared."""
    keys = ["evaluator", *sorted((set(new) | set(old)) - {"evaluator"})]
    if _UNKNOWN_EVALUATOR in (new.get("evaluator"), old.get("evaluator")):
        keys = ["set"]
    for key in keys:
        if new.get(key) != old.get(key):
            what = "evaluator" if key == "evaluator" else \
                ("space overrides (set)" if key == "set" else f"evaluator setting '{key}'")
            raise _differ(out_dir, what, repr(new.get(key)), repr(old.get(key)), setting=key)


def check_run_json(out_dir: Path, meta: dict[str, Any]) -> None:
    """Raise RunDirError (one line) unless ``meta`` describes the run recorded in out_dir."""
    old = read_run_json(out_dir)

    def differ(what: str, new: Any, was: Any) -> RunDirError:
        return _differ(out_dir, what, new, was)

    if old.get("seed") != meta["seed"]:
        raise differ("seed", meta["seed"], old.get("seed"))
    new_s, old_s = meta["searcher"], old["searcher"]
    if new_s.get("name") != old_s.get("name"):
        raise differ("searcher", repr(new_s.get("name")), repr(old_s.get("name")))
    if new_s != old_s:
        keys = sorted(k for k in set(new_s) | set(old_s) if new_s.get(k) != old_s.get(k))
        raise differ(f"searcher setting {', '.join(keys)}", {k: new_s.get(k) for k in keys},
                     {k: old_s.get(k) for k in keys})
    if old.get("objectives") != meta["objectives"]:
        raise differ("objectives", meta["objectives"], old.get("objectives"))
    new_sp, old_sp = meta["space"], old["space"]
    for key in ("arch", "hw"):
        if new_sp[key] != old_sp.get(key):
            raise differ(f"{key} space", repr(new_sp[key]), repr(old_sp.get(key)))
    for key in ("arch_choices", "hw_choices"):
        if new_sp[key] != old_sp.get(key):
            was = old_sp.get(key) if isinstance(old_sp.get(key), dict) else {}
            names = sorted(k for k in set(new_sp[key]) | set(was) if new_sp[key].get(k) != was.get(k))
            raise RunDirError(f"cannot resume {out_dir}: the space's {key.replace('_', ' ')} differ from the "
                              f"recorded run's (in {', '.join(names)}); {_FIX}")
    if "design_specs" in old and meta.get("design_specs") != old["design_specs"]:
        raise differ("design specs (limits, base units)", meta.get("design_specs"), old["design_specs"])
    # A run.json written before "settings": the same settings, read from its config.
    check_settings(out_dir, meta["settings"], old.get("settings") or row_settings(old["config"]))
