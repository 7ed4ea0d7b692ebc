"""The joint evaluator: real training for accuracy, the cost model for the hardware."""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nasco.core import EvaluatorBase, Result
from nasco.dsl import AcceleratorTemplate, EnergyTable, load_energy_table, pe_usage
from nasco.hw import CostModel
from nasco.nn import plan_network, plan_workload
from nasco.space import Candidate, SearchSpace

__all__ = ["ACCURACY_AGGREGATE", "EnergyTableCache", "TrainCostEvaluator", "check_limits", "task_seed"]

# How a multi-task candidate's accuracy objective is made of its tasks' validation
# accuracies: their mean (NASAIC weighs the tasks' accuracies into one reward, Yang et al.,
# DAC 2020). The minimum is recorded beside it (metrics 'accuracy_min') for reports.
ACCURACY_AGGREGATE = "mean"

# The objectives a trained and costed candidate reports.
SCORED = ("accuracy", "energy", "latency", "area", "params", "macs")


def check_limits(values: dict[str, float], limits: dict[str, float]) -> dict[str, float]:
    """value - limit for every design spec a candidate exceeds (base units).

    A ``power`` spec is checked against the mean power of one inference, energy / latency
    (W), where both are known."""
    values = dict(values)
    if "power" not in values and values.get("latency", 0) > 0 and "energy" in values:
        values["power"] = values["energy"] / values["latency"]
    return {k: float(values[k] - lim) for k, lim in limits.items() if k in values and values[k] > lim}


def task_seed(seed: int, task: int) -> int:
    """The training seed of task ``task`` in an evaluation seeded ``seed`` (task 0: ``seed``)."""
    return int(seed) if task == 0 else int(np.random.SeedSequence([int(seed), int(task)]).generate_state(1)[0])


class _Diverged(Exception):
    pass


class EnergyTableCache:
    """For evaluators: ``table_of(template)`` loads each energy table once (per file and
    technology). The class using it declares a ``_tables`` dict field."""

    _tables: dict

    def table_of(self, template: AcceleratorTemplate) -> EnergyTable:
        """The template's energy table (loaded once per file and name)."""
        key = (getattr(template, "source", None), template.technology)
        if key not in self._tables:
            self._tables[key] = load_energy_table(template)
        return self._tables[key]

    def _preload_tables(self, hw) -> None:
        """Look up the tables of every template ``hw`` can pick now, so that a missing table
        is an error before the search, not a failed row per candidate."""
        if hw is not None:
            for t in hw.templates():
                self.table_of(t)


@dataclass
class TrainCostEvaluator(EnergyTableCache, EvaluatorBase):
    """Scores a joint candidate: trains its network on ``data`` (validation accuracy is the
    objective, test accuracy a metric), measures each layer's input spike rate during the
    validation pass, and costs the workload on the candidate's accelerator with those
    rates. Design specs of the template (or set, or multi-accelerator) mark the candidate
    infeasible.

    Multi-task spaces: ``data`` is one dataset for every task or a sequence of one per task.
    Task i trains on its dataset and is costed on sub-accelerator i; the objectives are the
    mean validation accuracy (:data:`ACCURACY_AGGREGATE`), the summed energy and area and
    the latency of the slowest sub-accelerator (they run in parallel). Each task's figures
    are in the result's metrics under ``tasks``.

    ``epochs`` etc. override the space's ``training`` section when given.
    """

    space: SearchSpace
    data: Any  # nasco.evaluate.DataSplits, or a sequence of them (one per task)
    objectives: tuple[str, ...] = ("accuracy", "energy", "latency", "area")
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    device: str = "cpu"
    max_seconds: float | None = None
    _tables: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        unknown = [o for o in self.objectives if o not in SCORED]
        if unknown:
            raise ValueError(f"unknown objectives {unknown}; this evaluator scores: {', '.join(SCORED)}")
        n = len(self.space.tasks)
        if isinstance(self.data, Sequence) and not isinstance(self.data, (str, bytes)):
            datas = list(self.data)
            if len(datas) == 1:
                datas = datas * n
        else:
            datas = [self.data] * n
        if len(datas) != n:
            raise ValueError(f"{len(datas)} datasets for {n} tasks; give one, or one per task")
        self.datas = datas
        hw = self.space.hw
        self.limits: dict[str, float] = hw.limits() if hw is not None else {}
        self._preload_tables(hw)

    # ---------------------------------------------------------------- one task
    def _task(self, i: int, arch: Any, cell: Any, hw: AcceleratorTemplate | None, name: str,
              seed: int) -> tuple[dict[str, float], dict[str, Any]]:
        """Train and cost task ``i``: (values, metrics) as a single-task evaluation has them."""
        import torch

        from nasco.evaluate._train import TrainConfig, TrainingDiverged, train_and_evaluate
        from nasco.nn import GraphNet

        data = self.datas[i]
        frames = getattr(data, "timesteps", None)  # event data: T frames per sample
        if frames is not None or (arch.neuron is not None and arch.encoding == "events"):
            if arch.neuron is None or arch.encoding != "events" or frames != arch.timesteps:
                raise ValueError(
                    f"task {i}: dataset {data.name!r} has {frames or 'no'} time bins per sample but space "
                    f"'{arch.name}' is {'spiking' if arch.neuron else 'an ANN'} with encoding "
                    f"'{arch.encoding}' and timesteps {arch.timesteps}; event data needs encoding: events "
                    "and timesteps equal to the time bins (--set timesteps=T, or load T frames)")
        plan = plan_network(arch, cell, data.input_shape, data.num_classes)
        workload = plan_workload(plan, name=name)
        torch.manual_seed(seed)  # the weight initialisation is part of the evaluation's seed
        model = GraphNet(plan, arch)
        t = arch.training
        cfg = TrainConfig(
            epochs=int(self.epochs or t.epochs), batch_size=int(self.batch_size or t.batch_size),
            lr=float(self.lr or t.lr), optimizer=t.optimizer, weight_decay=t.weight_decay,
            seed=int(seed), device=self.device, max_seconds=self.max_seconds,
        )
        try:
            tr = train_and_evaluate(model, data, cfg)
        except TrainingDiverged as exc:
            raise _Diverged(f"TrainingDiverged: {exc}") from None
        values: dict[str, float] = {"accuracy": tr.valid_accuracy, "params": float(tr.params),
                                    "macs": float(workload.macs)}
        metrics: dict[str, Any] = {
            "valid_accuracy": tr.valid_accuracy, "test_accuracy": tr.test_accuracy,
            "train_loss": tr.train_loss, "epochs": tr.epochs_run, "train_seconds": tr.seconds,
            "params": tr.params, "macs": workload.macs, "layers": len(workload),
        }
        if plan.spiking:
            rates = tr.spike_rates
            metrics["mean_spike_rate"] = float(np.mean(list(rates.values()))) if rates else 0.0
            metrics["spike_rates"] = {k: round(v, 6) for k, v in rates.items()}
        else:
            rates = {}
        if hw is not None:
            rep = CostModel(hw, self.table_of(hw)).cost(workload, rates)
            tot = rep.total()
            values.update(energy=tot["energy_j"], latency=tot["latency_s"], area=tot["area_mm2"])
            metrics.update(cycles=tot["cycles"], utilization=tot["utilization"],
                           energy_breakdown=tot["energy"], ops=tot["ops"])
            if "spike_rate_assumed" in rep.assumptions:
                metrics["spike_rate_assumed"] = rep.assumptions["spike_rate_assumed"]
        return values, metrics

    # ---------------------------------------------------------------- a candidate
    def evaluate(self, candidate: Candidate, seed: int) -> Result:
        start = time.perf_counter()
        if self.space.multi_task:
            return self._evaluate_tasks(candidate, seed, start)
        arch, hw = self.space.resolve(candidate)
        try:
            values, metrics = self._task(0, arch, candidate.arch["cell"], hw, candidate.id, seed)
        except _Diverged as exc:
            return Result.failed(str(exc), time.perf_counter() - start)
        if self.space.hw is not None and self.space.hw.name != getattr(hw, "name", None):
            metrics["template"] = hw.name  # the member of a set this candidate picked
        limits = self.space.hw.limits(candidate.hw) if self.space.hw is not None else {}
        return self._result(values, metrics, limits, start)

    def _evaluate_tasks(self, candidate: Candidate, seed: int, start: float) -> Result:
        archs, hws = self.space.resolve(candidate)
        genotypes = self.space.task_archs(candidate)
        hws = hws if hws is not None else (None,) * len(archs)
        tasks: list[dict[str, Any]] = []
        per_values: list[dict[str, float]] = []
        for i, (arch, geno, hw) in enumerate(zip(archs, genotypes, hws)):
            s = task_seed(seed, i)
            try:
                values, metrics = self._task(i, arch, geno["cell"], hw, f"{candidate.id}.task{i}", s)
            except _Diverged as exc:
                return Result.failed(f"task {i} ({arch.name}): {exc}", time.perf_counter() - start)
            row: dict[str, Any] = {"task": i, "space": arch.name, "dataset": self.datas[i].name, "seed": s}
            if hw is not None:
                pes, bw = pe_usage(hw)
                row.update(template=hw.name, pes=pes, dram_bytes_per_cycle=bw)
            row.update({k: values[k] for k in ("energy", "latency", "area") if k in values})
            row.update(metrics)
            tasks.append(row)
            per_values.append(values)
        acc = [v["accuracy"] for v in per_values]
        values = {"accuracy": float(np.mean(acc)), "params": float(sum(v["params"] for v in per_values)),
                  "macs": float(sum(v["macs"] for v in per_values))}
        if hws[0] is not None:
            # Sub-accelerators run side by side: the system is as slow as the slowest of them.
            values.update(energy=float(sum(v["energy"] for v in per_values)),
                          latency=float(max(v["latency"] for v in per_values)),
                          area=float(sum(v["area"] for v in per_values)))
        metrics: dict[str, Any] = {
            "tasks": tasks, "task_accuracy": acc, "accuracy_aggregate": ACCURACY_AGGREGATE,
            "accuracy_min": float(min(acc)), "valid_accuracy": values["accuracy"],
            "test_accuracy": float(np.mean([t["test_accuracy"] for t in tasks])),
            "params": int(values["params"]), "macs": int(values["macs"]),
        }
        if hws[0] is not None:
            metrics.update(pes=int(sum(t["pes"] for t in tasks)),
                           dram_bytes_per_cycle=float(sum(t["dram_bytes_per_cycle"] for t in tasks)),
                           slowest_task=int(np.argmax([v["latency"] for v in per_values])))
        limits = self.space.hw.limits(candidate.hw) if self.space.hw is not None else {}
        return self._result(values, metrics, limits, start)

    def _result(self, values: dict[str, float], metrics: dict[str, Any], limits: dict[str, float],
                start: float) -> Result:
        missing = [o for o in self.objectives if o not in values]
        if missing:
            raise ValueError(f"objectives {missing} need an accelerator template (--hw)")
        objectives = {o: float(values[o]) for o in self.objectives}
        violations = check_limits(values, limits)
        status = "infeasible" if violations else "ok"
        return Result(status, objectives, metrics, violations, None, time.perf_counter() - start)
