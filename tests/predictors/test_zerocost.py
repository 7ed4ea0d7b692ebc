"""The synflow zero-cost proxy on the real NB201 network: deterministic, cached per live cell,
and it ranks a conv-heavy cell above the all-skip and empty cells. A few cells only (~1 s)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from nasco.dsl import load_spec
from nasco.predictors import encode_cells, live_edges, synflow, zero_cost_cache_path, zero_cost_scores
from nasco.space import SearchSpace

torch.set_num_threads(1)

CONV = ["nor_conv_3x3", "nor_conv_3x3", "nor_conv_1x1", "nor_conv_3x3", "skip_connect", "nor_conv_3x3"]
SKIP = ["skip_connect"] * 6
NONE = ["none"] * 6


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return SearchSpace(load_spec("nb201"))


def test_synflow_is_deterministic_and_ranks_convs_first(space):
    conv = synflow(space, CONV)
    assert conv == synflow(space, CONV)
    skip, none = synflow(space, SKIP), synflow(space, NONE)
    assert np.isfinite(conv) and conv > skip > none >= 0
    assert np.log(conv) - np.log(skip) > 10  # orders of magnitude apart, not a close call


def test_scores_are_cached_per_live_cell(space, tmp_path, monkeypatch):
    monkeypatch.setenv("NASCO_CACHE", str(tmp_path))
    # The second cell's avg_pool edge (2,1) is dead (node 1 has no input): both cells have the
    # same live edges, hence the same network, one cache line.
    a = ["none", "nor_conv_1x1", "none", "skip_connect", "none", "nor_conv_1x1"]
    b = ["none", "nor_conv_1x1", "avg_pool_3x3", "skip_connect", "none", "nor_conv_1x1"]
    la, lb = (live_edges(space, [space.make({"edges": e})]) for e in (a, b))
    assert (la == lb).all()
    s = zero_cost_scores(space, [space.make({"edges": e}) for e in (a, b, SKIP)])
    assert s[0] == s[1] and s[2] > 0
    path = zero_cost_cache_path(space)
    assert path.is_file() and len(path.read_text().splitlines()) == 2
    again = zero_cost_scores(space, [space.make({"edges": e}) for e in (b, SKIP)])
    assert (again == s[1:]).all() and len(path.read_text().splitlines()) == 2
    x = encode_cells(space, [space.make({"edges": SKIP})], "zc+synflow")
    assert x[0, -1] == pytest.approx(np.log(s[2]))


def test_unknown_proxy_lists_the_known(space):
    with pytest.raises(ValueError, match="known: synflow"):
        zero_cost_scores(space, [space.make({"edges": SKIP})], "snyflow", cache=False)


def test_one_definition_of_the_proxies():
    """nasco.predictors exports nasco.evaluate's PROXIES itself; what it scores per cell is a
    subset of them, and its synflow encoding is registered with the other encodings."""
    import nasco.predictors as predictors
    from nasco.evaluate._proxies import PROXIES

    assert predictors.PROXIES is PROXIES
    assert predictors.CELL_PROXIES.names() == ["synflow"] and set(predictors.CELL_PROXIES) <= set(PROXIES)
    assert predictors.ENCODINGS.names() == ["onehot", "adjacency", "path", "zc", "synflow"]
