"""What an evaluation returns, and what an evaluator is."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from nasco.core._candidate import Candidate

__all__ = ["STATUSES", "Evaluator", "Result"]

STATUSES = ("ok", "failed", "infeasible")


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
