"""nasco: neural architecture search for spiking and ANN networks co-designed with accelerators."""
from __future__ import annotations

__version__ = "0.1.0"

