"""nasco search --evaluator table: the searcher sees validation accuracy, the ledger holds the
table's test accuracy of every candidate, and the budget counts queries."""
from __future__ import annotations

import json

import pytest

from nasco.cli import main


@pytest.mark.parametrize("searcher", ["random", "evolution"])
def test_table_search_end_to_end(nb201, nb201_cache, tmp_path, monkeypatch, searcher):
    monkeypatch.setenv("NASCO_CACHE", str(nb201_cache.parent))
    monkeypatch.setattr("nasco.tables._table.cache_dir", lambda: nb201_cache)
    out = tmp_path / "run"
    rc = main(["search", "--space", "nb201", "--evaluator", "table", "--table", "nb201", "--objectives",
               "accuracy,eyeriss_latency", "--searcher", searcher, "--budget", "20", "--out", str(out), "--quiet"])
    assert rc == 0
    rows = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]
    assert len(rows) == 20 and len({r["id"] for r in rows}) == 20
    for r in rows:
        i = r["arch"]["index"]
        assert r["metrics"]["c10_test_200ep"] == nb201.query(i, "c10_test_200ep")
        assert r["metrics"]["test_accuracy"] == pytest.approx(nb201.query(i, "c10_test_200ep") / 100)
        assert r["objectives"]["accuracy"] == pytest.approx(nb201.query(i, "c10valid_valid_200ep") / 100)
        assert r["objectives"]["eyeriss_latency"] == nb201.query(i, "eyeriss_latency")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["objectives"] == {"accuracy": "max", "eyeriss_latency": "min"}
    by_id = {r["id"]: r["metrics"]["test_accuracy"] for r in rows}
    assert summary["front_report"]["test_accuracy"] == [by_id[i] for i in summary["front_ids"]]
    assert "test_accuracy" in (out / "pareto.csv").read_text().splitlines()[0]


def test_table_search_on_four_objectives(nb201, nb201_cache, tmp_path, monkeypatch):
    """Every hardware objective is the table's figure of the cell, and pareto.csv is the
    non-dominated set of the ledger on all four objectives."""
    import numpy as np

    from nasco.pareto import nondominated_mask

    monkeypatch.setenv("NASCO_CACHE", str(nb201_cache.parent))
    monkeypatch.setattr("nasco.tables._table.cache_dir", lambda: nb201_cache)
    # pareto.png of four objectives is a grid of panels (seconds); tests/pareto covers the plots.
    for plot in ("plot_front", "plot_history"):
        monkeypatch.setattr(f"nasco.run._outputs.{plot}", lambda df, objectives, path, **kw: path)
    out = tmp_path / "run"
    names = ["accuracy", "eyeriss_latency", "pi5_energy", "fpga_latency"]
    rc = main(["search", "--space", "nb201", "--evaluator", "table", "--table", "nb201", "--objectives",
               ",".join(names), "--searcher", "random", "--budget", "30", "--out", str(out), "--quiet"])
    assert rc == 0
    rows = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]
    assert len(rows) == 30
    for r in rows:
        for name in names[1:]:
            assert r["objectives"][name] == nb201.query(r["arch"]["index"], name)
    F = np.array([[-r["objectives"]["accuracy"], *(r["objectives"][n] for n in names[1:])] for r in rows])
    expected = {r["id"] for r, keep in zip(rows, nondominated_mask(F)) if keep}
    front = {line.split(",")[0] for line in (out / "pareto.csv").read_text().splitlines()[1:]}
    assert front == expected and len(front) >= 2


def test_table_search_usage_errors(capsys):
    assert_exit2 = pytest.raises(SystemExit)
    with assert_exit2 as e:
        main(["search", "--space", "nb201", "--evaluator", "table", "--budget", "2"])
    assert e.value.code == 2 and "expected a table (table='nb201' or --table nb201)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["search", "--space", "nb201", "--evaluator", "table", "--table", "nb201", "--objectives",
              "accuracy,eyeris_latency", "--budget", "2"])
    assert e.value.code == 2 and "did you mean 'eyeriss_latency'" in capsys.readouterr().err


def test_searcher_options_reach_the_searcher_and_the_summary(nb201_cache, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NASCO_CACHE", str(nb201_cache.parent))
    monkeypatch.setattr("nasco.tables._table.cache_dir", lambda: nb201_cache)
    out = tmp_path / "run"
    rc = main(["search", "--space", "nb201", "--evaluator", "table", "--table", "nb201", "--searcher",
               "predictor-guided", "--searcher-opt", "n_initial=3", "--searcher-opt", "pool_size=7",
               "--searcher-opt", "acquisition=ei", "--budget", "6", "--out", str(out), "--quiet"])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["searcher_options"] == {"n_initial": 3, "pool_size": 7, "acquisition": "ei"}
    rows = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]
    assert len({r["id"] for r in rows}) == 6
    capsys.readouterr()
    for opts, msg in ((["--searcher-opt", "pool=7"], "'predictor-guided' has no option 'pool'; its options: n_initial"),
                      (["--searcher-opt", "n_initial"], "expected KEY=VALUE, found 'n_initial'"),
                      (["--searcher-opt", "acquisition=pi"], "acquisition must be one of"),
                      (["--searcher-opt", "n_initial=[1"], "is not valid YAML"),
                      (["--searcher", "evolution", "--population", "8", "--searcher-opt", "population_size=9"],
                       "give the population once")):
        with pytest.raises(SystemExit) as e:
            main(["search", "--space", "nb201", "--evaluator", "table", "--table", "nb201", "--searcher",
                  "predictor-guided", *opts, "--budget", "2", "--out", str(tmp_path / "bad"), "--quiet"])
        err = capsys.readouterr().err
        assert e.value.code == 2 and msg in err and len(err.strip().splitlines()) == 1, err


def test_searchers_command_lists_every_searcher_and_its_options(capsys):
    from nasco.search import SEARCHERS

    assert main(["searchers"]) == 0
    text = capsys.readouterr().out
    for name in SEARCHERS:
        assert f"\n{name}: " in "\n" + text
    assert "zero_cost=None, warmup=0" in text and "population_size=6, sample_size=None" in text
    assert main(["searchers", "predictor-guided"]) == 0
    assert "expected improvement" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["searchers", "bananas"])
    assert e.value.code == 2
