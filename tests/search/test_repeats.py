"""Searchers do not ask a candidate twice while fresh ones exist; a repeat Optuna proposes is
told the stored result at once; predictor-guided's zero-cost feature and warmup."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from nasco.core import Result
from nasco.dsl import load_spec
from nasco.search import PredictorGuided, make_searcher
from nasco.space import SearchSpace

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def nb201() -> SearchSpace:
    return SearchSpace(load_spec("nb201"))


def _score(space: SearchSpace, w: np.ndarray, cand) -> float:
    return float(w @ space.encode(cand))


@pytest.mark.parametrize("name", ["random", "evolution", "optuna-tpe", "optuna-random"])
def test_no_candidate_is_asked_twice(nb201, name):
    # A smooth toy objective on NB201: evolution and TPE converge on a few cells, so without
    # the repeat check they ask some of them again (measured ~12 % and ~18 % of asks at 100).
    kw = {"population_size": 10, "sample_size": 5} if name == "evolution" else {}
    s = make_searcher(name, nb201, ("accuracy",), 1, **kw)
    w = np.random.default_rng(7).normal(size=nb201.encode(nb201.sample(np.random.default_rng(0))).size)
    ids, asked = [], []
    for _ in range(120):
        (cand,) = s.ask(1)
        ids.append(cand.id)
        asked.append(cand)
        s.tell(cand, Result("ok", {"accuracy": _score(nb201, w, cand)}))
    assert len(set(ids)) == len(ids)
    assert s.state_dict()["seen"] == list(dict.fromkeys(ids))
    if name.startswith("optuna"):
        # A repeat the sampler proposed is a FAIL trial marked with the trial it repeats;
        # every other trial is a distinct candidate with its one result.
        trials = s.study.get_trials(deepcopy=False)
        real = [t for t in trials if "nasco_repeat_of" not in t.user_attrs]
        assert [t.user_attrs["nasco_candidate"] for t in real] == [c.to_json() for c in asked]
        for t in trials:
            if "nasco_repeat_of" in t.user_attrs:
                src = trials[t.user_attrs["nasco_repeat_of"]]
                assert t.state.name == "FAIL" and src.state.name == "COMPLETE"
                assert t.user_attrs["nasco_candidate"] == src.user_attrs["nasco_candidate"]
        if name == "optuna-tpe":
            assert len(trials) > len(real)  # TPE does propose repeats on this objective


def test_a_batch_holds_no_repeats(nb201):
    s = make_searcher("evolution", nb201, ("accuracy",), 0, population_size=4, sample_size=2)
    first = s.ask(4)
    for c in first:
        s.tell(c, Result("ok", {"accuracy": 0.5}))
    batch = s.ask(30)
    ids = [c.id for c in first + batch]
    assert len(set(ids)) == len(ids)


def test_fresh_gives_up_after_fresh_tries(nb201, monkeypatch):
    # A neighbourhood with nothing new left: after FRESH_TRIES draws _fresh takes uniform
    # samples of the space (which reach what is left of it), and with nothing new there
    # either it returns a repeat instead of looping forever (the driver serves a repeat from
    # the ledger, and stops once the space is exhausted).
    from nasco.search._base import FRESH_TRIES

    s = make_searcher("random", nb201, ("accuracy",), 0)
    (only,) = s.ask(1)
    calls = []

    def draw():
        calls.append(1)
        return only

    got = s._fresh(draw)
    assert got.id != only.id and got.id not in s._seen and len(calls) == FRESH_TRIES
    other = nb201.sample(np.random.default_rng(5))
    calls.clear()
    assert s._fresh(lambda: calls.append(1) or other).id == other.id and len(calls) == 1
    samples = []
    monkeypatch.setattr(nb201, "sample", lambda rng: samples.append(1) or only)
    calls.clear()
    assert s._fresh(draw).id == only.id and len(calls) == FRESH_TRIES and len(samples) == FRESH_TRIES


def test_guided_zero_cost_warmup_starts_from_the_best_proxy_cells(nb201, tmp_path, monkeypatch):
    from nasco.predictors import zero_cost_scores

    monkeypatch.setenv("NASCO_CACHE", str(tmp_path))
    s = PredictorGuided(nb201, ("accuracy",), seed=3, n_initial=4, warmup=12, zero_cost="synflow", pool_size=6)
    first = s.ask(4)
    # The same 12 draws the searcher made from its generator, ranked by the proxy.
    rng = np.random.default_rng(3)
    draws: dict[str, object] = {}
    while len(draws) < 12:
        c = nb201.sample(rng)
        draws.setdefault(c.id, c)
    cands = list(draws.values())
    proxy = zero_cost_scores(nb201, cands, "synflow")
    best = [cands[i].id for i in np.argsort(-proxy, kind="stable")[:4]]
    assert [c.id for c in first] == best
    assert (tmp_path / "zerocost").is_dir()
    for c in first:
        s.tell(c, Result("ok", {"accuracy": float(np.log(zero_cost_scores(nb201, [c], "synflow")[0]))}))
    x = s._encode(first)
    # The proxy is the last feature column, on a log scale.
    assert np.allclose(x[:, -1], np.log(zero_cost_scores(nb201, first, "synflow")), rtol=1e-5)
    nxt = s.ask(2)
    assert not {c.id for c in nxt} & {c.id for c in first}
    state = s.state_dict()
    assert state["settings"]["zero_cost"] == "synflow" and state["settings"]["warmup"] == 12


def test_guided_zero_cost_needs_a_dense_space_and_warmup_a_proxy(nb201):
    from nasco.testing.searcher_contract import default_space

    with pytest.raises(ValueError, match="dense-cell space"):
        PredictorGuided(default_space(), ("accuracy",), zero_cost="synflow")
    with pytest.raises(ValueError, match="warmup must be 0, or > 0 together with a zero_cost"):
        PredictorGuided(nb201, ("accuracy",), warmup=100)
    with pytest.raises(ValueError, match="zero_cost must be one of"):
        PredictorGuided(nb201, ("accuracy",), zero_cost="snip")


def test_guided_multi_objective_picks_the_largest_hypervolume_gain(nb201):
    # Observed front (minimisation form: -accuracy, latency): (-0.9, 3), (-0.8, 2), (-0.5, 1).
    s = PredictorGuided(nb201, ("accuracy", "latency"), seed=0)
    rng = np.random.default_rng(0)
    for acc, lat in ((0.9, 3.0), (0.8, 2.0), (0.5, 1.0), (0.4, 2.5)):
        c = nb201.sample(rng)
        s.tell(c, Result("ok", {"accuracy": acc, "latency": lat}))
    f = np.array([[-0.45, 2.6],    # dominated by (-0.8, 2): adds nothing
                  [-0.85, 1.5],    # fills the gap in the middle of the front: the largest gain
                  [-0.95, 3.05],   # a little beyond the best accuracy
                  [-0.6, 1.6]])    # dominated by the middle pick: nothing once that is chosen
    order = np.array([0, 3, 2, 1])  # the (rank, crowding) order; used only for ties
    assert s._by_hv_improvement(f, order, 1) == [1]
    picked = s._by_hv_improvement(f, order, 4)
    assert picked[:2] == [1, 2] and sorted(picked[2:]) == [0, 3]
    assert picked[2:] == [0, 3]  # no gain left: the given order decides


def test_optuna_enqueues_a_fresh_candidate_after_repeated_repeats(nb201, monkeypatch):
    import nasco.search._optuna as O

    monkeypatch.setattr(O, "SAMPLER_RETRIES", 1)
    s = make_searcher("optuna-tpe", nb201, ("accuracy",), 2)
    w = np.random.default_rng(7).normal(size=nb201.encode(nb201.sample(np.random.default_rng(0))).size)
    ids = []
    for _ in range(100):
        (cand,) = s.ask(1)
        ids.append(cand.id)
        s.tell(cand, Result("ok", {"accuracy": _score(nb201, w, cand)}))
    assert len(set(ids)) == 100
    trials = s.study.get_trials(deepcopy=False)
    enqueued = [t for t in trials if "fixed_params" in t.system_attrs]
    assert enqueued and all("nasco_repeat_of" not in t.user_attrs for t in enqueued)
    # At most one dropped repeat per ask before the fallback.
    assert sum("nasco_repeat_of" in t.user_attrs for t in trials) <= 100
