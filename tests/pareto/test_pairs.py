"""Results with members: a trained network scored on several accelerator configurations is
one ledger row, and the run's front is taken over every (architecture, accelerator) pair."""
from __future__ import annotations

import json

import pandas as pd
import pytest

import nasco
from nasco.core import Candidate, Result
from nasco.pareto import best_so_far, expand_pairs, hypervolume_history, normalised_hypervolume, pareto_front
from nasco.run import Ledger, LedgerError, run_search
from nasco.search import make_searcher
from nasco.testing import default_space

OBJ = ("accuracy", "energy")


def _member(hw, status, acc, energy, **violations):
    return {"hw": hw, "status": status, "objectives": {"accuracy": acc, "energy": energy},
            "violations": violations}


def test_expand_pairs_gives_one_pair_per_configuration():
    arch = {"cell": {"x": 1}, "hp": {}}
    own, other, same = {"clock": 1}, {"clock": 2}, {"clock": 1}
    row = {"seq": 4, "id": Candidate.make(arch, own).id, "arch": arch, "hw": own, "status": "ok",
           "objectives": {"accuracy": 0.5, "energy": 2.0}, "violations": {}, "metrics": {"t": 1, "u": 2},
           "members": [{**_member(same, "ok", 0.5, 2.0)},
                       {**_member(other, "infeasible", 0.5, 1.0, latency=0.25), "metrics": {"u": 3}}]}
    plain = {"seq": 5, "id": "x", "status": "failed", "objectives": {},
             "members": [_member(other, "ok", 1, 1)]}
    pairs = expand_pairs([row, plain])
    base = {k: v for k, v in row.items() if k != "members"}
    assert pairs == [
        {**base, "pair": 0, "row_id": row["id"]},
        {**base, "pair": 1, "row_id": row["id"], "id": Candidate.make(arch, other).id, "hw": other,
         "status": "infeasible", "objectives": {"accuracy": 0.5, "energy": 1.0},
         "violations": {"latency": 0.25}, "metrics": {"t": 1, "u": 3}},
        plain,  # a failed row has no pairs of its own
    ]


class _MemberEvaluator:
    """Accuracy from the architecture, energy from the hardware; each candidate is also scored
    on two other clock settings: one of them always twice as efficient, the other infeasible."""

    objectives = OBJ

    def evaluate(self, cand, seed):
        acc = (sum(map(ord, json.dumps(cand.arch, sort_keys=True))) % 97) / 100
        energy = 1.0 + (sum(map(ord, json.dumps(cand.hw, sort_keys=True))) % 13)
        better = {**cand.hw, "note": "half"}
        worse = {**cand.hw, "note": "hot"}
        members = (_member(better, "ok", acc, energy / 2),
                   _member(worse, "infeasible", acc + 0.5, 0.1, power=1.0))
        return Result("ok", {"accuracy": acc, "energy": energy}, {"kind": "own"}, members=members)


def test_the_front_of_a_run_is_taken_over_its_pairs(tmp_path):
    out = tmp_path / "run"
    study = nasco.create_study(space="darts_snn", hw="asic_template", objectives=list(OBJ), searcher="random",
                               storage=out, seed=0)
    study.optimize(_MemberEvaluator(), budget=6)
    study.close()
    rows = Ledger(out).rows()
    assert len(rows) == 6 and all(len(r["members"]) == 2 for r in rows)
    front = pd.read_csv(out / "pareto.csv")
    # Every row's own configuration is dominated by its 'half' member, and the infeasible 'hot'
    # member is never on the front: the front is made of 'half' members only, those whose
    # (accuracy, energy / 2) no other row's 'half' member dominates.
    halves = [(r["objectives"]["accuracy"], r["objectives"]["energy"] / 2, r["id"]) for r in rows]
    expected = [rid for a, e, rid in halves
                if not any((a2 >= a and e2 <= e) and (a2 > a or e2 < e) for a2, e2, _ in halves)]
    assert front["row_id"].tolist() == expected
    assert front["pair"].tolist() == [1] * len(expected)
    assert all(json.loads(h)["note"] == "half" for h in front["hw"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["front_ids"] == front["id"].tolist()
    # Counts and seconds are the evaluations'; the history has one point per evaluation.
    assert summary["counts"] == {"ok": 6, "failed": 0, "infeasible": 0, "total": 6}
    assert summary["eval_seconds_total"] == sum(r["seconds"] for r in rows)
    pairs = Ledger(out).to_frame(list(OBJ), pairs=True)
    assert len(pairs) == 18 and pairs["seq"].tolist() == [r["seq"] for r in rows for _ in range(3)]
    defs = study.objectives
    assert len(hypervolume_history(pairs, defs)) == 6 and len(best_so_far(pairs, defs[0])) == 6
    # The history at an evaluation is the volume of the front of its pairs and all before.
    last = pairs[pairs["seq"] <= 2]
    assert hypervolume_history(pairs, defs)[2] == normalised_hypervolume(
        pareto_front(last, defs)[list(OBJ)].to_numpy(dtype=float), defs)
    study = nasco.load_study(out)
    assert study.front["id"].tolist() == front["id"].tolist()
    assert study.front["pair"].tolist() == [1] * len(expected)
    assert len(study.trials_dataframe()) == 6  # one row per evaluation


def test_a_result_member_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="member 0: key 'status'"):
        Result("ok", {"accuracy": 1.0}, members=({"hw": {}, "status": "failed", "objectives": {}},))
    with pytest.raises(ValueError, match="member 1: key 'objectives.accuracy'"):
        Result("ok", {"accuracy": 1.0}, members=(_member({}, "ok", 1, 1), _member({}, "ok", float("nan"), 1)))
    r = Result("ok", {"accuracy": 1.0}, members=[_member({"a": 1}, "ok", 1, 1)])
    assert Result.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    assert "members" not in Result("ok", {"accuracy": 1.0}).to_dict()


def test_a_ledger_row_with_damaged_members_is_one_error(tmp_path):
    space = default_space()
    out = tmp_path / "run"
    run_search(space=space, evaluator=_MemberEvaluator(), searcher=make_searcher("random", space, OBJ, 0),
               budget=2, out_dir=out, seed=0, progress=False)
    lines = (out / "ledger.jsonl").read_text().splitlines()
    row = json.loads(lines[0])
    row["members"][1]["hw"] = "fast"
    (out / "ledger.jsonl").write_text("\n".join([json.dumps(row), lines[1]]) + "\n")
    damaged = r"ledger.jsonl:1: key 'members\[1\]': key 'hw': expected an object"
    with pytest.raises(LedgerError, match=damaged):
        Ledger(out).rows()


def test_a_pair_two_rows_scored_appears_once_from_the_earlier_row():
    """Rows of one trained network share members, and a member can be another row's own
    candidate: each (architecture, accelerator) pair is one front candidate, kept from the row
    of the lower seq whatever order the rows come in."""
    arch = {"cell": {"x": 1}, "hp": {}}
    a, b, c = {"clock": 1}, {"clock": 2}, {"clock": 3}

    def row(seq, hw, members):
        return {"seq": seq, "id": Candidate.make(arch, hw).id, "arch": arch, "hw": hw, "status": "ok",
                "objectives": {"accuracy": 0.5, "energy": float(seq)}, "metrics": {},
                "members": [_member(m, "ok", 0.5, 10.0 + seq) for m in members]}

    first, second = row(0, a, [b, c]), row(1, b, [a, c])
    pairs = expand_pairs([second, first])  # completion order: the later row first
    assert [(p["seq"], p["pair"], p["hw"]) for p in pairs] == [(0, 0, a), (0, 1, b), (0, 2, c)]
    assert len({p["id"] for p in pairs}) == 3
