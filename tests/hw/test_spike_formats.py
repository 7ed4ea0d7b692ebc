"""Spike-map formats of accelerator templates (``spikes.format``): the dense default gives the
costs the model gave before templates had the choice, bit for bit; address events and the
run-length-coded bitmap charge the traffic of hand-computed layers exactly."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from nasco.dsl import SpecError, load_energy_table, load_spec, resolve, search_dimensions
from nasco.hw import CostModel, Layer, Workload, cost_configurations
from nasco.hw._spikes import address_bits_for, spike_map_bits

FIXTURES = Path(__file__).parent / "fixtures"


def _gen():
    """tests/hw/fixtures/dense_costs_gen.py: the workloads and the totals' float.hex form."""
    spec = importlib.util.spec_from_file_location("dense_costs_gen", FIXTURES / "dense_costs_gen.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

_RAW = load_spec("sata_like")
_TABLE = load_energy_table(_RAW)
SMALL = {"pe_array.rows": 8, "pe_array.cols": 8, "buffers.membrane_kb": 1}
T = 3


# ---------------------------------------------------------------------- dense: today's costs
def _dense_rows():
    """The fixture's rows and its workloads, rebuilt from their stored layers."""
    data = json.loads((FIXTURES / "dense_costs.json").read_text())
    by_name = {name: Workload(tuple(Layer(**la) for la in layers), name=name)
               for name, layers in data["workloads"].items()}
    return data["rows"], by_name, _gen().totals


def test_default_dense_spikes_give_the_costs_of_the_model_before_the_choice_bit_for_bit():
    """dense_costs.json holds float.hex totals written by the cost model before templates had
    a ``spikes`` section (tests/hw/fixtures/dense_costs_gen.py, run at commit 05fdf0c), and the
    layers of the workloads they cost."""
    rows, workloads, totals = _dense_rows()
    assert len(rows) == 60
    for row in rows:
        raw = load_spec(row["template"])
        t = resolve(raw, row["config"])
        assert t.spikes.format == "dense"
        wl = workloads[row["workload"]]
        rates = {la.name: row["rate"] for la in wl.layers
                 if la.spiking_input and la.kind in ("conv", "linear")}
        got = totals(CostModel(t, load_energy_table(t)).cost(wl, rates).total())
        assert got == row["total"], (row["template"], row["config"], row["workload"], row["rate"])
        many = cost_configurations(raw, load_energy_table(t), [row["config"]], wl, rates)
        assert float(many["energy_j"][0]).hex() == row["configurations_energy_j"]


def test_a_template_may_offer_the_format_as_a_choice_and_rejects_unknown_ones():
    raw = load_spec("sata_like", overrides={("spikes", "format"): {"choice": ["dense", "aer", "bitmap_rle"]}})
    assert search_dimensions(raw)["spikes.format"].options == ("dense", "aer", "bitmap_rle")
    assert resolve(raw, {"spikes.format": "aer"}).spikes.format == "aer"
    with pytest.raises(SpecError, match="spikes.format"):
        load_spec("sata_like", overrides={("spikes", "format"): "aerr"})


# ---------------------------------------------------------------------- the per-element formulas
@pytest.mark.parametrize("n, bits", [(1, 1), (2, 1), (3, 2), (128, 7), (129, 8), (2**40, 40),
                                     (2**40 + 1, 41)])
def test_address_bits_name_every_element(n, bits):
    assert int(address_bits_for(np.array([n]))[0]) == bits


def test_rle_bits_per_element_at_the_ends_and_between():
    # k = 5: a code is 6 bits; at r = 0 one filler code per 32 zeros; at r = 1 one per spike;
    # at r = 1/2: 6 * (1/2) / (1 - 2**-32).
    got = spike_map_bits("bitmap_rle", np.array([0.0, 1.0, 0.5]), np.array([1, 1, 1]), address_bits=None,
                         run_bits=5)
    assert got.tolist() == [6 / 32, 6.0, 3.0 / (1.0 - 2.0**-32)]


def test_rle_formula_matches_an_independent_encoder_on_random_maps():
    """Count Eyeriss-RLC codes (5-bit runs; a run of 32 zeros ends in a level-0 code) of long
    Bernoulli maps directly. Measured: relative error under 0.4 % at 2e6 elements for these
    rates (the standard error of the code count); asserted within 1.5 %."""
    rng = np.random.default_rng(0)
    n = 2_000_000
    for r in (0.01, 0.05, 0.2, 0.6):
        spikes = np.flatnonzero(rng.random(n) < r)
        runs = np.diff(np.concatenate([[-1], spikes])) - 1  # zeros before each spike
        codes = len(spikes) + int((runs // 32).sum()) + (n - 1 - spikes[-1]) // 32
        measured = 6 * codes / n
        model = float(spike_map_bits("bitmap_rle", np.array([r]), np.array([n]), address_bits=None,
                                     run_bits=5)[0])
        assert measured == pytest.approx(model, rel=0.015), r


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="known: dense, aer, bitmap_rle"):
        spike_map_bits("csr", np.array([0.5]), np.array([4]), address_bits=None, run_bits=5)


# ---------------------------------------------------------------------- AER on hand-computed layers
def _spiked(name: str, values: dict):
    """Template ``name`` with the ``spikes`` fields in ``values`` (dotted keys) set."""
    over = {tuple(k.split(".")): v for k, v in values.items()}
    return load_spec(name, overrides=over) if over else load_spec(name)


def _sata(**values) -> CostModel:
    return CostModel(resolve(_spiked("sata_like", values), SMALL), _TABLE)


def _pair() -> Workload:
    """A 1x1 conv, 8 -> 8 channels on a 4x4 map, spiking input, its LIF fused (ws on 8x8 PEs:
    one fold; SCALE-Sim SRAM accesses per timestep 128 ifmap reads, 64 filter reads, 128 ofmap
    writes; see test_spiking_template.py), T = 3."""
    return Workload((Layer("c", "conv", 4, 4, 1, 1, 8, 8, spiking_input=True, timesteps=T, output_bits=1),
                     Layer("n", "neuron", timesteps=T, elements=128)))


@pytest.mark.parametrize("address_bits, a", [(None, 7), (10, 10)])
def test_aer_traffic_is_spikes_times_address_bits(address_bits, a):
    """Input map: 128 elements at rate 1/4 over T = 3 steps, 128 SRAM reads per step: 96
    spikes read, 96 * a bits; the neuron emits 128 elements at rate 1/2: 192 spikes written,
    192 * a bits. The weights (64 x 8 bits) are read once (ws). DRAM: the same input and
    output spikes once each, and the weights once. With a = None the map's 128 elements need
    7 address bits."""
    config = {"spikes.format": "aer"} if address_bits is None else {"spikes.format": "aer",
                                                                    "spikes.address_bits": address_bits}
    rep = _sata(**config).cost(_pair(), {"c": 0.25, "n": 0.5})
    e_r, e_w, e_dram = _TABLE.energy_j("sram_read_bit"), _TABLE.energy_j("sram_write_bit"), _TABLE.energy_j(
        "dram_bit")
    in_spikes, out_spikes = 128 * 3 * 0.25, 128 * 3 * 0.5
    assert (in_spikes, out_spikes) == (96.0, 192.0)
    assert float(rep.energy["sram"][0]) == (in_spikes * a + 64 * 8) * e_r + out_spikes * a * e_w
    assert float(rep.energy["dram"][0]) == (64 * 8 + in_spikes * a + out_spikes * a) * e_dram
    assert float(rep.energy["dram"][1]) == 0.0 and "spike_out_rate_assumed" not in rep.assumptions
    assert rep.assumptions["spikes"] == "aer"


def test_dense_traffic_of_the_same_pair_ignores_the_rates():
    rep = _sata().cost(_pair(), {"c": 0.25, "n": 0.5})
    e_r, e_w, e_dram = _TABLE.energy_j("sram_read_bit"), _TABLE.energy_j("sram_write_bit"), _TABLE.energy_j(
        "dram_bit")
    assert float(rep.energy["sram"][0]) == (384 + 64 * 8) * e_r + 384 * e_w
    assert float(rep.energy["dram"][0]) == (64 * 8 + 384 + 384) * e_dram
    assert "spikes" not in rep.assumptions


def test_aer_on_a_mac_template_scales_a_spiking_layers_input_reads():
    """nvdla_like (MAC PEs, ws): a spiking 1x1 conv reads its input map each timestep; AER
    charges rate x elements x address bits where dense charges the elements."""
    raw = load_spec("nvdla_like")
    table = load_energy_table(raw)
    wl = Workload((Layer("c", "conv", 4, 4, 1, 1, 8, 8, spiking_input=True, timesteps=T),))
    dense = CostModel(resolve(raw, {}), table).cost(wl, {"c": 0.25})
    aer_raw = _spiked("nvdla_like", {"spikes.format": "aer", "spikes.address_bits": 8})
    aer = CostModel(resolve(aer_raw, {}), table).cost(wl, {"c": 0.25})
    e_dram = table.energy_j("dram_bit")
    # DRAM: weights 64 x 8 bits once (they fit), input map and 8-bit outputs each timestep.
    assert float(dense.energy["dram"][0]) == (64 * 8 + (128 * 1 + 128 * 8) * 3) * e_dram
    assert float(aer.energy["dram"][0]) == (64 * 8 + (128 * 0.25 * 8 + 128 * 8) * 3) * e_dram
    assert float(aer.energy["compute"][0]) == float(dense.energy["compute"][0])


def test_a_neuron_without_an_emitted_rate_is_charged_rate_one_and_recorded():
    rep = _sata(**{"spikes.format": "aer"}).cost(_pair(), {"c": 0.25})
    assert rep.assumptions["spike_out_rate_assumed"] == {"rate": 1.0, "layers": ["n"]}
    e_dram = _TABLE.energy_j("dram_bit")
    assert float(rep.energy["dram"][0]) == (64 * 8 + 96 * 7 + 384 * 7) * e_dram


@pytest.mark.parametrize("fmt", ["aer", "bitmap_rle"])
def test_sparse_formats_agree_across_cost_cost_many_and_cost_configurations(fmt):
    _, workloads, _ = _dense_rows()
    wl = workloads["darts_snn_seed0"]
    rates = {la.name: 0.04 for la in wl.layers if (la.spiking_input and la.kind in ("conv", "linear"))
             or la.kind == "neuron"}
    raw = load_spec("sata_like", overrides={("spikes", "format"): {"choice": ["dense", "aer", "bitmap_rle"]}})
    config = {"spikes.format": fmt, "dataflow": "os"}
    one = CostModel(resolve(raw, config), _TABLE).cost(wl, rates).total()
    many = CostModel(resolve(raw, config), _TABLE).cost_many([wl, wl], [rates, rates])
    dense_os = {"spikes.format": "dense", "dataflow": "os"}
    configs = cost_configurations(raw, _TABLE, [config, dense_os], wl, rates)
    # cost_many sums the parts per layer before the layers (CostReport.total sums each part over
    # the layers first): measured 1 ulp apart (1.5e-16 relative); asserted within 1e-14.
    assert many["energy_j"].tolist() == pytest.approx([one["energy_j"]] * 2, rel=1e-14)
    assert many["cycles"].tolist() == [one["cycles"]] * 2
    assert configs["energy_j"][0] == one["energy_j"] and configs["cycles"][0] == one["cycles"]
    dense = CostModel(resolve(raw, dense_os), _TABLE).cost(wl, rates).total()
    assert configs["energy_j"][1] == dense["energy_j"]
    # At 4 % a spike map costs under 1 bit an element in either format (AER: 0.04 x at most
    # 11 address bits for these maps; RLE: 6 x 0.04 / (1 - 0.96**32) = 0.33).
    assert one["energy"]["dram"] < dense["energy"]["dram"]
