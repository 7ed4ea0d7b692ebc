"""Where parsed tables are cached, under which key, and how a cache file is written and checked.

A cache file is a parquet file named by the table and by a hash of everything it was built
from: the DSL file, the space file and the sha256 of the data file's bytes, so an edited
source is reparsed and an old cache is simply never read again. The file's own metadata
records that key and the data file's sha256; a cache whose record does not match the table
being loaded (a file copied or swapped in from another table) is never served. It is written
to a temporary file and renamed into place: a crash leaves no half cache.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

__all__ = ["FORMAT_VERSION", "atomic_write_parquet", "cache_dir", "cache_key", "source_digest",
           "stamp", "stamp_mismatch"]

# Bump when the layout of cache files changes.
FORMAT_VERSION = 2
_CHUNK = 1 << 20
_KEY = b"nasco.cache_key"
_SOURCE = b"nasco.source_sha256"


def cache_dir() -> Path:
    """$NASCO_CACHE, else $XDG_CACHE_HOME/nasco, else ~/.cache/nasco; tables go in tables/."""
    root = os.environ.get("NASCO_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = str(Path(xdg) / "nasco") if xdg else str(Path.home() / ".cache" / "nasco")
    return Path(root) / "tables"


def source_digest(source: Path) -> str:
    """The sha256 (hex) of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(source, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_key(spec_file: Path, space_file: Path, digest: str, index_file: Path | None = None) -> str:
    """The hex key of a table built from these DSL files and a data file of sha256 ``digest``
    (and the space's official index file, whose content maps arch strings to rows)."""
    h = hashlib.sha256(f"nasco-table-v{FORMAT_VERSION}\0".encode())
    for p in (spec_file, space_file):
        h.update(Path(p).read_bytes())
        h.update(b"\0")
    h.update(digest.encode())
    if index_file is not None:
        h.update(b"\0index\0" + source_digest(index_file).encode())
    return h.hexdigest()


def stamp(key: str, digest: str) -> dict[bytes, bytes]:
    """The parquet metadata that ties a cache file to its key and its data file."""
    return {_KEY: key.encode(), _SOURCE: digest.encode()}


def stamp_mismatch(metadata: dict[bytes, bytes] | None, key: str, digest: str) -> str | None:
    """Why a cache file's metadata does not belong to (key, digest), or None when it does."""
    meta = metadata or {}
    got_source = meta.get(_SOURCE, b"").decode(errors="replace")
    got_key = meta.get(_KEY, b"").decode(errors="replace")
    if not got_source or not got_key:
        return "it records no source hash"
    if got_source != digest:
        return (f"it was built from other data (sha256 {got_source[:16]}..., the data file's is "
                f"{digest[:16]}...)")
    if got_key != key:
        return f"it was built for another table or space file (key {got_key[:16]}..., expected {key[:16]}...)"
    return None


def atomic_write_parquet(table, path: Path, metadata: dict[bytes, bytes] | None = None) -> None:
    """Write a pyarrow table, with ``metadata`` added to its schema, to ``path`` through a
    temporary file in the same folder."""
    import pyarrow.parquet as pq

    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="none", use_dictionary=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
