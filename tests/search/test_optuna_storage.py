"""Where the Optuna searchers keep their study (``storage=``, ``--optuna-storage``): SQLite in
the run directory by default, an old run's journal on resume, a database or a journal file
shared by several runs, and one-line errors for what is not a storage."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import optuna
import pytest

from nasco.cli import main
from nasco.core import Result
from nasco.dsl import load_spec
from nasco.run import Ledger, RunDirError, run_search
from nasco.search import make_searcher
from nasco.search._optuna import DB_FILE, STUDY_FILE, check_storage, mask_url
from nasco.space import Candidate, SearchSpace

SEED = 4


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return SearchSpace(load_spec("nb201"))


class _Toy:
    """NB201 cells scored by a fixed linear function: a cheap, deterministic evaluator."""

    objectives = ("accuracy",)

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.w = np.random.default_rng(5).normal(size=space.encode(space.sample(np.random.default_rng(0))).size)

    def evaluate(self, cand, seed):
        return Result("ok", {"accuracy": float(1.0 / (1.0 + np.exp(-self.w @ self.space.encode(cand))))})


def _run(space, out, budget, storage=None, resume=False, name="optuna-tpe"):
    searcher = make_searcher(name, space, ("accuracy",), SEED, **({"storage": storage} if storage else {}))
    return run_search(space=space, evaluator=_Toy(space), searcher=searcher, budget=budget, out_dir=out,
                      seed=SEED, resume=resume, progress=False)


def _ids(out: Path) -> list[str]:
    return [r["id"] for r in Ledger(out / "ledger.jsonl").rows()]


def _check_study_matches_ledger(study: optuna.Study, out: Path) -> None:
    """The study's complete trials are the ledger's ok rows, with their values."""
    rows = Ledger(out / "ledger.jsonl").rows()
    ok = {r["id"]: r["objectives"]["accuracy"] for r in rows if r["status"] == "ok"}
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == len(ok)
    for t in done:
        cand = Candidate.from_json(t.user_attrs["nasco_candidate"])
        assert t.values == [pytest.approx(ok[cand.id])]


@pytest.fixture(scope="module")
def uninterrupted(space, tmp_path_factory) -> list[str]:
    """The ledger ids of an uninterrupted 12-evaluation run (default storage)."""
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    _run(space, out, 12)
    return _ids(out)


def test_default_storage_is_sqlite_in_the_run_dir_and_resumes(space, tmp_path, uninterrupted):
    out = tmp_path / "run"
    _run(space, out, 7)
    assert (out / DB_FILE).exists() and not (out / STUDY_FILE).exists()
    res = _run(space, out, 12, resume=True)
    assert (res.replayed, res.evaluated) == (7, 5)
    assert _ids(out) == uninterrupted
    study = optuna.load_study(study_name=f"nasco-optuna-tpe-seed{SEED}", storage=f"sqlite:///{out / DB_FILE}")
    _check_study_matches_ledger(study, out)
    assert study.user_attrs["nasco_run_dir"] == str(out.resolve())
    assert study.user_attrs["nasco_seed"] == SEED and study.user_attrs["nasco_objectives"] == ["accuracy"]


def test_a_lost_study_is_rebuilt_from_the_ledger_on_resume(space, tmp_path, uninterrupted):
    """The run directory's study is a mirror of the ledger (hence SQLite without fsync)."""
    out = tmp_path / "run"
    _run(space, out, 7)
    (out / DB_FILE).write_bytes(b"not a database")
    with pytest.raises(RunDirError, match="cannot open the Optuna storage .*delete it and resume"):
        _run(space, out, 12, resume=True)
    (out / DB_FILE).unlink()
    res = _run(space, out, 12, resume=True)
    assert (res.replayed, res.evaluated) == (7, 5)
    assert _ids(out) == uninterrupted
    study = optuna.load_study(study_name=f"nasco-optuna-tpe-seed{SEED}", storage=f"sqlite:///{out / DB_FILE}")
    _check_study_matches_ledger(study, out)


def test_fresh_run_replaces_a_stale_study_in_the_run_dir(space, tmp_path, caplog):
    out = tmp_path / "run"
    _run(space, out, 3)
    (out / "ledger.jsonl").unlink()  # the run starts afresh in the same directory
    with caplog.at_level("WARNING", logger="nasco.search"):
        _run(space, out, 3)
    assert "replacing it" in caplog.text
    study = optuna.load_study(study_name=f"nasco-optuna-tpe-seed{SEED}", storage=f"sqlite:///{out / DB_FILE}")
    assert len(study.trials) == 3


def test_old_run_dir_with_a_journal_resumes_from_it(space, tmp_path, uninterrupted):
    out = tmp_path / "old"
    # A run made before optuna.db: its study in run/optuna.journal, under the same name.
    _run(space, out, 7, storage=str(out / STUDY_FILE))
    assert (out / STUDY_FILE).exists() and not (out / DB_FILE).exists()
    res = _run(space, out, 12, resume=True)  # default storage
    assert (res.replayed, res.evaluated) == (7, 5)
    assert not (out / DB_FILE).exists()
    assert _ids(out) == uninterrupted
    journal = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(out / STUDY_FILE)))
    _check_study_matches_ledger(optuna.load_study(study_name=f"nasco-optuna-tpe-seed{SEED}", storage=journal), out)


def test_shared_sqlite_database_holds_one_study_per_run(space, tmp_path, uninterrupted):
    db = tmp_path / "shared" / "shared.db"
    url = f"sqlite:///{db}"
    _run(space, tmp_path / "x", 7, storage=url)
    _run(space, tmp_path / "y", 4, storage=url, name="optuna-random")
    assert db.exists() and not (tmp_path / "x" / DB_FILE).exists()
    names = set(optuna.get_all_study_names(storage=url))
    assert names == {f"nasco-optuna-tpe-seed{SEED}-x", f"nasco-optuna-random-seed{SEED}-y"}
    study = optuna.load_study(study_name=f"nasco-optuna-tpe-seed{SEED}-x", storage=url)
    assert study.user_attrs["nasco_run_dir"] == str((tmp_path / "x").resolve())
    assert study.user_attrs["nasco_searcher"] == "optuna-tpe"

    # Another run directory of the same name, started afresh: not mixed into x's study.
    with pytest.raises(RunDirError, match="already holds study 'nasco-optuna-tpe-seed4-x' with 7 trials.*--resume"):
        _run(space, tmp_path / "elsewhere" / "x", 7, storage=url)
    assert len(optuna.load_study(study_name=f"nasco-optuna-tpe-seed{SEED}-x", storage=url).trials) == 7

    res = _run(space, tmp_path / "x", 12, storage=url, resume=True)
    assert (res.replayed, res.evaluated) == (7, 5)
    assert _ids(tmp_path / "x") == uninterrupted
    _check_study_matches_ledger(optuna.load_study(study_name=f"nasco-optuna-tpe-seed{SEED}-x", storage=url),
                                tmp_path / "x")
    _check_study_matches_ledger(optuna.load_study(study_name=f"nasco-optuna-random-seed{SEED}-y", storage=url),
                                tmp_path / "y")


@pytest.mark.parametrize("form", ["journal:{d}/j/study.log", "{d}/study.journal", "rel.journal", "sqlite:///rel.db"])
def test_journal_forms_and_relative_paths(space, tmp_path, monkeypatch, form):
    monkeypatch.chdir(tmp_path)  # relative paths are relative to the current directory
    storage = form.format(d=tmp_path)
    s = make_searcher("optuna-tpe", space, ("accuracy",), SEED, storage=storage)
    monkeypatch.chdir("/")  # made once: a later change of directory does not move the study
    run_search(space=space, evaluator=_Toy(space), searcher=s, budget=4, out_dir=tmp_path / "r", seed=SEED,
               progress=False)
    path = tmp_path / form.replace("journal:", "").replace("sqlite:///", "").format(d=tmp_path)
    assert s.storage_path == path and path.exists()
    assert not (tmp_path / "r" / DB_FILE).exists()
    if form.startswith("sqlite"):
        st = f"sqlite:///{path}"
    else:
        st = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    _check_study_matches_ledger(optuna.load_study(study_name=f"nasco-optuna-tpe-seed{SEED}-r", storage=st),
                                tmp_path / "r")


def test_state_dict_holds_trials_not_the_storage(space, tmp_path):
    s = make_searcher("optuna-nsga2", space, ("accuracy",), SEED, storage=f"sqlite:///{tmp_path / 's.db'}")
    s.attach_run_dir(tmp_path / "r", resume=False)
    for cand in s.ask(3):
        s.tell(cand, _Toy(space).evaluate(cand, 0))
    state = s.state_dict()
    assert "s.db" not in json.dumps(state)
    t = make_searcher("optuna-nsga2", space, ("accuracy",), SEED)
    t.load_state_dict(json.loads(json.dumps(state)))
    assert t.storage_path is None and len(t.study.trials) == 3
    assert [c.id for c in t.ask(2)] == [c.id for c in s.ask(2)]


@pytest.mark.parametrize("bad", ["bogus", "optuna.db", "journal:", "bogus://host/db", "postgresql://u:p@h:port/db"])
def test_bad_storage_strings_are_one_line_value_errors(space, bad):
    with pytest.raises(ValueError) as e:
        make_searcher("optuna-tpe", space, ("accuracy",), 0, storage=bad)
    msg = str(e.value)
    assert "\n" not in msg and ("journal:PATH" in msg)


@pytest.mark.parametrize("url, module, package", [
    ("postgresql+psycopg2://nasco:s3cret@db.example/nas", "psycopg2", "psycopg2-binary"),
    ("postgresql://nasco:s3cret@db.example/nas", "psycopg", "psycopg[binary]"),
    ("mysql+pymysql://nasco:s3cret@db.example/nas", "pymysql", "PyMySQL"),
])
def test_missing_database_driver_names_the_package(space, url, module, package):
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed here")
    with pytest.raises(ValueError) as e:
        make_searcher("optuna-tpe", space, ("accuracy",), 0, storage=url)
    msg = str(e.value)
    assert f"pip install '{package}'" in msg and "s3cret" not in msg and "nasco:***@db.example" in msg
    assert "\n" not in msg


def test_mask_url():
    assert mask_url("postgresql://u:pw@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert mask_url("postgresql+psycopg2://u:p%40ss@h/db?sslmode=require") == \
        "postgresql+psycopg2://u:***@h/db?sslmode=require"
    assert "secret" not in mask_url("postgresql://u@h/db?password=secret")
    assert mask_url("sqlite:///runs/x.db") == "sqlite:///runs/x.db"
    assert mask_url("journal:/tmp/a.log") == "journal:/tmp/a.log"
    assert "pw" not in mask_url("postgresql://u:pw@h:notaport/db")
    assert check_storage("sqlite:///a/b.db").path == Path.cwd() / "a" / "b.db"


# ---------------------------------------------------------------- the command line
@pytest.fixture(scope="module")
def table_cache(tmp_path_factory) -> Path:
    from nasco.tables import load_table

    cache = tmp_path_factory.mktemp("nasco-cache")
    load_table("nb201", cache=cache)
    return cache


@pytest.fixture
def table_env(table_cache, monkeypatch):
    monkeypatch.setenv("NASCO_CACHE", str(table_cache.parent))
    monkeypatch.setattr("nasco.tables._table.cache_dir", lambda: table_cache)


TABLE = ["search", "--space", "nb201", "--evaluator", "table", "--table", "nb201", "--quiet"]


def test_cli_optuna_storage_end_to_end_and_resume(table_env, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 's.db'}"
    out = tmp_path / "r"
    argv = TABLE + ["--searcher", "optuna-tpe", "--optuna-storage", url, "--out", str(out)]
    assert main(argv + ["--budget", "5"]) == 0
    assert main(argv + ["--budget", "8", "--resume"]) == 0
    rows = Ledger(out / "ledger.jsonl").rows()
    assert len(rows) == 8 and len({r["id"] for r in rows}) == 8
    assert not (out / DB_FILE).exists()
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["searcher_options"] == {"storage": url}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["replayed"] == 5 and summary["evaluated_this_session"] == 3
    study = optuna.load_study(study_name="nasco-optuna-tpe-seed0-r", storage=url)
    ok = [r for r in rows if r["status"] == "ok"]
    assert len([t for t in study.trials if t.state.name == "COMPLETE"]) == len(ok)
    capsys.readouterr()
    # A fresh run into another directory of the same name: one line, exit 2.
    code = _exit_code(argv[:-1] + [str(tmp_path / "other" / "r"), "--budget", "3"])
    err = capsys.readouterr().err
    assert code == 2 and "already holds study 'nasco-optuna-tpe-seed0-r'" in err and len(err.strip().splitlines()) == 1


def _exit_code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


@pytest.mark.parametrize("extra, msg", [
    (["--searcher", "optuna-tpe", "--optuna-storage", "bogus"], "--optuna-storage: storage 'bogus' is not understood"),
    (["--searcher", "random", "--optuna-storage", "x.journal"],
     "--optuna-storage applies to the optuna-* searchers only, not 'random'"),
    (["--searcher", "optuna-tpe", "--optuna-storage", "a.journal", "--searcher-opt", "storage=b.journal"],
     "give the Optuna storage once"),
    (["--searcher", "optuna-tpe", "--optuna-storage", "postgresql+psycopg2://nasco:s3cret@db.example/nas"],
     "pip install 'psycopg2-binary'"),
])
def test_cli_bad_storage_is_one_line_exit_2(table_env, tmp_path, capsys, extra, msg):
    if "psycopg2" in msg and importlib.util.find_spec("psycopg2") is not None:
        pytest.skip("psycopg2 is installed here")
    code = _exit_code(TABLE + extra + ["--budget", "3", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and msg in err and len(err.strip().splitlines()) == 1, err
    assert "s3cret" not in err and "Traceback" not in err
    assert not (tmp_path / "r" / "ledger.jsonl").exists()


def test_cli_records_the_storage_without_its_password(monkeypatch, tmp_path):
    """run.json gets the options with the password masked; the searcher gets the URL itself."""
    import argparse

    import nasco
    from nasco.cli import _search

    monkeypatch.setattr("nasco.search._optuna.check_storage", lambda s: None)  # no driver needed
    given = {}
    monkeypatch.setattr("nasco.study._study.make_searcher", lambda *a, **kw: given.update(kw) or "made")
    url = "postgresql+psycopg2://nasco:s3cret@db.example/nas"
    args = argparse.Namespace(population=None, searcher_opt=None, optuna_storage=url)
    kw = _search._searcher_options(args, "optuna-tpe")
    assert kw == {"storage": url}
    study = nasco.create_study(space="nb201", searcher="optuna-tpe", searcher_options=kw, storage=tmp_path / "r",
                               objectives="accuracy")
    assert study._config({}, 5)["searcher_options"] == {"storage": "postgresql+psycopg2://nasco:***@db.example/nas"}
    assert study._searcher() == "made"
    assert given == {"storage": url}


@pytest.mark.parametrize("url", ["sqlite:///{tmp}/p.db?passphrase=zz9SECRET",
                                 "postgresql://u:zz9SECRET@h/db?sslpassword=zz9SECRET",
                                 "mysql+pymysql://u@h/db?ssl_key_passphrase=zz9SECRET&charset=utf8",
                                 "postgresql://u:zz9SECRET@h:notaport/db?passphrase=zz9SECRET&token=zz9SECRET"])
def test_mask_url_hides_every_secret(url, tmp_path):
    shown = mask_url(url.format(tmp=tmp_path))
    assert "zz9SECRET" not in shown and "***" in shown.replace("%2A", "*"), shown


def test_cli_never_writes_a_passphrase(table_env, tmp_path, capsys):
    secret = "zz9SECRET"
    out = tmp_path / "r"
    url = f"sqlite:///{tmp_path / 's.db'}?passphrase={secret}"
    argv = TABLE[:-1] + ["--searcher", "optuna-tpe", "--optuna-storage", url, "--out", str(out), "--budget", "3"]
    with pytest.warns(Warning):  # SQLAlchemy: pysqlite ignores the parameter
        assert main(argv) == 0
    streams = capsys.readouterr()
    assert secret not in streams.out + streams.err
    for f in out.iterdir():
        if f.is_file() and f.suffix in (".json", ".jsonl", ".csv"):
            assert secret not in f.read_text(), f
    assert "passphrase=%2A%2A%2A" in (out / "run.json").read_text()
