"""The concepts every layer of nasco shares: candidates, objectives, results, the evaluator
protocol, the base error and the registry. This package imports nothing else from nasco."""
from __future__ import annotations

from nasco.core._candidate import Candidate, canonical_json
from nasco.core._errors import NascoError, RunDirError
from nasco.core._objective import BUILTIN_OBJECTIVES, DIRECTIONS, Objective, ObjectiveSpec, resolve_objectives
from nasco.core._registry import Registry
from nasco.core._result import (
    EVALUATOR_HOOKS,
    FRONT_METRICS,
    MEMBER_STATUSES,
    OPTIONAL_EVALUATOR_ATTRS,
    STATUSES,
    Evaluator,
    EvaluatorBase,
    Result,
    evaluator_attr,
    evaluator_hook,
    member_error,
)

__all__ = ["BUILTIN_OBJECTIVES", "Candidate", "DIRECTIONS", "EVALUATOR_HOOKS", "Evaluator",
           "EvaluatorBase", "FRONT_METRICS", "MEMBER_STATUSES", "NascoError", "OPTIONAL_EVALUATOR_ATTRS",
           "Objective", "ObjectiveSpec", "Registry", "Result", "RunDirError", "STATUSES", "canonical_json",
           "evaluator_attr", "evaluator_hook", "member_error", "resolve_objectives"]
