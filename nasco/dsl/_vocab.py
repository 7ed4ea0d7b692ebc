"""The op vocabulary that cell spaces draw from.

What an op *is* (its layers) is code; which ops a space uses is DSL data. Names follow
DARTS (Liu et al., ICLR 2019) and NAS-Bench-201 (Dong & Yang, ICLR 2020).
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OpDef", "OPS", "PARAMETER_FREE"]


@dataclass(frozen=True)
class OpDef:
    """One candidate op on a cell edge.

    kind: 'none' (zero), 'skip', 'conv' (act-conv-BN), 'sep' (act-depthwise-pointwise-BN),
    'pool_avg' / 'pool_max' (3x3, padding 1).
    """

    kind: str
    kernel: int = 1
    dilation: int = 1


OPS: dict[str, OpDef] = {
    "none": OpDef("none"),
    "skip_connect": OpDef("skip"),
    "conv_1x1": OpDef("conv", 1),
    "conv_3x3": OpDef("conv", 3),
    "conv_5x5": OpDef("conv", 5),
    # NAS-Bench-201 calls its ReLU-Conv-BN op 'nor_conv'; same layers as conv_kxk.
    "nor_conv_1x1": OpDef("conv", 1),
    "nor_conv_3x3": OpDef("conv", 3),
    "sep_conv_3x3": OpDef("sep", 3),
    "sep_conv_5x5": OpDef("sep", 5),
    "dil_conv_3x3": OpDef("sep", 3, 2),
    "avg_pool_3x3": OpDef("pool_avg", 3),
    "max_pool_3x3": OpDef("pool_max", 3),
}

PARAMETER_FREE = frozenset(n for n, d in OPS.items() if d.kind in ("none", "skip", "pool_avg", "pool_max"))
