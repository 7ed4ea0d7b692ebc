"""The hardware inner loop (nasco.evaluate.hardware_front): speed, exactness, NSGA-II against exhaustive.

Networks: darts_snn candidates for digits (8x8 inputs, 10 classes), drawn with fixed seeds.

``--mode speed`` (sets HW_EXHAUSTIVE): configurations costed per second by the exhaustive
loop on asic_template (31,904 configurations) and on each member alone, wall and CPU time per
architecture, against ``CostModel(resolve(...)).cost(...)`` called per configuration on a
sample. Spike rates: 0.15 on every spiking layer (the rate the asic_template specs were
measured at); the costing's speed does not depend on the rates' values.

``--mode exactness``: five architectures, their per-layer spike rates measured by a short
training on digits (TrainCostEvaluator, ``--epochs``, seed 0; cached in ``--rates-file``; with
``--rate R`` every spiking layer takes R instead and no training runs). Each asic_template
member is costed exhaustively by the loop and, outside it, configuration by configuration
through the functions the ``nasco cost`` command calls (defaults, resolve, CostModel.cost,
check_limits; a sample also through ``nasco cost --json`` itself). The brute-force front is
a plain dominance loop here (a loop over the points, each compared with all others), not
nasco.pareto. Checked: every configuration's totals are bit-identical; no configuration
dominates a member of the reported front; the reported front equals the brute-force front.

``--mode nsga2`` (sets HW_BUDGET): NSGA-II on the whole asic_template set against its
exhaustive front, per budget and seed: how many exhaustive front members it found, and the
hypervolume ratio (energy, latency, area, normalised to the exhaustive front's ideal and
nadir, reference 1.1 each; pymoo's HV). Rates as in exactness mode.

Accuracy is constant over configurations here (the network's trained accuracy): nasco has
no quantised-accuracy model yet, so the fronts are over energy, latency and area.

Usage::

    OMP_NUM_THREADS=1 python experiments/hw_inner_loop.py --mode speed \
        --out experiments/results/hw_inner_loop.md
    OMP_NUM_THREADS=1 python experiments/hw_inner_loop.py --mode exactness --mode nsga2 \\
        [--out experiments/results/hw_front_exactness.md]
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from nasco.dsl import TEMPLATE_KEY, defaults, load_energy_table, load_spec, resolve, search_dimensions  # noqa: E402
from nasco.evaluate import HW_BUDGET, HW_EXHAUSTIVE, HW_POPULATION, check_limits, hardware_front  # noqa: E402
from nasco.hw import CostModel, cost_configurations  # noqa: E402
from nasco.nn import plan_network, plan_workload  # noqa: E402
from nasco.space import Candidate, SearchSpace, hw_space  # noqa: E402

SEEDS = (0, 1, 2, 3, 4)
INPUT, CLASSES = (1, 8, 8), 10
DEFAULT_RATE = 0.15
OBJECTIVES = ("energy", "latency", "area")
TOTALS = {"energy": "energy_j", "latency": "latency_s", "area": "area_mm2"}


def architectures(seeds=SEEDS):
    """(seed, candidate, workload) of darts_snn candidates for digits."""
    ss = SearchSpace(load_spec("darts_snn"), load_spec("asic_template"))
    out = []
    for seed in seeds:
        cand = ss.sample(np.random.default_rng(seed))
        arch, _ = ss.resolve(cand)
        plan = plan_network(arch, cand.arch["cell"], INPUT, CLASSES)
        out.append((seed, cand, plan_workload(plan, name=f"darts_snn seed {seed}")))
    return ss, out


def spiking_layers(workload) -> list[str]:
    return [la.name for la in workload.layers if la.spiking_input and la.kind in ("conv", "linear")]


def measured_rates(ss, archs, epochs: int, path: Path) -> dict[int, dict]:
    """seed -> {"rates", "accuracy", "seconds"}: a short training on digits per architecture."""
    cache = json.loads(path.read_text()) if path.exists() else {}
    key = f"epochs={epochs}"
    todo = [(s, c) for s, c, _ in archs if str(s) not in cache.get(key, {})]
    if todo:
        from nasco.evaluate import TrainCostEvaluator, load_dataset

        ev = TrainCostEvaluator(ss, load_dataset("digits", seed=0), epochs=epochs)
        for seed, cand in todo:
            t0 = time.perf_counter()
            r = ev.evaluate(cand, 0)
            cache.setdefault(key, {})[str(seed)] = {"rates": r.metrics["spike_rates"],
                                                    "accuracy": r.objectives["accuracy"],
                                                    "seconds": time.perf_counter() - t0}
            path.write_text(json.dumps(cache, indent=1, sort_keys=True))
            print(f"trained seed {seed}: accuracy {r.objectives['accuracy']:.3f} "
                  f"in {time.perf_counter() - t0:.0f} s", flush=True)
    return {s: cache[key][str(s)] for s, _, _ in archs}


# ---------------------------------------------------------------------- speed
def mode_speed(args) -> list[str]:
    _, archs = architectures(SEEDS[:args.archs])
    space = hw_space(load_spec("asic_template"))
    spaces = [("asic_template", space), *space.members.items()]
    lines = ["## Speed of the exhaustive loop", "",
             f"{len(archs)} darts_snn architectures for digits, spike rate {DEFAULT_RATE} on every spiking "
             f"layer; each timing the best of {args.repeat} runs (the machine is shared). 'per config' is "
             "CostModel(resolve(template, config), table).cost(workload, rates).total() in a Python loop "
             f"over {args.sample} configurations.", "",
             "| space | configs | layers | loop wall s | loop CPU s | configs/s (wall) | configs/s (CPU) | "
             "per config, configs/s (wall) | speed-up (wall) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for seed, _, w in archs:
        rates = dict.fromkeys(spiking_layers(w), DEFAULT_RATE)
        for name, sp in spaces:
            wall, cpu = [], []
            for _ in range(args.repeat):
                t0, c0 = time.perf_counter(), time.process_time()
                front = hardware_front(w, rates, sp, objectives=OBJECTIVES, exhaustive=10**9)
                wall.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            configs = list(sp.configurations())[:: max(1, sp.size() // args.sample)][:args.sample]
            tables = {t.name: load_energy_table(t) for t in sp.templates()}  # loaded once, outside the timing
            t0 = time.perf_counter()
            for hw in configs:
                member = sp.members[hw[TEMPLATE_KEY]] if TEMPLATE_KEY in hw else sp
                values = {k: v for k, v in hw.items() if k != TEMPLATE_KEY}
                CostModel(resolve(member.spec, values), tables[member.spec.name]).cost(w, rates).total()
            scalar = len(configs) / (time.perf_counter() - t0)
            rate = front.costed / min(wall)
            lines.append(f"| {name} (seed {seed}) | {front.costed} | {len(w)} | {min(wall):.3f} | "
                         f"{min(cpu):.3f} | {rate:,.0f} | {front.costed / min(cpu):,.0f} | {scalar:,.0f} | "
                         f"{rate / scalar:.1f}x |")
            print(lines[-1], flush=True)
    largest = max(sp.size() for _, sp in spaces if sp.size() <= HW_EXHAUSTIVE)
    how = "costed exhaustively." if space.size() <= HW_EXHAUSTIVE else "searched by NSGA-II (HW_BUDGET)."
    lines += ["", f"HW_EXHAUSTIVE is {HW_EXHAUSTIVE}: the largest space above costed exhaustively by default "
              f"has {largest} configurations; asic_template ({space.size()}) is {how}", ""]
    return lines


# ---------------------------------------------------------------------- exactness
def cli_path_cost(set_spec, member: str, values: dict, workload, rates, table) -> tuple[dict, dict]:
    """What `nasco cost` computes for one configuration (nasco.cli._cost._cmd_cost's calls):
    the member's defaults updated with the choices, resolve, CostModel.cost, the totals and
    check_limits against the template's specs."""
    template = set_spec.member(member)
    choice = defaults(template)
    choice.update(values)
    report = CostModel(resolve(template, choice), table).cost(workload, rates, default_rate=None)
    total = report.to_dict()["total"]
    violations = check_limits({m: total[k] for m, k in TOTALS.items()}, template.limits())
    return total, violations


def cli_cost_json(cand, rates: dict, folder: Path) -> dict:
    """`nasco cost --json` itself on a candidate row (digits: input 1,8,8, 10 classes)."""
    from nasco.cli import main

    path = folder / f"{cand.id}.json"
    path.write_text(json.dumps({**json.loads(cand.to_json()), "metrics": {"spike_rates": rates}}))
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
        rc = main(["cost", "--workload", str(path), "--space", "darts_snn", "--hw", "asic_template", "--json",
                   "--input-shape", "1,8,8", "--classes", "10"])
    assert rc == 0, rc
    return json.loads(buf.getvalue())


def plain_front(F: np.ndarray) -> list[int]:
    """Rows of F (minimisation) that no other row dominates: for each row, a comparison with
    every other row."""
    out = []
    for i in range(len(F)):
        no_worse = (F <= F[i]).all(axis=1)
        better = (F < F[i]).any(axis=1)
        if not (no_worse & better).any():
            out.append(i)
    return out


def mode_exactness(args, rates_of) -> list[str]:
    ss, archs = architectures()
    set_spec = load_spec("asic_template")
    space = hw_space(set_spec)
    lines = ["## Exactness of the exhaustive front", "",
             "Per architecture and asic_template member: configurations costed by the loop and, one by one, "
             "by the `nasco cost` path; totals that differ in any bit (cycles, compute cycles, latency, "
             "energy and each part, area, utilisation, MACs, ops); configurations dominating a member of the "
             "reported front; reported and brute-force fronts (sizes, and whether they are equal as sets of "
             "configurations with their values).", "",
             "| seed | member | configs | feasible | differing totals | dominating a front member | "
             "front (loop) | front (brute force) | equal |", "|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    all_ok = True
    cli_checked = cli_bad = 0
    folder = Path(tempfile.mkdtemp(prefix="hw_front_cli_"))
    for seed, cand, w in archs:
        rates = rates_of[seed]["rates"]
        for name, member in space.members.items():
            table = load_energy_table(member.spec)
            dims = search_dimensions(member.spec)
            configs = [dict(zip(dims, c)) for c in itertools.product(*(c.options for c in dims.values()))]
            brute = [cli_path_cost(set_spec, name, c, w, rates, table) for c in configs]
            batched = cost_configurations(member.spec, table, configs, w, rates)
            differing = 0
            for k, (total, _) in enumerate(brute):
                flat = {**{f"energy_{p}": v for p, v in total["energy"].items()},
                        **{key: v for key, v in total.items() if key != "energy"}}
                differing += any(batched[key][k] != v for key, v in flat.items())
            front = hardware_front(w, rates, member, objectives=OBJECTIVES, exhaustive=10**9)
            feasible = [k for k, (_, v) in enumerate(brute) if not v]
            F = np.array([[brute[k][0][TOTALS[o]] for o in OBJECTIVES] for k in feasible])
            expected = ({json.dumps(configs[feasible[i]], sort_keys=True) for i in plain_front(F)}
                        if feasible else set())
            got = {json.dumps(p.hw, sort_keys=True) for p in front.points}
            values_ok = all(p.values == {o: brute[configs.index(p.hw)][0][TOTALS[o]] for o in OBJECTIVES}
                            for p in front.points)
            fr = np.array([[p.values[o] for o in OBJECTIVES] for p in front.points])
            dominating = sum(int(((F <= f).all(axis=1) & (F < f).any(axis=1)).any())
                             for f in fr.reshape(-1, len(OBJECTIVES))) if feasible else 0
            equal = got == expected and values_ok and front.feasible == bool(feasible)
            all_ok &= equal and differing == 0 and dominating == 0
            lines.append(f"| {seed} | {name} | {len(configs)} | {len(feasible)} | {differing} | "
                         f"{dominating} | "
                         f"{len(got)} | {len(expected)} | {'yes' if equal else 'NO'} |")
            print(lines[-1], flush=True)
            # `nasco cost --json` itself, on a few configurations spread over the member
            for c in configs[:: max(1, len(configs) // args.cli_sample)][:args.cli_sample]:
                hw = {TEMPLATE_KEY: name, **c}
                out = cli_cost_json(Candidate.make(cand.arch, hw), rates, folder)
                total, violations = cli_path_cost(set_spec, name, c, w, rates, table)
                cli_checked += 1
                cli_bad += out["total"] != total or out["violations"] != violations
    lines += ["", f"`nasco cost --json` run on {cli_checked} of these configurations: {cli_bad} differ from "
              "the path above.", "", f"All checks passed: {'yes' if all_ok and cli_bad == 0 else 'NO'}.", ""]
    return lines


# ---------------------------------------------------------------------- NSGA-II
def mode_nsga2(args, rates_of) -> list[str]:
    from pymoo.indicators.hv import HV

    _, archs = architectures()
    space = hw_space(load_spec("asic_template"))
    lines = ["## NSGA-II against the exhaustive front (asic_template, all members)", "",
             f"Population {HW_POPULATION}; seeds {', '.join(map(str, args.nsga_seeds))}; budget = distinct "
             "configurations costed. 'found': exhaustive front members NSGA-II's front holds (same "
             "configuration); HV ratio: hypervolume of NSGA-II's front / the exhaustive front's (energy, "
             "latency, area, normalised to the exhaustive front's ideal and nadir, reference 1.1).", "",
             "| seed | budget | exhaustive front | found (mean, min-max) | HV ratio (mean, min) | "
             "seconds (mean) |",
             "|---:|---:|---:|---:|---:|---:|"]
    summary: dict[int, list[float]] = {}
    for seed, _, w in archs:
        rates = rates_of[seed]["rates"]
        ex = hardware_front(w, rates, space, objectives=OBJECTIVES, exhaustive=10**9)
        Fx = np.array([[p.values[o] for o in OBJECTIVES] for p in ex.points])
        ideal, nadir = Fx.min(axis=0), Fx.max(axis=0)
        span = np.where(nadir > ideal, nadir - ideal, 1.0)
        hv = HV(ref_point=np.full(len(OBJECTIVES), 1.1))
        hv_ex = hv((Fx - ideal) / span)
        keys = {json.dumps(p.hw, sort_keys=True) for p in ex.points}
        for budget in args.budgets:
            found, ratio, secs = [], [], []
            for s in args.nsga_seeds:
                t0 = time.perf_counter()
                nf = hardware_front(w, rates, space, objectives=OBJECTIVES, exhaustive=0, budget=budget,
                                    seed=s, proposed=space.defaults())
                secs.append(time.perf_counter() - t0)
                got = {json.dumps(p.hw, sort_keys=True) for p in nf.points}
                found.append(len(got & keys))
                Fn = np.array([[p.values[o] for o in OBJECTIVES] for p in nf.points if not p.violations])
                ratio.append(hv((Fn - ideal) / span) / hv_ex if len(Fn) else 0.0)
            summary.setdefault(budget, []).extend(ratio)
            lines.append(f"| {seed} | {budget} | {len(keys)} | {np.mean(found):.1f} "
                         f"({min(found)}-{max(found)}) | "
                         f"{np.mean(ratio):.4f} ({min(ratio):.4f}) | {np.mean(secs):.2f} |")
            print(lines[-1], flush=True)
    lines += ["", "Mean HV ratio over architectures and seeds: "
              + ", ".join(f"budget {b}: {np.mean(r):.4f} (min {min(r):.4f})" for b, r in summary.items())
              + f". HW_BUDGET is {HW_BUDGET}.", ""]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", action="append", choices=("speed", "exactness", "nsga2"), required=True)
    ap.add_argument("--archs", type=int, default=5, help="architectures in speed mode")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sample", type=int, default=300, help="configurations costed one by one in speed mode")
    ap.add_argument("--epochs", type=int, default=2, help="training epochs that measure the spike rates")
    ap.add_argument("--rate", type=float, default=None, help="a uniform spike rate instead of training")
    ap.add_argument("--rates-file", default="experiments/results/hw_front_rates.json")
    ap.add_argument("--cli-sample", type=int, default=4,
                    help="configurations per member through `nasco cost`")
    ap.add_argument("--budgets", type=int, nargs="+", default=[500, 1000, 2000, 4000])
    ap.add_argument("--nsga-seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    lines = [f"# Hardware inner loop ({time.strftime('%Y-%m-%d')})", "",
             "Regenerate: `OMP_NUM_THREADS=1 python experiments/hw_inner_loop.py "
             + " ".join(f"--mode {m}" for m in args.mode) + f" --out {args.out}`. Machine: shared 2-core "
             "CPU, one thread.", ""]
    rates_of = None
    if {"exactness", "nsga2"} & set(args.mode):
        ss, archs = architectures()
        if args.rate is None:
            rates_of = measured_rates(ss, archs, args.epochs, Path(args.rates_file))
            lines += [f"Spike rates: measured per layer by training each network {args.epochs} epochs on "
                      "digits (TrainCostEvaluator, seed 0; validation accuracy "
                      + ", ".join(f"seed {s}: {rates_of[s]['accuracy']:.3f}" for s in sorted(rates_of))
                      + f"); cached in {args.rates_file}.", ""]
        else:
            rates_of = {s: {"rates": dict.fromkeys(spiking_layers(w), args.rate)} for s, _, w in archs}
            lines += [f"Spike rates: {args.rate} on every spiking layer (not measured).", ""]
    for mode in args.mode:
        lines += {"speed": lambda: mode_speed(args), "exactness": lambda: mode_exactness(args, rates_of),
                  "nsga2": lambda: mode_nsga2(args, rates_of)}[mode]()
    Path(args.out).write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
