"""The one-shot evaluator: accuracy from a supernet's inherited weights, the hardware as in
:class:`~nasco.evaluate.TrainCostEvaluator`."""
from __future__ import annotations

import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from nasco.evaluate._joint import TrainCostEvaluator, _Diverged
from nasco.evaluate._trainings import TrainingRecord, TrainingStore, training_key, training_seed

__all__ = ["INHERITED_DIR", "OneShotEvaluator", "RECALIBRATION_BATCHES", "SUPERNETS_DIR", "recalibrate_bn",
           "shares_weights"]

SUPERNETS_DIR = "supernets"  # a run directory's supernet checkpoints, one folder per supernet
INHERITED_DIR = "inherited"  # a run directory's scored networks (inherited weights, recalibrated)
# Training batches the BN statistics of an inherited network are re-estimated on (SPOS
# recalibrates on 20,000 ImageNet images, Guo et al., ECCV 2020; digits has ~1,000 in all).
RECALIBRATION_BATCHES = 8


def shares_weights(choice: str) -> bool:
    """Whether architectures that differ in the space's choice ``choice`` (a key path) share
    one supernet: the timesteps and the neuron settings change no tensor shape; every other
    choice (cells, channels, ...) gets a supernet of its own."""
    return choice == "timesteps" or choice.startswith("neuron.")


def recalibrate_bn(model: Any, x: Any, *, batches: int, batch_size: int, seed: int) -> None:
    """Re-estimate every BatchNorm's running statistics of ``model`` as the plain average over
    ``batches`` batches of ``x`` (a permutation seeded with ``seed``: the same batches for every
    model), in train mode without gradients; the momentum is restored afterwards."""
    import torch

    from nasco.evaluate._train import reset_states

    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    device = next(model.parameters()).device
    model.train()
    with torch.no_grad():
        for b in range(batches):
            idx = order[b * batch_size:(b + 1) * batch_size]
            if len(idx) < 2:  # BatchNorm needs two samples
                break
            model(x[idx].to(device))
            reset_states(model)
    for m, momentum in zip(bns, momenta):
        m.momentum = momentum
    model.eval()


@dataclass
class OneShotEvaluator(TrainCostEvaluator):
    """Scores a candidate with the weights its architecture inherits from a supernet trained
    once per run by single-path one-shot (SPOS, :func:`nasco.evaluate.train_supernet`).

    Weight sharing: architectures that differ only in choices for which :func:`shares_weights`
    holds (timesteps, neuron type and time constant) share one supernet, whose training
    samples those choices with the cell at every step; each combination of the other choices
    (cells, channels) has its own supernet, trained when a candidate first needs it, with the
    space's ``training`` settings (``epochs``, ``batch_size``, ``lr`` override them), each step's
    gradient norm clipped to :data:`~nasco.evaluate._spos.GRAD_CLIP`, and a seed that follows
    from the run's seed. A candidate's network loads its path's weights, its BN
    statistics are re-estimated on :data:`RECALIBRATION_BATCHES` fixed training batches
    (:func:`recalibrate_bn`), and a validation pass gives its accuracy and the spike rates the
    cost model uses (test accuracy is a metric). From there a candidate is scored exactly as
    :class:`TrainCostEvaluator` scores a trained network: quantized accuracy at the
    accelerator's bit widths, cost, design specs and the hardware inner loop (``hw_inner``).

    Metrics: ``accuracy_source`` is ``inherited``, ``supernet`` the supernet's key,
    ``supernet_epochs`` its epochs; ``training`` is the key of the scored network, a record of
    the evaluator's store, and ``train_seconds`` the seconds that network took to score.
    :meth:`attach_run_dir` keeps the supernets' checkpoints (one folder per supernet in
    ``supernets/``, resumed after an interruption) and the scored networks (``inherited/``)
    in the run directory. Single-task spaces only. An evaluation scores, it does not train:
    a run's budget counts evaluations. :meth:`retrainer` is the train evaluator that trains
    the best architectures of a run's front stand-alone after the search (``retrain_top``).
    """

    trains = False  # the budget counts evaluations; the supernets are the run's fixed cost

    recalibration_batches: int = RECALIBRATION_BATCHES
    _supernets: dict = field(default_factory=dict, init=False, repr=False)
    _supernet_root: Path | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.space.multi_task:
            raise ValueError("the one-shot evaluator scores single-task spaces; found a multi-task one")
        if self.max_seconds is not None:
            raise ValueError("the one-shot evaluator trains each supernet for whole epochs: expected no "
                             f"max_seconds, found {self.max_seconds}")
        if self.recalibration_batches < 1:
            raise ValueError(f"recalibration_batches must be >= 1, found {self.recalibration_batches}")
        super().__post_init__()

    def __getstate__(self) -> dict[str, Any]:
        # A worker reads the supernets from the run directory, not from this process's memory.
        state = dict(self.__dict__)
        if self._supernet_root is not None:
            state["_supernets"] = {}
        return state

    def attach_run_dir(self, out_dir: str | Path, *, resume: bool, seed: int) -> None:
        """Keep the supernets in ``out_dir/supernets`` and the scored networks in
        ``out_dir/inherited`` (both read back on resume); train with the run's ``seed``."""
        super().attach_run_dir(out_dir, resume=resume, seed=seed)
        self._store = TrainingStore(Path(out_dir).resolve() / INHERITED_DIR)
        self._supernet_root = Path(out_dir).resolve() / SUPERNETS_DIR

    def retrainer(self) -> TrainCostEvaluator:
        """A :class:`TrainCostEvaluator` with this evaluator's space, data, objectives, training
        settings (``epochs``, ``batch_size``, ``lr``), device, hardware inner loop and seed: it
        trains an architecture from scratch, as a search with the train evaluator would."""
        settings = {f.name: getattr(self, f.name) for f in fields(TrainCostEvaluator) if f.init}
        return TrainCostEvaluator(**settings)

    # ---------------------------------------------------------------- supernets
    def _supernet_of(self, geno: dict[str, Any]) -> tuple[str, dict[str, Any], Any, Any]:
        """(key, inputs, TrainConfig, resolved space) of the supernet ``geno``'s architecture
        inherits from."""
        from nasco.dsl import resolve
        from nasco.evaluate._spos import GRAD_CLIP

        spec = self.space.tasks[0].spec
        shape = {k: v for k, v in geno.get("hp", {}).items() if not shares_weights(k)}
        arch = resolve(spec, shape)
        key, inputs, cfg = super()._training(0, arch, {"cell": None, "hp": shape})
        inputs = {k: v for k, v in inputs.items() if k != "seed"}
        inputs["method"] = "spos"
        inputs["grad_clip"] = GRAD_CLIP
        inputs["seed"] = training_seed(self.seed, inputs)
        return training_key(inputs), inputs, replace(cfg, seed=inputs["seed"]), arch

    def _supernet(self, geno: dict[str, Any]) -> tuple[str, Any, Any]:
        """(key, trained OneShotNet, SposResult) of ``geno``'s supernet: trained on first use
        (or continued from its checkpoint), then kept."""
        key, inputs, cfg, arch = self._supernet_of(geno)
        if key not in self._supernets:
            self._supernets[key] = self._train_supernet(inputs, cfg, arch)
        got = self._supernets[key]
        if isinstance(got, str):
            raise _Diverged(got)
        return (key, *got)

    def _train_supernet(self, inputs: dict[str, Any], cfg: Any, arch: Any) -> Any:
        import torch

        from nasco.dsl import Choice, resolve
        from nasco.evaluate._spos import SupernetCheckpoint, train_supernet
        from nasco.evaluate._train import TrainingDiverged
        from nasco.nn import OneShotNet

        part, data = self.space.tasks[0], self.datas[0]
        tau = getattr(part.spec.neuron, "tau", None)
        taus = tau.options if isinstance(tau, Choice) else (() if tau is None else (tau,))
        torch.manual_seed(cfg.seed)  # the supernet's initialisation is part of its seed
        net = OneShotNet(arch, data.input_shape, data.num_classes, taus=taus)
        fixed = inputs["arch"]["hp"]

        def sample(rng: Any) -> tuple[Any, dict[str, Any]]:
            cell, hp = part.sample(rng)
            return resolve(part.spec, {**hp, **fixed}), cell

        checkpoint = None
        if self._supernet_root is not None:
            checkpoint = SupernetCheckpoint(self._supernet_root / training_key(inputs), inputs)
        try:
            result = train_supernet(net, sample, data, cfg, checkpoint=checkpoint,
                                    grad_clip=inputs["grad_clip"])
        except TrainingDiverged as exc:
            return f"TrainingDiverged: {exc}"
        return net.eval(), result

    # ---------------------------------------------------------------- the network half
    def _training(self, i: int, arch: Any, geno: dict[str, Any]) -> tuple[str, dict[str, Any], Any]:
        """(key, inputs, TrainConfig) of the scored network: the candidate's architecture with
        the weights of its supernet, recalibrated."""
        _key, inputs, cfg = super()._training(i, arch, geno)
        inputs = {k: v for k, v in inputs.items() if k != "seed"}
        inputs["supernet"] = self._supernet_of(geno)[0]
        inputs["recalibration"] = {"batches": int(self.recalibration_batches), "batch_size": cfg.batch_size}
        inputs["seed"] = training_seed(self.seed, inputs)
        return training_key(inputs), inputs, cfg

    def _train(self, i: int, arch: Any, geno: dict[str, Any], plan: Any) -> tuple[TrainingRecord, bool]:
        """The scored network of ``arch``: the stored record when there is one, else its
        supernet's path weights, recalibrated and validated; and whether this call scored it."""
        import torch

        from nasco.evaluate._train import _validate, evaluate_accuracy
        from nasco.nn import GraphNet

        key, inputs, cfg = self._training(i, arch, geno)
        rec = self._store.get(key)
        if rec is not None:
            return rec, False
        start = time.perf_counter()
        sup_key, net, spos = self._supernet(geno)
        data = self.datas[i]
        model = GraphNet(plan, arch)
        model.load_state_dict(net.path_state_dict(arch, geno["cell"]))
        model.to(cfg.device)
        torch.manual_seed(inputs["seed"])  # rate encoding draws random numbers
        recalibrate_bn(model, data.x_train, batches=self.recalibration_batches, batch_size=cfg.batch_size,
                       seed=self.seed)
        eval_kw = {"batch_size": max(cfg.batch_size, 256), "device": cfg.device, "amp": cfg.amp}
        valid_acc, rates = _validate(model, data, eval_kw)
        test_acc = evaluate_accuracy(model, data.x_test, data.y_test, **eval_kw)
        rec = TrainingRecord(key, inputs, valid_accuracy=valid_acc, test_accuracy=test_acc,
                             train_loss=spos.epoch_losses[-1], epochs=spos.epochs,
                             seconds=time.perf_counter() - start,
                             params=sum(p.numel() for p in model.parameters()), spike_rates=rates)
        self._store.put(rec, model.state_dict())
        return rec, True

    def _task(self, i: int, arch: Any, geno: dict[str, Any], hw: Any, name: str) -> Any:
        values, metrics, trained, net = super()._task(i, arch, geno, hw, name)
        metrics.update(accuracy_source="inherited", supernet=net.rec.inputs["supernet"],
                       supernet_epochs=net.rec.epochs)
        return values, metrics, trained, net
