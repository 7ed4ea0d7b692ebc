"""Fixtures of the CLI tests."""
from __future__ import annotations

import pytest

from nasco.cli import main


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def run_cli():
    """``run_cli(capsys, *argv)``: run ``nasco *argv`` in-process; (exit code, stdout, stderr)."""
    return _run
