"""A real local Ray cluster for the executor tests: ``ray start --head`` bound to loopback,
two CPUs, no dashboard; stopped at the end of the session (only its own processes)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mentions(proc: Path, marker: str) -> bool:
    """Whether the process's command line or open files name ``marker`` (Ray's agents
    rename themselves, ray::DashboardAgent, but keep their log files open)."""
    try:
        if marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
            return True
        for fd in (proc / "fd").iterdir():
            try:
                if marker in os.readlink(fd):
                    return True
            except OSError:
                continue
    except OSError:
        pass
    return False


def _own_pids(marker: str) -> list[int]:
    return [int(d.name) for d in Path("/proc").iterdir()
            if d.name.isdigit() and int(d.name) != os.getpid() and _mentions(d, marker)]


@pytest.fixture(scope="session")
def ray_cluster():
    """The address (127.0.0.1:PORT) of a Ray head node started for these tests."""
    ray_bin = Path(sys.executable).with_name("ray")
    if not ray_bin.exists():
        pytest.skip("the ray command is not installed next to this interpreter")
    temp = tempfile.mkdtemp(prefix="nr", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    port = _free_port()
    env = dict(os.environ, **RAY_ENV)
    env.pop("RAY_ADDRESS", None)
    cmd = [str(ray_bin), "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
           "--disable-usage-stats", f"--temp-dir={temp}"]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    if res.returncode != 0:
        raise RuntimeError(f"ray start failed:\n{res.stdout}\n{res.stderr}")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        # `ray stop` would stop every Ray instance on the machine; stop this one only.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = _own_pids(temp)
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.time() + 10
            while pids and time.time() < deadline and _own_pids(temp):
                time.sleep(0.2)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture
def ray_env(monkeypatch: pytest.MonkeyPatch, ray_cluster: str) -> str:
    """Environment for a driver process joining the test cluster; returns its address."""
    for k, v in RAY_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    return ray_cluster
