"""A new user's mistakes on the command line: exit code 2, one line on stderr, no internals.

Each case calls the CLI's ``main`` as ``python -m nasco`` does; any exception other than the
SystemExit of a one-line error would be the traceback a user sees, and fails the test.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nasco.cli import main
from nasco.dsl import builtin_dir

LEAKS = ("np.int64", "np.float64", "Traceback", "invalid literal")
QUERY = ["table", "query", "nb201", "--metric", "accuracy", "--dataset", "c10", "--split", "test",
         "--fidelity", "200"]
TOPOLOGY_HEADER = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
                   "Num Filter, Strides,\n")


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NASCO_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def nasco(capsys):
    def run(*argv: str) -> tuple[int, str]:
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = int(exc.code)
        return code, capsys.readouterr().err
    return run


def _one_line_error(code: int, err: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for leak in LEAKS:
        assert leak not in err, err
    assert lines[0].startswith("nasco: error: ")
    return lines[0]


def _table_with_index(tmp_path: Path, index_cell: str) -> Path:
    """A user's lookup table keyed by official index whose first index cell is ``index_cell``."""
    shutil.copy(builtin_dir() / "nb201.yaml", tmp_path / "nb201.yaml")
    shutil.copy(builtin_dir() / "nb201_index.csv.gz", tmp_path / "nb201_index.csv.gz")
    (tmp_path / "t.csv").write_text(f"idx,acc\n{index_cell},80\n2,70\n")
    spec = tmp_path / "mine.yaml"
    spec.write_text("schema: 1\nkind: lookup_table\nname: mine\nspace: nb201.yaml\ndata: t.csv\n"
                    "key: {index: idx}\nmetrics:\n  acc: {metric: accuracy, dataset: c10, split: valid, "
                    "fidelity: 5, unit: '%', direction: max}\n")
    return spec


def test_table_query_index_out_of_range(tmp_path, nasco):
    line = _one_line_error(*nasco(*QUERY, "--index", "99999"))
    assert "--index" in line and "no row for index 99999" in line and "0..15624" in line


def test_table_query_negative_index(tmp_path, nasco):
    line = _one_line_error(*nasco(*QUERY, "--index", "-1"))
    assert "no row for index -1" in line


def test_table_query_index_not_an_integer(tmp_path, nasco):
    line = _one_line_error(*nasco(*QUERY, "--index", "abc"))
    assert "--index" in line and "'abc'" in line


def test_table_query_unknown_arch_string(tmp_path, nasco):
    line = _one_line_error(*nasco(*QUERY, "--arch", "|foo~0|"))
    assert "--arch" in line and "'|foo~0|'" in line


def test_table_import_fractional_index(tmp_path, nasco):
    spec = _table_with_index(tmp_path, "1.5")
    line = _one_line_error(*nasco("table", "import", str(spec)))
    assert "t.csv: row 1: column 'idx' holds 1.5, not an integer index" in line


def test_search_budget_not_an_integer(tmp_path, nasco):
    line = _one_line_error(*nasco("search", "--space", "nb201", "--budget", "abc"))
    assert "--budget" in line and "'abc'" in line


def test_optuna_population_not_an_integer(tmp_path, nasco):
    line = _one_line_error(*nasco("search", "--space", "nb201", "--evaluator", "table", "--table", "nb201",
                                   "--searcher", "optuna-nsga2", "--searcher-opt", "population_size=abc",
                                   "--budget", "2", "--out", str(tmp_path / "run"), "--quiet"))
    assert "option population_size: expected an integer (default 20), found 'abc'" in line


def test_cost_topology_with_a_non_integer_field(tmp_path, nasco):
    bad = tmp_path / "bad.csv"
    bad.write_text(TOPOLOGY_HEADER + "conv1, 10, ten, 3, 3, 16, 32, 1,\n")
    line = _one_line_error(*nasco("cost", "--hw", "asic_template", "--workload", str(bad)))
    assert f"{bad}:2" in line and "integers in columns 2-8" in line and "ten" in line


def test_cost_pareto_row_with_broken_json(tmp_path, nasco):
    bad = tmp_path / "pareto.csv"
    bad.write_text('id,accuracy,arch,hw\nabc,0.5,"{""cell"": [",{}\n')
    line = _one_line_error(*nasco("cost", "--hw", "asic_template", "--workload", str(bad),
                                   "--space", "darts_snn"))
    assert f"{bad}:2: arch: expected a JSON object" in line


def test_cost_ledger_without_a_row_choice(tmp_path, nasco):
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text("".join(json.dumps({"id": i, "arch": {}, "hw": {}}) + "\n" for i in ("aa11", "bb22")))
    line = _one_line_error(*nasco("cost", "--hw", "asic_template", "--workload", str(ledger),
                                   "--space", "darts_snn"))
    assert "holds 2 rows" in line and "--id" in line and "--row N (0..1)" in line
    line = _one_line_error(*nasco("cost", "--hw", "asic_template", "--workload", str(ledger),
                                   "--space", "darts_snn", "--id", "aa12"))
    assert "did you mean 'aa11'?" in line


def _ledger_row(tmp_path: Path, hp: dict, hw: dict) -> Path:
    """A one-row ledger of a darts_snn candidate with the given hp and hw choices."""
    cell = [["conv_3x3", 0], ["conv_3x3", 1]] * 4
    row = {"id": "r1", "arch": {"cell": {"normal": cell, "reduce": cell}, "hp": hp}, "hw": hw}
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text(json.dumps(row) + "\n")
    return ledger


def test_cost_row_with_a_choice_outside_the_space(tmp_path, nasco):
    ledger = _ledger_row(tmp_path, {"timesteps": 3}, {})
    line = _one_line_error(*nasco("cost", "--hw", "asic_template", "--workload", str(ledger), "--space",
                                  "darts_snn"))
    assert (f"{ledger}: arch.hp: expected choices of space 'darts_snn', found timesteps=3 is not one of "
            f"[2, 4]") in line


def test_cost_row_with_a_choice_outside_the_template(tmp_path, nasco):
    ledger = _ledger_row(tmp_path, {}, {"template": "eyeriss_like", "pe_array.rows": "abc"})
    line = _one_line_error(*nasco("cost", "--hw", "asic_template", "--workload", str(ledger), "--space",
                                  "darts_snn"))
    assert f"{ledger}: hw: expected choices of template 'eyeriss_like', found pe_array.rows='abc'" in line


def test_cost_task_of_a_single_task_row(tmp_path, nasco):
    ledger = _ledger_row(tmp_path, {}, {})
    line = _one_line_error(*nasco("cost", "--hw", "asic_template", "--workload", str(ledger), "--space",
                                  "darts_snn", "--task", "1"))
    assert "--task 1: the candidate has one task" in line
