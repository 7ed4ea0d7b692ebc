"""The joint search space: an architecture space times an accelerator template."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nasco.dsl import AcceleratorTemplate, ArchSpace, Choice, resolve, search_dimensions
from nasco.space._candidate import Candidate
from nasco.space._cells import CellFamily, DenseCell, cell_family
from nasco.space._nb201 import arch_str_ops, index_table_of

__all__ = ["SearchSpace", "SpaceSize"]


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


class SearchSpace:
    """Sample, mutate, encode and resolve joint candidates.

    The architecture part is the cell genotype plus every choice of the architecture
    space; the accelerator part is every choice of the template. ``hw`` may be None for
    an architecture-only search.
    """

    def __init__(self, arch: ArchSpace, hw: AcceleratorTemplate | None = None) -> None:
        self.arch_spec = arch
        self.hw_spec = hw
        self.cells: CellFamily = cell_family(arch.cell)
        self.arch_dims = search_dimensions(arch)
        self.hw_dims = search_dimensions(hw) if hw is not None else {}
        self._index: dict[str, int] | None = None
        self._by_index: dict[int, str] | None = None
        if arch.official_index:
            self._index = index_table_of(arch)

    # ------------------------------------------------------------------ building
    def _arch(self, cell: dict[str, Any], hp: dict[str, Any]) -> dict[str, Any]:
        if isinstance(cell, dict) and set(cell) == {"normal", "reduce"}:
            cell = self.cells.canonical(cell)
        arch: dict[str, Any] = {"cell": cell, "hp": hp}
        if isinstance(self.cells, DenseCell) and self._index is not None:
            s = self.cells.arch_str(cell)
            arch["arch_str"] = s
            arch["index"] = self._index.get(s)
        return arch

    def make(self, cell: dict[str, Any], hp: dict[str, Any] | None = None,
             hw: dict[str, Any] | None = None) -> Candidate:
        """A candidate from its parts; missing choices take their defaults."""
        hp = {k: (hp or {}).get(k, c.default) for k, c in self.arch_dims.items()}
        hwv = {k: (hw or {}).get(k, c.default) for k, c in self.hw_dims.items()}
        cand = Candidate.make(self._arch(cell, hp), hwv)
        self.check(cand)
        return cand

    def from_index(self, index: int, hw: dict[str, Any] | None = None) -> Candidate:
        """The NAS-Bench-201 cell with this official index."""
        if self._index is None:
            raise ValueError(f"space '{self.arch_spec.name}' has no official index")
        if self._by_index is None:
            self._by_index = {v: k for k, v in self._index.items()}
        by_index = self._by_index
        if index not in by_index:
            raise ValueError(f"index {index} is not in 0..{len(by_index) - 1}")
        return self.make({"edges": list(arch_str_ops(by_index[index]))}, hw=hw)

    # ------------------------------------------------------------------ sampling
    @staticmethod
    def _pick(dims: dict[str, Choice], rng: np.random.Generator) -> dict[str, Any]:
        return {k: c.options[int(rng.integers(len(c)))] for k, c in dims.items()}

    def sample(self, rng: np.random.Generator) -> Candidate:
        cell = self.cells.sample(rng)
        hp = self._pick(self.arch_dims, rng)
        hw = self._pick(self.hw_dims, rng)
        return Candidate.make(self._arch(cell, hp), hw)

    def mutate(self, cand: Candidate, rng: np.random.Generator) -> Candidate:
        """Change one thing: a cell edge, an architecture choice or an accelerator choice.

        Each part is drawn in proportion to how many things it holds (the cell counts as
        its number of edges), so both the architecture and the accelerator move.
        """
        arch, hw = cand.arch, cand.hw
        cell, hp = arch["cell"], dict(arch["hp"])
        n_cell = sum(len(v) for v in cell.values())
        weights = np.array([n_cell, len(self.arch_dims), len(self.hw_dims)], dtype=float)
        part = int(rng.choice(3, p=weights / weights.sum()))
        if part == 0:
            cell = self.cells.mutate(cell, rng)
        else:
            dims, values = (self.arch_dims, hp) if part == 1 else (self.hw_dims, hw)
            movable = [k for k, c in dims.items() if len(c) > 1]
            if not movable:
                cell = self.cells.mutate(cell, rng)
            else:
                key = movable[int(rng.integers(len(movable)))]
                others = [o for o in dims[key].options if o != values[key]]
                values[key] = others[int(rng.integers(len(others)))]
        return Candidate.make(self._arch(cell, hp), hw)

    # ------------------------------------------------------------------ inspection
    def check(self, cand: Candidate) -> None:
        """Raise ValueError if ``cand`` does not belong to this space."""
        arch, hw = cand.arch, cand.hw
        self.cells.check(arch.get("cell"))
        for dims, values, what in ((self.arch_dims, arch.get("hp", {}), "arch"), (self.hw_dims, hw, "hw")):
            if set(values) != set(dims):
                raise ValueError(f"{what}: expected choices {sorted(dims)}, got {sorted(values)}")
            for k, v in values.items():
                if v not in dims[k].options:
                    raise ValueError(f"{what}: {k}={v!r} is not one of {list(dims[k].options)}")

    def size(self) -> SpaceSize:
        return SpaceSize(self.cells.count(), _product(self.arch_dims), _product(self.hw_dims))

    def encode(self, cand: Candidate) -> np.ndarray:
        """One-hot encoding of the cell and of every choice (for predictors)."""
        arch, hw = cand.arch, cand.hw
        parts = [self.cells.encode(arch["cell"])]
        for dims, values in ((self.arch_dims, arch["hp"]), (self.hw_dims, hw)):
            for k, c in dims.items():
                v = np.zeros(len(c))
                v[c.index(values[k])] = 1.0
                parts.append(v)
        return np.concatenate(parts)

    def resolve(self, cand: Candidate) -> tuple[ArchSpace, AcceleratorTemplate | None]:
        """The specs with every choice fixed to the candidate's values."""
        arch = resolve(self.arch_spec, cand.arch["hp"])
        hw = resolve(self.hw_spec, cand.hw) if self.hw_spec is not None else None
        return arch, hw

    def describe(self) -> dict[str, Any]:
        size = self.size()
        return {
            "arch": self.arch_spec.name,
            "hw": self.hw_spec.name if self.hw_spec is not None else None,
            "cells": size.cells,
            "arch_choices": {k: list(c.options) for k, c in self.arch_dims.items()},
            "hw_choices": {k: list(c.options) for k, c in self.hw_dims.items()},
            "size": {"cells": size.cells, "arch": size.arch, "hw": size.hw_choices, "total": size.total},
        }


