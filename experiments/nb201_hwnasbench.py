"""nasco's systolic latency of every NB201 cell vs HW-NAS-Bench's simulated Eyeriss latency.

HW-NAS-Bench (Li et al., ICLR 2021) gives the latency of the CIFAR-10 network of each of the
15,625 NAS-Bench-201 cells on a simulated Eyeriss (column ``eyeriss_ms`` of
shared/data/nb201/nb201_device_latency.csv.gz, via HayeonLee/HELP). This script costs the same
networks on an Eyeriss-like instance of ``asic_template`` with each systolic dataflow and
reports Spearman's rho and Kendall's tau of the two latencies: the baseline that a
row-stationary template will have to beat.

The Eyeriss-like instance (the nearest the template's choices allow):

* 12 x 14 PEs (Eyeriss's 168 PEs, Chen et al., JSSC 2017), 200 MHz (Eyeriss's clock);
* buffers ifmap 32 KB + filter 64 KB + ofmap 16 KB = 112 KB, toward Eyeriss's 108 KB global
  buffer (JSSC 2017); filters get the larger share because a 64-channel 3x3 layer's weights
  (36 KB at 8 bit) are NB201-CIFAR's largest operand;
* DRAM 8 bytes/cycle (a 64-bit interface);
* 8-bit weights and activations as the template fixes them (Eyeriss computes in 16 bit; at a
  fixed width this scales DRAM and SRAM traffic, not the systolic cycle counts).

Two diagnostics show what limits the rank correlation:

* ``MACs``: the rank correlation of the workload's MAC count alone;
* ``all edges, pool=conv3x3``: the same templates on workloads built the way HW-NAS-Bench's
  figures behave: every non-'none' edge costed whether or not it reaches the cell output
  (nasco prunes dead branches, see nasco.space.cell_graph) and avg_pool_3x3 costed as a 3x3
  conv (nasco costs pooling on the vector unit beside the array, one op per window element). The fit
  printed below, eyeriss_ms linear in the per-op edge counts over all six edges, is what
  suggests this convention; it is inferred from the data, not from HW-NAS-Bench's code.
  ``all edges`` and ``live edges, pool=conv3x3`` change one of the two conventions at a time;
  ``pool and adds free`` drops nasco's pool and add layers (the cost model before they were
  costed).

Usage::

    OMP_NUM_THREADS=1 python experiments/nb201_hwnasbench.py [--data PATH] [--out-dir experiments/results]
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd

from nasco.dsl import load_energy_table, load_spec, resolve
from nasco.hw import CostModel, Workload
from nasco.nn import nb201_workloads, official_cells, plan_network, plan_workload
from nasco.space import cell_graph

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "nb201" / "nb201_device_latency.csv.gz"
EYERISS = {"pe_array.rows": 12, "pe_array.cols": 14, "clock_mhz": 200, "buffers.ifmap_kb": 32,
           "buffers.filter_kb": 64, "buffers.ofmap_kb": 16, "bandwidth.dram_bytes_per_cycle": 8}
DATAFLOWS = ("ws", "os", "is")
OPS = ("skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def eyeriss_models(dataflows=DATAFLOWS) -> dict[str, CostModel]:
    t = load_spec("asic_template")
    table = load_energy_table(t)
    return {df: CostModel(resolve(t, {**EYERISS, "dataflow": df}), table) for df in dataflows}


def load_eyeriss_ms(path: Path) -> np.ndarray:
    d = pd.read_csv(path, usecols=["index", "eyeriss_ms"]).set_index("index")["eyeriss_ms"]
    return d.reindex(range(15_625)).to_numpy()


def rank_corr(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(Spearman rho, Kendall tau-b); scipy when available, else pandas."""
    try:
        from scipy.stats import kendalltau, spearmanr
        return float(spearmanr(x, y)[0]), float(kendalltau(x, y)[0])
    except ImportError:  # pragma: no cover - scipy is in the lock, pandas is the fallback
        s = pd.DataFrame({"x": x, "y": y})
        return float(s.corr("spearman").iloc[0, 1]), float(s.corr("kendall").iloc[0, 1])


def variant_workloads(arch, cells, prune: bool, pool_as_conv: bool) -> list[Workload]:
    """NB201 workloads under another costing convention (see the module docstring):
    ``prune=False`` costs every non-'none' edge (and sums them), ``pool_as_conv`` costs
    avg_pool_3x3 as a 3x3 conv. Only totals are used, so layers are grouped per edge and per
    node sum, not kept in network order."""
    pairs = [(i, j) for i in range(1, 4) for j in range(i)]  # NB201's edge order

    def planned(op: str) -> Workload:
        return plan_workload(plan_network(arch, {"edges": [op] * len(pairs)}, (3, 32, 32), 10))

    macro = planned("none")  # stem, reduction blocks, head
    per_edge: dict[tuple[int, str], Workload] = {}  # (edge, op) -> that edge's layers in all cells
    for op in ("nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"):
        layers = planned(op).layers
        for e, (i, j) in enumerate(pairs):
            per_edge[(e, op)] = Workload(tuple(la for la in layers if f".n{i}.e{j}." in la.name))
    # (node, summed edges) -> that node's add layers in all cells
    conv_layers = planned("nor_conv_1x1").layers
    sums = {(i, k): Workload(tuple(dataclasses.replace(la, operands=k) for la in conv_layers
                                   if la.name.endswith(f".n{i}.sum")))
            for i in (2, 3) for k in range(2, i + 1)}
    live_of: dict[tuple[bool, ...], set[int]] = {}
    out = []
    for ops in cells:
        mask = tuple(op != "none" for op in ops)
        if mask not in live_of:
            g = cell_graph(arch.cell, [(i, j, op) for (i, j), op in zip(pairs, ops)])
            live_of[mask] = {pairs.index((i, j)) for j, i in g.edges}
        live = live_of[mask] if prune else range(len(pairs))
        conv = ["nor_conv_3x3" if op == "avg_pool_3x3" and pool_as_conv else op for op in ops]
        edges = [per_edge[e, conv[e]] for e in live if (e, conv[e]) in per_edge]
        fan_in = [sum(1 for e in live if ops[e] != "none" and pairs[e][0] == i) for i in (2, 3)]
        adds = [sums[i, k] for i, k in zip((2, 3), fan_in) if k >= 2]
        out.append(Workload.concat([macro, *edges, *adds]))
    return out


def scatter(path: Path, ey: np.ndarray, series: dict[str, np.ndarray], stats: dict[str, tuple]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(series), figsize=(4 * len(series), 3.8), sharey=True)
    for ax, (name, lat) in zip(np.atleast_1d(axes), series.items()):
        ax.scatter(lat, ey, s=1, alpha=0.25, rasterized=True)
        rho, tau = stats[name]
        ax.set_title(f"{name}\nrho={rho:.3f} tau={tau:.3f}", fontsize=9)
        ax.set_xlabel("nasco latency (ms)")
    np.atleast_1d(axes)[0].set_ylabel("HW-NAS-Bench eyeriss_ms")
    fig.suptitle("NB201 CIFAR-10, 15,625 cells: nasco systolic (Eyeriss-like 12x14) vs HW-NAS-Bench Eyeriss",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out-dir", type=Path, default=ROOT / "experiments" / "results")
    args = ap.parse_args(argv)
    ey = load_eyeriss_ms(args.data)
    arch = load_spec("nb201")
    t0 = time.perf_counter()
    cells = official_cells(arch)
    wls = nb201_workloads(arch)
    t_build = time.perf_counter() - t0
    models = eyeriss_models()
    lat, stats, t_cost = {}, {}, {}
    for df, m in models.items():
        t0 = time.perf_counter()
        lat[df] = m.cost_many(wls)["latency_s"] * 1e3
        t_cost[df] = time.perf_counter() - t0
        stats[df] = rank_corr(lat[df], ey)
    macs = np.array([w.macs for w in wls], dtype=float)
    stats["MACs"] = rank_corr(macs, ey)
    t0 = time.perf_counter()
    variants = {"all edges, pool=conv3x3": (False, True), "all edges": (False, False),
                "live edges, pool=conv3x3": (True, True)}
    for name, (prune, pool_as_conv) in variants.items():
        wv = variant_workloads(arch, cells, prune, pool_as_conv)
        for df, m in models.items():
            key = f"{df}, {name}"
            lat[key] = m.cost_many(wv)["latency_s"] * 1e3
            stats[key] = rank_corr(lat[key], ey)
    free = [Workload(tuple(la for la in w.layers if la.kind not in ("pool", "add"))) for w in wls]
    for df, m in models.items():
        key = f"{df}, pool and adds free"
        lat[key] = m.cost_many(free)["latency_s"] * 1e3
        stats[key] = rank_corr(lat[key], ey)
    # the nasco convention rebuilt by variant_workloads must equal nasco's own workloads
    same = variant_workloads(arch, cells[:200], True, False)
    assert all(a.macs == b.macs for a, b in zip(same, wls)), "variant_workloads != nb201_workloads"
    for m in models.values():
        assert np.array_equal(m.cost_many(same)["cycles"], m.cost_many(wls[:200])["cycles"]), \
            "variant_workloads != nb201_workloads"
    t_full = time.perf_counter() - t0
    # eyeriss_ms against per-op edge counts over all six edges (no pruning)
    counts = np.array([[sum(o == op for o in c) for op in OPS] for c in cells], dtype=float)
    a = np.c_[counts, np.ones(len(counts))]
    coef = np.linalg.lstsq(a, ey, rcond=None)[0]
    r2 = 1 - ((ey - a @ coef) ** 2).sum() / ((ey - ey.mean()) ** 2).sum()

    rows = [("dataflow / workload", "Spearman rho", "Kendall tau", "median nasco/eyeriss", "cost time (s)")]
    for key in list(lat):
        rows.append((key, f"{stats[key][0]:.4f}", f"{stats[key][1]:.4f}", f"{np.median(lat[key] / ey):.3f}",
                     f"{t_cost[key]:.2f}" if key in t_cost else "-"))
    rows.append(("MACs (nasco workload)", f"{stats['MACs'][0]:.4f}", f"{stats['MACs'][1]:.4f}", "-", "-"))
    table = "\n".join("| " + " | ".join(r) + " |" + ("\n|" + "---|" * len(r) if i == 0 else "")
                      for i, r in enumerate(rows))
    fit = ", ".join(f"{op} {round(c, 4) + 0.0:.4f}" for op, c in zip(OPS, coef[:-1]))
    fit += f", constant {coef[-1]:.4f}"
    md = f"""# NB201 (CIFAR-10) on an Eyeriss-like systolic template vs HW-NAS-Bench's Eyeriss

Generated by `experiments/nb201_hwnasbench.py` over all 15,625 cells.
Template: `asic_template` with {EYERISS['pe_array.rows']}x{EYERISS['pe_array.cols']} PEs,
{EYERISS['clock_mhz']} MHz, buffers {EYERISS['buffers.ifmap_kb']}+{EYERISS['buffers.filter_kb']}+\
{EYERISS['buffers.ofmap_kb']} KB (ifmap+filter+ofmap, toward Eyeriss's 108 KB), DRAM
{EYERISS['bandwidth.dram_bytes_per_cycle']} B/cycle, 8-bit (Eyeriss itself is 16-bit).
Workloads built in {t_build:.2f} s (`nasco.nn.nb201_workloads`); the diagnostic variants
built and costed in {t_full:.2f} s. Rows without a convention use nasco's workload (dead
branches pruned; avg/max pooling and the cell nodes' element-wise adds costed on the vector
unit: one lane per array column, k*k ops per pooled output, n-1 adds per n-input sum).

{table}

Ground truth structure: a least-squares fit of `eyeriss_ms` on the number of edges carrying each
op, counted over all six edges whether live or not, gives R^2 = {r2:.6f}
(ms per edge: {fit}).
So HW-NAS-Bench's Eyeriss latency counts dead branches and costs avg_pool_3x3 exactly like
nor_conv_3x3 (inferred from the data). nasco's planned workload does neither: it costs
avg_pool_3x3 on the vector unit, not as a conv, and prunes dead branches (ws rho
{stats['ws'][0]:.3f}; with pooling and adds free, as before they were costed,
{stats['ws, pool and adds free'][0]:.3f}, which is how the MAC count ranks them:
{stats['MACs'][0]:.3f}). Costing pooling as a 3x3 conv lifts ws to
{stats['ws, live edges, pool=conv3x3'][0]:.3f}; also costing dead branches, to
{stats['ws, all edges, pool=conv3x3'][0]:.3f}. The workload convention, not the dataflow,
decides the rank correlation; a row-stationary template judged on nasco's workload meets the
same limit unless pooling is costed like a conv.

![scatter](nb201_hwnasbench.png)
"""
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "nb201_hwnasbench.md").write_text(md, encoding="utf-8")
    show = {k: lat[k] for k in ("ws", "os", "is", "ws, all edges, pool=conv3x3")}
    scatter(args.out_dir / "nb201_hwnasbench.png", ey, show, stats)
    print(md)
    print(f"wrote {args.out_dir / 'nb201_hwnasbench.md'} and nb201_hwnasbench.png")


if __name__ == "__main__":
    main()
