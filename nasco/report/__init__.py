"""A run's report: one self-contained HTML file (works offline) and a markdown summary."""
from __future__ import annotations

__all__: list[str] = []
