"""Non-dominated sets, hypervolume (pymoo) and front plots."""
from __future__ import annotations

from nasco.pareto._front import (hypervolume, minimisation_matrix, nondominated_mask, pareto_front,
                                 reference_point)
from nasco.pareto._plot import AXIS_LABELS, plot_front

__all__ = ["AXIS_LABELS", "hypervolume", "minimisation_matrix", "nondominated_mask", "pareto_front",
           "plot_front", "reference_point"]
