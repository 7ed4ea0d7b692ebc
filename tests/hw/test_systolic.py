"""Tests for nasco.hw._systolic against SCALE-Sim 3.0.0 fixtures (no scalesim needed here).

The fixture CSV is produced by ``experiments/scalesim_fixtures.py`` (see
``tests/fixtures/scalesim/README.md``); every row is a real SCALE-Sim run.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from nasco.hw._systolic import (
    DATAFLOWS,
    systolic_compute_cycles,
    systolic_dram_accesses,
    systolic_gemm_dims,
    systolic_num_folds,
    systolic_prefetch_fits,
    systolic_sram_accesses,
    systolic_total_cycles_incl_prefetch,
    systolic_utilization,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "scalesim" / "cases.csv"
LAYER = ("ifmap_h", "ifmap_w", "filter_h", "filter_w", "channels", "num_filters", "stride")
INT_COLS = ("array_rows", "array_cols", *LAYER, "sram_kb", "dram_bw", "total_cycles",
            "stall_cycles", "compute_cycles", "total_cycles_incl_prefetch",
            "ifmap_sram_reads", "filter_sram_reads", "ofmap_sram_writes", "ifmap_dram_reads",
            "filter_dram_reads", "ofmap_dram_writes")
FLOAT_COLS = ("overall_util_pct", "mapping_eff_pct", "compute_util_pct")


def _load() -> list[dict[str, str]]:
    with FIXTURE.open(newline="") as fh:
        return list(csv.DictReader(line for line in fh if not line.startswith("#")))


ROWS = _load()


def _columns(dataflow: str) -> dict[str, np.ndarray]:
    """Fixture rows of one dataflow as column arrays (one vectorised model call per test)."""
    rows = [r for r in ROWS if r["dataflow"] == dataflow]
    cols: dict[str, np.ndarray] = {k: np.array([int(r[k]) for r in rows], dtype=np.int64)
                                   for k in INT_COLS}
    cols.update({k: np.array([float(r[k]) for r in rows]) for k in FLOAT_COLS})
    cols["case_id"] = np.array([int(r["case_id"]) for r in rows])
    return cols


def _per_layer_array(c: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    return tuple(c[k] for k in LAYER)


def _call(fn, df: str, c: dict[str, np.ndarray], **kw):
    """Array dims vary across rows, so broadcast them like the layer arguments."""
    return fn(df, c["array_rows"], c["array_cols"], *_per_layer_array(c), **kw)


def _assert_exact(got: np.ndarray, want: np.ndarray, ids: np.ndarray, what: str) -> None:
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (f"{what}: {bad.size} mismatches, e.g. case "
                           f"{ids[bad[:5]].tolist()} got {got[bad[:5]].tolist()} "
                           f"want {want[bad[:5]].tolist()}")


def test_fixture_coverage() -> None:
    assert 100 <= len(ROWS) <= 250
    assert {r["dataflow"] for r in ROWS} == set(DATAFLOWS)
    assert {r["stride"] for r in ROWS} >= {"1", "2"}
    assert {r["filter_h"] for r in ROWS} >= {"1", "3", "5", "7"}
    assert {int(r["channels"]) for r in ROWS} >= {1, 512}
    assert len({(r["array_rows"], r["array_cols"]) for r in ROWS}) >= 4
    assert all(r["scalesim_version"] == "3.0.0" for r in ROWS)


@pytest.mark.parametrize("df", DATAFLOWS)
def test_compute_cycles_match_scalesim(df: str) -> None:
    c = _columns(df)
    assert np.array_equal(c["compute_cycles"], c["total_cycles"] - c["stall_cycles"])
    got = _call(systolic_compute_cycles, df, c)
    assert got.dtype == np.int64
    _assert_exact(got, c["compute_cycles"], c["case_id"], f"{df} compute cycles")


@pytest.mark.parametrize("df", DATAFLOWS)
def test_sram_accesses_match_scalesim(df: str) -> None:
    c = _columns(df)
    got = _call(systolic_sram_accesses, df, c)
    for key, col in (("ifmap_reads", "ifmap_sram_reads"), ("filter_reads", "filter_sram_reads"),
                     ("ofmap_writes", "ofmap_sram_writes")):
        _assert_exact(got[key], c[col], c["case_id"], f"{df} {key}")


@pytest.mark.parametrize("df", DATAFLOWS)
def test_utilization_matches_scalesim(df: str) -> None:
    c = _columns(df)
    got = _call(systolic_utilization, df, c, total_cycles=c["total_cycles"])
    np.testing.assert_allclose(got["overall_util"], c["overall_util_pct"], rtol=1e-9)
    np.testing.assert_allclose(got["mapping_efficiency"], c["mapping_eff_pct"], rtol=1e-9)
    np.testing.assert_allclose(got["compute_util"], c["compute_util_pct"], rtol=1e-9)


@pytest.mark.parametrize("df", DATAFLOWS)
def test_prefetch_and_dram_match_scalesim_when_operands_fit(df: str) -> None:
    c = _columns(df)
    kb = c["sram_kb"]
    fits = _call(systolic_prefetch_fits, df, c, ifmap_sram_kb=kb, filter_sram_kb=kb,
                 ofmap_sram_kb=kb)
    stall_group = np.array([r["group"] == "stall" for r in ROWS if r["dataflow"] == df])
    assert np.array_equal(fits, ~stall_group)     # 1 kB buffers never fit, 2 MB always do
    assert np.all(c["stall_cycles"][fits] == 0)
    c = {k: v[fits] for k, v in c.items()}
    bw = dict(ifmap_bw=c["dram_bw"], filter_bw=c["dram_bw"])
    got = _call(systolic_total_cycles_incl_prefetch, df, c, ofmap_bw=c["dram_bw"], **bw)
    _assert_exact(got, c["total_cycles_incl_prefetch"], c["case_id"], f"{df} incl. prefetch")
    dram = _call(systolic_dram_accesses, df, c, **bw)
    for key, col in (("ifmap_reads", "ifmap_dram_reads"), ("filter_reads", "filter_dram_reads"),
                     ("ofmap_writes", "ofmap_dram_writes")):
        _assert_exact(dram[key], c[col], c["case_id"], f"{df} DRAM {key}")


def test_hand_checked_os() -> None:
    # OS, 8x8 array, 10x10x4 ifmap, 3x3 filter, 16 filters, stride 1:
    #   ofmap 8x8 -> Sr = 64 px, Sc = 16 filters, T = 3*3*4 = 36
    #   folds = ceil(64/8) * ceil(16/8) = 16, each T + R + C - 2 = 50 rows -> 800 - 1 = 799
    #   ifmap reads  = ceil(16/8) * 64 * 36 = 4608, filter reads = ceil(64/8) * 16 * 36 = 4608
    #   ofmap writes = 64 * 16 + 16 * (8 + 8) = 1280      (SCALE-Sim 3.0.0 run: identical)
    assert systolic_compute_cycles("os", 8, 8, 10, 10, 3, 3, 4, 16, 1) == 799
    acc = systolic_sram_accesses("os", 8, 8, 10, 10, 3, 3, 4, 16, 1)
    assert (acc["ifmap_reads"], acc["filter_reads"], acc["ofmap_writes"]) == (4608, 4608, 1280)
    # prefetch: ifmap 8 row folds * 8 rows * 36 = 2304 words / 10 = 231 lines, filter
    # 2 * 8 * 36 = 576 -> 58 lines; ofmap drain 1024 / 10 -> 103 lines: 799 + 231 + 103 - 1
    assert systolic_total_cycles_incl_prefetch("os", 8, 8, 10, 10, 3, 3, 4, 16, 1) == 1132
    util = systolic_utilization("os", 8, 8, 10, 10, 3, 3, 4, 16, 1)
    assert util["mapping_efficiency"] == pytest.approx(100.0)
    assert util["compute_util"] == pytest.approx(72.0)     # 36 / 50


def test_hand_checked_ws_is() -> None:
    # 12x14 array, 15x15x3 ifmap, 5x5 filter, 20 filters, stride 2:
    #   ofmap (15-5)//2+1 = 6 -> Npx = 36, window W = 75, K = 20
    #   WS: Sr=W=75, Sc=K=20, T=Npx=36: folds 7*2 = 14, rows/fold 36+24+14-2 = 72 -> 1007
    #   IS: Sr=W=75, Sc=Npx=36, T=K=20: folds 7*3 = 21, rows/fold 20+24+14-2 = 56 -> 1175
    args = (12, 14, 15, 15, 5, 5, 3, 20, 2)
    assert systolic_compute_cycles("ws", *args) == 1007
    assert systolic_compute_cycles("is", *args) == 1175
    ws = systolic_sram_accesses("ws", *args)      # ifmap 2*75*36, filter 75*20, ofmap 7*36*20
    assert (ws["ifmap_reads"], ws["filter_reads"], ws["ofmap_writes"]) == (5400, 1500, 5040)
    is_ = systolic_sram_accesses("is", *args)     # ifmap 75*36, filter 3*75*20, ofmap 7*20*36
    assert (is_["ifmap_reads"], is_["filter_reads"], is_["ofmap_writes"]) == (2700, 4500, 5040)
    assert systolic_total_cycles_incl_prefetch("ws", *args) == 1813
    assert systolic_total_cycles_incl_prefetch("is", *args) == 1993


def test_ofmap_size_uses_scalesim_ceil() -> None:
    # SCALE-Sim sizes the ofmap as ceil((ifmap - filter + stride) / stride): 14x14 ifmap, 5x5
    # filter, stride 2 -> 6x6 (a floor convention would give 5x5).  Fixture case 33 (os, 12x14)
    # confirms it: 36 px * 150 window * ceil(16/14) = 10800 ifmap SRAM reads.
    sr, sc, t = systolic_gemm_dims("os", 14, 14, 5, 5, 6, 16, 2)
    assert (int(sr), int(sc), int(t)) == (36, 16, 150)
    assert systolic_sram_accesses("os", 12, 14, 14, 14, 5, 5, 6, 16, 2)["ifmap_reads"] == 10800
    # divisible case: both conventions agree, (15 - 5) / 2 + 1 = 6
    assert int(systolic_gemm_dims("os", 15, 15, 5, 5, 1, 1, 2)[0]) == 36


def test_vectorised_and_broadcast() -> None:
    ch = np.array([1, 8, 64, 512])
    got = systolic_compute_cycles("ws", 16, 16, 8, 8, 3, 3, ch, 32, 1)
    want = [systolic_compute_cycles("ws", 16, 16, 8, 8, 3, 3, int(x), 32, 1) for x in ch]
    assert got.shape == (4,) and got.tolist() == [int(w) for w in want]
    sr, sc, t = systolic_gemm_dims("is", 1, 1, 1, 1, ch, 10, 1)   # FC layer: Npx = 1
    assert sr.tolist() == ch.tolist() and sc.tolist() == [1] * 4 and t.tolist() == [10] * 4
    assert systolic_num_folds("os", 8, 8, 10, 10, 3, 3, 4, 16, 1) == 16


def test_invalid_inputs() -> None:
    with pytest.raises(ValueError):
        systolic_compute_cycles("rs", 8, 8, 4, 4, 1, 1, 1, 1, 1)
    with pytest.raises(ValueError):
        systolic_compute_cycles("os", 8, 8, 2, 2, 3, 3, 1, 1, 1)   # filter larger than ifmap
    with pytest.raises(ValueError):
        systolic_compute_cycles("os", 0, 8, 4, 4, 1, 1, 1, 1, 1)
