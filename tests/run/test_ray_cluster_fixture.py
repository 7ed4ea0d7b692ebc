"""The Ray cluster fixture of conftest.py, run by an inner pytest: it stops every process
of its cluster when a test fails and when pytest itself is killed, and no process of
another Ray cluster (this session's own) is touched."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

INNER = '''
import os
import time
from pathlib import Path


def test_inner(ray_cluster_sid, ray_env):
    # written whole or not at all: the outer test reads the file as soon as it exists
    sid_file = Path(os.environ["INNER_SID_FILE"])
    sid_file.with_suffix(".tmp").write_text(str(ray_cluster_sid))
    os.replace(sid_file.with_suffix(".tmp"), sid_file)
    if os.environ.get("INNER_HANG"):
        time.sleep(600)
    assert False, "a failing test"
'''


@pytest.mark.parametrize("end", ["test fails", "pytest killed"])
def test_the_cluster_fixture_stops_its_own_processes_only(end, ray_env, ray_cluster_sid, proc_tools, spawn,
                                                          tmp_path):
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_inner.py").write_text(INNER)
    sid_file = tmp_path / "sid"
    env = dict(os.environ, INNER_SID_FILE=str(sid_file))
    if end == "pytest killed":
        env["INNER_HANG"] = "1"
    inner = spawn([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_inner.py"],
                  cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    inner_sid = None
    try:
        deadline = time.time() + 180
        while time.time() < deadline and not sid_file.exists() and inner.poll() is None:
            time.sleep(0.1)
        inner_sid = int(sid_file.read_text())
        assert proc_tools.session_pids(inner_sid), "the inner cluster is not running"
        if end == "pytest killed":
            inner.send_signal(signal.SIGKILL)
            inner.wait()
        else:
            log, _ = inner.communicate(timeout=120)
            assert inner.returncode == 1 and "a failing test" in log, log
        # The inner cluster's processes are gone: at once after a failed test (teardown),
        # within the guard's SIGTERM grace and kill after pytest was killed.
        deadline = time.time() + 30
        while proc_tools.session_pids(inner_sid) and time.time() < deadline:
            time.sleep(0.2)
        assert proc_tools.session_pids(inner_sid) == []
    finally:
        if inner_sid is not None:
            proc_tools.stop_session(inner_sid)
    # This session's own cluster was not touched: still running, and still serving.
    assert proc_tools.session_pids(ray_cluster_sid)
    from nasco.run._ray import connect

    connect(ray_env)  # before Ray is imported here: it sets what Ray reads at import
    import ray

    try:
        assert ray.get(ray.remote(lambda: os.getsid(0)).remote()) == ray_cluster_sid
    finally:
        ray.shutdown()
