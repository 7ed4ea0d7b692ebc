"""Non-dominated sets, hypervolume at a fixed reference (pymoo) and the run's plots."""
from __future__ import annotations

from nasco.pareto._front import (fix_bounds, hypervolume, minimisation_matrix, nondominated_mask,
                                 normalised_hypervolume, pareto_front)
from nasco.pareto._pairs import expand_pairs
from nasco.pareto._history import best_so_far, history_figure, hypervolume_history, plot_history
from nasco.pareto._plot import front_figure, plot_front, template_colours, template_of
from nasco.pareto._units import ENGINEERING_UNITS, axis_label, display_unit

__all__ = ["ENGINEERING_UNITS", "axis_label", "best_so_far", "display_unit", "expand_pairs", "fix_bounds",
           "front_figure", "history_figure", "hypervolume", "hypervolume_history", "minimisation_matrix",
           "nondominated_mask", "normalised_hypervolume", "pareto_front", "plot_front", "plot_history",
           "template_colours", "template_of"]
