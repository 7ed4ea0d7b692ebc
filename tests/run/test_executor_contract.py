"""The executor contract (nasco.testing.executor_contract) over every registered executor:
in-process, a process pool, Ray tasks and Ray Tune trials on a real local Ray cluster
(conftest's ``ray_env``; those cases take minutes, so each run is a handful of evaluations)."""
from __future__ import annotations

from typing import Any, Callable

import pytest

from nasco.run import EXECUTORS, Executor, make_executor
from nasco.testing.executor_contract import ExecutorContract

# Two workers: evaluations run side by side, so one that dies or hangs has company.
WORKERS = 2
ON_RAY = ("ray", "tune")


pytestmark = pytest.mark.usefixtures("cheap_plot")  # stub plots: see conftest.py


@pytest.fixture(params=sorted(EXECUTORS))
def executor_factory(request: pytest.FixtureRequest) -> Callable[..., Executor]:
    """``factory(**settings)``: a new executor of the parametrised kind, with two workers
    where it has workers (on the test cluster for Ray and Tune)."""
    name = request.param
    base: dict[str, Any] = {}
    if name != "inprocess":
        base["workers"] = WORKERS
    if name in ON_RAY:
        base["address"] = request.getfixturevalue("ray_env")
    return lambda **settings: make_executor(name, **base, **settings)


class TestExecutorContract(ExecutorContract):
    pass


def test_every_registered_executor_is_covered() -> None:
    # A new executor joins the contract through the registry; one that needs settings of
    # its own (a cluster address) must be added to executor_factory.
    assert set(EXECUTORS) == {"inprocess", "pool", "ray", "tune"}
