"""Regenerate every validation of nasco's cost model into one markdown report with plots.

Sections (each computed here from the model and the stored references, or by running the
experiment script that owns it, in this order):

1. SCALE-Sim v3: compute cycles (Total - Stall) and SRAM reads/writes of the 171 fixture
   layers in tests/fixtures/scalesim/cases.csv; the prefetch-inclusive total separately.
2. Row stationary against Timeloop/Accelergy's Eyeriss-like example (cycles, energy per MAC
   and per level with its energy table) and against the Eyeriss chip's AlexNet and VGG-16
   figures (JSSC 2017), from tests/fixtures/timeloop/REFERENCE.md.
3. HW-NAS-Bench: experiments/nb201_hwnasbench.py (Spearman of all 15,625 NB201 cells).
4. SNN energy and break-even spike rates: experiments/snn_break_even.py.
5. Speed: experiments/bench_cost_model.py (skipped with --skip-bench).

Usage::

    OMP_NUM_THREADS=1 python experiments/report.py [--skip-bench] [--out experiments/results/REPORT.md]

Takes about 2-4 minutes on 2 cores (most of it the NB201 and benchmark scripts).
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from nasco.dsl import load_energy_table, load_spec, resolve  # noqa: E402
from nasco.hw import CostModel, Layer, Workload, systolic_compute_cycles, systolic_sram_accesses  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
SCALESIM = ROOT / "tests" / "fixtures" / "scalesim" / "cases.csv"
TIMELOOP = ROOT / "tests" / "fixtures" / "timeloop"

# Tolerances set by the issue that asked for these checks.
TOL_TIMELOOP_CYCLES, TOL_TIMELOOP_ENERGY, TOL_EYERISS_FPS = 0.30, 0.35, 0.25


def _model(template, **choices) -> CostModel:
    t = resolve(template, choices)
    return CostModel(t, load_energy_table(t))


def _pct(x: float) -> str:
    return f"{x * 100:+.1f} %"


# ---------------------------------------------------------------------- 1. SCALE-Sim
def scalesim_section() -> tuple[list[str], dict]:
    df = pd.read_csv(SCALESIM, comment="#")
    args = (df.dataflow.to_numpy(), df.array_rows.to_numpy(), df.array_cols.to_numpy(), df.ifmap_h.to_numpy(),
            df.ifmap_w.to_numpy(), df.filter_h.to_numpy(), df.filter_w.to_numpy(), df.channels.to_numpy(),
            df.num_filters.to_numpy(), df.stride.to_numpy())
    cycles = np.zeros(len(df), dtype=np.int64)
    sram = {k: np.zeros(len(df), dtype=np.int64) for k in ("ifmap_reads", "filter_reads", "ofmap_writes")}
    for flow in np.unique(args[0]):  # one vectorised call per dataflow
        m = args[0] == flow
        sub = (flow,) + tuple(a[m] for a in args[1:])
        cycles[m] = systolic_compute_cycles(*sub)
        for k, v in systolic_sram_accesses(*sub).items():
            sram[k][m] = v
    mism = {
        "compute cycles": int((cycles != df.compute_cycles.to_numpy()).sum()),
        "ifmap SRAM reads": int((sram["ifmap_reads"] != df.ifmap_sram_reads.to_numpy()).sum()),
        "filter SRAM reads": int((sram["filter_reads"] != df.filter_sram_reads.to_numpy()).sum()),
        "ofmap SRAM writes": int((sram["ofmap_writes"] != df.ofmap_sram_writes.to_numpy()).sum()),
    }
    prefetch = df.total_cycles_incl_prefetch.to_numpy() / np.maximum(cycles, 1)
    version = sorted(df.scalesim_version.astype(str).unique())
    lines = [
        "## 1. SCALE-Sim v3 (systolic OS/WS/IS)", "",
        f"{len(df)} layers from `{SCALESIM.relative_to(ROOT)}` (SCALE-Sim {', '.join(version)}; dataflows "
        f"{', '.join(sorted(df.dataflow.unique()))}; arrays "
        + ", ".join(sorted({f'{r}x{c}' for r, c in zip(df.array_rows, df.array_cols)})) + ").", "",
        "| quantity | mismatches |", "|---|---|",
        *[f"| {k} | {v} |" for k, v in mism.items()], "",
        "SCALE-Sim's prefetch-inclusive total (its first ifmap/filter fill before compute starts) is "
        f"{prefetch.min():.3f}-{prefetch.max():.3f}x the compute cycles (median {np.median(prefetch):.3f}); "
        "nasco reports compute cycles and charges DRAM transfers in its own latency model.", "",
    ]
    return lines, {"scalesim_layers": len(df), "scalesim_mismatches": sum(mism.values())}


# ---------------------------------------------------------------------- 2. reference designs
def _reference() -> dict:
    text = (TIMELOOP / "REFERENCE.md").read_text()
    return yaml.safe_load(re.findall(r"```yaml\n(.*?)```", text, re.S)[0])


def _conv(name, r, s, p, q, c, m, stride, groups=1) -> Layer:
    """Timeloop/Eyeriss shape names (C per group, M in all), padded ifmap."""
    return Layer(name, ifmap_h=(p - 1) * stride + r, ifmap_w=(q - 1) * stride + s, filter_h=r, filter_w=s,
                 channels=c * groups, num_filters=m, stride=stride, groups=groups)


def reference_section(out_dir: Path) -> tuple[list[str], dict]:
    ref = _reference()
    lines = ["## 2. Row stationary against Timeloop and the Eyeriss chip", ""]
    figures: dict = {}

    # Timeloop/Accelergy's Eyeriss-like example with its own energy table.
    run = next(r for r in ref["timeloop_reference_runs"] if r["name"] == "mobilenet_v1_conv1_like_default_problem")
    tpl = load_spec(TIMELOOP / "eyeriss_like_v0_4.yaml")
    layer = _conv("layer", run["R"], run["S"], run["P"], run["Q"], run["C"], run["M"], run["stride"])
    tot = _model(tpl).cost(Workload((layer,))).total()
    pj = tot["energy_j"] / tot["macs"] * 1e12
    levels = run["per_level_pJ_per_mac"]
    ours = {k: v / tot["macs"] * 1e12 for k, v in tot["energy"].items()}
    theirs = {"compute": levels["mac"], "register": levels["psum_spad"] + levels["weights_spad"] + levels["ifmap_spad"],
              "noc": 0.0, "sram": levels["shared_glb"], "dram": levels["DRAM"], "neuron": 0.0}
    dev_c, dev_e = tot["cycles"] / run["cycles"] - 1, pj / run["pJ_per_mac"] - 1
    figures.update(timeloop_cycles_dev=dev_c, timeloop_energy_dev=dev_e)
    lines += [
        f"### Timeloop/Accelergy Eyeriss-like example (`{TIMELOOP.relative_to(ROOT)}/eyeriss_like_v0_4.yaml`, "
        "energy table `timeloop_eyeriss_like`)", "",
        f"Layer: R=S={run['R']}, P=Q={run['P']}, C={run['C']}, M={run['M']}, stride {run['stride']} "
        f"({run['macs']:,} MACs). Source: {run['source']}.", "",
        "| | Timeloop | nasco | deviation | tolerance |", "|---|---|---|---|---|",
        f"| cycles | {run['cycles']:,} | {tot['cycles']:,} (compute {tot['compute_cycles']:,}) | {_pct(dev_c)} | "
        f"±{TOL_TIMELOOP_CYCLES:.0%} |",
        f"| energy per MAC (pJ) | {run['pJ_per_mac']:.2f} | {pj:.2f} | {_pct(dev_e)} | ±{TOL_TIMELOOP_ENERGY:.0%} |",
        "", "| level (pJ/MAC) | Timeloop | nasco |", "|---|---|---|",
        *[f"| {k} | {theirs[k]:.3f} | {ours[k]:.3f} |" for k in ("compute", "register", "sram", "dram")], "",
    ]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    keys = ["compute", "register", "sram", "dram"]
    x = np.arange(len(keys))
    ax.bar(x - 0.2, [theirs[k] for k in keys], 0.4, label="Timeloop")
    ax.bar(x + 0.2, [ours[k] for k in keys], 0.4, label="nasco")
    ax.set_xticks(x, ["MAC", "scratchpads", "global buffer", "DRAM"])
    ax.set_ylabel("pJ / MAC")
    ax.set_title(f"Eyeriss-like example: {pj:.2f} vs {run['pJ_per_mac']:.2f} pJ/MAC")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "report_timeloop_levels.png", dpi=120)
    plt.close(fig)
    lines += ["![per-level energy](report_timeloop_levels.png)", ""]

    # The Eyeriss chip: AlexNet (batch 4) and VGG-16 (batch 3) on eyeriss_like at 200 MHz.
    model = _model(load_spec("eyeriss_like"), clock_mhz=200)
    lines += ["### Eyeriss chip (JSSC 2017) on `eyeriss_like` (12x14 PEs, 200 MHz, Eyeriss relative energy table)", ""]
    for key, net, groups in (("eyeriss_chip_alexnet", "AlexNet", ("CONV2", "CONV4", "CONV5")),
                             ("eyeriss_chip_vgg16", "VGG-16", ())):
        chip = ref[key]
        layers = tuple(_conv(x["name"], x["R"], x["S"], x["P"], x["Q"], x["C"], x["M"], x["stride"],
                             groups=2 if x["name"] in groups else 1) for x in chip["layers"])
        rep = model.cost(Workload(layers, name=net))
        n = chip["layers"][0]["N"]
        per_image_ms = rep.latency_s * 1e3
        pub_total = np.array([x["total_latency_ms"] for x in chip["layers"]]) / n
        pub_proc = np.array([x["processing_latency_ms"] for x in chip["layers"]]) / n
        fps = 1.0 / rep.latency_s.sum()
        dev = fps / chip["total"]["fps"] - 1
        figures[f"{net}_fps"] = fps
        figures[f"{net}_fps_dev"] = dev
        target = f"tolerance ±{TOL_EYERISS_FPS:.0%}" if net == "AlexNet" else "no target: see below"
        lines += [
            f"**{net}**: {fps:.1f} fps against the published {chip['total']['fps']} fps ({_pct(dev)}; "
            f"{target}). Per image, in ms:", "",
            "| layer | published total | published processing | nasco | nasco compute only |", "|---|---|---|---|---|",
            *[f"| {x['name']} | {pub_total[i]:.2f} | {pub_proc[i]:.2f} | {per_image_ms[i]:.2f} | "
              f"{rep.compute_cycles[i] / 200e3:.2f} |" for i, x in enumerate(chip["layers"])], "",
        ]
        if net == "AlexNet":
            fig, ax = plt.subplots(figsize=(6, 3.2))
            x = np.arange(len(layers))
            ax.bar(x - 0.27, pub_total, 0.27, label="Eyeriss total")
            ax.bar(x, pub_proc, 0.27, label="Eyeriss processing")
            ax.bar(x + 0.27, per_image_ms, 0.27, label="nasco")
            ax.set_xticks(x, [lay.name for lay in layers])
            ax.set_ylabel("ms per image")
            ax.set_title(f"AlexNet on Eyeriss: {fps:.1f} vs {chip['total']['fps']} fps")
            ax.legend(fontsize=8)
            fig.tight_layout()
            fig.savefig(out_dir / "report_eyeriss_alexnet.png", dpi=120)
            plt.close(fig)
            lines += ["![AlexNet per layer](report_eyeriss_alexnet.png)", ""]
    lines += [
        "The chip's published *total* latency includes off-chip I/O that it does not overlap with "
        "compute; nasco's templates double-buffer and expose only the first tile's load and the last "
        "tile's store, so on AlexNet nasco sits near the chip's processing latency.", "",
        "VGG-16 is outside what the model predicts: the chip ran its layers at about 34 MACs per cycle "
        "(5.55 GMACs of CONV1-2 in 810.6 ms at 200 MHz), a fifth of its 168 PEs, while the RS mapping "
        "keeps ~150 busy. The published figures do not say where the time went (per-pass global-buffer "
        "refills and the 224-wide maps' ifmap traffic are candidates); nasco does not model it, so its "
        "VGG-16 latency is a lower bound, 3x below the chip's.", "",
    ]
    return lines, figures


# ---------------------------------------------------------------------- 3-5. other scripts
def run_script(args: list[str], result: Path, title: str) -> list[str]:
    cmd = [sys.executable, *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    took = time.perf_counter() - t0
    shown = "python " + " ".join(args)
    lines = [f"## {title}", "", f"`{shown}` ({took:.0f} s)", ""]
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return lines + ["**failed**:", "", "```", *tail, "```", ""]
    if result.suffix == ".md" and result.exists():
        body = result.read_text().strip().splitlines()
        # demote the script's own headings under this section
        lines += [("#" + ln) if ln.startswith("#") else ln for ln in body]
    elif result.exists():
        lines += ["```", *result.read_text().strip().splitlines(), "```"]
    else:
        lines += ["```", *proc.stdout.strip().splitlines()[-30:], "```"]
    return lines + [""]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=RESULTS / "REPORT.md")
    ap.add_argument("--skip-bench", action="store_true", help="leave out the speed benchmark (~1 min)")
    ap.add_argument("--skip-nb201", action="store_true", help="leave out the NB201 rank sweep (~1 min)")
    args = ap.parse_args(argv)
    out_dir = args.out.parent
    out_dir.mkdir(parents=True, exist_ok=True)

    lines = ["# nasco cost-model validation report", "",
             f"Regenerated by `python experiments/report.py` on {time.strftime('%Y-%m-%d')}.", ""]
    s1, f1 = scalesim_section()
    s2, f2 = reference_section(out_dir)
    summary = [
        "| check | figure | target |", "|---|---|---|",
        f"| SCALE-Sim v3, {f1['scalesim_layers']} layers | {f1['scalesim_mismatches']} mismatches | 0 |",
        f"| Timeloop Eyeriss-like example, cycles | {_pct(f2['timeloop_cycles_dev'])} | ±30 % |",
        f"| Timeloop Eyeriss-like example, energy per MAC | {_pct(f2['timeloop_energy_dev'])} | ±35 % |",
        f"| Eyeriss AlexNet frame rate | {f2['AlexNet_fps']:.1f} fps ({_pct(f2['AlexNet_fps_dev'])}) | ±25 % of 34.7 |",
        f"| Eyeriss VGG-16 frame rate | {f2['VGG-16_fps']:.2f} fps ({_pct(f2['VGG-16_fps_dev'])}) | (0.7) |",
        "", "HW-NAS-Bench rank, SNN break-even and speed: sections 3-5.", "",
    ]
    lines += summary + s1 + s2
    if not args.skip_nb201:
        lines += run_script(["experiments/nb201_hwnasbench.py"], RESULTS / "nb201_hwnasbench.md",
                            "3. HW-NAS-Bench: rank of all 15,625 NB201 cells")
    lines += run_script(["experiments/snn_break_even.py"], RESULTS / "snn_break_even.md",
                        "4. SNN energy against its ANN twins, break-even spike rates")
    if not args.skip_bench:
        lines += run_script(["experiments/bench_cost_model.py", "--repeat", "3", "--out",
                             str(RESULTS / "bench_cost_model.txt")], RESULTS / "bench_cost_model.txt",
                            "5. Speed of the cost model")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(summary))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
