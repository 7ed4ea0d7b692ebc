"""Candidates as named categorical decision variables, for library searchers (pymoo, Optuna).

Every genotype of a :class:`~nasco.space.SearchSpace` is a set of categorical choices:

* a dense (NAS-Bench-201) cell: one op per edge;
* a DARTS cell: per node, which ``k`` inputs it keeps (one variable over the input
  combinations) and one op per kept input, for the normal and the reduction cell;
* every architecture choice (``hp``) and every accelerator choice;
* a template set: the member (``hw.template``), then that member's own choices, named
  ``hw.<member>.<key>`` so that a variable always has the same options. Only the picked
  member's variables are *active*; the others are carried (pymoo) or never asked (Optuna).
* a multi-accelerator: the same per sub-accelerator (``hw.sub<i>.``...), then a
  deterministic repair that keeps the shared PE and bandwidth budget (see
  :meth:`SpaceCodec._repair_multi`).

:meth:`SpaceCodec.decode` builds a candidate by calling ``pick(name, options)`` for each
active variable in a fixed order (define-by-run, as Optuna's ``suggest_categorical``), and
:meth:`SpaceCodec.encode` is its inverse on the active variables, so every decoded
candidate is valid and ``decode(encode(c)) == c`` for every candidate of the space.
"""
from __future__ import annotations

import itertools
import math
from typing import Any, Callable

from nasco.dsl import TEMPLATE_KEY
from nasco.space import Candidate, SearchSpace
from nasco.space._cells import DartsCells, DenseCell
from nasco.space._hw import SUBS_KEY, MultiAcceleratorSpace, TemplateSetSpace, TemplateSpace

__all__ = ["Pick", "SpaceCodec"]

Pick = Callable[[str, tuple], Any]

# The keys that decide how much of a multi-accelerator's budget a sub-accelerator takes
# (nasco.dsl._hwsets.pe_usage).
_USAGE_KEYS = ("pe_array.rows", "pe_array.cols", "bandwidth.dram_bytes_per_cycle")


class SpaceCodec:
    """Named categorical variables of a search space; see the module docstring."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.variables: dict[str, tuple] = {}
        self._declare()

    # ---------------------------------------------------------------- declaration
    def _task_prefix(self, i: int) -> str:
        return f"t{i}." if self.space.multi_task else ""

    def _declare(self) -> None:
        out = self.variables
        for i, task in enumerate(self.space.tasks):
            p = self._task_prefix(i)
            cells = task.cells
            if isinstance(cells, DenseCell):
                for e, (dst, src) in enumerate(cells.edges):
                    out[f"{p}cell.{dst}<-{src}"] = tuple(cells.ops)
            elif isinstance(cells, DartsCells):
                for kind in cells.KINDS:
                    for n in range(cells.spec.nodes):
                        out[f"{p}{kind}.n{n}.inputs"] = tuple(
                            "-".join(map(str, c)) for c in itertools.combinations(range(2 + n), cells.k))
                        for s in range(cells.k):
                            out[f"{p}{kind}.n{n}.op{s}"] = tuple(cells.edge_ops)
            else:  # pragma: no cover - a new cell family needs its own variables
                raise TypeError(f"no decision variables for cell family {type(cells).__name__}")
            for k, c in task.dims.items():
                out[f"{p}hp.{k}"] = tuple(c.options)
        hw = self.space.hw
        if hw is None:
            return
        if isinstance(hw, MultiAcceleratorSpace):
            for i in range(hw.subs):
                self._declare_set(hw.pool, f"hw.sub{i}.")
        elif isinstance(hw, TemplateSetSpace):
            self._declare_set(hw, "hw.")
        elif isinstance(hw, TemplateSpace):
            for k, c in hw.dims().items():
                out[f"hw.{k}"] = tuple(c.options)
        else:  # pragma: no cover - a new hardware space needs its own variables
            raise TypeError(f"no decision variables for hardware space {type(hw).__name__}")

    def _declare_set(self, hw: TemplateSetSpace, p: str) -> None:
        self.variables[f"{p}{TEMPLATE_KEY}"] = tuple(hw.names)
        for name, member in hw.members.items():
            for k, c in member.dims().items():
                self.variables[f"{p}{name}.{k}"] = tuple(c.options)

    # ---------------------------------------------------------------- decode
    def decode(self, pick: Pick) -> Candidate:
        """The candidate whose active variables take the values ``pick(name, options)``
        returns (each must be one of ``options``)."""

        def get(name: str) -> Any:
            options = self.variables[name]
            value = pick(name, options)
            if value not in options:
                raise ValueError(f"{name}: {value!r} is not one of {list(options)}")
            return value

        parts = []
        for i, task in enumerate(self.space.tasks):
            p = self._task_prefix(i)
            cells = task.cells
            if isinstance(cells, DenseCell):
                cell: dict[str, Any] = {"edges": [get(f"{p}cell.{dst}<-{src}") for dst, src in cells.edges]}
            else:
                cell = {}
                for kind in cells.KINDS:
                    edges = []
                    for n in range(cells.spec.nodes):
                        inputs = [int(j) for j in get(f"{p}{kind}.n{n}.inputs").split("-")]
                        edges += [[get(f"{p}{kind}.n{n}.op{s}"), j] for s, j in enumerate(inputs)]
                    cell[kind] = edges
                cell = cells.canonical(cell)
            hp = {k: get(f"{p}hp.{k}") for k in task.dims}
            parts.append((cell, hp))
        hw_space = self.space.hw
        hw: dict[str, Any] = {}
        if isinstance(hw_space, MultiAcceleratorSpace):
            subs = [self._decode_set(hw_space.pool, f"hw.sub{i}.", get) for i in range(hw_space.subs)]
            hw = {SUBS_KEY: self._repair_multi(hw_space, subs)}
        elif isinstance(hw_space, TemplateSetSpace):
            hw = self._decode_set(hw_space, "hw.", get)
        elif isinstance(hw_space, TemplateSpace):
            hw = {k: get(f"hw.{k}") for k in hw_space.dims()}
        cand = Candidate.make(self.space._arch(parts), hw)
        self.space.check(cand)
        return cand

    @staticmethod
    def _decode_set(hw: TemplateSetSpace, p: str, get: Callable[[str], Any]) -> dict[str, Any]:
        name = get(f"{p}{TEMPLATE_KEY}")
        return {TEMPLATE_KEY: name, **{k: get(f"{p}{name}.{k}") for k in hw.members[name].dims()}}

    @staticmethod
    def _repair_multi(hw: MultiAcceleratorSpace, subs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The sub-accelerators moved into the shared budget, deterministically and as
        little as possible: in order, each keeps its member if that member's smallest
        configuration leaves room for the rest (else takes the first member that does),
        and keeps its array and bandwidth if they fit (else takes the fitting combination
        closest to them in log scale). Genotypes within budget come back unchanged."""
        if hw.within(*hw.total({SUBS_KEY: subs})):
            return subs
        out = []
        left_p, left_b = float(hw.max_pes), float(hw.max_bw)
        for i, sub in enumerate(subs):
            rest = hw.subs - i - 1

            def fits(p: float, b: float, lp: float = left_p, lb: float = left_b, r: int = rest) -> bool:
                return hw._room(p, b, lp, lb, r)

            name = sub[TEMPLATE_KEY]
            if not fits(*hw._min[name]):
                name = next(n for n in hw.pool.names if fits(*hw._min[n]))
                sub = {TEMPLATE_KEY: name, **hw.pool.members[name].defaults()}
            member = hw.pool.members[name]
            if not fits(*hw.usage(sub)):
                d = member.dims()
                keys = [k for k in _USAGE_KEYS if k in d]
                best: tuple[float, dict[str, Any]] | None = None
                for combo in itertools.product(*(d[k].options for k in keys)):
                    trial = {**sub, **dict(zip(keys, combo))}
                    if not fits(*hw.usage(trial)):
                        continue
                    dist = sum(abs(math.log(float(v) / float(sub[k]))) for k, v in zip(keys, combo))
                    if best is None or dist < best[0]:
                        best = (dist, trial)
                assert best is not None, "the member's smallest configuration fits"
                sub = best[1]
            p, b = hw.usage(sub)
            left_p, left_b = left_p - p, left_b - b
            out.append(sub)
        return out

    # ---------------------------------------------------------------- encode
    def encode(self, cand: Candidate) -> dict[str, Any]:
        """The active variables' values of ``cand`` (the inverse of :meth:`decode`)."""
        out: dict[str, Any] = {}
        for i, (task, arch) in enumerate(zip(self.space.tasks, self.space.task_archs(cand))):
            p = self._task_prefix(i)
            cells = task.cells
            if isinstance(cells, DenseCell):
                for (dst, src), op in zip(cells.edges, arch["cell"]["edges"]):
                    out[f"{p}cell.{dst}<-{src}"] = op
            else:
                for kind in cells.KINDS:
                    edges = arch["cell"][kind]
                    for n in range(cells.spec.nodes):
                        node = sorted(edges[n * cells.k:(n + 1) * cells.k], key=lambda e: (e[1], e[0]))
                        out[f"{p}{kind}.n{n}.inputs"] = "-".join(str(e[1]) for e in node)
                        for s, e in enumerate(node):
                            out[f"{p}{kind}.n{n}.op{s}"] = e[0]
            for k in task.dims:
                out[f"{p}hp.{k}"] = arch["hp"][k]
        hw_space, hw = self.space.hw, cand.hw
        if isinstance(hw_space, MultiAcceleratorSpace):
            for i, sub in enumerate(hw[SUBS_KEY]):
                out.update(self._encode_set(sub, f"hw.sub{i}."))
        elif isinstance(hw_space, TemplateSetSpace):
            out.update(self._encode_set(hw, "hw."))
        elif isinstance(hw_space, TemplateSpace):
            out.update({f"hw.{k}": v for k, v in hw.items()})
        return out

    @staticmethod
    def _encode_set(sub: dict[str, Any], p: str) -> dict[str, Any]:
        name = sub[TEMPLATE_KEY]
        return {f"{p}{TEMPLATE_KEY}": name,
                **{f"{p}{name}.{k}": v for k, v in sub.items() if k != TEMPLATE_KEY}}
