"""An evaluator with injected faults, for testing executors on real worker processes.

It is importable (so Ray and process-pool workers can unpickle it) and deterministic: its
results come from :func:`~nasco.testing.searcher_contract.toy_result`, which depends on
the candidate alone, so a run's front does not depend on where or in which order its
evaluations ran.
"""
from __future__ import annotations

import os
import resource
import signal
import time
import warnings
from pathlib import Path

import numpy as np

from nasco.core import EvaluatorBase, Result
from nasco.space import Candidate, SearchSpace
from nasco.testing.searcher_contract import toy_result

__all__ = ["FAULTS", "FAULT_ALIASES", "FaultyEvaluator"]

# crash_once: the worker process kills itself (SIGKILL) on the candidate's first attempt
#   only (a marker file in ``marker_dir`` remembers it across processes);
# crash: it kills itself on every attempt; raise: a RuntimeError;
# memory_error: numpy is asked for 4 EiB, which no allocator grants: a MemoryError, with no
#   memory pressure behind it;
# memory_limit: the worker lowers its own soft address-space limit (RLIMIT_AS) to what it maps
#   now plus MEMORY_LIMIT_HEADROOM and asks numpy for more than that headroom; the kernel refuses
#   the mapping (ENOMEM), as under `ulimit -v` or a batch scheduler's per-process limit, and the
#   MemoryError comes from that refusal. The limit is restored before the evaluation raises;
# hang: sleeps for ``hang_seconds`` (an hour unless told), then scores as usual.
FAULTS = ("crash_once", "crash", "raise", "memory_error", "memory_limit", "hang")
# Former names, accepted with a DeprecationWarning.
FAULT_ALIASES = {"oom": "memory_error"}
MEMORY_LIMIT_HEADROOM = 256 * 2**20  # bytes of address space left to the worker's other threads
MEMORY_LIMIT_REQUEST = 1 * 2**30     # bytes the fault asks for: beyond the headroom, far below RAM


def _mapped_bytes() -> int:
    """The process's current virtual address-space size (VmSize in /proc/self/status)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")  # pragma: no cover - Linux only


def exceed_memory_limit() -> None:
    """Hit a real address-space limit: raises the MemoryError of a refused mapping (Linux)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _mapped_bytes() + MEMORY_LIMIT_HEADROOM
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        np.ones(MEMORY_LIMIT_REQUEST, dtype=np.uint8)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    raise RuntimeError(f"an allocation of {MEMORY_LIMIT_REQUEST} bytes succeeded under RLIMIT_AS={limit}")


class FaultyEvaluator(EvaluatorBase):
    """``toy_result`` after ``sleep`` seconds idle and ``busy`` seconds of CPU work, with
    ``faults`` {candidate id: kind} injected; a ``hang`` lasts ``hang_seconds``."""

    def __init__(self, space: SearchSpace, objectives: tuple[str, ...] = ("accuracy", "energy"), *,
                 sleep: float = 0.0, busy: float = 0.0, faults: dict[str, str] | None = None,
                 marker_dir: str | os.PathLike[str] | None = None, log_dir: str | os.PathLike[str] | None = None,
                 hang_seconds: float = 3600.0) -> None:
        self.space, self.objectives, self.sleep, self.busy = space, tuple(objectives), float(sleep), float(busy)
        self.faults = {}
        for cid, kind in (faults or {}).items():
            if kind in FAULT_ALIASES:
                warnings.warn(f"fault kind '{kind}' is now '{FAULT_ALIASES[kind]}'", DeprecationWarning,
                              stacklevel=2)
                kind = FAULT_ALIASES[kind]
            self.faults[cid] = kind
        bad = sorted(set(self.faults.values()) - set(FAULTS))
        if bad:
            raise ValueError(f"unknown fault kinds {bad}; known: {FAULTS}")
        if "crash_once" in self.faults.values() and marker_dir is None:
            raise ValueError("crash_once needs a marker_dir shared by the workers")
        self.marker_dir = Path(marker_dir) if marker_dir is not None else None
        # Every evaluation started appends "id pid" here: tests count evaluations per candidate.
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.hang_seconds = float(hang_seconds)

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
        elif kind == "memory_error":
            np.ones(2**62, dtype=np.uint8)  # raises MemoryError: far beyond any machine
        elif kind == "memory_limit":
            exceed_memory_limit()
        elif kind == "hang":
            time.sleep(self.hang_seconds)
        if self.sleep:
            time.sleep(self.sleep)
        if self.busy:
            end = time.perf_counter() + self.busy
            while time.perf_counter() < end:  # holds a core, as a real evaluation does
                pass
        return toy_result(self.space, cand, self.objectives)
