"""Numbers out of range: template fields outside their physical ranges, workload sizes that
would overflow int64, cost results that are not finite; and the cost of a long workload's
report growing linearly."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from nasco.cli import main
from nasco.dsl import SpecError, find_file, load_energy_table, load_file, load_spec, resolve
from nasco.hw import CostError, CostModel, Layer, Workload, read_scalesim_csv
from nasco.hw._workload import MAX_MACS

BASE = {"dataflow": "ws", "pe_array.rows": 8, "pe_array.cols": 8, "buffers.ifmap_kb": 32,
        "buffers.filter_kb": 32, "buffers.ofmap_kb": 16, "bandwidth.dram_bytes_per_cycle": 8,
        "clock_mhz": 200}
_TEMPLATE = load_spec("systolic_template")
_TABLE = load_energy_table(_TEMPLATE)
HEADER = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
          "Strides,\n")
CONV = Layer("c", "conv", 10, 10, 3, 3, 8, 16, 1)


def template(**values):
    return resolve(_TEMPLATE, {**BASE, **{k.replace("__", "."): v for k, v in values.items()}})


def _unchecked(**fields):
    """A resolved template with fields replaced past the DSL (as Python code could)."""
    t = template()
    for key, value in fields.items():
        part, _, name = key.partition("__")
        t = dataclasses.replace(t, **{part: value}) if not name else dataclasses.replace(
            t, **{part: dataclasses.replace(getattr(t, part), **{name: value})})
    return t


# ---------------------------------------------------------------------- the DSL's ranges
@pytest.mark.parametrize("key, value, fragment", [
    ("clock_mhz", 1.0e-320, "expected a value >= 0.001 (a clock of 1 kHz to 100 GHz"),
    ("clock_mhz", 1.0e6, "expected a value <= 100000.0 (a clock of 1 kHz to 100 GHz"),
    ("bandwidth.dram_bytes_per_cycle", 1.0e-300, "expected a value >= 0.001 (1e-3 to 1e6 bytes/cycle"),
    ("bandwidth.noc_bytes_per_cycle", 1.0e12, "expected a value <= 1000000000.0 (1e-3 to 1e9"),
    ("buffers.ifmap_kb", 1.0e-30, "expected a value >= 0.001 (at least a byte"),
    ("buffers.ofmap_kb", 1.0e12, "expected a value <= 67108864 (at least a byte and at most 64 GiB"),
    ("pe_array.rows", 10**23, "expected a value <= 4096 (1 to 4096 PEs a side"),
    ("bits.weight", 65, "expected a value <= 64 (1 to 64 bits"),
    ("specs.latency.max", "1e999 ms", "expected a finite latency, found '1e999 ms'"),
])
def test_template_numbers_out_of_range_are_one_line_errors(key, value, fragment):
    path = find_file("systolic_template")
    with pytest.raises(SpecError) as info:
        load_file(path, overrides={tuple(key.split(".")): value})
    text = str(info.value)
    assert text.startswith(f"{path}:") and f": {key}: {fragment}" in text and "\n" not in text


def test_an_energy_table_entry_past_its_ceiling_is_an_error(tmp_path):
    text = find_file("horowitz_45nm").read_text().replace("value: 20.3", "value: 2.03e+300")
    assert "2.03e+300" in text
    path = tmp_path / "table.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=r"energy\.dram_bit\.value: expected at most 1 uJ per op or bit .*"
                                         r"found 2\.03e\+300 pJ"):
        load_file(path)


def test_a_single_pe_output_stationary_array_is_refused():
    with pytest.raises(SpecError, match=r"pe_array: expected an output-stationary array of at least 2 PEs"):
        load_file(find_file("systolic_template"),
                  overrides={("dataflow",): "os", ("pe_array", "rows"): 1, ("pe_array", "cols"): 1})


# ---------------------------------------------------------------------- workload sizes
@pytest.mark.parametrize("row, fragment", [
    ("big, 1000000000, 1000000000, 3, 3, 3, 8, 1,",
     ":2: expected IFMAP Height of at most 1,048,576 (nasco.hw's bound on a layer's sizes), "
     "found 1,000,000,000"),
    ("e23, 100000000000000000000000, 10, 3, 3, 3, 8, 1,",
     ":2: expected IFMAP Height of at most 1,048,576 (nasco.hw's bound on a layer's sizes), found 100,000,"),
    ("wide, 1000000, 1000000, 3, 3, 3, 8, 1,",
     ":2: expected a layer within nasco.hw's size bounds, found layer wide: its 3,000,000,000,000 ifmap "
     "elements are over 1,099,511,627,776 (2**40)"),
    ("deep, 1024, 1024, 32, 32, 65536, 65536, 1,",
     ":2: expected a layer within nasco.hw's size bounds, found layer deep: its 4,398,046,511,104 weights "
     "are over"),
])
def test_scalesim_sizes_that_would_overflow_are_one_line_errors(tmp_path, row, fragment):
    path = tmp_path / "w.csv"
    path.write_text(HEADER + row + "\n")
    with pytest.raises(SpecError) as info:
        read_scalesim_csv(path)
    assert str(info.value).startswith(str(path) + fragment)


def test_a_header_only_workload_is_an_error(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text(HEADER)
    with pytest.raises(SpecError, match=r"w\.csv:1: expected at least one layer row after the header, "
                                        r"found only the header"):
        read_scalesim_csv(path)


def test_layer_sizes_are_bounded_in_python_too():
    assert Layer("x", "conv", 2**20, 2**20, 1, 1, 1, 1).ofmap_elements == 2**40  # at the bound: allowed
    with pytest.raises(ValueError, match=r"layer x: its 2,199,023,255,552 ifmap elements are over "
                                         r"1,099,511,627,776 \(2\*\*40\)"):
        Layer("x", "conv", 2**20, 2**20, 1, 1, 2, 1)
    macs = 2**20 * (2**19 + 2**18) * 2**19  # every count below 2**40, the MACs above 2**48
    with pytest.raises(ValueError, match=rf"layer y: its {macs:,} MACs per timestep are over "
                                         r"281,474,976,710,656 \(2\*\*48\)"):
        Layer("y", "conv", 2**10, 2**10, 1, 1, 2**19, 2**19 + 2**18)
    with pytest.raises(ValueError, match=r"layer z: stride 2,048 is outside 1\.\.1,024"):
        Layer("z", "conv", 2**12, 2**12, 1, 1, 1, 1, stride=2**11)


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_a_layer_at_the_bounds_costs_without_overflow(dataflow):
    # 2**14 x 2**14 pixels, 2**10 channels and filters: 2**48 MACs, every count at 2**38-2**40.
    la = Layer("max", "conv", 2**14, 2**14, 1, 1, 2**10, 2**10, timesteps=1)
    assert la.macs == MAX_MACS
    for rows, cols in ((4096, 4096), (2, 1)):
        m = CostModel(_unchecked(dataflow=dataflow, pe_array__rows=rows, pe_array__cols=cols), _TABLE)
        rep = m.cost(Workload((la,)))
        assert rep.macs[0] == float(MAX_MACS)
        # SCALE-Sim's fold count in Python ints: (Sr, Sc, T) per dataflow (nasco/hw/_systolic.py)
        npx, win, k = 2**28, 2**10, 2**10
        sr, sc, t = {"os": (npx, k, win), "ws": (win, k, npx), "is": (win, npx, k)}[dataflow]
        per_fold = t + rows + cols - 2 if dataflow == "os" else t + 2 * rows + cols - 2
        assert int(rep.compute_cycles[0]) == -(-sr // rows) * -(-sc // cols) * per_fold - 1
        assert rep.energy_j[0] > 0 and 0 < rep.utilization[0] <= 1


# ---------------------------------------------------------------------- the results' checks
@pytest.mark.parametrize("fields, fragment", [
    ({"clock_mhz": 1.0e-320}, r"layer 'c' of 'w': latency_s is inf, expected a finite, non-negative value"),
    ({"bandwidth__dram_bytes_per_cycle": 1.0e-300},
     r"layer 'c' of 'w': cycles is 2\.976e\+303, expected a count in \[0, 4\.61e\+18\]"),
])
def test_cost_refuses_results_that_are_not_finite(fields, fragment):
    m = CostModel(_unchecked(**fields), _TABLE)
    with pytest.raises(CostError, match=r"^systolic_template: " + fragment):
        m.cost(Workload((CONV,), name="w"))
    with pytest.raises(CostError, match=fragment):
        m.cost_many([Workload((CONV,), name="w")])


def test_nasco_cost_out_of_range_exits_2_with_one_line(tmp_path, capsys):
    path = tmp_path / "w.csv"
    path.write_text(HEADER + "big, 1000000000, 1000000000, 3, 3, 3, 8, 1,\n")
    with pytest.raises(SystemExit) as info:
        main(["cost", "--hw", "systolic_template", "--workload", str(path)])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and "expected IFMAP Height of at most" in err


def test_skipping_zero_spikes_keeps_utilisation_at_most_one():
    sata = load_spec("sata_like")
    m = CostModel(resolve(sata, {"pe.skip_zero_spikes": True, "dataflow": "ws"}), load_energy_table(sata))
    la = Layer("s", "conv", 34, 34, 3, 3, 32, 32, spiking_input=True, timesteps=4)
    rep = m.cost(Workload((la,)), default_rate=0.1)
    pes = m.rows * m.cols
    # the array steps through the spiking positions only: the ACs, not the MACs
    assert rep.utilization[0] == rep.ops[0] / (rep.cycles[0] * pes) and 0 < rep.utilization[0] <= 1
    assert rep.total()["utilization"] == float(rep.ops.sum() / (int(rep.cycles.sum()) * pes))
    assert m.cost_many([Workload((la,))], default_rate=0.1)["utilization"][0] == rep.total()["utilization"]


# ---------------------------------------------------------------------- a long report
class _Counted(np.ndarray):
    """An array that counts the elements every ufunc call on it produces."""

    produced = 0

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        args = [np.asarray(x) if isinstance(x, _Counted) else x for x in inputs]
        out = getattr(ufunc, method)(*args, **kwargs)
        _Counted.produced += np.size(out)
        return out


def test_to_dict_does_work_linear_in_the_layers():
    """to_dict's elementwise work (counted by a ufunc hook on the energy arrays) is affine in the
    layer count n, exactly: work(400) - work(40) == 10 * (work(40) - work(4)). Summing the energy
    parts once per layer (n sums of n elements) would make it quadratic."""
    m = CostModel(template(), _TABLE)
    work = []
    for n in (4, 40, 400):
        rep = m.cost(Workload(tuple(dataclasses.replace(CONV, name=f"c{i}") for i in range(n))))
        rep = dataclasses.replace(rep, energy={k: v.view(_Counted) for k, v in rep.energy.items()})
        _Counted.produced = 0
        out = rep.to_dict()
        assert len(out["layers"]) == n
        work.append(_Counted.produced)
    assert work[1] > work[0] > 0 and work[2] - work[1] == 10 * (work[1] - work[0])


def test_in_a_search_a_cost_error_is_a_failed_candidate_with_its_reason():
    from nasco.core import Result
    from nasco.run._job import Job, evaluate_job
    from nasco.space import Candidate

    model = CostModel(_unchecked(clock_mhz=1.0e-320), _TABLE)

    class Costing:
        def evaluate(self, candidate, seed):
            total = model.cost(Workload((CONV,), name=candidate.id)).total()
            return Result("ok", {"latency": total["latency_s"]})

    cand = Candidate.make({"cell": [0]}, {})
    row = evaluate_job(Costing(), ("latency",), Job(seq=0, cand=cand, seed=0))
    assert row["status"] == "failed"
    reason = f"CostError: systolic_template: layer 'c' of '{cand.id}': latency_s is inf"
    assert row["reason"].startswith(reason)
