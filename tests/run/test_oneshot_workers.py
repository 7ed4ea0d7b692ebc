"""The one-shot evaluator on worker executors: the driver trains each supernet once and the
workers get its weights (Ray tasks and Tune trials through the object store, the pool with
the jobs), so no worker trains one, and every candidate scores bit for bit as in the driver's
own process."""
from __future__ import annotations

from pathlib import Path

import pytest

from nasco.dsl import load_spec
from nasco.evaluate import OneShotEvaluator
from nasco.evaluate._data import load_dataset
from nasco.evaluate._trainings import training_key
from nasco.run import Ledger, run_search
from nasco.run._executors import InProcessExecutor, PoolExecutor
from nasco.run._ray import RayExecutor
from nasco.run._tune import TuneExecutor
from nasco.search import RandomSearch
from nasco.space import SearchSpace
from nasco.study._evaluators import SpecChecked

pytestmark = pytest.mark.usefixtures("cheap_plot")  # stub plots: see conftest.py

OBJ = ("accuracy", "energy", "latency", "area")
# Two channel counts: two supernets; timesteps and the neuron settings share them.
TINY = {("macro", "cells"): 1, ("macro", "stem", "channels"): {"choice": [4, 8], "default": 4},
        ("macro", "reductions"): [], ("timesteps",): {"choice": [1, 2], "default": 1}}
BUDGET = 6
# Metrics that depend on where and when an evaluation ran, not on what it scored.
VOLATILE = ("train_seconds", "evaluator_seconds", "supernet_trained", "trained")


@pytest.fixture(scope="module")
def space():
    return SearchSpace(load_spec("darts_snn", overrides=TINY), load_spec("asic_template"))


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0, limit=96)


@pytest.fixture
def driver_trainings(monkeypatch) -> list[str]:
    """The key of each supernet training this (the driver's) process runs. Workers unpickle
    the evaluator with the class unpatched: their trainings show in the rows' metrics only."""
    calls: list[str] = []
    real = OneShotEvaluator._train_supernet

    def counted(self, inputs, cfg, arch):
        calls.append(training_key(inputs))
        return real(self, inputs, cfg, arch)

    monkeypatch.setattr(OneShotEvaluator, "_train_supernet", counted)
    return calls


def _run(space, digits, out: Path, executor) -> list[dict]:
    ev = OneShotEvaluator(space, digits, OBJ, epochs=1, hw_inner=False)
    run_search(space=space, evaluator=SpecChecked(ev, space), searcher=RandomSearch(space, OBJ, seed=4),
               budget=BUDGET, out_dir=out, seed=4, progress=False, executor=executor, window=2)
    return sorted(Ledger(out / "ledger.jsonl").rows(), key=lambda r: r["seq"])


def _scores(rows: list[dict]) -> list[dict]:
    return [{"id": r["id"], "status": r["status"], "objectives": r["objectives"],
             "metrics": {k: v for k, v in r["metrics"].items() if k not in VOLATILE}} for r in rows]


@pytest.fixture(scope="module")
def baseline(space, digits, tmp_path_factory) -> list[dict]:
    """The in-process run: each supernet trained by the first evaluation that needs it."""
    rows = _run(space, digits, tmp_path_factory.mktemp("inprocess") / "run", InProcessExecutor())
    trained = [r["metrics"]["supernet"] for r in rows if r["metrics"]["supernet_trained"]]
    assert sorted(trained) == sorted({r["metrics"]["supernet"] for r in rows})
    assert len(trained) == 2 and all(r["status"] in ("ok", "infeasible") for r in rows)
    return rows


def _check_trained_once_in_the_driver(rows: list[dict], baseline: list[dict], calls: list[str]) -> None:
    supernets = sorted({r["metrics"]["supernet"] for r in rows})
    assert len(rows) == BUDGET and len(supernets) == 2
    assert sorted(calls) == supernets  # each supernet trained once, in the driver
    assert [r["metrics"]["supernet_trained"] for r in rows] == [False] * BUDGET  # by no worker
    assert all(r["metrics"]["accuracy_source"] == "inherited" for r in rows)
    assert _scores(rows) == _scores(baseline)


def test_ray_workers_get_the_supernets_from_the_object_store(space, digits, baseline, driver_trainings,
                                                             ray_env, tmp_path):
    rows = _run(space, digits, tmp_path / "run", RayExecutor(address=ray_env, workers=2))
    assert len({r["worker"] for r in rows}) == 2  # both workers scored candidates
    _check_trained_once_in_the_driver(rows, baseline, driver_trainings)


def test_tune_trials_get_the_supernets_from_the_object_store(space, digits, baseline, driver_trainings,
                                                             ray_env, tmp_path):
    import time

    executor = TuneExecutor(address=ray_env, workers=2)
    rows = _run(space, digits, tmp_path / "run", executor)
    _check_trained_once_in_the_driver(rows, baseline, driver_trainings)
    # The actor that held the supernets' references ends with the run. (Ray is imported only
    # now: the executor's join sets what Ray reads at import to stay on loopback.)
    import ray

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            ray.get_actor(executor._holder_name)
        except ValueError:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"actor {executor._holder_name} still alive after the run")


def test_pool_workers_get_the_supernets_with_their_jobs(space, digits, baseline, driver_trainings, tmp_path):
    rows = _run(space, digits, tmp_path / "run", PoolExecutor(2))
    _check_trained_once_in_the_driver(rows, baseline, driver_trainings)
