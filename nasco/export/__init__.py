"""Found networks out of a run: NIR (spiking), ONNX and torch, each with a JSON sidecar.

A network is rebuilt from what the run kept: its training record (the resolved space, the
cell, the data shapes) and its weights in safetensors. The formats map nasco's plan, the
same graph the cost model reads, rather than a traced module.
"""
from __future__ import annotations

from nasco.export._errors import ExportError

__all__ = ["ExportError"]
