"""Test-wide settings: one thread everywhere (two OpenMP threads on a busy 2-core
machine can run tens of times slower), and a headless matplotlib."""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - torch is a declared dependency
    pass
