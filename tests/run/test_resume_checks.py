"""What a resume refuses: a damaged ledger or run.json (one line naming the file and the
line or key), and a run whose evaluator settings differ from the recorded ones; and a run
whose budget exceeds its space stops once the space is exhausted."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nasco.core import Candidate, NascoError, Result
from nasco.dsl import load_spec
from nasco.run import Ledger, LedgerError, RunDirError, run_search
from nasco.run._driver import REPEAT_FACTOR, Schedule
from nasco.search import SEARCHERS, RandomSearch
from nasco.space import SearchSpace

# NB201 with two ops: 2 ** 6 edges = 64 distinct cells.
SMALL = ["cell.ops=[none, skip_connect]"]


@pytest.fixture(scope="module")
def small() -> SearchSpace:
    return SearchSpace(load_spec("nb201", overrides={("cell", "ops"): ["none", "skip_connect"]}))


class Skips:
    """accuracy = the number of skip_connect edges / 6."""

    objectives = ("accuracy",)

    def __init__(self, tag: str = "a") -> None:
        self.tag = tag

    def evaluate(self, cand: Candidate, seed: int) -> Result:
        return Result("ok", {"accuracy": cand.arch["cell"]["edges"].count("skip_connect") / 6})


def _run(space, out, budget, *, seed=0, config=None, evaluator=None, resume=False):
    return run_search(space=space, evaluator=evaluator or Skips(), searcher=RandomSearch(space, ("accuracy",),
                      seed=seed), budget=budget, out_dir=out, seed=seed, progress=False, resume=resume,
                      config=config or {})


# ---------------------------------------------------------------------- the ledger
def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


@pytest.fixture
def ledger(small, tmp_path) -> Path:
    _run(small, tmp_path / "run", 6)
    return tmp_path / "run" / "ledger.jsonl"


def _nan(line: bytes) -> bytes:
    row = json.loads(line)
    row["objectives"]["accuracy"] = float("nan")
    return json.dumps(row).encode()


@pytest.mark.parametrize("case, damage, message", [
    ("garbage", lambda ls: ls.__setitem__(2, b"hello world"), r":3: cannot read ledger line \(not JSON"),
    # Bytes JSON would read as UTF-16 (json.loads guesses an encoding from NULs).
    ("not utf-8", lambda ls: ls.__setitem__(2, b"\xff\xfe{\x00}\x00"),
     r":3: cannot read ledger line \(not UTF-8: byte 0xff at column 1\)"),
    ("empty object", lambda ls: ls.__setitem__(2, b"{}"), r":3: key 'seq': expected a non-negative integer"),
    ("no status", lambda ls: ls.__setitem__(2, b'{"seq": 2, "id": "abc"}'),
     r":3: key 'status': expected one of ok, failed, infeasible, found null"),
    ("nan objective", lambda ls: ls.__setitem__(2, _nan(ls[2])),
     r":3: key 'objectives.accuracy': expected a number, found NaN"),
    ("identical copy", lambda ls: ls.insert(4, ls[1]), r":5: row seq 1 \(id \w+\) repeats line 2"),
    ("same id, new seq", lambda ls: ls.append(json.dumps({**json.loads(ls[0]), "seq": 6}).encode()),
     r":7: row seq 6 \(id \w+\) repeats line 1"),
])
def test_a_damaged_ledger_line_is_one_error_naming_it(ledger, case, damage, message):
    lines = _lines(ledger)
    damage(lines)
    ledger.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(LedgerError, match=message) as e:
        Ledger(ledger).rows()
    assert str(e.value).startswith(f"{ledger}:") and "\n" not in str(e.value)
    assert "utf-16" not in str(e.value).lower() and "utf-32" not in str(e.value).lower()
    assert isinstance(e.value, NascoError)  # the CLI prints it as one line, exit 2


def test_a_torn_last_line_is_still_dropped(ledger):
    with open(ledger, "ab") as fh:
        fh.write(b'{"seq": 6, "id": "ab')
    with pytest.warns(RuntimeWarning, match="torn last line"):
        assert [r["seq"] for r in Ledger(ledger).rows()] == [0, 1, 2, 3, 4, 5]


def test_cli_resume_of_a_damaged_ledger_is_one_line(tmp_path, capsys):
    from nasco.cli import main

    run = tmp_path / "run"
    base = ["search", "--space", "nb201", "--set", SMALL[0], "--evaluator", "table", "--table", "nb201",
            "--out", str(run), "--quiet"]
    assert main([*base, "--budget", "4"]) == 0
    capsys.readouterr()
    lines = _lines(run / "ledger.jsonl")
    lines[1] = b"{}"
    (run / "ledger.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(SystemExit) as e:
        main(["search", "--out", str(run), "--resume", "--budget", "6"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{run / 'ledger.jsonl'}:2: key 'seq'" in err and "Traceback" not in err


# ---------------------------------------------------------------------- run.json
@pytest.mark.parametrize("edit, message", [
    (lambda m: [], r"run.json: expected a JSON object, found list \[\]"),
    (lambda m: {**m, "window": "abc"},
     r"run.json: key 'window': expected a positive integer .*found \"abc\""),
    (lambda m: {**m, "window": 0}, r"run.json: key 'window': expected a positive integer .*found 0"),
    (lambda m: {k: v for k, v in m.items() if k != "seed"}, r"run.json: key 'seed': expected a non-negative "
                                                           r"integer, found nothing"),
    (lambda m: {**m, "searcher": "random"}, r"run.json: key 'searcher': expected an object"),
])
def test_a_damaged_run_json_is_one_error(small, tmp_path, edit, message):
    out = tmp_path / "run"
    _run(small, out, 4)
    meta = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps(edit(meta)))
    with pytest.raises(RunDirError, match=message) as e:
        _run(small, out, 8, resume=True)
    assert "\n" not in str(e.value)
    assert len(Ledger(out).rows()) == 4  # nothing evaluated


def test_cli_resume_of_a_damaged_run_json_is_one_line(tmp_path, capsys):
    from nasco.cli import main

    run = tmp_path / "run"
    base = ["search", "--space", "nb201", "--set", SMALL[0], "--evaluator", "table", "--table", "nb201",
            "--out", str(run), "--quiet"]
    assert main([*base, "--budget", "4"]) == 0
    meta = json.loads((run / "run.json").read_text())
    for edit, shown in ((dict(meta, window=0), "key 'window'"), ([], "expected a JSON object"),
                        (dict(meta, searcher=dict(meta["searcher"], name="evolutoin"),
                              config=dict(meta["config"], searcher="evolutoin")),
                         "key 'searcher.name'")):
        (run / "run.json").write_text(json.dumps(edit))
        capsys.readouterr()
        with pytest.raises(SystemExit) as e:
            main(["search", "--out", str(run), "--resume", "--budget", "6"])
        err = capsys.readouterr().err
        assert e.value.code == 2 and len(err.strip().splitlines()) == 1 and shown in err, err
        assert len(_lines(run / "ledger.jsonl")) == 4


# ---------------------------------------------------------------------- evaluator settings
def test_run_search_refuses_another_evaluator_setting(small, tmp_path):
    out = tmp_path / "run"
    cfg = {"evaluator": "table", "evaluator_options": {"table": "nb201", "table_dataset": "c10",
                                                       "table_fidelity": 200, "device": "cpu"}}
    _run(small, out, 3, config=cfg)
    with pytest.raises(RunDirError, match=r"this run's evaluator setting 'table_dataset' is 'c100', the "
                                          r"recorded run's is 'c10'"):
        _run(small, out, 5, resume=True, config={**cfg, "evaluator_options": {**cfg["evaluator_options"],
                                                                              "table_dataset": "c100"}})
    with pytest.raises(RunDirError, match=r"this run's evaluator is 'train', the recorded run's is 'table'"):
        _run(small, out, 5, resume=True, config={"evaluator": "train", "evaluator_options": {}})
    # Where evaluations run may change.
    _run(small, out, 5, resume=True, config={**cfg, "evaluator_options": {**cfg["evaluator_options"],
                                                                          "device": "cuda"}})
    assert len(Ledger(out).rows()) == 5
    # A run.json written before "settings": the same settings, read from its config.
    meta = json.loads((out / "run.json").read_text())
    del meta["settings"]
    (out / "run.json").write_text(json.dumps(meta))
    with pytest.raises(RunDirError, match=r"'table_fidelity' is 12, the recorded run's is 200"):
        _run(small, out, 6, resume=True, config={**cfg, "evaluator_options": {**cfg["evaluator_options"],
                                                                              "table_fidelity": 12}})


def test_run_search_refuses_another_evaluator_class_and_design_specs(tmp_path):
    space = SearchSpace(load_spec("darts_snn"), load_spec("asic_template"))

    class Other(Skips):
        pass

    def run(ev, budget, resume=False):
        return run_search(space=space, evaluator=ev, searcher=RandomSearch(space, ("accuracy",), seed=0),
                          budget=budget, out_dir=tmp_path / "run", seed=0, progress=False, resume=resume)

    class Acc:
        objectives = ("accuracy",)

        def evaluate(self, cand, seed):
            return Result("ok", {"accuracy": 0.5})

    run(Acc(), 2)
    with pytest.raises(RunDirError, match=r"this run's evaluator is 'Other', the recorded run's is 'Acc'"):
        run(Other(), 3, resume=True)
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["design_specs"]["asic_template"] == space.hw.limits() != {}
    meta["design_specs"]["asic_template"] = {k: 2 * v for k, v in space.hw.limits().items()}
    (tmp_path / "run" / "run.json").write_text(json.dumps(meta))
    with pytest.raises(RunDirError, match=r"this run's design specs \(limits, base units\) is"):
        run(Acc(), 3, resume=True)


# ---------------------------------------------------------------------- an exhausted space
def test_a_budget_above_the_space_stops_when_it_is_exhausted(small, tmp_path):
    assert small.size().total == 64
    out = _run(small, tmp_path / "run", 10 ** 20)
    rows = Ledger(out.out_dir).rows()
    assert out.stopped == "exhausted" and out.counts["total"] == 64 and len({r["id"] for r in rows}) == 64
    summary = json.loads((out.out_dir / "summary.json").read_text())
    assert summary["stopped"] == "exhausted" and (out.out_dir / "pareto.csv").exists()
    # Resuming it asks nothing more (nor replays: no searcher state is needed).
    again = _run(small, tmp_path / "run", 10 ** 20, resume=True)
    assert again.stopped == "exhausted" and again.evaluated == 0 and again.replayed == 0


def test_exhaustion_is_said_and_ask_tell_stops(small, tmp_path):
    sched = Schedule(RandomSearch(small, ("accuracy",), seed=0), recorded=[], budget=10 ** 20, window=1,
                     seed=0, out_dir=tmp_path, space_size=3)
    assert sched.repeat_limit == REPEAT_FACTOR * 3
    jobs = []
    while not sched.done():
        for job in sched.advance():
            jobs.append(job)
            sched.complete({"id": job.cand.id, "seq": job.seq, "status": "ok",
                            "objectives": {"accuracy": 0.5}})
    assert len(jobs) == 3 and sched.stopped == "exhausted"
    assert any("the space is exhausted: all 3 distinct candidates" in m for m in sched.messages)


def test_fresh_reaches_what_is_left_of_the_space(small):
    # Draws that only give seen candidates (a converged population): uniform samples find the rest.
    s = RandomSearch(small, ("accuracy",), seed=0)
    seen = s.ask(1)[0]
    rng = np.random.default_rng(3)
    for _ in range(200):
        s._seen[small.sample(rng).id] = None
    left = 64 - len(s._seen)
    assert left > 0
    got = s._fresh(lambda: seen)
    assert got.id not in s._seen


@pytest.mark.parametrize("name", sorted(SEARCHERS))
def test_every_searcher_stops_when_the_space_is_exhausted(name, tmp_path):
    import warnings

    import nasco

    opts = {"population_size": 4} if name in ("evolution", "nsga2", "nsga3", "optuna-nsga2") else {}
    study = nasco.create_study(space="nb201", sets=SMALL, objectives="accuracy", searcher=name,
                               searcher_options=opts, storage=tmp_path / name, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # searchers that fall back to random samples say so
        out = study.optimize(lambda c: {"accuracy": c.arch["cell"]["edges"].count("skip_connect") / 6},
                             budget=10 ** 20, progress=False)
    assert out.stopped == "exhausted" and out.counts["total"] == 64
    assert len(set(study.trials_dataframe()["id"])) == 64
