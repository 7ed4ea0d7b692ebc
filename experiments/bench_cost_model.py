"""Throughput of the analytical cost model: batched vs per-layer, all of NB201, vs SCALE-Sim.

Prints a short table:

(a) layer evaluations per second of ``CostModel.cost_many`` over the layers of all 15,625
    NB201 CIFAR-10 networks (~600k layers per call, repeated), against a baseline measured in
    the same run: ``CostModel.cost`` called on one-layer workloads in a Python loop;
(b) the time to build all NB201 workloads (``nasco.nn.nb201_workloads``; ``plan_network`` per
    cell extrapolated from a sample) and to cost them on one template (workloads prebuilt),
    batched and with a loop of ``cost()``;
(c) with ``--scalesim-python PATH`` (a Python with ``scalesim`` 3.0.0 and numpy<2.4, e.g.
    /tmp/ssim/bin/python), SCALE-Sim's time per layer on the distinct layer shapes of NB201
    networks, run in a subprocess, against nasco's on the same layers; nasco's compute cycles
    are checked against SCALE-Sim's Total - Stall on the way. Without it (c) is skipped.

Targets from the issue: >= 1e6 layer evaluations per second on one core, < 1 s for all of
NB201. Usage::

    OMP_NUM_THREADS=1 python experiments/bench_cost_model.py [--repeat 5] \
        [--scalesim-python /tmp/ssim/bin/python --scalesim-layers 6] [--out FILE]

The machine's speed varies from run to run (shared cores): figures move by up to ~1.5x.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from nasco.dsl import load_energy_table, load_spec, resolve  # noqa: E402
from nasco.hw import CostModel, Layer, Workload, stack_columns  # noqa: E402
from nasco.nn import nb201_workloads, official_cells, plan_network, plan_workload  # noqa: E402

# Eyeriss-like instance of systolic_template (see experiments/nb201_hwnasbench.py)
TEMPLATE = {"dataflow": "ws", "pe_array.rows": 12, "pe_array.cols": 14, "clock_mhz": 200,
            "buffers.ifmap_kb": 32, "buffers.filter_kb": 64, "buffers.ofmap_kb": 16,
            "bandwidth.dram_bytes_per_cycle": 8}

# Runs in the SCALE-Sim venv (no nasco there): reads a JSON job on stdin, writes one .cfg and
# one topology CSV with every layer, times a single run_scale, prints JSON. The .cfg follows
# experiments/scalesim_fixtures.py (large SRAMs: no stalls, so Total - Stall = compute cycles).
DRIVER = r'''
import io, json, sys, tempfile, time
from contextlib import redirect_stdout
from pathlib import Path
job = json.load(sys.stdin)
try:
    from scalesim.scale_sim import scalesim
except ImportError as exc:
    print(json.dumps({"error": f"scalesim not importable: {exc}"})); sys.exit(0)
with tempfile.TemporaryDirectory(prefix="ssim_bench_") as tmp:
    d = Path(tmp)
    (d / "arch.cfg").write_text(job["cfg"])
    head = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
            "Strides,\n")
    (d / "topo.csv").write_text(head + "".join(f"L{i}, " + ", ".join(map(str, l)) + ",\n"
                                               for i, l in enumerate(job["layers"])))
    (d / "layout.csv").write_text("Layer name,\n")
    t0 = time.perf_counter()
    with redirect_stdout(io.StringIO()):
        sim = scalesim(save_disk_space=True, verbose=False, config=str(d / "arch.cfg"),
                       topology=str(d / "topo.csv"), layout=str(d / "layout.csv"))
        sim.run_scale(top_path=str(d / "out"))
    seconds = time.perf_counter() - t0
    rows = [r for r in next((d / "out").glob("*/COMPUTE_REPORT.csv")).read_text().splitlines()[1:] if r.strip()]
    cyc = [int(round(float(r.split(",")[2]) - float(r.split(",")[3]))) for r in rows]
print(json.dumps({"seconds": seconds, "compute_cycles": cyc}))
'''


def model(dataflow: str = "ws") -> CostModel:
    t = load_spec("systolic_template")
    return CostModel(resolve(t, {**TEMPLATE, "dataflow": dataflow}), load_energy_table(t))


def best_of(fn, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), float(np.mean(times))


def bench_layers(m: CostModel, wls: list[Workload], repeat: int, n_loop: int, rng) -> dict:
    n_layers = sum(len(w) for w in wls)
    best, mean = best_of(lambda: m.cost_many(wls), repeat)
    cols, _ = stack_columns(wls)
    k_best, _ = best_of(lambda: m._layer_costs(cols, np.ones(cols.shape[1])), repeat)
    # Baseline: the same model, one layer per cost() call. Fresh one-layer workloads, so each
    # call also extracts its layer's columns, as a caller costing layer by layer would.
    pool = [la for w in wls[:: max(1, len(wls) // 500)] for la in w.layers]
    picks = [pool[i] for i in rng.choice(len(pool), n_loop, replace=False)]
    singles = [Workload((la,)) for la in picks]
    t0 = time.perf_counter()
    for w in singles:
        m.cost(w)
    loop = (time.perf_counter() - t0) / n_loop
    return {"n_layers": n_layers, "many_best": best, "many_mean": mean, "kernel_best": k_best,
            "loop_per_layer": loop}


def bench_nb201(m: CostModel, arch, repeat: int, n_plan: int, rng) -> tuple[dict, list[Workload]]:
    t0 = time.perf_counter()
    wls = nb201_workloads(arch)
    build = time.perf_counter() - t0
    cells = official_cells(arch)
    idx = rng.choice(len(cells), n_plan, replace=False)
    t0 = time.perf_counter()
    for i in idx:
        plan_workload(plan_network(arch, {"edges": list(cells[i])}, (3, 32, 32), 10))
    plan_each = (time.perf_counter() - t0) / n_plan
    cost_best, _ = best_of(lambda: m.cost_many(wls), repeat)
    fresh = nb201_workloads(arch)  # first costing of each workload: nothing cached beyond the build
    t0 = time.perf_counter()
    m.cost_many(fresh)
    cost_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for w in wls:
        m.cost(w)
    loop = time.perf_counter() - t0
    return {"build": build, "plan_each": plan_each, "n": len(wls), "cost_best": cost_best,
            "cost_first": cost_first, "cost_loop": loop}, wls


def distinct_layers(arch) -> list[Layer]:
    """The distinct conv/linear shapes of the NB201 networks (all-1x1 and all-3x3 cells)."""
    seen: dict[tuple, Layer] = {}
    for op in ("nor_conv_1x1", "nor_conv_3x3"):
        for la in plan_workload(plan_network(arch, {"edges": [op] * 6}, (3, 32, 32), 10)).layers:
            if la.kind not in ("conv", "linear"):  # pooling and adds are not SCALE-Sim layers
                continue
            key = (la.ifmap_h, la.ifmap_w, la.filter_h, la.filter_w, la.channels, la.num_filters, la.stride)
            seen.setdefault(key, la)
    return sorted(seen.values(), key=lambda la: la.macs)


def bench_scalesim(python: str, m: CostModel, layers: list[Layer], timeout: float) -> dict:
    # SCALE-Sim counts windows as ceil((ifmap - filter) / stride) + 1; trimming the padded
    # ifmap to (ofmap - 1) * stride + filter makes both count the same windows.
    topo = [((la.ofmap_h - 1) * la.stride + la.filter_h, (la.ofmap_w - 1) * la.stride + la.filter_w,
             la.filter_h, la.filter_w, la.channels, la.num_filters, la.stride) for la in layers]
    # The same .cfg as the SCALE-Sim fixtures (experiments/scalesim_fixtures.py), with buffers
    # large enough that no layer stalls.
    spec = importlib.util.spec_from_file_location("scalesim_fixtures", Path(__file__).with_name("scalesim_fixtures.py"))
    fixtures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixtures)
    cfg = fixtures.CFG_TEMPLATE.format(rows=m.rows, cols=m.cols, sram_kb=4096, bw=10, dataflow=m.t.dataflow)
    job = {"layers": topo, "cfg": cfg}
    with tempfile.NamedTemporaryFile("w", suffix="_ssim_driver.py", delete=False) as fh:
        fh.write(DRIVER)
    try:
        proc = subprocess.run([python, fh.name], input=json.dumps(job), capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1"})
    finally:
        os.unlink(fh.name)
    if proc.returncode != 0:
        return {"error": f"{python} exited {proc.returncode}: {proc.stderr.strip()[-300:]}"}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if "error" in out:
        return out
    wl = Workload(tuple(layers))
    reps = 200
    t0 = time.perf_counter()
    for _ in range(reps):
        rep = m.cost(Workload(tuple(layers)))
    nasco_cost = (time.perf_counter() - t0) / reps / len(layers)
    match = [int(a) == int(b) for a, b in zip(m.cost(wl).compute_cycles, out["compute_cycles"])]
    del rep
    return {"n": len(layers), "scalesim_per_layer": out["seconds"] / len(layers),
            "nasco_cost_per_layer": nasco_cost,
            "cycles_match": f"{sum(match)}/{len(match)}"}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="cost_many repetitions (best is reported)")
    ap.add_argument("--loop-layers", type=int, default=3000, help="layers in the per-layer cost() baseline")
    ap.add_argument("--plan-sample", type=int, default=100, help="cells planned one by one to extrapolate")
    ap.add_argument("--scalesim-python", default=None, help="a Python where `import scalesim` works")
    ap.add_argument("--scalesim-layers", type=int, default=6, help="distinct NB201 layers given to SCALE-Sim")
    ap.add_argument("--scalesim-timeout", type=float, default=600.0)
    ap.add_argument("--out", default=None, help="also write the table to this file")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    arch = load_spec("nb201")
    m = model()
    nb, wls = bench_nb201(m, arch, args.repeat, args.plan_sample, rng)
    lay = bench_layers(m, wls, args.repeat, args.loop_layers, rng)

    many_rate = lay["n_layers"] / lay["many_best"]
    loop_rate = 1.0 / lay["loop_per_layer"]
    rows = [
        ("(a) cost_many, all NB201 layers per call", f"{lay['n_layers']:,} layers",
         f"{many_rate:,.0f} layers/s (best of {args.repeat}; "
         f"mean {lay['n_layers'] / lay['many_mean']:,.0f})"),
        ("(a) same arithmetic in one pass, not batched", "",
         f"{lay['n_layers'] / lay['kernel_best']:,.0f} layers/s"),
        ("(a) baseline: cost() per one-layer workload, Python loop", f"{args.loop_layers:,} layers",
         f"{loop_rate:,.0f} layers/s"),
        ("(a) ratio cost_many / loop", "", f"{many_rate / loop_rate:,.0f}x"),
        ("(b) build all NB201 workloads (nb201_workloads)", f"{nb['n']:,} cells", f"{nb['build']:.2f} s"),
        ("(b) plan_network + plan_workload per cell", f"extrapolated from {args.plan_sample}",
         f"{nb['plan_each'] * nb['n']:.1f} s ({nb['plan_each'] * 1e3:.2f} ms/cell)"),
        ("(b) cost all NB201 on one template, cost_many", "prebuilt, columns cached",
         f"{nb['cost_best']:.3f} s"),
        ("(b) same, first costing after a fresh build", "", f"{nb['cost_first']:.3f} s"),
        ("(b) same, cost() per workload in a loop", "", f"{nb['cost_loop']:.2f} s"),
    ]
    if args.scalesim_python:
        layers = distinct_layers(arch)[: args.scalesim_layers]
        ss = bench_scalesim(args.scalesim_python, m, layers, args.scalesim_timeout)
        if "error" in ss:
            rows.append(("(c) SCALE-Sim", "skipped", ss["error"]))
        else:
            rows += [
                ("(c) SCALE-Sim 3.0.0 run_scale, per layer", f"{ss['n']} NB201 layers",
                 f"{ss['scalesim_per_layer']:.3f} s/layer"),
                ("(c) nasco cost() on the same layers, per layer", f"cycles match {ss['cycles_match']}",
                 f"{ss['nasco_cost_per_layer'] * 1e6:.1f} us/layer"),
                ("(c) nasco cost_many, per layer (from (a))", "", f"{1e6 / many_rate:.3f} us/layer"),
                ("(c) time ratio nasco/SCALE-Sim: cost() | cost_many", "",
                 f"{ss['nasco_cost_per_layer'] / ss['scalesim_per_layer']:.1e} | "
                 f"{1 / many_rate / ss['scalesim_per_layer']:.1e}"),
            ]
    else:
        rows.append(("(c) SCALE-Sim", "skipped", "pass --scalesim-python PATH (a Python with scalesim)"))
    w = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"template: systolic_template {TEMPLATE}; python {sys.version.split()[0]}, numpy {np.__version__}, "
             f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"]
    lines += [f"{r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]}" for r in rows]
    lines.append(f"targets: >= 1e6 layers/s on one core: {'met' if many_rate >= 1e6 else 'NOT met'}; "
                 f"all NB201 < 1 s: {'met' if nb['cost_best'] < 1.0 else 'NOT met'}")
    print("\n".join(lines))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
