"""The Searcher protocol: ask / tell / state_dict / load_state_dict (the optuna/pymoo shape)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from nasco.core import Objective, ObjectiveSpec, Result, resolve_objectives
from nasco.space import Candidate, SearchSpace

__all__ = ["FRESH_TRIES", "Searcher"]

# How many draws :meth:`Searcher._fresh` makes before it accepts a candidate already seen
# (a nearly exhausted neighbourhood or space); each draw is a mutation or a sample, cheap.
FRESH_TRIES = 50


class Searcher:
    """Proposes candidates and learns from their results.

    The public methods check and record; subclasses implement ``_ask`` and ``_tell``.
    All randomness comes from ``self.rng``, seeded by the constructor, and its state is
    part of :meth:`state_dict`, so a searcher restored from a state dict continues
    exactly where the saved one stood.

    The base class also keeps the ids of every candidate asked or told (``seen``, saved in
    the state dict), so that subclasses can avoid proposing a candidate twice
    (:meth:`_fresh`): a repeat costs a query in a budgeted benchmark and teaches nothing.
    """

    name = "base"

    def __init__(self, space: SearchSpace, objectives: ObjectiveSpec, *, seed: int = 0) -> None:
        # Names resolve among the built-in objectives; anything else comes as an Objective
        # (or a {name: direction} mapping) with its direction.
        self.objective_defs: tuple[Objective, ...] = resolve_objectives(objectives)
        self.space = space
        self.objectives = tuple(o.name for o in self.objective_defs)
        self.directions = {o.name: o.direction for o in self.objective_defs}
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.n_told = 0
        self._seen: dict[str, None] = {}  # ids asked or told, in order (a dict keeps the order)

    def ask(self, n: int = 1) -> list[Candidate]:
        if n < 1:
            raise ValueError("ask(n) needs n >= 1")
        out = self._ask(n)
        if len(out) != n:  # pragma: no cover - subclass contract
            raise RuntimeError(f"{type(self).__name__}._ask returned {len(out)} candidates, not {n}")
        self._seen.update((c.id, None) for c in out)
        return out

    def tell(self, candidate: Candidate, result: Result) -> None:
        if not isinstance(result, Result):
            raise TypeError(f"tell() takes a Result, got {type(result).__name__}")
        self._tell(candidate, result)
        self.n_told += 1  # only once the subclass accepted it
        self._seen[candidate.id] = None

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed, "n_told": self.n_told,
                "rng": self.rng.bit_generator.state, "seen": list(self._seen), **self._state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise ValueError(f"state of searcher '{state.get('name')}' given to '{self.name}'")
        self.seed = state["seed"]
        self.n_told = state["n_told"]
        self.rng.bit_generator.state = state["rng"]
        self._seen = dict.fromkeys(state.get("seen", ()))
        self._load_state(state)

    def _fresh(self, draw: Callable[[], Candidate], also: set[str] | None = None) -> Candidate:
        """``draw()`` until it gives an id neither seen nor in ``also`` (ids already picked in
        this ask). After :data:`FRESH_TRIES` draws that all gave seen ids (every neighbour of a
        converged population taken, a nearly exhausted space), up to :data:`FRESH_TRIES`
        uniform samples of the space, which reach whatever is left; if none is new either,
        the last draw even if seen. So a searcher keeps proposing new candidates until the
        space is exhausted, with a bounded cost per ask."""
        also = also or set()

        def new(c: Candidate) -> bool:
            return c.id not in self._seen and c.id not in also

        cand = draw()
        for _ in range(FRESH_TRIES - 1):
            if new(cand):
                return cand
            cand = draw()
        if new(cand):
            return cand
        for _ in range(FRESH_TRIES):
            sample = self.space.sample(self.rng)
            if new(sample):
                return sample
        return cand

    def minimisation_form(self, result: Result) -> list[float]:
        """An ok result's objective values in this searcher's objective order, each in
        'smaller is better' form (maximised objectives negated)."""
        return [o.to_min(float(result.objectives[o.name])) for o in self.objective_defs]

    # ---------------------------------------------------------------- optional hooks
    def attach_run_dir(self, out_dir: str | Path, *, resume: bool) -> None:
        """Called by the driver once the run directory ``out_dir`` exists, before the first
        ask: a searcher that keeps files of its own (an Optuna study, supernet checkpoints)
        keeps them there, and with ``resume`` reattaches to those an earlier session left.
        The default keeps nothing."""

    def candidate_info(self, candidate: Candidate) -> dict[str, Any] | None:
        """JSON data on how this searcher proposed ``candidate`` (asked for once per new
        candidate, right after it was proposed); the ledger keeps it in the row's
        ``metrics["search"]``. A ``search_failed`` entry (a reason) makes the row a failed
        one without an evaluation. The default records nothing (None)."""
        return None

    def _require_objectives(self, candidate: Candidate, result: Result) -> None:
        """For subclasses that rank by objective values: an ok result must carry them all."""
        if result.status == "ok":
            missing = [o for o in self.objectives if o not in result.objectives]
            if missing:
                raise ValueError(f"ok result for {candidate.id} lacks objectives {missing}; "
                                 f"it has {sorted(result.objectives)}")

    # ---------------------------------------------------------------- subclass hooks
    def _ask(self, n: int) -> list[Candidate]:
        raise NotImplementedError

    def _tell(self, candidate: Candidate, result: Result) -> None:
        pass

    def _state(self) -> dict[str, Any]:
        return {}

    def _load_state(self, state: dict[str, Any]) -> None:
        pass
