"""The contract every :class:`nasco.search.Searcher` must keep, as reusable checks.

Two ways to use it (the optuna ``testing/pytest_samplers.py`` pattern):

* call :func:`check_searcher` (or one ``check_*`` function) on a searcher class; or
* subclass :class:`SearcherContract` in a test module under a ``Test*`` name and
  provide a ``searcher_cls`` fixture, e.g. parametrised over ``nasco.search.SEARCHERS``.

The checks need no pytest (plain asserts) and run on the built-in joint space
``darts_snn`` x ``asic_template`` unless given another. Results come from
:func:`toy_result`, a deterministic stand-in evaluator that yields all three statuses.
"""
from __future__ import annotations

import functools
import json
from typing import Any, Callable

import numpy as np

from nasco.core import Result
from nasco.search._base import Searcher
from nasco.space import Candidate, SearchSpace

__all__ = ["OBJECTIVE_SETS", "SearcherContract", "check_ask_valid", "check_rejects_bad_input",
           "check_restore", "check_searcher", "check_seeded", "check_tell_statuses", "default_space",
           "drive", "linear_score_best", "toy_result"]

# One objective of each sense, two, and all the cost-model ones together.
OBJECTIVE_SETS: tuple[tuple[str, ...], ...] = (
    ("accuracy",), ("energy",), ("accuracy", "energy"), ("accuracy", "energy", "latency", "area"),
)

SearcherFactory = Callable[..., Searcher]


@functools.lru_cache(maxsize=1)
def default_space() -> SearchSpace:
    """The built-in joint space (cached: parsing the DSL files once is enough)."""
    from nasco.dsl import load_spec
    return SearchSpace(load_spec("darts_snn"), load_spec("asic_template"))


@functools.lru_cache(maxsize=8)
def _weights(n: int) -> np.ndarray:
    return np.random.default_rng(20190127).normal(size=(4, n))


def toy_result(space: SearchSpace, cand: Candidate, objectives: tuple[str, ...] = ("accuracy",)) -> Result:
    """A deterministic result computed from the candidate alone.

    About 1 in 7 candidates fail and 1 in 7 are infeasible (by id); objective values are
    smooth functions of ``space.encode(cand)``, so search has something to climb.
    """
    h = int(cand.id[:8], 16)
    if h % 7 == 0:
        return Result.failed("toy: candidate rejected")
    x = space.encode(cand)
    z = _weights(x.size) @ x / np.sqrt(max(x.sum(), 1.0))
    values = {
        "accuracy": float(1.0 / (1.0 + np.exp(-z[0]))),
        "energy": float(1e-3 * np.exp(z[1])),
        "latency": float(1e-2 * np.exp(z[2])),
        "area": float(np.exp(z[3])),
        "params": float(1e5 * np.exp(z[1] + z[3])),
        "macs": float(1e7 * np.exp(z[2] + z[3])),
    }
    objs = {o: values[o] for o in objectives}
    if h % 7 == 1:
        viol = {} if h % 3 == 0 else {"energy": 1e-4 * (h % 5)}
        return Result("infeasible", objs, violations=viol)
    return Result("ok", objs, metrics={"toy": True})


def linear_score_best(name: str, space: SearchSpace, seed: int, n: int, w: np.ndarray, *,
                      fail_below: float | None = None, **kw: Any) -> float:
    """The best accuracy searcher ``name`` finds in ``n`` sequential asks when a candidate
    scores ``w @ space.encode(cand)`` (a smooth stand-in for accuracy: every choice matters a
    little). Below ``fail_below`` a candidate is a failed one instead."""
    from nasco.search import make_searcher

    s = make_searcher(name, space, ("accuracy",), seed, **kw)
    best = -np.inf
    for _ in range(n):
        cand = s.ask()[0]
        value = float(w @ space.encode(cand))
        best = max(best, value)
        failed = fail_below is not None and value <= fail_below
        s.tell(cand, Result.failed("toy: too low") if failed else Result("ok", {"accuracy": value}))
    return best


def drive(searcher: Searcher, rounds: int, *, batch: int = 1) -> list[str]:
    """Ask ``batch`` candidates ``rounds`` times, telling toy results; the ids asked."""
    ids: list[str] = []
    for _ in range(rounds):
        for cand in searcher.ask(batch):
            ids.append(cand.id)
            searcher.tell(cand, toy_result(searcher.space, cand, searcher.objectives))
    return ids


def _make(factory: SearcherFactory, space: SearchSpace, objectives: tuple[str, ...], seed: int,
          kwargs: dict[str, Any]) -> Searcher:
    return factory(space, objectives, seed=seed, **kwargs)


def check_ask_valid(factory: SearcherFactory, space: SearchSpace | None = None, *, rounds: int = 30,
                    **kwargs: Any) -> None:
    """ask(n) returns n candidates of the space, before and after results are told."""
    space = space or default_space()
    s = _make(factory, space, ("accuracy", "energy"), 0, kwargs)
    for n in (1, 3):
        out = s.ask(n)
        assert isinstance(out, list) and len(out) == n, f"ask({n}) returned {out!r}"
        for cand in out:
            assert isinstance(cand, Candidate), f"ask returned {type(cand).__name__}, not a Candidate"
            space.check(cand)
            s.tell(cand, toy_result(space, cand, s.objectives))
    for _ in range(rounds):
        cand = s.ask(1)[0]
        space.check(cand)
        s.tell(cand, toy_result(space, cand, s.objectives))


def check_tell_statuses(factory: SearcherFactory, space: SearchSpace | None = None, *, rounds: int = 30,
                        **kwargs: Any) -> None:
    """tell accepts ok, infeasible (with or without violations) and failed results, and
    asking goes on for every objective set."""
    space = space or default_space()
    statuses = {toy_result(space, space.sample(np.random.default_rng(i))).status for i in range(40)}
    assert statuses == {"ok", "failed", "infeasible"}, statuses
    for objectives in OBJECTIVE_SETS:
        s = _make(factory, space, objectives, 1, kwargs)
        cand = s.ask(1)[0]
        s.tell(cand, Result("ok", {o: 0.5 for o in objectives}))
        cand = s.ask(1)[0]
        s.tell(cand, Result("infeasible", {o: 0.5 for o in objectives}, violations={"area": 1.0}))
        cand = s.ask(1)[0]
        s.tell(cand, Result("infeasible"))
        cand = s.ask(1)[0]
        s.tell(cand, Result.failed("ValueError: boom"))
        drive(s, rounds)
        assert s.n_told == rounds + 4, f"n_told is {s.n_told}, expected {rounds + 4}"
        for cand in s.ask(2):
            space.check(cand)


def check_seeded(factory: SearcherFactory, space: SearchSpace | None = None, *, rounds: int = 30,
                 **kwargs: Any) -> None:
    """The same seed asks the same sequence; another seed asks another."""
    space = space or default_space()
    for objectives in (("accuracy",), ("accuracy", "energy", "latency")):
        a = drive(_make(factory, space, objectives, 7, kwargs), rounds)
        b = drive(_make(factory, space, objectives, 7, kwargs), rounds)
        c = drive(_make(factory, space, objectives, 8, kwargs), rounds)
        assert a == b, "two searchers with the same seed asked different candidates"
        assert a != c, "searchers with seeds 7 and 8 asked the same candidates"


def check_restore(factory: SearcherFactory, space: SearchSpace | None = None, *,
                  points: tuple[int, ...] = (0, 5, 30), after: int = 12, **kwargs: Any) -> None:
    """state_dict() is JSON data, and a new searcher (same seed) that loads it asks the
    same next candidates as the original. ``points`` are the rounds at which to save."""
    space = space or default_space()
    for objectives in (("accuracy",), ("accuracy", "energy")):
        for k in points:
            orig = _make(factory, space, objectives, 3, kwargs)
            drive(orig, k)
            state = json.loads(json.dumps(orig.state_dict()))
            copy = _make(factory, space, objectives, 3, kwargs)
            copy.load_state_dict(state)
            assert copy.n_told == orig.n_told
            assert drive(copy, after) == drive(orig, after), \
                f"restored searcher diverged from the original after {k} rounds ({objectives})"
            assert json.loads(json.dumps(copy.state_dict())) == json.loads(json.dumps(orig.state_dict()))


def check_rejects_bad_input(factory: SearcherFactory, space: SearchSpace | None = None,
                            **kwargs: Any) -> None:
    """ask(0), unknown or no objectives, and a state dict of another searcher raise ValueError."""
    space = space or default_space()
    s = _make(factory, space, ("accuracy",), 0, kwargs)
    for bad in (lambda: s.ask(0),
                lambda: _make(factory, space, ("acuracy",), 0, kwargs),
                lambda: _make(factory, space, (), 0, kwargs),
                lambda: s.load_state_dict({**s.state_dict(), "name": "not-" + s.name})):
        try:
            bad()
        except ValueError:
            continue
        raise AssertionError("expected ValueError")


def check_searcher(factory: SearcherFactory, space: SearchSpace | None = None, **kwargs: Any) -> None:
    """Every check above; ``kwargs`` go to the searcher's constructor."""
    for check in (check_ask_valid, check_tell_statuses, check_seeded, check_restore, check_rejects_bad_input):
        check(factory, space, **kwargs)


class SearcherContract:
    """pytest mix-in: each check as a test. The test module supplies ``searcher_cls``
    (a fixture); override :meth:`searcher_kwargs` or :meth:`make_space` to adapt."""

    def searcher_kwargs(self, searcher_cls: type[Searcher]) -> dict[str, Any]:
        return {}

    def make_space(self) -> SearchSpace:
        return default_space()

    def test_ask_returns_valid_candidates(self, searcher_cls: type[Searcher]) -> None:
        check_ask_valid(searcher_cls, self.make_space(), **self.searcher_kwargs(searcher_cls))

    def test_tell_accepts_every_status(self, searcher_cls: type[Searcher]) -> None:
        check_tell_statuses(searcher_cls, self.make_space(), **self.searcher_kwargs(searcher_cls))

    def test_same_seed_same_sequence(self, searcher_cls: type[Searcher]) -> None:
        check_seeded(searcher_cls, self.make_space(), **self.searcher_kwargs(searcher_cls))

    def test_state_dict_round_trip(self, searcher_cls: type[Searcher]) -> None:
        check_restore(searcher_cls, self.make_space(), **self.searcher_kwargs(searcher_cls))

    def test_rejects_bad_input(self, searcher_cls: type[Searcher]) -> None:
        check_rejects_bad_input(searcher_cls, self.make_space(), **self.searcher_kwargs(searcher_cls))
