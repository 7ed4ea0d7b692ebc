"""CostModel.cost_many: many workloads in one vectorised pass equal cost() per workload;
the columnar cache of Workload and its helpers."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from nasco.dsl import load_energy_table, load_spec, resolve
from nasco.hw import COLUMNS, ENERGY_PARTS, CostModel, Layer, Workload, stack_columns

_TEMPLATE = load_spec("systolic_template")
_TABLE = load_energy_table(_TEMPLATE)
KEYS = {"cycles", "compute_cycles", "latency_s", "energy_j", "macs", "ops", "utilization", "area_mm2",
        "rate_assumed_layers", "tiling_excess"} | {f"energy_{k}" for k in ENERGY_PARTS}


def model(dataflow="ws", rows=8, cols=8, kb=(32, 32, 16), bw=8) -> CostModel:
    return CostModel(resolve(_TEMPLATE, {
        "dataflow": dataflow, "pe_array.rows": rows, "pe_array.cols": cols, "buffers.ifmap_kb": kb[0],
        "buffers.filter_kb": kb[1], "buffers.ofmap_kb": kb[2], "bandwidth.dram_bytes_per_cycle": bw,
        "clock_mhz": 200}), _TABLE)


def conv(name, ih=10, fh=3, ch=8, nf=16, s=1, **kw) -> Layer:
    return Layer(name, "conv", ih, ih, fh, fh, ch, nf, s, **kw)


def workloads() -> list[Workload]:
    """ANN, SNN (spiking inputs, neurons, timesteps), grouped/dilated, big (DRAM-tiled), linear,
    pool and add layers."""
    ann = Workload((conv("stem", 34, 3, 3, 16), conv("a", 34, 3, 16, 16),
                    Layer("ap", "pool", 34, 34, 3, 3, 16, 16, 1),
                    Layer("res", "add", 32, 32, 1, 1, 16, 16, elements=16 * 32 * 32, operands=2),
                    conv("b", 18, 1, 16, 32, 2),
                    Layer("fc", "linear", channels=64, num_filters=10)), name="ann")
    snn = Workload((conv("stem", 18, 3, 3, 32, timesteps=1),
                    Layer("n0", "neuron", timesteps=4, elements=8192),
                    conv("c1", 18, 3, 32, 64, spiking_input=True, timesteps=4),
                    Layer("n1", "neuron", timesteps=4, elements=64 * 16 * 16 * 3),
                    Layer("mp", "pool", 18, 18, 2, 2, 64, 64, 2, spiking_input=True, timesteps=4),
                    Layer("sum", "add", elements=64 * 9 * 9, operands=3, timesteps=4),
                    conv("dw", 20, 3, 64, 64, groups=64, dilation=2, spiking_input=True, timesteps=4),
                    Layer("fc", "linear", channels=64, num_filters=10, spiking_input=True, timesteps=4)),
                   name="snn")
    big = Workload((conv("big", 66, 3, 128, 256), conv("wide", 3, 3, 512, 512)), name="big")
    one = Workload((conv("x", 5, 5, 1, 1),), name="one")
    return [ann, snn, big, one, ann]


RATES = [None, {"c1": 0.3, "dw": 0.05}, None, None, {"x": 0.9}]
TEMPLATES = [dict(dataflow=df, rows=r, cols=c, kb=kb, bw=bw) for df, (r, c), kb, bw in itertools.product(
    ("os", "ws", "is"), ((8, 8), (12, 14)), ((16, 16, 16), (64, 64, 32)), (4, 16))]


def check_against_cost(m: CostModel, wls, rates, default_rate=None) -> dict[str, np.ndarray]:
    got = m.cost_many(wls, rates, default_rate=default_rate)
    assert set(got) == KEYS
    for k, w in enumerate(wls):
        rep = m.cost(w, rates[k] if rates is not None else None, default_rate=default_rate)
        tot = rep.total()
        assert got["cycles"][k] == tot["cycles"] and got["compute_cycles"][k] == tot["compute_cycles"]
        for key in ("latency_s", "energy_j", "macs", "ops", "utilization", "area_mm2"):
            np.testing.assert_allclose(got[key][k], tot[key], rtol=1e-12, atol=0, err_msg=f"{w.name}: {key}")
        for part in ENERGY_PARTS:
            np.testing.assert_allclose(got[f"energy_{part}"][k], tot["energy"][part], rtol=1e-12, atol=0)
        assumed = rep.assumptions.get("spike_rate_assumed", {}).get("layers", [])
        assert got["rate_assumed_layers"][k] == len(assumed)
        assert got["tiling_excess"][k] == rep.tiling_excess
    return got


@pytest.mark.parametrize("t", TEMPLATES, ids="{dataflow}-{rows}x{cols}-{kb[0]}kb-bw{bw}".format_map)
def test_cost_many_equals_cost_per_workload(t):
    got = check_against_cost(model(**t), workloads(), RATES)
    assert got["cycles"].dtype == np.int64 and got["compute_cycles"].dtype == np.int64
    np.testing.assert_array_equal(got["cycles"][0], got["cycles"][4])  # same workload, same rates


@pytest.mark.parametrize("batch", [1, 4, 7])
def test_batches_of_workloads_change_nothing(monkeypatch, batch):
    """cost_many costs whole workloads in batches of ~_BATCH layers; small batches (and
    workloads larger than a batch) must give the same totals, rates included."""
    import nasco.hw._cost as cost_module

    m = model(kb=(16, 16, 16))
    wls, rates = workloads() + [Workload(())] + workloads(), RATES + [None] + RATES
    whole = m.cost_many(wls, rates)
    monkeypatch.setattr(cost_module, "_BATCH", batch)
    split = check_against_cost(m, wls, rates)
    for key in KEYS:
        np.testing.assert_array_equal(split[key], whole[key], err_msg=key)


def test_cost_many_default_rate_and_no_rates():
    m = model()
    check_against_cost(m, workloads(), None)
    got = check_against_cost(m, workloads(), RATES, default_rate=0.1)
    # snn: stem (direct input) is not spiking; c1, dw given; fc takes the default (the
    # max-pool of spikes takes no rate)
    assert got["rate_assumed_layers"].tolist() == [0, 1, 0, 0, 0]


def test_spike_rates_are_per_workload():
    """The same layer names with different rates in different workloads cost differently."""
    snn = workloads()[1]
    m = model()
    lo, hi = {"c1": 0.0, "dw": 0.0, "fc": 0.0}, {"c1": 1.0, "dw": 1.0, "fc": 1.0}
    got = check_against_cost(m, [snn, snn, snn], [lo, hi, None])
    assert got["energy_compute"][0] < got["energy_compute"][1] == got["energy_compute"][2]
    assert got["ops"][0] == snn.layers[0].macs  # only the stem (direct input) still multiplies
    assert got["cycles"][0] == got["cycles"][1]  # latency does not depend on the rate here
    assert got["rate_assumed_layers"].tolist() == [0, 0, 3]


def test_empty_list_and_empty_workloads():
    m = model()
    got = m.cost_many([])
    assert set(got) == KEYS and all(v.shape == (0,) for v in got.values())
    assert m.cost_many([], spike_rates=[])["cycles"].shape == (0,)
    empty = Workload(())
    got = m.cost_many([empty, workloads()[0], empty])
    assert got["cycles"].tolist()[0] == got["cycles"].tolist()[2] == 0
    assert got["energy_j"][0] == got["latency_s"][2] == got["utilization"][0] == 0.0
    assert got["cycles"][1] == m.cost(workloads()[0]).total()["cycles"]
    got = m.cost_many([empty, empty])
    assert got["cycles"].tolist() == [0, 0] and got["area_mm2"][0] == m.area_mm2(False)


def test_spike_rates_length_must_match():
    with pytest.raises(ValueError, match="one per workload"):
        model().cost_many(workloads(), [None])


# ---------------------------------------------------------------------- columns
def test_columns_match_arrays_and_are_cached_read_only():
    for w in workloads() + [Workload(())]:
        cols = w.columns()
        assert cols.shape == (len(COLUMNS), len(w)) and cols.dtype == np.int64
        assert w.columns() is cols and not cols.flags.writeable
        arr = w.arrays()
        for i, c in enumerate(COLUMNS):
            expect = arr["kind"] == c if c in ("neuron", "pool", "add") else arr[c]
            np.testing.assert_array_equal(cols[i], expect.astype(np.int64))


def test_concat_and_stack_columns():
    wls = workloads()
    cols, offsets = stack_columns(wls)
    assert offsets.tolist() == [0, *np.cumsum([len(w) for w in wls]).tolist()]
    whole = Workload.concat(wls, name="all")
    assert whole.layers == tuple(la for w in wls for la in w.layers) and whole.name == "all"
    np.testing.assert_array_equal(whole.columns(), cols)
    np.testing.assert_array_equal(whole.columns(), Workload(whole.layers).columns())
    assert len(Workload.concat([])) == 0
