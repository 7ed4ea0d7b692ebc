"""Kill anywhere: a `nasco search` SIGKILLed at random moments and resumed ends as an
uninterrupted run, with no process left behind (a small real run of the harness); the
harness's own checks; and an Optuna study whose run died right after a storage write resumes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import warnings

import optuna
import pytest
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from nasco.run import run_search
from nasco.search import make_searcher
from nasco.testing import default_space
from nasco.testing.executor_contract import VOLATILE, ledger_rows
from nasco.testing.faults import FaultyEvaluator
from nasco.testing.kill_anywhere import TOKEN_VAR, compare_ledgers, kill_anywhere, scan_token

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


# ---------------------------------------------------------------------------- the harness, for real
@linux
@pytest.mark.parametrize("searcher, executor", [("evolution", "inprocess"), ("optuna-tpe", "pool")])
def test_killed_and_resumed_search_ends_as_the_uninterrupted_one(tmp_path, searcher, executor):
    """Three kills while the ledger is being written, then a resume to the end: the same ledger
    and pareto.csv as the reference, nothing left over."""
    r = kill_anywhere(searcher, executor, tmp_path, kills=3, seed=1, budget=30, window=(0.0, 0.5),
                      after_row=True)
    assert r.errors == [] and r.differences == [], (r.errors, r.differences)
    assert r.kills_landed == 3 and r.survivors == []
    assert r.ledger_equal and r.pareto_equal and r.ok
    assert r.starts[-1].killed is False and r.starts[-1].returncode == 0
    assert all(s.returncode == -signal.SIGKILL for s in r.starts if s.killed)
    assert (tmp_path / "victim-1" / "ledger.jsonl").is_file()
    # Each kill is aimed after a row of its start, within 50 % of the reference's time from its
    # first row to its last. The harness watches the ledger every 10 ms, so on a loaded machine a
    # kill can land after a start's last row (seen in CI: two of three kills there); a resume
    # that met a partial ledger is what exercises the replay, and one is asked for.
    assert r.starts[0].form == "fresh" and r.starts[1].form == "resume"
    assert any(0 < s.rows_before < 30 for s in r.starts if s.form == "resume"), \
        [(s.form, s.rows_before, s.killed) for s in r.starts]


@linux
def test_scan_token_finds_only_processes_carrying_the_token():
    token = "t" + os.urandom(8).hex()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                             env=dict(os.environ, **{TOKEN_VAR: token}))
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                             env=dict(os.environ, **{TOKEN_VAR: token + "x"}))
    try:
        assert scan_token(token) == [child.pid]
    finally:
        for p in (child, other):
            p.kill()
            p.wait()
    assert scan_token(token) == []


def test_compare_ledgers_reports_each_difference_and_ignores_timing():
    ref = [{"seq": 0, "id": "a", "status": "ok", "objectives": {"accuracy": 0.5}, "seconds": 1.0},
           {"seq": 1, "id": "b", "status": "ok", "objectives": {"accuracy": 0.7}, "seconds": 1.0}]
    timing = {k: "other" for k in VOLATILE}
    assert compare_ledgers(ref, [dict(r, **timing) for r in ref]) == []
    changed = [ref[0], dict(ref[1], objectives={"accuracy": 0.8})]
    assert compare_ledgers(ref, changed) == [
        "row 1: objectives {'accuracy': 0.8} != {'accuracy': 0.7}"]
    assert compare_ledgers(ref, ref[:1]) == ["1 rows, the reference has 2",
                                             "row 1 (seq 1, id b) is only in the reference"]
    # In metrics, durations (keys ending in 'seconds', at any depth) and a search's resume
    # point are how a row was made; every other metric must be equal.
    def metrics(train, search, resumed, cell):
        return {"train_seconds": train, "search": {"search_seconds": search, "resumed_from_epoch": resumed,
                                                   "cell": cell}}

    timed = [dict(r, metrics=metrics(1.0, 2.0, 0, [1])) for r in ref]
    assert compare_ledgers(timed, [dict(r, metrics=metrics(3.0, 4.0, 1, [1])) for r in ref]) == []
    other = [timed[0], dict(timed[1], metrics=metrics(1.0, 2.0, 0, [2]))]
    assert compare_ledgers(timed, other) == [
        "row 1: metrics {'search': {'cell': [2]}} != {'search': {'cell': [1]}}"]


# ---------------------------------------------------------------------------- Optuna: death after a write
OBJ = ("accuracy", "energy")
BUDGET = 6


class _Died(BaseException):
    """The process's death, at a chosen instruction (nothing catches it, as nothing outlives a SIGKILL)."""


def _search(out, *, resume=False):
    space = default_space()
    return run_search(space=space, evaluator=FaultyEvaluator(space, OBJ),
                      searcher=make_searcher("optuna-tpe", space, OBJ, 3), budget=BUDGET, out_dir=out, seed=3,
                      progress=False, resume=resume)


def _stored_trials(out):
    study = optuna.load_study(study_name="nasco-optuna-tpe-seed3", storage=f"sqlite:///{out / 'optuna.db'}")
    return study.get_trials(deepcopy=False)


@pytest.mark.parametrize("method, nth", [
    ("_create_new_trial", 4),        # the ask of the fourth candidate wrote its trial (RUNNING)
    ("set_study_user_attr", 2),      # the study was being labelled with its run, before any trial
    ("set_trial_system_attr", 3),    # a tell wrote a trial's constraint but not its state
    ("set_trial_state_values", 2),   # the second tell finished its trial, nothing after
])
def test_optuna_run_that_died_after_a_storage_write_resumes(tmp_path, monkeypatch, method, nth):
    """The driver dies right after the nth call of one of the stored study's writes: resume
    ends with the uninterrupted run's ledger, and the stored study holds one finished trial per
    ledger row, in seq order, each naming its candidate, as the uninterrupted run's study."""
    _search(tmp_path / "ref")
    real = getattr(RDBStorage, method)
    calls = []

    def dying(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == nth:
            raise _Died(method)
        return out

    monkeypatch.setattr(RDBStorage, method, dying)
    with pytest.raises(_Died):
        _search(tmp_path / "run")
    monkeypatch.undo()
    before = _stored_trials(tmp_path / "run")
    assert all("nasco_candidate" in t.user_attrs for t in before), [t.user_attrs for t in before]
    if method == "_create_new_trial":
        assert before[-1].state == TrialState.RUNNING and len(before) == nth

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _search(tmp_path / "run", resume=True)
    # A trial whose tell was cut short is told again without Optuna's warning that its
    # constraint was set already.
    assert [str(w.message) for w in caught if "constraint" in str(w.message)] == []
    rows, ref = ledger_rows(tmp_path / "run"), ledger_rows(tmp_path / "ref")
    assert compare_ledgers(ref, rows) == []
    after, ref_trials = _stored_trials(tmp_path / "run"), _stored_trials(tmp_path / "ref")
    assert [(t.state, t.values) for t in after] == [(t.state, t.values) for t in ref_trials]
    assert len(after) == BUDGET and TrialState.RUNNING not in [t.state for t in after]
    cands = [t.user_attrs["nasco_candidate"] for t in after]
    assert [optuna_id(c) for c in cands] == [r["id"] for r in rows]


def _nsga2_search(out, *, resume=False):
    space = default_space()
    searcher = make_searcher("optuna-nsga2", space, OBJ, 3, population_size=4)
    return run_search(space=space, evaluator=FaultyEvaluator(space, OBJ), searcher=searcher, budget=12,
                      out_dir=out, seed=3, progress=False, resume=resume, window=3)


def test_nsga2_run_that_died_after_any_trial_write_resumes(tmp_path, monkeypatch):
    """NSGA-II with 3 proposals out at once: a generation's first ask picks its parents from the
    results in at that moment, and caches them in the study. The driver dies right after the
    nth trial is written, for every n; each resume ends with the uninterrupted run's ledger and
    parents (picked again after a resume, from the results replayed by then, they differed)."""
    _nsga2_search(tmp_path / "ref")
    real = RDBStorage._create_new_trial

    def parents(out):
        study = optuna.load_study(study_name="nasco-optuna-nsga2-seed3",
                                  storage=f"sqlite:///{out / 'optuna.db'}")
        attrs = study._storage.get_study_system_attrs(study._study_id)
        return {k: v for k, v in attrs.items() if ":parent:" in k}

    assert list(parents(tmp_path / "ref")) == ["NSGAIISampler:parent:1"]  # generation 1 was bred
    for nth in range(1, 13):
        calls = []

        def dying(self, *args, _nth=nth, _calls=calls, **kwargs):
            out = real(self, *args, **kwargs)
            _calls.append(1)
            if len(_calls) == _nth:
                raise _Died("_create_new_trial")
            return out

        monkeypatch.setattr(RDBStorage, "_create_new_trial", dying)
        with pytest.raises(_Died):
            _nsga2_search(tmp_path / f"run{nth}")
        monkeypatch.undo()
        _nsga2_search(tmp_path / f"run{nth}", resume=True)
        assert compare_ledgers(ledger_rows(tmp_path / "ref"), ledger_rows(tmp_path / f"run{nth}")) == [], nth
        assert parents(tmp_path / f"run{nth}") == parents(tmp_path / "ref"), nth


def optuna_id(candidate_json: str) -> str:
    from nasco.space import Candidate

    return Candidate.from_json(candidate_json).id
