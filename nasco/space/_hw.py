"""The hardware half of a search space: one protocol, three kinds of accelerator file.

* :class:`TemplateSpace`: one accelerator template; the genotype maps each of its choices
  (dotted key path) to a value, exactly as before template sets existed, so candidate ids
  of single-template runs are unchanged.
* :class:`TemplateSetSpace`: an ``accelerator_set``; the genotype is ``{"template": name}``
  plus that member's choices.
* :class:`MultiAcceleratorSpace`: a ``multi_accelerator``; the genotype is
  ``{"sub_accelerators": [g_0, ..., g_k-1]}``, one set genotype per task, and never exceeds
  the shared PE and bandwidth budget.

Every genotype is plain JSON data, so it becomes part of a :class:`Candidate`'s id.
"""
from __future__ import annotations

import itertools
import logging
import math
from collections import Counter
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

import numpy as np

from nasco.dsl import (
    TEMPLATE_KEY, AcceleratorSet, AcceleratorTemplate, Choice, MultiAccelerator, pe_usage, resolve,
    search_dimensions,
)
from nasco.dsl._hwsets import min_usage, smallest_partitions

__all__ = ["HwSpace", "MultiAcceleratorSpace", "SUBS_KEY", "TemplateSetSpace", "TemplateSpace", "hw_space",
           "pick"]

log = logging.getLogger("nasco.space")

SUBS_KEY = "sub_accelerators"
# Whole-genotype rejection sampling keeps a multi-accelerator's samples uniform over the
# partitions within budget; past this many tries (a tight budget) a sequential sampler that
# always fits takes over.
_REJECTION_TRIES = 200


def pick(dims: dict[str, Choice], rng: np.random.Generator) -> dict[str, Any]:
    """One uniformly drawn option per dimension, in the dimensions' order."""
    return {k: c.options[int(rng.integers(len(c)))] for k, c in dims.items()}


def _one_hot(choice: Choice, value: Any) -> np.ndarray:
    v = np.zeros(len(choice))
    if value in choice.options:
        v[choice.index(value)] = 1.0
    return v


@runtime_checkable
class HwSpace(Protocol):
    """What a search space needs from its hardware half."""

    name: str
    subs: int  # sub-accelerators = tasks the hardware serves (1 unless multi-accelerator)

    def dims(self) -> dict[str, Choice]:
        """Flat dimensions, in encoding order."""
        ...

    def templates(self) -> list[AcceleratorTemplate]:
        """Every template a genotype can pick (choices still open)."""
        ...

    def defaults(self) -> dict[str, Any]: ...

    def complete(self, hw: dict[str, Any] | None) -> dict[str, Any]:
        """``hw`` with the choices it leaves out at their defaults."""
        ...

    def sample(self, rng: np.random.Generator) -> dict[str, Any]: ...

    def moves(self, hw: dict[str, Any]) -> int:
        """How many things :meth:`mutate` can change (its weight against the architecture)."""
        ...

    def mutate(self, hw: dict[str, Any], rng: np.random.Generator) -> dict[str, Any] | None:
        """A genotype one step away, or None if nothing can move."""
        ...

    def check(self, hw: dict[str, Any]) -> None:
        """Raise ValueError if ``hw`` is not a genotype of this space."""
        ...

    def encode(self, hw: dict[str, Any]) -> np.ndarray: ...

    def resolve(self, hw: dict[str, Any]) -> tuple[AcceleratorTemplate, ...]:
        """One resolved template (no choices left) per sub-accelerator."""
        ...

    def size(self) -> int: ...

    def limits(self, hw: dict[str, Any] | None = None) -> dict[str, float]:
        """Design specs (base units) of ``hw``; without it, the loosest over the space."""
        ...

    def describe(self) -> dict[str, Any]: ...


# ---------------------------------------------------------------------- one template
class TemplateSpace:
    """The choices of one accelerator template."""

    subs = 1

    def __init__(self, template: AcceleratorTemplate) -> None:
        self.spec = template
        self.name = template.name
        self._dims = search_dimensions(template)

    def dims(self) -> dict[str, Choice]:
        return dict(self._dims)

    def templates(self) -> list[AcceleratorTemplate]:
        return [self.spec]

    def defaults(self) -> dict[str, Any]:
        return {k: c.default for k, c in self._dims.items()}

    def complete(self, hw: dict[str, Any] | None) -> dict[str, Any]:
        return {k: (hw or {}).get(k, c.default) for k, c in self._dims.items()}

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return pick(self._dims, rng)

    def moves(self, hw: dict[str, Any]) -> int:
        return len(self._dims)

    def movable(self) -> list[str]:
        return [k for k, c in self._dims.items() if len(c) > 1]

    def mutate(self, hw: dict[str, Any], rng: np.random.Generator) -> dict[str, Any] | None:
        movable = self.movable()
        if not movable:
            return None
        values = dict(hw)
        key = movable[int(rng.integers(len(movable)))]
        others = [o for o in self._dims[key].options if o != values[key]]
        values[key] = others[int(rng.integers(len(others)))]
        return values

    def check(self, hw: dict[str, Any]) -> None:
        if not isinstance(hw, dict):
            raise ValueError(f"hw: expected a mapping of choices, got {type(hw).__name__}")
        if set(hw) != set(self._dims):
            raise ValueError(f"hw: expected choices {sorted(self._dims)}, got {sorted(hw)}")
        for k, v in hw.items():
            if v not in self._dims[k].options:
                raise ValueError(f"hw: {k}={v!r} is not one of {list(self._dims[k].options)}")

    def encode(self, hw: dict[str, Any]) -> np.ndarray:
        parts = [_one_hot(c, hw[k]) for k, c in self._dims.items()]
        return np.concatenate(parts) if parts else np.zeros(0)

    def resolve(self, hw: dict[str, Any]) -> tuple[AcceleratorTemplate, ...]:
        return (resolve(self.spec, hw),)

    def size(self) -> int:
        return math.prod(len(c) for c in self._dims.values())

    def configurations(self) -> Iterator[dict[str, Any]]:
        """Every genotype of the template, each once: the product of its choices' options, the
        last dimension varying fastest; :meth:`size` of them."""
        keys = list(self._dims)
        for values in itertools.product(*(c.options for c in self._dims.values())):
            yield dict(zip(keys, values))

    def limits(self, hw: dict[str, Any] | None = None) -> dict[str, float]:
        return self.spec.limits()

    def choices(self) -> dict[str, list]:
        return {k: list(c.options) for k, c in self._dims.items()}

    def describe(self) -> dict[str, Any]:
        return {"kind": "accelerator", "name": self.name, "description": self.spec.description,
                "choices": self.choices(), "size": self.size(), "technology": self.spec.technology,
                "specs": {k: c.max for k, c in (self.spec.specs or {}).items()}}


# ---------------------------------------------------------------------- a template set
class TemplateSetSpace:
    """Pick a member template, then that member's choices."""

    subs = 1

    def __init__(self, spec: AcceleratorSet) -> None:
        self.spec = spec
        self.name = spec.name
        self.members: dict[str, TemplateSpace] = {n: TemplateSpace(spec.member(n)) for n in spec.templates}
        self.names = list(self.members)
        self.default_member = spec.default_member
        union: dict[str, list] = {}
        for m in self.members.values():
            for k, c in m.dims().items():
                opts = union.setdefault(k, [])
                opts.extend(o for o in c.options if o not in opts)
        self._union = {k: Choice(tuple(v), v[0]) for k, v in union.items()}
        self._which = Choice(tuple(self.names), self.default_member)

    def dims(self) -> dict[str, Choice]:
        """``template`` (one option per member) and the union of the members' choices."""
        return {TEMPLATE_KEY: self._which, **self._union}

    def templates(self) -> list[AcceleratorTemplate]:
        return [m.spec for m in self.members.values()]

    def _split(self, hw: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        values = dict(hw)
        return values.pop(TEMPLATE_KEY, None), values

    def defaults(self) -> dict[str, Any]:
        return {TEMPLATE_KEY: self.default_member, **self.members[self.default_member].defaults()}

    def complete(self, hw: dict[str, Any] | None) -> dict[str, Any]:
        name, values = self._split(hw or {})
        name = name if name is not None else self.default_member
        if name not in self.members:
            raise ValueError(f"hw: {TEMPLATE_KEY}={name!r} is not one of {self.names}")
        return {TEMPLATE_KEY: name, **self.members[name].complete(values)}

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        name = self.names[int(rng.integers(len(self.names)))]
        return {TEMPLATE_KEY: name, **self.members[name].sample(rng)}

    def moves(self, hw: dict[str, Any]) -> int:
        name, _ = self._split(hw)
        return (len(self.names) > 1) + self.members[name].moves(hw)

    def mutate(self, hw: dict[str, Any], rng: np.random.Generator) -> dict[str, Any] | None:
        """Switch to another member (with freshly sampled choices), or change one choice of
        the current member; each of these moves is equally likely."""
        name, values = self._split(hw)
        member = self.members[name]
        switch = len(self.names) > 1
        n = switch + len(member.movable())
        if n == 0:
            return None
        if switch and int(rng.integers(n)) == 0:
            others = [m for m in self.names if m != name]
            new = others[int(rng.integers(len(others)))]
            return {TEMPLATE_KEY: new, **self.members[new].sample(rng)}
        return {TEMPLATE_KEY: name, **member.mutate(values, rng)}

    def check(self, hw: dict[str, Any]) -> None:
        if not isinstance(hw, dict):
            raise ValueError(f"hw: expected a mapping of choices, got {type(hw).__name__}")
        name, values = self._split(hw)
        if name not in self.members:
            raise ValueError(f"hw: {TEMPLATE_KEY}={name!r} is not one of {self.names}")
        self.members[name].check(values)

    def encode(self, hw: dict[str, Any]) -> np.ndarray:
        """One-hot of the member, then one block per union choice (zeros where the member
        has no such choice)."""
        name, values = self._split(hw)
        parts = [_one_hot(self._which, name)]
        parts += [_one_hot(c, values[k]) if k in values else np.zeros(len(c)) for k, c in self._union.items()]
        return np.concatenate(parts)

    def resolve(self, hw: dict[str, Any]) -> tuple[AcceleratorTemplate, ...]:
        name, values = self._split(hw)
        return self.members[name].resolve(values)

    def size(self) -> int:
        return sum(m.size() for m in self.members.values())

    def configurations(self) -> Iterator[dict[str, Any]]:
        """Every genotype of the set, each once: member by member (in the set's order), that
        member's own configurations (its choices only); :meth:`size` of them."""
        for name, member in self.members.items():
            for values in member.configurations():
                yield {TEMPLATE_KEY: name, **values}

    def limits(self, hw: dict[str, Any] | None = None) -> dict[str, float]:
        if hw is not None:
            return self.members[self._split(hw)[0]].limits()
        # The loosest: a metric constrained in every member, at the largest limit.
        per = [m.limits() for m in self.members.values()]
        keys = set.intersection(*(set(p) for p in per)) if per else set()
        return {k: max(p[k] for p in per) for k in per[0] if k in keys} if per else {}

    def choices(self) -> dict[str, Any]:
        return {TEMPLATE_KEY: list(self.names), **{n: m.choices() for n, m in self.members.items()}}

    def describe(self) -> dict[str, Any]:
        return {"kind": "accelerator_set", "name": self.name, "description": self.spec.description,
                "templates": list(self.names), "default": self.default_member,
                "choices": self.choices(), "size": self.size(),
                "sizes": {n: m.size() for n, m in self.members.items()},
                "specs": {k: c.max for k, c in (self.spec.specs or {}).items()}}


# ---------------------------------------------------------------------- k sub-accelerators
class MultiAcceleratorSpace:
    """k sub-accelerators drawn from one pool of member templates, within a shared budget."""

    def __init__(self, spec: MultiAccelerator) -> None:
        self.spec = spec
        self.name = spec.name
        self.subs = spec.sub_accelerators
        self.pool = TemplateSetSpace(spec)  # spec.member() drops the members' own specs
        self.max_pes = int(spec.budget.pes)
        self.max_bw = float(spec.budget.dram_bytes_per_cycle)
        self._min = {n: min_usage(self.pool.members[n].spec) for n in self.pool.names}
        # Pareto-smallest totals of r sub-accelerators, r = 0..k: what the others still need.
        self._fronts = [smallest_partitions(self._min, r) for r in range(self.subs + 1)]
        self._warned = False

    # ---------------------------------------------------------------- budget
    def usage(self, sub: dict[str, Any]) -> tuple[int, float]:
        """(PEs, DRAM bytes/cycle) one sub-accelerator genotype takes."""
        name, values = self.pool._split(sub)
        return pe_usage(self.pool.members[name].spec, values)

    def total(self, hw: dict[str, Any]) -> tuple[int, float]:
        pes, bw = 0, 0.0
        for sub in hw[SUBS_KEY]:
            p, b = self.usage(sub)
            pes, bw = pes + p, bw + b
        return pes, bw

    def within(self, pes: float, bw: float) -> bool:
        return pes <= self.max_pes and bw <= self.max_bw + 1e-9

    def _fits(self, name: str, pes: float, bw: float) -> bool:
        p, b = self._min[name]
        return p <= pes and b <= bw + 1e-9

    def _room(self, p: float, b: float, left_p: float, left_b: float, rest: int) -> bool:
        """Whether taking (p, b) out of (left_p, left_b) leaves room for ``rest`` more
        sub-accelerators at their smallest."""
        return any(p + fp <= left_p and b + fb <= left_b + 1e-9 for fp, fb in self._fronts[rest])

    def _sample_within(self, name: str, rng: np.random.Generator, fits) -> dict[str, Any]:
        """The member's choices drawn uniformly, then its (rows, cols, bandwidth) redrawn
        uniformly among the combinations for which ``fits(PEs, bytes/cycle)`` holds (at least
        the member's smallest one must: see :meth:`_fits`)."""
        member = self.pool.members[name]
        values = member.sample(rng)
        d = member.dims()
        t = member.spec
        keys = ("pe_array.rows", "pe_array.cols", "bandwidth.dram_bytes_per_cycle")
        fixed = (t.pe_array.rows, t.pe_array.cols, t.bandwidth.dram_bytes_per_cycle)
        opts = [d[k].options if k in d else (v,) for k, v in zip(keys, fixed)]
        combos = [(r, c, w) for r, c, w in itertools.product(*opts) if fits(r * c, float(w))]
        for k, v in zip(keys, combos[int(rng.integers(len(combos)))]):
            if k in d:
                values[k] = v
        return {TEMPLATE_KEY: name, **values}

    # ---------------------------------------------------------------- protocol
    def templates(self) -> list[AcceleratorTemplate]:
        return self.pool.templates()

    def dims(self) -> dict[str, Choice]:
        return {f"{SUBS_KEY}[{i}].{k}": c for i in range(self.subs) for k, c in self.pool.dims().items()}

    def defaults(self) -> dict[str, Any]:
        """Every sub-accelerator on the default member at its defaults; where that exceeds
        the budget, on the smallest member at its smallest array and bandwidth."""
        subs = [self.pool.defaults() for _ in range(self.subs)]
        if self.within(*self.total({SUBS_KEY: subs})):
            return {SUBS_KEY: subs}
        fitting = sorted(u for u in self._fronts[self.subs] if self.within(*u))
        out = []
        for name in self._fronts[self.subs][fitting[0]]:
            member = self.pool.members[name]
            d = member.dims()
            out.append({TEMPLATE_KEY: name, **member.defaults(),
                        **{k: min(d[k].options) for k in ("pe_array.rows", "pe_array.cols",
                                                          "bandwidth.dram_bytes_per_cycle") if k in d}})
        return {SUBS_KEY: out}

    def complete(self, hw: dict[str, Any] | None) -> dict[str, Any]:
        if hw is None:
            return self.defaults()
        subs = hw.get(SUBS_KEY) if isinstance(hw, dict) else None
        if not isinstance(subs, list):
            raise ValueError(f"hw: expected {{'{SUBS_KEY}': [...]}}")
        return {SUBS_KEY: [self.pool.complete(s) for s in subs]}

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        for _ in range(_REJECTION_TRIES):
            hw = {SUBS_KEY: [self.pool.sample(rng) for _ in range(self.subs)]}
            if self.within(*self.total(hw)):
                return hw
        if not self._warned:
            self._warned = True
            log.warning("%s: %d samples in a row exceeded the budget; sampling the sub-accelerators one by one "
                        "within it instead (always in budget, no longer uniform over partitions)",
                        self.name, _REJECTION_TRIES)
        return self._sample_sequential(rng)

    def _sample_sequential(self, rng: np.random.Generator) -> dict[str, Any]:
        """Sub-accelerators in a random order, each drawn among the configurations that leave
        room for the rest at their smallest; always within budget (the DSL checked that some
        partition fits)."""
        subs: list[dict[str, Any] | None] = [None] * self.subs
        left_p, left_b = float(self.max_pes), self.max_bw
        order = rng.permutation(self.subs)
        for j, i in enumerate(order):
            rest = self.subs - j - 1

            def fits(p: float, b: float, lp: float = left_p, lb: float = left_b, r: int = rest) -> bool:
                return self._room(p, b, lp, lb, r)

            names = [n for n in self.pool.names if fits(*self._min[n])]
            name = names[int(rng.integers(len(names)))]
            sub = self._sample_within(name, rng, fits)
            p, b = self.usage(sub)
            left_p, left_b = left_p - p, left_b - b
            subs[int(i)] = sub
        return {SUBS_KEY: subs}

    def moves(self, hw: dict[str, Any]) -> int:
        return sum(self.pool.moves(sub) for sub in hw[SUBS_KEY])

    def mutate(self, hw: dict[str, Any], rng: np.random.Generator) -> dict[str, Any] | None:
        """One move on one sub-accelerator, drawn among the moves that stay within budget:
        change one choice to another option that fits, or switch to another member that
        fits (its choices drawn within what the others leave)."""
        subs = [dict(s) for s in hw[SUBS_KEY]]
        moves: list[tuple[int, str | None]] = []  # (sub, key) or (sub, None) for a member switch
        for i, sub in enumerate(subs):
            name, values = self.pool._split(sub)
            p, b = self.usage(sub)
            tp, tb = self.total({SUBS_KEY: subs})
            free_p, free_b = self.max_pes - (tp - p), self.max_bw - (tb - b)
            if any(n != name and self._fits(n, free_p, free_b) for n in self.pool.names):
                moves.append((i, None))
            for key in self.pool.members[name].movable():
                if self._alternatives(sub, key, free_p, free_b):
                    moves.append((i, key))
        if not moves:
            return None
        i, key = moves[int(rng.integers(len(moves)))]
        sub = subs[i]
        name, values = self.pool._split(sub)
        tp, tb = self.total({SUBS_KEY: subs})
        p, b = self.usage(sub)
        free_p, free_b = self.max_pes - (tp - p), self.max_bw - (tb - b)
        if key is None:
            names = [n for n in self.pool.names if n != name and self._fits(n, free_p, free_b)]
            new = names[int(rng.integers(len(names)))]
            subs[i] = self._sample_within(new, rng, lambda p, b: p <= free_p and b <= free_b + 1e-9)
        else:
            alts = self._alternatives(sub, key, free_p, free_b)
            subs[i] = {**sub, key: alts[int(rng.integers(len(alts)))]}
        return {SUBS_KEY: subs}

    def _alternatives(self, sub: dict[str, Any], key: str, free_p: float, free_b: float) -> list:
        """The other options of ``key`` with which ``sub`` still fits in ``free_p``/``free_b``."""
        current = sub[key]
        out = []
        for o in self.pool.members[sub[TEMPLATE_KEY]].dims()[key].options:
            if o == current:
                continue
            p, b = self.usage({**sub, key: o})
            if p <= free_p and b <= free_b + 1e-9:
                out.append(o)
        return out

    def check(self, hw: dict[str, Any]) -> None:
        if not isinstance(hw, dict) or set(hw) != {SUBS_KEY}:
            raise ValueError(f"hw: expected {{'{SUBS_KEY}': [...]}}, got {hw!r:.80}")
        subs = hw[SUBS_KEY]
        if not isinstance(subs, list) or len(subs) != self.subs:
            raise ValueError(f"hw: expected {self.subs} sub-accelerators, got {len(subs) if isinstance(subs, list) else subs!r}")
        for sub in subs:
            self.pool.check(sub)
        pes, bw = self.total(hw)
        if not self.within(pes, bw):
            raise ValueError(f"hw: the sub-accelerators take {pes} PEs and {bw:g} bytes/cycle; the budget is "
                             f"{self.max_pes} PEs and {self.max_bw:g} bytes/cycle")

    def encode(self, hw: dict[str, Any]) -> np.ndarray:
        return np.concatenate([self.pool.encode(sub) for sub in hw[SUBS_KEY]])

    def resolve(self, hw: dict[str, Any]) -> tuple[AcceleratorTemplate, ...]:
        return tuple(self.pool.resolve(sub)[0] for sub in hw[SUBS_KEY])

    def size(self) -> int:
        """Partitions within budget, counted exactly: each member's configurations grouped
        by the (PEs, bandwidth) they take, those groups combined over the sub-accelerators."""
        per: Counter = Counter()
        for name, m in self.pool.members.items():
            d = m.dims()
            usage_keys = [k for k in ("pe_array.rows", "pe_array.cols", "bandwidth.dram_bytes_per_cycle") if k in d]
            other = math.prod(len(c) for k, c in d.items() if k not in usage_keys)
            for combo in itertools.product(*(d[k].options for k in usage_keys)):
                per[pe_usage(m.spec, dict(zip(usage_keys, combo)))] += other
        totals: Counter = Counter({(0, 0.0): 1})
        for _ in range(self.subs):
            nxt: Counter = Counter()
            for (p, b), n in totals.items():
                for (p2, b2), n2 in per.items():
                    if self.within(p + p2, b + b2):
                        nxt[(p + p2, b + b2)] += n * n2
            totals = nxt
        return int(sum(totals.values()))

    def limits(self, hw: dict[str, Any] | None = None) -> dict[str, float]:
        return self.spec.limits()

    def choices(self) -> dict[str, Any]:
        return {SUBS_KEY: self.subs, "budget": {"pes": self.max_pes, "dram_bytes_per_cycle": self.max_bw},
                **self.pool.choices()}

    def describe(self) -> dict[str, Any]:
        return {"kind": "multi_accelerator", "name": self.name, "description": self.spec.description,
                "sub_accelerators": self.subs, "templates": list(self.pool.names),
                "budget": {"pes": self.max_pes, "dram_bytes_per_cycle": self.max_bw},
                "choices": self.choices(), "size": self.size(),
                "specs": {k: c.max for k, c in (self.spec.specs or {}).items()}}


def hw_space(spec: Any) -> HwSpace:
    """The hardware space of an accelerator, accelerator_set or multi_accelerator spec."""
    if isinstance(spec, MultiAccelerator):
        return MultiAcceleratorSpace(spec)
    if isinstance(spec, AcceleratorSet):
        return TemplateSetSpace(spec)
    if isinstance(spec, AcceleratorTemplate):
        return TemplateSpace(spec)
    if isinstance(spec, HwSpace):
        return spec
    raise TypeError(f"expected an accelerator spec, got {type(spec).__name__}")
