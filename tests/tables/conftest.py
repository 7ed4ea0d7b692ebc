from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("NASCO_NB201_DIR", Path(__file__).resolve().parents[2].parent / "shared" / "data" / "nb201"))


@pytest.fixture(scope="session")
def nb201_cache(tmp_path_factory):
    """One cache folder for the built-in nb201 table, built once per session."""
    return tmp_path_factory.mktemp("nasco-cache")


@pytest.fixture(scope="session")
def nb201(nb201_cache):
    from nasco.tables import load_table

    return load_table("nb201", cache=nb201_cache)
