"""The one error type of the DSL: every user mistake becomes a single readable line."""
from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["SpecError", "close_matches", "format_path", "shown"]


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
    """A found value as an error shows it: strings quoted, so ``"16"`` reads '16', not 16."""
    return repr(value) if isinstance(value, str) else value


def close_matches(word: object, candidates: Iterable[str]) -> str | None:
    """A 'did you mean' hint listing up to three close names, or None."""
    found = difflib.get_close_matches(str(word), list(candidates), n=3, cutoff=0.5)
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
        found = self.found if isinstance(self.found, str) else repr(self.found)
        parts = [p for p in (where, format_path(self.path) if self.path else "") if p]
        text = ": ".join(parts + [f"expected {self.expected}, found {found}"])
        if self.hint:
            text += f"; {self.hint}"
        return text.replace("\n", " ")
