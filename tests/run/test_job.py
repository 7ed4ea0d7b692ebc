"""The executors' one retry policy, the executor base class and the executor registry (no
workers are started here; tests/run/test_ray_executor.py kills real ones)."""
from __future__ import annotations

import pytest

from nasco.run import EXECUTORS, Executor, InProcessExecutor, PoolExecutor, RetryPolicy, make_executor
from nasco.run._job import Job
from nasco.run._ray import RayExecutor
from nasco.run._tune import TuneExecutor
from nasco.space import Candidate


def job(seq: int = 3) -> Job:
    return Job(seq, Candidate.make({"x": seq}, {}), seed=11)


def test_retry_policy_counts_attempts_and_records_every_death():
    policy, j = RetryPolicy(max_retries=1), job()
    assert policy.attempts == 2 and j.attempts == 1
    assert policy.record(j, "worker died: A") is True  # one retry left
    assert j.attempts == 2 and j.retries == ["worker died: A"]
    assert policy.record(j, "worker died: B") is False  # both attempts used
    row = policy.failed_row(j)
    assert row["status"] == "failed" and row["attempts"] == 2
    assert row["reason"] == "worker died: B (worker died on all 2 attempts)"
    assert row["retries"] == ["worker died: A", "worker died: B"]
    assert row["seq"] == 3 and row["id"] == j.cand.id and row["seed"] == 11 and row["worker"] is None
    assert policy.failed_row(j, died=False)["reason"] == "worker died: B (failed on all 2 attempts)"


def test_no_retries_fails_on_the_first_death():
    policy, j = RetryPolicy(max_retries=0), job()
    assert policy.record(j, "out of memory") is False
    assert policy.failed_row(j)["reason"] == "out of memory (worker died on all 1 attempts)"


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_retry_policy_rejects_bad_counts(bad):
    with pytest.raises(ValueError, match="max_retries must be an integer >= 0"):
        RetryPolicy(bad)


def test_failed_row_needs_a_recorded_attempt():
    with pytest.raises(ValueError, match="no attempt recorded"):
        RetryPolicy().failed_row(job())


def test_pool_and_ray_follow_the_policy():
    """A death past the last retry becomes the policy's failed row (no worker is started)."""
    for ex in (PoolExecutor(1, max_retries=0), RayExecutor(max_retries=0)):
        j = job(5)
        ex._retry(j, "worker died: X")
        assert len(ex._done) == 1
        assert ex._done[0]["reason"] == "worker died: X (worker died on all 1 attempts)"
        assert ex._done[0]["attempts"] == 1 and ex.describe()["max_retries"] == 0


def test_registry_and_make_executor():
    assert EXECUTORS.names() == ["inprocess", "pool", "ray", "tune"]
    assert [EXECUTORS.get(n) for n in EXECUTORS] == [InProcessExecutor, PoolExecutor, RayExecutor,
                                                      TuneExecutor]
    # The CLI collects the same settings for every executor; in-process takes the timeout only.
    ex = make_executor("inprocess", trial_timeout=3.0, workers=None, max_retries=2, threads=1)
    assert isinstance(ex, InProcessExecutor) and ex.trial_timeout == 3.0 and ex.max_retries == 0
    pool = make_executor("pool", workers=2, trial_timeout=None, max_retries=4, threads=1)
    assert pool.describe() == {"executor": "pool", "workers": 2, "trial_timeout": None, "max_retries": 4,
                               "threads": 1}
    with pytest.raises(ValueError, match=r"unknown executor 'poll'; known: inprocess, pool, ray, tune; "
                                         r"did you mean 'pool'\?"):
        make_executor("poll")


def test_hooks_are_declared_on_the_base_class():
    assert (Executor.slots, Executor.batch, Executor.drives) == (1, 1, False)
    assert [c.drives for c in (InProcessExecutor, PoolExecutor, RayExecutor, TuneExecutor)] == [
        False, False, False, True]
    assert RayExecutor(batch=4).batch == 4 and PoolExecutor(3).slots == 3
    with pytest.raises(NotImplementedError, match="inprocess executor is driven by submit"):
        InProcessExecutor().drive(None, None, None)
    with pytest.raises(NotImplementedError, match="tune executor drives its own loop"):
        TuneExecutor().submit(job())
