"""Evaluators by kind (train, oneshot, proxy, table) with the settings a run records, and plain
functions as evaluators."""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from nasco.core import (
    Candidate,
    EvaluatorBase,
    NascoError,
    Objective,
    Result,
    evaluator_attr,
    evaluator_hook,
    resolve_objectives,
)
from nasco.space import SearchSpace

__all__ = ["EVALUATOR_KINDS", "FunctionEvaluator", "SpecChecked", "default_objectives", "evaluator_options",
           "make_evaluator"]

EVALUATOR_KINDS = ("train", "oneshot", "proxy", "table")

# The settings each kind takes, with their defaults (one place for the library and the CLI).
_DEFAULTS: dict[str, dict[str, Any]] = {
    "train": {"dataset": "digits", "epochs": None, "limit": None, "device": "auto", "max_seconds": None,
              "trust_pickle": False, "threads": 1, "hw_inner": True, "hw_exhaustive": None},
    "oneshot": {"dataset": "digits", "epochs": None, "limit": None, "device": "auto", "trust_pickle": False,
                "threads": 1, "hw_inner": True, "hw_exhaustive": None, "few_shot": None, "supernets": None},
    "proxy": {"dataset": "digits", "limit": None, "device": "auto", "trust_pickle": False, "threads": 1},
    "table": {"table": None, "table_dataset": "c10", "table_fidelity": 200, "table_split": "valid"},
}


def default_objectives(kind: str, space: SearchSpace) -> tuple[str, ...]:
    """The objectives a study of ``kind`` scores unless told otherwise."""
    if kind == "table":
        return ("accuracy",)
    if kind == "proxy":
        from nasco.evaluate._proxies import DEFAULT_OBJECTIVES

        return tuple(DEFAULT_OBJECTIVES) if space.hw is not None else ("naswot",)
    return ("accuracy", "energy", "latency", "area") if space.hw is not None else ("accuracy",)


def evaluator_options(kind: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of an evaluator of ``kind``: ``given`` (None: the default) over the defaults."""
    if kind not in _DEFAULTS:
        raise NascoError(f"evaluator: expected one of {', '.join(EVALUATOR_KINDS)}, found '{kind}'")
    unknown = sorted(set(given) - set(_DEFAULTS[kind]))
    if unknown:
        raise NascoError(f"evaluator '{kind}': unknown setting {', '.join(unknown)}; it takes "
                         f"{', '.join(_DEFAULTS[kind])}")
    return {**_DEFAULTS[kind], **{k: v for k, v in given.items() if v is not None}}


def make_evaluator(kind: str, *, space: SearchSpace, objectives: Sequence[str] | None, seed: int,
                   **options: Any) -> tuple[Any, dict[str, Any]]:
    """(the evaluator of ``kind`` on ``space``, the settings a run records for it).

    ``train``: real training on ``dataset`` (``digits``, embedded; an image folder; a
    CIFAR-10 folder with ``trust_pickle``) split with ``seed``, plus the cost model; with
    ``hw_inner`` (default True) each trained network's hardware front over the accelerator
    space, or on a multi-accelerator the task networks' front over its partitions
    (exhaustively up to ``hw_exhaustive``, see :class:`~nasco.evaluate.TrainCostEvaluator`).
    ``oneshot``: as ``train``, but each candidate inherits its weights from a supernet trained
    once per run for ``epochs`` (:class:`~nasco.evaluate.OneShotEvaluator`; single-task spaces);
    ``few_shot`` (an edge name, or True for the default edge) splits each supernet on that edge
    into one sub-supernet per op, and the run records the edge and its ops (``few_shot_split``);
    ``supernets`` N > 1 scores each candidate on N supernets and takes the mean (None: one).
    ``proxy``: zero-cost proxies of the untrained network and the cost model. ``table``:
    lookups in ``table``. The recorded settings rebuild the same evaluator
    (:func:`make_evaluator` ``(**recorded["evaluator_options"])``).
    """
    opts = evaluator_options(kind, options)
    names = tuple(objectives) if objectives else default_objectives(kind, space)
    if kind == "table":
        return _table(space, names, opts)
    resolve_objectives(list(names))  # a misspelt name fails here, before any data is loaded
    if kind in ("train", "oneshot"):
        from nasco.evaluate._joint import SCORED

        other = [n for n in names if n not in SCORED]
        if other:
            raise NascoError(f"objectives: the {kind} evaluator scores {', '.join(SCORED)}; found "
                             f"{', '.join(other)} (zero-cost proxies need evaluator proxy)")
    import torch

    from nasco.evaluate import load_dataset

    datasets = [opts["dataset"]] if isinstance(opts["dataset"], str) else list(opts["dataset"])
    n = len(space.tasks)
    if len(datasets) not in (1, n):
        raise NascoError(f"--dataset given {len(datasets)} times for {n} --space; give it once (every task) "
                         f"or once per --space")
    if kind in ("proxy", "oneshot") and n > 1:
        raise NascoError(f"evaluator {kind}: expected a single-task space, found a multi-task one; use train")
    hw_objs = sorted({"energy", "latency", "area"} & set(names))
    if space.hw is None and hw_objs:
        raise NascoError(f"objectives {', '.join(hw_objs)} need an accelerator: add hw (e.g. asic_template), "
                         f"or drop them")
    torch.set_num_threads(int(opts["threads"]))
    device = opts["device"]
    if device == "auto":  # recorded as the device actually used
        device = "cuda" if torch.cuda.is_available() else "cpu"
    loaded: dict[str, Any] = {}
    for name in datasets:
        if name not in loaded:
            loaded[name] = load_dataset(name, seed=seed, trust_pickle=opts["trust_pickle"],
                                        limit=opts["limit"])
    data = [loaded[name] for name in datasets]
    recorded = {**opts, "device": device, "dataset": datasets[0] if len(datasets) == 1 else datasets}
    facts: dict[str, Any] = {"evaluator": kind, "evaluator_options": recorded, "dataset": datasets[0],
                             "dataset_source": data[0].source, "epochs": opts.get("epochs"),
                             "limit": opts["limit"], "device": device, "threads": opts["threads"]}
    if n > 1:
        facts.update(datasets=datasets, dataset_sources=[d.source for d in data])
    if kind == "proxy":
        from nasco.evaluate import ProxyEvaluator

        try:
            ev = ProxyEvaluator(space, data[0], names)
        except ValueError as exc:
            raise NascoError(f"evaluator proxy: {exc}") from None
        facts.update(ev.describe())
        return ev, facts
    return _training_evaluator(kind, space, data if n > 1 else data[0], names, opts, device, seed, facts)


def _training_evaluator(kind: str, space: SearchSpace, data: Any, names: tuple[str, ...],
                        opts: dict[str, Any], device: str, seed: int,
                        facts: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The train or oneshot evaluator on the loaded ``data``, and ``facts`` with what it adds."""
    from nasco.evaluate import OneShotEvaluator, TrainCostEvaluator

    cls, extra = (OneShotEvaluator, {"few_shot": opts["few_shot"],
                                     "supernets": 1 if opts["supernets"] is None else opts["supernets"]}) \
        if kind == "oneshot" else \
        (TrainCostEvaluator, {"max_seconds": opts["max_seconds"]})
    try:
        ev = cls(space, data, names, epochs=opts["epochs"], device=device, seed=seed,
                 hw_inner=bool(opts["hw_inner"]), hw_exhaustive=opts["hw_exhaustive"], **extra)
    except ValueError as exc:
        raise NascoError(f"evaluator {kind}: {exc}") from None
    if isinstance(ev, OneShotEvaluator) and ev.split is not None:
        facts["few_shot_split"] = {"edge": ev.split.name, "ops": list(ev.split.ops)}
    return ev, facts


def _table(space: SearchSpace, names: tuple[str, ...], opts: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    from nasco.dsl import load_file
    from nasco.evaluate import TableEvaluator
    from nasco.tables import load_table

    if not opts["table"]:
        raise NascoError("evaluator table: expected a table (table='nb201' or --table nb201), found none")
    if space.hw is not None:
        raise NascoError("evaluator table scores architectures from the table only: expected no hw, found "
                         f"'{space.hw.name}' (use a table metric such as eyeriss_latency as an objective)")
    if len(space.tasks) != 1:
        raise NascoError("evaluator table: expected one space, found several")
    table = load_table(opts["table"])
    arch_name = space.tasks[0].spec.name
    if arch_name != load_file(table.where.space_file, kind="arch_space").name:
        raise NascoError(f"table {opts['table']}: holds cells of space '{table.spec.space}', "
                         f"not '{arch_name}'")
    ev = TableEvaluator(table, names, dataset=opts["table_dataset"], fidelity=opts["table_fidelity"],
                        split=opts["table_split"])
    return ev, {"evaluator": "table", "evaluator_options": dict(opts), **ev.describe()}


def _numeric(d: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in d.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))}


@dataclass(eq=False)
class SpecChecked(EvaluatorBase):
    """An evaluator whose ok results are checked against the space's design specs: a value
    (objective or numeric metric, base units) over its limit makes the result infeasible,
    with ``violations`` = value - limit. Results already infeasible or failed pass as they are.
    Every other attribute is the inner evaluator's."""

    inner: Any
    space: SearchSpace

    @property
    def objectives(self) -> tuple[str, ...]:
        return tuple(self.inner.objectives)

    # EvaluatorBase's defaults would hide the inner evaluator's optional attributes from
    # __getattr__: they are passed on explicitly.
    @property
    def report_metrics(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(evaluator_attr(self.inner, "report_metrics"))

    @property
    def limits(self) -> Mapping[str, float] | None:  # type: ignore[override]
        return evaluator_attr(self.inner, "limits")

    @property
    def objective_defs(self) -> tuple[Objective, ...]:  # type: ignore[override]
        return tuple(evaluator_attr(self.inner, "objective_defs"))

    @property
    def trains(self) -> bool:  # type: ignore[override]
        return bool(evaluator_attr(self.inner, "trains"))

    # The same holds for the hooks: EvaluatorBase's no-ops would hide the inner ones.
    def attach_run_dir(self, out_dir: str | Path, *, resume: bool, seed: int) -> None:
        evaluator_hook(self.inner, "attach_run_dir")(out_dir, resume=resume, seed=seed)

    def training_keys(self, candidate: Candidate) -> tuple[str, ...]:
        return tuple(evaluator_hook(self.inner, "training_keys")(candidate))

    def shared_state(self, candidates: Sequence[Candidate]) -> dict[str, Any]:
        return dict(evaluator_hook(self.inner, "shared_state")(candidates))

    def adopt_shared_state(self, state: Mapping[str, Any]) -> None:
        evaluator_hook(self.inner, "adopt_shared_state")(state)

    def retrainer(self) -> SpecChecked | None:
        """The inner evaluator's retrainer, its results checked against the same design specs."""
        inner = evaluator_hook(self.inner, "retrainer")()
        return None if inner is None else SpecChecked(inner, self.space)

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (unpickling)
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def defers_front(self) -> bool:  # type: ignore[override]
        return bool(evaluator_attr(self.inner, "defers_front"))

    def evaluate_head(self, candidate: Candidate, seed: int) -> Result:
        return self._checked(evaluator_hook(self.inner, "evaluate_head")(candidate, seed), candidate)

    def evaluate_front(self, candidate: Candidate, seed: int) -> dict[str, Any]:
        return dict(evaluator_hook(self.inner, "evaluate_front")(candidate, seed))

    def evaluate(self, candidate: Candidate, seed: int) -> Result:
        return self._checked(self.inner.evaluate(candidate, seed), candidate)

    def _checked(self, res: Any, candidate: Candidate) -> Any:
        if not isinstance(res, Result) or res.status != "ok" or self.space.hw is None:
            return res
        from nasco.evaluate import check_limits

        values = {**_numeric(res.metrics), **_numeric(res.objectives)}
        violations = check_limits(values, self.space.hw.limits(candidate.hw))
        if not violations:
            return res
        return Result("infeasible", dict(res.objectives), dict(res.metrics), violations, None, res.seconds,
                      res.members)


@dataclass(eq=False)
class FunctionEvaluator(EvaluatorBase):
    """A plain function as an evaluator: ``fn(candidate)`` or ``fn(candidate, seed)``
    returns a dict of objective values (status ok), or a dict with ``status`` and the
    fields of :class:`~nasco.core.Result`, or a Result."""

    fn: Callable[..., Any]
    objectives: tuple[str, ...]

    def __post_init__(self) -> None:
        try:
            params = inspect.signature(self.fn).parameters
            self._with_seed = len([p for p in params.values()
                                   if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]) >= 2
        except (TypeError, ValueError):  # builtins without a signature
            self._with_seed = False

    def evaluate(self, candidate: Candidate, seed: int) -> Result:
        out = self.fn(candidate, seed) if self._with_seed else self.fn(candidate)
        if isinstance(out, Result):
            return out
        if not isinstance(out, Mapping):
            raise TypeError(f"the objective function returned {type(out).__name__}; expected a dict of "
                            f"objective values or a Result")
        if "status" in out:
            return Result.from_dict(dict(out))
        objs = {k: float(out[k]) for k in self.objectives if k in out}
        metrics = {k: v for k, v in out.items() if k not in objs}
        return Result("ok", objs, metrics)
