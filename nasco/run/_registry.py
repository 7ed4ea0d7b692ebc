"""The executors by name: what ``--executor`` and :func:`make_executor` pick from."""
from __future__ import annotations

from typing import Any

from nasco.core import Registry
from nasco.run._base import Executor
from nasco.run._executors import InProcessExecutor, PoolExecutor
from nasco.run._ray import RayExecutor
from nasco.run._tune import TuneExecutor

__all__ = ["EXECUTORS", "make_executor"]

EXECUTORS: Registry[type[Executor]] = Registry("executor")
for _cls in (InProcessExecutor, PoolExecutor, RayExecutor, TuneExecutor):
    EXECUTORS.register(_cls.name, _cls)
del _cls


def make_executor(name: str, **kw: Any) -> Executor:
    """An executor by name: ``inprocess`` (``trial_timeout``, ``front_worker``; other settings
    do not apply to it), ``pool`` (``workers``, ``trial_timeout``, ``max_retries``, ``threads``), ``ray`` or
    ``tune`` (see :class:`~nasco.run._ray.RayExecutor` and :class:`~nasco.run._tune.TuneExecutor`
    for their keywords). An unknown name raises ``ValueError`` listing the known ones."""
    return EXECUTORS.get(name).from_options(**kw)
