"""`--budget` above the space (or written 1e20) ends when the space is exhausted, and a
candidate file whose arch is not an object is one line, exit 2."""
from __future__ import annotations

import json

import pytest

from nasco.cli import main

SMALL = ["--space", "nb201", "--set", "cell.ops=[none, skip_connect]"]  # 2 ** 6 = 64 cells


@pytest.mark.parametrize("budget", ["1e20", "100"])
def test_a_budget_above_the_space_stops_when_it_is_exhausted(budget, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["search", *SMALL, "--evaluator", "table", "--table", "nb201", "--budget", budget,
                 "--out", str(run), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "stopped early: the space is exhausted (all its 64 distinct candidates are evaluated" in out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stopped"] == "exhausted" and summary["counts"]["total"] == 64
    assert len((run / "ledger.jsonl").read_text().splitlines()) == 64 and (run / "pareto.csv").exists()


@pytest.mark.parametrize("budget", ["1.5", "abc", "0", "inf", "-1e3"])
def test_a_budget_that_is_not_a_whole_number_is_one_line(budget, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["search", *SMALL, f"--budget={budget}", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"--budget: expected a positive whole number of evaluations (10, 1e4), found '{budget}'" in err


def test_a_candidate_with_a_null_arch_is_one_line(tmp_path, capsys):
    cand = tmp_path / "cand.json"
    cand.write_text(json.dumps({"arch": None, "hw": {}}))
    with pytest.raises(SystemExit) as e:
        main(["cost", "--workload", str(cand), "--space", "nb201", "--hw", "asic_template"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{cand}: arch: expected an object with 'cell' and 'hp', found null" in err
