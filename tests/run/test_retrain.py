"""Retraining the front of a one-shot run (``--retrain-top``): the retrain rows, the front
that reports them, the marks of each accuracy's source, the resume, and the usage errors."""
from __future__ import annotations

import csv
import json
import re
import shutil
from collections import Counter

import pytest

import nasco
from nasco.core import NascoError
from nasco.dsl import load_spec
from nasco.evaluate import OneShotEvaluator, TrainCostEvaluator
from nasco.evaluate._data import load_dataset
from nasco.pareto import expand_pairs, pareto_front
from nasco.run import Ledger, LedgerError
from nasco.space import SearchSpace

# A tiny darts_snn (one cell, 4 or 8 stem channels, one timestep, one training epoch): a search
# of 4 inherited evaluations and 2 retrainings of one epoch take seconds.
OVERRIDES = ["macro.cells=1", "macro.reductions=[]", "macro.stem.channels={choice: [4, 8]}",
             "timesteps=1", "training.epochs=1"]
SETS = [x for s in OVERRIDES for x in ("--set", s)]
SEARCH = ["search", "--space", "darts_snn", "--hw", "asic_template", "--evaluator", "oneshot",
          "--epochs", "1", "--limit", "100", *SETS, "--hw-inner", "off", "--seed", "2", "--quiet",
          "--budget", "4"]
TOP = 2


def _rows(out):
    return Ledger(out / "ledger.jsonl").rows()


def _arch(row):
    return json.dumps(row["arch"], sort_keys=True)


def _top_archs(rows, objectives, k):
    """By hand: the k architectures with the best accuracy on the search rows' front (ties:
    the architecture evaluated first)."""
    search = [r for r in rows if "phase" not in r]
    front = pareto_front(expand_pairs(search), objectives)
    best, first = {}, {}
    for r in search:
        first.setdefault(_arch(r), r["seq"])
    for _, pair in front.iterrows():
        a = json.dumps(json.loads(pair["arch"]), sort_keys=True)
        best[a] = max(best.get(a, -1.0), pair["accuracy"])
    return sorted(best, key=lambda a: (-best[a], first[a]))[:k]


@pytest.fixture(scope="module")
def retrained_run(tmp_path_factory):
    """A finished run with --retrain-top 2, and what the CLI printed."""
    from nasco.cli import main

    out = tmp_path_factory.mktemp("retrain") / "run"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main([*SEARCH, "--out", str(out), "--retrain-top", str(TOP)])
    assert code == 0
    return out, buf.getvalue()


def test_retrain_rows_are_the_top_architectures_marked_and_stand_on_the_front(retrained_run):
    out, _ = retrained_run
    rows = _rows(out)
    search = [r for r in rows if "phase" not in r]
    retrain = [r for r in rows if r.get("phase") == "retrain"]
    assert len(search) == 4  # the budget counts the search alone
    study = nasco.load_study(out)
    names = [o.name for o in study.objectives]
    top = _top_archs(rows, names, TOP)
    assert len(top) == TOP  # the search front holds at least K architectures: K retrain rows
    assert [_arch(r) for r in retrain] == top  # best first, one per architecture
    assert [r["seq"] for r in retrain] == [4, 5]  # after the search's rows
    for r in retrain:
        m = r["metrics"]
        assert (m["accuracy_source"], m["retrained"], r["status"]) == ("stand-alone", True, "ok")
        assert m["retrains"] == [s["seq"] for s in search if _arch(s) == _arch(r) and s["status"] != "failed"]
        assert m["epochs"] == 1 and "supernet" not in m
        # A stand-alone training, kept in the run directory.
        assert (out / "trainings" / f"{m['training']}.safetensors").is_file()
    # The front: a retrained architecture stands only with its stand-alone row's accuracy.
    standalone = {_arch(r): r for r in retrain}
    arch_of_id = {r["id"]: _arch(r) for r in rows}
    front = study.front
    on_front = [arch_of_id[i] for i in front["id"]]
    assert set(on_front) & set(standalone)  # not vacuous: a retrained architecture is on the front
    for (_, pair), a in zip(front.iterrows(), on_front):
        if a in standalone:
            assert pair.get("phase") == "retrain" and pair["metrics.accuracy_source"] == "stand-alone"
            assert pair["accuracy"] == standalone[a]["objectives"]["accuracy"]
        else:
            assert pair.get("phase") != "retrain" and pair["metrics.accuracy_source"] == "inherited"
    # pareto.csv is the same front, its accuracies and sources as the study's.
    with open(out / "pareto.csv", newline="") as fh:
        csv_rows = list(csv.DictReader(fh))
    assert [r["id"] for r in csv_rows] == list(front["id"])
    assert [float(r["accuracy"]) for r in csv_rows] == list(front["accuracy"])
    assert [r["accuracy_source"] for r in csv_rows] == list(front["metrics.accuracy_source"])


def test_summary_and_printed_line_count_each_accuracy_source(retrained_run):
    out, printed = retrained_run
    rows = _rows(out)
    retrained = {_arch(r) for r in rows if r.get("phase") == "retrain"}
    arch_of_id = {r["id"]: _arch(r) for r in rows}
    with open(out / "pareto.csv", newline="") as fh:
        ids = [r["id"] for r in csv.DictReader(fh)]
    # From the ledger: a front pair of a retrained architecture is stand-alone, any other inherited.
    want = Counter("stand-alone" if arch_of_id[i] in retrained else "inherited" for i in ids)
    assert set(want) == {"stand-alone", "inherited"}  # the run's front mixes both
    summary = json.loads((out / "summary.json").read_text())
    assert summary["front_accuracy_sources"] == dict(want)
    assert summary["counts"]["retrained"] == TOP and summary["counts"]["total"] == 4
    assert summary["retrain"] == {"top": TOP, "retrained_this_session": TOP}
    line = printed.splitlines()[0]
    sources = f"{want['stand-alone']} stand-alone, {want['inherited']} inherited"
    assert f"front of {len(ids)} (accuracy: {sources})" in line
    assert f"{TOP} architectures of the front retrained stand-alone after the search ({TOP} this session)" \
        in printed


def test_resume_after_the_search_retrains_without_searching_again(tmp_path, capsys, run_cli):
    """A finished search without retraining, resumed with --retrain-top: the search's rows
    stay as they are, no supernet is trained again, only the retrain rows are added."""
    out = tmp_path / "run"
    assert run_cli(capsys, *SEARCH, "--out", str(out))[0] == 0
    before = (out / "ledger.jsonl").read_text()
    stamps = {p: p.stat().st_mtime_ns for p in (out / "supernets").glob("*/state.json")}
    code, printed, _ = run_cli(capsys, "search", "--resume", "--out", str(out), "--quiet",
                            "--retrain-top", str(TOP))
    assert code == 0
    after = (out / "ledger.jsonl").read_text()
    assert after.startswith(before)
    new = [json.loads(line) for line in after[len(before):].splitlines()]
    assert [r["phase"] for r in new] == ["retrain"] * TOP
    names = [o.name for o in nasco.load_study(out).objectives]
    assert [_arch(r) for r in new] == _top_archs(_rows(out), names, TOP)
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    assert f"({TOP} this session)" in printed


def test_resume_during_retraining_redoes_no_row_and_reads_the_stored_training(tmp_path, monkeypatch):
    """Killed after the second retraining was stored but before its row was written: the
    resume writes that row from the stored training (no training runs) and leaves the
    first retrain row as it is."""
    import nasco.evaluate._train as train_mod
    import nasco.run._driver as driver

    out = tmp_path / "run"
    study = nasco.create_study(space="darts_snn", hw="asic_template", storage=out, seed=2, sets=OVERRIDES)
    ev = study.make_evaluator("oneshot", epochs=1, limit=100, hw_inner=False)
    real = driver.evaluate_job
    calls = []

    def killed_after_second(evaluator, objectives, job, *a, **kw):
        # The driver evaluates only retrainings itself (the search's go through the executor).
        assert type(evaluator.inner) is TrainCostEvaluator
        row = real(evaluator, objectives, job, *a, **kw)
        calls.append(job.seq)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return row

    monkeypatch.setattr(driver, "evaluate_job", killed_after_second)
    with pytest.raises(KeyboardInterrupt):
        study.optimize(ev, budget=4, retrain_top=TOP, progress=False)
    first = (out / "ledger.jsonl").read_text()
    assert [r.get("phase") for r in _rows(out)] == [None] * 4 + ["retrain"]
    assert json.loads((out / "summary.json").read_text())["retrain"]["retrained_this_session"] == 1
    assert len(list((out / "trainings").glob("*.safetensors"))) == 2  # the second training was stored

    monkeypatch.setattr(driver, "evaluate_job", real)
    trained = []
    real_train = train_mod.train_and_evaluate
    monkeypatch.setattr(train_mod, "train_and_evaluate",
                        lambda *a, **kw: trained.append(1) or real_train(*a, **kw))
    again = nasco.load_study(out)
    outcome = again.optimize(progress=False)  # the recorded evaluator and retrain_top
    assert (outcome.evaluated, outcome.retrained, trained) == (0, 1, [])
    after = (out / "ledger.jsonl").read_text()
    assert after.startswith(first)
    rows = _rows(out)
    assert [r.get("phase") for r in rows] == [None] * 4 + ["retrain"] * 2
    assert [_arch(r) for r in rows[4:]] == _top_archs(rows, [o.name for o in again.objectives], TOP)
    # Once more: everything is in the ledger, nothing is retrained.
    assert again.optimize(progress=False).retrained == 0
    assert (out / "ledger.jsonl").read_text() == after


def test_a_finished_search_is_not_extended_after_retraining(retrained_run, tmp_path):
    src, _ = retrained_run
    out = tmp_path / "copy"
    shutil.copytree(src, out)
    before = (out / "ledger.jsonl").read_text()
    with pytest.warns(RuntimeWarning, match="the search is over"):
        outcome = nasco.load_study(out).optimize(budget=6, progress=False)
    assert (outcome.evaluated, outcome.retrained) == (0, 0)
    assert (out / "ledger.jsonl").read_text() == before
    with pytest.raises(NascoError, match="the search is over"):
        nasco.load_study(out).ask()


@pytest.mark.parametrize("argv, flag_text", [
    (["--evaluator", "train", "--retrain-top", "2"], "--retrain-top applies to --evaluator oneshot"),
    (["--evaluator", "oneshot", "--retrain-top", "-1"], "argument --retrain-top: expected an integer >= 0"),
])
def test_retrain_top_usage_errors_are_one_line(capsys, tmp_path, argv, flag_text, run_cli):
    code, _, err = run_cli(capsys, "search", "--space", "darts_snn", *argv, "--out", str(tmp_path / "x"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and flag_text in err
    assert "Traceback" not in err and not (tmp_path / "x").exists()


def test_retrain_top_on_resume_of_a_train_run_is_a_usage_error(capsys, tmp_path, run_cli):
    out = tmp_path / "run"
    (out).mkdir()
    (out / "run.json").write_text(json.dumps({
        "seed": 0, "searcher": {"name": "random"}, "objectives": ["accuracy"], "space": {},
        "config": {"space": "darts_snn", "hw": None, "evaluator": "train"}}))
    code, _, err = run_cli(capsys, "search", "--resume", "--out", str(out), "--retrain-top", "1")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--retrain-top applies to --evaluator oneshot" in err


def test_retrain_top_without_an_accuracy_objective_is_one_line(capsys, tmp_path, run_cli):
    code, _, err = run_cli(capsys, "search", "--space", "darts_snn", "--hw", "asic_template", "--evaluator",
                        "oneshot", "--objectives", "energy,latency", "--retrain-top", "1", "--limit", "60",
                        "--out", str(tmp_path / "x"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "retrain_top 1: expected 'accuracy' among the objectives" in err and "found energy, latency" in err
    assert not (tmp_path / "x" / "ledger.jsonl").exists()


def test_api_refuses_retrain_top_for_an_evaluator_without_inherited_accuracies(tmp_path):
    study = nasco.create_study(space="darts_snn", storage=tmp_path / "s", objectives="accuracy")
    with pytest.raises(NascoError, match="retrain_top 1: expected an evaluator whose accuracies are"):
        study.optimize(lambda c: {"accuracy": 0.5}, budget=1, retrain_top=1, progress=False)
    with pytest.raises(NascoError, match="retrain_top: expected a non-negative integer"):
        study.optimize(lambda c: {"accuracy": 0.5}, budget=1, retrain_top=-1, progress=False)
    assert not (tmp_path / "s" / "ledger.jsonl").exists()


def test_the_retrainer_trains_as_the_train_evaluator_with_the_same_settings():
    """The same settings, but the space's epochs: the one-shot evaluator's are its supernet's."""
    data = load_dataset("digits", seed=0, limit=60)
    space = SearchSpace(load_spec("darts_snn"), load_spec("asic_template"))
    ev = OneShotEvaluator(space, data, ("accuracy", "energy"), epochs=1, batch_size=16, lr=0.01, seed=7,
                          hw_inner=True, hw_exhaustive=5)
    tr = ev.retrainer()
    assert type(tr) is TrainCostEvaluator
    assert tr.space is space and tr.data is data
    assert (tr.objectives, tr.epochs, tr.batch_size, tr.lr, tr.seed, tr.hw_inner, tr.hw_exhaustive) == \
        (("accuracy", "energy"), None, 16, 0.01, 7, True, 5)
    assert TrainCostEvaluator(space, data).retrainer() is None


def test_ledger_takes_a_retrain_row_under_a_search_rows_id_once(tmp_path):
    row = {"seq": 0, "id": "c", "status": "ok", "objectives": {"accuracy": 0.5}}
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.extend([row, {**row, "seq": 1, "phase": "retrain"}])
    assert [r.get("phase") for r in ledger.rows()] == [None, "retrain"]
    ledger.append({**row, "seq": 2, "phase": "retrain"})
    with pytest.raises(LedgerError, match=re.escape("row seq 2 (id c) repeats line 2")):
        ledger.rows()
    bad = Ledger(tmp_path / "bad.jsonl")
    bad.extend([{**row, "phase": "other"}, {**row, "seq": 1, "id": "d"}])
    with pytest.raises(LedgerError, match="key 'phase': expected 'retrain' or no phase"):
        bad.rows()


def test_cost_of_a_stand_alone_front_row_takes_the_retrained_networks_spike_rates(retrained_run, capsys,
                                                                                    run_cli):
    """`nasco cost` on a pareto.csv row with a stand-alone accuracy costs the retrained
    network's spike rates (its retrain row's), not those of the inherited row of the same id."""
    out, _ = retrained_run
    with open(out / "pareto.csv", newline="") as fh:
        cid = next(r["id"] for r in csv.DictReader(fh) if r["accuracy_source"] == "stand-alone")
    by_phase = {r.get("phase"): r for r in _rows(out) if r["id"] == cid}
    assert set(by_phase) == {None, "retrain"}  # one id, two networks
    code, printed, _ = run_cli(capsys, "cost", "--workload", str(out / "pareto.csv"), "--id", cid, "--json")
    assert code == 0
    energy = json.loads(printed[printed.index("{"):])["total"]["energy_j"]
    # The ledger keeps spike rates to 6 decimals: measured 7e-11 relative to the row's energy;
    # the inherited row's differs by 7e-4.
    assert energy == pytest.approx(by_phase["retrain"]["objectives"]["energy"], rel=1e-8)
