"""experiments/nb201_harness.py on the real NB201 table: every searcher runs a short search,
and a run's record holds what the table says about the cells it queried."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(1)

HARNESS = Path(__file__).resolve().parents[2] / "experiments" / "nb201_harness.py"


@pytest.fixture(scope="module")
def harness(nb201_cache, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setattr("nasco.tables._table.cache_dir", lambda: nb201_cache)
    mp.setenv("NASCO_CACHE", str(tmp_path_factory.mktemp("zc")))  # synflow of the few cells asked
    spec = importlib.util.spec_from_file_location("nb201_harness", HARNESS)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    # The zero-cost variant with a small warmup, so that its proxies take seconds here.
    mod.SEARCHER_KW["predictor-guided+synflow"] = {"zero_cost": "synflow", "warmup": 15, "n_initial": 5,
                                                   "pool_size": 10}
    yield mod
    mp.undo()


@pytest.mark.parametrize("name", ["random", "evolution", "optuna-tpe", "nsga2", "predictor-guided",
                                  "predictor-guided+synflow", "optuna-own-tpe"])
def test_every_searcher_runs_and_reports_the_table_figures(harness, nb201, name):
    budget = 12
    rec = harness.run_one(name, "c10", budget, 0, False)
    assert "error" not in rec, rec.get("error")
    # nasco's searchers never ask a cell twice; Optuna's own TPE may (its queries count anyway).
    assert rec["failed"] == 0 and (rec["unique"] == budget or name == "optuna-own-tpe")
    # best_test is the 200-epoch test accuracy of the queried cell with the best validation
    # accuracy: check it against the table directly.
    valid = nb201.columns["c10valid_valid_200ep"]
    test = nb201.columns["c10_test_200ep"]
    hits = np.flatnonzero(np.isclose(valid, rec["best_valid"]))
    assert len(hits) >= 1 and any(np.isclose(test[i], rec["best_test"]) for i in hits)
    assert 10.0 < rec["best_test"] <= harness.OPTIMA["c10"] and rec["oracle_test"] >= rec["best_test"]


def test_multi_objective_hv_ratio_of_a_short_run(harness):
    rec = harness.run_one("random", "c10", 20, 1, True)
    tf = harness._true_front("c10")
    assert tf["size"] >= 5 and tf["hv_true"] > 0
    assert 0.0 < rec["hv_ratio"] <= rec["oracle_hv_ratio"] < 1.0 and rec["front_size"] >= 1


# A tiny exhaustive set on (test error %, latency): the true front is A, B, Q3 and C; D and Q2 are
# dominated by B, E by everything. Ideal (2, 2) and nadir (8, 8) are the front's, not E's (9, 9).
# Normalised, the front is A (0, 1), B (1/3, 1/3), Q3 (1/2, 1/6), C (1, 0): A and C bound no area
# at the reference (1, 1); B's box is 2/3 x 2/3 = 4/9, Q3's 1/2 x 5/6 = 5/12, their overlap
# 1/2 x 2/3 = 1/3, so HV(true) = 4/9 + 5/12 - 1/3 = 19/36.
TINY = {"A": (2.0, 8.0), "B": (4.0, 4.0), "Q3": (5.0, 3.0), "C": (8.0, 2.0), "D": (6.0, 6.0),
        "Q2": (6.0, 4.0), "E": (9.0, 9.0)}
# Rounding of the hand fractions against pymoo's sums: measured at most 1.1e-16 on these points;
# margin 1e-15.
ROUNDING = 1e-15


def test_front_scale_is_the_true_fronts_ideal_nadir_and_hypervolume(harness):
    F = np.array([*TINY.values(), TINY["B"], (np.nan, 1.0)])  # a repeated front point and a NaN row
    scale = harness.front_scale(F)
    assert scale["ideal"].tolist() == [2.0, 2.0] and scale["nadir"].tolist() == [8.0, 8.0]
    assert scale["size"] == 4
    assert scale["hv_true"] == pytest.approx(19 / 36, abs=ROUNDING)


def test_the_front_chosen_on_validation_is_scored_on_test(harness):
    """Three queried cells. On validation Q2 dominates Q1 (higher accuracy, same latency), so the
    returned front is {Q2, Q3}; on test Q1 is B, and Q3 dominates Q2. Returned: Q3's box alone,
    5/12 of 19/36 = 15/19. Oracle: {Q1, Q3} = B and Q3, the whole true front's area: 1."""
    from nasco.core import Objective

    scale = harness.front_scale(np.array(list(TINY.values())))
    objectives = (Objective("accuracy", "max", "fraction"), Objective("eyeriss_latency", "min", "ms"))
    valid_acc = [0.90, 0.92, 0.80]  # Q1, Q2, Q3
    test_err = [TINY["B"][0], TINY["Q2"][0], TINY["Q3"][0]]
    latency = [TINY["B"][1], TINY["Q2"][1], TINY["Q3"][1]]
    assert harness.returned_front(np.array(valid_acc), np.array(latency), objectives).tolist() == [1, 2]
    score = harness.score_mo(valid_acc, test_err, latency, objectives, scale)
    assert score["front_size"] == 2 and score["oracle_front_size"] == 2
    assert score["hv_ratio"] == pytest.approx(15 / 19, abs=ROUNDING)
    assert score["oracle_hv_ratio"] == pytest.approx(1.0, abs=ROUNDING)


def test_peers_get_the_same_seeds_and_budgets(harness):
    names = ["random", "nsga2", *harness.PEERS]
    seeds = harness.parse_seeds("0-2,100-101")
    assert seeds == [0, 1, 2, 100, 101]
    todo = harness.plan(names, ["c10"], [100, 300], seeds, True)
    per = {n: sorted((d, b, s) for (m, d, b, s, mo, k) in todo if m == n) for n in names}
    expected = sorted((d, b, s) for d in ["c10"] for b in [100, 300] for s in seeds)
    assert all(v == expected for v in per.values()), per
    assert all(mo is True and k == 2 for *_, mo, k in todo)


def test_resume_keeps_problems_apart(harness):
    """A multi-objective record without ``n_obj`` (written before objective sets) is the
    2-objective problem: it is skipped by a 2-objective plan and not by a 3-objective one."""
    old = {"searcher": "random", "dataset": "c10", "budget": 100, "seed": 0, "mo": True}
    done = {harness._key(old)}
    assert harness.plan(["random"], ["c10"], [100], [0], True, done) == []
    assert harness.plan(["random"], ["c10"], [100], [0], True, done, n_obj=3) == [
        ("random", "c10", 100, 0, True, 3)]
    assert harness.plan(["random"], ["c10"], [100], [0], False, done) == [("random", "c10", 100, 0, False, 1)]


def test_nsga3_directions_fill_a_population_of_twenty(harness):
    # Das-Dennis counts C(p + m - 1, m - 1): 2 objectives p = 19 -> 20; 3: p = 5 -> 21; 4: p = 3 -> 20.
    for n_obj, count in ((2, 20), (3, 21), (4, 20)):
        dirs = harness.nsga3_directions(n_obj)
        assert dirs.shape == (count, n_obj)
        # On the simplex: measured 0.0 at 2, 3 and 4 objectives; margin 1e-12.
        assert np.abs(dirs.sum(axis=1) - 1).max() <= 1e-12
    runner = harness.make_runner("pymoo-own-nsga3", harness._setup()["space"], None, 0,
                                 harness.HW_OBJECTIVES[3])
    assert type(runner.algo).__name__ == "NSGA3" and runner.algo.pop_size == 21


@pytest.mark.parametrize("name", ["random", "optuna-own-tpe", "optuna-own-nsga2", "pymoo-own-nsga2",
                                  "pymoo-own-nsga3"])
def test_every_peer_spends_the_budget_and_follows_the_seed(harness, name):
    budget = 25  # more than one NSGA-II generation of 20
    a, b, c = (harness.run_one(name, "c10", budget, seed, True) for seed in (4, 4, 5))
    assert "error" not in a, a.get("error")
    assert a["queries"] == budget and a["seed"] == 4 and a["protocol"] == "returned-front"
    # The same seed gives the same run; another seed another (25 of 15,625 cells: these three
    # runs' front scores were measured distinct).
    assert (a["hv_ratio"], a["unique"]) == (b["hv_ratio"], b["unique"])
    assert (a["hv_ratio"], a["oracle_hv_ratio"]) != (c["hv_ratio"], c["oracle_hv_ratio"])
    assert 0.0 < a["hv_ratio"] <= a["oracle_hv_ratio"] <= 1.0


# The ceiling of the tiny set above, with validation accuracies. On (validation accuracy, latency)
# Q2 beats B at latency 4 and D is kept (second best accuracy, latency 6 < A's 8): exhaustive
# search returns A, D, Q2, Q3, C (E is dominated, the NaN row left out). On test D and Q2 are
# dominated by Q3, so the returned front's area is Q3's box alone: 5/12 of 19/36 = 15/19. The
# true front's cells A, B, Q3, C are mutually non-dominated on validation too: ratio 1.
TINY_VALID = {"A": 0.95, "B": 0.85, "Q3": 0.80, "C": 0.70, "D": 0.90, "Q2": 0.88, "E": 0.50}


def test_ceiling_is_the_front_exhaustive_search_returns(harness):
    from nasco.core import Objective

    objectives = (Objective("accuracy", "max", "fraction"), Objective("eyeriss_latency", "min", "ms"))
    names = list(TINY)
    valid = [TINY_VALID[n] for n in names] + [np.nan]
    test_err = [TINY[n][0] for n in names] + [3.0]
    latency = [TINY[n][1] for n in names] + [3.0]
    scale = harness.front_scale(np.array(list(TINY.values())))
    c = harness.ceiling(valid, test_err, latency, objectives, scale)
    assert (c["cells"], c["front_size"], c["true_front_cells"]) == (7, 5, 4)
    assert c["hv_ratio"] == pytest.approx(15 / 19, abs=ROUNDING)
    assert c["best_set_hv_ratio"] == pytest.approx(1.0, abs=ROUNDING)
    assert f"**{15 / 19:.3f}**" in harness.ceiling_line(c)


# Three objectives (test error, two hardware objectives). The exhaustive set: P1, P2, P3 bound
# the front's ideal (0, 0, 0) and nadir (2, 2, 2) and add no area; M and N are interior: halved,
# M's box is 1/2 x 1/2 x 1/2 = 1/8, N's (0.25, 0.75, 0.25) 3/4 x 1/4 x 3/4 = 9/64, their overlap
# 1/2 x 1/4 x 1/2 = 1/16: HV(true) = 13/64. X is dominated by M.
TRI = {"P1": (0.0, 2.0, 2.0), "P2": (2.0, 0.0, 2.0), "P3": (2.0, 2.0, 0.0), "M": (1.0, 1.0, 1.0),
       "N": (0.5, 1.5, 0.5), "X": (1.8, 1.0, 1.0)}


def test_three_objective_front_chosen_on_validation_is_scored_on_test(harness):
    """Queried M, N, X. On validation X (0.9) beats M (0.8) at the same hardware figures, and N
    (0.85, worse than X on accuracy and the first hardware objective) is kept by the second alone:
    the returned front is {N, X}. X halved is (0.9, 0.5, 0.5), box 1/10 x 1/2 x 1/2 = 1/40, its
    overlap with N's 1/10 x 1/4 x 1/2 = 1/80: HV 9/64 + 1/40 - 1/80 = 49/320, ratio 49/65. The
    oracle {M, N} has the whole area: 1."""
    from nasco.core import Objective

    scale = harness.front_scale(np.array(list(TRI.values())))
    assert scale["size"] == 5
    assert scale["ideal"].tolist() == [0, 0, 0] and scale["nadir"].tolist() == [2, 2, 2]
    assert scale["hv_true"] == pytest.approx(13 / 64, abs=ROUNDING)
    objectives = (Objective("accuracy", "max", "fraction"), Objective("eyeriss_latency", "min", "ms"),
                  Objective("pi5_energy", "min", "mJ"))
    cells = [TRI["M"], TRI["N"], TRI["X"]]
    valid = [0.8, 0.85, 0.9]
    test_err, hw = [c[0] for c in cells], np.array([c[1:] for c in cells])
    assert harness.returned_front(np.array(valid), hw, objectives).tolist() == [1, 2]
    score = harness.score_mo(valid, test_err, hw, objectives, scale)
    assert score["front_size"] == 2 and score["oracle_front_size"] == 2
    assert score["hv_ratio"] == pytest.approx(49 / 65, abs=ROUNDING)
    assert score["oracle_hv_ratio"] == pytest.approx(1.0, abs=ROUNDING)


@pytest.mark.parametrize(("name", "n_obj"), [("random", 4), ("pymoo-own-nsga3", 3), ("optuna-own-nsga2", 4)])
def test_more_objectives_run_on_the_table(harness, nb201, name, n_obj):
    rec = harness.run_one(name, "c10", 25, 3, True, n_obj)
    assert "error" not in rec, rec.get("error")
    assert rec["n_obj"] == n_obj and rec["queries"] == 25 and harness.n_obj_of(rec) == n_obj
    assert 0.0 < rec["hv_ratio"] <= rec["oracle_hv_ratio"] <= 1.0 and rec["front_size"] >= 1
    c = harness.table_ceiling("c10", n_obj)
    assert c["cells"] == 15625 and c["front_size"] >= 1 and 0.0 < c["hv_ratio"] <= 1.0
