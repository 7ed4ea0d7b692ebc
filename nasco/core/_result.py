"""What an evaluation returns, and what an evaluator is."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

from nasco.core._candidate import Candidate
from nasco.core._objective import Objective

__all__ = ["EVALUATOR_HOOKS", "FRONT_METRICS", "MEMBER_STATUSES", "OPTIONAL_EVALUATOR_ATTRS", "STATUSES",
           "Evaluator", "EvaluatorBase", "Result", "evaluator_attr", "evaluator_hook", "member_error"]

STATUSES = ("ok", "failed", "infeasible")


@dataclass(frozen=True)
class Result:
    """The outcome of one evaluation.

    status: 'ok', 'failed' (``reason`` says why) or 'infeasible' (scored, but a design spec
    is violated; ``violations`` holds value - limit for each violated spec, in base units).

    ``members``: other accelerator configurations scored for the same trained network (an
    evaluator's hardware inner loop), each a dict with ``hw`` (a configuration of the
    space's hardware), ``status`` ('ok' or 'infeasible'), ``objectives``, ``violations`` and
    optionally ``metrics``. The candidate itself (its own ``hw``) is the result's top level;
    the run's front is taken over the candidate and its members
    (:func:`nasco.pareto.expand_pairs`).
    """

    status: str
    objectives: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    violations: dict[str, float] = field(default_factory=dict)
    reason: str | None = None
    seconds: float = 0.0
    members: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        if self.status == "failed" and not self.reason:
            raise ValueError("a failed result needs a reason")
        for k, v in self.objectives.items():
            if not isinstance(v, (int, float)) or math.isnan(v):
                raise ValueError(f"objective {k} is not a number: {v!r}")
        object.__setattr__(self, "members", tuple(self.members))
        for i, m in enumerate(self.members):
            problem = member_error(m)
            if problem:
                raise ValueError(f"member {i}: {problem}")

    @classmethod
    def failed(cls, reason: str, seconds: float = 0.0, **metrics: Any) -> Result:
        return cls("failed", reason=reason, seconds=seconds, metrics=dict(metrics))

    @property
    def feasible(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON data (``members`` only when there are some)."""
        d = {"status": self.status, "objectives": dict(self.objectives), "metrics": dict(self.metrics),
             "violations": dict(self.violations), "reason": self.reason, "seconds": self.seconds}
        if self.members:
            d["members"] = [dict(m) for m in self.members]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Result:
        return cls(d["status"], dict(d.get("objectives") or {}), dict(d.get("metrics") or {}),
                   dict(d.get("violations") or {}), d.get("reason"), float(d.get("seconds") or 0.0),
                   tuple(d.get("members") or ()))


MEMBER_STATUSES = ("ok", "infeasible")


def member_error(member: Any) -> str | None:
    """Why ``member`` is not a member of a result (see :class:`Result`); None when it is one."""
    if not isinstance(member, dict):
        return f"expected an object, found {type(member).__name__}"
    if not isinstance(member.get("hw"), dict):
        return f"key 'hw': expected an object, found {type(member.get('hw')).__name__}"
    if member.get("status") not in MEMBER_STATUSES:
        return f"key 'status': expected one of {', '.join(MEMBER_STATUSES)}, found {member.get('status')!r}"
    for key in ("objectives", "violations", "metrics"):
        if member.get(key) is not None and not isinstance(member[key], dict):
            return f"key '{key}': expected an object, found {type(member[key]).__name__}"
    for name, value in (member.get("objectives") or {}).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            return f"key 'objectives.{name}': expected a number, found {value!r}"
    return None


class Evaluator(Protocol):
    """Scores a candidate. It never knows which searcher asked.

    Required: ``objectives`` (the names it scores, in order) and ``evaluate``, which returns
    a :class:`Result` whose ``objectives`` hold a value for each name when it is ok.

    Optional (read with :func:`evaluator_attr`, which gives the default of
    :class:`EvaluatorBase` when an evaluator lacks one):

    * ``report_metrics`` (default ``()``): ledger metrics that the run's pareto.csv and
      summary.json report beside the objectives for every front member;
    * ``limits`` (default None: the space's own design specs): the design-spec limits,
      ``{name: limit}`` in base units, that fix the run's hypervolume bounds;
    * ``objective_defs`` (default ``()``): :class:`~nasco.core.Objective` s for objective
      names that the built-in objectives do not know (a table metric's direction and range);
    * ``trains`` (default False): True for an evaluator whose evaluations train networks and
      memoise the trainings; a run's budget then counts distinct trainings
      (``training_keys``), not evaluations;
    * ``defers_front`` (default False): True for an evaluator whose results have a part that
      no searcher reads and that can be made apart, later and in another process: the
      candidate's hardware front (its ``members`` and the metrics in :data:`FRONT_METRICS`).
      ``evaluate_head`` then makes the rest and ``evaluate_front`` that part, and together they
      are what ``evaluate`` returns (see there).

    Optional hooks (called with :func:`evaluator_hook`, which gives
    :class:`EvaluatorBase`'s no-op when an evaluator lacks one): ``attach_run_dir``,
    ``training_keys``, ``shared_state``, ``adopt_shared_state``, ``retrainer``,
    ``evaluate_head`` and ``evaluate_front``, see there.
    """

    objectives: tuple[str, ...]

    def evaluate(self, candidate: Candidate, seed: int) -> Result: ...


class EvaluatorBase:
    """The base of nasco's evaluators: every optional attribute of :class:`Evaluator`, with its
    default. A subclass sets ``objectives`` and implements ``evaluate``, and overrides what it
    has (a class attribute, an instance attribute or a property). Inheriting it is not
    required: an object with ``objectives`` and ``evaluate`` is an evaluator too."""

    objectives: tuple[str, ...]  # annotation only: a default here would become a dataclass subclass's
    report_metrics: tuple[str, ...] = ()
    limits: Mapping[str, float] | None = None
    objective_defs: tuple[Objective, ...] = ()
    trains: bool = False
    defers_front: bool = False

    def evaluate(self, candidate: Candidate, seed: int) -> Result:
        raise NotImplementedError(f"{type(self).__name__} implements no evaluate()")

    # ---------------------------------------------------------------- optional hooks
    def attach_run_dir(self, out_dir: str | Path, *, resume: bool, seed: int) -> None:
        """Called by a run's driver before any evaluation (and before the evaluator is sent
        to workers): an evaluator that keeps files of its own (trained weights) keeps them in
        the run directory ``out_dir``, and with ``resume`` reads back what an earlier session
        left; ``seed`` is the run's seed. The default keeps nothing."""

    def training_keys(self, candidate: Candidate) -> tuple[str, ...]:
        """The keys of the trainings an evaluation of ``candidate`` uses (one per training,
        equal for candidates that share it). The default, for evaluators that do not train,
        is none."""
        return ()

    def shared_state(self, candidates: Sequence[Candidate]) -> dict[str, Any]:
        """What the evaluations of ``candidates`` use that a run makes once and shares (trained
        weights), by key: made now in this process (or read back), the same value for a key at
        every call. The Ray task and process-pool executors call it in the driver before they
        send a job, and hand each worker each key's value (see :meth:`adopt_shared_state`), so
        that no worker makes it again. The default shares nothing."""
        return {}

    def adopt_shared_state(self, state: Mapping[str, Any]) -> None:
        """Take ``state`` (values of :meth:`shared_state`, made in another process), which
        evaluations here then use instead of making them. The default takes nothing."""

    def retrainer(self) -> Any:
        """The evaluator that trains this evaluator's architectures stand-alone after a search
        (a run's ``retrain_top``), for an evaluator whose accuracies are estimates (inherited
        weights); None, the default, for one whose accuracies need no retraining."""
        return None

    def evaluate_head(self, candidate: Candidate, seed: int) -> Result:
        """For an evaluator that ``defers_front``: ``evaluate(candidate, seed)`` without the
        hardware front, each metric of :data:`FRONT_METRICS` that ``evaluate`` would give present
        with the value None (its place in the metrics kept) and no members. Everything else is
        what ``evaluate`` returns. The default is ``evaluate`` itself."""
        return self.evaluate(candidate, seed)

    def evaluate_front(self, candidate: Candidate, seed: int) -> dict[str, Any]:
        """For an evaluator that ``defers_front``: the part of ``evaluate(candidate, seed)``
        that :meth:`evaluate_head` leaves out, as ``{"members": [...], <each metric of
        FRONT_METRICS>: value}`` (callable in another process that holds a copy of this
        evaluator, after :meth:`evaluate_head` of the same candidate returned); ``{}`` when there
        is none (the default)."""
        return {}


# The optional attributes of an evaluator; their defaults are EvaluatorBase's.
OPTIONAL_EVALUATOR_ATTRS = ("report_metrics", "limits", "objective_defs", "trains", "defers_front")
# The optional hooks of an evaluator; their defaults are EvaluatorBase's.
EVALUATOR_HOOKS = ("attach_run_dir", "training_keys", "shared_state", "adopt_shared_state", "retrainer",
                   "evaluate_head", "evaluate_front")
# The metrics of a result that belong to its hardware front (see ``defers_front``): no searcher
# is told them, so a result is told the same whether its front was made with it or apart.
FRONT_METRICS = ("hw_front", "hw_front_seconds")
_DEFAULT = EvaluatorBase()


def evaluator_attr(evaluator: Any, name: str) -> Any:
    """The optional attribute ``name`` (one of :data:`OPTIONAL_EVALUATOR_ATTRS`) of
    ``evaluator``, or :class:`EvaluatorBase`'s default when the evaluator lacks it."""
    if name not in OPTIONAL_EVALUATOR_ATTRS:
        raise ValueError(f"'{name}' is not an optional evaluator attribute; they are "
                         f"{', '.join(OPTIONAL_EVALUATOR_ATTRS)}")
    # Evaluators are duck-typed: a user's object with objectives and evaluate() need not
    # inherit EvaluatorBase, so this is the one place that reads these attributes with a default.
    return getattr(evaluator, name, getattr(EvaluatorBase, name))


def evaluator_hook(evaluator: Any, name: str) -> Callable[..., Any]:
    """The optional hook ``name`` (one of :data:`EVALUATOR_HOOKS`) of ``evaluator``, bound,
    or :class:`EvaluatorBase`'s default when the evaluator lacks it."""
    if name not in EVALUATOR_HOOKS:
        raise ValueError(f"'{name}' is not an optional evaluator hook; they are {', '.join(EVALUATOR_HOOKS)}")
    fn = getattr(evaluator, name, None)
    return fn if callable(fn) else getattr(_DEFAULT, name)
