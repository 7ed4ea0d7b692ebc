"""Break-even spike rates of SNNs at T = 5 against their ANN twins, on the SATA-like template.

The SNN runs on search_spaces/sata_like.yaml at its defaults (sop PEs: AND + adder, LIF
units at the column edge, ws, 16x8 PEs, 400 MHz) with the horowitz_45nm table; its ANN twin
(8-bit activations) and its quantised twin (⌈log2(T+1)⌉ = 3 bits, Yan et al., arXiv
2409.08290, who report ~5.7 % for T = 5) run on the same template with MAC PEs
(nasco.hw._snn.ann_template). Networks:

* darts_snn candidates (fixed seeds, T = 5 through the DSL override path), with the neurons
  before each op as the space defines (pre_op), and the same seeds with the neurons after the
  node sums (post_node override);
* VGG-like plain conv stacks on 32x32 input: conv -> LIF (fused: output_bits 1) with 2x2
  max-pools of spikes, in three widths, plus the widest one without fused LIFs.

For each it prints and writes to ``experiments/results/snn_break_even.md`` the break-even
rates, where the energy goes (per part at rate 0 and per unit rate), and for the darts_snn
networks two lower bounds that show why no break-even exists there. Each part of the energy
is affine in a uniform rate, so two evaluations give every line.

Usage::

    OMP_NUM_THREADS=1 python experiments/snn_break_even.py [--out experiments/results/snn_break_even.md]
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _provenance import write_report  # noqa: E402

from nasco.dsl import load_energy_table, load_spec, resolve  # noqa: E402
from nasco.hw import CostModel, Layer, Workload  # noqa: E402
from nasco.hw._snn import activation_bits_for, break_even_rate, compare  # noqa: E402
from nasco.nn import plan_network, plan_workload  # noqa: E402
from nasco.space import SearchSpace  # noqa: E402

T = 5
SEEDS = (0, 1, 2, 3)
INPUT = (3, 32, 32)
CLASSES = 10
# Yan et al., "Reconsidering the energy efficiency of spiking neural networks",
# arXiv 2409.08290: with data movement counted, T = 5 beats a ⌈log2(T+1)⌉-bit ANN only
# below about a 5.7 % spike rate (docs/REFERENCES.md, "SNN energy").
PUBLISHED = 0.057
STACKS = {
    "stack 32-32-P-64-64-P-FC": [(32, False), (32, True), (64, False), (64, True)],
    "stack 64-64-P-128-128-P-FC": [(64, False), (64, True), (128, False), (128, True)],
    "VGG-7 64-64-P-128-128-P-256-256-P-FC": [(64, False), (64, True), (128, False), (128, True), (256, False),
                                             (256, True)],
    "VGG-7 wide 128-128-P-256-256-P-512-512-P-FC": [(128, False), (128, True), (256, False), (256, True),
                                                    (512, False), (512, True)],
}


def conv_stack(widths, name: str, timesteps: int = T, fused: bool = True) -> Workload:
    """3x3 convs (padding 1), each followed by a LIF layer it feeds alone (fused: output_bits
    1), 2x2 max-pools of spikes, a spiking classifier. The first conv is the direct-encoding
    layer: it sees the image, runs once, and its LIF integrates its output T times."""
    layers: list[Layer] = []
    c_in, hw = 3, 32
    for i, (c_out, pool) in enumerate(widths):
        layers.append(Layer(f"conv{i + 1}", "conv", hw + 2, hw + 2, 3, 3, c_in, c_out, 1, spiking_input=i > 0,
                            timesteps=1 if i == 0 else timesteps, output_bits=int(fused)))
        layers.append(Layer(f"lif{i + 1}", "neuron", timesteps=timesteps, elements=c_out * hw * hw))
        if pool:
            layers.append(Layer(f"pool{i + 1}", "pool", hw, hw, 2, 2, c_out, c_out, 2, spiking_input=True,
                                timesteps=timesteps, output_bits=1))
            hw //= 2
        c_in = c_out
    layers.append(Layer("fc", "linear", 1, 1, 1, 1, c_in * hw * hw, CLASSES, 1,
                        spiking_input=True, timesteps=timesteps))
    return Workload(tuple(layers), name=name)


def darts_snn_workloads(placement: str | None = None) -> list[tuple[Workload, str]]:
    # T = 5 lies outside darts_snn's choices [2, 4]; the override fixes it as a plain value.
    over: dict = {("timesteps",): T}
    if placement:
        over[("neuron", "placement")] = placement
    space = load_spec("darts_snn", overrides=over)
    assert space.timesteps == T, space.timesteps
    ss = SearchSpace(space)
    out = []
    for seed in SEEDS:
        cand = ss.sample(np.random.default_rng(seed))
        arch, _ = ss.resolve(cand)
        plan = plan_network(arch, cand.arch["cell"], INPUT, CLASSES)
        hp = cand.arch["hp"]
        tag = f" {placement}" if placement else ""
        desc = f"C={hp['macro.stem.channels']}, cells={hp['macro.cells']}"
        out.append((plan_workload(plan, name=f"darts_snn{tag} seed {seed}"), desc))
    return out


def spiking_names(workload: Workload) -> list[str]:
    return [la.name for la in workload.layers if la.spiking_input and la.kind in ("conv", "linear")]


def part_lines(workload: Workload, template, table) -> dict[str, tuple[float, float]]:
    """Part -> (E(0), slope) of the SNN at a uniform rate, from the per-part CostModel totals."""
    names = spiking_names(workload)
    cm = CostModel(template, table)
    e0 = cm.cost(workload, spike_rates=dict.fromkeys(names, 0.0)).total()["energy"]
    e1 = cm.cost(workload, spike_rates=dict.fromkeys(names, 1.0)).total()["energy"]
    return {p: (e0[p], e1[p] - e0[p]) for p in e0}


def by_kind(workload: Workload, template, table, part: str = "energy_j") -> dict[str, float]:
    """Energy at r = 0 per layer kind; 'conv+LIF' marks convs/adds that feed a fused LIF."""
    rep = CostModel(template, table).cost(workload, spike_rates=dict.fromkeys(spiking_names(workload), 0.0))
    values = rep.energy_j if part == "energy_j" else rep.energy[part]
    out: dict[str, float] = {}
    for la, e in zip(workload.layers, values):
        key = la.kind + ("+LIF" if la.output_bits and la.kind in ("conv", "add") else "")
        out[key] = out.get(key, 0.0) + float(e)
    return out


def darts_bounds(workload: Workload, cmp: dict, table, act_bits: int) -> tuple[float, float]:
    """Two lower bounds on the SNN's energy at r = 0 (J): the DRAM writes alone of the
    multi-bit currents that leave a layer every timestep (outputs without a fused LIF), and
    the DRAM of an all-spike version of the network (weights once plus T/q of the q-bit
    twin's activation DRAM, spikes moving densely)."""
    e = table.energy_j("dram_bit")
    currents = sum(la.ofmap_elements * act_bits * la.timesteps * e for la in workload.layers
                   if la.timesteps > 1 and la.kind in ("conv", "add", "pool") and la.output_bits == 0)
    q_bits = cmp["bits"]["quantised_activation"]
    w = sum(la.params for la in workload.layers) * cmp["bits"]["weight"] * e
    act = cmp["quantised"]["energy"]["dram"] - w
    return currents, w + act * T / q_bits


def fmt_rate(r: float) -> str:
    if math.isnan(r):
        return "never (nan)"
    if math.isinf(r):
        return "always (inf)"
    return f"{100 * r:.2f} %"


def fmt_x(r: float) -> str:
    return f"{100 * r:+.1f} %"


def uj(x: float) -> str:
    return f"{1e6 * x:.2f}"


def header(template, q_bits: int) -> list[str]:
    b, buf, t = template.bits, template.buffers, template
    return [
        "# SNN break-even spike rates at T = 5 on the SATA-like template (horowitz_45nm)",
        "",
        "Generated by `experiments/snn_break_even.py` (nasco/hw/_snn.py, nasco/hw/_cost.py). "
        f"Template `sata_like` at its defaults: sop PEs (AND + {b.weight}-bit adder, "
        f"{b.accumulator}-bit accumulator), dataflow {t.dataflow}, {t.pe_array.rows}x{t.pe_array.cols} "
        f"PEs with a LIF unit per column, buffers {buf.ifmap_kb}/{buf.filter_kb}/{buf.ofmap_kb}/"
        f"{buf.membrane_kb} KiB (ifmap/filter/ofmap/membrane), {t.bandwidth.dram_bytes_per_cycle} "
        f"B/cycle DRAM, {t.clock_mhz} MHz, membranes {b.membrane} bits, skip_zero_spikes "
        f"{t.pe.skip_zero_spikes}. Input {INPUT[1]}x{INPUT[2]}, {CLASSES} classes. darts_snn "
        "candidates: `SearchSpace(load_spec('darts_snn', overrides={('timesteps',): 5}))"
        ".sample(np.random.default_rng(seed))`; 'post_node' rows add the override "
        "`('neuron', 'placement'): 'post_node'`.",
        "",
        "Break-even rate r*: the uniform input spike rate at which the SNN's total CostModel energy "
        "equals the baseline's; the SNN is cheaper below it. 'never (nan)': the SNN costs more even at "
        "r = 0; the extrapolated crossing of the (affine) energy line is given beside it. Baselines, on "
        "the same template with MAC PEs: the ANN twin (same layers, ReLU for neurons, run once) at "
        f"a{b.activation}, and the quantised twin at a{q_bits} = ⌈log2(T+1)⌉ (weights stay "
        f"{b.weight}-bit). Published: ~{100 * PUBLISHED:.1f} % (Yan et al., arXiv 2409.08290, T = 5 "
        "against a 3-bit ANN). 'os' and 'mem16': extrapolated r* with dataflow os, or 16-bit membranes.",
        "",
        f"| workload | MACs/T | fused LIFs | r* vs {q_bits}-bit ANN | extrapolated "
        f"| r* vs {b.activation}-bit ANN | extrapolated | SNN / {q_bits}-bit at r = 5.7 % "
        f"| os: r* vs {q_bits}-bit | mem16: r* vs {q_bits}-bit |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]


def section(wl: Workload, desc: str, family: str, template, variants: dict, table, systolic) -> list[str]:
    """The energy breakdown of one workload (markdown lines)."""
    b = template.bits
    c0 = compare(wl, 0.0, template, table)
    lit = compare(wl, PUBLISHED, template, table)["literature"]
    q_rep, a_rep = c0["quantised"], c0["ann"]
    q_bits = c0["bits"]["quantised_activation"]
    pl = part_lines(wl, template, table)
    out = [f"### {wl.name} ({desc})", "",
           "Energy per inference in µJ by part: the SNN at r = 0 and its slope per unit rate, and the "
           "twins on MAC PEs. Literature estimate (arithmetic only) at r = 5.7 %: "
           f"{uj(lit['snn_j'])} µJ against {uj(lit['ann_j'])} µJ for the ANN at E_MAC per MAC.",
           "", f"| part | SNN r=0 | SNN slope | {q_bits}-bit ANN | {b.activation}-bit ANN |",
           "|---|---|---|---|---|"]
    for p in pl:
        out.append(f"| {p} | {uj(pl[p][0])} | {uj(pl[p][1])} | {uj(q_rep['energy'][p])} | "
                   f"{uj(a_rep['energy'][p])} |")
    out += [f"| **total** | {uj(c0['snn']['energy_j'])} | {uj(c0['energy_line']['slope_j'])} | "
            f"{uj(q_rep['energy_j'])} | {uj(a_rep['energy_j'])} |", ""]
    kinds = sorted(by_kind(wl, template, table).items(), key=lambda kv: -kv[1])
    out.append("SNN energy at r = 0 by layer kind (µJ; '+LIF': feeds a fused LIF): "
               + ", ".join(f"{k} {uj(v)}" for k, v in kinds) + ".")
    skip_lat = CostModel(variants["skip"], table).cost(
        wl, spike_rates=dict.fromkeys(spiking_names(wl), PUBLISHED)).total()["latency_s"]
    out.append(f"Latency: SNN {1e3 * c0['snn']['latency_s']:.3f} ms (at r = 5.7 % with skip_zero_spikes: "
               f"{1e3 * skip_lat:.3f} ms), {q_bits}-bit ANN {1e3 * q_rep['latency_s']:.3f} ms, "
               f"{b.activation}-bit ANN {1e3 * a_rep['latency_s']:.3f} ms.")
    if family == "darts":
        cur, spikes_only = darts_bounds(wl, c0, table, int(b.activation))
        out.append(f"Lower bounds on the SNN at r = 0: DRAM writes of its multi-bit currents alone "
                   f"{uj(cur)} µJ; DRAM of an all-spike version {uj(spikes_only)} µJ; the {q_bits}-bit "
                   f"twin's whole energy {uj(q_rep['energy_j'])} µJ.")
        x_sys = break_even_rate(wl, *systolic, against="quantised", extrapolate=True)
        out.append("For reference, on systolic_template (mac PEs, no fused LIFs, timestep-outer): "
                   f"extrapolated r* vs {q_bits}-bit {fmt_x(x_sys)}.")
    return out + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "snn_break_even.md"))
    args = ap.parse_args()
    t0 = time.perf_counter()

    raw = load_spec("sata_like")
    template = resolve(raw, {})  # every choice at its default
    table = load_energy_table(raw)
    variants = {"os": resolve(raw, {"dataflow": "os"}), "skip": resolve(raw, {"pe.skip_zero_spikes": True}),
                "mem16": resolve(raw, {"bits.membrane": 16})}
    sys_raw = load_spec("systolic_template")
    systolic = (resolve(sys_raw, {}), load_energy_table(sys_raw))
    q_bits = activation_bits_for(T)
    b = template.bits

    vgg7 = STACKS["VGG-7 64-64-P-128-128-P-256-256-P-FC"]
    workloads = ([(w, d, "darts") for w, d in darts_snn_workloads()]
                 + [(w, d, "darts") for w, d in darts_snn_workloads("post_node")]
                 + [(conv_stack(ws, name), "fused LIFs, max-pools of spikes", "stack")
                    for name, ws in STACKS.items()]
                 + [(conv_stack(vgg7, "VGG-7 unfused", fused=False),
                     "LIF layers on their own: 8-bit currents every timestep", "stack")])
    lines = header(template, q_bits)
    detail: list[str] = []
    print(f"T = {T}, quantised ANN at {q_bits} bits; published break-even ~{100 * PUBLISHED:.1f} %")
    for wl, desc, family in workloads:
        be_q = break_even_rate(wl, template, table, against="quantised")
        be_a = break_even_rate(wl, template, table, against="ann")
        x_q = break_even_rate(wl, template, table, against="quantised", extrapolate=True)
        x_a = break_even_rate(wl, template, table, against="ann", extrapolate=True)
        os_q = break_even_rate(wl, variants["os"], table, against="quantised", extrapolate=True)
        m16_q = break_even_rate(wl, variants["mem16"], table, against="quantised", extrapolate=True)
        ratio = compare(wl, PUBLISHED, template, table)["ratio"]["snn_over_quantised"]
        macs_t = sum(la.macs for la in wl.layers)
        n_neuron = sum(la.kind == "neuron" for la in wl.layers)
        n_fused = sum(la.output_bits == 1 and la.kind in ("conv", "linear", "add") for la in wl.layers)
        print(f"{wl.name:38s} vs {q_bits}-bit {fmt_rate(be_q):>12s} (extrapolated {fmt_x(x_q)}); "
              f"vs {b.activation}-bit {fmt_rate(be_a):>12s}; fused {n_fused}/{n_neuron}")
        lines.append(f"| {wl.name} ({desc}) | {macs_t / 1e6:.2f} M | {n_fused}/{n_neuron} | "
                     f"{fmt_rate(be_q)} | {fmt_x(x_q)} | {fmt_rate(be_a)} | {fmt_x(x_a)} | {ratio:.2f}x | "
                     f"{fmt_x(os_q)} | {fmt_x(m16_q)} |")
        detail += section(wl, desc, family, template, variants, table, systolic)

    lines += ["", "## Where the energy goes", ""] + detail
    lines.append(f"Run time: {time.perf_counter() - t0:.2f} s.")
    out = write_report(args.out, lines)
    print(f"wrote {out} ({time.perf_counter() - t0:.2f} s)")


if __name__ == "__main__":
    main()
