"""Candidates and the joint architecture x accelerator search space."""
from __future__ import annotations

from nasco.core import Candidate, canonical_json
from nasco.space._cells import CellFamily, DartsCells, DenseCell, cell_family, cell_graph
from nasco.space._hw import (
    SUBS_KEY, HwSpace, MultiAcceleratorSpace, TemplateSetSpace, TemplateSpace, hw_space,
)
from nasco.space._space import TASKS_KEY, ArchPart, SearchSpace, SpaceSize

__all__ = ["ArchPart", "Candidate", "CellFamily", "DartsCells", "DenseCell", "HwSpace", "MultiAcceleratorSpace",
           "SUBS_KEY", "SearchSpace", "SpaceSize", "TASKS_KEY", "TemplateSetSpace", "TemplateSpace",
           "canonical_json", "cell_family", "cell_graph", "hw_space"]
