"""nasco.nn's MaxPool2d: torch's max pooling, run in channels-last memory where no gradient is kept."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nasco.nn._torch import MaxPool2d


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("kernel, stride, padding", [(3, 1, 1), (2, 2, 0), (3, 2, 1)])
def test_max_pool_without_a_gradient_gives_torchs_values_and_layout(binary, kernel, stride, padding):
    x = torch.rand(64, 12, 8, 8, generator=torch.Generator().manual_seed(kernel + 10 * stride))
    x = (x < 0.3).float() if binary else x * 4 - 2  # spikes (ties in every window), or real values
    expected = nn.MaxPool2d(kernel, stride, padding)(x)
    with torch.no_grad():
        out = MaxPool2d(kernel, stride, padding)(x)
    assert torch.equal(out, expected)
    assert out.is_contiguous() and out.stride() == expected.stride()


def test_max_pool_in_a_graph_net_is_nascos():
    from nasco.dsl import load_spec
    from nasco.nn import GraphNet, plan_network
    from nasco.space import SearchSpace

    space = SearchSpace(load_spec("darts_snn"), None)
    cand = next(c for c in (space.sample(np.random.default_rng(s)) for s in range(50))
                if any(op == "max_pool_3x3" for cell in c.arch["cell"].values() for op, _ in cell))
    arch, _ = space.resolve(cand)
    net = GraphNet(plan_network(arch, cand.arch["cell"], (1, 8, 8), 10), arch)
    pools = [m for m in net.modules() if isinstance(m, nn.MaxPool2d)]
    assert pools and all(type(m) is MaxPool2d for m in pools)
