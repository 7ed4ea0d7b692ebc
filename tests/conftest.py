"""Test-wide settings: one thread everywhere (two OpenMP threads on a busy 2-core
machine can run tens of times slower), a headless matplotlib, and the shipped nb201 table."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - torch is a declared dependency
    pass


@pytest.fixture(scope="session")
def nb201_cache(tmp_path_factory):
    """One cache folder for the built-in nb201 table, built once per session."""
    return tmp_path_factory.mktemp("nasco-cache")


@pytest.fixture(scope="session")
def nb201(nb201_cache):
    """The NB201 lookup table shipped in search_spaces/ (15,625 cells, rows in official index order)."""
    from nasco.tables import load_table

    return load_table("nb201", cache=nb201_cache)
