"""The Ray Tune executor on a real local Ray cluster (conftest's ``ray_env``): the same
ledger as the in-process executor, retries, failures, the driver-side timeout, ASHA on a
real (tiny) training, resume, and Optuna's sampler through Tune's OptunaSearch."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from nasco.run import run_search
from nasco.run._executors import InProcessExecutor
from nasco.run._tune import TuneExecutor, TuneOptunaSearcher  # imports Ray only when used
from nasco.search import OptunaTPE, RandomSearch, RegularizedEvolution
from nasco.testing import default_space
from nasco.testing.faults import FaultyEvaluator

# Every test that imports Ray takes ``ray_env``, even one that needs no cluster: Ray reads
# RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER when it is imported, and a Ray imported without it
# (=0) joins 127.0.0.1:PORT at the machine's own address, where the loopback-bound test
# cluster does not listen (nasco.run._ray.connect corrects Ray's setting for loopback
# addresses, but the environment is the documented way).

OBJ = ("accuracy", "energy")
TIMING = ("seconds", "started_at", "finished_at", "worker")


pytestmark = pytest.mark.usefixtures("cheap_plot")  # stub plots: see conftest.py


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines() if line.strip()]


def _run(out: Path, *, executor=None, budget=8, seed=3, evaluator=None, searcher=None, window=2, resume=False,
         space=None):
    space = space or default_space()
    evaluator = evaluator or FaultyEvaluator(space, OBJ)
    searcher = searcher or RegularizedEvolution(space, OBJ, seed=seed, population_size=4, sample_size=2)
    return run_search(space=space, evaluator=evaluator, searcher=searcher, budget=budget, out_dir=out, seed=seed,
                      executor=executor, window=window, progress=False, resume=resume)


def _same_results(a: list[dict], b: list[dict]) -> None:
    key = lambda r: (r["seq"], r["id"], r["status"], r["reason"], r["objectives"])  # noqa: E731
    assert sorted(map(key, a)) == sorted(map(key, b))


def test_tune_ledger_equals_in_process(ray_env: str, tmp_path: Path) -> None:
    out = _run(tmp_path / "tune", executor=TuneExecutor(address=ray_env, workers=2))
    ref = _run(tmp_path / "inproc", executor=InProcessExecutor())
    rows = _rows(out.out_dir)
    assert len(rows) == 8 and len({r["id"] for r in rows}) == 8
    assert sorted(r["seq"] for r in rows) == list(range(8))
    _same_results(rows, _rows(ref.out_dir))
    assert all(r["attempts"] == 1 and r["retries"] == [] for r in rows)
    summary = json.loads((out.out_dir / "summary.json").read_text())
    assert summary["executor"]["executor"] == "tune" and summary["executor"]["workers"] == 2
    # Tune's own result logging: one trial directory per evaluation, in the run directory.
    exp = Path(summary["executor"]["experiment"])
    assert exp.parent == (out.out_dir / "tune").resolve()
    trial_dirs = [d for d in exp.iterdir() if d.is_dir()]
    assert len(trial_dirs) == 8 and all((d / "result.json").exists() for d in trial_dirs)


def _first_ids(tmp_path: Path, n: int, seed: int = 3) -> list[str]:
    """The ids :func:`_random_first` proposes first: its random initial population, which does
    not depend on the results (n must not exceed it)."""
    space = default_space()
    ref = _run(tmp_path / "ids", executor=InProcessExecutor(), budget=n, seed=seed,
               searcher=_random_first(space, seed), space=space)
    return [r["id"] for r in sorted(_rows(ref.out_dir), key=lambda r: r["seq"])]


def _random_first(space, seed: int = 3) -> RegularizedEvolution:
    """Evolution whose first 6 proposals are random samples, whatever the results."""
    return RegularizedEvolution(space, OBJ, seed=seed, population_size=6, sample_size=2)


def test_tune_faults_retries_and_timeout(ray_env: str, tmp_path: Path) -> None:
    ids = _first_ids(tmp_path, 5)
    kinds = dict(zip(ids, ("crash_once", "raise", "memory_error", "hang", "crash")))
    space = default_space()
    (tmp_path / "markers").mkdir()
    (tmp_path / "log").mkdir()
    ev = FaultyEvaluator(space, OBJ, faults=kinds, marker_dir=tmp_path / "markers", log_dir=tmp_path / "log")
    out = _run(tmp_path / "run", executor=TuneExecutor(address=ray_env, workers=2, trial_timeout=3, max_retries=2),
               evaluator=ev, budget=6, space=space, searcher=_random_first(space))
    rows = {r["id"]: r for r in _rows(out.out_dir)}
    assert len(rows) == 6 and out.stopped == "budget"
    evaluations = (tmp_path / "log" / "evaluations.log").read_text().split()[0::2]

    crashed = rows[ids[0]]  # its actor died once: Tune ran the trial again
    assert crashed["attempts"] == 2 and len(crashed["retries"]) == 1
    assert crashed["retries"][0].startswith("worker died: "), crashed["retries"]
    assert crashed["status"] != "failed" or crashed["reason"] == "toy: candidate rejected"
    assert evaluations.count(ids[0]) == 2

    assert rows[ids[1]]["status"] == "failed" and rows[ids[1]]["reason"].startswith("RuntimeError: injected failure")
    assert rows[ids[2]]["status"] == "failed" and rows[ids[2]]["reason"].startswith("out of memory: MemoryError")
    hung = rows[ids[3]]
    assert hung["status"] == "failed" and hung["reason"].startswith("timeout:"), hung["reason"]
    assert hung["attempts"] == 1 and evaluations.count(ids[3]) == 1 and hung["seconds"] >= 3

    dead = rows[ids[4]]  # its actor died on every attempt: 1 + max_retries
    assert dead["status"] == "failed" and "worker died on all 3 attempts" in dead["reason"], dead["reason"]
    assert dead["attempts"] == 3 and len(dead["retries"]) == 3 and evaluations.count(ids[4]) == 3
    assert all(r["attempts"] == 1 for i, r in rows.items() if i not in (ids[0], ids[4]))


def test_tune_resume_equals_uninterrupted(ray_env: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = _run(out, executor=TuneExecutor(address=ray_env, workers=2), budget=4)
    assert first.evaluated == 4
    second = _run(out, executor=TuneExecutor(address=ray_env, workers=2), budget=8, resume=True)
    assert second.replayed == 4 and second.evaluated == 4
    rows = _rows(out)
    assert len(rows) == 8 and len({r["id"] for r in rows}) == 8
    ref = _run(tmp_path / "ref", executor=InProcessExecutor(), budget=8)
    _same_results(rows, _rows(ref.out_dir))
    assert len([d for d in (out / "tune").iterdir() if d.is_dir()]) == 2  # one Tune experiment per session


def _train_space():
    from nasco.dsl import load_spec
    from nasco.space import SearchSpace

    tiny = {("macro", "cells"): 1, ("macro", "stem", "channels"): 4, ("macro", "reductions"): []}
    return SearchSpace(load_spec("darts", overrides=tiny), load_spec("asic_template"))


def test_epoch_reporter_leaves_training_unchanged() -> None:
    import torch
    from torch import nn

    from nasco.evaluate._data import load_dataset
    from nasco.evaluate._train import TrainConfig, epoch_reporter, train_and_evaluate

    data = load_dataset("digits", seed=0, limit=200)

    def model():
        torch.manual_seed(0)
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10))

    cfg = TrainConfig(epochs=3, seed=1)
    plain = train_and_evaluate(model(), data, cfg)
    seen: list[tuple[int, dict]] = []
    with epoch_reporter(lambda epoch, metrics: seen.append((epoch, metrics))):
        reported = train_and_evaluate(model(), data, cfg)
    train_and_evaluate(model(), data, TrainConfig(epochs=1))  # outside the block: not reported
    assert [e for e, _ in seen] == [1, 2, 3]
    assert [m["train_loss"] for _, m in seen] == list(plain.epoch_losses)
    assert seen[-1][1]["valid_accuracy"] == plain.valid_accuracy
    assert (reported.valid_accuracy, reported.test_accuracy, reported.epoch_losses) == \
        (plain.valid_accuracy, plain.test_accuracy, plain.epoch_losses)


def test_tune_asha_stops_trials_early(ray_env: str, tmp_path: Path) -> None:
    from nasco.evaluate import TrainCostEvaluator
    from nasco.evaluate._data import load_dataset

    space = _train_space()
    epochs = 6
    ev = TrainCostEvaluator(space, load_dataset("digits", seed=0, limit=200), objectives=OBJ, epochs=epochs, lr=0.1)
    ex = TuneExecutor(address=ray_env, workers=2, scheduler="asha", asha={"grace_period": 1, "reduction_factor": 2})
    out = _run(tmp_path / "run", executor=ex, evaluator=ev, budget=8, space=space,
               searcher=RandomSearch(space, OBJ, seed=0))
    rows = _rows(out.out_dir)
    assert len(rows) == 8 and len({r["id"] for r in rows}) == 8
    early = [r for r in rows if r["status"] == "failed" and r["reason"].startswith("stopped early by ASHA after ")]
    full = [r for r in rows if r["status"] != "failed"]
    assert early and full, [(r["status"], r["reason"]) for r in rows]
    for r in early:
        m = r["metrics"]
        assert 1 <= m["epochs"] < epochs and f"(accuracy = {m['valid_accuracy']:.4g})" in r["reason"]
        assert m["stopped_by"] == "asha" and r["objectives"] == {}
    assert all(r["metrics"]["epochs"] == epochs for r in full)
    summary = json.loads((out.out_dir / "summary.json").read_text())
    assert summary["executor"]["scheduler"] == "asha" and summary["executor"]["asha"]["reduction_factor"] == 2


def test_tune_asha_needs_accuracy_first() -> None:
    ex = TuneExecutor(scheduler="asha")
    with pytest.raises(ValueError, match="first objective must be 'accuracy'"):
        ex.start(FaultyEvaluator(default_space(), ("energy", "accuracy")), ("energy", "accuracy"))
    with pytest.raises(ValueError, match="unknown ASHA settings"):
        TuneExecutor(asha={"grace": 1})
    # What the command line passes: an empty ``asha`` without --scheduler is no ASHA.
    assert TuneExecutor(asha={}).describe()["scheduler"] == "fifo"
    assert TuneExecutor(asha={"grace_period": 2}).describe()["asha"]["grace_period"] == 2


def test_tune_optuna_searcher_is_deterministic(ray_env: str, tmp_path: Path) -> None:
    space = default_space()
    runs = []
    for name in ("a", "b"):
        searcher = TuneOptunaSearcher(OptunaTPE(space, OBJ, seed=4))
        out = _run(tmp_path / name, executor=InProcessExecutor(), budget=14, seed=4, searcher=searcher, space=space)
        runs.append(sorted(((r["seq"], r["id"]) for r in _rows(out.out_dir))))
    assert runs[0] == runs[1] and len({i for _, i in runs[0]}) == 14
    with pytest.raises(ValueError, match="Optuna searchers"):
        TuneOptunaSearcher(RegularizedEvolution(space, OBJ, seed=0))


def test_tune_optuna_inside_tune(ray_env: str, tmp_path: Path) -> None:
    space = default_space()
    out = _run(tmp_path / "tune", executor=TuneExecutor(address=ray_env, workers=2, optuna=True), budget=6,
               seed=4, searcher=OptunaTPE(space, OBJ, seed=4), space=space)
    rows = _rows(out.out_dir)
    assert len(rows) == 6 and len({r["id"] for r in rows}) == 6
    # The same proposals as the adapter driven in-process: the schedule fixes the order.
    ref = _run(tmp_path / "ref", executor=InProcessExecutor(), budget=6, seed=4, space=space,
               searcher=TuneOptunaSearcher(OptunaTPE(space, OBJ, seed=4)))
    _same_results(rows, _rows(ref.out_dir))
    assert json.loads((out.out_dir / "summary.json").read_text())["executor"]["optuna"] is True


def test_tune_driver_error_ends_the_run(ray_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception in the driver's own hooks (here: the ledger cannot be written) is not
    swallowed by Tune: the experiment stops and run_search raises it."""
    from nasco.run._ledger import Ledger

    calls: list[str] = []

    def failing(original):
        def write(self, rows):
            many = isinstance(rows, (list, tuple))
            calls.extend(r["id"] for r in (rows if many else [rows]))
            if len(calls) >= 2:
                raise OSError("disk full (injected)")
            return original(self, rows)
        return write

    for name in ("append", "extend"):  # whichever the driver writes rows with
        if hasattr(Ledger, name):
            monkeypatch.setattr(Ledger, name, failing(getattr(Ledger, name)))
    with pytest.raises(OSError, match="disk full"):
        _run(tmp_path / "run", executor=TuneExecutor(address=ray_env, workers=2), budget=6)
    assert len(_rows(tmp_path / "run")) == 1 and len(calls) == 2  # nothing recorded after the error


def test_error_files_are_unpickled_only_from_the_trials_own_directory(tmp_path):
    """Tune's error pickles run code when loaded: only a trial's own file in this session's
    experiment is read; a file elsewhere, a link, or a name with a path is not."""
    import pickle
    from types import SimpleNamespace

    from nasco.run._tune import _Bridge

    bridge = _Bridge(None, lambda row: row, lambda: None, None, None)
    exp = tmp_path / "storage" / "nasco-20260101-000000-abcdef"
    bridge.experiment = str(exp)
    staging = tmp_path / "staging" / exp.name / "driver_artifacts"

    def trial(seq, local=None, name="error.pkl"):
        t = SimpleNamespace(trial_id=f"t{seq}", config={"seq": seq, "candidate": {"id": f"c{seq}"}},
                            run_metadata=SimpleNamespace(pickled_error_filename=name),
                            local_path=str(local) if local else None)
        bridge.trials[t.trial_id] = t
        return t

    def plant(folder: Path, exc: BaseException, name="error.pkl") -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(pickle.dumps(exc))
        return folder / name

    own = trial(1)
    plant(exp / "00001_c1", RuntimeError("own"))
    assert str(bridge.error_of("t1")) == "own"
    trial(2, staging / "00002_c2")
    plant(staging / "00002_c2", RuntimeError("staged"))
    assert str(bridge.error_of("t2")) == "staged"
    # Another directory of the shared storage, though the trial's local path points there.
    other = tmp_path / "storage" / "someone-else" / "00003_c3"
    plant(other, RuntimeError("planted"))
    trial(3, other)
    assert bridge.error_of("t3") is None and bridge.own_error_file(bridge.trials["t3"]) is None
    # A link in the trial's own directory, and a file name that climbs out of it.
    (exp / "00004_c4").mkdir(parents=True)
    (exp / "00004_c4" / "error.pkl").symlink_to(other / "error.pkl")
    trial(4)
    assert bridge.error_of("t4") is None
    plant(exp, RuntimeError("up"), "up.pkl")
    trial(5, name="../up.pkl")
    (exp / "00005_c5").mkdir()
    assert bridge.error_of("t5") is None
    assert bridge.error_of("unknown") is None and own.trial_id == "t1"
