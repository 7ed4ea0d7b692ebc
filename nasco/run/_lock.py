"""One driver per run directory: an OS lock held for the whole run."""
from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path
from typing import Any

from nasco.core import RunDirError

__all__ = ["LOCK_FILE", "RunLock"]

LOCK_FILE = ".lock"


class RunLock:
    """An exclusive ``fcntl.flock`` on ``DIR/.lock``, taken before the ledger is read and
    held until :meth:`release` (or the process ends: the kernel drops the lock of a dead
    process, so a killed run never blocks its resume). A second driver on the same
    directory gets a :class:`RunDirError` naming the holder's pid and host.
    """

    def __init__(self, out_dir: str | Path) -> None:
        self.path = Path(out_dir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        if self.path.parent.exists() and not self.path.parent.is_dir():
            raise RunDirError(f"{self.path.parent} is a file, not a run directory; choose another --out")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise RunDirError(f"{self.path.parent} is in use by another nasco run ({holder}); wait for it to "
                              f"end or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
