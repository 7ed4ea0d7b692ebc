"""The concepts every layer of nasco shares; nothing here imports the rest of nasco."""
from __future__ import annotations

from nasco.core._registry import Registry

__all__ = ["Registry"]
