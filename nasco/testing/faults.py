"""An evaluator with injected faults, for testing executors on real worker processes.

It is importable (so Ray and process-pool workers can unpickle it) and deterministic: its
results come from :func:`~nasco.testing.searcher_contract.toy_result`, which depends on
the candidate alone, so a run's front does not depend on where or in which order its
evaluations ran.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np

from nasco.core import Result
from nasco.space import Candidate, SearchSpace
from nasco.testing.searcher_contract import toy_result

__all__ = ["FAULTS", "FaultyEvaluator"]

# crash_once: the worker process kills itself (SIGKILL) on the candidate's first attempt
#   only (a marker file in ``marker_dir`` remembers it across processes);
# crash: it kills itself on every attempt; raise: a RuntimeError;
# oom: a real allocation failure (MemoryError from numpy); hang: sleeps for an hour.
FAULTS = ("crash_once", "crash", "raise", "oom", "hang")


class FaultyEvaluator:
    """``toy_result`` after ``sleep`` seconds idle and ``busy`` seconds of CPU work, with
    ``faults`` {candidate id: kind} injected."""

    def __init__(self, space: SearchSpace, objectives: tuple[str, ...] = ("accuracy", "energy"), *,
                 sleep: float = 0.0, busy: float = 0.0, faults: dict[str, str] | None = None,
                 marker_dir: str | os.PathLike[str] | None = None, log_dir: str | os.PathLike[str] | None = None
                 ) -> None:
        self.space, self.objectives, self.sleep, self.busy = space, tuple(objectives), float(sleep), float(busy)
        self.faults = dict(faults or {})
        bad = sorted(set(self.faults.values()) - set(FAULTS))
        if bad:
            raise ValueError(f"unknown fault kinds {bad}; known: {FAULTS}")
        if "crash_once" in self.faults.values() and marker_dir is None:
            raise ValueError("crash_once needs a marker_dir shared by the workers")
        self.marker_dir = Path(marker_dir) if marker_dir is not None else None
        # Every evaluation started appends "id pid" here: tests count evaluations per candidate.
        self.log_dir = Path(log_dir) if log_dir is not None else None

    def evaluate(self, cand: Candidate, seed: int) -> Result:
        if self.log_dir is not None:
            with open(self.log_dir / "evaluations.log", "a") as fh:
                fh.write(f"{cand.id} {os.getpid()}\n")
        kind = self.faults.get(cand.id)
        if kind == "crash_once":
            assert self.marker_dir is not None
            marker = self.marker_dir / f"crashed-{cand.id}"
            if not marker.exists():
                marker.touch()
                os.kill(os.getpid(), signal.SIGKILL)
        elif kind == "crash":
            os.kill(os.getpid(), signal.SIGKILL)
        elif kind == "raise":
            raise RuntimeError(f"injected failure on {cand.id}")
        elif kind == "oom":
            np.ones(2**62, dtype=np.uint8)  # raises MemoryError: far beyond any machine
        elif kind == "hang":
            time.sleep(3600)
        if self.sleep:
            time.sleep(self.sleep)
        if self.busy:
            end = time.perf_counter() + self.busy
            while time.perf_counter() < end:  # holds a core, as a real evaluation does
                pass
        return toy_result(self.space, cand, self.objectives)
