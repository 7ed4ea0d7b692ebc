"""A pool run's driver killed with SIGKILL leaves no process behind: its workers die with it
(PR_SET_PDEATHSIG), and multiprocessing's resource tracker then ends too."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc's parent links)."""
    parents: dict[int, int] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                parents[int(p.name)] = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    out, frontier = [], [pid]
    while frontier:
        nxt = [c for c, par in parents.items() if par in frontier]
        out += nxt
        frontier = nxt
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signals are Linux's")
def test_killed_pool_driver_leaves_no_process(tmp_path):
    run = tmp_path / "run"
    argv = ["search", "--space", "darts_snn", "--hw", "asic_template", "--executor", "pool", "--workers", "2",
            "--budget", "8", "--limit", "150", "--epochs", "1", "--out", str(run), "--quiet"]
    proc = subprocess.Popen([sys.executable, "-m", "nasco", *argv],
                            env=dict(os.environ, OMP_NUM_THREADS="1"), start_new_session=True)
    ledger = run / "ledger.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (ledger.exists() and ledger.read_text().count("\n") >= 1):
        time.sleep(0.1)
    kids = _descendants(proc.pid)
    assert proc.poll() is None and len(kids) >= 3  # two workers and the resource tracker, at least
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(_state(k) not in (None, "Z") for k in kids):
            time.sleep(0.2)
        left = [k for k in kids if _state(k) not in (None, "Z")]
        assert left == [], f"processes left behind by the killed driver: {left}"
    finally:
        for k in kids:  # only what this test's driver started
            if _state(k) not in (None, "Z"):
                os.kill(k, signal.SIGKILL)
