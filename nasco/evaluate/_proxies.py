"""Zero-cost proxies on the real network nasco builds for a candidate, at initialisation.

Every proxy runs on ``GraphNet(plan_network(arch, cell, input_shape, num_classes), arch)``,
ANN or SNN, built with ``torch.manual_seed(seed)`` (a fresh network per proxy, so one proxy
never sees another's side effects), on one seeded minibatch of the training split.

Data-driven proxies, all "higher is better":

* ``naswot`` (Mellor et al., ICML 2021, "Neural Architecture Search without Training"): the
  binary code of a sample is which units are active (ReLU > 0; in an SNN, which neuron fires at
  which timestep). ``K[i, j] = sum over layers of (N_A - Hamming(c_i, c_j))``, score
  ``log|det K|``.
* ``sahd`` (Kim et al., ECCV 2022, "Neural Architecture Search for Spiking Neural Networks",
  SNASNet): the same kernel with a sparsity-aware Hamming distance, per layer and timestep,
  averaged over them; see :func:`sahd_layer_kernel`.
* ``synflow`` (Tanaka et al., NeurIPS 2020; as a NAS proxy Abdelfattah et al., ICLR 2021,
  "Zero-Cost Proxies for Lightweight NAS"), ``snip`` (Lee et al., ICLR 2019; Abdelfattah et al.:
  ``sum |theta * dL/dtheta|`` over conv/linear weights), ``grad_norm`` (Abdelfattah et al.:
  ``sum over conv/linear layers of ||dL/dW||_2``), ``jacob_cov`` (Mellor et al., arXiv
  2006.04647 v1, as Abdelfattah et al. compute it: correlation matrix of the per-sample input
  Jacobians of the summed logits, eigenvalues lambda, ``-sum(log(lambda + k) + 1/(lambda + k))``
  with ``k = 1e-5``).

Cost proxies, "lower is better": ``params`` (parameter count), ``flops`` (the workload's MACs,
:func:`nasco.nn.plan_workload`, timesteps included) and ``sops`` (synaptic operations: a
conv/linear with spiking input does ``MACs x input spike rate`` accumulates per timestep; one
with dense input does its MACs at every timestep it runs, once when its input is static;
for an ANN ``sops == flops``).

Forward passes for naswot, sahd and the spike rates run in train mode without gradients: BN
normalises with the batch's statistics, as in both papers' reference searches (an initial
network in eval mode has identity BNs, far from how a trained one behaves). The gradient
proxies also run in train mode, as Abdelfattah et al. do; synflow in eval mode (see
:func:`synflow_score`).

Precision: a probe given a :class:`nasco.nn.Precision` scores every proxy but ``params`` on the
initial network quantized by :func:`nasco.nn.quantize` (the quantizer that scores trained
networks), calibrated on the proxy batch (see :meth:`ProxyProbe.network`); synflow calibrates
on its own all-ones input (see :func:`synflow_score`). Fake quantization passes gradients
straight through wherever a value lies inside its grid's range and none where it is clipped
(torch's fake-quantization kernels), so the gradient proxies are those of the quantized network;
in particular a hard-reset fixed-point neuron, whose membrane grid ends at the threshold, passes
none back from a membrane charged past it.
"""
from __future__ import annotations

import difflib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from nasco.core import BUILTIN_OBJECTIVES, EvaluatorBase, Registry, Result
from nasco.evaluate._joint import EnergyTableCache, check_limits, tiling_violation
from nasco.evaluate._precision import as_precision, precision_metric, precision_of
from nasco.evaluate._train import mean_spike_rate, reset_states
from nasco.hw import CostModel
from nasco.nn import Plan, Precision, QuantizedInput, plan_network, plan_workload, quantize
from nasco.space import Candidate, SearchSpace

__all__ = ["DEFAULT_OBJECTIVES", "HW_OBJECTIVES", "PROXIES", "ProxyDef", "ProxyEvaluator", "ProxyProbe",
           "naswot_score", "proxy_scores", "sahd_layer_kernel", "sahd_score", "synflow_score"]

# jacob_cov's eigenvalue offset (Abdelfattah et al.'s code, after Mellor et al. v1).
JACOB_K = 1e-5
# SNASNet's sparsity-aware rescale: 0.5 / (expected normalised Hamming distance + eps). 0.5 is
# that expectation for two codes of rate 0.5, so such codes keep their plain Hamming distance;
# eps = 1e-3 keeps all-silent layers finite (both constants from the SNASNet reference search).
SAHD_REF, SAHD_EPS = 0.5, 1e-3
HW_OBJECTIVES = ("energy", "latency", "area")
# The CLI's default for --evaluator proxy. NASWOT is defined for ANNs and SNNs alike; on
# darts_snn/digits it ranked trained accuracy no better than chance, as did every other
# data-driven proxy (experiments/results/proxy_tau.md): treat it as a weak signal.
DEFAULT_OBJECTIVES = ("naswot", "energy", "latency", "area")


# ------------------------------------------------------------------ code kernels (pure)
def _as_tbn(codes: Any) -> torch.Tensor:
    """Binary codes of one layer as float64 ``[T, B, N]`` (``[B, N]`` means T = 1)."""
    c = torch.as_tensor(codes).to(torch.float64)
    if c.dim() == 2:
        c = c.unsqueeze(0)
    if c.dim() != 3:
        raise ValueError(f"codes must be [B, N] or [T, B, N], got shape {tuple(c.shape)}")
    return c


def _hamming_parts(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(agreements, Hamming distances) between the rows of a binary ``[B, N]`` matrix."""
    h = x @ (1 - x).T + (1 - x) @ x.T
    return x.shape[1] - h, h


def sahd_layer_kernel(x: torch.Tensor) -> torch.Tensor:
    """SNASNet's kernel of one layer at one timestep, codes ``x`` ``[B, N]`` (0/1).

    With ``r_i`` the firing rate of sample i's code, two independent codes of rates r_i and r_j
    differ in a fraction ``r_i (1 - r_j) + (1 - r_i) r_j`` of the units. The Hamming distance is
    scaled by ``0.5 / (that + 1e-3)``: sparse codes, which differ little by chance, are not
    mistaken for similar inputs. ``K[i, j] = N_A - scale_ij * Hamming(c_i, c_j)`` (Kim et al.,
    ECCV 2022, as their reference search computes it; it averages the kernels of every neuron
    call, i.e. layer and timestep, and scores two minibatches, one here).
    """
    x = x.to(torch.float64)
    r = x.mean(dim=1, keepdim=True)
    expected = r @ (1 - r).T + (1 - r) @ r.T
    _agree, h = _hamming_parts(x)
    return x.shape[1] - SAHD_REF / (expected + SAHD_EPS) * h


class _Kernels:
    """Running NASWOT and SAHD kernels over the layers seen so far."""

    def __init__(self) -> None:
        self.naswot: torch.Tensor | None = None
        self.sahd: torch.Tensor | None = None
        self.sahd_terms = 0

    def add(self, codes: Any) -> None:
        c = _as_tbn(codes)
        t, b, n = c.shape
        # NASWOT: a unit at each timestep is one coordinate of the sample's code; this sums the
        # per-timestep agreement counts, the ANN definition applied to the unrolled network.
        agree, _h = _hamming_parts(c.permute(1, 0, 2).reshape(b, t * n))
        self.naswot = agree if self.naswot is None else self.naswot + agree
        # SAHD: one kernel per layer call (SNASNet's neurons run one timestep per call).
        k = sum(sahd_layer_kernel(c[i]) for i in range(t))
        self.sahd = k if self.sahd is None else self.sahd + k
        self.sahd_terms += t

    def scores(self) -> dict[str, float]:
        if self.naswot is None:
            raise ValueError("the network has no ReLU or spiking layer: naswot/sahd are undefined")
        return {"naswot": _logdet(self.naswot), "sahd": _logdet(self.sahd / self.sahd_terms)}


def _logdet(k: torch.Tensor) -> float:
    """log|det K| (numpy's slogdet, as both reference codes use); -inf for a singular K."""
    _sign, ld = np.linalg.slogdet(k.numpy())
    return float(ld)


def naswot_score(layers: Sequence[Any]) -> float:
    """NASWOT of binary codes given per layer as ``[B, N]`` or ``[T, B, N]`` arrays."""
    acc = _Kernels()
    for c in layers:
        acc.add(c)
    return acc.scores()["naswot"]


def sahd_score(layers: Sequence[Any]) -> float:
    """SAHD of binary codes given per layer as ``[B, N]`` or ``[T, B, N]`` arrays."""
    acc = _Kernels()
    for c in layers:
        acc.add(c)
    return acc.scores()["sahd"]


# ------------------------------------------------------------------ synflow
def _neuron_ids(net: Any) -> set[int]:
    return {id(net.module_of(n.name)) for n in net.plan.nodes if n.op == "neuron"}


def _make_positive(net: Any) -> None:
    """Every parameter and buffer of ``net`` but its spiking neurons' replaced by its absolute value."""
    skip = _neuron_ids(net)
    with torch.no_grad():
        for m in net.modules():
            if id(m) in skip:
                continue
            for t in [*m.parameters(recurse=False), *m.buffers(recurse=False)]:
                if t.is_floating_point():
                    t.abs_()


def _ones_input(net: Any) -> torch.Tensor:
    """Synflow's input: all ones, batch 1, float64 (event data enters as (B, T, C, H, W) frames)."""
    enc = next((n.attrs.get("encoding") for n in net.plan.nodes if n.op == "encode"), None)
    shape = (1, net.T, *net.plan.input_shape) if enc == "events" else (1, *net.plan.input_shape)
    return torch.ones(shape, dtype=torch.float64)


def synflow_score(net: Any, precision: Precision | None = None) -> float:
    """Synflow of a freshly built :class:`nasco.nn.GraphNet` (modified in place).

    Every parameter and buffer is replaced by its absolute value (the sign does not matter to
    the score), an all-ones input of batch 1 runs in float64 (conv-heavy NB201 networks score
    ~1e50, beyond float32) with BN in eval mode on its initial statistics, ``R = sum(logits)``,
    score ``sum |theta * dR/dtheta|`` (Tanaka et al., NeurIPS 2020; Abdelfattah et al., ICLR
    2021). Spiking-neuron parameters (a PLIF's time constant) are neither made positive nor
    scored: they are no synapses, and |w| would change the neuron's decay.

    With ``precision`` (not float) the positive network is quantized by :func:`nasco.nn.quantize`,
    calibrated on the all-ones input, and scored as above. A weight grid is symmetric per output
    channel with its scale set by ``max|w|``, so the quantized positive weights are the absolute
    values of the quantized signed ones. Activations and membranes are calibrated on the input
    synflow feeds, not on data: with every weight positive they grow far beyond the data's range,
    and a grid calibrated on data would saturate them, where fake quantization passes no
    gradient.
    """
    net = net.double().eval()
    _make_positive(net)
    ones = _ones_input(net)
    if precision is not None and not precision.is_float():
        net = quantize(net, precision, [ones])
    skip = _neuron_ids(net)
    net.zero_grad()
    reset_states(net)
    out = net(ones)
    out.sum().backward()
    reset_states(net)
    net.requires_grad_(False)  # the products below need no graph
    own = {id(p) for m in net.modules() if id(m) in skip for p in m.parameters()}
    return float(sum(float((p * p.grad).abs().sum()) for p in net.parameters()
                     if p.grad is not None and id(p) not in own))


# ------------------------------------------------------------------ the probe
class ProxyProbe:
    """The proxies of one plan on one batch; shared passes are run once and kept.

    ``make_net()`` builds a fresh float network with ``torch.manual_seed(seed)``; ``network()``
    is the network the proxies score: that one, quantized to ``precision`` when one is given
    (None or a float precision: the float network).
    """

    def __init__(self, plan: Plan, arch: Any, x: torch.Tensor, y: torch.Tensor, *, seed: int,
                 precision: Precision | None = None) -> None:
        self.plan, self.arch, self.x, self.y, self.seed = plan, arch, x, y, int(seed)
        self.precision = None if precision is None or precision.is_float() else precision
        self.workload = plan_workload(plan)
        self._codes: dict[str, Any] | None = None
        self._grads: Any = None

    def make_net(self) -> Any:
        from nasco.nn import GraphNet

        torch.manual_seed(self.seed)
        return GraphNet(self.plan, self.arch)

    def network(self) -> Any:
        """A fresh network to score: :meth:`make_net`'s, or with a precision its copy quantized by
        :func:`nasco.nn.quantize`, calibrated on the proxy batch after its BNs were given that
        batch's statistics."""
        net = self.make_net()
        if self.precision is None:
            return net
        # The proxy batch is the very input the proxies feed, so the grids span the values they
        # see (a seeded calibration set from the training split would be other images, and more
        # passes). quantize calibrates in eval mode, while the proxies run in train mode, where
        # BN normalises with the batch's statistics; an initial network's BNs hold identity
        # statistics, so without the batch's the grids miss the values the proxies see (measured
        # on digits: 30 % of a darts network's activations saturated at 8 bits, and at 4/6/8 bits
        # a darts_snn network's snip fell from 2.9 to 0.48, as saturated values pass no gradient).
        _load_batch_statistics(net, self.x)
        return quantize(net, self.precision, [self.x])

    def weighted(self, net: Any) -> list[torch.Tensor]:
        """Weights of the conv and linear layers, the layers Abdelfattah et al. score."""
        return [_layer(net, n.name).weight for n in self.plan.nodes if n.op in ("conv", "linear")]

    # ---------------------------------------------------------- shared passes
    def codes_pass(self) -> dict[str, Any]:
        """One no-grad train-mode pass: NASWOT/SAHD kernels and the input spike rates."""
        if self._codes is None:
            net = self.network().train()
            acc = _Kernels()
            acts = [node for node in self.plan.nodes if node.op in ("neuron", "relu")]
            handles = [_hook_codes(net, node, acc) for node in acts]
            reset_states(net)
            try:
                with torch.no_grad(), net.spike_rate_recorder() as rec:
                    net(self.x)
            finally:
                for h in handles:
                    h.remove()
                reset_states(net)
            self._codes = {**acc.scores(), "rates": rec.rates()}
        return self._codes

    def grads(self) -> Any:
        """A network after one train-mode cross-entropy backward pass on the batch."""
        if self._grads is None:
            net = self.network().train()
            reset_states(net)
            F.cross_entropy(net(self.x), self.y).backward()
            reset_states(net)
            self._grads = net
        return self._grads

    def rates(self) -> dict[str, float]:
        """Input spike rate of each conv/linear with spiking input, on the batch at init."""
        return dict(self.codes_pass()["rates"]) if self.plan.spiking else {}

    def score(self, name: str) -> float:
        return float(PROXIES[name].fn(self))


def _layer(net: Any, name: str) -> torch.nn.Module:
    """The conv, linear or other module of node ``name``, also where a quantized network reads its
    input through a :class:`~nasco.nn.QuantizedInput`."""
    m = net.module_of(name)
    return m.layer if isinstance(m, QuantizedInput) else m


def _load_batch_statistics(net: Any, x: torch.Tensor) -> None:
    """Set the running statistics of every batch norm of ``net`` to those of batch ``x`` (one
    no-grad train-mode pass, cumulative averaging over that one batch)."""
    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: after one batch, that batch's statistics
    net.train()
    reset_states(net)
    try:
        with torch.no_grad():
            net(x)
    finally:
        reset_states(net)
        for m, momentum in zip(bns, momenta):
            m.momentum = momentum


def _hook_codes(net: Any, node: Any, acc: _Kernels):
    """Feed the binary code of a neuron or ReLU node to ``acc`` during forward passes.

    Neurons are modules ([T, B, ...] spikes out). GraphNet applies ReLU as a function, so a
    ReLU's code is read at a module next to it: the input of the conv (or other module) that
    consumes it, else the output of the module that feeds it (relu(v) > 0 iff v > 0).
    """
    if node.op == "neuron":
        def on_out(_m, _args, out):
            acc.add((out.detach() > 0).reshape(out.shape[0], out.shape[1], -1))
        return net.module_of(node.name).register_forward_hook(on_out)

    if net.T != 1:  # pragma: no cover - plans put ReLUs in ANNs only
        raise RuntimeError(f"relu node {node.name} in a network with {net.T} timesteps")

    def on_value(v: torch.Tensor) -> None:
        acc.add((v.detach() > 0).reshape(1, v.shape[0], -1))

    mods = {n.name for n in net.plan.nodes if n.op in ("conv", "bn", "linear", "maxpool", "avgpool")}
    consumers = [n.name for n in net.plan.nodes if node.name in n.inputs and n.name in mods]
    feed = node.inputs[0]
    if consumers:  # in a quantized network, after the consumer's input quantizer: what it computes with
        return _layer(net, consumers[0]).register_forward_pre_hook(lambda _m, args: on_value(args[0]))
    if feed in mods:
        return net.module_of(feed).register_forward_hook(lambda _m, _args, out: on_value(out))
    raise RuntimeError(f"relu node {node.name}: neither a module consumes it nor feeds it; "
                       "its activation code cannot be observed")


# ------------------------------------------------------------------ the proxies
def _naswot(p: ProxyProbe) -> float:
    return p.codes_pass()["naswot"]


def _sahd(p: ProxyProbe) -> float:
    return p.codes_pass()["sahd"]


def _synflow(p: ProxyProbe) -> float:
    return synflow_score(p.make_net(), p.precision)


def _snip(p: ProxyProbe) -> float:
    net = p.grads()
    return float(sum(float((w.detach() * w.grad).abs().sum()) for w in p.weighted(net) if w.grad is not None))


def _grad_norm(p: ProxyProbe) -> float:
    net = p.grads()
    return float(sum(float(w.grad.norm()) for w in p.weighted(net) if w.grad is not None))


def _jacob_cov(p: ProxyProbe) -> float:
    net = p.network().train()
    x = p.x.clone().requires_grad_(True)
    reset_states(net)
    out = net(x)
    out.backward(torch.ones_like(out))
    reset_states(net)
    if x.grad is None:  # binary event input: thresholded, no gradient reaches it
        return float("nan")
    jac = x.grad.reshape(len(x), -1).double().numpy()
    with np.errstate(all="ignore"):  # a constant Jacobian row gives NaN: reported, not raised
        corr = np.corrcoef(jac)
    if not np.isfinite(corr).all():
        return float("nan")
    lam = np.linalg.eigvalsh(corr)
    return float(-np.sum(np.log(lam + JACOB_K) + 1.0 / (lam + JACOB_K)))


def _params(p: ProxyProbe) -> float:
    # The float network's: the parameter count is the architecture's at any bit width (a
    # fixed-point PLIF keeps its trained leak as a constant, not a parameter).
    return float(sum(t.numel() for t in p.make_net().parameters()))


def _flops(p: ProxyProbe) -> float:
    return float(p.workload.macs)


def _sops(p: ProxyProbe) -> float:
    rates = p.rates()
    total = 0.0
    for layer in p.workload.layers:
        if layer.kind not in ("conv", "linear"):
            continue
        rate = rates[layer.name] if layer.spiking_input else 1.0
        total += layer.macs * rate * layer.timesteps
    return total


@dataclass(frozen=True)
class ProxyDef:
    """A proxy: ``fn(probe) -> float`` and whether higher ('max') or lower ('min') is better."""

    fn: Callable[[ProxyProbe], float]
    sense: str
    summary: str


# Name -> proxy, in the order reports list them; the one definition of every zero-cost proxy
# (nasco.predictors scores some of them per cell).
PROXIES: Registry[ProxyDef] = Registry("proxy")
for _name, _d in (
    ("sahd", ProxyDef(_sahd, "max", "SNASNet sparsity-aware Hamming kernel log-det (Kim et al., ECCV 2022)")),
    ("naswot", ProxyDef(_naswot, "max", "activation-code Hamming kernel log-det (Mellor et al., ICML 2021)")),
    ("synflow", ProxyDef(_synflow, "max", "synaptic flow (Tanaka et al. 2020; Abdelfattah et al. 2021)")),
    ("snip", ProxyDef(_snip, "max", "sum |theta * dL/dtheta| (Lee et al. 2019; Abdelfattah et al. 2021)")),
    ("grad_norm", ProxyDef(_grad_norm, "max", "sum of per-layer gradient norms (Abdelfattah et al. 2021)")),
    ("jacob_cov", ProxyDef(_jacob_cov, "max", "input-Jacobian correlation (Mellor et al. v1, 2006.04647)")),
    ("params", ProxyDef(_params, "min", "parameter count")),
    ("flops", ProxyDef(_flops, "min", "MACs of the workload, timesteps included")),
    ("sops", ProxyDef(_sops, "min", "synaptic operations: spiking-input MACs x input spike rate x T")),
):
    PROXIES.register(_name, _d)



def check_proxy_names(names: Sequence[str]) -> tuple[str, ...]:
    names = tuple(names)
    for n in names:
        PROXIES.get(n)  # an unknown name raises, listing the proxies and the closest ones
    return names


def proxy_batch(data: Any, batch_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random minibatch of the training split (all of it when smaller)."""
    if batch_size < 2:
        raise ValueError(f"batch_size={batch_size}: the kernels and BN need at least 2 samples")
    g = torch.Generator().manual_seed(int(seed))
    idx = torch.randperm(len(data.y_train), generator=g)[:batch_size]
    return data.x_train[idx], data.y_train[idx]


def proxy_scores(arch: Any, cell: Any, data: Any, names: Sequence[str], *, seed: int, batch_size: int = 64,
                 batch_seed: int | None = None) -> dict[str, float]:
    """The proxies ``names`` of the network of ``cell`` in the resolved space ``arch``.

    The weights are initialised with ``torch.manual_seed(seed)``; the batch is drawn from
    ``data.x_train`` with ``batch_seed`` (default: ``seed``).
    """
    names = check_proxy_names(names)
    plan = plan_network(arch, cell, data.input_shape, data.num_classes)
    x, y = proxy_batch(data, batch_size, seed if batch_seed is None else batch_seed)
    probe = ProxyProbe(plan, arch, x, y, seed=seed)
    return {n: probe.score(n) for n in names}


# ------------------------------------------------------------------ the evaluator
@dataclass
class ProxyEvaluator(EnergyTableCache, EvaluatorBase):
    """Scores a candidate without training: zero-cost proxies plus the cost model.

    ``objectives`` are proxy names (:data:`PROXIES`), ``macs`` and, with an accelerator in the
    space, ``energy``/``latency``/``area``: the workload costed with the input spike rates of
    the initial network on the proxy batch (a trained network's rates differ; the metrics say
    ``spike_rates_from: init``). ``record`` proxies go into the metrics only. Design specs mark
    a candidate infeasible as in :class:`TrainCostEvaluator`. A NaN or infinite objective makes
    the evaluation fail with the reason.

    Precision: with an accelerator in the space, every proxy but ``params``, and the spike rates
    the costing uses, are those of the initial network quantized by :func:`nasco.nn.quantize`
    (the quantizer :class:`TrainCostEvaluator` scores trained networks with) to the bit widths of
    the candidate's template, under the rule TrainCostEvaluator applies (32 bits and more: float;
    the membrane only for a spiking network), calibrated on the proxy batch (see
    :meth:`ProxyProbe.network`). The metrics record the template's bits (``precision``).
    Without an accelerator the proxies are the float network's.

    ``batch_seed`` draws one minibatch for every candidate, so that scores compare like for
    like; None draws it with each evaluation's seed. The weights use the evaluation's seed.
    Single-task spaces only.
    """

    space: SearchSpace
    data: Any  # nasco.evaluate.DataSplits
    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES
    batch_size: int = 64
    batch_seed: int | None = 0
    record: tuple[str, ...] = ("params", "flops", "sops")
    cheap: ClassVar[bool] = True
    _tables: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.objectives = tuple(self.objectives)
        if self.space.multi_task:
            raise ValueError("ProxyEvaluator scores single-task spaces; use TrainCostEvaluator for "
                             "multi-task")
        known = (*PROXIES, "macs", *HW_OBJECTIVES)
        for o in self.objectives:
            if o not in known:
                close = difflib.get_close_matches(o, known, n=1)
                why = " (it needs training or a lookup table)" if o in BUILTIN_OBJECTIVES else ""
                raise ValueError(f"objective '{o}' cannot be scored by proxies{why}; known: "
                                 f"{', '.join(known)}"
                                 + (f"; did you mean '{close[0]}'?" if close and not why else ""))
        check_proxy_names(self.record)
        hw = self.space.hw
        need_hw = [o for o in self.objectives if o in HW_OBJECTIVES]
        if need_hw and hw is None:
            raise ValueError(f"objectives {need_hw} need an accelerator template in the space")
        if self.batch_size < 2:
            raise ValueError(f"batch_size={self.batch_size} must be >= 2")
        self.limits: dict[str, float] = hw.limits() if hw is not None else {}
        self._preload_tables(hw)

    def describe(self) -> dict[str, Any]:
        # proxy_precision: the run's proxies are those of networks quantized to each candidate's
        # template ('template') or of float networks ('float', no accelerator).
        return {"proxy_batch_size": self.batch_size, "proxy_batch_seed": self.batch_seed,
                "proxy_record": list(self.record),
                "proxy_precision": "template" if self.space.hw is not None else "float"}

    def evaluate(self, candidate: Candidate, seed: int) -> Result:
        start = time.perf_counter()
        probe, hw = self._probe(candidate, seed)
        names = list(dict.fromkeys([o for o in self.objectives if o in PROXIES] + list(self.record)))
        try:
            scores = {n: probe.score(n) for n in names}
        except (RuntimeError, ValueError, np.linalg.LinAlgError) as exc:
            return Result.failed(f"{type(exc).__name__}: {exc}", time.perf_counter() - start)
        values: dict[str, float] = {**scores, "macs": float(probe.workload.macs)}
        metrics = self._metrics(probe, scores, hw, start)
        bad = [f"{o} is {values[o]}" for o in self.objectives if o in values and not math.isfinite(values[o])]
        if bad:
            return Result.failed(f"proxy {'; '.join(bad)} (a singular kernel, or no gradient reaches a "
                                 "layer)",
                                 time.perf_counter() - start, **metrics)
        if hw is not None:
            report = CostModel(hw, self.table_of(hw)).cost(probe.workload, probe.rates())
            tot = report.total()
            values.update(energy=tot["energy_j"], latency=tot["latency_s"], area=tot["area_mm2"])
            metrics.update(cycles=tot["cycles"], utilization=tot["utilization"],
                           energy_breakdown=tot["energy"], ops=tot["ops"])
            if self.space.hw.name != getattr(hw, "name", None):
                metrics["template"] = hw.name
            if report.infeasible:
                metrics["tiling_infeasible"] = list(report.infeasible)
        limits = self.space.hw.limits(candidate.hw) if self.space.hw is not None else {}
        violations = check_limits(values, limits)
        if hw is not None:
            violations.update(tiling_violation(report))
        objectives = {o: float(values[o]) for o in self.objectives}
        return Result("infeasible" if violations else "ok", objectives, metrics, violations, None,
                      time.perf_counter() - start)

    def _probe(self, candidate: Candidate, seed: int) -> tuple[ProxyProbe, Any]:
        """The candidate's probe, at its template's precision when the space has an accelerator,
        and its resolved template (None without one)."""
        arch, hw = self.space.resolve(candidate)
        plan = plan_network(arch, candidate.arch["cell"], self.data.input_shape, self.data.num_classes)
        x, y = proxy_batch(self.data, self.batch_size, seed if self.batch_seed is None else self.batch_seed)
        precision = as_precision(precision_of(hw), spiking=plan.spiking) if hw is not None else None
        return ProxyProbe(plan, arch, x, y, seed=seed, precision=precision), hw

    @staticmethod
    def _metrics(probe: ProxyProbe, scores: dict[str, float], hw: Any, start: float) -> dict[str, Any]:
        """The scores (a non-finite one as its repr), the workload's size, the precision (the
        template's bits, as :class:`TrainCostEvaluator` records them) and the spike rates."""
        metrics: dict[str, Any] = {k: (v if math.isfinite(v) else repr(v)) for k, v in scores.items()}
        metrics.update(macs=probe.workload.macs, layers=len(probe.workload), proxy_batch=len(probe.y),
                       proxy_seconds=time.perf_counter() - start)
        if hw is not None:
            metrics["precision"] = precision_metric(precision_of(hw))
        if probe.plan.spiking:
            rates = probe.rates()
            metrics["mean_spike_rate"] = mean_spike_rate(rates)
            metrics["spike_rates"] = {k: round(v, 6) for k, v in rates.items()}
            metrics["spike_rates_from"] = "init"
        return metrics
