"""Cycles of a loop-unrolled PE array (a template's ``pe_array.unroll``).

Such an array spreads some loop dimensions of a conv across its PEs, each over a fixed number
of them, as ZigZag's spatial mappings (Mei et al., "ZigZag: Enlarging joint architecture-mapping
design space exploration for DNN accelerators", IEEE TC 70(8), 2021) and Timeloop's spatial
factors describe it. Every cycle each PE does one MAC of the current iteration of the loops
left in time; a dimension of size ``L`` spread over ``u`` PEs takes ``ceil(L / u)`` iterations,
the last one partly idle. With ``L_d`` the layer's size of dimension ``d`` and ``u_d`` its
unrolling (1 for a dimension kept in time)::

    cycles = prod_d ceil(L_d / u_d)      over d in K, C, OX, OY, FX, FY, G

This is ZigZag's ideal temporal cycle count at its spatial utilisation (its
``ideal_cycle / spatial_utilization``); ``tests/hw/test_zigzag_fixtures.py`` holds it to the
real ZigZag's figures. Operands reach the PEs by broadcast and reduction trees, not by
neighbour hops, so there is no fill, skew or drain as on a systolic array.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nasco.hw._systolic import _cdiv

__all__ = ["unrolled_cycles"]


def unrolled_cycles(unroll: Mapping[str, int], *, K: ArrayLike, C: ArrayLike, OX: ArrayLike,  # noqa: N803
                    OY: ArrayLike, FX: ArrayLike, FY: ArrayLike, G: ArrayLike) -> NDArray[np.int64]:
    """Cycles of one pass of each layer (sizes per dimension, broadcast together; ``K`` and ``C``
    per group) on an array that spreads dimension ``d`` over ``unroll[d]`` PEs."""
    sizes = {"K": K, "C": C, "OX": OX, "OY": OY, "FX": FX, "FY": FY, "G": G}
    unknown = set(unroll) - set(sizes)
    if unknown:
        raise ValueError(f"unroll names {sorted(unknown)}: expected loop dimensions among {list(sizes)}")
    cycles = np.ones(np.broadcast(*[np.asarray(v) for v in sizes.values()]).shape, dtype=np.int64)
    for dim, size in sizes.items():
        n = np.asarray(size, dtype=np.int64)
        u = int(unroll.get(dim, 1))
        if u < 1:
            raise ValueError(f"unroll[{dim!r}]={u}: expected a positive PE count")
        cycles = cycles * _cdiv(n, np.int64(u))
    return cycles
