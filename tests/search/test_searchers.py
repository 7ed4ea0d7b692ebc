"""Every registered searcher through the shipped contract, plus regularized-evolution specifics."""
from __future__ import annotations

import numpy as np
import pytest

from nasco.core import Result
from nasco.search import SEARCHERS, RandomSearch, RegularizedEvolution, Searcher, make_searcher
from nasco.search._evolution import tournament_order
from nasco.testing.searcher_contract import SearcherContract, default_space, linear_score_best


@pytest.fixture(params=sorted(SEARCHERS))
def searcher_cls(request: pytest.FixtureRequest) -> type[Searcher]:
    return SEARCHERS[request.param]


class TestSearcherContract(SearcherContract):
    """The contract of nasco.testing, applied to every entry of SEARCHERS."""


@pytest.fixture(scope="module")
def space():
    return default_space()


def test_registry_and_factory(space):
    assert {"random": RandomSearch, "evolution": RegularizedEvolution}.items() <= SEARCHERS.items()
    s = make_searcher("evolution", space, ("accuracy", "energy"), 3, population_size=8, sample_size=3)
    assert isinstance(s, RegularizedEvolution)
    assert (s.population_size, s.sample_size, s.seed, s.objectives) == (8, 3, 3, ("accuracy", "energy"))
    with pytest.raises(ValueError, match=r"unknown searcher 'evolutoin'.*did you mean 'evolution'"):
        make_searcher("evolutoin", space, ("accuracy",), 0)
    with pytest.raises(ValueError, match="known: .*evolution, .*random"):
        make_searcher("nsga9", space, ("accuracy",), 0)


def test_evolution_rejects_bad_settings(space):
    with pytest.raises(ValueError, match="sample_size"):
        RegularizedEvolution(space, ("accuracy",), population_size=4, sample_size=5)
    with pytest.raises(ValueError, match="population_size"):
        RegularizedEvolution(space, ("accuracy",), population_size=0, sample_size=1)
    s = RegularizedEvolution(space, ("accuracy", "energy"))
    cand = s.ask()[0]
    with pytest.raises(ValueError, match=r"lacks objectives \['energy'\]"):
        s.tell(cand, Result("ok", {"accuracy": 0.5}))


def _ok(**objs: float) -> Result:
    return Result("ok", objs)


def test_tournament_order_feasibility_then_rank_then_crowding():
    objectives = ("accuracy", "energy")
    results = [
        Result.failed("boom"),                                                # 0
        Result("infeasible", {"accuracy": 0.99, "energy": 0.0}, violations={"area": 2.0}),  # 1
        Result("infeasible", {"accuracy": 0.10, "energy": 9.0},
               violations={"area": 0.5, "latency": -1.0}),                    # 2: total 0.5
        _ok(accuracy=0.50, energy=5.0),   # 3: dominated by 5
        _ok(accuracy=0.90, energy=3.0),   # 4: front, extreme (best accuracy)
        _ok(accuracy=0.60, energy=2.0),   # 5: front, middle of three -> finite crowding
        _ok(accuracy=0.55, energy=1.0),   # 6: front, extreme (least energy)
        Result("infeasible", {"accuracy": 0.9, "energy": 1.0}),               # 7: none recorded: worst
    ]
    tie = np.zeros(len(results))
    order = tournament_order(results, objectives, tie).tolist()
    # Front extremes (infinite crowding, tie broken by position) then the middle, then
    # rank 1, then infeasible by total positive violation, then failed.
    assert order == [4, 6, 5, 3, 2, 1, 7, 0]
    # The seeded tie-break decides between the two extremes.
    tie = np.zeros(len(results))
    tie[4] = 0.9
    assert tournament_order(results, objectives, tie).tolist()[:2] == [6, 4]


def test_tournament_order_single_objective():
    results = [_ok(energy=3.0), _ok(energy=1.0),
               Result("infeasible", {"energy": 0.1}, violations={"area": 1}), _ok(energy=2.0)]
    assert tournament_order(results, ("energy",), np.zeros(4)).tolist() == [1, 3, 0, 2]
    results = [_ok(accuracy=0.3), _ok(accuracy=0.9), _ok(accuracy=0.5)]
    assert tournament_order(results, ("accuracy",), np.zeros(3)).tolist() == [1, 2, 0]


def _l1(space, a, b) -> float:
    return float(np.abs(space.encode(a) - space.encode(b)).sum())


def test_evolution_initial_random_phase_aging_and_mutation(space):
    P = 5
    rea = RegularizedEvolution(space, ("accuracy",), seed=11, population_size=P, sample_size=P)
    rnd = RandomSearch(space, ("accuracy",), seed=11)
    told = []
    for i in range(P):
        cand = rea.ask()[0]
        # The initial population is exactly what random search with the same seed draws.
        assert cand.id == rnd.ask()[0].id
        rea.tell(cand, _ok(accuracy=0.1 * (i + 1) if i != 2 else 0.99))
        told.append(cand)
    # sample_size == population_size: the tournament always sees the best member (index
    # 2), so every child is a one-step mutation of it.
    for _ in range(3):
        child = rea.ask()[0]
        assert child.id != told[2].id
        assert _l1(space, child, told[2]) == 2.0  # one choice moved: one one-hot bit off, one on
        rea.tell(child, _ok(accuracy=0.0))
        told.append(child)
    # Aging: the oldest three died, whatever their fitness; the best one survives only
    # because it is younger than the first two.
    assert [c.id for c, _ in rea.population] == [c.id for c in told[-P:]]
    assert len(rea.population) == P


def test_evolution_state_holds_population_as_json(space):
    rea = RegularizedEvolution(space, ("accuracy", "energy"), seed=2, population_size=3, sample_size=2)
    for i in range(5):
        cand = rea.ask()[0]
        rea.tell(cand, _ok(accuracy=0.1 * i, energy=1.0 + i))
    state = rea.state_dict()
    assert state["name"] == "evolution" and state["n_asked"] == 5 and state["n_told"] == 5
    assert len(state["population"]) == 3
    member = state["population"][-1]
    assert isinstance(member["candidate"], str)
    assert member["result"]["objectives"] == {"accuracy": 0.4, "energy": 5.0}
    other = RegularizedEvolution(space, ("accuracy", "energy"), seed=2, population_size=4, sample_size=2)
    with pytest.raises(ValueError, match="population_size"):
        other.load_state_dict(state)


def test_evolution_beats_random_on_a_toy_objective(space):
    # A fixed linear score of the one-hot encoding: every choice matters a little, as in
    # a smooth accuracy landscape; REA should climb it, random search only samples.
    n_dim = space.encode(space.sample(np.random.default_rng(0))).size
    w = np.random.default_rng(99).normal(size=n_dim)
    seeds, n = range(3), 80
    rea = np.array([linear_score_best("evolution", space, s, n, w) for s in seeds])
    rnd = np.array([linear_score_best("random", space, s, n, w) for s in seeds])
    # Measured: evolution 22.9, 22.1, 17.6 (mean 20.9); random 16.4, 14.7, 13.6 (mean 14.9).
    assert rea.mean() > rnd.mean() + 3.0, (rea, rnd)
    assert (rea > rnd).all(), (rea, rnd)
