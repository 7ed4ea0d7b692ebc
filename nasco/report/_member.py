"""One candidate of a run: its architecture, its accelerator resolved against the run's space,
its precision, and its per-layer energy recomputed with the cost model."""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasco.core import NascoError
from nasco.dsl import to_data
from nasco.evaluate._precision import FLOAT_BITS
from nasco.report._run import RunData, as_dict

__all__ = ["LayerEnergy", "Member", "accelerator_rows", "find_member", "front_member", "layer_energy",
           "member_cost", "precision_text"]

# Fields of a resolved template that say nothing about its configuration.
_SKIP = ("schema", "kind", "description", "specs")


@dataclass(frozen=True, eq=False)
class Member:
    """A scored (architecture, accelerator) pair: a front row of pareto.csv or a ledger row."""

    id: str
    row: dict[str, Any]     # the ledger row whose trained network it is
    arch: dict[str, Any]
    hw: dict[str, Any]
    values: dict[str, float]
    status: str
    on_front: bool
    template: Any           # the resolved AcceleratorTemplate, or None (no accelerator, multi-task)

    @property
    def multi_task(self) -> bool:
        return "tasks" in self.arch

    @property
    def training(self) -> str | None:
        key = (self.row.get("metrics") or {}).get("training")
        return key if isinstance(key, str) else None


def _template(run: RunData, hw: dict[str, Any]) -> Any:
    space = run.hw_space
    if space is None or getattr(space, "subs", 1) != 1:  # no accelerator, or one per task
        return None
    return space.resolve(hw)[0]


def front_member(run: RunData, front_row: dict[str, Any]) -> Member:
    """The member a row of pareto.csv stands for (its ledger row: ``row_id``, else ``id``)."""
    row_id = front_row.get("row_id") if isinstance(front_row.get("row_id"), str) else front_row["id"]
    row = run.row(row_id) or {}
    if front_row.get("accuracy_source") == "stand-alone":
        row = next((r for r in run.rows if r.get("id") == row_id and r.get("phase")), row)
    hw = as_dict(front_row["hw"])
    return Member(front_row["id"], row, as_dict(front_row["arch"]), hw,
                  {n: float(front_row[n]) for n in run.names}, "ok", True, _template(run, hw))


def find_member(run: RunData, cid: str) -> Member:
    """The candidate ``cid``: a front id of pareto.csv, else a ledger row's id. A NascoError
    (one line, naming close matches) for an id the run does not have."""
    for f in run.front:
        if f["id"] == cid:
            return front_member(run, f)
    row = run.row(cid)
    if row is not None:
        hw = dict(row.get("hw") or {})
        values = {n: float((row.get("objectives") or {}).get(n, math.nan)) for n in run.names}
        return Member(cid, row, dict(row.get("arch") or {}), hw, values, str(row.get("status")), False,
                      _template(run, hw) if row.get("status") != "failed" else None)
    ids = sorted({f["id"] for f in run.front} | {str(r.get("id")) for r in run.rows})
    close = (difflib.get_close_matches(cid, ids, n=3, cutoff=0.5)
             or [i for i in ids if i.startswith(cid[:4])][:3])
    hint = (f"close matches: {', '.join(close)}" if close
            else f"ids are pareto.csv's id column or a ledger row's id, e.g. {ids[0]}" if ids
            else "the run has no candidates")
    raise NascoError(f"{run.path}: --id {cid}: no front member or ledger row with that id; {hint}")


def precision_text(template: Any, spiking: bool) -> str:
    """The bit widths a network runs at on ``template``: weights, activations (and membranes
    of a spiking network); a width of FLOAT_BITS or more is float."""
    if template is None:
        return "float (no accelerator)"
    b = template.bits

    def w(bits: Any) -> str:
        return "float" if int(bits) >= FLOAT_BITS else f"{int(bits)} b"

    text = f"weights {w(b.weight)}, activations {w(b.activation)}"
    return text + (f", membrane {w(b.membrane)}" if spiking else "")


def accelerator_rows(member: Member) -> list[tuple[str, str, bool]]:
    """(field, value, searched) for every set field of the member's resolved template, in the
    template's order; ``searched`` when the run's accelerator space chose it."""
    if member.template is None:
        return []
    out: list[tuple[str, str, bool]] = []

    def walk(prefix: str, data: Any) -> None:
        for k, v in data.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict):
                walk(key + ".", v)
            elif v is not None and k not in _SKIP:
                out.append((key, str(v), key in member.hw or (key == "name" and "template" in member.hw)))

    walk("", {k: v for k, v in to_data(member.template).items() if k not in _SKIP})
    return out


@dataclass(frozen=True, eq=False)
class LayerEnergy:
    """Per-layer energy of a member (J per inference, one array per part of
    :data:`nasco.hw.ENERGY_PARTS`) and each layer's input spike rate (spiking layers)."""

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    parts: dict[str, np.ndarray]
    spike_rates: dict[str, float]
    twin: dict[str, Any] | None = None  # a spiking network's ANN twin (nasco.hw.snn_twin)

    def totals(self) -> dict[str, float]:
        return {k: float(v.sum()) for k, v in self.parts.items()}


def _workload(run: RunData, key: str) -> tuple[Any, dict[str, float]] | None:
    """(workload, spike rates) of the training ``key``, from its record (the rates measured at
    the spiking layers' inputs, as the evaluator records them); None without one."""
    cache = run._cache.setdefault("workloads", {})
    if key not in cache:
        from nasco.dsl import ArchSpace, build
        from nasco.evaluate._trainings import DIRNAME, TrainingStore
        from nasco.nn import plan_network, plan_workload

        rec = TrainingStore(run.path / DIRNAME).get(key)
        if rec is None or rec.diverged is not None:
            cache[key] = None
        else:
            inputs = rec.inputs
            plan = plan_network(build(ArchSpace, inputs["space"]), inputs["arch"]["cell"],
                                tuple(inputs["data"]["input_shape"]), int(inputs["data"]["num_classes"]))
            cache[key] = (plan_workload(plan), dict(rec.spike_rates) if plan.spiking else {})
            run._cache.setdefault("plans", {})[key] = plan
    return cache[key]


def _plan(run: RunData, key: str) -> Any:
    """The plan of the training ``key`` (after :func:`_workload` found its record)."""
    return run._cache["plans"][key]


def member_cost(run: RunData, member: Member) -> tuple[Any, dict[str, float], Any] | None:
    """(workload, measured spike rates, :class:`nasco.hw.CostReport`) of the member on its own
    accelerator: the workload of its trained network (the training record's resolved space and
    cell) costed by :class:`nasco.hw.CostModel` with the spike rates measured in that training (the
    maps neurons emit at their readers' rates). None when the run kept no training record for it
    (table and proxy evaluators) or it has no single accelerator."""
    if member.template is None or member.training is None or member.multi_task:
        return None
    found = _workload(run, member.training)
    if found is None:
        return None
    from nasco.dsl import load_energy_table
    from nasco.evaluate._joint import emitted_rates
    from nasco.hw import CostModel

    workload, rates = found
    table = load_energy_table(member.template)
    # The maps neurons emit take their readers' measured rates, as in the evaluator's costing.
    costed = {**emitted_rates(_plan(run, member.training), rates), **rates} if rates else rates
    return workload, rates, CostModel(member.template, table).cost(workload, costed)


def layer_energy(run: RunData, member: Member) -> LayerEnergy | None:
    """The member's per-layer energy on its own accelerator (:func:`member_cost`), and for a spiking
    network its ANN twin on the same accelerator (:func:`nasco.hw.snn_twin`). None where
    :func:`member_cost` is None."""
    found = member_cost(run, member)
    if found is None:
        return None
    from nasco.dsl import load_energy_table
    from nasco.hw import snn_twin

    workload, rates, rep = found
    twin = None
    if rates:
        total = rep.total()
        twin = snn_twin(workload, member.template, load_energy_table(member.template),
                        {"energy_j": total["energy_j"], "latency_s": total["latency_s"]})
    return LayerEnergy(rep.names, rep.kinds, dict(rep.energy), {n: rates[n] for n in rep.names if n in rates},
                       twin)
