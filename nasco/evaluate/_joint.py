"""The joint evaluator: real training for accuracy, the cost model for the hardware."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasco.dsl import EnergyTable, load_energy_table
from nasco.evaluate._result import OBJECTIVES, Result
from nasco.hw import CostModel
from nasco.nn import plan_network, plan_workload
from nasco.space import Candidate, SearchSpace

__all__ = ["TrainCostEvaluator", "check_limits"]


def check_limits(values: dict[str, float], limits: dict[str, float]) -> dict[str, float]:
    """value - limit for every design spec a candidate exceeds (base units)."""
    return {k: float(values[k] - lim) for k, lim in limits.items() if k in values and values[k] > lim}


@dataclass
class TrainCostEvaluator:
    """Scores a joint candidate: trains its network on ``data`` (validation accuracy is the
    objective, test accuracy a metric), measures each layer's input spike rate during the
    validation pass, and costs the workload on the candidate's accelerator with those
    rates. Design specs of the template mark the candidate infeasible.

    ``epochs`` etc. override the space's ``training`` section when given.
    """

    space: SearchSpace
    data: Any  # nasco.evaluate.DataSplits
    objectives: tuple[str, ...] = ("accuracy", "energy", "latency", "area")
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    device: str = "cpu"
    max_seconds: float | None = None

    def __post_init__(self) -> None:
        unknown = [o for o in self.objectives if o not in OBJECTIVES]
        if unknown:
            raise ValueError(f"unknown objectives {unknown}; known: {', '.join(OBJECTIVES)}")
        hw = self.space.hw_spec
        self.table: EnergyTable | None = load_energy_table(hw) if hw is not None else None
        self.limits: dict[str, float] = hw.limits() if hw is not None else {}

    def evaluate(self, candidate: Candidate, seed: int) -> Result:
        import torch

        from nasco.evaluate._train import TrainConfig, TrainingDiverged, train_and_evaluate
        from nasco.nn import GraphNet

        start = time.perf_counter()
        arch, hw = self.space.resolve(candidate)
        plan = plan_network(arch, candidate.arch["cell"], self.data.input_shape, self.data.num_classes)
        workload = plan_workload(plan, name=candidate.id)
        torch.manual_seed(seed)  # the weight initialisation is part of the evaluation's seed
        model = GraphNet(plan, arch)
        t = arch.training
        cfg = TrainConfig(
            epochs=int(self.epochs or t.epochs), batch_size=int(self.batch_size or t.batch_size),
            lr=float(self.lr or t.lr), optimizer=t.optimizer, weight_decay=t.weight_decay,
            seed=int(seed), device=self.device, max_seconds=self.max_seconds,
        )
        try:
            tr = train_and_evaluate(model, self.data, cfg)
        except TrainingDiverged as exc:
            return Result.failed(f"TrainingDiverged: {exc}", time.perf_counter() - start)
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
        if hw is not None and self.table is not None:
            rep = CostModel(hw, self.table).cost(workload, rates)
            tot = rep.total()
            values.update(energy=tot["energy_j"], latency=tot["latency_s"], area=tot["area_mm2"])
            metrics.update(cycles=tot["cycles"], utilization=tot["utilization"],
                           energy_breakdown=tot["energy"], ops=tot["ops"])
            if "spike_rate_assumed" in rep.assumptions:
                metrics["spike_rate_assumed"] = rep.assumptions["spike_rate_assumed"]
        missing = [o for o in self.objectives if o not in values]
        if missing:
            raise ValueError(f"objectives {missing} need an accelerator template (--hw)")
        objectives = {o: float(values[o]) for o in self.objectives}
        violations = check_limits(values, self.limits)
        status = "infeasible" if violations else "ok"
        return Result(status, objectives, metrics, violations, None, time.perf_counter() - start)
