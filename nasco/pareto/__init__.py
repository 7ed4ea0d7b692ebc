"""Non-dominated sets, hypervolume at a fixed reference (pymoo) and front plots."""
from __future__ import annotations

from nasco.pareto._front import (fix_bounds, hypervolume, minimisation_matrix, nondominated_mask,
                                 normalised_hypervolume, pareto_front)
from nasco.pareto._plot import AXIS_LABELS, plot_front

__all__ = ["AXIS_LABELS", "fix_bounds", "hypervolume", "minimisation_matrix", "nondominated_mask",
           "normalised_hypervolume", "pareto_front", "plot_front"]
