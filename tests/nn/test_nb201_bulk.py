"""The bulk NB201 workload builder equals plan_workload(plan_network(...)) cell by cell."""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from nasco.dsl import load_spec
from nasco.hw import Workload
from nasco.nn import DenseCellWorkloads, nb201_workloads, official_cells, plan_network, plan_workload
from nasco.space import SearchSpace

SHAPE, CLASSES = (3, 32, 32), 10


@pytest.fixture(scope="module")
def arch():
    return load_spec("nb201")


@pytest.fixture(scope="module")
def all_workloads(arch):
    return nb201_workloads(arch)


def planned(arch, cell, shape=SHAPE, classes=CLASSES) -> Workload:
    return plan_workload(plan_network(arch, {"edges": list(cell)}, shape, classes))


def test_all_official_cells_spot_checked_against_plan_network(arch, all_workloads):
    space = SearchSpace(arch)
    assert len(all_workloads) == 15_625
    rng = np.random.default_rng(20240611)
    for i in [0, 15_624, *rng.choice(15_625, 50, replace=False).tolist()]:
        cand = space.from_index(i)
        w = all_workloads[i]
        assert w.name == f"nb201-{i}"
        assert w.layers == planned(arch, cand.arch["cell"]["edges"]).layers, i
        np.testing.assert_array_equal(w.columns(), Workload(w.layers).columns())


def test_official_cells_follow_the_official_index(arch):
    space = SearchSpace(arch)
    cells = official_cells(arch)
    assert len(cells) == 15_625 and len(set(cells)) == 15_625
    for i in (0, 1, 777, 15_624):
        assert list(cells[i]) == space.from_index(i).arch["cell"]["edges"]


def test_every_pattern_of_none_edges(arch):
    """All 64 patterns of dead edges (incl. a cell whose output is all zeros), random live ops,
    on another input size and class count."""
    build = DenseCellWorkloads(arch, (3, 16, 16), 7)
    rng = np.random.default_rng(0)
    live_ops = [op for op in arch.cell.ops if op != "none"]
    for mask in itertools.product((False, True), repeat=6):
        cell = [live_ops[int(rng.integers(len(live_ops)))] if m else "none" for m in mask]
        w = build(cell, name="x")
        ref = planned(arch, cell, (3, 16, 16), 7)
        assert w.layers == ref.layers, cell
        assert w.name == "x"
        np.testing.assert_array_equal(w.columns(), ref.columns())


def test_names_and_errors(arch):
    cells = [("nor_conv_3x3",) * 6, ("none",) * 6]
    ws = nb201_workloads(arch, cells, names=["a", "b"])
    assert [w.name for w in ws] == ["a", "b"]
    assert nb201_workloads(arch, cells)[0].name == "network"
    with pytest.raises(ValueError, match="2 cells"):
        nb201_workloads(arch, cells, names=["a"])
    build = DenseCellWorkloads(arch, SHAPE, CLASSES)
    with pytest.raises(ValueError, match="6 edges"):
        build(["none"] * 5)
    with pytest.raises(ValueError, match="unknown op 'conv_9x9'"):
        build(["conv_9x9"] + ["none"] * 5)


def test_spiking_and_darts_spaces_are_refused(arch):
    snn = dataclasses.replace(arch, neuron=load_spec("darts_snn").neuron)
    with pytest.raises(ValueError, match="spiking"):
        DenseCellWorkloads(snn, SHAPE, CLASSES)
    with pytest.raises(ValueError, match="dense cell"):
        DenseCellWorkloads(load_spec("darts"), SHAPE, CLASSES)
    with pytest.raises(ValueError, match="no official index"):
        official_cells(load_spec("darts"))
