"""The hardware inner loop of a multi-task space: the trained task networks' Pareto front over the
partitions of a multi-accelerator's shared PE and DRAM-bandwidth budget.

A partition is one configuration of the pool per sub-accelerator (sub-accelerator i runs task
i) whose PEs and DRAM bytes/cycle, summed, are within the budget. A partition's values are the
system's, as :class:`nasco.evaluate.TrainCostEvaluator` scores a multi-task candidate: accuracy
the mean of the tasks' (each task's network at its sub-accelerator's bit widths), energy and
area summed, latency the slowest sub-accelerator's (they run side by side); the design specs
apply to these totals.

Method: every configuration of the pool is costed for each task (the single-task loop's
vectorised costing), and each task keeps the configurations that no other dominates on what the
partitions read of it: its values of the asked objectives and of the specced metrics, its PEs
and its bandwidth. The system's values are monotone in each task's, the specs in the system's
values and the budget in each sub-accelerator's usage, so a partition using a dropped
configuration is weakly dominated by an in-budget partition using one that dominates it (strict
dominance is a strict order, so a kept one does), and that partition meets every spec the first
meets with no larger violation. Hence the front over the partitions of the kept configurations
is part of the front over all partitions and holds each of its objective vectors; only
partitions whose values tie a front partition's exactly while they use a dropped configuration
are not listed. When no partition meets the specs, the front is made of the non-dominated
partitions among those of the smallest total relative violation (the sum over the exceeded
specs of excess / limit, monotone too), which the same argument makes exact. A ``power`` spec
(energy / latency) is not monotone in the tasks' values: with one, nothing is dropped.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasco.core import BUILTIN_OBJECTIVES, Objective
from nasco.dsl import AcceleratorTemplate, EnergyTable
from nasco.evaluate._hw_front import (
    HW_EXHAUSTIVE,
    HW_OBJECTIVES,
    HardwareFront,
    HwPoint,
    Precision,
    _Archive,
    _excess,
    _nondominated,
    _relative_violation,
    _table_cache,
    check_arguments,
)
from nasco.hw import Workload
from nasco.space import SUBS_KEY, MultiAcceleratorSpace

__all__ = ["HW_PAIR_BUDGET", "HW_PAIR_POPULATION", "MultiHardwareFront", "TaskNetwork",
           "multi_hardware_front"]

# NSGA-II's evaluation budget over partitions (above ``exhaustive`` in-budget partitions of the
# kept configurations) and its population. A partition is scored from the tasks' costed values
# (sums, a max and a mean; no cost model), so the budget is bounded by pymoo's own time per
# generation. Measured with experiments/hw_multi_loop.py (experiments/results/hw_multi_loop.md;
# hetero_2task, darts_snn + darts trained 1 epoch on digits, 3 candidates): each task keeps 60-136
# of asic_template's 31,904 configurations, making 1,353-3,843 in-budget pairs, so the default
# exhaustive threshold (16,000) scores them all; forced into NSGA-II, 10,000 evaluations found
# 143/143, 25/25 and 159/165 of the exhaustive front's objective vectors (hypervolume ratio
# 1.0000 to four places) in 0.9-1.3 s beyond the 2.4-2.5 s of costing; 2,000 found 98/143 and
# 102/165 (ratios 0.998, 0.9997).
HW_PAIR_BUDGET = 10_000
HW_PAIR_POPULATION = 100

log = logging.getLogger("nasco.evaluate")

_VALUES = ("accuracy", "energy", "latency", "area")
_USAGE = ("pes", "dram_bytes_per_cycle")


@dataclass(frozen=True)
class TaskNetwork:
    """One task's trained network as the loop needs it: its ``workload``, per-layer input spike
    ``rates`` and ``accuracy_of(precision)`` (as :func:`nasco.evaluate.hardware_front` takes it:
    a function of the (weight, activation, membrane) bits, a float, or None)."""

    workload: Workload
    rates: Mapping[str, float] | None = None
    accuracy_of: Callable[[Precision], float] | float | None = None


@dataclass(frozen=True)
class MultiHardwareFront(HardwareFront):
    """:class:`HardwareFront` of a multi-accelerator: each point's ``hw`` is a partition
    (``{"sub_accelerators": [...]}``), ``costed`` the distinct in-budget partitions scored; when
    none is feasible, the points are the non-dominated ones among the partitions of the smallest
    total relative violation. Beside it:
    ``configurations`` (configurations of the pool costed per task), ``kept`` (those each task
    keeps), ``pairs`` (the in-budget partitions of the kept configurations, counted exactly) and
    ``tasks`` (per point, each task's ``accuracy``, ``energy``, ``latency``, ``area``, ``pes``
    and ``dram_bytes_per_cycle``); ``n_gen``: the generations NSGA-II ran (0 in exhaustive mode;
    ``generations`` stays empty)."""

    configurations: tuple[int, ...] = ()
    kept: tuple[int, ...] = ()
    pairs: int = 0
    tasks: tuple[tuple[dict[str, float], ...], ...] = ()
    n_gen: int = 0


@dataclass(frozen=True)
class _Kept:
    """A task's kept configurations (ordered by PEs, bandwidth, energy, so that near indices
    are alike for NSGA-II) and their values as arrays: :data:`_VALUES` (accuracy when known)
    and :data:`_USAGE`."""

    configs: tuple[dict[str, Any], ...]
    values: dict[str, np.ndarray]


def _task_table(archive: _Archive, space: MultiAcceleratorSpace) -> dict[str, np.ndarray]:
    """Every costed configuration's values and usage, as arrays over the archive's rows."""
    table = {k: np.asarray(v, dtype=np.float64) for k, v in archive.values.items() if v}
    usage = np.array([space.usage(c) for c in archive.configs], dtype=np.float64).reshape(-1, 2)
    table["pes"], table["dram_bytes_per_cycle"] = usage[:, 0], usage[:, 1]
    return table


def _keep(archive: _Archive, table: dict[str, np.ndarray], keys: Sequence[str] | None,
          proposed_row: int | None) -> tuple[_Kept, int | None]:
    """The rows no other dominates on ``keys`` (accuracy maximised, the rest minimised; None:
    every row) and the proposed configuration's row; and the proposed row's index among them."""
    if keys is None:
        rows = np.arange(len(archive.configs))
    else:
        rows = _nondominated(np.column_stack([-table[k] if k == "accuracy" else table[k] for k in keys]))
    if proposed_row is not None and proposed_row not in set(rows.tolist()):
        rows = np.append(rows, proposed_row)
    rows = rows[np.lexsort((table["energy"][rows], table["dram_bytes_per_cycle"][rows], table["pes"][rows]))]
    kept = _Kept(tuple(archive.configs[r] for r in rows.tolist()), {k: v[rows] for k, v in table.items()})
    return kept, (None if proposed_row is None else int(np.flatnonzero(rows == proposed_row)[0]))


def _count_in_budget(kept: Sequence[_Kept], space: MultiAcceleratorSpace) -> int:
    """The in-budget partitions of the kept configurations, counted by their usage: each task's
    configurations grouped by (PEs, bytes/cycle), the groups combined task by task."""
    totals: Counter = Counter({(0.0, 0.0): 1})
    for k in kept:
        groups = Counter(zip(k.values["pes"].tolist(), k.values["dram_bytes_per_cycle"].tolist()))
        nxt: Counter = Counter()
        for (p, b), n in totals.items():
            for (p2, b2), n2 in groups.items():
                if space.within(p + p2, b + b2):
                    nxt[(p + p2, round(b + b2, 9))] += n * n2
        totals = nxt
    return int(sum(totals.values()))


def _all_in_budget(kept: Sequence[_Kept], space: MultiAcceleratorSpace) -> np.ndarray:
    """Every in-budget partition of the kept configurations, as rows of indices (one column per
    task); a prefix is extended only while it leaves the later tasks room for their smallest."""
    if any(len(k.configs) == 0 for k in kept):  # a task whose workload no configuration maps
        return np.zeros((0, len(kept)), dtype=np.int64)
    least_p = [float(k.values["pes"].min()) for k in kept] + [0.0]
    least_b = [float(k.values["dram_bytes_per_cycle"].min()) for k in kept] + [0.0]
    idx = np.zeros((1, 0), dtype=np.int64)
    pes, bw = np.zeros(1), np.zeros(1)
    for i, k in enumerate(kept):
        rest_p, rest_b = sum(least_p[i + 1:]), sum(least_b[i + 1:])
        p = pes[:, None] + k.values["pes"][None, :]
        b = bw[:, None] + k.values["dram_bytes_per_cycle"][None, :]
        ok = (p + rest_p <= space.max_pes) & (b + rest_b <= space.max_bw + 1e-9)
        r, c = np.nonzero(ok)
        idx = np.column_stack([idx[r], c])
        pes, bw = p[r, c], b[r, c]
    return idx


def _system(kept: Sequence[_Kept], idx: np.ndarray) -> dict[str, np.ndarray]:
    """The system's values of the partitions ``idx``: accuracy the tasks' mean (when every task
    has one), energy, area and usage summed, latency the max."""
    cols = [{k: v[idx[:, i]] for k, v in t.values.items()} for i, t in enumerate(kept)]
    out = {k: np.sum([c[k] for c in cols], axis=0) for k in ("energy", "area") + _USAGE}
    out["latency"] = np.max([c["latency"] for c in cols], axis=0)
    if all("accuracy" in c for c in cols):
        out["accuracy"] = np.mean([c["accuracy"] for c in cols], axis=0)
    return out


def _violations(system: Mapping[str, np.ndarray], limits: Mapping[str, float]
                ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each spec's excess (value - limit, over arrays) and each partition's total relative
    violation (the sum over its exceeded specs of excess / limit)."""
    excess = _excess({k: system[k] for k in ("energy", "latency", "area")}, limits)
    return excess, _relative_violation(excess, limits, len(system["energy"]))


def _minimisation(system: Mapping[str, np.ndarray], objectives: Sequence[Objective]) -> np.ndarray:
    n = len(system["energy"])
    cols = [system[o.name] * (-1.0 if o.maximise else 1.0) for o in objectives]
    return np.column_stack(cols) if cols else np.zeros((n, 0))


def _nsga2(kept: Sequence[_Kept], space: MultiAcceleratorSpace, limits: Mapping[str, float],
           objectives: Sequence[Objective], proposed: np.ndarray | None, budget: int, pop_size: int,
           seed: int) -> tuple[np.ndarray, int]:
    """NSGA-II (pymoo) over partitions as index vectors into the kept sets, the budget and the
    specs (relative excess) its constraints, ``proposed`` in its initial population: the
    distinct partitions it scored (over-budget ones included) and its generations."""
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.problem import Problem
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.repair.rounding import RoundingRepair
    from pymoo.optimize import minimize

    upper = np.array([len(k.configs) - 1 for k in kept], dtype=np.int64)
    scored: list[np.ndarray] = []
    specs = list(limits)

    class Partitions(Problem):
        def __init__(self) -> None:
            super().__init__(n_var=len(kept), n_obj=max(len(objectives), 1), n_ieq_constr=2 + len(specs),
                             xl=0, xu=upper.astype(np.float64), vtype=int)

        def _evaluate(self, X, out, *args, **kwargs):
            idx = np.clip(np.rint(X), 0, upper).astype(np.int64)
            scored.append(idx)
            system = _system(kept, idx)
            excess, _ = _violations(system, limits)
            F = _minimisation(system, objectives)
            out["F"] = F if F.shape[1] else np.zeros((len(idx), 1))
            G = [(system["pes"] - space.max_pes) / space.max_pes,
                 (system["dram_bytes_per_cycle"] - space.max_bw - 1e-9) / space.max_bw]
            G += [excess[k] / (limits[k] if limits[k] > 0 else 1.0) for k in specs]
            out["G"] = np.column_stack(G)

    X0 = _initial(kept, space, upper, proposed, pop_size, np.random.default_rng(seed))
    algorithm = NSGA2(pop_size=pop_size, sampling=X0.astype(np.float64),
                      crossover=SBX(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair()),
                      mutation=PM(eta=3.0, vtype=float, repair=RoundingRepair()), eliminate_duplicates=True)
    res = minimize(Partitions(), algorithm, ("n_evals", budget), seed=int(seed), verbose=False)
    return np.unique(np.concatenate(scored), axis=0), int(res.algorithm.n_gen)


def _initial(kept: Sequence[_Kept], space: MultiAcceleratorSpace, upper: np.ndarray,
             proposed: np.ndarray | None, pop_size: int, rng: np.random.Generator) -> np.ndarray:
    """NSGA-II's first population: ``proposed``, then uniform draws, in-budget draws first."""
    X = rng.integers(0, upper + 1, size=(20 * pop_size, len(upper)))
    system = _system(kept, X)
    inside = (system["pes"] <= space.max_pes) & (system["dram_bytes_per_cycle"] <= space.max_bw + 1e-9)
    X = np.concatenate([X[inside], X[~inside]])[:pop_size]
    if proposed is not None:
        X[0] = proposed
    return X


def _front_rows(system: Mapping[str, np.ndarray], excess: Mapping[str, np.ndarray], relative: np.ndarray,
                objectives: Sequence[Objective]) -> tuple[np.ndarray, bool]:
    """The front's partitions among ``system``'s: the feasible non-dominated ones, else (none
    feasible) the non-dominated ones among those of the smallest total relative violation; and
    whether any is feasible."""
    n = len(relative)
    ok = np.ones(n, dtype=bool)
    for e in excess.values():
        ok &= e <= 0
    if ok.any():
        rows = np.flatnonzero(ok)
        return rows[_nondominated(_minimisation(system, objectives)[rows])], True
    if n == 0:
        return np.zeros(0, dtype=np.int64), False
    least = np.flatnonzero(relative == relative.min())
    return least[_nondominated(_minimisation(system, objectives)[least])], False


def _cost_tasks(tasks: Sequence[TaskNetwork], space: MultiAcceleratorSpace, keys: Sequence[str] | None,
                proposed: dict[str, Any] | None, table_of: Callable[[AcceleratorTemplate], EnergyTable]
                ) -> tuple[list[_Archive], list[_Kept], np.ndarray | None]:
    """Each task's costing of the whole pool, its kept configurations, and the proposed
    partition's index in each kept set (None without one)."""
    archives, kept, where = [], [], []
    for i, task in enumerate(tasks):
        archive = _Archive(space.pool, task.workload, task.rates, None, task.accuracy_of, table_of)
        archive.add(space.pool.configurations())
        row = None
        if proposed is not None:
            row = archive.add([proposed[SUBS_KEY][i]])[0]
            if row < 0:
                raise ValueError(f"multi_hardware_front: sub-accelerator {i} of the proposed partition, "
                                 f"{proposed[SUBS_KEY][i]}, cannot map task {i}'s workload "
                                 f"{task.workload.name!r}")
        if archive.unmappable:
            log.warning("%s: %d configurations cannot map task %d's workload %r (left out of the front)",
                        space.name, archive.unmappable, i, task.workload.name)
        k, pos = _keep(archive, _task_table(archive, space), keys, row)
        archives.append(archive)
        kept.append(k)
        where.append(pos)
    return archives, kept, (np.array(where, dtype=np.int64) if proposed is not None else None)


def _reduction_keys(objectives: Sequence[str], limits: Mapping[str, float]) -> list[str] | None:
    """What the partitions read of a task's configuration: the asked objectives' values, the
    specced metrics' and the usage; None (keep every configuration) under a ``power`` spec."""
    if "power" in limits:
        return None
    return [k for k in _VALUES if k in objectives or k in limits] + list(_USAGE)


def multi_hardware_front(tasks: Sequence[TaskNetwork], hw_space: MultiAcceleratorSpace, *,
                         objectives: Sequence[str] = HW_OBJECTIVES, exhaustive: int = HW_EXHAUSTIVE,
                         seed: int = 0, proposed: Mapping[str, Any] | None = None,
                         budget: int = HW_PAIR_BUDGET, pop_size: int = HW_PAIR_POPULATION,
                         table_of: Callable[[AcceleratorTemplate], EnergyTable] | None = None
                         ) -> MultiHardwareFront:
    """The hardware Pareto front of one network per task (``tasks[i]`` runs on sub-accelerator
    i) over the in-budget partitions of ``hw_space`` (see the module's docstring).

    ``objectives``: names among :data:`~nasco.evaluate.HW_OBJECTIVES`, in their directions in
    :data:`nasco.core.BUILTIN_OBJECTIVES`. Each task's configurations are costed as
    :func:`nasco.evaluate.hardware_front` costs them (equal to ``CostModel.cost`` totals), its
    ``accuracy_of`` asked once per distinct precision. When the kept configurations make at
    most ``exhaustive`` in-budget partitions, every one is scored; otherwise NSGA-II (pymoo;
    seeded by ``seed``; ``pop_size``; ``proposed`` in its first population) runs generations
    until it has made ``budget`` evaluations (the last generation may pass it by less than
    ``pop_size``), and the front is taken over the in-budget partitions it scored. Every point
    is within the budget (:meth:`MultiAcceleratorSpace.within`); its violations are the system
    values' excess over ``hw_space.limits()``. ``proposed`` (completed with the space's defaults) is
    always scored and returned as :attr:`HardwareFront.proposed`.
    Raises TypeError for a space that is not a multi-accelerator; ValueError for a number of
    tasks other than its sub-accelerators, an unknown objective, an accuracy objective with a
    task lacking ``accuracy_of``, a ``proposed`` that is not an in-budget partition, or one
    whose sub-accelerator cannot map its task.
    """
    start = time.perf_counter()
    if not isinstance(hw_space, MultiAcceleratorSpace):
        raise TypeError(f"multi_hardware_front: expected a multi-accelerator space, got "
                        f"{type(hw_space).__name__}")
    if len(tasks) != hw_space.subs:
        raise ValueError(f"multi_hardware_front: {len(tasks)} task networks for {hw_space.subs} "
                         f"sub-accelerators of '{hw_space.name}'; give one per sub-accelerator")
    check_arguments("multi_hardware_front", objectives, all(t.accuracy_of is not None for t in tasks),
                    exhaustive, budget, pop_size)
    objs = tuple(BUILTIN_OBJECTIVES[o] for o in objectives)
    prop = None
    if proposed is not None:
        prop = hw_space.complete(dict(proposed))
        hw_space.check(prop)
    limits = hw_space.limits()
    archives, kept, prop_idx = _cost_tasks(tasks, hw_space, _reduction_keys(objectives, limits), prop,
                                           _table_cache(table_of))
    pairs = _count_in_budget(kept, hw_space)
    if pairs <= exhaustive:
        mode, idx, generations = "exhaustive", _all_in_budget(kept, hw_space), 0
    else:
        mode = "nsga2"
        idx, generations = _nsga2(kept, hw_space, limits, objs, prop_idx, budget, pop_size, seed)
    return _assemble(kept, archives, idx, hw_space, limits, objs, prop_idx,
                     mode=mode, pairs=pairs, generations=generations, start=start)


def _assemble(kept: Sequence[_Kept], archives: Sequence[_Archive], idx: np.ndarray,
              space: MultiAcceleratorSpace, limits: Mapping[str, float], objs: Sequence[Objective],
              prop_idx: np.ndarray | None, *,
              mode: str, pairs: int, generations: int, start: float) -> MultiHardwareFront:
    """The front of the in-budget partitions among ``idx`` (index rows into ``kept``)."""
    system = _system(kept, idx)
    inside = (system["pes"] <= space.max_pes) & (system["dram_bytes_per_cycle"] <= space.max_bw + 1e-9)
    idx, system = idx[inside], {k: v[inside] for k, v in system.items()}
    excess, relative = _violations(system, limits)
    rows, feasible = _front_rows(system, excess, relative, objs)

    def point(r: int) -> HwPoint:
        values = {k: float(system[k][r]) for k in _VALUES if k in system}
        return HwPoint(hw={SUBS_KEY: [dict(k.configs[idx[r, i]]) for i, k in enumerate(kept)]},
                       objectives={o.name: values[o.name] for o in objs}, values=values,
                       violations={k: float(e[r]) for k, e in excess.items() if e[r] > 0})

    def per_task(r: int) -> tuple[dict[str, float], ...]:
        return tuple({k: float(v[idx[r, i]]) for k, v in t.values.items()} for i, t in enumerate(kept))

    prop_point = None
    if prop_idx is not None:
        prop_point = point(int(np.flatnonzero((idx == prop_idx).all(axis=1))[0]))
    return MultiHardwareFront(
        objectives=tuple(objs), points=tuple(point(r) for r in rows.tolist()), feasible=feasible,
        proposed=prop_point, mode=mode, costed=len(idx),
        precisions=len(set().union(*(a.precision_set for a in archives))),
        unmappable=sum(a.unmappable for a in archives), seconds=time.perf_counter() - start,
        configurations=tuple(len(a.configs) + a.unmappable for a in archives),
        kept=tuple(len(k.configs) for k in kept), pairs=pairs,
        tasks=tuple(per_task(r) for r in rows.tolist()), n_gen=generations)
