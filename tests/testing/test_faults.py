"""The injected faults of nasco.testing.faults: a MemoryError from a real address-space limit
(in process and in a pool worker, which survives it), and the former fault name."""
from __future__ import annotations

import resource

import numpy as np
import pytest

from nasco.run import Ledger, PoolExecutor, run_search
from nasco.search import make_searcher
from nasco.testing import default_space
from nasco.testing.faults import FAULTS, FaultyEvaluator

OBJ = ("accuracy", "energy")


@pytest.fixture(scope="module")
def space():
    return default_space()


def _cands(space, n):
    rng = np.random.default_rng(0)
    return [space.sample(rng) for _ in range(n)]


def test_memory_limit_is_a_refused_mapping_and_the_limit_is_restored(space):
    a, b = _cands(space, 2)
    ev = FaultyEvaluator(space, OBJ, faults={a.id: "memory_limit"})
    before = resource.getrlimit(resource.RLIMIT_AS)
    with pytest.raises(MemoryError, match="Unable to allocate 1.00 GiB"):
        ev.evaluate(a, seed=0)
    assert resource.getrlimit(resource.RLIMIT_AS) == before
    assert ev.evaluate(b, seed=0).status == "ok"


def test_memory_limit_fails_one_row_and_the_pool_worker_lives_on(space, tmp_path):
    """One pool worker: the faulty candidate's row fails as out of memory, with no retry, and
    the same worker process evaluates the rest."""
    s = make_searcher("random", space, OBJ, 3)
    base = run_search(space=space, evaluator=FaultyEvaluator(space, OBJ), searcher=s, budget=4,
                      out_dir=tmp_path / "base", seed=3, progress=False)
    base_rows = {r["id"]: r for r in Ledger(tmp_path / "base" / "ledger.jsonl").rows()}
    ids = sorted(base_rows, key=lambda i: base_rows[i]["seq"])
    ok = [i for i in ids if base_rows[i]["status"] == "ok"]
    assert base.evaluated == 4 and len(ids) == 4 and ok
    target = ok[0]  # a row that succeeds without the fault
    ev = FaultyEvaluator(space, OBJ, faults={target: "memory_limit"}, log_dir=tmp_path)
    run_search(space=space, evaluator=ev, searcher=make_searcher("random", space, OBJ, 3), budget=4,
               out_dir=tmp_path / "pool", seed=3, progress=False, executor=PoolExecutor(1))
    rows = {r["id"]: r for r in Ledger(tmp_path / "pool" / "ledger.jsonl").rows()}
    assert rows[target]["status"] == "failed"
    assert rows[target]["reason"].startswith("out of memory: MemoryError: Unable to allocate")
    for i in (i for i in ids if i != target):  # the other rows as without the fault (the toy rejects some)
        assert (rows[i]["status"], rows[i]["objectives"]) == \
            (base_rows[i]["status"], base_rows[i]["objectives"])
    log = (tmp_path / "evaluations.log").read_text().split()
    assert sorted(log[::2]) == sorted(ids) and len(set(log[1::2])) == 1  # once each, one worker pid


def test_former_fault_name_oom_is_memory_error(space):
    (a,) = _cands(space, 1)
    assert "oom" not in FAULTS
    with pytest.warns(DeprecationWarning, match="'oom' is now 'memory_error'"):
        ev = FaultyEvaluator(space, OBJ, faults={a.id: "oom"})
    assert ev.faults == {a.id: "memory_error"}
    with pytest.raises(MemoryError):
        ev.evaluate(a, seed=0)
    with pytest.raises(ValueError, match="unknown fault kinds"):
        FaultyEvaluator(space, OBJ, faults={a.id: "out_of_memory"})
