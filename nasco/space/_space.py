"""The joint search space: architecture spaces (one per task) times a hardware space."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasco.core import Candidate
from nasco.dsl import AcceleratorTemplate, ArchSpace, Choice, resolve, search_dimensions
from nasco.space._cells import CellFamily, DenseCell, cell_family
from nasco.space._hw import HwSpace, MultiAcceleratorSpace, hw_space, pick
from nasco.space._nb201 import arch_str_ops, index_table_of

__all__ = ["ArchPart", "SearchSpace", "SpaceSize", "TASKS_KEY"]

# The key of a multi-task candidate's arch part: one architecture genotype per task.
TASKS_KEY = "tasks"


@dataclass(frozen=True)
class SpaceSize:
    cells: int
    arch_choices: int
    hw_choices: int

    @property
    def arch(self) -> int:
        return self.cells * self.arch_choices

    @property
    def total(self) -> int:
        return self.arch * self.hw_choices


def _product(dims: dict[str, Choice]) -> int:
    n = 1
    for c in dims.values():
        n *= len(c)
    return n


class ArchPart:
    """One task's architecture space: its cell family and its choices."""

    def __init__(self, spec: ArchSpace) -> None:
        self.spec = spec
        self.cells: CellFamily = cell_family(spec.cell)
        self.dims = search_dimensions(spec)
        self._index: dict[str, int] | None = index_table_of(spec) if spec.official_index else None
        self._by_index: dict[int, str] | None = None

    def genotype(self, cell: dict[str, Any], hp: dict[str, Any]) -> dict[str, Any]:
        if isinstance(cell, dict) and set(cell) == {"normal", "reduce"}:
            cell = self.cells.canonical(cell)
        arch: dict[str, Any] = {"cell": cell, "hp": hp}
        if isinstance(self.cells, DenseCell) and self._index is not None:
            s = self.cells.arch_str(cell)
            arch["arch_str"] = s
            arch["index"] = self._index.get(s)
        return arch

    def sample(self, rng: np.random.Generator) -> tuple[dict[str, Any], dict[str, Any]]:
        cell = self.cells.sample(rng)
        return cell, pick(self.dims, rng)

    def check(self, arch: dict[str, Any], what: str = "arch") -> None:
        if not isinstance(arch, dict):
            raise ValueError(f"{what}: expected a mapping with 'cell' and 'hp', got {type(arch).__name__}")
        self.cells.check(arch.get("cell"))
        values = arch.get("hp", {})
        if set(values) != set(self.dims):
            raise ValueError(f"{what}: expected choices {sorted(self.dims)}, got {sorted(values)}")
        for k, v in values.items():
            if v not in self.dims[k].options:
                raise ValueError(f"{what}: {k}={v!r} is not one of {list(self.dims[k].options)}")

    def encode(self, arch: dict[str, Any]) -> list[np.ndarray]:
        parts = [self.cells.encode(arch["cell"])]
        for k, c in self.dims.items():
            v = np.zeros(len(c))
            v[c.index(arch["hp"][k])] = 1.0
            parts.append(v)
        return parts


class SearchSpace:
    """Sample, mutate, encode and resolve joint candidates.

    ``arch`` is one architecture space, or a list of them for a multi-task search (one per
    task, the candidate's arch part then being ``{"tasks": [arch_0, ...]}``). ``hw`` is an
    accelerator template, an accelerator set, a multi-accelerator (one sub-accelerator per
    task), an :class:`HwSpace`, or None for an architecture-only search.

    The architecture part of each task is its cell genotype plus every choice of its space;
    the accelerator part is the hardware space's genotype (see :mod:`nasco.space._hw`).
    """

    def __init__(self, arch: ArchSpace | Sequence[ArchSpace], hw: Any = None) -> None:
        self.multi_task = not isinstance(arch, ArchSpace)
        archs = [arch] if isinstance(arch, ArchSpace) else list(arch)
        if not archs or not all(isinstance(a, ArchSpace) for a in archs):
            raise TypeError("arch must be an ArchSpace or a non-empty list of them")
        self.hw_spec = hw if not isinstance(hw, HwSpace) else getattr(hw, "spec", None)
        self.hw: HwSpace | None = hw_space(hw) if hw is not None else None
        if isinstance(self.hw, MultiAcceleratorSpace) and not self.multi_task:
            if self.hw.subs != 1:
                raise ValueError(f"'{self.hw.name}' has {self.hw.subs} sub-accelerators, one per task: give "
                                 f"{self.hw.subs} architecture spaces")
            self.multi_task = True
        subs = self.hw.subs if self.hw is not None else len(archs)
        if self.multi_task and subs != len(archs):
            raise ValueError(f"{len(archs)} tasks need {len(archs)} sub-accelerators; '{self.hw.name}' has "
                             f"{subs}" + ("" if isinstance(self.hw, MultiAcceleratorSpace)
                                          else " (use a multi_accelerator for several tasks)"))
        self.tasks = [ArchPart(a) for a in archs]
        self.hw_dims = self.hw.dims() if self.hw is not None else {}

    # ------------------------------------------------------------------ task 0's parts
    # A single-task space is used through these throughout the code base.
    @property
    def arch_spec(self) -> ArchSpace:
        return self.tasks[0].spec

    @property
    def arch_specs(self) -> tuple[ArchSpace, ...]:
        return tuple(t.spec for t in self.tasks)

    @property
    def cells(self) -> CellFamily:
        return self.tasks[0].cells

    @property
    def arch_dims(self) -> dict[str, Choice]:
        return self.tasks[0].dims

    @property
    def _index(self) -> dict[str, int] | None:
        return self.tasks[0]._index

    # ------------------------------------------------------------------ building
    def _arch(self, parts: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
        """The arch genotype of (cell, hp) per task."""
        archs = [t.genotype(cell, hp) for t, (cell, hp) in zip(self.tasks, parts)]
        return {TASKS_KEY: archs} if self.multi_task else archs[0]

    def task_archs(self, cand: Candidate) -> list[dict[str, Any]]:
        """The candidate's architecture genotype of each task (one for a single-task space)."""
        arch = cand.arch
        if not self.multi_task:
            return [arch]
        tasks = arch.get(TASKS_KEY) if isinstance(arch, dict) else None
        if not isinstance(tasks, list) or len(tasks) != len(self.tasks):
            raise ValueError(f"arch: expected {{'{TASKS_KEY}': [...]}} with {len(self.tasks)} genotypes")
        return tasks

    def make(self, cell: dict[str, Any] | None = None, hp: dict[str, Any] | None = None,
             hw: dict[str, Any] | None = None, *, tasks: Sequence[tuple[dict, dict | None]] | None = None
             ) -> Candidate:
        """A candidate from its parts; missing choices take their defaults.

        A multi-task space takes ``tasks=[(cell, hp), ...]`` instead of ``cell`` and ``hp``.
        """
        if tasks is None:
            if self.multi_task:
                raise ValueError("a multi-task space builds candidates from tasks=[(cell, hp), ...]")
            tasks = [(cell, hp)]
        if len(tasks) != len(self.tasks):
            raise ValueError(f"expected {len(self.tasks)} (cell, hp) pairs, got {len(tasks)}")
        parts = [(c, {k: (h or {}).get(k, ch.default) for k, ch in t.dims.items()})
                 for t, (c, h) in zip(self.tasks, tasks)]
        hwv = self.hw.complete(hw) if self.hw is not None else {}
        cand = Candidate.make(self._arch(parts), hwv)
        self.check(cand)
        return cand

    def from_index(self, index: int, hw: dict[str, Any] | None = None) -> Candidate:
        """The NAS-Bench-201 cell with this official index."""
        part = self.tasks[0]
        if self.multi_task or part._index is None:
            raise ValueError(f"space '{part.spec.name}' has no official index")
        if part._by_index is None:
            part._by_index = {v: k for k, v in part._index.items()}
        by_index = part._by_index
        if index not in by_index:
            raise ValueError(f"index {index} is not in 0..{len(by_index) - 1}")
        return self.make({"edges": list(arch_str_ops(by_index[index]))}, hw=hw)

    # ------------------------------------------------------------------ sampling
    @staticmethod
    def _pick(dims: dict[str, Choice], rng: np.random.Generator) -> dict[str, Any]:
        return pick(dims, rng)

    def sample(self, rng: np.random.Generator) -> Candidate:
        parts = [t.sample(rng) for t in self.tasks]
        hw = self.hw.sample(rng) if self.hw is not None else {}
        return Candidate.make(self._arch(parts), hw)

    def mutate(self, cand: Candidate, rng: np.random.Generator) -> Candidate:
        """Change one thing: a cell edge or an architecture choice of one task, or one move of
        the accelerator (a choice, a member switch, a sub-accelerator's share of the budget).

        Each part is drawn in proportion to how many things it holds (a cell counts as its
        number of edges, the accelerator as its number of moves), so every task's
        architecture and the accelerator all move.
        """
        parts = [(a["cell"], dict(a["hp"])) for a in self.task_archs(cand)]
        hw = cand.hw
        weights = []
        for cell, _hp in parts:
            weights.append(sum(len(v) for v in cell.values()))
        for t in self.tasks:
            weights.append(len(t.dims))
        weights.append(self.hw.moves(hw) if self.hw is not None else 0)
        # Order: cells of every task, choices of every task, accelerator (for one task this
        # is the order and the draws of the single-task space before multi-task search).
        w = np.array(weights, dtype=float)
        part = int(rng.choice(len(w), p=w / w.sum()))
        n = len(self.tasks)

        def mutate_cell(i: int) -> None:
            cell, hp = parts[i]
            parts[i] = (self.tasks[i].cells.mutate(cell, rng), hp)

        def fallback() -> int:
            return int(rng.integers(n)) if n > 1 else 0

        if part < n:
            mutate_cell(part)
        elif part < 2 * n:
            i = part - n
            dims, hp = self.tasks[i].dims, parts[i][1]
            movable = [k for k, c in dims.items() if len(c) > 1]
            if not movable:
                mutate_cell(i)
            else:
                key = movable[int(rng.integers(len(movable)))]
                others = [o for o in dims[key].options if o != hp[key]]
                hp[key] = others[int(rng.integers(len(others)))]
        else:
            new = self.hw.mutate(hw, rng) if self.hw is not None else None
            if new is None:
                mutate_cell(fallback())
            else:
                hw = new
        return Candidate.make(self._arch(parts), hw)

    # ------------------------------------------------------------------ inspection
    def check(self, cand: Candidate) -> None:
        """Raise ValueError if ``cand`` does not belong to this space."""
        for i, (t, arch) in enumerate(zip(self.tasks, self.task_archs(cand))):
            t.check(arch, f"arch.{TASKS_KEY}[{i}]" if self.multi_task else "arch")
        if self.hw is not None:
            self.hw.check(cand.hw)
        elif cand.hw:
            raise ValueError(f"hw: expected no choices (no accelerator), got {sorted(cand.hw)}")

    def size(self) -> SpaceSize:
        cells = math.prod(t.cells.count() for t in self.tasks)
        arch = math.prod(_product(t.dims) for t in self.tasks)
        return SpaceSize(cells, arch, self.hw.size() if self.hw is not None else 1)

    def encode(self, cand: Candidate) -> np.ndarray:
        """One-hot encoding of every task's cell and choices, then of the accelerator (for
        predictors); the same length for every candidate of the space."""
        parts: list[np.ndarray] = []
        for t, arch in zip(self.tasks, self.task_archs(cand)):
            parts += t.encode(arch)
        if self.hw is not None:
            parts.append(self.hw.encode(cand.hw))
        return np.concatenate(parts)

    def resolve(self, cand: Candidate) -> tuple[Any, Any]:
        """The specs with every choice fixed to the candidate's values.

        Single-task: ``(ArchSpace, AcceleratorTemplate | None)``. Multi-task: a tuple of
        ArchSpaces and a tuple of templates, one per task and sub-accelerator.
        """
        archs = tuple(resolve(t.spec, a["hp"]) for t, a in zip(self.tasks, self.task_archs(cand)))
        hws = self.hw.resolve(cand.hw) if self.hw is not None else None
        if self.multi_task:
            return archs, hws
        return archs[0], (hws[0] if hws is not None else None)

    def resolve_hw(self, cand: Candidate) -> tuple[AcceleratorTemplate, ...]:
        """One resolved template per sub-accelerator (per task)."""
        if self.hw is None:
            raise ValueError("this space has no accelerator")
        return self.hw.resolve(cand.hw)

    def describe(self) -> dict[str, Any]:
        size = self.size()
        hw_desc = self.hw.describe() if self.hw is not None else None
        out = {
            "arch": "+".join(t.spec.name for t in self.tasks),
            "hw": self.hw.name if self.hw is not None else None,
            "cells": size.cells,
            "arch_choices": ({f"{TASKS_KEY}[{i}].{k}": list(c.options) for i, t in enumerate(self.tasks)
                              for k, c in t.dims.items()} if self.multi_task
                             else {k: list(c.options) for k, c in self.arch_dims.items()}),
            "hw_choices": hw_desc["choices"] if hw_desc is not None else {},
            "size": {"cells": size.cells, "arch": size.arch, "hw": size.hw_choices, "total": size.total},
        }
        if self.multi_task:
            out["tasks"] = [t.spec.name for t in self.tasks]
        if hw_desc is not None and hw_desc["kind"] != "accelerator":
            out["hw_kind"] = hw_desc["kind"]
        return out
