"""A finished run directory as the report reads it: run.json, the ledger, pareto.csv and the
run's accelerator space."""
from __future__ import annotations

import csv
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from nasco.core import Objective
from nasco.dsl import HW_KINDS, find_file, load_file, parse_overrides
from nasco.run import Ledger, RunDirError
from nasco.run._ledger import FILENAME as LEDGER_FILE
from nasco.run._ledger import search_rows
from nasco.run._outputs import PARETO_CSV
from nasco.run._rundir import RUN_FILE, read_run_json

__all__ = ["RunData", "as_dict", "load_run"]

_FIX = "give the --out of a finished nasco search"


@dataclass(frozen=True, eq=False)
class RunData:
    """What a report shows of one run. ``front`` holds pareto.csv's rows as read: ``id``,
    ``arch`` and ``hw`` as text, every other column a float (NaN where empty)."""

    path: Path
    meta: dict[str, Any]
    objectives: tuple[Objective, ...]
    rows: list[dict[str, Any]]   # every ledger row, in file order
    front: list[dict[str, Any]]
    front_columns: list[str]
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def config(self) -> dict[str, Any]:
        return self.meta.get("config") or {}

    @property
    def names(self) -> list[str]:
        return [o.name for o in self.objectives]

    @property
    def search(self) -> list[dict[str, Any]]:
        """The search's rows (retrain rows left out), in ``seq`` order."""
        return sorted(search_rows(self.rows), key=lambda r: r.get("seq", 0))

    @property
    def limits(self) -> dict[str, float]:
        """The design-spec limits of the run's accelerator (base units), as run.json records them."""
        specs = self.meta.get("design_specs") or {}
        own = specs.get(self.config.get("hw")) or {}
        return {k: float(v) for k, v in own.items() if isinstance(v, (int, float))}

    def hypervolume(self) -> float | None:
        """The normalised hypervolume of pareto.csv's front at the objectives' recorded ideal and
        bound; None when an objective has neither."""
        from nasco.pareto import normalised_hypervolume

        if any(o.ideal is None or o.bound is None for o in self.objectives):
            return None
        return normalised_hypervolume([[f[n] for n in self.names] for f in self.front], self.objectives)

    def counts(self) -> dict[str, int]:
        """ok, infeasible and failed search rows, and their total."""
        status = Counter(r.get("status") for r in self.search)
        out = {s: int(status.get(s, 0)) for s in ("ok", "infeasible", "failed")}
        out["total"] = len(self.search)
        return out

    def failed_reasons(self) -> list[tuple[str, int]]:
        """The failed rows' reasons (first line), most frequent first."""
        reasons = Counter(str(r.get("reason") or "no reason recorded").splitlines()[0]
                          for r in self.search if r.get("status") == "failed")
        return reasons.most_common()

    def violated_specs(self) -> list[tuple[str, int]]:
        """How many infeasible rows exceed each design spec, most frequent first."""
        specs = Counter(k for r in self.search if r.get("status") == "infeasible"
                        for k in (r.get("violations") or {}))
        return specs.most_common()

    def row(self, row_id: str) -> dict[str, Any] | None:
        """The search row (else the retrain row) with id ``row_id``."""
        found = [r for r in self.rows if r.get("id") == row_id]
        return next((r for r in found if r.get("phase") is None), found[0] if found else None)

    def _recorded_file(self, key: str) -> str | None:
        """The run's recorded file of ``key`` (space, hw) if it still exists, else its name."""
        path = self.config.get(f"{key}_file")
        return path if path and Path(path).is_file() else self.config.get(key)

    @cached_property
    def arch_spec(self) -> Any:
        """The run's architecture space (its recorded file and overrides); None for a multi-task run."""
        if self.config.get("space_files") or "+" in str(self.config.get("space")):
            return None
        over = {}
        for path, v in parse_overrides(self.config.get("set") or []).items():
            if path[0] != "hw":
                over[path[1:] if path[0] == "space" and len(path) > 1 else path] = v
        return load_file(find_file(self._recorded_file("space")), overrides=over or None, kind="arch_space")

    @cached_property
    def hw_space(self) -> Any:
        """The run's accelerator space (its recorded file and ``hw.`` overrides), or None."""
        from nasco.space import hw_space

        name = self._recorded_file("hw")
        if not name:
            return None
        over = {path[1:]: v for path, v in parse_overrides(self.config.get("set") or []).items()
                if path[0] == "hw" and len(path) > 1}
        return hw_space(load_file(find_file(name, what="accelerator"), overrides=over or None, kind=HW_KINDS))


def _read_front(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """pareto.csv's rows: ``id``, ``arch``, ``hw``, ``row_id`` and ``accuracy_source`` as text,
    the rest as floats (float() reads back exactly what the run wrote)."""
    text_cols = {"id", "arch", "hw", "row_id", "accuracy_source"}
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        columns = list(reader.fieldnames or [])
        rows = []
        for r in reader:
            rows.append({k: (v if k in text_cols else (float(v) if v not in ("", None) else math.nan))
                         for k, v in r.items()})
    return rows, columns


def load_run(run_dir: str | Path) -> RunData:
    """The run in ``run_dir``; a :class:`nasco.run.RunDirError` (one line) when it is not a
    finished run directory (no run.json, ledger or pareto.csv, or one that does not read)."""
    path = Path(run_dir)
    if not path.is_dir():
        raise RunDirError(f"{path}: expected a run directory, found "
                          f"{'a file' if path.exists() else 'no such directory'}; {_FIX}")
    for name in (RUN_FILE, LEDGER_FILE, PARETO_CSV):
        if not (path / name).is_file():
            raise RunDirError(f"{path}: expected a run directory with {name}, found none; {_FIX}")
    meta = read_run_json(path)
    defs = meta.get("objective_defs") or []
    if not defs:
        raise RunDirError(f"{path / RUN_FILE}: key 'objective_defs': expected the objectives' definitions, "
                          f"found none; rerun the search with this nasco")
    objectives = tuple(Objective.from_dict(d) for d in defs)
    try:
        front, columns = _read_front(path / PARETO_CSV)
    except (ValueError, UnicodeDecodeError, csv.Error) as exc:
        raise RunDirError(f"{path / PARETO_CSV}: expected the pareto.csv nasco search wrote, found a file "
                          f"that does not read ({exc}); rerun the search or restore the file") from None
    rows = Ledger(path / LEDGER_FILE).rows()
    return RunData(path, meta, objectives, rows, front, columns)


def as_dict(text_or_dict: Any) -> dict[str, Any]:
    """A front row's ``arch`` or ``hw`` (JSON text) or a ledger row's (a dict) as a dict."""
    return json.loads(text_or_dict) if isinstance(text_or_dict, str) else dict(text_or_dict or {})
