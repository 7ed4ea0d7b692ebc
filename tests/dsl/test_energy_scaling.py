"""Bit widths without an entry in an energy table: priced from the nearest entry of the family
(multipliers by the product of the operand widths, adders by the width), as horowitz_45nm.yaml
documents. Expected values are the table's entries (Horowitz, ISSCC 2014) scaled by hand."""
from __future__ import annotations

import pytest

from nasco.dsl import load_energy_table, load_spec, resolve
from nasco.hw import CostModel

PJ, UM2 = 1e-12, 1e-6  # J per pJ, mm2 per um2
# The table converts pJ -> J and um2 -> mm2 before scaling, the products here after: they may
# round apart by an ulp (measured: no difference on these values); a relative 1e-12 is margin
# (abs=0: pytest's default absolute 1e-12 would swallow any error on picojoule values).
REL = 1e-12


@pytest.fixture(scope="module")
def table():
    return load_energy_table(load_spec("input_stationary"))


@pytest.mark.parametrize("family, bits, expected", [
    ("add", (4,), 0.03 * 4 / 8 * PJ),            # nearest entry add_8b
    ("add", (6,), 0.03 * 6 / 8 * PJ),
    ("add", (12,), 0.05 * 12 / 16 * PJ),         # 8 and 16 are as near: the wider, add_16b
    ("mult", (4, 6), 0.2 * 4 * 6 / 64 * PJ),     # mult_8b, by the product of the widths
    ("mac", (4, 4), 0.23 * 16 / 64 * PJ),
    ("mac", (16, 16), 0.23 * 256 / 64 * PJ),
])
def test_widths_without_an_entry_scale_from_the_nearest(table, family, bits, expected):
    assert table.scaled(family, *bits) == pytest.approx(expected, rel=REL, abs=0)


def test_area_scales_the_same_way(table):
    assert table.scaled("add", 4, section="area") == pytest.approx(36.0 * 4 / 8 * UM2, rel=REL, abs=0)
    assert table.scaled("mult", 6, 4, section="area") == pytest.approx(282.0 * 24 / 64 * UM2, rel=REL, abs=0)


def test_a_4_and_6_bit_datapath_is_charged_its_width():
    template = load_spec("input_stationary")
    model = CostModel(resolve(template, {"bits.weight": 4, "bits.activation": 6}),
                      load_energy_table(template))
    assert model.e_mac == pytest.approx(0.23 * 4 * 6 / 64 * PJ, rel=REL, abs=0)
    assert model.e_add_act == pytest.approx(0.03 * 6 / 8 * PJ, rel=REL, abs=0)
