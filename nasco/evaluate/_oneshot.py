"""The one-shot evaluator: accuracy from a supernet's inherited weights, the hardware as in
:class:`~nasco.evaluate.TrainCostEvaluator`."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from nasco.evaluate._fewshot import SplitEdge, restricted_sampler, split_edge
from nasco.evaluate._joint import TrainCostEvaluator, _Diverged
from nasco.evaluate._trainings import TrainingRecord, TrainingStore, training_key, training_seed

log = logging.getLogger("nasco.evaluate")

__all__ = ["INHERITED_DIR", "OneShotEvaluator", "RECALIBRATION_BATCHES", "SUPERNETS_DIR",
           "SUPERNET_EPOCHS_FACTOR", "recalibrate_bn", "shares_weights"]

SUPERNETS_DIR = "supernets"  # a run directory's supernet checkpoints, one folder per supernet
INHERITED_DIR = "inherited"  # a run directory's scored networks (inherited weights, recalibrated)
# The supernet's epochs, unless the evaluator's ``epochs`` says otherwise, as a multiple of the
# space's training epochs: a SPOS step trains one path, so each op of a supernet gets a fraction
# of a stand-alone training's steps. On 40 darts_snn cells (digits), 16x ranked them at Kendall
# tau 0.51 against the mean of three stand-alone trainings (0.8 x their seed-to-seed ceiling
# 0.61 is 0.49), 8x at 0.48, 32x at 0.30, 1x at 0.29
# (experiments/results/oneshot_fidelity_darts_snn.md).
SUPERNET_EPOCHS_FACTOR = 16
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


def _weights_blob(net: Any) -> bytes:
    """``net``'s state dict as safetensors bytes: one buffer, which pickles (to a pool worker)
    and unpickles (from Ray's object store) at the cost of a copy, where a dict of the many small
    tensors of a supernet costs a Python object per tensor each way."""
    from safetensors.torch import save

    return save({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()})


@dataclass
class OneShotEvaluator(TrainCostEvaluator):
    """Scores a candidate with the weights its architecture inherits from a supernet trained
    once per run by single-path one-shot (SPOS, :func:`nasco.evaluate.train_supernet`).

    Weight sharing: architectures that differ only in choices for which :func:`shares_weights`
    holds (timesteps, neuron type and time constant) share one supernet, whose training
    samples those choices with the cell at every step; each combination of the other choices
    (cells, channels) has its own supernet, trained when a candidate first needs it, with the
    space's ``training`` settings for :data:`SUPERNET_EPOCHS_FACTOR` times its epochs
    (``epochs``, ``batch_size``, ``lr`` override them), each step's
    gradient norm clipped to :data:`~nasco.evaluate._spos.GRAD_CLIP`, and a seed that follows
    from the run's seed. A candidate's network loads its path's weights, its BN
    statistics are re-estimated on :data:`RECALIBRATION_BATCHES` fixed training batches
    (:func:`recalibrate_bn`), and a validation pass gives its accuracy and the spike rates the
    cost model uses (test accuracy is a metric). From there a candidate is scored exactly as
    :class:`TrainCostEvaluator` scores a trained network: quantized accuracy at the
    accelerator's bit widths, cost, design specs and the hardware inner loop (``hw_inner``).

    Metrics: ``accuracy_source`` is ``inherited``, ``supernet`` the supernet's key,
    ``supernet_epochs`` its epochs, ``supernet_trained`` whether this evaluation ran the
    supernet's training (continued from its checkpoint when there is one); ``training`` is the
    key of the scored network, a record of the evaluator's store, and ``train_seconds`` the
    seconds that network took to score.
    :meth:`attach_run_dir` keeps the supernets' checkpoints (one folder per supernet in
    ``supernets/``, resumed after an interruption) and the scored networks (``inherited/``)
    in the run directory. Single-task spaces only. An evaluation scores, it does not train:
    a run's budget counts evaluations. :meth:`retrainer` is the train evaluator that trains
    the best architectures of a run's front stand-alone after the search (``retrain_top``).

    Workers: :meth:`shared_state` makes (trains or reads back) in this process the supernets
    that candidates need and returns their weights by supernet key; an evaluator that was given
    them (:meth:`adopt_shared_state`, in a worker process) builds its supernets from them and
    trains none of them. The Ray task and process-pool executors use this, so a run on them
    trains each supernet once, in the driver, as an in-process run does.

    Few-shot (``few_shot``: an edge name of :mod:`nasco.evaluate._fewshot`, or True for the
    normal cell's first edge; Zhao et al., ICML 2021): each supernet above is split on that
    edge into one sub-supernet per op the edge can carry, each with its own key (its inputs
    gain ``few_shot``: the edge and the op) and checkpoint folder, trained for the same epochs
    with the same settings on architectures with that op on the edge only; a candidate
    inherits from the sub-supernet of its op there. The supernets' cost is multiplied by the
    number of ops (:attr:`split`). Metrics gain ``few_shot_edge`` and ``few_shot_op``.

    Ensemble (``supernets`` N > 1): each supernet above is trained N times, replica r > 0 with
    ``replica: r`` in its inputs (so its own key, seed and checkpoint folder; replica 0 is the
    single supernet). A candidate's path is scored on each replica as above, each a record of
    the store, and its score is their mean: the candidate's record (its inputs gain
    ``ensemble``, the replicas' record keys) holds the mean validation and test accuracy and
    the mean spike rate of each layer, and the replica-0 network's weights; its quantized
    accuracy at a precision is the mean of the replicas' (each measured once per training and
    precision). The mean ranked 40 darts_snn cells better than each of its supernets did, in
    both measurements so far: Kendall tau 0.572 against 0.500-0.536
    (experiments/results/oneshot_fidelity_darts_snn_seeds.md), and through this evaluator 0.512
    against 0.451-0.501 (experiments/results/oneshot_ensemble_darts_snn.md); it costs N times the
    supernet training.
    Metrics gain ``supernets``.
    """

    trains = False  # the budget counts evaluations; the supernets are the run's fixed cost

    recalibration_batches: int = RECALIBRATION_BATCHES
    few_shot: str | bool | None = None
    supernets: int = 1
    split: SplitEdge | None = field(default=None, init=False)
    _supernets: dict = field(default_factory=dict, init=False, repr=False)
    _supernet_root: Path | None = field(default=None, init=False, repr=False)
    _received: dict = field(default_factory=dict, init=False, repr=False)  # key -> adopted weights
    _sent: dict = field(default_factory=dict, init=False, repr=False)  # key -> shared_state's value
    _made: list = field(default_factory=list, init=False, repr=False)  # keys trained in this process

    def __post_init__(self) -> None:
        if self.space.multi_task:
            raise ValueError("the one-shot evaluator scores single-task spaces; found a multi-task one")
        if self.max_seconds is not None:
            raise ValueError("the one-shot evaluator trains each supernet for whole epochs: expected no "
                             f"max_seconds, found {self.max_seconds}")
        if self.recalibration_batches < 1:
            raise ValueError(f"recalibration_batches must be >= 1, found {self.recalibration_batches}")
        if isinstance(self.supernets, bool) or not isinstance(self.supernets, int) or self.supernets < 1:
            raise ValueError(f"supernets must be a positive integer (the supernets each candidate is scored "
                             f"on), found {self.supernets!r}")
        if self.few_shot is not None and self.few_shot is not False:
            self.split = split_edge(self.space.tasks[0].spec, self.few_shot)
        super().__post_init__()

    def __getstate__(self) -> dict[str, Any]:
        # A worker reads the supernets from the run directory, not from this process's memory.
        state = dict(self.__dict__)
        if self._supernet_root is not None:
            state["_supernets"] = {}
        state["_sent"] = {}  # the workers get these from the executor, key by key
        return state

    def attach_run_dir(self, out_dir: str | Path, *, resume: bool, seed: int) -> None:
        """Keep the supernets in ``out_dir/supernets`` and the scored networks in
        ``out_dir/inherited`` (both read back on resume); train with the run's ``seed``."""
        super().attach_run_dir(out_dir, resume=resume, seed=seed)
        self._store = TrainingStore(Path(out_dir).resolve() / INHERITED_DIR)
        self._supernet_root = Path(out_dir).resolve() / SUPERNETS_DIR

    def retrainer(self) -> TrainCostEvaluator:
        """A :class:`TrainCostEvaluator` with this evaluator's space, data, objectives, training
        settings (``batch_size``, ``lr``; the space's epochs: ``epochs`` here is the supernet's),
        device, hardware inner loop and seed: it trains an architecture from scratch, as a search
        with the train evaluator would."""
        settings = {f.name: getattr(self, f.name) for f in fields(TrainCostEvaluator) if f.init}
        return TrainCostEvaluator(**{**settings, "epochs": None})

    # ---------------------------------------------------------------- supernets
    def _supernet_of(self, geno: dict[str, Any], replica: int = 0) -> tuple[str, dict[str, Any], Any, Any]:
        """(key, inputs, TrainConfig, resolved space) of the supernet ``geno``'s architecture
        inherits from (replica ``replica`` of it with an ensemble)."""
        from nasco.dsl import resolve
        from nasco.evaluate._spos import GRAD_CLIP

        spec = self.space.tasks[0].spec
        shape = {k: v for k, v in geno.get("hp", {}).items() if not shares_weights(k)}
        arch = resolve(spec, shape)
        key, inputs, cfg = super()._training(0, arch, {"cell": None, "hp": shape})
        if self.epochs is None:
            cfg = replace(cfg, epochs=SUPERNET_EPOCHS_FACTOR * cfg.epochs)
            inputs["training"] = {**inputs["training"], "epochs": cfg.epochs}
        inputs = {k: v for k, v in inputs.items() if k != "seed"}
        inputs["method"] = "spos"
        inputs["grad_clip"] = GRAD_CLIP
        if self.split is not None:
            inputs["few_shot"] = {"edge": self.split.name, "op": self.split.op_of(geno["cell"])}
        if replica:
            inputs["replica"] = int(replica)
        inputs["seed"] = training_seed(self.seed, inputs)
        return training_key(inputs), inputs, replace(cfg, seed=inputs["seed"]), arch

    def _supernet(self, geno: dict[str, Any], replica: int = 0) -> tuple[str, Any, Any]:
        """(key, trained OneShotNet, SposResult) of ``geno``'s supernet (replica ``replica``):
        trained on first use (or continued from its checkpoint), then kept."""
        key, inputs, cfg, arch = self._supernet_of(geno, replica)
        if key not in self._supernets:
            if key in self._received:
                self._supernets[key] = self._rebuild_supernet(self._received.pop(key), cfg, arch)
            else:
                self._supernets[key] = self._train_supernet(inputs, cfg, arch)
                self._made.append(key)
        got = self._supernets[key]
        if isinstance(got, str):
            raise _Diverged(got)
        return (key, *got)

    def _train_supernet(self, inputs: dict[str, Any], cfg: Any, arch: Any) -> Any:
        import torch

        from nasco.dsl import resolve
        from nasco.evaluate._spos import SupernetCheckpoint, train_supernet
        from nasco.evaluate._train import TrainingDiverged

        part, data = self.space.tasks[0], self.datas[0]
        torch.manual_seed(cfg.seed)  # the supernet's initialisation is part of its seed
        net = self._new_supernet(arch)
        fixed = inputs["arch"]["hp"]
        few = inputs.get("few_shot")
        draw = part.sample if few is None else restricted_sampler(part.sample, self.split, few["op"])

        def sample(rng: Any) -> tuple[Any, dict[str, Any]]:
            cell, hp = draw(rng)
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

    def _new_supernet(self, arch: Any) -> Any:
        """An untrained OneShotNet of ``arch`` (the shape's resolved space) on the task's data,
        with a time constant per initial tau the space offers."""
        from nasco.dsl import Choice
        from nasco.nn import OneShotNet

        part, data = self.space.tasks[0], self.datas[0]
        tau = getattr(part.spec.neuron, "tau", None)
        taus = tau.options if isinstance(tau, Choice) else (() if tau is None else (tau,))
        return OneShotNet(arch, data.input_shape, data.num_classes, taus=taus)

    def _rebuild_supernet(self, weights: Any, cfg: Any, arch: Any) -> Any:
        """What :meth:`_train_supernet` returns, from the weights :meth:`shared_state` gave."""
        if isinstance(weights, str):  # the supernet's training diverged where it was made
            return weights
        import torch
        from safetensors.torch import load


        blob, result = weights
        with torch.random.fork_rng(devices=[]):  # the initial values are overwritten: leave torch's RNG be
            net = self._new_supernet(arch)
        net.load_state_dict(load(blob))
        return net.to(cfg.device).eval(), result

    def shared_state(self, candidates: Sequence[Any]) -> dict[str, Any]:
        """The supernets ``candidates`` inherit from, made here (trained, or read back from
        their checkpoints) where not made yet, by supernet key: (the state dict as safetensors
        bytes, :class:`~nasco.evaluate._spos.SposResult`), or the reason of a diverged training;
        each key's value is made once and kept.
        Candidates whose scored network is in the store need none. A candidate whose supernet
        cannot be made (an error other than divergence) is left out with a warning: its
        evaluation meets the error again and records it."""
        out: dict[str, Any] = {}
        for cand in candidates:
            try:
                (arch, geno), = self._archs(cand)
                if self._store.get(self._training(0, arch, geno)[0]) is not None:
                    continue  # scored before: its evaluation reads the record, not the supernet
            except Exception as exc:  # noqa: BLE001 - recorded by the candidate's own evaluation
                log.warning("candidate %s: its supernet could not be made before the evaluation (%s: %s)",
                            cand.id, type(exc).__name__, exc)
                continue
            for replica in range(self.supernets):
                try:
                    key = self._supernet_of(geno, replica)[0]
                    if key in out:
                        continue
                    self._supernet(geno, replica)
                except _Diverged:
                    pass  # kept as its reason, which the workers' evaluations record
                except Exception as exc:  # noqa: BLE001 - recorded by the candidate's own evaluation
                    log.warning("candidate %s: its supernet could not be made before the evaluation (%s: %s)",
                                cand.id, type(exc).__name__, exc)
                    break
                if key not in self._sent:
                    got = self._supernets[key]
                    self._sent[key] = got if isinstance(got, str) else (_weights_blob(got[0]), got[1])
                out[key] = self._sent[key]
        return out

    def adopt_shared_state(self, state: Mapping[str, Any]) -> None:
        """Take supernet weights that :meth:`shared_state` made (in another process): a
        supernet with weights here is built from them, never trained."""
        self._received.update({k: v for k, v in state.items() if k not in self._supernets})

    # ---------------------------------------------------------------- the network half
    def _training(self, i: int, arch: Any, geno: dict[str, Any],
                  replica: int | None = None) -> tuple[str, dict[str, Any], Any]:
        """(key, inputs, TrainConfig) of the scored network: the candidate's architecture with
        the weights of its supernet (of replica ``replica``), recalibrated; with an ensemble and
        no ``replica``, the candidate's record, whose inputs name the replicas' records."""
        _key, inputs, cfg = super()._training(i, arch, geno)
        inputs = {k: v for k, v in inputs.items() if k != "seed"}
        inputs["supernet"] = self._supernet_of(geno, replica or 0)[0]
        inputs["recalibration"] = {"batches": int(self.recalibration_batches), "batch_size": cfg.batch_size}
        if replica is None and self.supernets > 1:
            inputs["ensemble"] = [self._training(i, arch, geno, r)[0] for r in range(self.supernets)]
        inputs["seed"] = training_seed(self.seed, inputs)
        return training_key(inputs), inputs, cfg

    def _train(self, i: int, arch: Any, geno: dict[str, Any], plan: Any) -> tuple[TrainingRecord, bool]:
        """The scored network of ``arch``: the stored record when there is one, else its
        supernet's path weights, recalibrated and validated (with an ensemble, each replica's,
        and their mean); and whether this call scored it."""
        if self.supernets == 1:
            return self._score(i, arch, geno, plan, None)
        key, inputs, cfg = self._training(i, arch, geno)
        rec = self._store.get(key)
        if rec is not None:
            return rec, False
        members = [self._score(i, arch, geno, plan, r)[0] for r in range(self.supernets)]

        def mean(values: Any) -> float:
            values = list(values)
            return sum(values) / len(values)

        rates = {k: mean(m.spike_rates[k] for m in members) for k in members[0].spike_rates}
        rec = TrainingRecord(key, inputs, valid_accuracy=mean(m.valid_accuracy for m in members),
                             test_accuracy=mean(m.test_accuracy for m in members),
                             train_loss=mean(m.train_loss for m in members), epochs=members[0].epochs,
                             seconds=sum(m.seconds for m in members), params=members[0].params,
                             spike_rates=rates)
        self._store.put(rec, self._store.state_dict(members[0].key))
        return rec, True

    def _score(self, i: int, arch: Any, geno: dict[str, Any], plan: Any,
               replica: int | None) -> tuple[TrainingRecord, bool]:
        """One scored network: ``arch``'s path of its supernet (of replica ``replica``)."""
        import torch

        from nasco.evaluate._train import _validate, evaluate_accuracy
        from nasco.nn import GraphNet

        key, inputs, cfg = self._training(i, arch, geno, replica)
        rec = self._store.get(key)
        if rec is not None:
            return rec, False
        start = time.perf_counter()
        sup_key, net, spos = self._supernet(geno, replica or 0)
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

    def _quantized_accuracy(self, net: Any, precision: tuple[int, int, int]) -> float:
        """The candidate's accuracy at ``precision``; with an ensemble, the mean of its
        replicas' (each measured once per record and precision)."""
        members = net.rec.inputs.get("ensemble")
        if not members:
            return super()._quantized_accuracy(net, precision)
        accs = []
        for key in members:
            rec = self._store.get(key)
            if rec is None:
                raise RuntimeError(f"the ensemble record {net.rec.key[:16]} names replica record {key[:16]}, "
                                   f"which the store lacks")
            accs.append(super()._quantized_accuracy(replace(net, rec=rec, _model=None), precision))
        return sum(accs) / len(accs)

    def _task(self, i: int, arch: Any, geno: dict[str, Any], hw: Any, name: str) -> Any:
        made = len(self._made)
        values, metrics, trained, net = super()._task(i, arch, geno, hw, name)
        metrics.update(accuracy_source="inherited", supernet=net.rec.inputs["supernet"],
                       supernet_epochs=net.rec.epochs, supernet_trained=len(self._made) > made)
        if self.supernets > 1:
            metrics["supernets"] = self.supernets
        if self.split is not None:
            metrics.update(few_shot_edge=self.split.name, few_shot_op=self.split.op_of(geno["cell"]))
        return values, metrics, trained, net
