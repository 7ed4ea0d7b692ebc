"""A real local Ray cluster for the executor tests, and the bookkeeping that stops exactly
the processes the tests started.

The cluster is ``ray start --head`` bound to loopback, two CPUs, no dashboard. It is
started in a session of its own (``setsid``): every process Ray starts for it (GCS,
raylet, agents, workers) stays in that session, reparented or not, so the session id names
them all and nothing else. The fixture stops them by pid when the pytest session ends, a
failed test included; a guard process stops them too if pytest itself dies first. Driver
processes that tests start (``spawn``) get a session each and are stopped the same way.
Nothing here runs ``ray stop``, which would stop every Ray instance on the machine.
"""
from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1"}
# SIGTERM first; Ray's GCS server and autoscaler monitor can take 15 s and more to honour it.
TERM_GRACE = 3.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, session id) of a process, None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[3])


def session_pids(sid: int) -> list[int]:
    """The live processes of session ``sid`` (zombies are dead: only their exit status is left)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            st = _stat(int(d.name))
            if st is not None and st[1] == sid and st[0] not in ("Z", "X"):
                out.append(int(d.name))
    return out


def _signal(pid: int, sid: int, sig: int) -> None:
    """Send ``sig`` to ``pid`` if it still belongs to session ``sid``. Through a pidfd,
    checked after it is opened, so a pid reused by another process is never signalled."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return  # gone
    try:
        st = _stat(pid)
        if st is not None and st[1] == sid:
            signal.pidfd_send_signal(fd, sig)
    except OSError:
        pass
    finally:
        os.close(fd)


def stop_session(sid: int, timeout: float = 20.0) -> list[int]:
    """Stop every process of session ``sid`` (SIGTERM, then SIGKILL after TERM_GRACE);
    returns the pids still alive at ``timeout`` (none unless a process is stuck in the kernel)."""
    deadline = time.monotonic() + timeout
    for sig, wait in ((signal.SIGTERM, TERM_GRACE), (signal.SIGKILL, timeout)):
        for pid in session_pids(sid):
            _signal(pid, sid, sig)
        until = min(deadline, time.monotonic() + wait)
        while session_pids(sid) and time.monotonic() < until:
            time.sleep(0.1)
    return session_pids(sid)


def _guard(sid: int, watched: int, temp: str) -> None:
    """Wait for process ``watched`` (pytest) to end, then stop session ``sid``. Started
    outside that session; the fixture ends it (by pid) after stopping the cluster itself."""
    fd = os.pidfd_open(watched)
    select.select([fd], [], [])  # a pidfd is readable once its process has exited
    stop_session(sid)
    shutil.rmtree(temp, ignore_errors=True)


def listening_sockets(pids: list[int]) -> list[tuple[int, str, str]]:
    """(pid, protocol, local address) of every listening TCP socket and bound UDP socket
    that the processes ``pids`` hold, from /proc/net (the same table as ``ss -ltun``)."""
    table: dict[str, tuple[str, str]] = {}
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        for line in Path(f"/proc/net/{proto}").read_text().splitlines()[1:]:
            f = line.split()
            if proto.startswith("udp") or f[3] == "0A":  # 0A: TCP_LISTEN
                table[f[9]] = (proto, _address(f[1]))
    out = []
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(fd)
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in table:
                out.append((pid, *table[link[8:-1]]))
    return out


def _address(hex_addr: str) -> str:
    """/proc/net's HEXIP:HEXPORT (IPv4 or IPv6, host byte order in 32-bit words) as text."""
    ip, port = hex_addr.split(":")
    raw = b"".join(int(ip[i:i + 8], 16).to_bytes(4, sys.byteorder) for i in range(0, len(ip), 8))
    if len(raw) == 16 and raw[:12] == b"\0" * 10 + b"\xff\xff":
        raw = raw[12:]  # IPv4-mapped IPv6
    family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
    return f"{socket.inet_ntop(family, raw)}:{int(port, 16)}"


if __name__ == "__main__":  # the guard: conftest.py SID PYTEST_PID TEMP_DIR
    _guard(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
    sys.exit(0)

import pytest  # noqa: E402 - the guard above runs without pytest


@pytest.fixture(scope="session")
def _ray_head():
    """(address 127.0.0.1:PORT, session id) of a Ray head node started for these tests."""
    ray_bin = Path(sys.executable).with_name("ray")
    if not ray_bin.exists():
        pytest.skip("the ray command is not installed next to this interpreter")
    temp = tempfile.mkdtemp(prefix="nr", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    port = _free_port()
    env = dict(os.environ, **RAY_ENV)
    env.pop("RAY_ADDRESS", None)
    cmd = [str(ray_bin), "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
           "--disable-usage-stats", f"--temp-dir={temp}"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    sid = proc.pid  # ``ray start`` leads the session; what it starts stays in it after it exits
    guard = subprocess.Popen([sys.executable, __file__, str(sid), str(os.getpid()), temp],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)
    previous = signal.getsignal(signal.SIGTERM)

    def interrupt(signum, frame):  # a CI timeout's SIGTERM: end the session through teardown
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    try:
        try:
            out, err = proc.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"ray start failed:\n{out}\n{err}")
        yield f"127.0.0.1:{port}", sid
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        left = stop_session(sid)
        guard.kill()
        guard.wait()
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(temp, ignore_errors=True)
        if left:
            raise RuntimeError(f"Ray processes {left} of the test cluster outlived SIGKILL")


@pytest.fixture(scope="session")
def ray_cluster(_ray_head) -> str:
    """The address (127.0.0.1:PORT) of the Ray head node started for these tests."""
    return _ray_head[0]


@pytest.fixture(scope="session")
def ray_cluster_sid(_ray_head) -> int:
    """The session id of the test cluster's processes."""
    return _ray_head[1]


@pytest.fixture
def ray_env(monkeypatch: pytest.MonkeyPatch, ray_cluster: str) -> str:
    """Environment for a driver process joining the test cluster; returns its address."""
    for k, v in RAY_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    return ray_cluster


@pytest.fixture
def proc_tools() -> SimpleNamespace:
    """This module's process helpers, for tests: session_pids, stop_session, listening_sockets."""
    return SimpleNamespace(session_pids=session_pids, stop_session=stop_session,
                           listening_sockets=listening_sockets)


@pytest.fixture
def spawn():
    """Start a command in a session of its own (``spawn(cmd, **popen_kw)`` -> Popen); every
    process of those sessions still running when the test ends, failed or not, is stopped."""
    started: list[subprocess.Popen] = []

    def start(cmd: list[str], **kw) -> subprocess.Popen:
        proc = subprocess.Popen(cmd, start_new_session=True, **kw)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        stop_session(proc.pid)
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.fixture
def cheap_plot(monkeypatch: pytest.MonkeyPatch) -> None:
    """pareto.png and history.png written as stub files: rendering them costs about half a
    second a run, and tests/pareto covers the plots."""
    from nasco.run import _outputs

    def stub(df, objectives, path, **kw):
        Path(path).write_bytes(b"stub")
        return Path(path)

    monkeypatch.setattr(_outputs, "plot_front", stub)
    monkeypatch.setattr(_outputs, "plot_history", stub)
