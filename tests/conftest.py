"""Test-wide settings: one thread everywhere (two OpenMP threads on a busy 2-core
machine can run tens of times slower), a headless matplotlib, and the shipped nb201 table."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - torch is a declared dependency
    pass


# The tests of these folders start processes (Ray clusters, process pools, drivers they kill).
# Under pytest-xdist's `--dist loadgroup` (setup.cfg) they share one worker, so no two of them
# compete for the machine's cores at once, nor two test Ray clusters run side by side.
PROCESS_HEAVY = frozenset({"run", "testing"})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if Path(str(item.path)).parent.name in PROCESS_HEAVY:
            item.add_marker(pytest.mark.xdist_group("processes"))


@pytest.fixture(scope="session")
def nb201_cache(tmp_path_factory):
    """One cache folder for the built-in nb201 table, built once per session."""
    return tmp_path_factory.mktemp("nasco-cache")


@pytest.fixture(scope="session")
def nb201(nb201_cache):
    """The NB201 lookup table shipped in search_spaces/ (15,625 cells, rows in official index order)."""
    from nasco.tables import load_table

    return load_table("nb201", cache=nb201_cache)


@pytest.fixture(autouse=True)
def _searches_skip_the_html_report(request, monkeypatch):
    """`nasco search` ends by writing the run's HTML report (a few seconds: plotly, the front
    architectures' per-layer costs and cell diagrams). The report's tests (tests/report and the
    test files named for it) cover it on real runs; the other tests' searches get a stub that
    writes nothing, so the suite does not pay it 78 times."""
    path = Path(str(request.path))
    if path.parent.name == "report" or "report" in path.name:
        return
    import nasco.report

    def stub(run_dir, out=None):
        folder = Path(out if out is not None else run_dir)
        return folder / nasco.report.HTML_FILE, folder / nasco.report.MD_FILE

    monkeypatch.setattr(nasco.report, "write_report", stub)


def _run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    from nasco.cli import main

    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def run_cli():
    """``run_cli(capsys, *argv)``: run ``nasco *argv`` in-process; (exit code, stdout, stderr)."""
    return _run_cli
