"""The error of a table that cannot be loaded: one line naming the file and the fault."""
from __future__ import annotations

from nasco.dsl import SpecError

__all__ = ["TableError"]


class TableError(SpecError):
    """A lookup table (its data file or its DSL file) that cannot be loaded.

    A SpecError, so the CLI prints it as one line and exits 2.
    """

    def __init__(self, problem: str, *, file: str, hint: str | None = None) -> None:
        self.problem = problem
        super().__init__("a valid lookup table", problem, file=file, hint=hint)

    def located(self, *, file: str | None = None, line: int | None = None) -> TableError:
        return self

    def __str__(self) -> str:
        text = f"{self.file}: {self.problem}" + (f"; {self.hint}" if self.hint else "")
        return text.replace("\n", " ")
