"""NB201 workload conventions: 'hwnasbench' costs every non-'none' edge and avg_pool_3x3 as a
3x3 conv; its assembled workloads equal the slow reference cell by cell, as 'nasco''s do."""
from __future__ import annotations

import dataclasses
import itertools
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from nasco.dsl import load_spec, resolve  # noqa: E402
from nasco.nn import DenseCellWorkloads, plan_network, plan_workload  # noqa: E402
from nasco.nn._nb201_bulk import CONVENTIONS, CellConvention, cell_convention  # noqa: E402

PAIRS = [(i, j) for i in range(1, 4) for j in range(i)]  # NB201's edge order


@pytest.fixture(scope="module")
def arch():
    return load_spec("nb201")


@pytest.mark.parametrize("convention", sorted(CONVENTIONS))
def test_every_pattern_of_none_edges_equals_the_reference(arch, convention):
    """All 64 patterns of 'none' edges with random other ops, on another input size."""
    build = DenseCellWorkloads(arch, (3, 16, 16), 7, convention=convention)
    rng = np.random.default_rng(1)
    ops = [op for op in arch.cell.ops if op != "none"]
    for mask in itertools.product((False, True), repeat=6):
        cell = [ops[int(rng.integers(len(ops)))] if m else "none" for m in mask]
        w, ref = build(cell, name="x"), build.planned(cell, name="x")
        assert w.layers == ref.layers, cell
        np.testing.assert_array_equal(w.columns(), ref.columns())


def test_hwnasbench_costs_every_edge_and_pools_as_convs(arch):
    """Each cell's edges with layers are exactly its non-'none', non-identity edges, dead or
    live, and no pool layer is left inside a cell."""
    build = DenseCellWorkloads(arch, (3, 16, 16), 7, convention="hwnasbench")
    for cell in itertools.product(["none", "skip_connect", "nor_conv_1x1", "avg_pool_3x3"], repeat=6):
        w = build(cell)
        want = {f"n{i}.e{j}" for (i, j), op in zip(PAIRS, cell) if op not in ("none", "skip_connect")}
        for pos in (0, 6, 16):  # a cell of each stage
            got = {la.name.split(".")[2] + "." + la.name.split(".")[3] for la in w.layers
                   if la.name.startswith(f"cells.{pos}.n") and ".e" in la.name}
            assert got == want, cell
        assert not [la for la in w.layers if la.kind == "pool" and ".e" in la.name]


def test_avg_pool_costs_like_nor_conv_3x3(arch):
    build = DenseCellWorkloads(arch, (3, 32, 32), 10, convention="hwnasbench")
    pool, conv = build(["avg_pool_3x3"] * 6), build(["nor_conv_3x3"] * 6)
    anon = [dataclasses.replace(la, name="") for la in pool.layers]
    assert anon == [dataclasses.replace(la, name="") for la in conv.layers]
    np.testing.assert_array_equal(pool.columns(), conv.columns())
    nasco = DenseCellWorkloads(arch, (3, 32, 32), 10)
    assert nasco(["avg_pool_3x3"] * 6).macs < pool.macs


def test_conventions_one_change_at_a_time(arch):
    """Each flag of CellConvention acts alone: node 1 (a 1x1 conv from the input) is a dead
    end, node 2 (an avg pool from the input) feeds the output."""
    cell = ["nor_conv_1x1", "avg_pool_3x3", "none", "none", "none", "skip_connect"]
    macs = {(p, a): DenseCellWorkloads(arch, (3, 32, 32), 10, convention=CellConvention(p, a))(cell).macs
            for p in (True, False) for a in (False, True)}
    dead = macs[False, False] - macs[True, False]  # the dead 1x1 conv, in every cell
    pool = macs[True, True] - macs[True, False]  # the pool as a 3x3 conv, in every cell
    assert dead > 0 and pool == 9 * dead  # same channels and map size, 9x the window
    assert macs[False, True] == macs[True, False] + dead + pool


def test_unknown_convention_and_darts_refused(arch):
    assert cell_convention("hwnasbench") is CONVENTIONS["hwnasbench"]
    with pytest.raises(ValueError, match="did you mean 'hwnasbench'"):
        DenseCellWorkloads(arch, (3, 32, 32), 10, convention="hwnasbnech")
    darts = resolve(load_spec("darts"), {})
    with pytest.raises(ValueError, match="dense cells only"):
        plan_network(darts, {}, (3, 32, 32), 10, prune_dead=False)


def test_unpruned_plan_runs_in_torch_with_the_workloads_macs(arch):
    """A conv fed by a node without inputs (zeros) is built and run; hooks count the MACs
    the unpruned workload costs."""
    torch = pytest.importorskip("torch")
    from nasco.nn import GraphNet

    torch.set_num_threads(1)
    cell = ["none", "nor_conv_1x1", "nor_conv_3x3", "skip_connect", "nor_conv_1x1", "none"]
    plan = plan_network(arch, {"edges": cell}, (3, 8, 8), 10, prune_dead=False)
    assert any(n.op == "zero" and ".n1." in n.name for n in plan.nodes)
    net = GraphNet(plan, arch).eval()
    macs = [0]

    def hook(m, args, out):
        kh, kw = m.kernel_size if isinstance(m, torch.nn.Conv2d) else (1, 1)
        cin = m.in_channels // m.groups if isinstance(m, torch.nn.Conv2d) else m.in_features
        macs[0] += out.numel() * kh * kw * cin

    for m in net.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        out = net(torch.rand(2, 3, 8, 8))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    assert macs[0] // 2 == plan_workload(plan).macs
    pruned = plan_workload(plan_network(arch, {"edges": cell}, (3, 8, 8), 10))
    assert plan_workload(plan).macs > pruned.macs
