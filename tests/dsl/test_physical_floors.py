"""Floors and ceilings the DSL puts on physical values, and files that name a non-DSL file.

Each bound is hand-derived in nasco.dsl._specs (its source cited there); these tests take
values on both sides of it.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

import nasco.dsl as dsl
from nasco.dsl import SpecError
from nasco.evaluate import check_limits

BUILTINS = Path(dsl.find_file("systolic_template")).parent


def _specs(text: str):
    return dsl.load_spec("systolic_template", overrides=dsl.parse_overrides([f"specs={text}"]))


@pytest.mark.parametrize("spec", ["{latency: {max: 0 ms}}", "{latency: {max: 0.001 ns}}",
                                  "{energy: {max: 1e-320 uJ}}", "{energy: {max: 0.0001 pJ}}",
                                  "{area: {max: 0.1 um2}}", "{power: {max: 0.0001 uW}}"])
def test_a_spec_no_design_can_meet_is_refused(spec):
    with pytest.raises(SpecError) as info:
        _specs(spec)
    assert "a spec of at least" in str(info.value) and info.value.path[:1] == ("specs",)


def test_specs_at_realistic_values_load():
    hw = _specs("{latency: {max: 1 ns}, energy: {max: 1 pJ}, area: {max: 1 um2}, power: {max: 1 uW}}")
    assert hw.limits() == pytest.approx({"latency": 1e-9, "energy": 1e-12, "area": 1e-6, "power": 1e-6})


def test_landauer_floor_on_energy_entries(tmp_path):
    raw = yaml.safe_load((BUILTINS / "horowitz_45nm.yaml").read_text())
    kT_ln2 = 1.380649e-23 * 300 * math.log(2)  # 2.87e-21 J
    for value, refused in ((1.0e-320, True), (0.5 * kT_ln2 * 1e12, True), (2 * kT_ln2 * 1e12, False),
                           (0.0, False)):
        raw["energy"]["dram_bit"]["value"] = value  # in pJ
        path = tmp_path / "table.yaml"
        path.write_text(yaml.safe_dump(raw))
        if refused:
            with pytest.raises(SpecError, match="kT ln 2") as info:
                dsl.load_file(path)
            assert info.value.path == ("energy", "dram_bit", "value")
        else:
            assert dsl.load_file(path).energy_j("dram_bit") == pytest.approx(value * 1e-12, abs=0)


def test_learning_rate_and_pe_budget_bounds():
    with pytest.raises(SpecError, match="float32"):
        dsl.load_spec("nb201", overrides=dsl.parse_overrides(["training.lr=1.0e-320"]))
    assert dsl.load_spec("nb201", overrides=dsl.parse_overrides(["training.lr=1.0e-10"])).training.lr == 1e-10
    with pytest.raises(SpecError, match="4096 x 4096") as info:
        dsl.load_spec("hetero_2task", overrides=dsl.parse_overrides(["budget.pes=100000000000000000000000"]))
    assert info.value.path == ("budget", "pes")


def test_a_referenced_file_that_is_no_dsl_file_is_reported_at_the_referring_key(tmp_path):
    junk = tmp_path / "junk.txt"
    junk.write_text("root:x:0:0:root:/root:/bin/bash\n")
    hw = tmp_path / "hw.yaml"
    hw.write_text((BUILTINS / "systolic_template.yaml").read_text().replace(
        "technology: horowitz_45nm", f"technology: {junk}"))
    with pytest.raises(SpecError) as info:
        dsl.load_energy_table(dsl.load_file(hw))
    assert (info.value.file, info.value.path) == (str(hw), ("technology",))
    assert str(junk) in str(info.value)
    members = tmp_path / "set.yaml"
    members.write_text((BUILTINS / "asic_template.yaml").read_text().replace("  - nvdla_like ",
                                                                               f"  - {junk} ", 1))
    with pytest.raises(SpecError) as info:
        dsl.load_file(members)
    assert info.value.path == ("members", 1) and str(members) in str(info.value)


def test_a_power_spec_is_checked_against_energy_over_latency():
    # 2 mJ in 1 ms is 2 W: 0.5 W over a 1.5 W spec; energy and latency within theirs.
    values = {"energy": 2e-3, "latency": 1e-3}
    assert check_limits(values, {"power": 1.5, "energy": 1.0, "latency": 1.0}) == {"power": 0.5}
    assert check_limits(values, {"power": 2.5}) == {}
    assert check_limits({"energy": 2e-3}, {"power": 1.5}) == {}  # no latency: nothing to check
