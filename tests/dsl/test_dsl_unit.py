"""Unit tests of the DSL pieces: choices, search dimensions, units, errors, round trips."""
from __future__ import annotations

import dataclasses
import math

import pytest
import yaml

import nasco.dsl as dsl
from nasco.dsl import Choice, SpecError, build, parse_quantity, to_data
from nasco.dsl._choice import MAX_RANGE_OPTIONS, parse_choice
from nasco.dsl._errors import close_matches, format_path
from nasco.dsl._specs import ArchSpace, CellSpec, NeuronSpec, StemSpec
from nasco.dsl._yaml import load_yaml_text

P = ("x",)


# ------------------------------------------------------------------ Choice parsing
def test_choice_with_default():
    c = parse_choice({"choice": [8, 12, 16], "default": 12}, P)
    assert c == Choice((8, 12, 16), 12)
    assert len(c) == 3 and c.index(16) == 2
    assert c.to_data() == {"choice": [8, 12, 16], "default": 12}


def test_choice_default_is_the_first_option():
    assert parse_choice({"choice": ["lif", "plif"]}, P).default == "lif"


def test_range_both_ends_included():
    assert parse_choice({"range": [2, 5]}, P) == Choice((2, 3, 4, 5), 2)


def test_range_with_step_and_default():
    assert parse_choice({"range": [2, 8], "step": 2, "default": 6}, P) == Choice((2, 4, 6, 8), 6)
    assert parse_choice({"range": [2, 7], "step": 2}, P).options == (2, 4, 6)
    assert parse_choice({"range": [3, 3]}, P).options == (3,)


@pytest.mark.parametrize("value, path, fragment", [
    ({"choice": []}, "x.choice", "at least one option"),
    ({"choice": 3}, "x.choice", "a list of options"),
    ({"choice": [1, 1]}, "x.choice", "distinct options"),
    ({"choice": [[1], [2]]}, "x.choice", "scalar options"),
    ({"choice": [1], "range": [1, 2]}, "x", "either 'choice' or 'range'"),
    ({"range": [1]}, "x.range", "range: [low, high] with two integers"),
    ({"range": [1.0, 2]}, "x.range", "range: [low, high] with two integers"),
    ({"range": [5, 1]}, "x.range", "low <= high"),
    ({"range": [1, 5], "step": 0}, "x.step", "a positive integer step"),
    ({"range": [1, 5], "step": 1.5}, "x.step", "a positive integer step"),
    ({"range": [0, 10 * MAX_RANGE_OPTIONS]}, "x.range", f"at most {MAX_RANGE_OPTIONS} options"),
    ({"choice": [1, 2], "default": 3}, "x.default", "a default among [1, 2]"),
    ({"choice": [1, 2], "default": True}, "x.default", "a default among [1, 2]"),
    ({"choice": [1, 2], "dflt": 1}, "x.dflt", "unknown key 'dflt'"),
])
def test_choice_errors(value, path, fragment):
    with pytest.raises(SpecError) as info:
        parse_choice(value, P)
    assert format_path(info.value.path) == path
    assert fragment in str(info.value)


def test_choice_on_a_field_checks_every_option():
    stem = build(StemSpec, {"channels": {"range": [8, 16], "step": 4, "default": 12}})
    assert stem.channels == Choice((8, 12, 16), 12)
    neuron = build(NeuronSpec, {"tau": {"choice": [2, 4]}})
    assert neuron.tau == Choice((2.0, 4.0), 2.0)
    assert all(isinstance(o, float) for o in neuron.tau.options)
    with pytest.raises(SpecError, match=r"channels\.choice\[1\]: expected a value >= 1, found 0"):
        build(StemSpec, {"channels": {"choice": [8, 0]}})
    with pytest.raises(SpecError, match=r"kernel: expected a fixed value, found a choice"):
        build(StemSpec, {"kernel": {"choice": [3, 5]}, "channels": 8})


def test_fixed_values_are_checked():
    with pytest.raises(SpecError, match="expected an integer, found '8'"):
        build(StemSpec, {"channels": "8"})
    with pytest.raises(SpecError, match="expected an integer, found True"):
        build(StemSpec, {"channels": True})
    with pytest.raises(SpecError, match="expected a finite number, found inf"):
        build(NeuronSpec, {"v_threshold": math.inf})
    with pytest.raises(SpecError, match="found unknown key 'kernal'; did you mean 'kernel'"):
        build(StemSpec, {"kernal": 3, "channels": 8})
    assert build(StemSpec, {"channels": 8}) == StemSpec(channels=8)
    assert build(NeuronSpec, {"v_reset": None}).v_reset is None


def test_cell_rules():
    ok = build(CellSpec, {"type": "dense", "nodes": 3, "ops": ["none", "conv_3x3"]})
    assert ok.ops == ("none", "conv_3x3") and ok.edges_per_node is None
    with pytest.raises(SpecError, match=r"ops\[1\]: .*did you mean 'conv_3x3'"):
        build(CellSpec, {"type": "dense", "nodes": 3, "ops": ["none", "conv3x3"]})


# ------------------------------------------------------------------ search dimensions
def _raw(name: str) -> dict:
    return yaml.safe_load((dsl.builtin_dir() / f"{name}.yaml").read_text(encoding="utf-8"))


def test_search_dimensions_of_darts_snn():
    spec = dsl.load_spec("darts_snn")
    dims = dsl.search_dimensions(spec)
    assert list(dims) == ["macro.stem.channels", "macro.cells", "neuron.type", "neuron.tau", "timesteps"]
    raw = _raw("darts_snn")
    for key, choice in dims.items():
        node = raw
        for part in key.split("."):
            node = node[part]
        assert choice.options == tuple(node["choice"]), key  # the file's options, in order
        assert choice.default == node.get("default", node["choice"][0]), key
    assert all(isinstance(o, float) for o in dims["neuron.tau"].options)
    assert set(dims["neuron.type"].options) <= {"lif", "plif"}
    assert dsl.defaults(spec) == {k: c.default for k, c in dims.items()}


def test_search_dimensions_of_other_builtins():
    assert list(dsl.search_dimensions(dsl.load_spec("darts"))) == ["macro.stem.channels", "macro.cells"]
    assert dsl.search_dimensions(dsl.load_spec("nb201")) == {}
    assert dsl.search_dimensions(dsl.load_spec("horowitz_45nm")) == {}
    hw_dims = dsl.search_dimensions(dsl.load_spec("systolic_template"))
    assert list(hw_dims) == [
        "dataflow", "pe_array.rows", "pe_array.cols", "buffers.ifmap_kb", "buffers.filter_kb",
        "buffers.ofmap_kb", "bandwidth.dram_bytes_per_cycle", "clock_mhz"]
    assert dsl.defaults(dsl.load_spec("systolic_template"))["dataflow"] == _raw("systolic_template")["dataflow"]["default"]


def _last_options(spec) -> dict:
    return {k: c.options[-1] for k, c in dsl.search_dimensions(spec).items()}


def test_resolve_picks_values_and_defaults():
    spec = dsl.load_spec("darts_snn")
    dims = dsl.search_dimensions(spec)
    picked = {"macro.cells": dims["macro.cells"].options[-1], "neuron.type": dims["neuron.type"].options[-1],
              "timesteps": dims["timesteps"].options[0]}
    fixed = dsl.resolve(spec, picked)
    assert fixed.macro.cells == picked["macro.cells"]
    assert fixed.neuron.type == picked["neuron.type"] and fixed.timesteps == picked["timesteps"]
    assert fixed.macro.stem.channels == dims["macro.stem.channels"].default  # not given: the default
    assert fixed.neuron.tau == dims["neuron.tau"].default
    assert dsl.search_dimensions(fixed) == {}
    assert fixed.cell == spec.cell and fixed.training == spec.training
    assert fixed.source == spec.source
    assert dsl.resolve(spec, {}) == dsl.resolve(spec, dsl.defaults(spec))
    assert dsl.resolve(spec, _last_options(spec)) != dsl.resolve(spec, {}) or all(
        len(c) == 1 for c in dims.values())
    assert isinstance(spec.macro.cells, Choice)  # the space itself is unchanged


@pytest.mark.parametrize("values", [{"macro.cells": 999}, {"neuron.type": "alif"}, {"timesteps": -1}])
def test_resolve_rejects_a_value_outside_the_choice(values):
    with pytest.raises(ValueError, match="is not one of"):
        dsl.resolve(dsl.load_spec("darts_snn"), values)


def test_resolve_accelerator():
    spec = dsl.load_spec("systolic_template")
    values = _last_options(spec)
    hw = dsl.resolve(spec, values)
    assert hw.pe_array.rows == values["pe_array.rows"] and hw.dataflow == values["dataflow"]
    assert dsl.search_dimensions(hw) == {}
    assert dsl.resolve(spec, {"pe_array.rows": values["pe_array.rows"]}).pe_array.cols == \
        dsl.defaults(spec)["pe_array.cols"]


# ------------------------------------------------------------------ units
@pytest.mark.parametrize("text, qty, value", [
    ("2 ms", "latency", 0.002),
    ("2ms", "latency", 0.002),
    ("150 us", "latency", 150e-6),
    ("1e-3 s", "latency", 1e-3),
    ("3 uJ", "energy", 3e-6),
    ("0.23 pJ", "energy", 0.23e-12),
    ("2.5 mm2", "area", 2.5),
    ("419 um2", "area", 419e-6),
    ("150 mW", "power", 0.15),
    (".5 W", "power", 0.5),
])
def test_parse_quantity(text, qty, value):
    assert parse_quantity(text, qty, ()) == pytest.approx(value)


@pytest.mark.parametrize("text, qty, fragment, hint", [
    ("2 mss", "latency", "a latency unit (s, ms, us, ns), found 'mss'", "did you mean 'ms'"),
    ("3 uj", "energy", "found 'uj'", "did you mean 'uJ'"),
    ("2 mJ", "latency", "a latency unit", None),
    ("100 cycles", "latency", "found 'cycles'", None),
    ("2", "latency", "'<number> <unit>' for latency, found '2'", "units: s, ms, us, ns"),
    (2, "latency", "with a unit such as '2 s', found 2", "quote the number"),
    ("-1 ms", "latency", "a non-negative latency, found '-1 ms'", None),
])
def test_parse_quantity_errors(text, qty, fragment, hint):
    with pytest.raises(SpecError) as info:
        parse_quantity(text, qty, ("specs", qty, "max"))
    assert fragment in str(info.value)
    assert format_path(info.value.path) == f"specs.{qty}.max"
    if hint:
        assert hint in info.value.hint


def test_template_limits_and_table_constants():
    hw = dsl.load_spec("systolic_template", overrides=dsl.parse_overrides(
        ["specs={latency: {max: 2 ms}, area: {max: '2.5 mm2'}, power: {max: 150 mW}}"]))
    assert hw.limits() == pytest.approx({"latency": 2e-3, "area": 2.5, "power": 0.15})
    table = dsl.load_energy_table(hw)
    raw = _raw(hw.technology)
    scale = {"pJ": 1e-12, "nJ": 1e-9, "um2": 1e-6, "mm2": 1.0}
    for key in table.REQUIRED_ENERGY:
        c = raw["energy"][key]
        assert table.energy_j(key) == pytest.approx(c["value"] * scale[c["unit"]])
    for key in table.REQUIRED_AREA:
        c = raw["area"][key]
        assert table.area_mm2(key) == pytest.approx(c["value"] * scale[c["unit"]])


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize("name", dsl.builtin_names())
def test_to_data_round_trip(name):
    spec = dsl.load_spec(name)
    data = to_data(spec)
    assert build(type(spec), data) == spec
    # and through YAML text, as a user would save it
    again = build(type(spec), yaml.safe_load(yaml.safe_dump(data, sort_keys=False)))
    assert again == spec
    assert dataclasses.is_dataclass(again)


def test_round_trip_through_a_file(tmp_path):
    spec = dsl.load_spec("darts_snn")
    path = tmp_path / "copy.yaml"
    path.write_text(yaml.safe_dump(to_data(spec), sort_keys=False))
    assert dsl.load_file(path) == spec
    resolved = dsl.resolve(spec, _last_options(spec))
    assert build(ArchSpace, to_data(resolved)) == resolved


# ------------------------------------------------------------------ errors and YAML lines
def test_format_path_and_close_matches():
    assert format_path(("cell", "ops", 3)) == "cell.ops[3]"
    assert format_path(()) == "<top>"
    assert close_matches("chanels", ["kernel", "channels"]) == "did you mean 'channels'?"
    assert close_matches("zzz", ["kernel"]) is None


def test_spec_error_renders_one_line():
    err = SpecError("an integer", "'x\ny'", path=("a", 0), hint="fix\nit")
    assert "\n" not in str(err)
    assert str(err).endswith("a[0]: expected an integer, found 'x y'; fix it")
    located = err.located(file="f.yaml", line=3)
    assert str(located).startswith("f.yaml:3: a[0]: ")
    assert err.located(file="g.yaml").file == "g.yaml"


def test_yaml_lines_and_duplicate_keys():
    loaded = load_yaml_text("a:\n  b: 1\n  c:\n    - 1\n    - 2\n", "t.yaml")
    assert loaded.data == {"a": {"b": 1, "c": [1, 2]}}
    assert loaded.line_of(("a", "b")) == 2
    assert loaded.line_of(("a", "c", 1)) == 5
    assert loaded.line_of(("a", "zz")) == 1  # nearest placed ancestor
    with pytest.raises(SpecError, match=r"t\.yaml:3: a: expected each key once, found 'a' again \(first on line 1\)"):
        load_yaml_text("a: 1\nb: 2\na: 3\n", "t.yaml")
    with pytest.raises(SpecError, match=r"^t\.yaml:2: (<top>: )?expected valid YAML"):
        load_yaml_text("a: [1,\nb: 2: 3\n", "t.yaml")
    assert load_yaml_text("", "t.yaml").data is None


def test_yaml_aliases():
    loaded = load_yaml_text("a: &x {b: 1}\nc: *x\n", "t.yaml")
    assert loaded.data == {"a": {"b": 1}, "c": {"b": 1}}
    assert loaded.line_of(("c",)) == 2 and loaded.line_of(("c", "b")) == 2
    # nested aliases are walked once per node, not once per path (no blow-up): 9**5 values
    text = "l0: &l0 [1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n" for i in range(1, 5))
    assert len(load_yaml_text(text, "t.yaml").lines) < 200
    with pytest.raises(SpecError, match=r"t\.yaml:1: a\[1\]: expected no value that contains itself"):
        load_yaml_text("a: &r [1, *r]\n", "t.yaml")
