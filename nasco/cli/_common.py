"""Shared CLI plumbing: one-line errors with exit code 2, overrides, objectives."""
from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from nasco.dsl import SpecError, parse_overrides
from nasco.evaluate._result import OBJECTIVES

__all__ = ["UsageError", "Parser", "split_overrides", "split_task_overrides", "parse_objectives", "user_errors",
           "fail"]


class UsageError(ValueError):
    """A command-line mistake; printed as one line, exit code 2."""


def user_errors() -> tuple[type[BaseException], ...]:
    """The exception types that are the user's mistake: one line, exit code 2."""
    from nasco.run import RunDirError

    errs: list[type[BaseException]] = [SpecError, UsageError, RunDirError]
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


def split_task_overrides(items: list[str] | None, n_tasks: int) -> tuple[list[dict], dict]:
    """``--set`` items of a search with ``n_tasks`` spaces -> (overrides per space, hw overrides).

    ``KEY=V`` and ``space.KEY=V`` go to every space, ``taskI.KEY=V`` to space I only (0-based,
    in --space order), ``hw.KEY=V`` to the accelerator file.
    """
    per: list[dict[tuple[str, ...], Any]] = [{} for _ in range(n_tasks)]
    hw: dict[tuple[str, ...], Any] = {}
    for path, value in parse_overrides(items or []).items():
        head = path[0]
        if head == "hw" and len(path) > 1:
            hw[path[1:]] = value
        elif head.startswith("task") and head[4:].isdigit() and len(path) > 1:
            i = int(head[4:])
            if i >= n_tasks:
                raise UsageError(f"--set {'.'.join(path)}: there are {n_tasks} --space (task0..task{n_tasks - 1})")
            per[i][path[1:]] = value
        else:
            rest = path[1:] if head == "space" and len(path) > 1 else path
            for d in per:
                d[rest] = value
    return per, hw


def parse_objectives(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise UsageError("--objectives needs at least one name, e.g. accuracy,energy")
    for n in names:
        if n not in OBJECTIVES:
            import difflib
            close = difflib.get_close_matches(n, list(OBJECTIVES), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise UsageError(f"--objectives: unknown objective '{n}'; known: {', '.join(OBJECTIVES)}{hint}")
    if len(set(names)) != len(names):
        raise UsageError(f"--objectives: '{text}' names an objective twice")
    return names
