"""The base of every error nasco raises for a user's input."""
from __future__ import annotations

__all__ = ["NascoError", "RunDirError"]


class NascoError(ValueError):
    """A mistake in what the user gave (a spec, a flag, a run directory, a dataset).

    Its message is one line that names the place, what was expected, what was found and a
    fix; the command line prints it without a traceback and exits 2. It derives from
    ``ValueError`` so that callers catching bad values keep working.
    """


class RunDirError(NascoError):
    """A run directory cannot be used as asked (it holds another run, or a different one)."""
