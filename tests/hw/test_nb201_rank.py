"""Rank agreement of nasco's latency with HW-NAS-Bench's simulated Eyeriss latency (``eyeriss_ms``
of the shipped nb201 table) on fixed samples of NB201 cells (experiments/nb201_hwnasbench.py
does all 15,625).

nasco's own workload convention (dead branches pruned, pooling on the vector unit) caps the
rank correlation: on the 300-cell sample (seed 0) the Eyeriss-like systolic_template measures
Spearman rho 0.691 (ws), 0.689 (os) and 0.673 (is); over all cells 0.720, 0.717 and 0.693. Its
threshold guards against regressions of the cost model or of the NB201 workloads, not a target.

Under the 'hwnasbench' convention (every non-'none' edge costed, avg_pool_3x3 as a 3x3 conv,
as HW-NAS-Bench's figures behave; see nasco.nn._nb201_bulk) the issue's target applies:
Spearman rho >= 0.9 on a 500-cell sample (seed 1). Measured there: 0.996 (ws, os and is) and
0.975 (eyeriss_like, row stationary); over all cells 0.997, 0.996, 0.997 and 0.973. (Figures
of the cost model at the time of writing; experiments/results/nb201_hwnasbench.md has the run.)
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nasco.dsl import load_energy_table, load_spec, resolve
from nasco.dsl._vocab import OPS
from nasco.hw import CostModel
from nasco.nn import nb201_workloads, official_cells

# Eyeriss-like: 12x14 PEs at 200 MHz (Chen et al., JSSC 2017), 32+64+16 KB buffers, 64-bit DRAM
EYERISS = {"pe_array.rows": 12, "pe_array.cols": 14, "clock_mhz": 200, "buffers.ifmap_kb": 32,
           "buffers.filter_kb": 64, "buffers.ofmap_kb": 16, "bandwidth.dram_bytes_per_cycle": 8}


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return float(pd.DataFrame({"x": x, "y": y}).corr("spearman").iloc[0, 1])


def eyeriss_model(dataflow: str, template: str = "systolic_template") -> CostModel:
    """systolic_template with the Eyeriss settings and this dataflow, or another template (its own
    Eyeriss instance, such as eyeriss_like) at its defaults."""
    t = load_spec(template)
    values = {**EYERISS, "dataflow": dataflow} if template == "systolic_template" else {}
    return CostModel(resolve(t, values), load_energy_table(t))


# the row-stationary Eyeriss template (search_spaces/eyeriss_like.yaml)
EYERISS_LIKE = pytest.param("rs", "eyeriss_like", id="eyeriss_like")


@pytest.fixture(scope="module")
def sample(nb201):
    idx = np.sort(np.random.default_rng(0).choice(15_625, 300, replace=False))
    arch = load_spec("nb201")
    cells = official_cells(arch)
    wls = nb201_workloads(arch, [cells[i] for i in idx])
    return wls, nb201.query(idx, "eyeriss_ms")


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_eyeriss_like_latency_ranks_like_hwnasbench(sample, dataflow):
    wls, ey = sample
    lat = eyeriss_model(dataflow).cost_many(wls)["latency_s"]
    assert np.all(lat > 0)
    assert spearman(lat, ey) > 0.65


@pytest.fixture(scope="module")
def conventions(nb201):
    """500 seeded cells: their edge ops, workloads under both conventions, eyeriss_ms."""
    idx = np.sort(np.random.default_rng(1).choice(15_625, 500, replace=False))
    arch = load_spec("nb201")
    all_cells = official_cells(arch)
    cells = [all_cells[i] for i in idx]
    return (arch, cells, nb201_workloads(arch, cells), nb201_workloads(arch, cells, convention="hwnasbench"),
            nb201.query(idx, "eyeriss_ms"))


@pytest.mark.parametrize("dataflow,template", [("ws", "systolic_template"), ("os", "systolic_template"),
                                               ("is", "systolic_template"), EYERISS_LIKE])
def test_hwnasbench_convention_ranks_like_eyeriss_ms(conventions, dataflow, template):
    _arch, _cells, _nasco, hw, ey = conventions
    lat = eyeriss_model(dataflow, template).cost_many(hw)["latency_s"]
    assert np.all(lat > 0)
    assert spearman(lat, ey) >= 0.9


def _dead_edges(cell, nodes: int) -> set[tuple[int, int]]:
    """Non-'none' edges (i, j) (node j -> node i) whose input is not reached from the cell input
    or whose output does not reach the cell output, by a search written here, not cell_graph."""
    pairs = [(i, j) for i in range(1, nodes + 1) for j in range(i)]
    edges = [(i, j) for (i, j), op in zip(pairs, cell) if op != "none"]
    reached, reaches = {0}, {nodes}
    for i, j in sorted(edges):  # edges sorted by their head node: one pass is a topological sweep
        if j in reached:
            reached.add(i)
    for i, j in sorted(edges, reverse=True):
        if i in reaches:
            reaches.add(j)
    return {(i, j) for i, j in edges if j not in reached or i not in reaches}


def test_hwnasbench_convention_costs_dead_branches(conventions):
    """hwnasbench MACs - nasco MACs = each dead edge's conv MACs plus each live avg_pool_3x3's
    3x3-conv MACs, in every cell of every stage; strictly more when a conv or pool is dead."""
    arch, cells, nasco, hw, _ey = conventions
    # (channels, height, width) of each NB201 cell from the macro spec: a reduction doubles the
    # channels and halves the map (NB201's stride-2 residual block, Dong & Yang, ICLR 2020)
    c, h, w, stages = arch.macro.stem.channels, 32, 32, []
    for pos in range(arch.macro.cells):
        if pos in arch.macro.reductions:
            c, h, w = c * arch.macro.channel_multiplier, h // 2, w // 2
        else:
            stages.append((c, h, w))
    pairs = [(i, j) for i in range(1, arch.cell.nodes + 1) for j in range(i)]

    def conv_macs(op: str) -> int:  # an edge's MACs when it runs as a same-channel conv
        d = OPS[op]
        return 0 if d.kind in ("none", "skip") else sum(c * c * d.kernel ** 2 * h * w for c, h, w in stages)

    with_dead = 0
    for cell, a, b in zip(cells, nasco, hw):
        dead = _dead_edges(cell, arch.cell.nodes)
        extra = sum(conv_macs(op) for e, op in zip(pairs, cell) if e in dead)
        extra += sum(conv_macs(op) for e, op in zip(pairs, cell) if e not in dead and OPS[op].kind == "pool_avg")
        assert b.macs - a.macs == extra, cell
        if any(OPS[op].kind not in ("none", "skip") for e, op in zip(pairs, cell) if e in dead):
            assert b.macs > a.macs, cell
            with_dead += 1
    assert with_dead >= 10  # the sample has cells with dead conv/pool branches
