"""Accelerator sets and heterogeneous multi-accelerators: DSL files that name templates.

``kind: accelerator_set`` lists member templates (by built-in name or path, relative to the
set's file); a candidate picks one member and that member's own choices. ``kind:
multi_accelerator`` holds k sub-accelerators, one per task, each drawn from its members and
all sharing one budget of PEs and of DRAM bandwidth (NASAIC: Yang et al., "Co-exploration of
neural architectures and heterogeneous ASIC accelerator designs targeting multiple tasks",
DAC 2020). A member may itself be a set; its templates join the list.

The classes here hold data only. Members are files of their own, so the loader loads (and
checks) them after the set itself is built: :func:`nasco.dsl.load_file` reads the members,
applies the ``--set`` overrides that address them and attaches the templates with
:meth:`AcceleratorSet.linked` (which templates built in Python use too). The templates are
not fields: a set compares and serialises by what its file says.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nasco.dsl._build import spec_field as F
from nasco.dsl._choice import Choice
from nasco.dsl._errors import SpecError
from nasco.dsl._specs import AcceleratorTemplate, Constraint, _check_specs, _limits

__all__ = ["AcceleratorSet", "BudgetSpec", "MultiAccelerator", "TEMPLATE_KEY", "min_usage", "pe_usage",
           "smallest_partitions"]

# The hw genotype key (and --set key) that picks a member template.
TEMPLATE_KEY = "template"


def _options(value: Any) -> tuple:
    return value.options if isinstance(value, Choice) else (value,)


def pe_usage(template: AcceleratorTemplate, values: Mapping[str, Any] | None = None) -> tuple[int, float]:
    """(PEs, DRAM bytes/cycle) a template instance takes: choices from ``values``, else fixed."""
    values = values or {}

    def pick(key: str, v: Any) -> Any:
        if isinstance(v, Choice):
            return values.get(key, v.default)
        return v

    rows = pick("pe_array.rows", template.pe_array.rows)
    cols = pick("pe_array.cols", template.pe_array.cols)
    bw = pick("bandwidth.dram_bytes_per_cycle", template.bandwidth.dram_bytes_per_cycle)
    return int(rows) * int(cols), float(bw)


def min_usage(template: AcceleratorTemplate) -> tuple[int, float]:
    """(PEs, bytes/cycle) of the template's smallest array at its least bandwidth (the two
    are separate choices, so one configuration takes both minima)."""
    rows, cols = _options(template.pe_array.rows), _options(template.pe_array.cols)
    return min(rows) * min(cols), float(min(_options(template.bandwidth.dram_bytes_per_cycle)))


def smallest_partitions(mins: Mapping[str, tuple[int, float]],
                        k: int) -> dict[tuple[int, float], tuple[str, ...]]:
    """The Pareto-smallest (PEs, bytes/cycle) totals of ``k`` sub-accelerators, each on the
    smallest configuration of some member (``mins``: member -> :func:`min_usage`), with the
    members that make each total. A budget admits a partition iff it holds one of these."""
    front: dict[tuple[int, float], tuple[str, ...]] = {(0, 0.0): ()}
    for _ in range(k):
        grown: dict[tuple[int, float], tuple[str, ...]] = {}
        for (p, b), names in front.items():
            for n, (mp, mb) in mins.items():
                grown.setdefault((p + mp, round(b + mb, 9)), names + (n,))
        front = {u: names for u, names in grown.items()
                 if not any(v != u and v[0] <= u[0] and v[1] <= u[1] for v in grown)}
    return front


# ------------------------------------------------------------------ the kinds
@dataclass(frozen=True, kw_only=True)
class AcceleratorSet:
    """A set of accelerator templates; a candidate picks one member and its choices."""

    schema: int = F(doc="DSL schema version")
    kind: str = F(doc="file kind", enum=("accelerator_set",))
    name: str = F()
    description: str = F("")
    members: tuple[str, ...] = F(
        doc="member templates (or sets): built-in names or paths relative to this file")
    default: str | None = F(None, doc="the member taken where nothing picks one (default: the first)")
    specs: dict[str, Constraint] | None = F(
        None, doc="design specs for every member; when given they replace the members' own")

    # The keys of the set's own file; other ``--set`` overrides address its members.
    OWN_KEYS = ("schema", "kind", "name", "description", "members", "default", "specs")

    def _check(self, path: tuple) -> None:
        if not self.members:
            raise SpecError("at least one member template", "an empty list", path=path + ("members",))
        _check_specs(self.specs, path)

    # ---------------------------------------------------------------- members
    def linked(self, templates: Mapping[str, AcceleratorTemplate]) -> AcceleratorSet:
        """A copy holding its member templates (name -> template, in order)."""
        templates = dict(templates)
        if not templates:
            raise SpecError("at least one member template", "none", path=("members",))
        for name, t in templates.items():
            if not isinstance(t, AcceleratorTemplate) or t.name != name:
                raise TypeError(f"member {name!r} must be an AcceleratorTemplate named {name!r}")
        new = dataclasses.replace(self)
        for attr in ("source",):
            if hasattr(self, attr):
                object.__setattr__(new, attr, getattr(self, attr))
        object.__setattr__(new, "_templates", templates)
        new._check_linked()
        return new

    def _check_linked(self) -> None:
        pass

    @property
    def templates(self) -> dict[str, AcceleratorTemplate]:
        """Member name -> its template as listed (choices open, its own specs)."""
        t = self.__dict__.get("_templates")
        if t is None:
            raise RuntimeError(f"{self.kind} '{self.name}' has no member templates linked; load it with "
                               "nasco.dsl.load_file, or call .linked(templates)")
        return dict(t)

    @property
    def default_member(self) -> str:
        names = list(self.templates)
        return self.default if self.default in names else names[0]

    def member(self, name: str) -> AcceleratorTemplate:
        """The member template with the set's specs applied (choices still open)."""
        templates = self.templates
        if name not in templates:
            raise KeyError(f"'{name}' is not a member of {self.name} ({', '.join(templates)})")
        t = templates[name]
        if self.specs is None:
            return t
        new = dataclasses.replace(t, specs=dict(self.specs))
        if hasattr(t, "source"):
            object.__setattr__(new, "source", t.source)
        return new

    def limits(self) -> dict[str, float]:
        """The set's specs in base units (empty when each member keeps its own)."""
        return _limits(self.specs)


@dataclass(frozen=True, kw_only=True)
class BudgetSpec:
    pes: int = F(doc="PEs of all sub-accelerators together (sum of rows x cols)", min=1, max=16 * 4096 * 4096,
                 why="at most 16 sub-accelerators of 4096 x 4096 PEs each")
    dram_bytes_per_cycle: float = F(doc="DRAM bandwidth of all sub-accelerators together (sum)", min=1e-3,
                                    max=16 * 1e6, why="at most 16 sub-accelerators of 1e6 bytes/cycle each")


@dataclass(frozen=True, kw_only=True)
class MultiAccelerator(AcceleratorSet):
    """k sub-accelerators, one per task, drawn from the members, sharing one budget.

    The system's latency is that of the slowest sub-accelerator (they run in parallel), its
    energy and area are the sums; ``specs`` constrain those totals (the members' own specs are
    not used). The budget counts PEs as rows x cols and bandwidth in bytes per cycle of each
    sub-accelerator's own clock.
    """

    kind: str = F(doc="file kind", enum=("multi_accelerator",))
    sub_accelerators: int = F(doc="k: sub-accelerators, one per task", min=1, max=16)
    budget: BudgetSpec = F(doc="what the sub-accelerators share")
    specs: dict[str, Constraint] | None = F(
        None, doc="design specs of the whole system: latency of the slowest, energy and area summed")

    OWN_KEYS = AcceleratorSet.OWN_KEYS + ("sub_accelerators", "budget")

    def _check_linked(self) -> None:
        """Some partition (k sub-accelerators, each on some member's smallest configuration)
        must fit the budget in PEs and bandwidth at once, or no candidate exists."""
        k = self.sub_accelerators
        usage = {n: min_usage(t) for n, t in self.templates.items()}
        pes_name = min(usage, key=lambda n: usage[n][0])
        bw_name = min(usage, key=lambda n: usage[n][1])
        pes, bw = usage[pes_name][0], usage[bw_name][1]
        if k * pes > self.budget.pes:
            raise SpecError(
                f"at least {k * pes} PEs (the smallest partition: {k} sub-accelerators x {pes} PEs of "
                f"'{pes_name}')",
                self.budget.pes, path=("budget", "pes"),
                hint=f"raise budget.pes to {k * pes} or more, or list members with smaller PE arrays")
        if k * bw > self.budget.dram_bytes_per_cycle:
            raise SpecError(
                f"at least {k * bw:g} bytes/cycle (the smallest partition: {k} sub-accelerators x {bw:g} "
                f"bytes/cycle of '{bw_name}')", self.budget.dram_bytes_per_cycle,
                path=("budget", "dram_bytes_per_cycle"),
                hint=f"raise budget.dram_bytes_per_cycle to {k * bw:g} or more, or list members with less "
                     "bandwidth")
        front = smallest_partitions(usage, k)
        max_p, max_b = self.budget.pes, self.budget.dram_bytes_per_cycle
        if not any(p <= max_p and b <= max_b + 1e-9 for p, b in front):
            need_p = min((p for p, b in front if b <= max_b + 1e-9), default=None)
            need_b = min((b for p, b in front if p <= max_p), default=None)
            ways = [f"{need_p} PEs within {max_b:g} bytes/cycle"] if need_p is not None else []
            ways += [f"{need_b:g} bytes/cycle within {max_p} PEs"] if need_b is not None else []
            fixes = ([f"budget.pes to {need_p}"] if need_p is not None else []) + (
                [f"budget.dram_bytes_per_cycle to {need_b:g}"] if need_b is not None else [])
            raise SpecError(
                f"a budget that fits {k} sub-accelerators in PEs and bandwidth at once (the smallest "
                f"partitions take {' or '.join(ways)})", f"{max_p} PEs and {max_b:g} bytes/cycle",
                path=("budget",), hint="raise " + " or ".join(fixes))

    def member(self, name: str) -> AcceleratorTemplate:
        """The member template without specs (the system's specs apply to the totals)."""
        templates = self.templates
        if name not in templates:
            raise KeyError(f"'{name}' is not a member of {self.name} ({', '.join(templates)})")
        t = templates[name]
        new = dataclasses.replace(t, specs=None)
        if hasattr(t, "source"):
            object.__setattr__(new, "source", t.source)
        return new
