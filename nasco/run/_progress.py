"""The driver's progress line: rewritten in place on a terminal, one line per update otherwise."""
from __future__ import annotations

import sys
from typing import TextIO

from nasco.core import Objective

__all__ = ["Progress"]


def _clock(seconds: float) -> str:
    s = int(round(max(seconds, 0.0)))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Progress:
    """Counts, best value of the first objective, elapsed and estimated time left.

    ``stream`` True means stderr, False means silent. The estimate uses only the
    evaluations run in this session (replayed ones took no time).
    """

    def __init__(self, stream: bool | TextIO, *, budget: int, objective: Objective, label: str) -> None:
        self.stream: TextIO | None = sys.stderr if stream is True else (stream or None)
        try:
            self.tty = bool(self.stream is not None and self.stream.isatty())
        except (AttributeError, ValueError):
            self.tty = False
        self.budget = budget
        self.objective = objective.name
        self._better = objective.worse
        self.label = label
        self.counts = {"ok": 0, "failed": 0, "infeasible": 0}
        self.best: float | None = None
        self._width = 0
        self._open = False

    def record(self, status: str, objectives: dict[str, float] | None) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1
        if status == "ok" and objectives and self.objective in objectives:
            v = float(objectives[self.objective])
            if self.best is None or self._better(self.best, v):
                self.best = v

    def line(self, *, elapsed: float, new: int, new_seconds: float) -> str:
        """``new`` evaluations took ``new_seconds`` (search overhead included) in this session."""
        done = sum(self.counts.values())
        best = "-" if self.best is None else f"{self.best:.4g}"
        left = "?" if new == 0 else _clock(new_seconds / new * max(self.budget - done, 0))
        c = self.counts
        return (f"[{self.label}] {done}/{self.budget} | ok {c['ok']} failed {c['failed']} "
                f"infeasible {c['infeasible']} | best {self.objective} {best} | "
                f"{_clock(elapsed)} elapsed, ~{left} left")

    def show(self, *, elapsed: float, new: int, new_seconds: float) -> None:
        self.message(self.line(elapsed=elapsed, new=new, new_seconds=new_seconds), live=True)

    def message(self, text: str, *, live: bool = False) -> None:
        if self.stream is None:
            return
        if self.tty and live:
            pad = " " * max(self._width - len(text), 0)
            self.stream.write("\r" + text + pad)
            self._width = len(text)
            self._open = True
        else:
            if self._open:
                self.stream.write("\n")
                self._open = False
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.stream is not None and self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False
