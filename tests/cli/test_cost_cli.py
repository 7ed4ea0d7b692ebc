"""`nasco cost` on a row of a real run directory, on the shipped example topology, units and specs."""
from __future__ import annotations

import csv
import json

import pytest

from nasco.cli import main
from nasco.cli._cost import EXAMPLE_WORKLOAD
from nasco.dsl import builtin_dir
from nasco.hw import read_scalesim_csv

# The run's own --set: a space override (stem channels fixed at 16 where the space's default is 8)
# and loose specs, so every row is feasible and pareto.csv holds rows.
RUN_SET = ["--set", "macro.stem.channels=16", "--set", "hw.specs.latency.max=1 s", "--set",
           "hw.specs.area.max=1000 mm2"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cost") / "run"
    code = main(["search", "--space", "darts_snn", "--hw", "asic_template", "--budget", "2", "--seed", "0",
                 "--limit", "150", "--epochs", "1", "--quiet", "--out", str(out), *RUN_SET])
    assert code == 0
    return out


def _ledger(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "ledger.jsonl").read_text().splitlines() if line.strip()]


def _total_line(out: str) -> list[str]:
    lines = out.splitlines()
    assert lines[0].split() == ["layer", "kind", "cycles", "latency_ms", "energy_uJ", "util"]
    return next(line.split() for line in lines if line.startswith("total "))


def test_pareto_row_without_space_or_hw(run_dir, capsys, run_cli):
    rows = list(csv.DictReader((run_dir / "pareto.csv").read_text().splitlines()))
    assert rows, "the loose specs of RUN_SET leave every row feasible"
    # A front member is a ledger row's proposed configuration or one of the row's members (the
    # hardware inner loop): its figures are the row's, or that member's.
    row = next(r for r in _ledger(run_dir) if r["id"] == (rows[0]["row_id"] or rows[0]["id"]))
    hw = json.loads(rows[0]["hw"])
    objs = (row["objectives"] if hw == row["hw"]
            else next(m for m in row["members"] if m["hw"] == hw)["objectives"])
    code, out, err = run_cli(capsys, "cost", "--workload", str(run_dir / "pareto.csv"), "--id", rows[0]["id"])
    assert code == 0, err
    assert "run config: " in err and "note:" not in err  # measured spike rates, same MACs as the run
    _, _, latency_ms, energy_uj, _ = _total_line(out)
    # The pair's own figures, written by the search's evaluator, in ms and uJ by hand.
    assert latency_ms == f"{objs['latency'] * 1000:.5f}"
    assert energy_uj == f"{objs['energy'] * 1e6:.4f}"
    energy_line = next(line for line in out.splitlines() if line.startswith("energy ("))
    assert energy_line.endswith(f"area {objs['area']:.4f} mm2")
    assert "spec violated" not in out
    code, out2, _ = run_cli(capsys, "cost", "--workload", str(run_dir / "pareto.csv"), "--row", "0")
    assert code == 0 and out2 == out


def test_ledger_row_json_keeps_base_units_and_the_runs_specs(run_dir, capsys, run_cli):
    row = _ledger(run_dir)[1]
    code, out, err = run_cli(capsys, "cost", "--workload", str(run_dir / "ledger.jsonl"), "--id", row["id"],
                             "--json")
    assert code == 0, err
    rep = json.loads(out)
    # The ledger keeps spike rates to 6 digits: measured on this run, latency agrees exactly and
    # energy within 4.2e-9 relative; margin to 1e-8.
    assert rep["total"]["latency_s"] == pytest.approx(row["objectives"]["latency"], rel=1e-8)
    assert rep["total"]["energy_j"] == pytest.approx(row["objectives"]["energy"], rel=1e-8)
    # The run's --set specs, not the template's 0.5 ms / 2.5 mm2.
    assert rep["limits"] == {"latency": 1.0, "area": 1000.0}
    assert rep["violations"] == {}


def test_ledger_row_flags_a_violated_spec(run_dir, capsys, run_cli):
    row = _ledger(run_dir)[0]
    lat = row["objectives"]["latency"]
    code, out, err = run_cli(capsys, "cost", "--workload", str(run_dir / "ledger.jsonl"), "--row", "0",
                             "--set", "specs.latency.max=1 us")
    assert code == 0, err
    assert out.splitlines()[-1] == f"spec violated: latency {lat * 1000:.4g} ms > 0.001 ms"
    code, out, err = run_cli(capsys, "cost", "--workload", str(run_dir / "ledger.jsonl"), "--row", "0",
                             "--set", "specs.latency.max=1 us", "--json")
    rep = json.loads(out)
    assert rep["limits"]["latency"] == 1e-6
    assert rep["violations"] == {"latency": pytest.approx(lat - 1e-6, rel=1e-8)}  # as above


def test_a_table_run_needs_hw(tmp_path, capsys, run_cli):
    out = tmp_path / "table_run"
    assert main(["search", "--space", "nb201", "--evaluator", "table", "--table", "nb201", "--budget", "2",
                 "--seed", "0", "--quiet", "--out", str(out)]) == 0
    code, _, err = run_cli(capsys, "cost", "--workload", str(out / "ledger.jsonl"), "--row", "0")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "searched without an accelerator" in err and "give --hw" in err


def test_the_shipped_example_topology(capsys, run_cli):
    path = builtin_dir() / EXAMPLE_WORKLOAD
    workload = read_scalesim_csv(path)
    assert [layer.name for layer in workload.layers] == ["conv1", "conv2", "conv3_s2", "conv4", "conv5_s2",
                                                         "conv6", "pw7", "fc"]
    # Shapes chain: each layer's ofmap (SCALE-Sim's ceil rule) is the next one's unpadded ifmap.
    # conv 32x32x3 -> 32 -> 32 (/2) -> 16x16x64 -> 64 (/2) -> 8x8x128 -> 128 -> 1x1 256 -> pool -> fc 10
    macs = (32 * 32 * 27 * 32 + 32 * 32 * 288 * 32 + 16 * 16 * 288 * 64 + 16 * 16 * 576 * 64
            + 8 * 8 * 576 * 128 + 8 * 8 * 1152 * 128 + 8 * 8 * 128 * 256 + 256 * 10)
    assert workload.macs == macs
    code, out, err = run_cli(capsys, "cost", "--hw", "asic_template", "--workload", "example", "--json")
    assert code == 0, err
    assert [layer["name"] for layer in json.loads(out)["layers"]] == [layer.name for layer in workload.layers]


def test_each_task_of_a_multi_task_row_takes_its_own_space(tmp_path, capsys, run_cli):
    out = tmp_path / "multi"
    assert main(["search", "--space", "darts_snn", "--space", "darts", "--hw", "hetero_2task",
                 "--budget", "1", "--seed", "1", "--limit", "150", "--epochs", "1", "--quiet",
                 "--hw-inner", "off", "--out", str(out)]) == 0  # members play no part in the row's own costs
    capsys.readouterr()
    row = _ledger(out)[0]
    assert row["status"] != "failed"
    for task in (0, 1):
        code, text, err = run_cli(capsys, "cost", "--workload", str(out / "ledger.jsonl"), "--row", "0",
                                  "--task", str(task), "--json")
        assert code == 0, err
        figures = row["metrics"]["tasks"][task]
        rep = json.loads(text)
        # Measured: energy within 1.6e-10 relative (spike rates kept to 6 digits), latency exact.
        assert rep["total"]["energy_j"] == pytest.approx(figures["energy"], rel=1e-8)
        assert rep["total"]["latency_s"] == pytest.approx(figures["latency"], rel=1e-8)
        assert f"template: {figures['template']} (the candidate's member" in err
        assert "bound the whole system" in err and rep["limits"] == {}


# ---------------------------------------------------------------------- a candidate file's shape
NB201_EDGES = ["nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_1x1", "none", "avg_pool_3x3"]
FROM_A_RUN = "use a row of a ledger or pareto.csv, or Candidate.to_json()"


@pytest.mark.parametrize("text,where,expected,found,hint", [
    ('{"arch": [1, 2, 3], "hw": {}}', "arch", "an object with 'cell' and 'hp'", "a list [1, 2, 3]",
     FROM_A_RUN),
    ('{"arch": null, "hw": {}}', "arch", "an object with 'cell' and 'hp'", "null", FROM_A_RUN),
    ('{"arch": NaN, "hw": {}}', "arch", "an object with 'cell' and 'hp'", "a number NaN", FROM_A_RUN),
    ('{"arch": {"cell": {"edges": %s}}, "hw": [16, 16]}' % json.dumps(NB201_EDGES), "hw",
     "an object of accelerator choices (dotted key: value)", "a list [16, 16]", FROM_A_RUN),
    ('{"arch": {"cell": {"edges": %s}, "hp": 3}}' % json.dumps(NB201_EDGES), "arch.hp",
     "an object of the space's choices (dotted key: value)", "a number 3", FROM_A_RUN),
    ('{"arch": {"cell": {"edges": %s}, "hp": {"cells": 99}}}' % json.dumps(NB201_EDGES), "arch.hp.cells",
     "a choice of space 'nb201'", "unknown key 'cells'",
     "it has no such choices; cost the row with the space it was searched in (--space)"),
    ('{"arch": {"cell": {"edges": %s}}, "hw": {"pe_arrays.rows": 16}}' % json.dumps(NB201_EDGES),
     "hw.pe_arrays.rows", "a choice of template 'systolic_template'", "unknown key 'pe_arrays.rows'",
     "did you mean 'pe_array.rows'?"),
    ("[" * 100_000 + "]" * 100_000, "", "a candidate JSON object with 'arch' and 'hw'",
     "JSON nested too deep to read", "use the file nasco search wrote, unedited"),
])
def test_a_candidate_file_of_the_wrong_shape(tmp_path, capsys, text, where, expected, found, hint, run_cli):
    f = tmp_path / "cand.json"
    f.write_text(text)
    code, out, err = run_cli(capsys, "cost", "--space", "nb201", "--hw", "systolic_template", "--workload",
                             str(f))
    place = f"{f}: {where}: " if where else f"{f}: "
    assert (code, out, err) == (2, "", f"nasco: error: {place}expected {expected}, found {found}; {hint}\n")


def test_a_well_formed_candidate_file_is_costed(tmp_path, capsys, run_cli):
    """The control of the shape checks: the same file, right, is costed with the template's choice."""
    f = tmp_path / "cand.json"
    f.write_text(json.dumps({"arch": {"cell": {"edges": NB201_EDGES}, "hp": {}}, "hw": {"pe_array.rows": 8}}))
    code, out, err = run_cli(capsys, "cost", "--space", "nb201", "--hw", "systolic_template", "--workload",
                             str(f), "--json")
    assert code == 0, err
    assert json.loads(out)["assumptions"]["hw"]["pe_array"]["rows"] == 8


def test_a_spiking_row_prints_its_ann_twin_as_the_run_recorded_it(run_dir, capsys, run_cli):
    """The twin line of a ledger row's own configuration carries the figures the search's
    evaluator recorded in the row's metrics (snn_twin), in uJ and ms."""
    row = _ledger(run_dir)[0]
    twin = row["metrics"]["snn_twin"]
    argv = ("cost", "--workload", str(run_dir / "ledger.jsonl"), "--row", "0")
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    line = next(line for line in out.splitlines() if line.startswith("ANN twin ("))
    assert line.startswith(f"ANN twin ({twin['twin_bits']}-bit activations, MAC PEs): energy "
                           f"{twin['twin_energy'] * 1e6:.4f} uJ, latency {twin['twin_latency'] * 1000:.5f} "
                           f"ms; snn_advantage (twin / SNN energy) {twin['snn_advantage']:.4f}; break-even "
                           "spike rate ")
    code, out, _ = run_cli(capsys, *argv, "--json")
    got = json.loads(out)["snn_twin"]
    moved = ("snn_advantage", "latency_ratio", "break_even_rate")
    same = [k for k in twin if k not in moved]
    assert {k: got[k] for k in same} == {k: twin[k] for k in same} and set(got) == set(twin)
    # The ledger keeps spike rates to 6 decimals, so the SNN's own cost here moves a little:
    # measured 6.5e-9 relative; asserted within 1e-6.
    assert got["snn_advantage"] == pytest.approx(twin["snn_advantage"], rel=1e-6)


def test_a_sparse_spike_format_charges_each_neurons_map_at_its_readers_measured_rate(tmp_path, capsys,
                                                                                     run_cli):
    """A candidate with measured input rates, costed with AER spike maps: every neuron's map
    takes the rate of the conv that reads it (none is assumed), as the search's evaluator does;
    the total equals the cost model's with those rates spelled out here."""
    import numpy as np

    from nasco.dsl import load_energy_table, load_spec, resolve
    from nasco.hw import CostModel
    from nasco.nn import plan_network, plan_workload
    from nasco.space import SearchSpace

    ss = SearchSpace(load_spec("darts_snn"))
    cand = ss.sample(np.random.default_rng(3))
    arch, _ = ss.resolve(cand)
    plan = plan_network(arch, cand.arch["cell"], (1, 8, 8), 10)
    workload = plan_workload(plan)
    spiking = [la.name for la in workload.layers if la.spiking_input and la.kind in ("conv", "linear")]
    measured = {name: 0.01 * (1 + i % 7) for i, name in enumerate(spiking)}
    by_name = {n.name: n for n in plan.nodes}
    emitted = {}
    for name in spiking:  # the neuron each spiking conv reads directly
        src = by_name[name].inputs[0]
        if by_name[src].op == "neuron":
            emitted.setdefault(src, measured[name])
    assert emitted
    f = tmp_path / "cand.json"
    f.write_text(json.dumps({**json.loads(cand.to_json()), "metrics": {"spike_rates": measured}}))
    code, out, err = run_cli(capsys, "cost", "--space", "darts_snn", "--hw", "sata_like", "--set",
                             "spikes.format=aer", "--workload", str(f), "--json")
    assert code == 0, err
    rep = json.loads(out)
    assert "spike_out_rate_assumed" not in rep["assumptions"] and rep["assumptions"]["spikes"] == "aer"
    t = resolve(load_spec("sata_like", overrides={("spikes", "format"): "aer"}), {})
    want = CostModel(t, load_energy_table(t)).cost(workload, {**emitted, **measured}).total()
    assert rep["total"]["energy_j"] == want["energy_j"]


def test_layers_the_loop_order_cannot_tile_are_printed_one_line_each(capsys, run_cli):
    # 0.05 KiB (409.6 bits) of ifmap buffer: no layer of the example fits one fold's input
    code, out, _ = run_cli(capsys, "cost", "--hw", "sata_like", "--workload", "example",
                           "--set", "buffers.ifmap_kb=0.05")
    assert code == 0
    lines = [ln for ln in out.splitlines() if ln.startswith("cannot tile: ")]
    code, js, _ = run_cli(capsys, "cost", "--hw", "sata_like", "--workload", "example",
                          "--set", "buffers.ifmap_kb=0.05", "--json")
    reasons = json.loads(js)["assumptions"]["tiling_infeasible"]
    assert reasons and lines == [f"cannot tile: {r}" for r in reasons]
    assert "the template has 409.6 bits (0.05 KiB)" in lines[0]
    code, out, _ = run_cli(capsys, "cost", "--hw", "sata_like", "--workload", "example")
    assert code == 0 and "cannot tile" not in out

