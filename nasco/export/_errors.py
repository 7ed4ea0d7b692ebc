"""The one error an export raises for what a format cannot hold or a run cannot give."""
from __future__ import annotations

from nasco.core import NascoError

__all__ = ["ExportError", "MissingWeightsError"]


class ExportError(NascoError):
    """An export refused: a layer the format cannot express exactly, or a candidate without
    weights. The message is one line: the layer (or candidate), the reason, and the fix
    (``--approximate``, ``--train`` or another format)."""

    def __init__(self, where: str, reason: str, hint: str) -> None:
        super().__init__(f"{where}: {reason}; {hint}")
        self.where, self.reason, self.hint = where, reason, hint


class MissingWeightsError(ExportError):
    """The run kept no weights for the candidate's network (a run from before nasco kept
    them, or its files were removed): training it first (``--train``) gives them."""
