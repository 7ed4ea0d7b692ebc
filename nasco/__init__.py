"""nasco: neural architecture search for spiking and ANN networks co-designed with accelerators.

``nasco.create_study`` / ``nasco.load_study`` are the entry points (see :mod:`nasco.study`);
they are imported on first use, so ``import nasco`` stays light.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = ["Objective", "Study", "__version__", "create_study", "load_study"]

_LAZY = {"create_study": "nasco.study", "load_study": "nasco.study", "Study": "nasco.study",
         "Objective": "nasco.core"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nasco' has no attribute {name!r}")
