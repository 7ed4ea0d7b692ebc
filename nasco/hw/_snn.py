"""SNN energy beside its ANN baselines: the literature estimate, ANN twins and break-even rates.

Spiking papers usually quote E = E_MAC·FLOPs(encoding layer) + E_AC·Σ_l T·fr_l·FLOPs_l,
which counts arithmetic only. Yan et al. ("Reconsidering the energy efficiency of spiking
neural networks", arXiv 2409.08290) show that once data movement counts, an SNN with T = 5
beats an ANN whose activations have ⌈log2(T+1)⌉ bits only below about a 5.7 % spike rate,
and ask that every SNN figure be reported beside its ANN and quantised-ANN baselines. This
module does that on one accelerator template with the full :class:`CostModel`: the SNN on
the template as given (spiking PEs on a ``pe.type: sop`` template such as sata_like), its
twins on the same template with MAC PEs (:func:`ann_template`):

* :func:`literature_energy`: the common estimate, for reference;
* :func:`ann_twin` / :func:`quantised_twin`: the same layers as an ANN (ReLU in place of
  neurons) and the activation width ⌈log2(T+1)⌉ that carries as much as T binary spikes;
* :func:`compare`: SNN, ANN twin and quantised ANN, each costed in full;
* :func:`break_even_rate`: the uniform spike rate at which the SNN costs what a baseline does;
* :func:`snn_twin`: the figures an evaluation records for a spiking candidate: its
  ⌈log2(T+1)⌉-bit twin's energy and latency, ``snn_advantage`` and the break-even rate.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from nasco.dsl import AcceleratorTemplate, EnergyTable
from nasco.hw._cost import CostModel, CostReport
from nasco.hw._workload import Workload

__all__ = ["BASELINES", "FP_ENERGY_PJ", "activation_bits_for", "ann_template", "ann_twin", "break_even_rate",
           "compare", "literature_energy", "quantised_template", "quantised_twin", "snn_energy_line",
           "snn_timesteps", "snn_twin", "twin_total"]

# Floating-point MAC and accumulate (add) energies at 45 nm in pJ (Horowitz, "Computing's
# energy problem", ISSCC 2014; as tabulated in docs/REFERENCES.md, "SNN energy"). Integer
# precision takes mac_8b / add_8b from the energy table instead, so it follows the template.
FP_ENERGY_PJ: dict[str, tuple[float, float]] = {
    "fp32": (4.6, 0.9),
    "fp16": (1.5, 0.4),
}
PRECISIONS = ("int8",) + tuple(FP_ENERGY_PJ)

# What break_even_rate can compare against.
BASELINES = ("quantised", "ann")


# ---------------------------------------------------------------------- helpers
def activation_bits_for(timesteps: int) -> int:
    """⌈log2(T+1)⌉: the bits that count 0..T spikes (Yan et al., arXiv 2409.08290).

    Computed as ``T.bit_length()``, which equals ⌈log2(T+1)⌉ for every integer T >= 1
    without floating-point rounding (T = 5 -> 3, T = 7 -> 3, T = 8 -> 4).
    """
    t = int(timesteps)
    if t != timesteps or t < 1:
        raise ValueError(f"timesteps must be a positive integer; got {timesteps!r}")
    return t.bit_length()


def snn_timesteps(workload: Workload) -> int:
    """The SNN's T: the timestep count of its layers that run more than once.

    A directly encoded stem runs once (timesteps 1) and is not counted; a workload whose
    layers disagree on T > 1 is rejected, since its quantised twin has no single width.
    """
    steps = sorted({layer.timesteps for layer in workload.layers if layer.timesteps > 1})
    if len(steps) > 1:
        raise ValueError(f"workload {workload.name!r}: layers run for different timesteps {steps}; "
                         "one T per network is needed to pick the quantised ANN's width")
    return steps[0] if steps else 1


def _spiking_names(workload: Workload) -> list[str]:
    # Spike rates are measured at the inputs of convs and linears; a pool of spikes is
    # costed by its bit width, not by a rate.
    return [layer.name for layer in workload.layers
            if layer.spiking_input and layer.kind in ("conv", "linear")]


def _rates(workload: Workload, spike_rates: float | Mapping[str, float]) -> dict[str, float]:
    """Layer name -> input spike rate for every spiking-input layer.

    A float is one rate for every such layer. A mapping must name them all: the cost model
    would otherwise charge a missing layer at rate 1.0, and a comparison that silently mixes
    measured and assumed rates is worse than an error.
    """
    names = _spiking_names(workload)
    if isinstance(spike_rates, Mapping):
        missing = [n for n in names if n not in spike_rates]
        if missing:
            shown = ", ".join(missing[:5]) + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else "")
            raise ValueError(f"spike_rates has no rate for spiking-input layer(s) {shown} of workload "
                             f"{workload.name!r}; give every such layer a rate, or pass one float "
                             "for a uniform rate")
        rates = {n: float(spike_rates[n]) for n in names}
    else:
        rates = {n: float(spike_rates) for n in names}
    for n, r in rates.items():
        if not 0.0 <= r <= 1.0:
            raise ValueError(f"spike rate of layer {n!r} is {r}; a rate is a fraction in [0, 1]")
    return rates


def _op_energies(table: EnergyTable, precision: str) -> tuple[float, float]:
    if precision == "int8":
        return table.energy_j("mac_8b"), table.energy_j("add_8b")
    if precision in FP_ENERGY_PJ:
        mac, ac = FP_ENERGY_PJ[precision]
        return mac * 1e-12, ac * 1e-12
    raise ValueError(f"precision {precision!r} is unknown; known: {', '.join(PRECISIONS)}")


# ---------------------------------------------------------------------- literature estimate
def literature_energy(workload: Workload, spike_rates: float | Mapping[str, float], table: EnergyTable,
                      *, precision: str = "int8") -> float:
    """The common SNN estimate in J: E_MAC·MACs(non-spiking-input layers) + E_AC·Σ_l T_l·fr_l·MACs_l.

    The encoding layer (the first conv, fed with the image) sees real values and is charged
    one MAC per multiply-accumulate; every spiking-input layer is charged one accumulate per
    input spike, T·fr·MACs of them. Any other layer with real-valued input (a classifier on
    average-pooled spikes) is charged like the encoding layer, at E_MAC per MAC for each of
    the timesteps it runs. Neuron updates and all data movement are ignored, as in the
    papers that use this estimate. ``precision``: 'int8' takes ``mac_8b``/``add_8b`` from the
    energy table; 'fp32'/'fp16' take Horowitz's 45 nm constants (:data:`FP_ENERGY_PJ`).
    ``spike_rates``: one float for every spiking layer, or a mapping naming each of them.
    """
    e_mac, e_ac = _op_energies(table, precision)
    rates = _rates(workload, spike_rates)
    mac_ops = 0  # integers: exact until the final multiplication
    ac_ops = 0.0
    for layer in workload.layers:
        if layer.kind not in ("conv", "linear"):  # neurons, pools and adds: no MACs
            continue
        if layer.spiking_input:
            ac_ops += layer.timesteps * rates[layer.name] * layer.macs
        else:
            mac_ops += layer.timesteps * layer.macs
    return e_mac * mac_ops + e_ac * ac_ops


# ---------------------------------------------------------------------- ANN twins
def ann_twin(workload: Workload) -> Workload:
    """The same conv/linear layers run once on real-valued input, neuron layers dropped.

    This is the ANN with ReLU in place of every neuron (ReLU is not costed; pooling and adds are,
    as in the SNN). Every output is an activation (``output_bits`` 0): no LIF fires on it and no
    pool sees spikes.
    """
    layers = tuple(dataclasses.replace(layer, spiking_input=False, timesteps=1, output_bits=0)
                   for layer in workload.layers if layer.kind != "neuron")
    return Workload(layers, name=f"{workload.name}.ann", meta=dict(workload.meta))


def quantised_twin(workload: Workload, timesteps: int) -> tuple[Workload, int]:
    """The ANN twin and its activation width ⌈log2(T+1)⌉ (Yan et al., arXiv 2409.08290).

    The layers are those of :func:`ann_twin`; the width takes effect through the template
    (:func:`quantised_template`), since the cost model reads operand widths from it.
    """
    bits = activation_bits_for(timesteps)
    twin = ann_twin(workload)
    return Workload(twin.layers, name=f"{workload.name}.q{bits}", meta=dict(workload.meta)), bits


def _keep_source(new: AcceleratorTemplate, template: AcceleratorTemplate) -> AcceleratorTemplate:
    if hasattr(template, "source"):  # the file it came from (see nasco.dsl._load)
        object.__setattr__(new, "source", template.source)
    return new


def ann_template(template: AcceleratorTemplate) -> AcceleratorTemplate:
    """The ANN baselines' accelerator: ``template`` with MAC PEs (``pe.type: mac``).

    Array, dataflow, buffers (a membrane buffer included, which the ANN leaves unused),
    bandwidth, clock, bit widths and energy table stay those of ``template``, so the SNN and
    its twins differ only in what a PE computes. A template that already has MAC PEs is
    returned unchanged.
    """
    if template.pe.type == "mac":
        return template
    pe = dataclasses.replace(template.pe, type="mac", skip_zero_spikes=False)
    return _keep_source(dataclasses.replace(template, pe=pe), template)


def quantised_template(template: AcceleratorTemplate, act_bits: int) -> AcceleratorTemplate:
    """``template`` with ``bits.activation = act_bits``; weights, accumulator and membrane kept."""
    new = dataclasses.replace(template, bits=dataclasses.replace(template.bits, activation=int(act_bits)))
    return _keep_source(new, template)


# ---------------------------------------------------------------------- full cost model
def _summary(rep: CostReport) -> dict[str, Any]:
    tot = rep.total()
    return {"energy_j": tot["energy_j"], "energy": tot["energy"], "latency_s": tot["latency_s"],
            "cycles": tot["cycles"], "macs": tot["macs"], "ops": tot["ops"], "area_mm2": tot["area_mm2"]}


def _uniform(workload: Workload, rate: float) -> dict[str, float]:
    """One rate for every spiking-input layer and every neuron layer (the maps neurons emit
    have their own rates where spikes are not dense, see :meth:`CostModel.cost`)."""
    names = _spiking_names(workload) + [layer.name for layer in workload.layers if layer.kind == "neuron"]
    return {n: float(rate) for n in names}


def _affine(template: AcceleratorTemplate) -> bool:
    """Whether the SNN's energy is affine in a uniform rate on ``template``: dense spike maps
    (sparse formats make buffer and DRAM traffic, and the DRAM tiling, follow the rate)."""
    return template.spikes.format == "dense"


def snn_energy_line(workload: Workload, template: AcceleratorTemplate,
                    table: EnergyTable) -> tuple[float, float]:
    """(E(0), dE/dr) of the SNN's total CostModel energy in J at a uniform spike rate r.

    On a template with dense spike maps (``spikes.format: dense``) only the gated
    accumulates and the accumulator/weight register updates they cause scale with the rate
    (``ops = macs · r`` in :meth:`CostModel.cost`); SRAM, DRAM and neuron energy do not
    depend on it. So E(r) = E(0) + r·(E(1) − E(0)) on [0, 1] exactly, and two
    evaluations give the line.
    """
    cm = CostModel(template, table)
    e0 = float(cm.cost(workload, spike_rates=_uniform(workload, 0.0)).energy_j.sum())
    e1 = float(cm.cost(workload, spike_rates=_uniform(workload, 1.0)).energy_j.sum())
    return e0, e1 - e0


def _energy_at(workload: Workload, model: CostModel, rate: float) -> float:
    return float(model.cost(workload, spike_rates=_uniform(workload, rate)).energy_j.sum())


def _crossing(workload: Workload, template: AcceleratorTemplate, table: EnergyTable, target: float) -> float:
    """The uniform rate in [0, 1] where the SNN's energy reaches ``target`` on a template whose
    spike maps are not dense; nan / inf as in :func:`_solve`. The energy is non-decreasing in
    the rate (every format's bits per element are), so bisection finds the crossing (brentq,
    to a rate tolerance of 1e-12)."""
    from scipy.optimize import brentq

    model = CostModel(template, table)
    e0, e1 = _energy_at(workload, model, 0.0), _energy_at(workload, model, 1.0)
    if e1 <= e0:
        raise ValueError("the SNN's energy does not depend on the spike rate (no spiking-input "
                         "layer in the workload?); there is no break-even rate")
    if target < e0:
        return math.nan
    if target > e1:
        return math.inf
    return float(brentq(lambda r: _energy_at(workload, model, r) - target, 0.0, 1.0, xtol=1e-12))


def _solve(line: tuple[float, float], target: float, extrapolate: bool) -> float:
    e0, slope = line
    if slope <= 0.0:
        raise ValueError("the SNN's energy does not depend on the spike rate (no spiking-input "
                         "layer in the workload?); there is no break-even rate")
    r = (target - e0) / slope
    if extrapolate:
        return r
    if r < 0.0:
        return math.nan  # the SNN costs more even when no input spikes
    if r > 1.0:
        return math.inf  # the SNN costs less even when every input spikes
    return r


def _baseline(workload: Workload, template: AcceleratorTemplate, table: EnergyTable,
              against: str) -> tuple[Workload, AcceleratorTemplate, int]:
    if against == "quantised":
        twin, bits = quantised_twin(workload, snn_timesteps(workload))
        return twin, quantised_template(template, bits), bits
    if against == "ann":
        return ann_twin(workload), template, int(template.bits.activation)
    raise ValueError(f"against={against!r} is unknown; known: {', '.join(BASELINES)}")


def break_even_rate(workload: Workload, template: AcceleratorTemplate, table: EnergyTable, *,
                    against: str = "quantised", extrapolate: bool = False) -> float:
    """The uniform input spike rate r at which the SNN's total energy equals the baseline's.

    ``against='quantised'``: the ANN twin on the template with MAC PEs (:func:`ann_template`)
    and ``bits.activation`` = ⌈log2(T+1)⌉; ``'ann'``: the ANN twin on MAC PEs at the
    template's own widths. The SNN runs on ``template`` as given. The SNN is cheaper
    below the returned rate and dearer above it. Without a crossing in [0, 1]:

    * ``nan``: the SNN costs more at every rate, even r = 0 (it never breaks even);
    * ``inf``: the SNN costs less at every rate, even r = 1.

    ``extrapolate=True`` returns the crossing of the (affine) energy line wherever it lies,
    negative or above 1, to show how far from [0, 1] it is; it needs dense spike maps, on
    which the energy is affine in the rate. With a sparse ``spikes.format`` the crossing is
    found by bisection on [0, 1]. The template must be resolved.
    """
    base_wl, base_t, _bits = _baseline(workload, ann_template(template), table, against)
    target = float(CostModel(base_t, table).cost(base_wl).energy_j.sum())
    if not _affine(template):
        if extrapolate:
            raise ValueError("extrapolate needs dense spike maps (the energy is then affine in the rate); "
                             f"template {template.name!r} has spikes.format "
                             f"{template.spikes.format!r}")
        return _crossing(workload, template, table, target)
    return _solve(snn_energy_line(workload, template, table), target, extrapolate)


def compare(workload: Workload, spike_rates: float | Mapping[str, float], template: AcceleratorTemplate,
            table: EnergyTable) -> dict[str, Any]:
    """The SNN beside its ANN twin and its ⌈log2(T+1)⌉-bit quantised twin, on one template.

    The SNN runs on ``template``, the twins on the same template with MAC PEs
    (:func:`ann_template`). Each is costed with the full :class:`CostModel` (energy total and
    breakdown, latency,
    cycles). Also returned: the literature estimate of the SNN (and of the ANN twin, E_MAC per
    MAC), the SNN's energy ratio to each baseline, and the break-even rates against both
    (see :func:`break_even_rate`; ``*_extrapolated`` gives the unclipped crossing, None where
    the spike maps are not dense). ``energy_line`` is None there too.
    """
    rates = _rates(workload, spike_rates)
    T = snn_timesteps(workload)
    snn_model = CostModel(template, table)
    # The maps neurons emit: one float rate covers them too; a mapping gives them by name
    # (read only where spikes are not dense, see CostModel.cost).
    neurons = [layer.name for layer in workload.layers if layer.kind == "neuron"]
    if isinstance(spike_rates, Mapping):
        emitted = {n: float(spike_rates[n]) for n in neurons if n in spike_rates}
    else:
        emitted = {n: float(spike_rates) for n in neurons}
    snn = _summary(snn_model.cost(workload, spike_rates={**rates, **emitted}))
    ann_t = ann_template(template)
    ann_wl = ann_twin(workload)
    ann = _summary(CostModel(ann_t, table).cost(ann_wl))
    q_wl, bits = quantised_twin(workload, T)
    q_template = quantised_template(ann_t, bits)
    quant = _summary(CostModel(q_template, table).cost(q_wl))
    affine = _affine(template)
    line = snn_energy_line(workload, template, table) if _spiking_names(workload) and affine else None
    be: dict[str, float | None] = {}
    for name, base in (("quantised", quant), ("ann", ann)):
        if line:
            be[name] = _solve(line, base["energy_j"], False)
            be[f"{name}_extrapolated"] = _solve(line, base["energy_j"], True)
        else:  # no spiking layer, or a sparse spike format (no line to extrapolate)
            be[name] = (_crossing(workload, template, table, base["energy_j"])
                        if _spiking_names(workload) else None)
            be[f"{name}_extrapolated"] = None
    b = template.bits
    return {
        "workload": workload.name,
        "timesteps": T,
        "spike_rates": rates,
        "bits": {"weight": int(b.weight), "activation": int(b.activation), "quantised_activation": bits},
        "snn": snn,
        "ann": ann,
        "quantised": quant,
        "literature": {"snn_j": literature_energy(workload, rates, table),
                       "ann_j": literature_energy(ann_wl, 0.0, table)},
        "ratio": {"snn_over_ann": snn["energy_j"] / ann["energy_j"],
                  "snn_over_quantised": snn["energy_j"] / quant["energy_j"]},
        "energy_line": {"e0_j": line[0], "slope_j": line[1]} if line else None,
        "break_even": be,
    }


def twin_total(workload: Workload, template: AcceleratorTemplate,
               table: EnergyTable) -> tuple[dict[str, Any], int]:
    """The :meth:`CostReport.total` of the spiking ``workload``'s ⌈log2(T+1)⌉-bit ANN twin on
    ``template`` with MAC PEs, and that width."""
    q_wl, bits = quantised_twin(workload, snn_timesteps(workload))
    return CostModel(quantised_template(ann_template(template), bits), table).cost(q_wl).total(), bits


def snn_twin(workload: Workload, template: AcceleratorTemplate, table: EnergyTable,
             snn: Mapping[str, float]) -> dict[str, Any]:
    """What an evaluation records for a spiking network beside its own cost on ``template``.

    ``snn`` holds the network's own totals at its measured spike rates (``energy_j``,
    ``latency_s``: :meth:`CostReport.total` on ``template``). The twin is the same
    architecture as a ⌈log2(T+1)⌉-bit ANN on the same template with MAC PEs
    (:func:`quantised_twin`, :func:`quantised_template` of :func:`ann_template`). Returns
    ``twin_energy`` (J), ``twin_latency`` (s), ``twin_bits``, ``snn_advantage`` = twin energy /
    SNN energy (above 1: the SNN is cheaper), ``latency_ratio`` = twin latency / SNN latency,
    and ``break_even_rate``: the uniform spike rate at which the SNN's energy equals the twin's
    (:func:`break_even_rate`), None when there is none in [0, 1], with ``break_even`` saying why
    (``"never"``: the SNN costs more even at rate 0; ``"always"``: less even at rate 1;
    ``"none"``: no layer takes spikes; else ``"rate"``).
    """
    tot, bits = twin_total(workload, template, table)
    out: dict[str, Any] = {"twin_energy": tot["energy_j"], "twin_latency": tot["latency_s"],
                           "twin_bits": bits,
                           "snn_advantage": tot["energy_j"] / snn["energy_j"],
                           "latency_ratio": tot["latency_s"] / snn["latency_s"]}
    r = None
    if _spiking_names(workload):
        if _affine(template):
            r = _solve(snn_energy_line(workload, template, table), tot["energy_j"], False)
        else:
            r = _crossing(workload, template, table, tot["energy_j"])
    if r is None:
        out.update(break_even_rate=None, break_even="none")
    elif math.isnan(r):
        out.update(break_even_rate=None, break_even="never")
    elif math.isinf(r):
        out.update(break_even_rate=None, break_even="always")
    else:
        out.update(break_even_rate=float(r), break_even="rate")
    return out
