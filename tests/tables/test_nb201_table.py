"""The built-in nb201 table holds its shipped data value for value, answers the known checks, and
its cache is reused."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nasco.tables import STATS, TableError, find_table, load_table


def test_known_checks(nb201):
    c10 = nb201.columns["c10_test_200ep"]
    assert int(nb201.index[np.argmax(c10)]) == 6111 and c10.max() == 94.37333
    assert nb201.query(9930, "accuracy", dataset="c100", split="test", fidelity=200) == 73.51333
    assert nb201.query(857, "in16_test_200ep") == 47.31111
    assert nb201.query(6111, "accuracy", dataset="c10", split="valid", fidelity=200) == pytest.approx(91.607, abs=1e-3)
    assert [nb201.query(0, m) for m in ("eyeriss_latency", "fpga_latency", "raspi4_latency", "pixel3_latency")] \
        == [3.64562, 2.57296, 10.48198, 3.60585]
    assert len(nb201) == 15625 and len(nb201.spec.metrics) == 42


def test_values_equal_the_shipped_data_file(nb201):
    """The loaded (cached, columnar) table equals the shipped CSV read by pandas, every row and
    every metric column, exactly (the CSV holds each float's shortest round-trip form)."""
    spec_file = find_table("nb201")
    ref = pd.read_csv(spec_file.parent / nb201.spec.data)
    assert np.array_equal(nb201.index, ref["index"].to_numpy())
    assert set(nb201.spec.metrics) == set(ref.columns) - {"index", "arch_str"}
    for col in nb201.spec.metrics:
        assert np.array_equal(nb201.columns[col], ref[col].to_numpy(float), equal_nan=True), col


def test_keys_by_index_id_and_arch_str(nb201):
    from nasco.dsl import load_spec
    from nasco.space import SearchSpace

    space = SearchSpace(load_spec("nb201"), None)
    cand = space.from_index(6111)
    assert nb201.row_of(cand) == 6111
    assert nb201.query(cand.id, "c10_test_200ep") == 94.37333
    assert nb201.query(cand.arch["arch_str"], "c10_test_200ep") == 94.37333
    with pytest.raises(KeyError):
        nb201.query(15625, "c10_test_200ep")


def test_ambiguous_and_unknown_metric(nb201):
    with pytest.raises(TableError, match="matches 12 columns"):
        nb201.column_for("accuracy")
    with pytest.raises(TableError, match="no '.*' column for dataset=c100, split=valid, fidelity=200"):
        nb201.column_for("accuracy", dataset="c100", split="valid", fidelity=200)
    with pytest.raises(TableError, match="did you mean 'eyeriss_latency'"):
        nb201.column_for("eyeris_latency")


def test_cache_is_reused_not_reparsed(nb201, nb201_cache):
    parsed, hits = STATS["parsed"], STATS["cache_hits"]
    mtime = nb201.cache_path.stat().st_mtime_ns
    again = load_table("nb201", cache=nb201_cache)
    assert STATS["parsed"] == parsed and STATS["cache_hits"] == hits + 1
    assert again.cache_path == nb201.cache_path and again.cache_path.stat().st_mtime_ns == mtime
    assert np.array_equal(again.columns["eyeriss_ms"], nb201.columns["eyeriss_ms"])
    assert again.ids()[:3] == nb201.ids()[:3]
    assert not list(nb201_cache.rglob("*.tmp"))
