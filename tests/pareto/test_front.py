"""Non-dominated masks, fronts of ledger rows, hypervolume at fixed bounds and the plot."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from nasco.core import BUILTIN_OBJECTIVES, Objective
from nasco.pareto import (
    fix_bounds,
    hypervolume,
    nondominated_mask,
    normalised_hypervolume,
    pareto_front,
    plot_front,
)


def _brute_nondominated(F: np.ndarray) -> np.ndarray:
    n = len(F)
    return np.array([not any(np.all(F[j] <= F[i]) and np.any(F[j] < F[i]) for j in range(n) if j != i)
                     for i in range(n)], dtype=bool)


def test_nondominated_mask_small_example():
    F = np.array([[1, 3], [2, 2], [3, 1], [2, 3], [1, 3], [4, 4]], dtype=float)
    # Duplicates of a front point (rows 0 and 4) are both kept: equal does not dominate.
    assert nondominated_mask(F).tolist() == [True, True, True, False, True, False]
    assert nondominated_mask(np.array([3.0, 1.0, 2.0, 1.0])).tolist() == [False, True, False, True]
    assert nondominated_mask(np.zeros((0, 2))).tolist() == []
    with pytest.raises(ValueError, match="NaN"):
        nondominated_mask(np.array([[1.0, np.nan]]))


@pytest.mark.parametrize("m", [2, 3])
def test_nondominated_mask_matches_brute_force(m):
    rng = np.random.default_rng(m)
    # Rounded values so that ties and duplicates occur.
    F = np.round(rng.random((80, m)) * 6) / 6
    np.testing.assert_array_equal(nondominated_mask(F), _brute_nondominated(F))


def test_hypervolume_hand_computed_2d():
    F = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])
    # Staircase to ref (4, 4): slabs x in [1,2) height 1, [2,3) height 2, [3,4) height 3.
    assert hypervolume(F, [4.0, 4.0]) == pytest.approx(6.0)
    # A dominated point adds nothing; a point beyond the reference adds nothing either.
    more = np.vstack([F, [[3.0, 3.0], [5.0, 0.0], [0.5, 4.0]]])
    assert hypervolume(more, [4.0, 4.0]) == pytest.approx(6.0)
    assert hypervolume(np.array([[5.0, 5.0]]), [4.0, 4.0]) == 0.0
    assert hypervolume(np.zeros((0, 2)), [4.0, 4.0]) == 0.0
    # Minimisation form of (accuracy, energy) = (0.8, 1 J) and (0.6, 0.5 J) against the
    # reference (accuracy 0, 2 J), in slabs of energy: [0.5, 1) is covered up to accuracy
    # 0.6, [1, 2) up to 0.8.
    F2 = np.array([[-0.8, 1.0], [-0.6, 0.5]])
    assert hypervolume(F2, [0.0, 2.0]) == pytest.approx(0.6 * 0.5 + 0.8 * 1.0)
    assert hypervolume(np.array([[-0.5], [-0.7]]), [0.0]) == pytest.approx(0.7)
    with pytest.raises(ValueError, match="objectives"):
        hypervolume(F, [4.0, 4.0, 4.0])
    with pytest.raises(ValueError, match="finite"):
        hypervolume(F, [np.nan, 4.0])


def test_fix_bounds_rules():
    objectives = ("accuracy", "energy", "latency", "area")
    defs = fix_bounds(objectives, limits={"energy": 5e-3, "accuracy": 0.95, "power": 1.0},
                      ref_point={"latency": 2e-2})
    # accuracy keeps [1, 0] (a spec limit is an upper bound: not used for a maximised
    # objective); energy takes the limit; latency the ref_point; area its documented 10 mm2.
    assert [(o.ideal, o.bound) for o in defs] == [(1.0, 0.0), (0.0, 5e-3), (0.0, 2e-2), (0.0, 10.0)]
    assert BUILTIN_OBJECTIVES["area"].bound == 10.0
    with pytest.raises(ValueError, match="power"):
        fix_bounds(objectives, ref_point={"power": 1.0})


def _three_four():
    acc, en, lat, area = (BUILTIN_OBJECTIVES[n] for n in ("accuracy", "energy", "latency", "area"))
    # Normalised: accuracy 0.5 -> 0.5, energy 5e-4 J -> 0.5 (bound 1 mJ), latency 5e-3 s -> 0.5
    # (bound 10 ms), area 5 mm2 -> 0.5 (bound 10 mm2); the second point is (0, 0, 0.75, 0).
    pts = np.array([[0.5, 5e-4, 5e-3, 5.0], [1.0, 0.0, 7.5e-3, 0.0]])
    return (acc, en, lat, area), pts


def test_normalised_hypervolume_3_objectives_hand_computed():
    defs, pts = _three_four()
    # Boxes to (1, 1, 1): [0.5, 1]^3 = 0.125 and [0, 1] x [0, 1] x [0.75, 1] = 0.25, which
    # overlap in [0.5, 1]^2 x [0.75, 1] = 0.0625: 0.125 + 0.25 - 0.0625 = 0.3125.
    assert normalised_hypervolume(pts[:, :3], defs[:3]) == pytest.approx(0.3125, rel=1e-12)
    assert normalised_hypervolume(pts[:1, :3], defs[:3]) == pytest.approx(0.125, rel=1e-12)
    # A point past a bound (energy 2 mJ against 1 mJ) adds nothing; none at all is 0.
    beyond = np.vstack([pts[:, :3], [[1.0, 2e-3, 0.0]]])
    assert normalised_hypervolume(beyond, defs[:3]) == pytest.approx(0.3125, rel=1e-12)
    assert normalised_hypervolume(np.zeros((0, 3)), defs[:3]) == 0.0


def test_normalised_hypervolume_4_objectives_hand_computed():
    defs, pts = _three_four()
    # [0.5, 1]^4 = 0.0625; [0, 1]^2 x [0.75, 1] x [0, 1] = 0.25; overlap
    # 0.5 x 0.5 x 0.25 x 0.5 = 0.03125: 0.0625 + 0.25 - 0.03125 = 0.28125.
    assert normalised_hypervolume(pts, defs) == pytest.approx(0.28125, rel=1e-12)
    # The ideal point itself fills the whole unit box.
    assert normalised_hypervolume(np.array([[1.0, 0.0, 0.0, 0.0]]), defs) == pytest.approx(1.0, rel=1e-12)


def test_normalised_hypervolume_needs_bounds():
    with pytest.raises(ValueError, match="naswot"):
        normalised_hypervolume(np.array([[1.0]]), [BUILTIN_OBJECTIVES["naswot"]])
    # A user's objective with its own bounds.
    own = Objective("power", "min", "W", ideal=1.0, bound=3.0)
    assert normalised_hypervolume(np.array([[2.0]]), [own]) == pytest.approx(0.5, rel=1e-12)


def _rows() -> list[dict]:
    rng = np.random.default_rng(5)
    statuses = ["ok"] * 30 + ["infeasible"] * 6 + ["failed"] * 4
    rows = []
    for i, status in enumerate(statuses):
        objs = {} if status == "failed" else {"accuracy": float(np.round(rng.random(), 2)),
                                              "energy": float(np.round(rng.random(), 2) * 1e-3)}
        rows.append({"seq": i, "id": f"c{i:02d}", "status": status, "objectives": objs,
                     "arch": {"i": i}, "hw": {}, "reason": "x" if status == "failed" else None})
    # An infeasible row that would dominate everything must not shape the front.
    rows[31]["objectives"] = {"accuracy": 1.0, "energy": 0.0}
    return rows


def test_pareto_front_is_the_feasible_nondominated_set():
    rows = _rows()
    front = pareto_front(rows, ("accuracy", "energy"))
    ok = [r for r in rows if r["status"] == "ok"]
    F = np.array([[-r["objectives"]["accuracy"], r["objectives"]["energy"]] for r in ok])
    expected = [r["id"] for r, keep in zip(ok, _brute_nondominated(F)) if keep]
    assert front["id"].tolist() == expected
    assert 1 <= len(expected) < len(ok)
    assert "c31" not in front["id"].tolist()
    # A flat frame (what Ledger.to_frame gives) selects the same rows.
    flat = pd.DataFrame([{"id": r["id"], "status": r["status"], **r["objectives"],
                          "arch": json.dumps(r["arch"])} for r in rows])
    assert pareto_front(flat, ("accuracy", "energy"))["id"].tolist() == expected
    # One objective: every ok row at the best value (ties included).
    best = max(r["objectives"]["accuracy"] for r in ok)
    assert pareto_front(rows, ("accuracy",))["id"].tolist() == \
        [r["id"] for r in ok if r["objectives"]["accuracy"] == best]


def test_pareto_front_edge_cases():
    assert pareto_front([], ("accuracy",)).empty
    with pytest.raises(ValueError, match="unknown objective 'acc'"):
        pareto_front(_rows(), ("acc",))
    flat = pd.DataFrame({"id": ["a", "b"], "status": ["ok", "ok"], "accuracy": [0.5, np.nan]})
    with pytest.warns(RuntimeWarning, match="lack an objective"):
        assert pareto_front(flat, ("accuracy",))["id"].tolist() == ["a"]


@pytest.mark.parametrize("objectives", [("accuracy",), ("accuracy", "energy")])
def test_plot_front_writes_png(tmp_path, objectives):
    rows = _rows()
    df = pd.DataFrame([{"seq": r["seq"], "id": r["id"], "status": r["status"],
                        **{o: r["objectives"].get(o, np.nan) for o in objectives}} for r in rows])
    path = plot_front(df, objectives, tmp_path / "sub" / "front.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
