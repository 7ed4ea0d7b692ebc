"""The one error type of the DSL: every user mistake becomes a single readable line."""
from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable

__all__ = ["MAX_SHOWN", "SpecError", "capped", "clip", "close_matches", "format_path", "shown"]

# The most characters of a user's value an error message shows: enough to recognise the value,
# and a message stays one readable line however large the value is.
MAX_SHOWN = 200

# Depth and items reprlib shows before '...': at most 8 items on each of 3 levels, so the
# repr itself stays small (reprlib never builds the full repr of what it leaves out).
_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxfrozenset = _REPR.maxdict = 8
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = MAX_SHOWN


def clip(text: str, limit: int = MAX_SHOWN) -> str:
    """``text`` cut to ``limit`` characters, the cut marked with '...' and the full length."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text):,} characters)"


def capped(value: object) -> str:
    """The repr of a user's value as messages show it: a few items per level, a few levels,
    at most :data:`MAX_SHOWN` characters (plus the cut mark)."""
    return clip(_REPR.repr(value))


def format_path(path: Iterable[str | int]) -> str:
    """Render a key path such as ``('cell', 'ops', 3)`` as ``cell.ops[3]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<top>"


def shown(value: object) -> object:
    """A found value as an error shows it: strings quoted (and capped), so ``"16"`` reads '16',
    not 16; other values are capped when the message is rendered."""
    return capped(value) if isinstance(value, str) else value


def close_matches(word: object, candidates: Iterable[str]) -> str | None:
    """A 'did you mean' hint listing up to three close names, or None."""
    text = word if isinstance(word, str) else capped(word)
    found = difflib.get_close_matches(text, list(candidates), n=3, cutoff=0.5)
    if not found:
        return None
    return "did you mean " + " or ".join(repr(f) for f in found) + "?"


class SpecError(ValueError):
    """A search-space, template or workload file that does not follow the DSL.

    It carries the file, the key path (and line where YAML gives one), what was
    expected, what was found and a hint, and renders them as one line.
    """

    def __init__(
        self,
        expected: str,
        found: object,
        *,
        file: str | None = None,
        path: Iterable[str | int] = (),
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.file = file
        self.path = tuple(path)
        self.line = line
        self.expected = expected
        self.found = found
        self.hint = hint
        super().__init__(str(self))

    def located(self, *, file: str | None = None, line: int | None = None) -> SpecError:
        """A copy of this error with the file (and line) filled in where missing."""
        return SpecError(
            self.expected,
            self.found,
            file=self.file or file,
            path=self.path,
            line=self.line if self.line is not None else line,
            hint=self.hint,
        )

    def __str__(self) -> str:
        where = self.file or ""
        if self.file and self.line is not None:
            where += f":{self.line}"
        # Found values come from the user: capped, so a huge value cannot make a huge message.
        found = clip(self.found, 2 * MAX_SHOWN) if isinstance(self.found, str) else capped(self.found)
        parts = [p for p in (where, format_path(self.path) if self.path else "") if p]
        text = ": ".join(parts + [f"expected {self.expected}, found {found}"])
        if self.hint:
            text += f"; {self.hint}"
        return text.replace("\n", " ")
