"""The hardware inner loop: one trained architecture's Pareto front over an accelerator space.

A trained network (its workload and per-layer spike rates) meets every configuration of a
template or template set: all of them when the space is small (exhaustive mode), else a
fixed budget of them chosen by pymoo's NSGA-II over the space's choice indices. Each
configuration is costed by :func:`nasco.hw.cost_configurations` (the totals of
``CostModel(resolve(template, config), table).cost(workload, rates)``, bit for bit, costed many
configurations at a time), checked against the space's design specs, and scored on the
asked objectives; the network's accuracy at a configuration's bit widths comes from
``accuracy_of``, asked once per distinct precision.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nasco.core import BUILTIN_OBJECTIVES, Objective
from nasco.dsl import TEMPLATE_KEY, AcceleratorTemplate, EnergyTable, load_energy_table
from nasco.hw import Workload, cost_configurations
from nasco.space import TemplateSetSpace, TemplateSpace

__all__ = ["HW_BUDGET", "HW_EXHAUSTIVE", "HW_OBJECTIVES", "HW_POPULATION", "HardwareFront", "HwPoint",
           "Precision", "hardware_front"]

log = logging.getLogger("nasco.evaluate")

# Spaces of at most this many configurations are costed exhaustively. Measured with
# experiments/hw_inner_loop.py --mode speed (experiments/results/hw_inner_loop.md): the loop
# costs 13.6-25 thousand configurations per second of a darts_snn network for digits (68-94
# layers) on this project's shared 2-core machine (wall clock, one thread; 28-43 thousand per
# CPU second), 11-25x faster than CostModel.cost per configuration. Each asic_template member
# alone is costed exhaustively in about a second at most (the largest, input_stationary's 15,552
# configurations: 0.8-1.1 s); the whole set's 31,904 (1.8-2.3 s) goes to NSGA-II.
HW_EXHAUSTIVE = 16_000
# NSGA-II's evaluation budget (distinct configurations costed) and population above
# HW_EXHAUSTIVE. Measured with experiments/hw_inner_loop.py --mode nsga2 on asic_template's
# 31,904 configurations against its exhaustive front (experiments/results/hw_front_exactness.md;
# 5 architectures x 3 seeds): budget 1000 reaches a hypervolume ratio of 0.998 on average (0.981
# at worst) in 0.7-1.4 s, about the exhaustive loop's second; 500 gives 0.946, 2000 gives 0.9999
# in 1.8-3.4 s.
HW_BUDGET = 1000
HW_POPULATION = 50

# The objectives a hardware front scores, and the CostModel total each cost objective reads.
HW_OBJECTIVES = ("accuracy", "energy", "latency", "area")
_TOTALS = {"energy": "energy_j", "latency": "latency_s", "area": "area_mm2"}
_BITS = ("bits.weight", "bits.activation", "bits.membrane")

Precision = tuple[int, int, int]  # (weight, activation, membrane) bits of a resolved template


@dataclass(frozen=True)
class HwPoint:
    """One costed configuration: its genotype, the objectives asked (their catalogue
    units), every scored value (``energy``, ``latency``, ``area``, and ``accuracy`` when
    known) and the design specs it exceeds (metric -> amount over the limit)."""

    hw: dict[str, Any]
    objectives: dict[str, float]
    values: dict[str, float]
    violations: dict[str, float]


@dataclass(frozen=True)
class HardwareFront:
    """The result of :func:`hardware_front`.

    ``points``: the feasible configurations no other feasible costed configuration
    dominates on ``objectives`` (ties all kept); when none is feasible (``feasible`` False),
    the configurations with the smallest total relative violation (sum over the exceeded
    specs of excess / limit). ``proposed``: the proposed configuration's own point (None
    when none was given). ``costed``: distinct configurations costed; ``precisions``:
    distinct (weight, activation, membrane) bit widths among them; ``unmappable``:
    configurations whose dataflow cannot map a layer of the workload (left out, logged).
    ``generations``: NSGA-II mode only, the configurations each generation costed, the
    initial population first.
    """

    objectives: tuple[Objective, ...]
    points: tuple[HwPoint, ...]
    feasible: bool
    proposed: HwPoint | None
    mode: str  # "exhaustive" or "nsga2"
    costed: int
    precisions: int
    unmappable: int
    seconds: float
    generations: tuple[tuple[dict[str, Any], ...], ...] = field(default=(), repr=False)

    def to_frame(self):
        """A pandas DataFrame, one row per configuration of the front: its choices as
        ``hw.<key>`` columns (empty where a member lacks the choice), the scored values,
        ``violation.<spec>`` columns, ``feasible``, and ``proposed`` (the row is the
        proposed configuration)."""
        import pandas as pd

        rows = []
        for p in self.points:
            row: dict[str, Any] = {f"hw.{k}": v for k, v in p.hw.items()}
            row.update(p.values)
            row.update({f"violation.{k}": v for k, v in p.violations.items()})
            row["feasible"] = not p.violations
            row["proposed"] = self.proposed is not None and p.hw == self.proposed.hw
            rows.append(row)
        return pd.DataFrame(rows)


def _table_cache(table_of: Callable[[AcceleratorTemplate], EnergyTable] | None):
    if table_of is not None:
        return table_of
    tables: dict[tuple, EnergyTable] = {}

    def load(template: AcceleratorTemplate) -> EnergyTable:
        key = (getattr(template, "source", None), template.technology)
        if key not in tables:
            tables[key] = load_energy_table(template)
        return tables[key]

    return load


class _Archive:
    """Every configuration costed so far, its values and violations, with the costing itself:
    configurations grouped by member, each group one call of cost_configurations."""

    def __init__(self, space: TemplateSpace | TemplateSetSpace, workload: Workload,
                 rates: Mapping[str, float] | None, default_rate: float | None, accuracy_of: Any,
                 table_of: Callable[[AcceleratorTemplate], EnergyTable]) -> None:
        self.space, self.workload, self.rates, self.default_rate = space, workload, rates, default_rate
        self.accuracy_of, self.table_of = accuracy_of, table_of
        self.is_set = isinstance(space, TemplateSetSpace)
        self.index: dict[tuple, int] = {}
        self.configs: list[dict[str, Any]] = []
        self.values: dict[str, list[float]] = {k: [] for k in ("energy", "latency", "area", "accuracy")}
        self.excess: list[dict[str, float]] = []
        self.relative: list[float] = []
        self.accuracy: dict[Precision, float] = {}
        self.unmappable = 0
        self.unmapped: set[tuple] = set()
        self.precision_set: set[Precision] = set()

    @staticmethod
    def key(hw: Mapping[str, Any]) -> tuple:
        return tuple(hw.items())

    def _precisions(self, member: TemplateSpace, values: Sequence[Mapping[str, Any]]) -> list[Precision]:
        """The (weight, activation, membrane) bits of each configuration of ``member``."""
        bits = member.spec.bits
        fixed = {"bits.weight": bits.weight, "bits.activation": bits.activation,
                 "bits.membrane": bits.membrane}
        cols = [[int(v[k]) for v in values] if k in values[0] else [int(fixed[k])] * len(values)
                for k in _BITS]
        return list(zip(*cols))

    def _accuracy(self, precision: Precision) -> float:
        if isinstance(self.accuracy_of, (int, float)):
            return float(self.accuracy_of)
        if precision not in self.accuracy:
            self.accuracy[precision] = float(self.accuracy_of(precision))
        return self.accuracy[precision]

    def add(self, configs: Iterable[Mapping[str, Any]]) -> list[int]:
        """Cost the configurations not costed yet; the archive row of each of ``configs``
        (-1 for one the dataflow cannot map)."""
        keys: list[tuple] = []
        todo: dict[str, dict[tuple, dict[str, Any]]] = {}
        for hw in configs:
            k = self.key(hw)
            keys.append(k)
            if k not in self.index and k not in self.unmapped:
                name = hw[TEMPLATE_KEY] if self.is_set else self.space.name
                todo.setdefault(name, {})[k] = dict(hw)
        for name, group in todo.items():
            self._cost(self.space.members[name] if self.is_set else self.space, group)
        return [self.index.get(k, -1) for k in keys]

    def _cost(self, member: TemplateSpace, group: dict[tuple, dict[str, Any]]) -> None:
        """Cost one member's new configurations (one call of cost_configurations) and file them."""
        hws = list(group.values())
        values = [{k: v for k, v in hw.items() if k != TEMPLATE_KEY} for hw in hws]
        t = member.spec
        out = cost_configurations(t, self.table_of(t), values, self.workload, self.rates, self.default_rate,
                                  unmappable="skip")
        limits = self.space.limits(hws[0])
        totals = {"energy": out["energy_j"], "latency": out["latency_s"], "area": out["area_mm2"]}
        excess = _excess(totals, limits)
        # a configuration whose timestep loop order cannot tile a layer (its excess is already
        # relative: need / have - 1) is infeasible like one over a design spec
        relative = _relative_violation(excess, limits, len(hws)) + out["tiling_excess"]
        excess["tiling"] = out["tiling_excess"]
        names = list(excess)
        E = np.stack([excess[k] for k in names], axis=1) if names else np.zeros((len(hws), 0))
        over = E > 0
        keys = list(group)
        mapped = out["mapped"]
        for j in np.flatnonzero(~mapped).tolist():
            self.unmappable += 1
            self.unmapped.add(keys[j])
        ok = np.flatnonzero(mapped)
        start = len(self.configs)
        self.configs.extend(hws[j] for j in ok.tolist())
        for k, v in totals.items():
            self.values[k].extend(v[ok].tolist())
        precisions = self._precisions(member, values) if values else []
        self.precision_set.update(precisions[j] for j in ok.tolist())
        if self.accuracy_of is not None:
            self.values["accuracy"].extend(self._accuracy(precisions[j]) for j in ok.tolist())
        E_ok, over_ok = E[ok].tolist(), over[ok]
        self.excess.extend({names[i]: E_ok[r][i] for i in np.flatnonzero(over_ok[r]).tolist()}
                           if over_ok[r].any() else {} for r in range(len(ok)))
        self.relative.extend(relative[ok].tolist())
        self.index.update((keys[j], start + r) for r, j in enumerate(ok.tolist()))

    def point(self, row: int, objectives: Sequence[Objective]) -> HwPoint:
        values = {k: v[row] for k, v in self.values.items() if v}
        return HwPoint(hw=dict(self.configs[row]), objectives={o.name: values[o.name] for o in objectives},
                       values=values, violations=dict(self.excess[row]))

    def minimisation(self, rows: Sequence[int], objectives: Sequence[Objective]) -> np.ndarray:
        cols = [np.asarray(self.values[o.name], dtype=np.float64)[list(rows)] * (-1.0 if o.maximise else 1.0)
                for o in objectives]
        return np.stack(cols, axis=1) if cols else np.zeros((len(rows), 0))


def _excess(values: Mapping[str, np.ndarray], limits: Mapping[str, float]) -> dict[str, np.ndarray]:
    """value - limit per design spec, as :func:`nasco.evaluate.check_limits` computes it
    (``power`` as energy / latency where the latency is positive), over arrays; a value at
    or under its limit gives a non-positive entry."""
    values = dict(values)
    if "power" in limits:
        lat = values["latency"]
        values["power"] = np.where(lat > 0, values["energy"] / np.where(lat > 0, lat, 1.0), -np.inf)
    return {k: values[k] - lim for k, lim in limits.items() if k in values}


def _relative_violation(excess: Mapping[str, np.ndarray], limits: Mapping[str, float], n: int) -> np.ndarray:
    """Each of ``n`` configurations' total relative violation: the sum over the specs it exceeds
    (``excess`` from :func:`_excess`) of excess / limit (a non-positive limit counts as 1)."""
    relative = np.zeros(n)
    for k, e in excess.items():
        relative += np.where(e > 0, e, 0.0) / (limits[k] if limits[k] > 0 else 1.0)
    return relative


def _nondominated(F: np.ndarray) -> np.ndarray:
    """Indices of the rows of ``F`` (minimisation) that no other row dominates; equal rows
    are all kept (pymoo's non-dominated sorting)."""
    if len(F) == 0:
        return np.zeros(0, dtype=np.int64)
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    return np.sort(np.asarray(NonDominatedSorting().do(F, only_non_dominated_front=True), dtype=np.int64))


# ---------------------------------------------------------------------- NSGA-II's encoding
class _Codec:
    """A configuration as a vector of option indices. A set: the member's index, then one block
    per member of its choices' indices; only the picked member's block is read (the others
    ride along, so a member switched back to gets its old choices)."""

    def __init__(self, space: TemplateSpace | TemplateSetSpace) -> None:
        self.space = space
        self.is_set = isinstance(space, TemplateSetSpace)
        members = list(space.members.values()) if self.is_set else [space]
        self.blocks: list[tuple[str, list[str], list[tuple]]] = []
        start = 1 if self.is_set else 0
        self.slices: list[slice] = []
        upper = [len(members) - 1] if self.is_set else []
        for m in members:
            dims = m.dims()
            self.blocks.append((m.name, list(dims), [tuple(c.options) for c in dims.values()]))
            self.slices.append(slice(start, start + len(dims)))
            start += len(dims)
            upper += [len(c) - 1 for c in dims.values()]
        self.upper = np.array(upper, dtype=np.int64)

    def _block(self, x: np.ndarray) -> int:
        return int(x[0]) if self.is_set else 0

    def decode(self, x: np.ndarray) -> dict[str, Any]:
        b = self._block(x)
        name, keys, options = self.blocks[b]
        idx = x[self.slices[b]]
        values = {k: opts[int(i)] for k, opts, i in zip(keys, options, idx)}
        return {TEMPLATE_KEY: name, **values} if self.is_set else values

    def encode(self, hw: Mapping[str, Any]) -> np.ndarray:
        x = np.zeros(len(self.upper), dtype=np.int64)
        b = [n for n, _, _ in self.blocks].index(hw[TEMPLATE_KEY]) if self.is_set else 0
        if self.is_set:
            x[0] = b
        _, keys, options = self.blocks[b]
        x[self.slices[b]] = [opts.index(hw[k]) for k, opts in zip(keys, options)]
        return x

    def canonical(self, X: np.ndarray) -> np.ndarray:
        """Rounded into the bounds (every such vector decodes to a configuration)."""
        return np.clip(np.rint(np.asarray(X, dtype=np.float64)), 0, self.upper).astype(np.int64)

    def active(self) -> float:
        """The mean number of variables a vector's configuration reads."""
        return float(np.mean([s.stop - s.start for s in self.slices])) + self.is_set

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` vectors: a member uniformly, then each of its choices uniformly."""
        return np.floor(rng.random((n, len(self.upper))) * (self.upper + 1)).astype(np.int64)


def _scores(archive: _Archive, rows: list[int], configs: list[dict[str, Any]],
            objectives: Sequence[Objective], limits_keys: list[str],
            n_obj: int) -> tuple[np.ndarray, np.ndarray]:
    """NSGA-II's objectives F (minimised) and constraints G (excess over each spec, relative
    to the limit) of one generation's costed ``rows``; an unmappable configuration (row -1)
    scores worst on everything."""
    F = np.full((len(rows), n_obj), 1e30)
    G = np.full((len(rows), len(limits_keys)), 1e30)
    ok = [i for i, r in enumerate(rows) if r >= 0]
    if ok:
        good = [rows[i] for i in ok]
        if objectives:
            F[ok] = archive.minimisation(good, objectives)
        else:
            F[ok] = 0.0
        lim = archive.space.limits(configs[ok[0]])
        for j, k in enumerate(limits_keys):
            scale = lim[k] if lim.get(k, 0) > 0 else 1.0
            G[ok, j] = [archive.excess[r].get(k, 0.0) / scale for r in good]
    return F, G


def _nsga2(archive: _Archive, objectives: Sequence[Objective], limits_keys: list[str],
           proposed: dict[str, Any] | None, budget: int, pop_size: int,
           seed: int) -> tuple[tuple[dict[str, Any], ...], ...]:
    """Run NSGA-II until the next generation would pass ``budget`` distinct configurations;
    returns the configurations each generation asked for."""
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.duplicate import DuplicateElimination
    from pymoo.core.problem import Problem
    from pymoo.core.repair import Repair
    from pymoo.core.termination import NoTermination
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM

    codec = _Codec(archive.space)

    class Canonical(Repair):
        def _do(self, problem, X, **kwargs):
            return codec.canonical(X)

    class Unseen(DuplicateElimination):
        """Duplicates: individuals that decode to the same configuration, or to one costed
        (or found unmappable) before, so every generation costs new configurations only."""

        def _do(self, pop, other, is_duplicate):
            keys = [key_of(x) for x in codec.canonical(pop.get("X"))]
            if other is None:
                seen: set = set()
                for i, k in enumerate(keys):
                    is_duplicate[i] = k in archive.index or k in archive.unmapped or k in seen
                    seen.add(k)
            else:
                others = {key_of(x) for x in codec.canonical(other.get("X"))}
                for i, k in enumerate(keys):
                    is_duplicate[i] = is_duplicate[i] or k in others
            return is_duplicate

    keys: dict[bytes, tuple] = {}

    def key_of(x: np.ndarray) -> tuple:
        raw = x.tobytes()
        if raw not in keys:
            keys[raw] = archive.key(codec.decode(x))
        return keys[raw]

    rng = np.random.default_rng(seed)
    X0 = codec.sample(rng, pop_size)
    if proposed is not None:
        X0[0] = codec.encode(proposed)
    n_obj = max(len(objectives), 1)
    problem = Problem(n_var=len(codec.upper), n_obj=n_obj, n_ieq_constr=len(limits_keys), xl=0,
                      xu=codec.upper.astype(np.float64), vtype=int)
    # pymoo's integer recipe: real-coded SBX and polynomial mutation, rounded by the repair;
    # mutation's rate per variable is one over the variables a configuration reads (pymoo's
    # default, one over all of them, would mostly hit the blocks of members not picked).
    algorithm = NSGA2(pop_size=pop_size, sampling=X0.astype(np.float64),
                      crossover=SBX(prob=1.0, eta=3.0, vtype=float, repair=Canonical()),
                      mutation=PM(prob=1.0, prob_var=1.0 / codec.active(), eta=3.0, vtype=float,
                                  repair=Canonical()),
                      repair=Canonical(), eliminate_duplicates=Unseen())
    algorithm.setup(problem, termination=NoTermination(), seed=int(seed), verbose=False)
    generations: list[tuple[dict[str, Any], ...]] = []
    while True:
        pop = algorithm.ask()
        if pop is None or len(pop) == 0:  # mating found no configuration not costed before
            break
        X = codec.canonical(pop.get("X"))
        configs = [codec.decode(x) for x in X]
        new = {archive.key(c) for c in configs} - set(archive.index) - archive.unmapped
        if not new or (generations and len(archive.configs) + archive.unmappable + len(new) > budget):
            break  # the budget is spent, or nothing unseen is left to breed
        generations.append(tuple(configs))
        F, G = _scores(archive, archive.add(configs), configs, objectives, limits_keys, n_obj)
        pop.set("X", X.astype(np.float64), "F", F, "G", G)
        algorithm.tell(infills=pop)
    return tuple(generations)


# ---------------------------------------------------------------------- the loop
def _front_rows(archive: _Archive, objs: Sequence[Objective]) -> tuple[list[int], bool]:
    """The archive rows of the front: the feasible non-dominated ones, else (none feasible)
    those of the smallest total relative violation; and whether any row is feasible."""
    rows = list(range(len(archive.configs)))
    feasible = [r for r in rows if not archive.excess[r]]
    if feasible:
        return [feasible[i] for i in _nondominated(archive.minimisation(feasible, objs))], True
    if not rows:
        return [], False
    least = min(archive.relative)
    return [r for r in rows if archive.relative[r] == least], False


def check_arguments(caller: str, objectives: Sequence[str], has_accuracy: bool, exhaustive: int, budget: int,
                    pop_size: int) -> None:
    """ValueError unless every objective is a hardware front's, accuracy is known when it is
    one, and ``exhaustive >= 0``, ``budget >= 1``, ``pop_size >= 2``."""
    unknown = [o for o in objectives if o not in HW_OBJECTIVES]
    if unknown:
        raise ValueError(f"{caller}: unknown objective {unknown[0]!r}; a hardware front scores "
                         f"{', '.join(HW_OBJECTIVES)}")
    if "accuracy" in objectives and not has_accuracy:
        raise ValueError(f"{caller}: 'accuracy' is an objective but accuracy_of is None; pass a "
                         "function of the (weight, activation, membrane) bits, or a float")
    if exhaustive < 0 or budget < 1 or pop_size < 2:
        raise ValueError(f"{caller}: expected exhaustive >= 0, budget >= 1 and pop_size >= 2, found "
                         f"{exhaustive}, {budget}, {pop_size}")


def hardware_front(workload: Workload, rates: Mapping[str, float] | None,
                   hw_space: TemplateSpace | TemplateSetSpace, *,
                   objectives: Sequence[str] = HW_OBJECTIVES,
                   accuracy_of: Callable[[Precision], float] | float | None = None,
                   exhaustive: int = HW_EXHAUSTIVE, seed: int = 0, proposed: Mapping[str, Any] | None = None,
                   budget: int = HW_BUDGET, pop_size: int = HW_POPULATION, default_rate: float | None = None,
                   table_of: Callable[[AcceleratorTemplate], EnergyTable] | None = None) -> HardwareFront:
    """The hardware Pareto front of one network (``workload`` with its per-layer input spike
    ``rates``) over the configurations of ``hw_space``.

    ``objectives``: names among :data:`HW_OBJECTIVES`, each in its direction in
    :data:`nasco.core.BUILTIN_OBJECTIVES`. ``accuracy_of(precision)`` gives the network's
    accuracy at a configuration's ``(weight, activation, membrane)`` bits (of the resolved
    template) and is called at most once per distinct precision; a float is a constant
    accuracy; None leaves accuracy out (then it cannot be an objective).

    When ``hw_space.size() <= exhaustive`` every configuration is costed; otherwise NSGA-II
    (pymoo; seeded by ``seed``; ``pop_size``; ``proposed`` in its initial population) costs at
    most ``budget`` distinct configurations, and the front is taken over all of them. A
    configuration's costs equal ``CostModel(resolve(template, hw), table_of(template))
    .cost(workload, rates, default_rate).total()`` exactly; its violations are
    :func:`nasco.evaluate.check_limits` of its energy, latency and area against
    ``hw_space.limits(hw)``, and ``tiling`` where the configuration's timestep loop order cannot
    tile a layer (as :func:`nasco.evaluate._joint.tiling_violation` gives it). ``proposed``
    (completed with the space's defaults) is always costed and returned as
    :attr:`HardwareFront.proposed`. ``table_of(template)`` gives a
    template's energy table (default: :func:`nasco.dsl.load_energy_table`, once per table).
    Raises ValueError for an unknown objective, an accuracy objective without
    ``accuracy_of``, or a ``proposed`` that is not a configuration of the space or whose
    dataflow cannot map the workload; TypeError for a multi-accelerator space.
    """
    start = time.perf_counter()
    if not isinstance(hw_space, (TemplateSpace, TemplateSetSpace)):
        raise TypeError(f"hardware_front: expected an accelerator template or set space, got "
                        f"{type(hw_space).__name__} (a multi-accelerator needs one workload per task: "
                        "use multi_hardware_front)")
    check_arguments("hardware_front", objectives, accuracy_of is not None, exhaustive, budget, pop_size)
    objs = tuple(BUILTIN_OBJECTIVES[o] for o in objectives)
    hw_prop = None
    if proposed is not None:
        hw_prop = hw_space.complete(dict(proposed))
        hw_space.check(hw_prop)
    archive = _Archive(hw_space, workload, rates, default_rate, accuracy_of, _table_cache(table_of))
    generations: tuple = ()
    if hw_space.size() <= exhaustive:
        mode = "exhaustive"
        archive.add(hw_space.configurations())
        if hw_prop is not None:
            archive.add([hw_prop])
    else:
        mode = "nsga2"
        keys = sorted(set().union(*(hw_space.limits(c) for c in _member_configs(hw_space))))
        generations = _nsga2(archive, objs, keys, hw_prop, budget, pop_size, seed)
    if archive.unmappable:
        log.warning("%s: %d configurations cannot map workload %r (left out of the front)",
                    hw_space.name, archive.unmappable, workload.name)
    front, feasible = _front_rows(archive, objs)
    prop_point = None
    if hw_prop is not None:
        r = archive.index.get(archive.key(hw_prop), -1)
        if r < 0:  # only an unmappable proposal has no row
            raise ValueError(f"hardware_front: the proposed configuration {hw_prop} cannot map workload "
                             f"{workload.name!r}")
        prop_point = archive.point(r, objs)
    return HardwareFront(objectives=objs, points=tuple(archive.point(r, objs) for r in front),
                         feasible=feasible, proposed=prop_point, mode=mode, costed=len(archive.configs),
                         precisions=len(archive.precision_set), unmappable=archive.unmappable,
                         seconds=time.perf_counter() - start, generations=generations)


def _member_configs(space: TemplateSpace | TemplateSetSpace) -> list[dict[str, Any]]:
    """One default configuration per member (what the space's limits depend on)."""
    if isinstance(space, TemplateSetSpace):
        return [space.complete({TEMPLATE_KEY: n}) for n in space.names]
    return [space.defaults()]
