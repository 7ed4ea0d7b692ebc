"""The evaluator's optional attributes: declared defaults on EvaluatorBase, read with
evaluator_attr for duck-typed evaluators, passed on by the design-spec wrapper, pickled."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from nasco.core import Candidate, EvaluatorBase, Objective, Result, evaluator_attr
from nasco.study._evaluators import FunctionEvaluator, SpecChecked
from nasco.testing import default_space


class Plain:
    """A user's evaluator that inherits nothing."""

    objectives = ("accuracy",)

    def evaluate(self, candidate: Candidate, seed: int) -> Result:
        return Result("ok", {"accuracy": 0.5})


class Declared(EvaluatorBase):
    objectives = ("accuracy", "cells")
    report_metrics = ("test_accuracy",)
    limits = {"latency": 1e-3}
    objective_defs = (Objective("cells", "min", "count"),)

    def evaluate(self, candidate: Candidate, seed: int) -> Result:
        return Result("ok", {"accuracy": 0.5, "cells": 3.0})


def _score(cand: Candidate) -> dict[str, float]:
    return {"accuracy": 0.25}


def test_defaults_for_duck_typed_and_base_evaluators() -> None:
    for ev in (Plain(), FunctionEvaluator(_score, ("accuracy",))):
        assert evaluator_attr(ev, "report_metrics") == ()
        assert evaluator_attr(ev, "limits") is None
        assert evaluator_attr(ev, "objective_defs") == ()
    with pytest.raises(ValueError, match="not an optional evaluator attribute"):
        evaluator_attr(Plain(), "objectivs")


def test_spec_checked_passes_on_the_inner_attributes_and_pickles() -> None:
    space = default_space()
    wrapped = SpecChecked(Declared(), space)
    assert evaluator_attr(wrapped, "report_metrics") == ("test_accuracy",)
    assert evaluator_attr(wrapped, "limits") == {"latency": 1e-3}
    assert [o.name for o in evaluator_attr(wrapped, "objective_defs")] == ["cells"]
    plain = SpecChecked(Plain(), space)
    assert evaluator_attr(plain, "report_metrics") == () and evaluator_attr(plain, "limits") is None
    # The pool and Ray ship evaluators to their workers pickled.
    back = pickle.loads(pickle.dumps(SpecChecked(FunctionEvaluator(_score, ("accuracy",)), space)))
    cand = space.sample(np.random.default_rng(0))
    assert back.objectives == ("accuracy",) and back.inner.evaluate(cand, 0).objectives == {"accuracy": 0.25}
    assert evaluator_attr(pickle.loads(pickle.dumps(wrapped)), "report_metrics") == ("test_accuracy",)


class Trainer(EvaluatorBase):
    """Declares the training hooks."""

    objectives = ("accuracy",)
    trains = True

    def __init__(self) -> None:
        self.attached: list[tuple[str, bool, int]] = []
        self.adopted: dict = {}

    def attach_run_dir(self, out_dir, *, resume: bool, seed: int) -> None:
        self.attached.append((str(out_dir), resume, seed))

    def training_keys(self, candidate: Candidate) -> tuple[str, ...]:
        return (f"k-{candidate.id}",)

    def shared_state(self, candidates) -> dict:
        return {f"s-{c.id}": c.id for c in candidates}

    def adopt_shared_state(self, state) -> None:
        self.adopted.update(state)

    def evaluate(self, candidate: Candidate, seed: int) -> Result:
        return Result("ok", {"accuracy": 0.5})


def test_training_hooks_default_to_none_and_pass_through_the_wrapper(tmp_path) -> None:
    from nasco.core import evaluator_hook

    space = default_space()
    cand = space.sample(np.random.default_rng(0))
    for ev in (Plain(), FunctionEvaluator(_score, ("accuracy",)), SpecChecked(Plain(), space)):
        assert evaluator_attr(ev, "trains") is False
        assert evaluator_hook(ev, "training_keys")(cand) == ()
        assert evaluator_hook(ev, "attach_run_dir")(tmp_path, resume=False, seed=3) is None
        assert evaluator_hook(ev, "shared_state")([cand]) == {}
        assert evaluator_hook(ev, "adopt_shared_state")({"k": 1}) is None
    inner = Trainer()
    wrapped = SpecChecked(inner, space)
    assert evaluator_attr(wrapped, "trains") is True
    assert evaluator_hook(wrapped, "training_keys")(cand) == (f"k-{cand.id}",)
    evaluator_hook(wrapped, "attach_run_dir")(tmp_path, resume=True, seed=3)
    assert inner.attached == [(str(tmp_path), True, 3)]
    assert evaluator_hook(wrapped, "shared_state")([cand]) == {f"s-{cand.id}": cand.id}
    evaluator_hook(wrapped, "adopt_shared_state")({"k": 1})
    assert inner.adopted == {"k": 1}
    with pytest.raises(ValueError, match="not an optional evaluator hook"):
        evaluator_hook(inner, "train")
