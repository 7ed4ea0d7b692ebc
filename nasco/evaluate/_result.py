"""What an evaluation returns, and the objectives nasco knows how to score."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from nasco.space import Candidate

__all__ = ["Result", "Evaluator", "OBJECTIVES", "objective_sense", "register_objective", "to_minimisation"]

# Objective name -> "max" or "min". Accuracy is validation accuracy (the searcher sees it);
# test accuracy stays in the metrics for reports. Units: energy J, latency s, area mm2.
OBJECTIVES: dict[str, str] = {
    "accuracy": "max",
    "energy": "min",
    "latency": "min",
    "area": "min",
    "params": "min",
    "macs": "min",
}

STATUSES = ("ok", "failed", "infeasible")


def register_objective(name: str, sense: str) -> None:
    """Declare an objective (e.g. a lookup table's ``eyeriss_latency``) with its direction.

    Registering a known name again with the same direction is a no-op; with the other
    direction it is an error, so one name never means two things in a process.
    """
    if sense not in ("max", "min"):
        raise ValueError(f"objective direction must be 'max' or 'min', got {sense!r}")
    known = OBJECTIVES.get(name)
    if known is not None and known != sense:
        raise ValueError(f"objective '{name}' is already declared '{known}', not '{sense}'")
    OBJECTIVES[name] = sense


def objective_sense(name: str) -> str:
    if name not in OBJECTIVES:
        raise KeyError(name)
    return OBJECTIVES[name]


def to_minimisation(name: str, value: float) -> float:
    """The value in 'smaller is better' form (negated for maximised objectives)."""
    return -value if OBJECTIVES[name] == "max" else value


@dataclass(frozen=True)
class Result:
    """The outcome of one evaluation.

    status: 'ok', 'failed' (``reason`` says why) or 'infeasible' (scored, but a design spec
    is violated; ``violations`` holds value - limit for each violated spec, in base units).
    """

    status: str
    objectives: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    violations: dict[str, float] = field(default_factory=dict)
    reason: str | None = None
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        if self.status == "failed" and not self.reason:
            raise ValueError("a failed result needs a reason")
        for k, v in self.objectives.items():
            if not isinstance(v, (int, float)) or math.isnan(v):
                raise ValueError(f"objective {k} is not a number: {v!r}")

    @classmethod
    def failed(cls, reason: str, seconds: float = 0.0, **metrics: Any) -> Result:
        return cls("failed", reason=reason, seconds=seconds, metrics=dict(metrics))

    @property
    def feasible(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "objectives": dict(self.objectives), "metrics": dict(self.metrics),
                "violations": dict(self.violations), "reason": self.reason, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Result:
        return cls(d["status"], dict(d.get("objectives") or {}), dict(d.get("metrics") or {}),
                   dict(d.get("violations") or {}), d.get("reason"), float(d.get("seconds") or 0.0))


class Evaluator(Protocol):
    """Scores a candidate. It never knows which searcher asked."""

    objectives: tuple[str, ...]

    def evaluate(self, candidate: Candidate, seed: int) -> Result: ...
