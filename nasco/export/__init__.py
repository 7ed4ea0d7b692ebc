"""Found networks out of a run: NIR (spiking), ONNX and torch, each with a JSON sidecar.

A network is rebuilt from what the run kept: its training record (the resolved space, the
cell, the data shapes) and its weights in safetensors. The formats map nasco's plan, the
same graph the cost model reads, rather than a traced module.
"""
from __future__ import annotations

from nasco.export._errors import ExportError, MissingWeightsError
from nasco.export._export import EXPORTS_DIR, FORMATS, SIDECAR, Format, export, export_network
from nasco.export._network import TrainedNetwork, find_pair, load_network
from nasco.export._torch import load_torch

__all__ = ["EXPORTS_DIR", "ExportError", "FORMATS", "Format", "MissingWeightsError", "SIDECAR",
           "TrainedNetwork", "export", "export_network", "find_pair", "load_network", "load_torch"]
