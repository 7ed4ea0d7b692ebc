"""Cross-check nasco's cost model against ZigZag on ZigZag's own networks and accelerators.

nasco reads the three ONNX networks that zigzag-dse 3.9.1 ships (alexnet, resnet18, mobilenetv2;
copies in tests/hw/fixtures/zigzag/onnx) with :func:`nasco.hw.read_onnx` and costs them on the
templates translated from ZigZag's accelerators (search_spaces/zigzag_<name>.yaml). ZigZag's
numbers come from the fixtures that experiments/zigzag_fixtures.py wrote (the default) or, with
``--live``, from running ZigZag in this process (``pip install 'nasco[zigzag]'``).

Compared per layer (the conv and Gemm layers ZigZag costs, matched by ONNX node name) and per
network: nasco's energy against ZigZag's best mapping for energy, nasco's cycles against ZigZag's
best mapping for latency (ZigZag counts cycles; the templates' 1000 MHz clock makes a nasco
cycle a nanosecond). Reports nasco / ZigZag ratios per network and accelerator, the Spearman rank
correlation over all layers per accelerator (scipy.stats.spearmanr) and the time per layer of
both tools. Writes a JSON of every number and a plot; prints markdown tables.

    python experiments/zigzag_crosscheck.py                       # against the fixtures
    python experiments/zigzag_crosscheck.py --live --networks alexnet   # ZigZag runs here too
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from nasco.dsl import SpecError, load_energy_table, load_spec, resolve
from nasco.hw import CostModel, Workload, read_onnx

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "hw" / "fixtures" / "zigzag"
NETWORKS = ("alexnet", "resnet18", "mobilenetv2")
ACCELERATORS = ("tpu_like", "edge_tpu_like", "eyeriss_like", "tesla_npu_like")
GOAL_RATIO = 0.25     # the goal: per-network energy and latency within +-25 % of ZigZag's
GOAL_SPEARMAN = 0.9   # ... and a per-layer Spearman rank correlation of at least 0.9


def load_fixture_rows(fixtures: Path) -> list[dict]:
    """The rows of layers.csv with numbers as numbers."""
    with open(fixtures / "layers.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k, v in r.items():
            if k in ("network", "accelerator", "name", "type", "padding", "mem_energy_by_level_opt_energy",
                     "reused_from"):
                continue
            r[k] = float(v)
    return rows


def live_rows(networks, accelerators, lpf_limit: int) -> list[dict]:
    """Run ZigZag here through experiments/zigzag_fixtures.py's pipeline."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import zigzag_fixtures
    rows = []
    for acc in accelerators:
        for net in networks:
            got, _ = zigzag_fixtures.run_pair((net, acc, lpf_limit))
            rows += got
    return rows


def model(acc: str) -> CostModel:
    t = resolve(load_spec(ROOT / "search_spaces" / f"zigzag_{acc}.yaml"), {})
    return CostModel(t, load_energy_table(t))


def nasco_per_layer_seconds(cm: CostModel, workload: Workload, repeat: int) -> float:
    """Mean wall time of one layer in CostModel.cost over ``repeat`` calls on the whole workload."""
    cm.cost(workload)  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeat):
        cm.cost(workload)
    return (time.perf_counter() - t0) / repeat / len(workload)


def compare(rows: list[dict], onnx_dir: Path, networks, accelerators, repeat: int) -> dict:
    workloads = {net: read_onnx(onnx_dir / f"{net}.onnx", skip_unsupported=True) for net in networks}
    out: dict = {"networks": {}, "spearman": {}, "speed": {}, "layers": []}
    for acc in accelerators:
        cm = model(acc)
        e_n, e_z, l_n, l_z = [], [], [], []
        zz_s, nasco_s = [], []
        for net in networks:
            w = workloads[net]
            rep = cm.cost(w)
            index = {name: i for i, name in enumerate(rep.names)}
            zrows = [r for r in rows if r["network"] == net and r["accelerator"] == acc]
            if not zrows:
                continue
            sums = dict(e_n=0.0, e_z=0.0, l_n=0.0, l_z=0.0, macs_n=0, macs_z=0)
            for r in zrows:
                if r["name"] not in index:
                    raise LookupError(f"{onnx_dir / (net + '.onnx')}: expected ZigZag's layer {r['name']!r} "
                                      "among the layers read_onnx reads, found it missing; are the fixtures "
                                      "and the ONNX files of the same networks?")
                i = index[r["name"]]
                en = float(rep.energy_j[i]) * 1e12
                ln = float(rep.cycles[i])
                e_n.append(en), e_z.append(r["energy_opt_energy_pj"])
                l_n.append(ln), l_z.append(r["latency_opt_latency_cycles"])
                sums["e_n"] += en
                sums["e_z"] += r["energy_opt_energy_pj"]
                sums["l_n"] += ln
                sums["l_z"] += r["latency_opt_latency_cycles"]
                sums["macs_n"] += int(rep.macs[i])
                sums["macs_z"] += int(r["macs"])
                parts = {k: float(v[i]) * 1e12 for k, v in rep.energy.items()}
                out["layers"].append({"network": net, "accelerator": acc, "name": r["name"],
                                      "nasco_energy_pj": en, "zigzag_energy_pj": r["energy_opt_energy_pj"],
                                      "nasco_cycles": ln, "zigzag_cycles": r["latency_opt_latency_cycles"],
                                      "nasco_energy_parts_pj": parts,
                                      "zigzag_mac_energy_pj": r["mac_energy_opt_energy_pj"],
                                      "zigzag_mem_energy_by_level_pj":
                                          json.loads(r["mem_energy_by_level_opt_energy"])})
                if not r["reused_from"]:
                    zz_s.append(r["search_s"])
            matched = {r["name"] for r in zrows}
            rest = [i for i, n in enumerate(rep.names) if n not in matched]
            out["networks"][f"{net}/{acc}"] = {
                "energy_ratio": sums["e_n"] / sums["e_z"], "latency_ratio": sums["l_n"] / sums["l_z"],
                "nasco_energy_pj": sums["e_n"], "zigzag_energy_pj": sums["e_z"],
                "nasco_cycles": sums["l_n"], "zigzag_cycles": sums["l_z"],
                "macs_equal": sums["macs_n"] == sums["macs_z"], "layers": len(zrows),
                "nasco_only_layers": [rep.names[i] for i in rest],
                "nasco_only_energy_share": (float(rep.energy_j[rest].sum() / rep.energy_j.sum())
                                            if rest else 0.0),
            }
            nasco_s.append(nasco_per_layer_seconds(cm, w, repeat))
        rho_e = spearmanr(e_n, e_z).statistic
        rho_l = spearmanr(l_n, l_z).statistic
        out["spearman"][acc] = {"energy": float(rho_e), "latency": float(rho_l), "layers": len(e_n)}
        zz = float(np.mean(zz_s)) if zz_s else math.nan
        ns = float(np.mean(nasco_s))
        out["speed"][acc] = {"zigzag_s_per_searched_layer": zz, "nasco_s_per_layer": ns, "ratio": zz / ns,
                             "searched_layers": len(zz_s)}
    return out


def tables(res: dict, networks, accelerators, live: bool) -> str:
    lines = ["### Per network: nasco / ZigZag (energy vs ZigZag's best-energy mapping, "
             "cycles vs its best-latency mapping)", "",
             "| network | " + " | ".join(accelerators) + " |", "|---" * (len(accelerators) + 1) + "|"]
    for net in networks:
        cells = []
        for acc in accelerators:
            n = res["networks"].get(f"{net}/{acc}")
            cells.append("-" if n is None else f"E {n['energy_ratio']:.2f}, L {n['latency_ratio']:.2f}")
        lines.append(f"| {net} | " + " | ".join(cells) + " |")
    ratios = [v for n in res["networks"].values() for v in (n["energy_ratio"], n["latency_ratio"])]
    inside = sum(abs(r - 1) <= GOAL_RATIO for r in ratios)
    lines += ["", f"{inside} of {len(ratios)} ratios within +-{GOAL_RATIO:.0%}; "
              f"energy ratios {min(n['energy_ratio'] for n in res['networks'].values()):.2f}.."
              f"{max(n['energy_ratio'] for n in res['networks'].values()):.2f}, latency ratios "
              f"{min(n['latency_ratio'] for n in res['networks'].values()):.2f}.."
              f"{max(n['latency_ratio'] for n in res['networks'].values()):.2f}.", "",
              "### Per layer: Spearman rank correlation over the layers of the three networks", "",
              "| accelerator | layers | energy | latency |", "|---|---|---|---|"]
    for acc in accelerators:
        s = res["spearman"][acc]
        lines.append(f"| {acc} | {s['layers']} | {s['energy']:.3f} | {s['latency']:.3f} |")
    lines += ["", "### Time per layer" + (" (both measured in this run)" if live else
                                          " (ZigZag's from the fixture run, nasco's from this run)"), "",
              "| accelerator | ZigZag s per searched layer | nasco us per layer | ratio |",
              "|---|---|---|---|"]
    for acc in accelerators:
        s = res["speed"][acc]
        lines.append(f"| {acc} | {s['zigzag_s_per_searched_layer']:.2f} | {s['nasco_s_per_layer'] * 1e6:.1f} "
                     f"| {s['ratio']:,.0f} |")
    return "\n".join(lines)


def plot(res: dict, accelerators, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, len(accelerators), figsize=(4 * len(accelerators), 7.5))
    marks = {"alexnet": "o", "resnet18": "s", "mobilenetv2": "^"}
    for j, acc in enumerate(accelerators):
        for i, (nk, zk, what) in enumerate((("nasco_energy_pj", "zigzag_energy_pj", "energy (pJ)"),
                                             ("nasco_cycles", "zigzag_cycles", "cycles"))):
            ax = axes[i][j]
            for net, m in marks.items():
                pts = [(L[zk], L[nk]) for L in res["layers"]
                       if L["accelerator"] == acc and L["network"] == net]
                if pts:
                    z, n = zip(*pts)
                    ax.loglog(z, n, m, ms=4, alpha=0.7, label=net)
            lo = min(min(L[zk], L[nk]) for L in res["layers"] if L["accelerator"] == acc)
            hi = max(max(L[zk], L[nk]) for L in res["layers"] if L["accelerator"] == acc)
            ax.loglog([lo, hi], [lo, hi], "k-", lw=0.8)
            ax.loglog([lo, hi], [lo * 1.25, hi * 1.25], "k:", lw=0.6)
            ax.loglog([lo, hi], [lo * 0.75, hi * 0.75], "k:", lw=0.6)
            s = res["spearman"][acc]["energy" if i == 0 else "latency"]
            ax.set_title(f"{acc}: {what.split()[0]}, rho {s:.2f}", fontsize=9)
            ax.set_xlabel(f"ZigZag {what}", fontsize=8)
            ax.set_ylabel(f"nasco {what}", fontsize=8)
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--fixtures", type=Path, default=FIXTURES, help="folder of layers.csv (ZigZag's numbers)")
    ap.add_argument("--onnx-dir", type=Path, default=FIXTURES / "onnx", help="folder of the ONNX networks")
    ap.add_argument("--live", action="store_true", help="run ZigZag here instead of reading the fixtures")
    ap.add_argument("--lpf-limit", type=int, default=6, help="--live: LOMA's loop-prime-factor limit")
    ap.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=NETWORKS)
    ap.add_argument("--accelerators", nargs="+", default=list(ACCELERATORS), choices=ACCELERATORS)
    ap.add_argument("--repeat", type=int, default=200, help="nasco timing: CostModel.cost calls per workload")
    ap.add_argument("--out", type=Path, default=ROOT / "experiments" / "results" / "zigzag_crosscheck",
                    help="stem of the .json and .png written")
    args = ap.parse_args(argv)
    if args.live:
        try:
            import zigzag  # noqa: F401
        except ImportError:
            print("zigzag_crosscheck: --live needs ZigZag; expected zigzag-dse 3.9.1, found none; "
                  "pip install 'nasco[zigzag]' or drop --live", file=sys.stderr)
            return 2
        rows = live_rows(args.networks, args.accelerators, args.lpf_limit)
    else:
        if not (args.fixtures / "layers.csv").is_file():
            print(f"zigzag_crosscheck: {args.fixtures / 'layers.csv'}: expected ZigZag's fixture, "
                  "found none; "
                  "run experiments/zigzag_fixtures.py or pass --fixtures", file=sys.stderr)
            return 2
        rows = load_fixture_rows(args.fixtures)
    try:
        res = compare(rows, args.onnx_dir, args.networks, args.accelerators, args.repeat)
    except (SpecError, LookupError) as exc:
        print(f"zigzag_crosscheck: {exc}", file=sys.stderr)
        return 2
    res["live"] = args.live
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    plot(res, args.accelerators, args.out.with_suffix(".png"))
    print(tables(res, args.networks, args.accelerators, args.live))
    return 0


if __name__ == "__main__":
    sys.exit(main())
