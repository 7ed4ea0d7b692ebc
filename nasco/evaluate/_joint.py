"""The joint evaluator: real training for accuracy, the cost model for the hardware."""
from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasco.core import FRONT_METRICS, EvaluatorBase, Result
from nasco.dsl import TEMPLATE_KEY, AcceleratorTemplate, EnergyTable, load_energy_table, pe_usage
from nasco.evaluate._precision import FLOAT_BITS, as_precision, precision_metric, precision_of
from nasco.evaluate._trainings import DIRNAME as TRAININGS_DIR
from nasco.evaluate._trainings import (
    TrainingRecord,
    TrainingStore,
    data_fingerprint,
    training_key,
    training_seed,
)
from nasco.hw import CostModel, snn_twin, twin_total
from nasco.nn import plan_network, plan_workload
from nasco.space import Candidate, SearchSpace

if TYPE_CHECKING:
    from torch import nn

# FLOAT_BITS and precision_of are re-exported from nasco.evaluate._precision, whose rule every evaluator applies.
__all__ = ["ACCURACY_AGGREGATE", "EnergyTableCache", "FLOAT_BITS", "TrainCostEvaluator", "check_limits",
           "emitted_rates", "precision_of"]

log = logging.getLogger("nasco.evaluate")

# How a multi-task candidate's accuracy objective is made of its tasks' validation
# accuracies: their mean (NASAIC weighs the tasks' accuracies into one reward, Yang et al.,
# DAC 2020). The minimum is recorded beside it (metrics 'accuracy_min') for reports.
ACCURACY_AGGREGATE = "mean"

# Calibrations an evaluator keeps in memory, the most recently used. Each holds a sample of every
# neuron's inputs (nasco.nn.QuantRanges.neuron_inputs; 4.3 MB for a 33-neuron darts_snn network
# of T 4), so an unbounded cache grows with the run. A training's precisions are measured together
# (its front), and each measured accuracy is kept on disk, so an evicted calibration is rarely
# needed again; when it is, calibrating again gives the same ranges (it is seeded).
CALIBRATIONS_KEPT = 8

# The objectives a trained and costed candidate reports (snn_advantage: spiking networks only).
SCORED = ("accuracy", "energy", "latency", "area", "params", "macs", "snn_advantage")


def check_limits(values: dict[str, float], limits: dict[str, float]) -> dict[str, float]:
    """value - limit for every design spec a candidate exceeds (base units).

    A ``power`` spec is checked against the mean power of one inference, energy / latency
    (W), where both are known."""
    values = dict(values)
    if "power" not in values and values.get("latency", 0) > 0 and "energy" in values:
        values["power"] = values["energy"] / values["latency"]
    return {k: float(values[k] - lim) for k, lim in limits.items() if k in values and values[k] > lim}


def tiling_violation(report: Any) -> dict[str, float]:
    """``{"tiling": excess}`` when a layer of a costed network cannot be tiled under its spiking
    template's timestep loop order (:attr:`nasco.hw.CostReport.tiling_excess`: the largest
    need / have - 1 over the layers' tiles, the layers in :attr:`~nasco.hw.CostReport.infeasible`);
    else ``{}``. It is a violation like a design spec's, so the candidate is infeasible (kept in
    the ledger, not on the front), never an error."""
    return {"tiling": float(report.tiling_excess)} if report.tiling_excess > 0 else {}


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

    Trainings are memoised (:mod:`nasco.evaluate._trainings`): the key of a task's training
    covers the architecture, the data, the training settings and the seed, never the
    accelerator, so candidates that differ only in hardware share one training and are only
    costed again. A run's driver calls :meth:`attach_run_dir`, after which the trainings are
    kept in the run directory (weights included, see :meth:`load_trained`) and read back on
    resume; otherwise they are kept in memory. Every result's metrics say which training it
    used (``training``: the key, or a list of one per task) and ``trained`` (True when this
    evaluation ran the training, False when it reused one; a list per task; in a run's
    ledger, whether the row is the run's first to use it, see :class:`nasco.run.Job`).
    ``seed`` is the run's seed that training seeds derive from (the driver sets it).

    Precision: the accuracy objective is the validation accuracy of the trained network
    quantized (:func:`nasco.evaluate.quantized_accuracy`) to the bit widths of the
    candidate's accelerator (weights, activations and, for a spiking network, membranes);
    the float accuracy is the metric ``valid_accuracy``. Each (training, precision) is
    measured once, every precision from one calibration of the float network (once per
    training and process), seeded with the training's seed, and kept with the training
    (:meth:`TrainingStore.put_measure`): workers and a resumed run read it back.

    Spiking networks on an accelerator also get their ANN twin (:func:`nasco.hw.snn_twin`): the
    same architecture as a ⌈log2(T+1)⌉-bit ANN on the same template with MAC PEs, in the metric
    ``snn_twin`` (its energy and latency, ``snn_advantage`` = twin energy / SNN energy, the
    latency ratio and the break-even spike rate); ``snn_advantage`` is an objective of
    single-task spaces, computed for each hardware-front member on that member's configuration.
    The maps neurons emit take the rates their readers measured (:func:`emitted_rates`), which
    templates whose spike maps are not dense charge.

    Hardware inner loop (``hw_inner``): on a template or a template set, each trained
    network also meets the other configurations of the accelerator space
    (:func:`nasco.evaluate.hardware_front`: every one when there are at most
    ``hw_exhaustive``, default :data:`~nasco.evaluate.HW_EXHAUSTIVE`, else NSGA-II seeded
    with the candidate's own), and the result's ``members`` are that network's hardware
    front (feasible, non-dominated on this evaluator's hardware objectives). On a
    multi-accelerator, the task networks together meet the partitions of its shared
    budget (:func:`nasco.evaluate.multi_hardware_front`: one configuration of the pool per
    sub-accelerator, never over the budget, scored as the candidate is; every in-budget
    partition of the tasks' non-dominated configurations when there are at most
    ``hw_exhaustive``, else NSGA-II seeded with the candidate's own), and the members are
    those partitions' front, each with its system ``pes``, ``dram_bytes_per_cycle``,
    ``task_accuracy``, ``accuracy_min``, ``slowest_task`` and per-task ``tasks`` (sub-accelerator
    and values) as metrics. The metric
    ``hw_front`` says what the loop did, ``hw_front_seconds`` how long it took. The
    result's own objectives stay those of the candidate's configuration, which is what its
    searcher is told. With ``hw_inner`` False only the candidate's own configuration is
    costed. The loop can run apart from the rest of the evaluation (``defers_front``):
    :meth:`evaluate_head` and :meth:`evaluate_front` together give :meth:`evaluate`'s result,
    so a run's driver may tell the searcher the head and make the front in a second process
    while the next network trains (:class:`nasco.run.InProcessExecutor`).
    """

    trains = True  # its evaluations train: a run's budget counts trainings

    space: SearchSpace
    data: Any  # nasco.evaluate.DataSplits, or a sequence of them (one per task)
    objectives: tuple[str, ...] = ("accuracy", "energy", "latency", "area")
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    device: str = "cpu"
    max_seconds: float | None = None
    seed: int = 0
    hw_inner: bool = True
    hw_exhaustive: int | None = None
    _tables: dict = field(default_factory=dict, init=False, repr=False)
    _quantized: dict = field(default_factory=dict, init=False, repr=False)
    _calibrations: OrderedDict = field(default_factory=OrderedDict, init=False, repr=False)
    _store: TrainingStore = field(default_factory=TrainingStore, init=False, repr=False)
    _fingerprints: dict = field(default_factory=dict, init=False, repr=False)
    # The front of the last evaluate_head, to make: ((candidate id, seed), the loop), so that
    # evaluate_front of the same candidate in this process reuses the head's trained networks.
    _due: tuple | None = field(default=None, init=False, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_due"] = None  # a closure over this process's networks: not for other processes
        state["_calibrations"] = OrderedDict()  # megabytes each; another process calibrates alike
        return state

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
        if "snn_advantage" in self.objectives and (self.space.multi_task or self.space.hw is None):
            raise ValueError("objective snn_advantage needs a single-task spiking space and an accelerator "
                             "template (--hw); drop it or pick such a space")
        self.datas = datas
        if self.hw_exhaustive is not None and (isinstance(self.hw_exhaustive, bool)
                                               or not isinstance(self.hw_exhaustive, int) or self.hw_exhaustive < 0):
            raise ValueError(f"hw_exhaustive must be a non-negative integer, found {self.hw_exhaustive!r}")
        hw = self.space.hw
        self.limits: dict[str, float] = hw.limits() if hw is not None else {}
        self._preload_tables(hw)

    # ---------------------------------------------------------------- run directory and keys
    def attach_run_dir(self, out_dir: str | Path, *, resume: bool, seed: int) -> None:
        """Keep the trainings in ``out_dir/trainings`` (read back on resume) and train with
        the run's ``seed``. The data's fingerprints are taken here, so that workers that get
        this evaluator need not."""
        self.seed = int(seed)
        self._store = TrainingStore(Path(out_dir).resolve() / TRAININGS_DIR)
        for i in range(len(self.datas)):
            self._fingerprint(i)

    def training_keys(self, candidate: Candidate) -> tuple[str, ...]:
        """The key of each task's training (one for a single-task space)."""
        return tuple(self._training(i, arch, geno)[0] for i, (arch, geno) in enumerate(self._archs(candidate)))

    def load_trained(self, key: str) -> nn.Module:
        """The network trained under ``key``, its weights loaded, in eval mode (KeyError when
        the store has no weights for it)."""
        from nasco.dsl import ArchSpace, build
        from nasco.nn import GraphNet

        state = self._store.state_dict(key)
        rec = self._store.get(key)
        assert rec is not None  # state_dict() found it
        inputs = rec.inputs
        arch = build(ArchSpace, inputs["space"])
        plan = plan_network(arch, inputs["arch"]["cell"], tuple(inputs["data"]["input_shape"]),
                            int(inputs["data"]["num_classes"]))
        model = GraphNet(plan, arch)
        model.load_state_dict(state)
        return model.eval()

    def _archs(self, candidate: Candidate) -> list[tuple[Any, dict[str, Any]]]:
        """(resolved arch space, genotype) of each task."""
        archs, _ = self.space.resolve(candidate)
        archs = archs if self.space.multi_task else (archs,)
        return list(zip(archs, self.space.task_archs(candidate)))

    def _fingerprint(self, i: int) -> str:
        if i not in self._fingerprints:
            self._fingerprints[i] = data_fingerprint(self.datas[i])
        return self._fingerprints[i]

    def _training(self, i: int, arch: Any, geno: dict[str, Any]) -> tuple[str, dict[str, Any], Any]:
        """(key, inputs, TrainConfig) of task ``i``'s training of ``arch`` with genotype ``geno``."""
        from nasco.dsl import to_data
        from nasco.evaluate._train import TrainConfig

        data = self.datas[i]
        t = arch.training
        cfg = TrainConfig(
            epochs=int(self.epochs or t.epochs), batch_size=int(self.batch_size or t.batch_size),
            lr=float(self.lr or t.lr), optimizer=t.optimizer, weight_decay=t.weight_decay,
            device=self.device, max_seconds=self.max_seconds, spike_penalty=float(t.spike_penalty),
        )
        # The device says where the training runs, not what it is: a resume elsewhere reuses it.
        # A spike penalty of 0 (cross-entropy alone) is left out, so trainings keep the keys and
        # seeds they had before the penalty existed.
        settings = {k: v for k, v in asdict(cfg).items()
                    if k not in ("seed", "device") and not (k == "spike_penalty" and v == 0)}
        space = to_data(arch)
        space.pop("training")  # the effective settings are in "training"
        inputs: dict[str, Any] = {
            "arch": {"cell": geno["cell"], "hp": geno.get("hp", {})}, "space": space,
            "data": {"name": data.name, "sizes": data.sizes(), "input_shape": list(data.input_shape),
                     "num_classes": int(data.num_classes), "timesteps": data.timesteps,
                     "sha256": self._fingerprint(i)},
            "training": settings, "run_seed": int(self.seed),
        }
        inputs["seed"] = training_seed(self.seed, inputs)
        return training_key(inputs), inputs, replace(cfg, seed=inputs["seed"])

    # ---------------------------------------------------------------- one task
    def _check_data(self, i: int, arch: Any) -> None:
        data = self.datas[i]
        frames = getattr(data, "timesteps", None)  # event data: T frames per sample
        if frames is not None or (arch.neuron is not None and arch.encoding == "events"):
            if arch.neuron is None or arch.encoding != "events" or frames != arch.timesteps:
                raise ValueError(
                    f"task {i}: dataset {data.name!r} has {frames or 'no'} time bins per sample but space "
                    f"'{arch.name}' is {'spiking' if arch.neuron else 'an ANN'} with encoding "
                    f"'{arch.encoding}' and timesteps {arch.timesteps}; event data needs encoding: events "
                    "and timesteps equal to the time bins (--set timesteps=T, or load T frames)")

    def _train(self, i: int, arch: Any, geno: dict[str, Any], plan: Any) -> tuple[TrainingRecord, bool]:
        """Task ``i``'s training of ``arch`` (planned as ``plan``): the stored record when
        the store has one, else a new training, stored; and whether this call trained."""
        from nasco.evaluate._train import TrainingDiverged, train_and_evaluate
        from nasco.nn import GraphNet

        key, inputs, cfg = self._training(i, arch, geno)
        rec = self._store.get(key)
        if rec is None:
            import torch

            torch.manual_seed(cfg.seed)  # the weight initialisation is part of the training's seed
            model = GraphNet(plan, arch)
            try:
                tr = train_and_evaluate(model, self.datas[i], cfg)
            except TrainingDiverged as exc:
                self._store.put(TrainingRecord(key, inputs, diverged=f"TrainingDiverged: {exc}"), None)
                raise _Diverged(f"TrainingDiverged: {exc}") from None
            rec = TrainingRecord(key, inputs, valid_accuracy=tr.valid_accuracy, test_accuracy=tr.test_accuracy,
                                 train_loss=tr.train_loss, epochs=tr.epochs_run, seconds=tr.seconds,
                                 params=tr.params, spike_rates=dict(tr.spike_rates), stopped_early=tr.stopped_early)
            self._store.put(rec, model.state_dict())
            return rec, True
        if rec.diverged is not None:
            raise _Diverged(rec.diverged)
        return rec, False

    def _task(self, i: int, arch: Any, geno: dict[str, Any], hw: AcceleratorTemplate | None,
              name: str) -> tuple[dict[str, float], dict[str, Any], bool, _Network]:
        """Train (or reuse the training of) and cost task ``i``: (values, metrics, whether it
        trained, the trained network) as a single-task evaluation has them; metrics'
        ``training`` is the key. With ``hw``, the accuracy is the network's at ``hw``'s bit
        widths (``valid_accuracy`` stays the float one)."""
        self._check_data(i, arch)
        data = self.datas[i]
        plan = plan_network(arch, geno["cell"], data.input_shape, data.num_classes)
        workload = plan_workload(plan, name=name)
        rec, trained = self._train(i, arch, geno, plan)
        net = _Network(self, i, arch, plan, workload, rec)
        values: dict[str, float] = {"accuracy": float(rec.valid_accuracy), "params": float(rec.params),
                                    "macs": float(workload.macs)}
        metrics: dict[str, Any] = {
            "valid_accuracy": rec.valid_accuracy, "test_accuracy": rec.test_accuracy,
            "train_loss": rec.train_loss, "epochs": rec.epochs, "train_seconds": rec.seconds,
            "params": rec.params, "macs": workload.macs, "layers": len(workload), "training": rec.key,
        }
        rates = net.rates
        if plan.spiking:
            from nasco.evaluate._train import mean_spike_rate

            metrics["mean_spike_rate"] = mean_spike_rate(rec.spike_rates)
            metrics["spike_rates"] = {k: round(v, 6) for k, v in rec.spike_rates.items()}
        if hw is not None:
            precision = precision_of(hw)
            values["accuracy"] = net.accuracy_at(precision)
            metrics["precision"] = precision_metric(precision)
            cost_values, cost_metrics = self._cost(hw, workload, rates)
            values.update(cost_values)
            metrics.update(cost_metrics)
            if plan.spiking:
                twin = snn_twin(workload, hw, self.table_of(hw),
                                {"energy_j": values["energy"], "latency_s": values["latency"]})
                values["snn_advantage"] = twin["snn_advantage"]
                metrics["snn_twin"] = twin
        return values, metrics, trained, net

    def _quantized_accuracy(self, net: _Network, precision: tuple[int, int, int]) -> float:
        """The validation accuracy of ``net`` at ``precision`` (weight, activation, membrane
        bits; the membrane only counts for a spiking network), once per training and precision."""
        from nasco.evaluate._quant import (
            CALIBRATION_BATCH_SIZE,
            CALIBRATION_BATCHES,
            QUANTIZER,
            quantized_accuracy,
        )

        p = as_precision(precision, spiking=net.plan.spiking)
        if p.is_float():
            return float(net.rec.valid_accuracy)
        key = (net.rec.key, p)
        if key not in self._quantized:
            bits = (p.weight, p.activation, p.membrane)
            name = "valid_accuracy_" + "_".join(f"{k}{'f' if b is None else b}" for k, b in zip("wam", bits))
            seed = int(net.rec.inputs["seed"])
            settings = {"precision": list(bits), "quantizer": QUANTIZER, "calibration_batches": CALIBRATION_BATCHES,
                        "calibration_batch_size": CALIBRATION_BATCH_SIZE, "seed": seed}
            acc = self._store.get_measure(net.rec.key, name, settings)
            if acc is None:
                acc = quantized_accuracy(net.model(), self.datas[net.task], p, ranges=net.ranges(), seed=seed)
                self._store.put_measure(net.rec.key, name, settings, acc)
            self._quantized[key] = acc
        return self._quantized[key]

    def _members(self, net: _Network, candidate: Candidate, values: dict[str, float],
                 seed: int) -> tuple[tuple[dict[str, Any], ...], dict[str, Any], float]:
        """The trained network's hardware front as result members, what the loop did, and its
        seconds."""
        from nasco.evaluate._hw_front import HW_OBJECTIVES, hardware_front

        front = hardware_front(net.workload, net.rates, self.space.hw,
                               objectives=[o for o in self.objectives if o in HW_OBJECTIVES],
                               accuracy_of=net.accuracy_at, seed=seed, proposed=candidate.hw,
                               exhaustive=self._exhaustive(), table_of=self.table_of)
        extra = None
        if "snn_advantage" in self.objectives:
            extra = [self._member_advantage(net, p) for p in front.points if p.hw != front.proposed.hw]
        return self._front_members(front, values, extra), self._front_info(front), front.seconds

    def _member_advantage(self, net: _Network, point: Any) -> dict[str, float]:
        """``snn_advantage`` of a hardware front's point: its ANN twin's energy on the point's
        configuration over the network's energy there (the point's own, from the loop)."""
        (template,) = self.space.hw.resolve(point.hw)
        tot, _bits = twin_total(net.workload, template, self.table_of(template))
        return {"snn_advantage": tot["energy_j"] / point.values["energy"]}

    def _task_members(self, nets: Sequence[_Network], candidate: Candidate, values: dict[str, float],
                      seed: int) -> tuple[tuple[dict[str, Any], ...], dict[str, Any], float]:
        """The task networks' hardware front over the multi-accelerator's partitions as result
        members (their metrics: :meth:`_partition_metrics`), what the loop did, and its seconds."""
        from nasco.evaluate._hw_front import HW_OBJECTIVES
        from nasco.evaluate._hw_multi import TaskNetwork, multi_hardware_front

        tasks = [TaskNetwork(n.workload, n.rates, n.accuracy_at) for n in nets]
        front = multi_hardware_front(tasks, self.space.hw, seed=seed, proposed=candidate.hw,
                                     objectives=[o for o in self.objectives if o in HW_OBJECTIVES],
                                     exhaustive=self._exhaustive(), table_of=self.table_of)
        metrics = [self._partition_metrics(p.hw, per_task) for p, per_task in zip(front.points, front.tasks)
                   if p.hw != front.proposed.hw]
        members = tuple({**m, "metrics": x} for m, x in zip(self._front_members(front, values), metrics))
        info = {**self._front_info(front), "configurations": list(front.configurations),
                "kept": list(front.kept), "pairs": front.pairs, "scored": front.costed}
        return members, info, front.seconds

    @staticmethod
    def _partition_metrics(hw: dict[str, Any], tasks: Sequence[dict[str, float]]) -> dict[str, Any]:
        """A partition's metrics as a multi-task result has them for its own: the system's ``pes``,
        ``dram_bytes_per_cycle``, ``task_accuracy``, ``accuracy_min``, ``slowest_task``, and
        ``tasks``: each task's sub-accelerator (``template``, ``pes``, ``dram_bytes_per_cycle``)
        and values (``accuracy``, ``energy``, ``latency``, ``area``)."""
        from nasco.space import SUBS_KEY

        keys = ("dram_bytes_per_cycle", "accuracy", "energy", "latency", "area")
        return {"pes": int(sum(t["pes"] for t in tasks)),
                "dram_bytes_per_cycle": float(sum(t["dram_bytes_per_cycle"] for t in tasks)),
                "task_accuracy": [t["accuracy"] for t in tasks],
                "accuracy_min": float(min(t["accuracy"] for t in tasks)),
                "slowest_task": int(np.argmax([t["latency"] for t in tasks])),
                "tasks": [{"task": i, "template": sub[TEMPLATE_KEY], "pes": int(t["pes"]),
                           **{k: t[k] for k in keys}} for i, (sub, t) in enumerate(zip(hw[SUBS_KEY], tasks))]}

    def _exhaustive(self) -> int:
        from nasco.evaluate._hw_front import HW_EXHAUSTIVE

        return HW_EXHAUSTIVE if self.hw_exhaustive is None else self.hw_exhaustive

    def _front_members(self, front: Any, values: dict[str, float],
                       extra: Sequence[dict[str, float]] | None = None) -> tuple[dict[str, Any], ...]:
        """A hardware front's points other than the proposed one as result members; objectives
        the front does not score are the network's ``values`` (``params``, ``macs``) or, per
        member, ``extra`` (``snn_advantage``, which depends on the configuration)."""
        from nasco.evaluate._hw_front import HW_OBJECTIVES

        points = [p for p in front.points if p.hw != front.proposed.hw]
        extra = extra if extra is not None else [{} for _ in points]
        arch_values = {o: values[o] for o in self.objectives if o not in HW_OBJECTIVES and o != "snn_advantage"}
        return tuple(
            {"hw": p.hw, "status": "infeasible" if p.violations else "ok",
             "objectives": {o: float(p.values[o]) if o in p.values else float(x[o]) if o in x else arch_values[o]
                            for o in self.objectives},
             "violations": {k: float(v) for k, v in p.violations.items()}}
            for p, x in zip(points, extra))

    @staticmethod
    def _front_info(front: Any) -> dict[str, Any]:
        return {"mode": front.mode, "configurations": front.costed, "precisions": front.precisions,
                "front": len(front.points), "feasible": front.feasible}

    def _cost(self, hw: AcceleratorTemplate, workload: Any, rates: dict[str, float]
              ) -> tuple[dict[str, float], dict[str, Any]]:
        """The costing half: the workload with the measured spike rates on ``hw``."""
        rep = CostModel(hw, self.table_of(hw)).cost(workload, rates)
        tot = rep.total()
        values = {"energy": tot["energy_j"], "latency": tot["latency_s"], "area": tot["area_mm2"]}
        metrics: dict[str, Any] = {"cycles": tot["cycles"], "utilization": tot["utilization"],
                                   "energy_breakdown": tot["energy"], "ops": tot["ops"]}
        for key in ("spike_rate_assumed", "spike_out_rate_assumed"):  # rates the cost model had to assume
            if key in rep.assumptions:
                metrics[key] = rep.assumptions[key]
        if rep.infeasible:  # layers the template's timestep loop order cannot tile (see _result)
            metrics["tiling_infeasible"] = list(rep.infeasible)
            metrics["tiling_excess"] = rep.tiling_excess
        return values, metrics

    # ---------------------------------------------------------------- a candidate
    def evaluate(self, candidate: Candidate, seed: int) -> Result:
        """Score ``candidate``. Its trainings come from the store when it has them, else they
        run and are stored; a training's seed follows from the run's seed (:attr:`seed`) and
        the training's inputs, so ``seed`` (the evaluation's) does not enter it, and every
        evaluation of one architecture shares one training."""
        return self._evaluate(candidate, seed, front=True)

    @property
    def defers_front(self) -> bool:
        """True when results have a hardware front (``hw_inner`` on an accelerator space) and
        the trainings are kept in a run directory (:meth:`attach_run_dir`), where another
        process reads them back for :meth:`evaluate_front`."""
        return bool(self.hw_inner and self.space.hw is not None and self._store.root is not None)

    def evaluate_head(self, candidate: Candidate, seed: int) -> Result:
        """:meth:`evaluate` without the hardware inner loop: no members, and the metrics
        ``hw_front`` and ``hw_front_seconds`` None. The training, the candidate's own
        precision and its cost are all there, so its objectives and status are
        :meth:`evaluate`'s."""
        return self._evaluate(candidate, seed, front=False)

    def evaluate_front(self, candidate: Candidate, seed: int) -> dict[str, Any]:
        """The hardware front :meth:`evaluate_head` leaves out: ``{"members": [...],
        "hw_front": ..., "hw_front_seconds": ...}`` as :meth:`evaluate` gives them; ``{}`` for
        a failed candidate or a space without a front. The trainings are read back from the
        store (never run here when :meth:`evaluate_head` of the candidate returned), and
        precisions measured before are read back with them."""
        due, self._due = self._due, None
        if due is not None and due[0] == (candidate.id, int(seed)):
            metrics: dict[str, Any] = {}
            members = self._front(metrics, True, due[1])
            return {"members": [dict(m) for m in members], **metrics}
        res = self._evaluate(candidate, seed, front=True)
        if res.status == "failed" or "hw_front" not in res.metrics:
            return {}
        return {"members": [dict(m) for m in res.members],
                **{k: res.metrics[k] for k in FRONT_METRICS}}

    def _evaluate(self, candidate: Candidate, seed: int, *, front: bool) -> Result:
        start = time.perf_counter()
        if self.space.multi_task:
            return self._evaluate_tasks(candidate, seed, start, front)
        arch, hw = self.space.resolve(candidate)
        geno = self.space.task_archs(candidate)[0]
        try:
            values, metrics, trained, net = self._task(0, arch, geno, hw, candidate.id)
        except _Diverged as exc:
            return Result.failed(str(exc), time.perf_counter() - start, **self._keys_of(candidate))
        metrics["trained"] = trained
        if self.space.hw is not None and self.space.hw.name != getattr(hw, "name", None):
            metrics["template"] = hw.name  # the member of a set this candidate picked
        limits = self.space.hw.limits(candidate.hw) if self.space.hw is not None else {}
        members: tuple[dict[str, Any], ...] = ()
        if self.hw_inner and self.space.hw is not None:
            members = self._front(metrics, front, lambda: self._members(net, candidate, values, seed),
                                  (candidate.id, int(seed)))
        return self._result(values, metrics, limits, start, members)

    def _keys_of(self, candidate: Candidate) -> dict[str, Any]:
        """The ``training`` metric of a candidate (a key, or a list of one per task)."""
        keys = self.training_keys(candidate)
        return {"training": list(keys) if self.space.multi_task else keys[0]}

    def _evaluate_tasks(self, candidate: Candidate, seed: int, start: float, front: bool) -> Result:
        archs, hws = self.space.resolve(candidate)
        genotypes = self.space.task_archs(candidate)
        hws = hws if hws is not None else (None,) * len(archs)
        tasks: list[dict[str, Any]] = []
        per_values: list[dict[str, float]] = []
        trained: list[bool] = []
        nets: list[_Network] = []
        for i, (arch, geno, hw) in enumerate(zip(archs, genotypes, hws)):
            try:
                values, metrics, did, net = self._task(i, arch, geno, hw, f"{candidate.id}.task{i}")
            except _Diverged as exc:
                return Result.failed(f"task {i} ({arch.name}): {exc}", time.perf_counter() - start,
                                     **self._keys_of(candidate))
            row: dict[str, Any] = {"task": i, "space": arch.name, "dataset": self.datas[i].name}
            if hw is not None:
                pes, bw = pe_usage(hw)
                row.update(template=hw.name, pes=pes, dram_bytes_per_cycle=bw)
            row.update({k: values[k] for k in ("energy", "latency", "area") if k in values})
            row.update(metrics)
            tasks.append(row)
            per_values.append(values)
            trained.append(did)
            nets.append(net)
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
            "training": [t["training"] for t in tasks], "trained": trained,
        }
        if hws[0] is not None:
            metrics.update(pes=int(sum(t["pes"] for t in tasks)),
                           dram_bytes_per_cycle=float(sum(t["dram_bytes_per_cycle"] for t in tasks)),
                           slowest_task=int(np.argmax([v["latency"] for v in per_values])))
        limits = self.space.hw.limits(candidate.hw) if self.space.hw is not None else {}
        members: tuple[dict[str, Any], ...] = ()
        if self.hw_inner and hws[0] is not None:
            members = self._front(metrics, front, lambda: self._task_members(nets, candidate, values, seed),
                                  (candidate.id, int(seed)))
        return self._result(values, metrics, limits, start, members)

    def _front(self, metrics: dict[str, Any], front: bool, make: Any, due: tuple | None = None
               ) -> tuple[dict[str, Any], ...]:
        """The hardware front's members from ``make()`` (members, loop info, seconds), its info
        and seconds put in ``metrics`` (FRONT_METRICS); without ``front`` no members and both
        metrics None (:meth:`evaluate_head`; ``make`` is kept for :meth:`evaluate_front` of the
        candidate and seed in ``due``). A loop that raises leaves the candidate its own
        result: no members, and ``hw_front`` = ``{"error": reason}``."""
        if not front:
            metrics["hw_front"] = metrics["hw_front_seconds"] = None
            self._due = (due, make)
            return ()
        t0 = time.perf_counter()
        try:
            members, metrics["hw_front"], metrics["hw_front_seconds"] = make()
        except Exception as exc:  # noqa: BLE001 - recorded in the row; the candidate's own result stands
            log.warning("hardware inner loop failed: %s: %s", type(exc).__name__, exc)
            metrics["hw_front"] = {"error": f"{type(exc).__name__}: {exc}"}
            metrics["hw_front_seconds"] = time.perf_counter() - t0
            return ()
        return members

    def _result(self, values: dict[str, float], metrics: dict[str, Any], limits: dict[str, float],
                start: float, members: tuple[dict[str, Any], ...] = ()) -> Result:
        missing = [o for o in self.objectives if o not in values]
        if missing:
            raise ValueError(f"objectives {missing} need an accelerator template (--hw)")
        objectives = {o: float(values[o]) for o in self.objectives}
        violations = check_limits(values, limits)
        # a task (or the network) that its template's timestep loop order cannot tile
        worst = max([metrics.get("tiling_excess", 0.0)] + [t.get("tiling_excess", 0.0)
                                                            for t in metrics.get("tasks", ())])
        if worst > 0:
            violations["tiling"] = float(worst)
        status = "infeasible" if violations else "ok"
        return Result(status, objectives, metrics, violations, None, time.perf_counter() - start, members)


@dataclass
class _Network:
    """A trained network of one evaluation: its plan, workload, training record and spike
    rates; its weights are loaded on first use."""

    evaluator: TrainCostEvaluator
    task: int
    arch: Any
    plan: Any
    workload: Any
    rec: TrainingRecord
    _model: Any = None

    @property
    def rates(self) -> dict[str, float]:
        """The measured input rates of the spiking layers, and for each neuron whose map a
        conv or linear reads directly, that map's rate (what it emits: the cost model reads it
        where a template's spike maps are not dense)."""
        if not self.plan.spiking:
            return {}
        measured = dict(self.rec.spike_rates)
        return {**emitted_rates(self.plan, measured), **measured}

    def model(self) -> nn.Module:
        """The trained network, weights loaded, in eval mode."""
        if self._model is None:
            from nasco.nn import GraphNet

            model = GraphNet(self.plan, self.arch)
            model.load_state_dict(self.evaluator._store.state_dict(self.rec.key))
            self._model = model.eval()
        return self._model

    def ranges(self) -> Any:
        """The calibration ranges of the trained network (:func:`nasco.evaluate.calibrate`,
        seeded with the training's seed), shared by every precision; an evaluator process keeps
        those of the :data:`CALIBRATIONS_KEPT` trainings it used last."""
        cache = self.evaluator._calibrations
        if self.rec.key in cache:
            cache.move_to_end(self.rec.key)
        else:
            from nasco.evaluate._quant import calibrate

            cache[self.rec.key] = calibrate(self.model(), self.evaluator.datas[self.task],
                                            seed=int(self.rec.inputs["seed"]))
            while len(cache) > CALIBRATIONS_KEPT:
                cache.popitem(last=False)
        return cache[self.rec.key]

    def accuracy_at(self, precision: tuple[int, int, int]) -> float:
        """Validation accuracy at (weight, activation, membrane) bits."""
        return self.evaluator._quantized_accuracy(self, precision)


def emitted_rates(plan: Any, measured: dict[str, float]) -> dict[str, float]:
    """Neuron name -> the spike rate of the map it emits, for every neuron whose output a conv
    or linear with a measured input rate reads directly (that rate is measured on exactly this
    map). Several such readers see the same map: their mean is taken. A neuron read only
    through a pool, an add or a concatenation has no entry."""
    neurons = {n.name for n in plan.nodes if n.op == "neuron"}
    seen: dict[str, list[float]] = {}
    for n in plan.nodes:
        if n.op in ("conv", "linear") and n.name in measured and n.inputs and n.inputs[0] in neurons:
            seen.setdefault(n.inputs[0], []).append(float(measured[n.name]))
    return {k: float(np.mean(v)) for k, v in seen.items()}
