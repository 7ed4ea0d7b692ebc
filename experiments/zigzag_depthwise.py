"""Where nasco's and ZigZag's latencies part on mobilenetv2's layers: array mapping or memory.

For each layer both tools cost, the latency ratio nasco / ZigZag splits exactly into

    ratio = (nasco compute cycles / ZigZag ideal temporal cycles)
            x (nasco cycles / nasco compute cycles) / (ZigZag cycles / ZigZag ideal temporal cycles)

The first factor compares the two mappings onto the MAC array alone: nasco's array (the
template's unrolling, ``pe_array.unroll``, where it has one; else SCALE-Sim's fold counts or the
row-stationary mapping) against ZigZag's spatial unrolling and
temporal loop count (``ideal_temporal_cycle``, zigzag/cost_model/cost_model.py
``calc_overall_latency``: the temporal mapping's cycles, i.e. ``ideal_cycle /
mac_spatial_utilization``). The second and third are each tool's memory overhead on top of its
compute: nasco's exposed first and last tiles or DRAM bound, ZigZag's stalls, on- and
off-loading and systolic drain. ZigZag's numbers are its best mapping for latency from the
fixtures (tests/hw/fixtures/zigzag/layers.csv, written by the real ZigZag 3.9.1).

Usage::

    python experiments/zigzag_depthwise.py            # prints the markdown tables (about 5 s)
"""
from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

from nasco.dsl import load_energy_table, load_spec, resolve
from nasco.hw import CostModel, read_onnx

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "hw" / "fixtures" / "zigzag"
ACCELERATORS = ("tpu_like", "edge_tpu_like", "eyeriss_like", "tesla_npu_like")
NETWORK = "mobilenetv2"


def kind(row: dict) -> str:
    """depthwise (one input and one output channel per group), pointwise (1x1), k x k, or fc."""
    if row["type"] == "Gemm":
        return "fc"
    if int(row["G"]) > 1 and int(row["K"]) == 1 and int(row["C"]) == 1:
        return "depthwise"
    return "pointwise" if int(row["FX"]) == int(row["FY"]) == 1 else "kxk"


def gmean(values: list[float]) -> float:
    return math.exp(math.fsum(math.log(v) for v in values) / len(values))


def layers(acc: str) -> list[dict]:
    """Per layer both cost: kind, MACs, nasco's cycles and compute cycles, ZigZag's cycles, ideal
    temporal cycles and spatial utilisation."""
    with open(FIXTURES / "layers.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if (r["network"], r["accelerator"]) == (NETWORK, acc)]
    t = resolve(load_spec(ROOT / "search_spaces" / f"zigzag_{acc}.yaml"), {})
    rep = CostModel(t, load_energy_table(t)).cost(read_onnx(FIXTURES / "onnx" / f"{NETWORK}.onnx",
                                                            skip_unsupported=True))
    index = {name: i for i, name in enumerate(rep.names)}
    out = []
    for r in rows:
        i = index[r["name"]]
        su = float(r["spatial_utilization"])
        out.append({"name": r["name"], "kind": kind(r), "macs": int(r["macs"]),
                    "nasco": float(rep.cycles[i]), "nasco_compute": float(rep.compute_cycles[i]),
                    "zigzag": float(r["latency_opt_latency_cycles"]),
                    "zigzag_compute": float(r["ideal_cycles"]) / su, "zigzag_su": su})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.parse_args(argv)
    print(f"### {NETWORK}: latency ratio nasco / ZigZag split into mapping and memory, geometric means\n")
    print("| accelerator | layers | n | latency | compute (mapping) | nasco memory overhead | "
          "ZigZag memory overhead | MACs/cycle nasco | MACs/cycle ZigZag |")
    print("|---|---|---|---|---|---|---|---|---|")
    network = {}
    for acc in ACCELERATORS:
        rows = layers(acc)
        for k in ("depthwise", "pointwise", "kxk"):
            sel = [r for r in rows if r["kind"] == k]
            total = gmean([r["nasco"] / r["zigzag"] for r in sel])
            comp = gmean([r["nasco_compute"] / r["zigzag_compute"] for r in sel])
            over_n = gmean([r["nasco"] / r["nasco_compute"] for r in sel])
            over_z = gmean([r["zigzag"] / r["zigzag_compute"] for r in sel])
            mpc_n = gmean([r["macs"] / r["nasco_compute"] for r in sel])
            mpc_z = gmean([r["macs"] / r["zigzag_compute"] for r in sel])
            print(f"| {acc} | {k} | {len(sel)} | {total:.2f} | {comp:.2f} | {over_n:.2f} | {over_z:.2f} | "
                  f"{mpc_n:.1f} | {mpc_z:.1f} |")
        dw = [r for r in rows if r["kind"] == "depthwise"]
        rest = [r for r in rows if r["kind"] != "depthwise"]
        network[acc] = (math.fsum(r["nasco"] for r in rows) / math.fsum(r["zigzag"] for r in rows),
                        math.fsum(r["nasco"] for r in rest) / math.fsum(r["zigzag"] for r in rest),
                        math.fsum(r["zigzag"] for r in dw) / math.fsum(r["zigzag"] for r in rows),
                        math.fsum(r["nasco"] for r in dw) / math.fsum(r["nasco"] for r in rows))
    print(f"\n### {NETWORK}: network latency ratio with and without its depthwise layers\n")
    print("| accelerator | all layers | without depthwise | depthwise share of ZigZag's cycles | "
          "of nasco's |")
    print("|---|---|---|---|---|")
    for acc, (whole, rest, share_z, share_n) in network.items():
        print(f"| {acc} | {whole:.2f} | {rest:.2f} | {share_z:.0%} | {share_n:.0%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
