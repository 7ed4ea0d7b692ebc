"""The train evaluator records, for a spiking candidate on its accelerator, its ⌈log2(T+1)⌉-bit
ANN twin (same template, MAC PEs), ``snn_advantage`` = twin energy / SNN energy and the
break-even rate; ``snn_advantage`` is an objective (maximised), per hardware-front member too."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from nasco.core import BUILTIN_OBJECTIVES, Candidate
from nasco.dsl import load_energy_table, load_spec
from nasco.evaluate import TrainCostEvaluator
from nasco.evaluate._data import load_dataset
from nasco.evaluate._joint import emitted_rates
from nasco.hw import CostModel, Workload
from nasco.nn import plan_network, plan_workload
from nasco.space import SearchSpace

TINY = {("macro", "cells"): 1, ("macro", "stem", "channels"): 8, ("macro", "reductions"): [],
        ("timesteps",): 2, ("cell", "pool_bn"): False}
# sata_like with its dataflow and spike format left (2 x 2 configurations).
FIXED = {("pe_array", "rows"): 16, ("pe_array", "cols"): 8, ("buffers", "ifmap_kb"): 32,
         ("buffers", "filter_kb"): 144, ("buffers", "ofmap_kb"): 32, ("buffers", "membrane_kb"): 4,
         ("bandwidth", "dram_bytes_per_cycle"): 16, ("pe", "skip_zero_spikes"): False, ("clock_mhz",): 400,
         ("bits", "membrane"): 8, ("spikes", "format"): {"choice": ["dense", "aer"], "default": "dense"}}
OBJ = ("accuracy", "energy", "snn_advantage")


@pytest.fixture(scope="module")
def setup():
    space = SearchSpace(load_spec("darts_snn", overrides=TINY), load_spec("sata_like", overrides=FIXED))
    data = load_dataset("digits", seed=0, limit=300)
    ev = TrainCostEvaluator(space, data, OBJ, epochs=2, lr=0.05)
    cand = space.sample(np.random.default_rng(4))
    cand = Candidate.make(cand.arch, {**cand.hw, "spikes.format": "dense"})
    return space, data, ev, cand, ev.evaluate(cand, 0)


def _twin_energy(workload: Workload, template, bits: int) -> float:
    """The ANN twin costed without nasco.hw's twin helpers: neurons dropped, every layer run
    once on real values, MAC PEs, ``bits``-bit activations."""
    layers = tuple(dataclasses.replace(la, spiking_input=False, timesteps=1, output_bits=0)
                   for la in workload.layers if la.kind != "neuron")
    t = dataclasses.replace(template, pe=dataclasses.replace(template.pe, type="mac", skip_zero_spikes=False),
                            bits=dataclasses.replace(template.bits, activation=bits))
    return CostModel(t, load_energy_table(template)).cost(Workload(layers)).total()["energy_j"]


def _workload(space, data, cand):
    arch, _ = space.resolve(cand)
    plan = plan_network(arch, cand.arch["cell"], data.input_shape, data.num_classes)
    return plan, plan_workload(plan, name=cand.id)


def test_the_row_records_its_twin_and_snn_advantage(setup):
    space, data, ev, cand, res = setup
    assert res.status in ("ok", "infeasible")
    _, workload = _workload(space, data, cand)
    (template,) = space.hw.resolve(cand.hw)
    assert template.spikes.format == "dense"
    rec = ev._store.get(res.metrics["training"])
    snn = CostModel(template, load_energy_table(template)).cost(workload, rec.spike_rates).total()["energy_j"]
    twin = _twin_energy(workload, template, 2)  # T = 2: ceil(log2(3)) = 2 bits
    got = res.metrics["snn_twin"]
    assert got["twin_energy"] == twin and got["twin_bits"] == 2
    assert res.objectives["energy"] == snn
    assert res.objectives["snn_advantage"] == got["snn_advantage"] == twin / snn
    assert got["break_even"] in ("never", "always", "rate")
    assert (got["break_even_rate"] is None) == (got["break_even"] != "rate")
    json.dumps(res.metrics)  # the ledger writes it


def test_members_carry_their_own_snn_advantage(setup):
    space, data, ev, cand, res = setup
    plan, workload = _workload(space, data, cand)
    rec = ev._store.get(res.metrics["training"])
    rates = {**emitted_rates(plan, rec.spike_rates), **rec.spike_rates}
    assert res.members  # the other formats / dataflows
    for m in res.members:
        (template,) = space.hw.resolve(m["hw"])
        snn = CostModel(template, load_energy_table(template)).cost(workload, rates).total()["energy_j"]
        assert m["objectives"]["energy"] == snn
        assert m["objectives"]["snn_advantage"] == _twin_energy(workload, template, 2) / snn


def test_emitted_rates_are_the_rates_their_readers_measured(setup):
    space, data, ev, cand, res = setup
    plan, _ = _workload(space, data, cand)
    rec = ev._store.get(res.metrics["training"])
    out = emitted_rates(plan, rec.spike_rates)
    assert out
    readers = {}
    for n in plan.nodes:
        if n.op in ("conv", "linear") and n.name in rec.spike_rates:
            readers.setdefault(n.inputs[0], []).append(rec.spike_rates[n.name])
    for neuron, rate in out.items():
        assert rate == pytest.approx(np.mean(readers[neuron]), rel=1e-15)
        assert next(n for n in plan.nodes if n.name == neuron).op == "neuron"


def test_snn_advantage_is_a_maximised_builtin_objective_with_bound_zero():
    o = BUILTIN_OBJECTIVES["snn_advantage"]
    assert (o.direction, o.bound, o.ideal) == ("max", 0.0, None)


def test_snn_advantage_needs_a_single_task_space_with_an_accelerator():
    space = SearchSpace(load_spec("darts_snn", overrides=TINY))
    with pytest.raises(ValueError, match="snn_advantage needs"):
        TrainCostEvaluator(space, load_dataset("digits", seed=0, limit=50), OBJ)
