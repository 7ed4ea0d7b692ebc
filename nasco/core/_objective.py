"""Objectives: a name, a direction, a unit and the bounds that make hypervolumes comparable.

A study owns its objectives; nothing here is registered in a process-wide table. The
built-in names (:data:`BUILTIN_OBJECTIVES`) are a read-only catalogue of what nasco's own
evaluators report; anything else (a lookup table's ``eyeriss_latency``, a metric of a
user's evaluator) is declared with its direction where the study is made.
"""
from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Union

from nasco.core._errors import NascoError

__all__ = ["BUILTIN_OBJECTIVES", "DIRECTIONS", "Objective", "ObjectiveSpec", "resolve_objectives"]

DIRECTIONS = ("max", "min")


@dataclass(frozen=True)
class Objective:
    """One objective of a study.

    ``name`` is the key in a result's ``objectives``; ``direction`` is ``"max"`` or
    ``"min"``; ``unit`` is the unit the values are stored in (base units: J, s, mm2, or a
    fraction for accuracy). ``ideal`` and ``bound`` fix the hypervolume's scale: a value is
    normalised to 0 at ``ideal`` and 1 at ``bound`` (the reference point), so a front has the
    same normalised hypervolume in every run that uses the same bounds, whatever else the
    run found. Either may be None until the study fixes it (a design-spec limit, a
    ``ref_point``, a table's range, or the documented default).
    """

    name: str
    direction: str
    unit: str = ""
    ideal: float | None = None
    bound: float | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise NascoError(f"objective name: expected a non-empty string, found {self.name!r}")
        if self.direction not in DIRECTIONS:
            raise NascoError(f"objective '{self.name}': direction expected 'max' or 'min', found "
                             f"{self.direction!r}")
        for key in ("ideal", "bound"):
            v = getattr(self, key)
            if v is not None:
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise NascoError(f"objective '{self.name}': {key} expected a finite number, found {v!r}")
                object.__setattr__(self, key, float(v))
        if self.ideal is not None and self.bound is not None and not self.worse(self.bound, self.ideal):
            raise NascoError(f"objective '{self.name}' ({self.direction}): ideal {self.ideal:g} must be "
                             f"better than bound {self.bound:g}")

    @property
    def maximise(self) -> bool:
        return self.direction == "max"

    def to_min(self, value: float) -> float:
        """``value`` in 'smaller is better' form (negated when maximised)."""
        return -float(value) if self.maximise else float(value)

    def worse(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly worse than ``b``."""
        return self.to_min(a) > self.to_min(b)

    def normalise(self, value: float) -> float:
        """0 at ``ideal``, 1 at ``bound``, linear between (minimisation form; needs both)."""
        if self.ideal is None or self.bound is None:
            raise NascoError(f"objective '{self.name}' has no {'ideal' if self.ideal is None else 'bound'}: "
                             f"give one (ref_point / --ref-point) to compute a normalised hypervolume")
        lo, hi = self.to_min(self.ideal), self.to_min(self.bound)
        return (self.to_min(value) - lo) / (hi - lo)

    def with_bounds(self, *, ideal: float | None = None, bound: float | None = None) -> Objective:
        """A copy with the given bounds set (None keeps the current one)."""
        return replace(self, ideal=self.ideal if ideal is None else ideal,
                       bound=self.bound if bound is None else bound)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "direction": self.direction, "unit": self.unit,
                "ideal": self.ideal, "bound": self.bound}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Objective:
        return cls(d["name"], d["direction"], d.get("unit", ""), d.get("ideal"), d.get("bound"),
                   d.get("description", ""))


def _o(name: str, direction: str, unit: str, ideal: float | None, bound: float | None,
       text: str) -> Objective:
    return Objective(name, direction, unit, ideal, bound, text)


# The objectives nasco's own evaluators report, with their documented hypervolume bounds.
# Accuracy is a fraction: its bounds are exact (1 best, 0 worst). Costs are 0 at best; the
# default bound of a cost is used only where the accelerator declares no design-spec limit
# for it and no ref_point is given: 1 mJ, 10 ms and 10 mm2 lie well beyond every candidate
# of the built-in spaces on digits (tens of uJ, under 2 ms, under 3 mm2; README figures), so
# no feasible candidate is cut off by them. Counts take 10^8 parameters and 10^11 MACs.
# Zero-cost proxies have no natural scale: a study that ranks by them gets a hypervolume
# only with a ref_point.
BUILTIN_OBJECTIVES: Mapping[str, Objective] = MappingProxyType({o.name: o for o in (
    _o("accuracy", "max", "fraction", 1.0, 0.0, "validation accuracy (the searcher sees it)"),
    _o("energy", "min", "J", 0.0, 1e-3, "energy per inference"),
    _o("latency", "min", "s", 0.0, 1e-2, "latency per inference"),
    _o("area", "min", "mm2", 0.0, 10.0, "accelerator area"),
    _o("params", "min", "count", 0.0, 1e8, "parameters"),
    _o("macs", "min", "count", 0.0, 1e11, "multiply-accumulates per inference, timesteps included"),
    # A ratio of two positive energies: 0 is its worst (the SNN infinitely dearer than its twin)
    # and it has no natural best, so a normalised hypervolume over it needs an ideal (ref_point).
    _o("snn_advantage", "max", "ratio", None, 0.0,
       "energy of the ceil(log2(T+1))-bit ANN twin on the same template over the SNN's (> 1: the SNN wins)"),
    _o("flops", "min", "count", 0.0, 1e11, "MACs of the workload (zero-cost proxy evaluator)"),
    _o("sops", "min", "count", 0.0, 1e11, "synaptic operations (zero-cost proxy evaluator)"),
    _o("naswot", "max", "", None, None, "NASWOT score (zero-cost proxy)"),
    _o("sahd", "max", "", None, None, "SAHD score (zero-cost proxy)"),
    _o("synflow", "max", "", None, None, "synflow score (zero-cost proxy)"),
    _o("snip", "max", "", None, None, "snip score (zero-cost proxy)"),
    _o("grad_norm", "max", "", None, None, "gradient-norm score (zero-cost proxy)"),
    _o("jacob_cov", "max", "", None, None, "Jacobian-covariance score (zero-cost proxy)"),
)})

ObjectiveSpec = Union[str, Objective, Mapping[str, str], Iterable[Union[str, Objective]]]


def _unknown(name: str, known: Mapping[str, Objective]) -> NascoError:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return NascoError(f"objectives: unknown objective '{name}'; known: {', '.join(known)}; {hint}declare "
                      f"another with its direction, e.g. {{'{name}': 'min'}} or Objective('{name}', 'min')")


def resolve_objectives(spec: ObjectiveSpec,
                       known: Mapping[str, Objective] | None = None) -> tuple[Objective, ...]:
    """Objectives from what a user writes.

    ``spec`` is a name (``"accuracy"``), a comma-separated list (``"accuracy,energy"``), a
    mapping name -> direction (``{"accuracy": "max", "eyeriss_latency": "min"}``), or a
    sequence of names and :class:`Objective` s. Names resolve in ``known`` (default
    :data:`BUILTIN_OBJECTIVES`); a mapping's entry for a known name must agree with its
    direction and keeps its unit and bounds. Names must be distinct.
    """
    known = BUILTIN_OBJECTIVES if known is None else known
    out: list[Objective] = []
    if isinstance(spec, str):
        items: list[Any] = [s.strip() for s in spec.split(",") if s.strip()]
    elif isinstance(spec, Mapping):
        items = []
        for name, direction in spec.items():
            if isinstance(direction, Objective):
                items.append(direction)
                continue
            base = known.get(name)
            if base is not None and base.direction != direction:
                raise NascoError(f"objectives: '{name}' is '{base.direction}' (better when "
                                 f"{'larger' if base.maximise else 'smaller'}), found {direction!r}")
            items.append(base if base is not None else Objective(str(name), direction))
    elif isinstance(spec, Objective):
        items = [spec]
    else:
        items = list(spec)
    for item in items:
        if isinstance(item, Objective):
            out.append(item)
        elif isinstance(item, str):
            if item not in known:
                raise _unknown(item, known)
            out.append(known[item])
        else:
            raise NascoError(f"objectives: expected names or Objective objects, found {item!r}")
    if not out:
        raise NascoError("objectives: at least one objective is needed, found none")
    names = [o.name for o in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise NascoError(f"objectives: each objective once, found {', '.join(dup)} twice")
    return tuple(out)
