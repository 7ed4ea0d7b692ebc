"""Generate ZigZag reference fixtures: per-layer energy and latency of ZigZag's bundled networks
on its bundled accelerators, with its best mapping for energy and its best mapping for latency.

Runs the real ZigZag (``pip install 'nasco[zigzag]'``, i.e. zigzag-dse 3.9.1 and ``six``, which
zigzag-dse 3.9.1 imports without declaring it) through nasco.hw's ZigZag pipeline
(nasco/hw/_zigzag.py, the one ``nasco cost --backend zigzag`` runs); nasco's cost model is not
used, so the numbers cannot depend on it.

Usage (with a venv where zigzag-dse 3.9.1 is installed)::

    OMP_NUM_THREADS=1 python experiments/zigzag_fixtures.py --out tests/hw/fixtures/zigzag --jobs 2

For each network x accelerator it runs ZigZag's own stage pipeline (ONNX parser, accelerator
parser, layer iterator, spatial-mapping generator, LOMA temporal-mapping generator, cost model
evaluation), as ``zigzag.api.get_hardware_performance_zigzag`` does, with two changes that
change no number ZigZag reports:

* one search per layer keeps both minima, the best mapping for energy and the best for
  latency (ZigZag's ``MinimalEnergyStage`` and ``MinimalLatencyStage`` rules, ties broken the
  same way), instead of running the whole search twice;
* a layer with the same type, loop sizes, dimension relations, padding, precisions and
  operand sources as an earlier layer of the same network reuses that layer's search.

Each finished network x accelerator is kept in ``--out``/partial/ until the end, so an
interrupted run resumes where it stopped. Writes ``layers.csv`` (one row per ZigZag layer),
``totals.json`` (sums per network and accelerator) and ``hardware.json`` (the constants of
ZigZag's accelerator files, read with PyYAML from the installed package) into ``--out``.
"""
from __future__ import annotations

import argparse
import csv
import importlib.metadata
import json
import math
import os
import platform
import sys
import time
from multiprocessing import Pool
from pathlib import Path
from typing import Any

from nasco.hw._zigzag import (
    LPF_LIMIT,
    NB_SPATIAL_MAPPINGS,
    PACKAGED_MAPPINGS,
    run_zigzag,
    zigzag_inputs,
    zigzag_mapping,
)

NETWORKS = ("alexnet", "resnet18", "mobilenetv2")
ACCELERATORS = ("tpu_like", "edge_tpu_like", "eyeriss_like", "tesla_npu_like")

FIELDS = ["network", "accelerator", "index", "name", "type", "K", "C", "OX", "OY", "FX", "FY", "G", "B",
          "stride_x", "stride_y", "dilation_x", "dilation_y", "padding", "macs",
          "energy_opt_energy_pj", "mac_energy_opt_energy_pj", "mem_energy_opt_energy_pj",
          "latency_opt_energy_cycles",
          "energy_opt_latency_pj", "latency_opt_latency_cycles", "ideal_cycles", "spatial_utilization",
          "mem_energy_by_level_opt_energy", "reused_from", "search_s"]


def _mapping_path(acc: str) -> str:
    # eyeriss_like ships without a mapping file in zigzag-dse 3.9.1; nasco ships one
    # (nasco/hw/zigzag_mappings/eyeriss_like.yaml) that links the operands to its memories and
    # leaves the spatial mapping to ZigZag's generator.
    return str(zigzag_mapping(acc))


def _dim(layer, name: str) -> int:
    for d, s in layer.layer_dim_sizes.items():
        if str(d) == name:
            return int(s)
    return 1


def _relation(layer, out_dim: str) -> tuple[int, int]:
    """(stride, dilation) of the ``ix = s*ox + d*fx`` relation of ``out_dim`` (1, 1 when absent)."""
    for rel in layer.dimension_relations:
        text = str(rel).replace(" ", "").lower()
        if f"*{out_dim.lower()}" in text:
            lhs, rhs = text.split("=")
            terms = rhs.split("+")
            s = d = 1
            for term in terms:
                coef, dim = term.split("*") if "*" in term else ("1", term)
                if dim == out_dim.lower():
                    s = int(coef)
                else:
                    d = int(coef)
            return s, d
    return 1, 1


def _level_energy(cme) -> str:
    """Memory energy (pJ) per memory name, summed over the operands it holds."""
    out: dict[str, float] = {}
    for op, levels in cme.mem_energy_breakdown.items():
        mems = cme.mem_hierarchy_dict[cme.memory_operand_links.layer_to_mem_op(op)]
        for level, energy in zip(mems, levels):
            name = level.name
            out[name] = out.get(name, 0.0) + float(energy)
    return json.dumps({k: round(v, 6) for k, v in out.items()}, sort_keys=True)


def run_pair(args: tuple[str, str, int]) -> tuple[list[dict], float]:
    """Every layer of one network on one accelerator; returns the rows and the wall time."""
    net, acc, lpf = args
    inputs = zigzag_inputs()
    t0 = time.perf_counter()
    results = run_zigzag(str(inputs / "workload" / f"{net}.onnx"), str(inputs / "hardware" / f"{acc}.yaml"),
                         _mapping_path(acc), lpf)
    rows = []
    for i, (e, info) in enumerate(results):
        layer, lat = info["layer"], info["latency"]
        sx, dx = _relation(layer, "OX")
        sy, dy = _relation(layer, "OY")
        rows.append({
            "network": net, "accelerator": acc, "index": i, "name": layer.name, "type": layer.type,
            **{d: _dim(layer, d) for d in ("K", "C", "OX", "OY", "FX", "FY", "G", "B")},
            "stride_x": sx, "stride_y": sy, "dilation_x": dx, "dilation_y": dy,
            "padding": str(layer.padding).replace(",", ";"), "macs": int(layer.total_mac_count),
            "energy_opt_energy_pj": float(e.energy_total), "mac_energy_opt_energy_pj": float(e.mac_energy),
            "mem_energy_opt_energy_pj": float(e.mem_energy),
            "latency_opt_energy_cycles": float(e.latency_total2),
            "energy_opt_latency_pj": float(lat.energy_total),
            "latency_opt_latency_cycles": float(lat.latency_total2), "ideal_cycles": float(lat.ideal_cycle),
            "spatial_utilization": float(lat.mac_spatial_utilization),
            "mem_energy_by_level_opt_energy": _level_energy(e), "reused_from": info["reused_from"],
            "search_s": round(info["search_s"], 3),
        })
    return rows, time.perf_counter() - t0


def _hardware_constants() -> dict[str, Any]:
    """The numbers of ZigZag's accelerator files, as written there (PyYAML, no ZigZag parsing)."""
    import yaml
    out = {}
    for acc in ACCELERATORS:
        path = zigzag_inputs() / "hardware" / f"{acc}.yaml"
        data = yaml.safe_load(path.read_text())
        mems = {}
        for name, m in data["memories"].items():
            mems[name] = {"size_bits": m["size"], "r_cost_pj": m["r_cost"], "w_cost_pj": m["w_cost"],
                          "operands": m["operands"], "served_dimensions": m["served_dimensions"],
                          "bandwidth_max_bits": {p["name"]: p["bandwidth_max"] for p in m["ports"]}}
        oa = data["operational_array"]
        mapping = yaml.safe_load(Path(_mapping_path(acc)).read_text())
        default = next(m for m in mapping if m["name"] == "default")
        spatial = {dim: [str(u) for u in unrolls]
                   for dim, unrolls in default.get("spatial_mapping", {}).items()}
        out[acc] = {"file": f"zigzag/inputs/hardware/{acc}.yaml", "memories": mems,
                    "unit_energy_pj": oa["unit_energy"], "dimensions": oa["dimensions"], "sizes": oa["sizes"],
                    "mapping_file": (f"nasco/hw/zigzag_mappings/{acc}.yaml" if acc in PACKAGED_MAPPINGS
                                     else f"zigzag/inputs/mapping/{acc}.yaml"),
                    "default_spatial_mapping": spatial}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("tests/hw/fixtures/zigzag"), help="fixture folder")
    ap.add_argument("--jobs", type=int, default=2, help="processes (one network x accelerator each)")
    ap.add_argument("--lpf-limit", type=int, default=LPF_LIMIT,
                    help="LOMA's loop-prime-factor limit: fewer temporal mappings searched below ZigZag's 6")
    ap.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=NETWORKS)
    ap.add_argument("--accelerators", nargs="+", default=list(ACCELERATORS), choices=ACCELERATORS)
    args = ap.parse_args(argv)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    pairs = [(n, a, args.lpf_limit) for a in args.accelerators for n in args.networks]
    # Largest first, so the pool's tail is short.
    pairs.sort(key=lambda p: NETWORKS.index(p[0]), reverse=True)
    t0 = time.perf_counter()
    partial = out / "partial"  # one file per finished pair, so an interrupted run keeps its work
    partial.mkdir(exist_ok=True)
    done = {}
    todo = []
    for p in pairs:
        f = partial / f"{p[0]}__{p[1]}.json"
        if f.exists():
            done[p[:2]] = tuple(json.loads(f.read_text()))
        else:
            todo.append(p)
    with Pool(args.jobs) as pool:
        for p, result in zip(todo, pool.imap(run_pair, todo, chunksize=1)):
            (partial / f"{p[0]}__{p[1]}.json").write_text(json.dumps(result))
            done[p[:2]] = result
            print(f"{p[0]} on {p[1]}: {len(result[0])} layers in {result[1]:.0f} s", flush=True)
    results = [done[p[:2]] for p in pairs]
    rows = [r for rs, _ in results for r in rs]
    rows.sort(key=lambda r: (NETWORKS.index(r["network"]), ACCELERATORS.index(r["accelerator"]), r["index"]))
    with open(out / "layers.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    totals: dict[str, Any] = {}
    for (net, acc, _), (rs, wall) in zip(pairs, results):
        key = f"{net}/{acc}"
        totals[key] = {
            "layers": len(rs),
            "energy_opt_energy_pj": math.fsum(r["energy_opt_energy_pj"] for r in rs),
            "latency_opt_energy_cycles": math.fsum(r["latency_opt_energy_cycles"] for r in rs),
            "energy_opt_latency_pj": math.fsum(r["energy_opt_latency_pj"] for r in rs),
            "latency_opt_latency_cycles": math.fsum(r["latency_opt_latency_cycles"] for r in rs),
            "macs": sum(r["macs"] for r in rs),
            "wall_s": round(wall, 1),
        }
    meta = {"zigzag-dse": importlib.metadata.version("zigzag-dse"), "python": platform.python_version(),
            "numpy": importlib.metadata.version("numpy"), "onnx": importlib.metadata.version("onnx"),
            "lpf_limit": args.lpf_limit, "nb_spatial_mappings_generated": NB_SPATIAL_MAPPINGS,
            "jobs": args.jobs, "wall_s": round(time.perf_counter() - t0, 1),
            "reused_from_partial": [f"{p[0]}/{p[1]}" for p in pairs if p not in todo],
            "command": "OMP_NUM_THREADS=1 python "
                       + " ".join(["experiments/zigzag_fixtures.py"] + sys.argv[1:])}
    (out / "totals.json").write_text(json.dumps({"meta": meta, "totals": dict(sorted(totals.items()))},
                                                indent=1) + "\n")
    (out / "hardware.json").write_text(json.dumps(_hardware_constants(), indent=1) + "\n")
    for p in pairs:  # every pair is in the files now: the resume folder has served
        (partial / f"{p[0]}__{p[1]}.json").unlink()
    partial.rmdir()
    print(json.dumps(meta))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
