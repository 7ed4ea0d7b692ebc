"""A run's report: one self-contained HTML file (works offline) and a markdown summary; one
candidate's description and cell diagram."""
from __future__ import annotations

from nasco.report._report import HTML_FILE, MD_FILE, write_report
from nasco.report._show import show_candidate

__all__ = ["HTML_FILE", "MD_FILE", "show_candidate", "write_report"]
