"""Shared CLI plumbing: one-line errors with exit code 2, overrides, objectives."""
from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from nasco.core import NascoError
from nasco.dsl import SpecError, parse_overrides

__all__ = ["UsageError", "Parser", "split_overrides", "user_errors", "fail"]


class UsageError(NascoError):
    """A command-line mistake; printed as one line, exit code 2."""


def user_errors() -> tuple[type[BaseException], ...]:
    """The exception types that are the user's mistake: one line, exit code 2."""
    from nasco.run import RunDirError

    errs: list[type[BaseException]] = [NascoError, SpecError, UsageError, RunDirError]
    try:
        from nasco.evaluate._data import DatasetError
        errs.append(DatasetError)
    except ImportError:  # pragma: no cover - torch missing
        pass
    return tuple(errs)



def fail(message: str) -> NoReturn:
    print(f"nasco: error: {message}", file=sys.stderr)
    raise SystemExit(2)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors that point at --help."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        fail(f"{message}; see '{self.prog} --help'")


def split_overrides(items: list[str] | None) -> tuple[dict, dict]:
    """``--set`` items -> (space overrides, hw overrides); keys starting 'hw.' go to the template."""
    space: dict[tuple[str, ...], Any] = {}
    hw: dict[tuple[str, ...], Any] = {}
    for path, value in parse_overrides(items or []).items():
        if path[0] == "hw" and len(path) > 1:
            hw[path[1:]] = value
        elif path[0] == "space" and len(path) > 1:
            space[path[1:]] = value
        else:
            space[path] = value
    return space, hw
