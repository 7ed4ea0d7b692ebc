"""Published SNN-vs-ANN hardware break-evens reproduced with nasco's cost model.

Yan, Bai, Tang and Wong, "Reconsidering the Energy Efficiency of Spiking Neural Networks Inference
from Analytical Perspectives", arXiv 2409.08290 ("Yan v4"; v2 is the July 2025 version): under
their typical neuromorphic hardware a rate-coded SNN at T = 5 beats its ceil(log2(T+1)) = 3-bit
QNN twin only below a 5.7 % spike rate (v4 abstract); v2 gave below 6.4 % for T in 5..10.

Their setting is the template search_spaces/yan_neuromorphic.yaml with the energy table
search_spaces/yan_22nm.yaml (each constant sourced there). The workload is their headline layer:
N_src = 4096 inputs, 4-bit weights, here 4096 integrate-and-fire neurons fed by the layer (a fused
neuron layer). nasco.hw._snn.break_even_rate gives the uniform spike rate at which the SNN's
energy equals its quantised twin's (same layer, MAC PEs, ceil(log2(T+1))-bit activations).

The script prints and writes to experiments/results/snn_published.md: the T = 5 break-even
against the published 5.7 %, T = 5..10 against v2's 6.4 %, where the energy goes, the
break-even's sensitivity to each constant (+-50 %, as Yan v4 varies them) beside the paper's
reported sensitivities, and further published break-evens of the same model (fan-in, weight
width, T) with their differences.

Dampfhoffer, Mesquida, Valentian and Anghel, "Are SNNs Really More Energy-Efficient Than ANNs?
An In-Depth Hardware-Aware Study", IEEE TETCI 7(3), 2023: integrate-and-fire SNNs compete with
efficient ANN implementations only between 0.15 and 1.38 spikes per synapse per inference,
depending on the ANN implementation (abstract), Eyeriss being their ANN case study. Here the ANN
twin of VGG-like stacks (experiments/snn_break_even.py) runs on eyeriss_like and the SNN on its
event-driven twin eyeriss_snn (same technology, array size, buffers and 16-bit words); the
break-even is reported as spikes per synapse per inference, T x r.

Usage::

    OMP_NUM_THREADS=1 python experiments/snn_published.py [--out experiments/results/snn_published.md]
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _provenance import git_commit, write_report  # noqa: E402
from snn_break_even import STACKS, conv_stack  # noqa: E402

from nasco.dsl import load_energy_table, load_spec, resolve  # noqa: E402
from nasco.dsl._specs import Constant  # noqa: E402
from nasco.hw import CostModel, Layer, Workload  # noqa: E402
from nasco.hw._snn import (  # noqa: E402
    activation_bits_for,
    ann_template,
    ann_twin,
    break_even_rate,
    quantised_template,
    quantised_twin,
    snn_timesteps,
)

TEMPLATE = "yan_neuromorphic"
N_SRC = 4096
# Yan v4 abstract: "SNNs with moderate time windows (T = 5) require an average spike rate below
# 5.7 % to outperform equivalent QNNs" (typical neuromorphic hardware).
PUBLISHED_T5 = 0.057
# The acceptance band for the reproduced T = 5 break-even: +-1.5 points.
BAND = 0.015
# Yan v2 (arXiv 2409.08290v2) abstract: "SNNs with moderate time windows (T in [5,10]) require an
# average spike rate below 6.4 %".
PUBLISHED_V2 = 0.064

# Further break-evens Yan v4 reports for the same model: (what, published rate, weight bits, T,
# fan-in N_src), as quoted by a secondary summary of Yan v4 (not checked against the paper's text).
FURTHER = [
    ("fan-in N_src = 64 (4-bit weights, T = 5)", 0.054, 4, 5, 64),
    ("8-bit weights, T = 3", 0.082, 8, 3, N_SRC),
    ("4-bit weights, T = 2", 0.104, 4, 2, N_SRC),
    ("8-bit weights, T = 2", 0.123, 8, 2, N_SRC),
    ("8-bit weights, T = 1", 0.297, 8, 1, N_SRC),
]
# Dampfhoffer et al. (abstract): "between 0.15 and 1.38 spikes per synapse per inference, depending
# on the ANN implementation". Their implementations are a theoretical ANN with the most data reuse
# and sparsity possible and the Eyeriss case study; the SNN must be sparsest to beat the former,
# so 1.38 is read as the Eyeriss case.
DAMPFHOFFER_RANGE = (0.15, 1.38)
DAMPFHOFFER_STEPS = (2, 4, 8, 16)
DAMPFHOFFER_NET = "VGG-7 64-64-P-128-128-P-256-256-P-FC"

# Yan v4's sensitivity of the 5.7 % figure to +-50 % on one constant at a time.
PUBLISHED_SENSITIVITY = {
    "moves": "3.41-10.80 % (move and weight energies, the envelope over both)",
    "weight": "5.39-6.08 %",
    "compute": "within 0.05 points (ACC / MAC energy)",
}


def yan_layer(timesteps: int, n_src: int = N_SRC, n_out: int = N_SRC) -> Workload:
    """One synaptic layer of fan-in ``n_src``: spikes in, a fused IF/LIF neuron layer out."""
    return Workload((Layer("fc", "linear", 1, 1, 1, 1, n_src, n_out, 1, spiking_input=True,
                           timesteps=timesteps, output_bits=1),
                     Layer("neurons", "neuron", timesteps=timesteps, elements=n_out)),
                    name=f"fc {n_src}->{n_out}, T={timesteps}")


def with_energy(table, **pj: float):
    """``table`` with the named energy entries replaced (values in pJ)."""
    energy = dict(table.energy)
    for key, value in pj.items():
        energy[key] = Constant(value=value, unit="pJ", source="sensitivity variant")
    return dataclasses.replace(table, energy=energy)


def with_events(template, address_bits: int):
    spikes = dataclasses.replace(template.spikes, address_bits=address_bits)
    return dataclasses.replace(template, spikes=spikes)


def with_weight_bits(template, bits: int):
    return dataclasses.replace(template, bits=dataclasses.replace(template.bits, weight=bits))


def pct(r: float) -> str:
    return f"{100 * r:.2f} %"


def sensitivity_rows(template, table) -> list[tuple[str, str, float, float, str]]:
    """(constant, how it is varied, break-even at -50 %, at +50 %, the paper's figure)."""
    e = {k: table.energy[k].value for k in ("noc_bit", "add_4b", "mac_4b")}
    a = int(template.spikes.address_bits)
    wl = yan_layer(5)

    def be(t, tab) -> float:
        return break_even_rate(wl, t, tab, against="quantised")

    rows = [
        ("sparse move E~_move (3.0 pJ/spike/hop)", f"address_bits {a // 2} / {a * 3 // 2}",
         be(with_events(template, a // 2), table), be(with_events(template, a * 3 // 2), table),
         PUBLISHED_SENSITIVITY["moves"]),
        ("dense move E_move (0.25 pJ/bit/hop), E~_move kept", f"noc_bit x0.5 / x1.5, address_bits {2 * a} / "
         f"{2 * a // 3}", be(with_events(template, 2 * a), with_energy(table, noc_bit=0.5 * e["noc_bit"])),
         be(with_events(template, 2 * a // 3), with_energy(table, noc_bit=1.5 * e["noc_bit"])),
         PUBLISHED_SENSITIVITY["moves"]),
        ("both moves", "noc_bit x0.5 / x1.5", be(template, with_energy(table, noc_bit=0.5 * e["noc_bit"])),
         be(template, with_energy(table, noc_bit=1.5 * e["noc_bit"])), PUBLISHED_SENSITIVITY["moves"]),
        ("E_ACC = E_CMP = E_SUB (0.05448 pJ)", "add_4b x0.5 / x1.5",
         be(template, with_energy(table, add_4b=0.5 * e["add_4b"])),
         be(template, with_energy(table, add_4b=1.5 * e["add_4b"])), PUBLISHED_SENSITIVITY["compute"]),
        ("E_MAC (Horowitz ratio x E_ACC)", "mac_4b x0.5 / x1.5",
         be(template, with_energy(table, mac_4b=0.5 * e["mac_4b"])),
         be(template, with_energy(table, mac_4b=1.5 * e["mac_4b"])), PUBLISHED_SENSITIVITY["compute"]),
    ]
    return rows


def spiking_rates(workload: Workload, rate: float) -> dict[str, float]:
    """One uniform rate for every spiking-input conv/linear layer and every neuron layer's output."""
    return {la.name: rate for la in workload.layers
            if la.kind == "neuron" or (la.spiking_input and la.kind in ("conv", "linear"))}


def spikes_per_synapse_break_even(workload: Workload, snn_template, snn_table, ann_template_,
                                  ann_table) -> float:
    """T x r at the uniform rate r where the SNN on ``snn_template`` costs what its ANN twin does on
    ``ann_template_`` (nan: the SNN costs more at every rate; inf: less at every rate)."""
    from scipy.optimize import brentq

    target = CostModel(ann_template_, ann_table).cost(ann_twin(workload)).total()["energy_j"]
    model = CostModel(snn_template, snn_table)

    def gap(r: float) -> float:
        return model.cost(workload, spike_rates=spiking_rates(workload, r)).total()["energy_j"] - target

    lo, hi = gap(0.0), gap(1.0)
    if lo > 0:
        return float("nan")
    if hi < 0:
        return float("inf")
    return snn_timesteps(workload) * float(brentq(gap, 0.0, 1.0, xtol=1e-12))


def energies(workload: Workload, template, table, rate: float) -> tuple[dict, dict]:
    """Energy by part (J) of the SNN at a uniform ``rate`` (its inputs and the spikes its neurons
    emit) and of its ceil(log2(T+1))-bit twin on the same template with MAC PEs."""
    rates = spiking_rates(workload, rate)
    snn = CostModel(template, table).cost(workload, spike_rates=rates).total()["energy"]
    twin, bits = quantised_twin(workload, snn_timesteps(workload))
    q_template = quantised_template(ann_template(template), bits)
    return snn, CostModel(q_template, table).cost(twin).total()["energy"]


def yan_figures(template, table) -> dict:
    """Yan et al.'s figures on ``template``: the T = 5 break-even and the energy ratio at the
    published rate, T = 5..10, the energy by part at the break-even, sensitivities and the further
    published cases; printed as they are measured."""
    wl5 = yan_layer(5)
    r5 = break_even_rate(wl5, template, table, against="quantised")
    snn_pub, q_pub = energies(wl5, template, table, PUBLISHED_T5)
    ratio = sum(snn_pub.values()) / sum(q_pub.values())
    diff = r5 - PUBLISHED_T5
    print(f"Yan et al. typical neuromorphic, T = 5 vs {activation_bits_for(5)}-bit QNN: break-even "
          f"{pct(r5)} (published {pct(PUBLISHED_T5)}, difference {100 * diff:+.2f} points, "
          f"{'inside' if abs(diff) <= BAND else 'OUTSIDE'} the +-{100 * BAND:.1f}-point band)")
    print(f"  SNN / QNN energy at the published 5.7 %: {ratio:.3f}")

    # ------------------------------------------------------------------ T = 5..10
    sweep = [(t, activation_bits_for(t), break_even_rate(yan_layer(t), template, table, against="quantised"))
             for t in range(5, 11)]
    worst = max(r for _, _, r in sweep)
    for t, bits, r in sweep:
        print(f"  T = {t:2d} vs {bits}-bit QNN: break-even {pct(r)}")
    print(f"  T in 5..10: highest break-even {pct(worst)} (v2: below {pct(PUBLISHED_V2)})")

    # ------------------------------------------------------------------ where the energy goes
    snn_e, q_e = energies(wl5, template, table, r5)

    # ------------------------------------------------------------------ sensitivities, further points
    sens = sensitivity_rows(template, table)
    further = []
    for what, published, wbits, t, n_src in FURTHER:
        r = break_even_rate(yan_layer(t, n_src=n_src), with_weight_bits(template, wbits), table,
                            against="quantised")
        further.append((what, published, r))
        print(f"  {what}: {pct(r)} (published {pct(published)})")
    return {"r5": r5, "diff": diff, "ratio": ratio, "sweep": sweep, "worst": worst, "snn_e": snn_e,
            "q_e": q_e, "sens": sens, "further": further}


def dampfhoffer_figures() -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Break-even spikes per synapse of every VGG-like stack at each T, SNN on eyeriss_snn with
    address events and with dense spike maps, against its ANN twin on eyeriss_like."""
    ey_raw, ev_raw = load_spec("eyeriss_like"), load_spec("eyeriss_snn")
    eyeriss, ey_table = resolve(ey_raw, {}), load_energy_table(ey_raw)
    ev, ev_table = resolve(ev_raw, {}), load_energy_table(ev_raw)
    dense_ev = dataclasses.replace(ev, spikes=dataclasses.replace(ev.spikes, format="dense"))

    def eyeriss_case(snn_template) -> dict[str, list[float]]:
        return {name: [spikes_per_synapse_break_even(conv_stack(widths, name, timesteps=t), snn_template,
                                                     ev_table, eyeriss, ey_table) for t in DAMPFHOFFER_STEPS]
                for name, widths in STACKS.items()}

    damp, damp_dense = eyeriss_case(ev), eyeriss_case(dense_ev)
    vgg = damp[DAMPFHOFFER_NET]
    print(f"Dampfhoffer et al., Eyeriss case: {DAMPFHOFFER_NET} breaks even at "
          + ", ".join(f"T={t}: {x:.3f}" for t, x in zip(DAMPFHOFFER_STEPS, vgg))
          + f" spikes/synapse (published {DAMPFHOFFER_RANGE[1]}; farthest {_farthest(vgg):.3f})")
    return damp, damp_dense


def _farthest(vgg: list[float]) -> float:
    return max(abs(x - DAMPFHOFFER_RANGE[1]) for x in vgg)


def _stack_table(title: str, rows: dict[str, list[float]]) -> list[str]:
    """A markdown table of break-even spikes per synapse, one row per stack, one column per T."""
    return [title, "", "| network | " + " | ".join(f"T = {t}" for t in DAMPFHOFFER_STEPS) + " |",
            "|---|" + "---|" * len(DAMPFHOFFER_STEPS)] + [
        f"| {name} | " + " | ".join(f"{x:.3f}" for x in xs) + " |" for name, xs in rows.items()]


def _model_lines(sweep: list[tuple[int, int, float]]) -> list[str]:
    """How Yan v4's per-synapse model maps onto the template, and the break-even per T."""
    lines = [
        "## The model",
        "",
        "Yan v4 costs a layer per synapse: the SNN moves every input spike to every neuron it feeds as an "
        "event over the NoC (E~_move = 3.0 pJ per spike and hop, normalised from Loihi 1's per-event "
        "routing energy) and accumulates a weight (E_ACC); its QNN twin moves every 3-bit activation "
        "densely (E_move = 0.25 pJ per bit and hop) and does one MAC. `yan_neuromorphic` expresses this "
        "as a weight-stationary column of 4096 sop PEs (one neuron's fan-in per fold, so the NoC carries "
        "one move per synaptic event and each output leaves once), spike maps as 12-bit address events "
        "(12 x 0.25 pJ = 3.0 pJ per event), no DRAM and no buffer energy (activations move over the NoC "
        "only). At T = 5 the break-even is then, per synapse, T r (E~_move + E_ACC) = 3 E_move + E_MAC "
        "plus per-neuron terms of order 1/N_src (tests/hw/test_snn_published.py checks nasco against this "
        "hand formula).",
        "",
        "| T | QNN bits | break-even |",
        "|---|---|---|",
    ]
    return lines + [f"| {t} | {bits} | {pct(r)} |" for t, bits, r in sweep]


def report(template, yan: dict, damp: dict[str, list[float]],
           damp_dense: dict[str, list[float]]) -> list[str]:
    """The markdown report of :func:`yan_figures` and :func:`dampfhoffer_figures`."""
    r5, diff, ratio, sweep, worst = yan["r5"], yan["diff"], yan["ratio"], yan["sweep"], yan["worst"]
    snn_e, q_e, sens, further = yan["snn_e"], yan["q_e"], yan["sens"], yan["further"]
    vgg = damp[DAMPFHOFFER_NET]
    worst_gap = _farthest(vgg)
    b = template.bits
    lines = [
        "# Published SNN-vs-ANN break-evens reproduced",
        "",
        f"Generated by `experiments/snn_published.py` at commit {git_commit()} "
        "(nasco/hw/_snn.py break_even_rate, nasco/hw/_cost.py). Template `yan_neuromorphic` with the "
        "energy table `yan_22nm` (search_spaces/); every constant is sourced there.",
        "",
        "## Summary",
        "",
        "| published figure | reproduced | difference | tolerance | assumptions |",
        "|---|---|---|---|---|",
        f"| Yan v4: T = 5 SNN vs 3-bit QNN breaks even below **{pct(PUBLISHED_T5)}** (typical neuromorphic "
        f"hardware) | **{pct(r5)}** | {100 * diff:+.2f} points | +-{100 * BAND:.1f} points (issue); the test "
        "holds +-0.5 points: measured +0.23 plus a 0.27-point margin | E~_move 3.0 pJ/spike/hop, E_move 0.25 "
        f"pJ/bit/hop, one hop, E_ACC 0.05448 pJ, E_MAC from Horowitz's MAC/add ratio, weight reads not "
        f"charged, N_src = 4096, {b.weight}-bit weights |",
        f"| Yan v2: T in 5..10 breaks even below **{pct(PUBLISHED_V2)}** | highest over T = 5..10: "
        f"**{pct(worst)}** (T = {max(sweep, key=lambda x: x[2])[0]}) | {100 * (worst - PUBLISHED_V2):+.2f} "
        "points below the bound | an upper bound: every T in 5..10 below it | v4's constants (v2's "
        "own are not known here) |",
        f"| Dampfhoffer et al.: IF SNNs compete with the Eyeriss case below **{DAMPFHOFFER_RANGE[1]}** "
        f"spikes per synapse per inference (0.15 against the ideal ANN) | {DAMPFHOFFER_NET}, T = "
        + "/".join(str(t) for t in DAMPFHOFFER_STEPS) + ": **" + " / ".join(f"{x:.2f}" for x in vgg)
        + f"** | farthest {worst_gap:.2f} | +-0.3 spikes/synapse: the farthest T ({worst_gap:.2f}) plus a "
        "0.13 margin; their T and network are not known here | ANN twin on eyeriss_like (16-bit, "
        "eyeriss_relative), SNN on eyeriss_snn (sop PEs, ws, address events, same technology and "
        "buffers); the 0.15 end (an ideal ANN) is not modelled |",
        "",
        f"SNN / 3-bit QNN energy at the published 5.7 %: {ratio:.3f} (1 at the break-even).",
        "",
    ]
    lines += _model_lines(sweep)
    lines += [
        "",
        f"Energy per inference of the T = 5 layer at its break-even rate ({pct(r5)}), in uJ:",
        "",
        "| part | SNN | 3-bit QNN |",
        "|---|---|---|",
    ]
    lines += [f"| {p} | {1e6 * snn_e[p]:.3f} | {1e6 * q_e[p]:.3f} |" for p in snn_e]
    lines += [
        f"| total | {1e6 * sum(snn_e.values()):.3f} | {1e6 * sum(q_e.values()):.3f} |",
        "",
        "## Sensitivity (+-50 % on one constant, T = 5)",
        "",
        "| constant | varied as | break-even at -50 % | at +50 % | Yan v4 reports |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {c} | {how} | {pct(lo)} | {pct(hi)} | {paper} |" for c, how, lo, hi, paper in sens]
    weight = PUBLISHED_SENSITIVITY["weight"]
    lines.append(f"| weight reads | not charged (rf_filter_bit 0) | - | - | {weight} |")
    lines += [
        "",
        "## Further break-evens of the same model",
        "",
        "| Yan v4 case | published | nasco | difference |",
        "|---|---|---|---|",
    ]
    lines += [f"| {w} | {pct(p)} | {pct(r)} | {100 * (r - p):+.2f} points |" for w, p, r in further]
    lines += [""] + _stack_table("## Dampfhoffer et al.: break-even spikes per synapse per inference, SNN "
                                 "on eyeriss_snn vs ANN on eyeriss_like", damp)
    lines += [""] + _stack_table("The same with dense spike maps on eyeriss_snn (`spikes.format: dense`; "
                                 "inf: the SNN costs less at every rate):", damp_dense)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "snn_published.md"),
                    help="markdown report to write (default: %(default)s)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    raw = load_spec(TEMPLATE)
    template = resolve(raw, {})
    yan = yan_figures(template, load_energy_table(raw))
    lines = report(template, yan, *dampfhoffer_figures())
    lines += ["", f"Run time: {time.perf_counter() - t0:.2f} s."]
    out = write_report(args.out, lines)
    print(f"wrote {out} ({time.perf_counter() - t0:.2f} s)")


if __name__ == "__main__":
    main()
