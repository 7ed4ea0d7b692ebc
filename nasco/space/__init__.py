"""Candidates and the joint architecture x accelerator search space."""
from __future__ import annotations

from nasco.space._candidate import Candidate, canonical_json
from nasco.space._cells import CellFamily, DartsCells, DenseCell, cell_family, cell_graph
from nasco.space._space import SearchSpace, SpaceSize

__all__ = ["Candidate", "CellFamily", "DartsCells", "DenseCell", "SearchSpace", "SpaceSize",
           "canonical_json", "cell_family", "cell_graph"]
