"""Where parsed tables are cached, under which key, and how a cache file is written.

A cache file is a parquet file named by the table and by a hash of everything it was
built from (the DSL file, the space file, the data file's size, mtime and first and last
64 KiB), so an edited source is reparsed and an old cache is simply never read again.
It is written to a temporary file and renamed into place: a crash leaves no half cache.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

__all__ = ["FORMAT_VERSION", "cache_dir", "cache_key", "atomic_write_parquet"]

# Bump when the layout of cache files changes.
FORMAT_VERSION = 1
_EDGE = 1 << 16


def cache_dir() -> Path:
    """$NASCO_CACHE, else $XDG_CACHE_HOME/nasco, else ~/.cache/nasco; tables go in tables/."""
    root = os.environ.get("NASCO_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = str(Path(xdg) / "nasco") if xdg else str(Path.home() / ".cache" / "nasco")
    return Path(root) / "tables"


def cache_key(spec_file: Path, space_file: Path, source: Path) -> str:
    h = hashlib.sha256(f"nasco-table-v{FORMAT_VERSION}\0".encode())
    for p in (spec_file, space_file):
        h.update(Path(p).read_bytes())
        h.update(b"\0")
    st = source.stat()
    h.update(f"{st.st_size}\0{st.st_mtime_ns}\0".encode())
    with open(source, "rb") as fh:
        h.update(fh.read(_EDGE))
        if st.st_size > _EDGE:
            fh.seek(max(_EDGE, st.st_size - _EDGE))
            h.update(fh.read())
    return h.hexdigest()[:20]


def atomic_write_parquet(table, path: Path) -> None:
    """Write a pyarrow table to ``path`` through a temporary file in the same folder."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="none", use_dictionary=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
