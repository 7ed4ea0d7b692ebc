"""The facade users call: ``create_study`` / ``load_study`` and the :class:`Study` (Optuna's
shape, nasco's semantics)."""
from __future__ import annotations

from nasco.study._evaluators import EVALUATOR_KINDS, FunctionEvaluator, default_objectives, make_evaluator
from nasco.study._spaces import build_space, split_task_overrides
from nasco.study._study import DEFAULT_SEARCHER, Study, create_study, load_study

__all__ = ["DEFAULT_SEARCHER", "EVALUATOR_KINDS", "FunctionEvaluator", "Study", "build_space", "create_study",
           "default_objectives", "load_study", "make_evaluator", "split_task_overrides"]
