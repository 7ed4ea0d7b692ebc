"""SNN candidates against their ANN twins per cell wiring, spike-map format and template.

At measured spike rates. For each cell wiring (``neuron.placement``: pre_op, post_node, spike_native; see
nasco.nn.plan_network), 20 random darts_snn cells (the space's defaults otherwise: T from its
choice, digits 8x8 input) are
trained for 2 epochs on digits by nasco's train evaluator (``TrainCostEvaluator``), which
measures each spiking layer's input spike rate on the validation pass; the rates are cached in
``experiments/results/snn_traffic_rates.json`` (pre_op) and
``snn_traffic_rates_<wiring>.json``. Each network is then costed at those rates on
every member of asic_template at its defaults, with each spike-map format (``spikes.format``:
dense, aer, bitmap_rle; nasco/hw/_spikes.py), beside its ⌈log2(T+1)⌉-bit ANN twin on the same
template with MAC PEs (``nasco.hw.snn_twin``). A neuron's emitted map takes the rate its
readers measured (``nasco.evaluate._joint.emitted_rates``); a neuron read only through a pool,
an add or a concatenation has none measured and takes the network's mean measured rate here.

Reported per template and format: the share of candidates with ``snn_advantage`` (twin energy /
SNN energy) > 1, its median and range, how the break-even rates fall (none in [0, 1] because
the SNN costs more even at rate 0, a rate, or the SNN cheaper at every rate), and the
advantage at rate 0 (the most any sparsity could give) beside the measured mean rate.
For contrast, the VGG-like stacks of ``experiments/snn_break_even.py`` (fused LIFs, T = 5,
32x32 input) get their break-even rate against the 3-bit twin on sata_like per format.

Where the energy goes: the median share of each energy part (DRAM, SRAM, NoC, register,
compute, neuron) in the SNN's and the twin's energy, on sata_like with address events and on
the published neuromorphic regimes. Those regimes (``REGIMES``: yan_neuromorphic, Yan et al.'s
typical neuromorphic hardware with weights and states on chip and one event move per synaptic
event; eyeriss_snn, Eyeriss's technology with event-coded spikes; both in
experiments/snn_published.py) cost the same networks at the same rates, with the accuracy of
the networks that beat their twins beside the wiring's best.

Usage::

    OMP_NUM_THREADS=1 python experiments/snn_traffic.py [--archs 20] [--placements pre_op,spike_native]
        [--out FILE.md]
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from nasco.dsl import load_energy_table, load_spec, resolve
from nasco.evaluate._joint import emitted_rates
from nasco.hw import ENERGY_PARTS, CostModel, break_even_rate, quantised_template, quantised_twin, snn_twin
from nasco.hw._snn import ann_template, snn_timesteps
from nasco.nn import plan_network, plan_workload
from nasco.space import SearchSpace

INPUT, CLASSES = (1, 8, 8), 10
EPOCHS = 2
TEMPLATES = ("eyeriss_like", "nvdla_like", "shidiannao_like", "input_stationary", "sata_like")
FORMATS = ("dense", "aer", "bitmap_rle")
PLACEMENTS = ("pre_op", "post_node", "spike_native")
REGIMES = ("yan_neuromorphic", "eyeriss_snn")  # each in its own spike format
RESULTS = Path(__file__).parent / "results"


def architectures(n: int, placement: str, spike_penalty: float = 0.0):
    """The same n cells (seeds 0..n-1) under one wiring (and training penalty): the sampled
    genotype does not depend on either, which the space holds fixed."""
    ss = SearchSpace(load_spec("darts_snn", overrides={("neuron", "placement"): placement,
                                                       ("training", "spike_penalty"): spike_penalty}),
                     load_spec("asic_template"))
    out = []
    for seed in range(n):
        cand = ss.sample(np.random.default_rng(seed))
        arch, _ = ss.resolve(cand)
        plan = plan_network(arch, cand.arch["cell"], INPUT, CLASSES)
        out.append((seed, cand, plan, plan_workload(plan, name=f"darts_snn {placement} seed {seed}")))
    return ss, out


def rates_file(placement: str) -> Path:
    name = "snn_traffic_rates.json" if placement == "pre_op" else f"snn_traffic_rates_{placement}.json"
    return RESULTS / name


def measured(ss, archs, path: Path) -> dict[int, dict]:
    """seed -> {"rates", "accuracy", "seconds"}: a 2-epoch training on digits, cached in ``path``."""
    cache = json.loads(path.read_text()) if path.exists() else {}
    todo = [(s, c) for s, c, _, _ in archs if str(s) not in cache]
    if todo:
        from nasco.evaluate import TrainCostEvaluator, load_dataset

        ev = TrainCostEvaluator(ss, load_dataset("digits", seed=0), epochs=EPOCHS, hw_inner=False)
        for seed, cand in todo:
            t0 = time.perf_counter()
            r = ev.evaluate(cand, 0)
            cache[str(seed)] = {"rates": r.metrics["spike_rates"], "accuracy": r.objectives["accuracy"],
                                "seconds": time.perf_counter() - t0}
            path.write_text(json.dumps(cache, indent=1, sort_keys=True))
            print(f"trained seed {seed}: accuracy {r.objectives['accuracy']:.3f} in "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
    return {s: cache[str(s)] for s, _, _, _ in archs}


def all_rates(plan, workload, rates: dict[str, float]) -> tuple[dict[str, float], int]:
    """The measured input rates, each neuron's emitted rate (its readers', else the mean
    measured rate), and how many neurons took the mean."""
    spiking = [la.name for la in workload.layers if la.spiking_input and la.kind in ("conv", "linear")]
    missing = [n for n in spiking if n not in rates]
    if missing:  # a cache written for other architectures: refuse rather than assume rates
        raise SystemExit(f"{workload.name}: no measured rate for {missing[:3]}; delete "
                         "experiments/results/snn_traffic_rates.json and rerun")
    emitted = emitted_rates(plan, rates)
    mean = float(np.mean(list(rates.values())))
    neurons = [la.name for la in workload.layers if la.kind == "neuron"]
    fallback = {n: mean for n in neurons if n not in emitted}
    return {**fallback, **emitted, **rates}, len(fallback)


def _fmt_range(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def _stacks() -> list[str]:
    """Break-even rates of snn_break_even.py's VGG-like stacks on sata_like, per format."""
    sys.path.insert(0, str(Path(__file__).parent))
    from snn_break_even import STACKS, conv_stack

    out = ["", "## VGG-like stacks (fused LIFs, T = 5, 32x32) on sata_like: break-even rate against the "
           "3-bit twin", "", "| workload | " + " | ".join(FORMATS) + " |", "|---|" + "---:|" * len(FORMATS)]
    for name, widths in STACKS.items():
        wl = conv_stack(widths, name)
        cells = []
        for fmt in FORMATS:
            t = resolve(load_spec("sata_like", overrides={("spikes", "format"): fmt}), {})
            r = break_even_rate(wl, t, load_energy_table(t))
            cells.append("never" if math.isnan(r) else "always" if math.isinf(r) else f"{r:.2%}")
        out.append(f"| {name} | " + " | ".join(cells) + " |")
        print(out[-1], flush=True)
    return out


def networks(placement: str, n: int):
    """(seed, workload, all rates, mean measured rate) per cell, and the measurements."""
    ss, archs = architectures(n, placement)
    meas = measured(ss, archs, rates_file(placement))
    nets, fallbacks = [], []
    for seed, _, plan, wl in archs:
        rates, n_mean = all_rates(plan, wl, meas[seed]["rates"])
        fallbacks.append(n_mean)
        nets.append((seed, wl, rates, float(np.mean(list(meas[seed]["rates"].values())))))
    return nets, meas, fallbacks


def table_rows(placement: str, nets) -> list[str]:
    rows = []
    for name in TEMPLATES:
        for fmt in FORMATS:
            raw = load_spec(name, overrides={("spikes", "format"): fmt})
            t = resolve(raw, {})
            table = load_energy_table(t)
            adv, adv0, kinds, crossings = [], [], {"never": 0, "rate": 0, "always": 0}, []
            model = CostModel(t, table)
            for _seed, wl, rates, _mean in nets:
                tot = model.cost(wl, rates).total()
                twin = snn_twin(wl, t, table, tot)
                adv.append(twin["snn_advantage"])
                kinds[twin["break_even"]] += 1
                if twin["break_even_rate"] is not None:
                    crossings.append(twin["break_even_rate"])
                zero = model.cost(wl, dict.fromkeys(rates, 0.0)).total()["energy_j"]
                adv0.append(twin["twin_energy"] / zero)
            share = sum(a > 1 for a in adv) / len(adv)
            be = f"{statistics.median(crossings):.4f}" if crossings else "-"
            rows.append(f"| {placement} | {name} | {fmt} | {share:.0%} | {_fmt_range(adv)} | "
                        f"{kinds['never']} / {kinds['rate']} / {kinds['always']} | {be} | "
                        f"{_fmt_range(adv0)} |")
            print(rows[-1], flush=True)
    return rows


def regime_rows(placement: str, nets, meas) -> list[str]:
    """Per published neuromorphic regime: the share of the wiring's networks that beat their
    twins, and how accurate the winners are against the wiring's best."""
    rows = []
    best = max(m["accuracy"] for m in meas.values())
    for name in REGIMES:
        t = resolve(load_spec(name), {})
        table = load_energy_table(t)
        model = CostModel(t, table)
        adv, wins, crossings = [], [], []
        for seed, wl, rates, _mean in nets:
            twin = snn_twin(wl, t, table, model.cost(wl, rates).total())
            adv.append(twin["snn_advantage"])
            if twin["snn_advantage"] > 1:
                wins.append(meas[seed]["accuracy"])
            if twin["break_even_rate"] is not None:
                crossings.append(twin["break_even_rate"])
        be = f"{statistics.median(crossings):.4f}" if crossings else "-"
        top = f"{max(wins):.3f}" if wins else "-"
        rows.append(f"| {placement} | {name} ({t.spikes.format}) | {sum(a > 1 for a in adv)} of {len(adv)} | "
                    f"{_fmt_range(adv)} | {be} | {top} | {best:.3f} |")
        print(rows[-1], flush=True)
    return rows


def energy_shares(placement: str, nets) -> list[str]:
    """Median share of each energy part in the SNN's and the twin's energy, per template."""
    rows = []
    for name, fmt in (("sata_like", "aer"), *((r, None) for r in REGIMES)):
        raw = load_spec(name, overrides={("spikes", "format"): fmt} if fmt else None)
        t = resolve(raw, {})
        table = load_energy_table(t)
        model, mac_t = CostModel(t, table), ann_template(t)
        shares: dict[str, dict[str, list[float]]] = {"SNN": {}, "twin": {}}
        for _seed, wl, rates, _mean in nets:
            q_wl, bits = quantised_twin(wl, snn_timesteps(wl))
            for who, rep in (("SNN", model.cost(wl, rates)),
                             ("twin", CostModel(quantised_template(mac_t, bits), table).cost(q_wl))):
                parts = {k: float(v.sum()) for k, v in rep.energy.items()}
                total = sum(parts.values())
                for k, v in parts.items():
                    shares[who].setdefault(k, []).append(v / total)
        for who in ("SNN", "twin"):
            cells = " | ".join(f"{statistics.median(shares[who][k]):.0%}" for k in ENERGY_PARTS)
            rows.append(f"| {placement} | {name}{f' ({fmt})' if fmt else ''} | {who} | {cells} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, default=20, help="random cells per wiring (seeds 0..N-1)")
    ap.add_argument("--placements", default=",".join(PLACEMENTS),
                    help="comma-separated cell wirings (neuron.placement) to compare")
    ap.add_argument("--out", type=Path, default=RESULTS / "snn_traffic.md")
    args = ap.parse_args()
    placements = [p for p in args.placements.split(",") if p]
    unknown = [p for p in placements if p not in PLACEMENTS]
    if unknown:
        ap.error(f"--placements: unknown wiring {unknown[0]!r}; known: {', '.join(PLACEMENTS)}")
    measured_nets = {p: networks(p, args.archs) for p in placements}
    lines = [
        "# SNN candidates against their ANN twins per cell wiring, spike-map format and "
        "template",
        "",
        f"Generated by `experiments/snn_traffic.py`: for each cell wiring, {args.archs} random darts_snn "
        "cells "
        f"(seeds 0-{args.archs - 1}, the same genotypes under every wiring, the space's defaults otherwise), "
        f"trained {EPOCHS} epochs on digits (8x8) by TrainCostEvaluator, which measured "
        "each spiking layer's input rate; each costed at those rates on every asic_template member at its "
        "defaults (horowitz_45nm or the member's table) with each spike-map format, beside its "
        "⌈log2(T+1)⌉-bit ANN twin on the same template with MAC PEs (nasco.hw.snn_twin).",
        "",
        "| wiring | validation accuracy median (range) | mean input spike rate median (range) | neurons "
        "without a measured rate per network |",
        "|---|---|---|---|",
    ]
    for p, (nets, meas, fallbacks) in measured_nets.items():
        lines.append(f"| {p} | {_fmt_range([m['accuracy'] for m in meas.values()])} | "
                     f"{_fmt_range([n[3] for n in nets])} | {_fmt_range([float(f) for f in fallbacks])} |")
    lines += [
        "",
        "Neurons whose map no conv reads directly (read through a pool, an add or a concatenation) take "
        "the network's mean measured rate. snn_advantage = twin energy / SNN energy (> 1: the SNN wins). "
        "Break-even: 'never' the SNN costs "
        "more even at rate 0; 'rate' a crossing in [0, 1]; 'always' the SNN is cheaper at every rate. "
        "'adv. at r=0': the advantage with no spike at all (every spiking layer's and neuron's rate 0), "
        "the most any sparsity could give on that design.",
        "",
        "| wiring | template | format | share snn_advantage > 1 | snn_advantage median (range) | break-even "
        "never / rate / always | break-even rates (median) | adv. at r=0 median (range) |",
        "|---|---|---|---:|---|---|---|---|",
    ]
    t0 = time.perf_counter()
    for p, (nets, _meas, _fb) in measured_nets.items():
        lines += table_rows(p, nets)
    lines += [
        "",
        "## Where the energy goes (median share of each part)",
        "",
        "| wiring | template | network | " + " | ".join(ENERGY_PARTS) + " |",
        "|---|---|---|" + "---:|" * len(ENERGY_PARTS),
    ]
    for p, (nets, _meas, _fb) in measured_nets.items():
        lines += energy_shares(p, nets)
    lines += [
        "",
        "## The published neuromorphic regimes (weights and states on chip, event-coded spikes)",
        "",
        "| wiring | template (spike format) | snn_advantage > 1 | snn_advantage median (range) | break-even "
        "rates (median) | best accuracy of the winners | best accuracy of the wiring |",
        "|---|---|---:|---|---|---:|---:|",
    ]
    for p, (nets, meas, _fb) in measured_nets.items():
        lines += regime_rows(p, nets, meas)
    lines += _stacks()
    lines += ["", f"Costing all {len(placements) * len(TEMPLATES) * len(FORMATS)} wiring-template-format "
              "triples (SNN, twin, break-even, rate 0) took "
              f"{time.perf_counter() - t0:.1f} s."]
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
