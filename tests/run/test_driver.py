"""The search driver on the real joint space with a cheap deterministic evaluator."""
from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nasco.core import Result
from nasco.dsl import load_spec
from nasco.pareto import hypervolume
from nasco.run import InProcessExecutor, Ledger, RunDirError, RunOutcome, _outputs, eval_seed, run_search
from nasco.search import RandomSearch, RegularizedEvolution, Searcher
from nasco.space import Candidate, SearchSpace

OBJ = ("accuracy", "energy")
AREA_LIMIT = 1.1  # mm2: candidates above it are infeasible
TIMING = ("seconds", "started_at", "finished_at", "worker")


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return SearchSpace(load_spec("darts_snn"), load_spec("systolic_template"))


@pytest.fixture
def real_plot() -> None:
    """Request this to render pareto.png for real (tests/pareto covers the plot itself)."""


@pytest.fixture(autouse=True)
def _cheap_plot(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    # Rendering a PNG takes about half a second; most tests only need the run's logic.
    if "real_plot" not in request.fixturenames:
        def stub(df, objectives, path, **kw):
            Path(path).write_bytes(b"stub")
            return Path(path)
        monkeypatch.setattr(_outputs, "plot_front", stub)
        monkeypatch.setattr(_outputs, "plot_history", stub)


class ToyEvaluator:
    """Objectives from the candidate alone: accuracy from the encoding, energy and area
    from the accelerator choices. About 1 in 8 candidates raise (-> failed rows), the
    large arrays are infeasible, and ``interrupt_at`` simulates Ctrl-C on that call."""

    objectives = OBJ

    def __init__(self, space: SearchSpace, interrupt_at: int | None = None) -> None:
        self.space = space
        self.calls: list[tuple[str, int]] = []
        self.interrupt_at = interrupt_at
        n = space.encode(space.sample(np.random.default_rng(0))).size
        self.w = np.random.default_rng(42).normal(size=n)

    def evaluate(self, cand: Candidate, seed: int) -> Result:
        self.calls.append((cand.id, seed))
        if self.interrupt_at is not None and len(self.calls) == self.interrupt_at:
            raise KeyboardInterrupt
        if int(cand.id[:8], 16) % 8 == 0:
            raise RuntimeError(f"toy crash on {cand.id}")
        hw, hp = cand.hw, cand.arch["hp"]
        pes = hw["pe_array.rows"] * hw["pe_array.cols"]
        acc = float(1 / (1 + np.exp(-self.w @ self.space.encode(cand) / 4)))
        energy = 1e-6 * hp["timesteps"] * hp["macro.stem.channels"] * (1 + 256 / pes) * 400 / hw["clock_mhz"]
        kb = hw["buffers.ifmap_kb"] + hw["buffers.filter_kb"] + hw["buffers.ofmap_kb"]
        area = 0.002 * pes + 0.01 * kb
        objs = {"accuracy": acc, "energy": energy}
        metrics = {"area": area, "pes": np.int64(pes)}
        if area > AREA_LIMIT:
            return Result("infeasible", objs, metrics=metrics, violations={"area": area - AREA_LIMIT})
        return Result("ok", objs, metrics=metrics)


def _run(space, tmp_path, name="run", *, budget=12, seed=5, evaluator=None, searcher=None,
         **kw) -> RunOutcome:
    evaluator = evaluator or ToyEvaluator(space)
    searcher = searcher or RegularizedEvolution(space, OBJ, seed=seed, population_size=4, sample_size=2)
    return run_search(space=space, evaluator=evaluator, searcher=searcher, budget=budget,
                      out_dir=tmp_path / name, seed=seed, progress=False, **kw)


def _strip(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def test_run_writes_ledger_and_outputs(space, tmp_path, real_plot):
    ev = ToyEvaluator(space)
    out = _run(space, tmp_path, budget=24, evaluator=ev, config={"note": "t"}, limits={"energy": 5e-5})
    rows = Ledger(out.out_dir / "ledger.jsonl").rows()
    assert [r["seq"] for r in rows] == list(range(24)) and len({r["id"] for r in rows}) == 24
    assert list(rows[0]) == ["seq", "id", "arch", "hw", "seed", "status", "reason", "objectives",
                             "violations", "metrics", "seconds", "started_at", "finished_at", "attempts", "retries",
                             "worker"]
    # Per-evaluation seeds follow from (run seed, seq), and the evaluator got them.
    assert [r["seed"] for r in rows] == [eval_seed(5, i) for i in range(24)]
    assert [(r["id"], r["seed"]) for r in rows] == ev.calls
    assert all(r["started_at"].endswith("+00:00") and r["seconds"] >= 0 for r in rows)
    statuses = {r["status"] for r in rows}
    assert statuses == {"ok", "failed", "infeasible"}, statuses
    for r in rows:
        if r["status"] == "failed":
            assert r["reason"] == f"RuntimeError: toy crash on {r['id']}" and r["objectives"] == {}
        if r["status"] == "infeasible":
            assert r["violations"]["area"] > 0
    assert out.counts == {s: sum(r["status"] == s for r in rows) for s in ("ok", "failed", "infeasible")} | \
        {"total": 24}
    assert out.evaluated == 24 and out.replayed == 0 and out.stopped == "budget"

    # The front is exactly the non-dominated ok rows (brute force).
    ok = [r for r in rows if r["status"] == "ok"]
    F = np.array([[-r["objectives"]["accuracy"], r["objectives"]["energy"]] for r in ok])
    keep = [not any(np.all(F[j] <= F[i]) and np.any(F[j] < F[i]) for j in range(len(ok)))
            for i in range(len(ok))]
    front_ids = [r["id"] for r, k in zip(ok, keep) if k]
    assert out.front["id"].tolist() == front_ids
    csv = pd.read_csv(out.out_dir / "pareto.csv")
    assert list(csv.columns) == ["id", "accuracy", "energy", "arch", "hw"]
    assert csv["id"].tolist() == front_ids
    assert json.loads(csv["hw"][0]) == next(r["hw"] for r in ok if r["id"] == front_ids[0])
    # Bounds: accuracy 0 (ideal 1), energy at the given design limit (ideal 0); the HV is
    # that of the front scaled to [0, 1] per objective, by hand: accuracy a -> 1 - a,
    # energy e -> e / 5e-5, reference (1, 1).
    assert out.reference_point == {"accuracy": 0.0, "energy": 5e-5}
    Z = np.column_stack([1.0 + F[:, 0], F[:, 1] / 5e-5])[np.array(keep)]
    assert out.hypervolume == pytest.approx(hypervolume(Z, [1.0, 1.0]), rel=1e-12)
    assert 0 < out.hypervolume < 1

    summary = json.loads((out.out_dir / "summary.json").read_text())
    assert summary["counts"] == out.counts and summary["front_size"] == len(front_ids)
    assert summary["hypervolume"] == pytest.approx(out.hypervolume)
    assert summary["reference_point"] == {"accuracy": 0.0, "energy": 5e-5}
    assert set(summary["versions"]) == {"python", "nasco", "torch", "numpy", "pymoo"}
    assert summary["searcher"]["name"] == "evolution" and summary["searcher"]["population_size"] == 4
    assert summary["seed"] == 5 and summary["config"] == {"note": "t"}
    assert summary["objectives"] == {"accuracy": "max", "energy": "min"}
    assert summary["space"]["arch"] == "darts_snn" and summary["space"]["size"]["hw"] == 5184
    run = json.loads((out.out_dir / "run.json").read_text())
    assert run["seed"] == 5 and run["objectives"] == list(OBJ) and run["space"]["hw"] == "systolic_template"
    assert (out.out_dir / "pareto.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_by_replay_gives_the_same_ledger(space, tmp_path):
    full = _run(space, tmp_path, "full", budget=14)
    reference = _strip(Ledger(full.out_dir).rows())

    # Stopped after 6 evaluations, then resumed to 14.
    _run(space, tmp_path, "split", budget=6)
    ev = ToyEvaluator(space)
    out = _run(space, tmp_path, "split", budget=14, evaluator=ev, resume=True)
    assert _strip(Ledger(out.out_dir).rows()) == reference
    assert len(ev.calls) == 8 and out.replayed == 6 and out.evaluated == 8  # nothing re-evaluated

    # Killed by Ctrl-C during the 9th evaluation, with a torn line left on disk.
    with pytest.raises(KeyboardInterrupt):
        _run(space, tmp_path, "killed", budget=14, evaluator=ToyEvaluator(space, interrupt_at=9))
    ledger = tmp_path / "killed" / "ledger.jsonl"
    assert len(Ledger(ledger).rows()) == 8
    with open(ledger, "ab") as fh:
        fh.write(b'{"seq": 8, "id": "dead')
    with pytest.warns(RuntimeWarning, match="torn last line"):
        out = _run(space, tmp_path, "killed", budget=14, resume=True)
    assert _strip(Ledger(ledger).rows()) == reference
    assert out.front["id"].tolist() == full.front["id"].tolist()
    assert out.hypervolume == pytest.approx(full.hypervolume)

    # A budget already reached: nothing to do, outputs rewritten.
    again = _run(space, tmp_path, "full", budget=14, resume=True)
    assert again.stopped == "complete" and again.evaluated == 0 and again.counts["total"] == 14


def test_run_dir_checks(space, tmp_path):
    _run(space, tmp_path, budget=3)
    with pytest.raises(RunDirError, match=r"already holds a run .*--resume.*another --out"):
        _run(space, tmp_path, budget=3)
    with pytest.raises(RunDirError, match="seed is 6, the recorded run's is 5"):
        _run(space, tmp_path, budget=4, seed=6, resume=True)
    with pytest.raises(RunDirError, match="searcher is 'random'"):
        _run(space, tmp_path, budget=4, resume=True, searcher=RandomSearch(space, OBJ, seed=5))
    with pytest.raises(RunDirError, match="searcher setting population_size"):
        _run(space, tmp_path, budget=4, resume=True,
             searcher=RegularizedEvolution(space, OBJ, seed=5, population_size=5, sample_size=2))
    ev = ToyEvaluator(space)
    ev.objectives = ("accuracy", "latency")
    with pytest.raises(RunDirError, match="objectives"):
        _run(space, tmp_path, budget=4, resume=True, evaluator=ev,
             searcher=RegularizedEvolution(space, ev.objectives, seed=5, population_size=4, sample_size=2))
    nb = SearchSpace(load_spec("darts_snn"))
    with pytest.raises(RunDirError, match="hw space is None, the recorded run's is 'systolic_template'"):
        run_search(space=nb, evaluator=ToyEvaluator(space), budget=4, out_dir=tmp_path / "run", seed=5,
                   searcher=RegularizedEvolution(nb, OBJ, seed=5, population_size=4, sample_size=2),
                   resume=True, progress=False)
    # Argument errors.
    with pytest.raises(ValueError, match="differ from the evaluator's"):
        _run(space, tmp_path, "x", searcher=RandomSearch(space, ("accuracy",), seed=5))
    used = RandomSearch(space, OBJ, seed=5)
    used.tell(used.ask()[0], Result.failed("x"))
    with pytest.raises(ValueError, match="fresh searcher"):
        _run(space, tmp_path, "y", searcher=used)
    with pytest.raises(ValueError, match="budget"):
        _run(space, tmp_path, "z", budget=0)


class Scripted(Searcher):
    """Proposes a fixed cycle of candidates (so it repeats itself) and counts its tells."""

    name = "scripted"

    def __init__(self, space, objectives, *, seed=0, pool=4, cycle=(0, 1, 0, 2, 1, 0, 3, 2)) -> None:
        super().__init__(space, objectives, seed=seed)
        rng = np.random.default_rng(seed)
        self.pool = [space.sample(rng) for _ in range(pool)]
        self.cycle = list(cycle)
        self.k = 0
        self.told: list[tuple[str, str]] = []

    def _ask(self, n):
        out = [self.pool[self.cycle[(self.k + i) % len(self.cycle)]] for i in range(n)]
        self.k += n
        return out

    def _tell(self, candidate, result):
        self.told.append((candidate.id, result.status))

    def _state(self):
        return {"k": self.k}


def test_duplicates_are_told_not_reevaluated(space, tmp_path):
    ev = ToyEvaluator(space)
    s = Scripted(space, OBJ, seed=1)
    out = _run(space, tmp_path, budget=4, evaluator=ev, searcher=s)
    ids = [c.id for c in s.pool]
    assert [c[0] for c in ev.calls] == [ids[0], ids[1], ids[2], ids[3]]  # each evaluated once
    # The repeats of 0 and 1 were told the recorded results, in the order asked.
    rows = {r["id"]: r for r in Ledger(out.out_dir).rows()}
    assert [t[0] for t in s.told] == [ids[i] for i in (0, 1, 0, 2, 1, 0, 3)]
    assert all(status == rows[i]["status"] for i, status in s.told)

    # A searcher stuck on evaluated candidates: the driver stops after 50 x budget repeats.
    ev = ToyEvaluator(space)
    stuck = Scripted(space, OBJ, seed=1, pool=2, cycle=(0, 1))
    with pytest.warns(RuntimeWarning, match="already-evaluated candidates in a row"):
        out = _run(space, tmp_path, "stuck", budget=3, evaluator=ev, searcher=stuck)
    assert len(ev.calls) == 2 and out.stopped == "repeats" and out.counts["total"] == 2
    assert len(stuck.told) == 2 + 50 * 3 + 1


def test_replay_with_duplicates_matches_uninterrupted(space, tmp_path):
    cycle = (0, 1, 0, 2, 1, 3, 0, 4, 5, 2, 6, 7)
    full = _run(space, tmp_path, "a", budget=8, searcher=Scripted(space, OBJ, seed=2, pool=8, cycle=cycle))
    _run(space, tmp_path, "b", budget=3, searcher=Scripted(space, OBJ, seed=2, pool=8, cycle=cycle))
    s = Scripted(space, OBJ, seed=2, pool=8, cycle=cycle)
    ev = ToyEvaluator(space)
    out = _run(space, tmp_path, "b", budget=8, searcher=s, evaluator=ev, resume=True)
    assert _strip(Ledger(out.out_dir).rows()) == _strip(Ledger(full.out_dir).rows())
    assert len(ev.calls) == 5 and out.replayed == 3


def test_evaluator_errors_become_failed_rows(space, tmp_path):
    class Odd:
        objectives = OBJ

        def __init__(self):
            self.n = 0

        def evaluate(self, cand, seed):
            self.n += 1
            if self.n == 1:
                return {"accuracy": 1.0}
            if self.n == 2:
                return Result("ok", {"accuracy": 0.5})
            raise ValueError("bad\nthing")

    out = _run(space, tmp_path, budget=3, evaluator=Odd(), searcher=RandomSearch(space, OBJ, seed=5))
    rows = Ledger(out.out_dir).rows()
    assert [r["reason"] for r in rows] == ["TypeError: evaluator returned dict, not a Result",
                                          "ValueError: ok result lacks objectives ['energy']",
                                          "ValueError: bad\nthing"]
    assert rows[1]["metrics"]["objectives_given"] == {"accuracy": 0.5}
    assert out.counts == {"ok": 0, "failed": 3, "infeasible": 0, "total": 3}
    assert out.front.empty and out.hypervolume == 0.0
    # No design limit on energy: its documented bound, 1 mJ.
    assert out.reference_point == {"accuracy": 0.0, "energy": 1e-3}
    csv_columns = pd.read_csv(out.out_dir / "pareto.csv").columns.tolist()
    assert csv_columns == ["id", "accuracy", "energy", "arch", "hw"]


class FakeClock:
    """tqdm's clock, advanced only by the evaluators below: elapsed times, rates and ETAs
    in the progress output are then exact."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    import tqdm
    import tqdm.std

    fake = FakeClock()
    monkeypatch.setattr(tqdm.std, "time", fake)  # each bar takes its clock from here
    monkeypatch.setattr(tqdm.tqdm, "monitor_interval", 0)  # no monitor thread redrawing on the real clock
    return fake


class TimedEvaluator(ToyEvaluator):
    """The toy evaluator, each call taking ``durations[k]`` seconds of the fake clock."""

    def __init__(self, space: SearchSpace, clock: FakeClock, durations: list[float]) -> None:
        super().__init__(space)
        self.clock, self.durations = clock, durations

    def evaluate(self, cand: Candidate, seed: int) -> Result:
        self.clock.t += self.durations[len(self.calls)]
        return super().evaluate(cand, seed)


def _status_after_each(rows: list[dict]) -> list[str]:
    """The counts and best accuracy after each ledger row, as the progress states them."""
    counts = {"ok": 0, "failed": 0, "infeasible": 0}
    best, out = None, []
    for r in rows:
        counts[r["status"]] += 1
        if r["status"] == "ok":
            best = max(best or 0.0, r["objectives"]["accuracy"])
        shown = "-" if best is None else f"{100 * best:.4g} %"
        out.append(f"ok {counts['ok']} failed {counts['failed']} infeasible {counts['infeasible']}, "
                   f"best accuracy {shown}")
    return out


def test_progress_lines(space, tmp_path, clock):
    stream = io.StringIO()
    # Three slow evaluations, then fast ones: the ETA follows the recent rate.
    ev = TimedEvaluator(space, clock, [10.0] * 3 + [1.0] * 7)
    run_search(space=space, evaluator=ev, searcher=RandomSearch(space, OBJ, seed=5), budget=10,
               out_dir=tmp_path / "p", seed=5, progress=stream)
    text = stream.getvalue()
    assert "\r" not in text  # not a terminal: plain lines
    lines = text.splitlines()
    status = _status_after_each(Ledger(tmp_path / "p").rows())
    assert lines[:2] == [f"[random] starting {tmp_path / 'p'}: budget 10, inprocess executor",
                         "[random] evaluation 1/10 starting"]
    assert len(lines) == 12  # one line per evaluation, no summary of the driver's own
    elapsed = [10, 20, 30, 31, 32, 33, 34, 35, 36, 37]
    for k, line in enumerate(lines[2:]):
        assert line.startswith(f"[random] {k + 1}/10, 00:{elapsed[k]:02d} elapsed, ~"), line
        assert line.endswith(f"/eval, {status[k]}"), (line, status[k])
    # Hand-computed: tqdm's rate is 1 / EMA(seconds per evaluation), smoothing 0.3 with bias
    # correction. After 3 x 10 s and 3 x 1 s the EMA is 3.2986 s, so 4 left take 13.19 s;
    # the plain average (33 s / 6) would say 22 s.
    assert lines[2] == f"[random] 1/10, 00:10 elapsed, ~01:30 left, 10.00s/eval, {status[0]}"
    assert lines[7] == f"[random] 6/10, 00:33 elapsed, ~00:13 left, 3.30s/eval, {status[5]}"

    # Resumed: the replayed rows count as done, not towards the rate.
    stream = io.StringIO()
    run_search(space=space, evaluator=TimedEvaluator(space, clock, [1.0, 1.0]),
               searcher=RandomSearch(space, OBJ, seed=5), budget=12, out_dir=tmp_path / "p", seed=5,
               resume=True, progress=stream)
    status = _status_after_each(Ledger(tmp_path / "p").rows())
    assert stream.getvalue().splitlines() == [
        f"[random] resuming {tmp_path / 'p'}: 10 of 12 evaluations in the ledger, inprocess executor",
        f"[random] replayed 10 ledger rows from {tmp_path / 'p' / 'ledger.jsonl'}",
        "[random] evaluation 11/12 starting",
        f"[random] 11/12, 00:01 elapsed, ~00:01 left, 1.00eval/s, {status[10]}",
        f"[random] 12/12, 00:02 elapsed, ~00:00 left, 1.00eval/s, {status[11]}"]


def test_progress_bar_on_a_terminal(space, tmp_path, clock):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    run_search(space=space, evaluator=TimedEvaluator(space, clock, [10.0] * 3),
               searcher=RandomSearch(space, OBJ, seed=5), budget=3, out_dir=tmp_path / "q", seed=5,
               progress=tty)
    status = _status_after_each(Ledger(tmp_path / "q").rows())
    # One line as the run starts, then the bar redrawn in place, closed with a newline; no
    # summary line of the driver's own.
    assert [seg.rstrip(" ") for seg in tty.getvalue().split("\r")] == [
        f"[random] starting {tmp_path / 'q'}: budget 3, inprocess executor\n",
        "[random] 0/3 |            | 00:00<?, ?eval/s, ok 0 failed 0 infeasible 0, best accuracy -, "
        "evaluation 1/3 starting",
        f"[random] 1/3 |####        | 00:10<00:20, 10.00s/eval, {status[0]}",
        f"[random] 2/3 |########    | 00:20<00:10, 10.00s/eval, {status[1]}",
        f"[random] 3/3 |############| 00:30<00:00, 10.00s/eval, {status[2]}",
        f"[random] 3/3 |############| 00:30<00:00, 10.00s/eval, {status[2]}\n",
    ]


def test_progress_bar_on_a_terminal_of_unknown_size(space, tmp_path, clock, monkeypatch):
    # A fresh pseudo-terminal reports 0 x 0 (tqdm asks stderr for its size): the bar is
    # still drawn, uncut.
    master, slave = os.openpty()
    try:
        with open(slave, "w", encoding="utf-8") as tty:
            assert tty.isatty() and os.get_terminal_size(tty.fileno()).columns == 0
            with monkeypatch.context() as mp:
                mp.setattr(sys, "stderr", tty)
                run_search(space=space, evaluator=TimedEvaluator(space, clock, [10.0] * 3),
                           searcher=RandomSearch(space, OBJ, seed=5), budget=3, out_dir=tmp_path / "u", seed=5,
                           progress=True)
        text = os.read(master, 1 << 16).decode("utf-8")
    finally:
        os.close(master)
    status = _status_after_each(Ledger(tmp_path / "u").rows())
    last = text.split("\r")[-2]  # the terminal turns the closing newline into \r\n
    assert last == f"[random] 3/3 |{'█' * 12}| 00:30<00:00, 10.00s/eval, {status[2]}"


def test_progress_shows_training_epochs(tmp_path):
    from nasco.evaluate import TrainCostEvaluator
    from nasco.evaluate._data import load_dataset

    tiny = {("macro", "cells"): 1, ("macro", "stem", "channels"): 4, ("macro", "reductions"): []}
    space = SearchSpace(load_spec("darts", overrides=tiny), load_spec("asic_template"))
    data = load_dataset("digits", seed=0, limit=200)
    ev = TrainCostEvaluator(space, data, objectives=OBJ, epochs=2, lr=0.1)
    stream = io.StringIO()
    # Each evaluation whole (no front worker), so that each one's line follows its epochs.
    run_search(space=space, evaluator=ev, searcher=RandomSearch(space, OBJ, seed=0), budget=2,
               out_dir=tmp_path / "t", seed=0, progress=stream, executor=InProcessExecutor(front_worker="off"))
    lines = stream.getvalue().splitlines()
    rows = Ledger(tmp_path / "t").rows()
    assert [r["status"] for r in rows] == ["ok", "ok"]
    epochs = [line for line in lines if ": epoch " in line]
    assert [line.split(", train loss")[0] for line in epochs] == [
        "[random] evaluation 1/2: epoch 1/2", "[random] evaluation 1/2: epoch 2/2",
        "[random] evaluation 2/2: epoch 1/2", "[random] evaluation 2/2: epoch 2/2"]
    # The last epoch's loss is the one the evaluator records.
    assert [epochs[1], epochs[3]] == [
        f"[random] evaluation {k}/2: epoch 2/2, train loss {r['metrics']['train_loss']:.4g}"
        for k, r in ((1, rows[0]), (2, rows[1]))]
    # Each evaluation's epochs come before its line.
    assert [line.split(",")[0] for line in lines if not line.startswith("[random] starting")] == [
        "[random] evaluation 1/2 starting", "[random] evaluation 1/2: epoch 1/2",
        "[random] evaluation 1/2: epoch 2/2", "[random] 1/2", "[random] evaluation 2/2: epoch 1/2",
        "[random] evaluation 2/2: epoch 2/2", "[random] 2/2"]


def test_replay_divergence_keeps_recorded_rows(space, tmp_path):
    # The first session evaluates pool members 0, 1, 2 (0 is proposed twice).
    _run(space, tmp_path, budget=3, searcher=Scripted(space, OBJ, seed=3, cycle=(0, 1, 0, 2)))
    # A changed searcher (same name and settings) proposes 0, then 2 where the ledger has 1.
    s = Scripted(space, OBJ, seed=3, cycle=(0, 2, 3, 1))
    ev = ToyEvaluator(space)
    with pytest.warns(RuntimeWarning, match="replay diverged at seq 1"):
        out = _run(space, tmp_path, budget=4, searcher=s, evaluator=ev, resume=True)
    ids = [c.id for c in s.pool]
    assert [c[0] for c in ev.calls] == [ids[3]]  # the recorded rows are not evaluated again
    assert [r["id"] for r in Ledger(out.out_dir).rows()] == [ids[0], ids[1], ids[2], ids[3]]
    assert [t[0] for t in s.told] == [ids[0], ids[2], ids[3]]
