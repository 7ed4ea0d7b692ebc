"""Shared CLI plumbing: one-line errors with exit code 2, overrides, objectives."""
from __future__ import annotations

import argparse
import math
import sys
from typing import Any, NoReturn

from nasco.core import NascoError
from nasco.dsl import SpecError, parse_overrides

__all__ = ["UsageError", "Parser", "split_overrides", "user_errors", "fail", "int_in", "float_in", "nonempty",
           "key_value"]


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


# ---------------------------------------------------------------------- flag value types
# argparse calls these on the flag's text; an ArgumentTypeError becomes one line naming the flag
# ("argument --epochs: expected an integer >= 1, found '0'").
def _range_text(lo: float | None, hi: float | None) -> str:
    def num(v: float) -> str:
        return str(v) if isinstance(v, int) else f"{v:g}"

    if lo is not None and hi is not None:
        return f"in [{num(lo)}, {num(hi)}]"
    return f">= {num(lo)}" if lo is not None else f"<= {num(hi)}"  # type: ignore[arg-type]


def int_in(lo: int | None = None, hi: int | None = None) -> Any:
    """An argparse type: an integer in [lo, hi] (either end open when None)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer {_range_text(lo, hi)}, found '{text}'") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"expected an integer {_range_text(lo, hi)}, found '{text}'")
        return value
    parse.__name__ = "integer"
    return parse


def float_in(lo: float | None = None, hi: float | None = None, *, above: bool = False) -> Any:
    """An argparse type: a finite number in [lo, hi] (``above``: strictly greater than lo)."""
    rule = f"> {lo:g}" if above and lo is not None and hi is None else _range_text(lo, hi)

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        ok = math.isfinite(value) and (lo is None or (value > lo if above else value >= lo)) \
            and (hi is None or value <= hi)
        if not ok:
            raise argparse.ArgumentTypeError(f"expected a finite number {rule}, found '{text}'")
        return value
    parse.__name__ = "number"
    return parse


def nonempty(what: str) -> Any:
    """An argparse type: text that is not empty or blank."""
    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"expected {what}, found an empty value")
        return text
    parse.__name__ = "name"
    return parse


def key_value(text: str) -> str:
    """An argparse type for ``--set``: KEY=VALUE with a dotted KEY of non-empty parts."""
    key, eq, _value = text.partition("=")
    parts = key.strip().split(".")
    if not eq or not all(p.strip() for p in parts):
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with a dotted KEY such as dataflow=ws or "
                                         f"macro.cells=3, found '{text}'")
    return text


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
