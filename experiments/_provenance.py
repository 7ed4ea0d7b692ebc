"""Where a result came from, for the reports the scripts in this folder write."""
from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def git_commit() -> str:
    """The checkout's short commit, marked when tracked files differ from it; "unknown" outside git."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return out + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


ANALYSIS_MARKER = "<!-- analysis -->"


def write_report(out: str | Path, lines: list[str]) -> Path:
    """Write ``lines`` to the markdown file ``out`` (its folder made if missing), keeping any
    hand-written analysis that an earlier version of the file holds below ANALYSIS_MARKER."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines) + "\n"
    if out.exists() and ANALYSIS_MARKER in out.read_text():
        text += "\n" + ANALYSIS_MARKER + out.read_text().split(ANALYSIS_MARKER, 1)[1]
    out.write_text(text)
    return out
