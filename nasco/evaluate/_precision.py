"""The bit widths a network is scored at on an accelerator: the template's, as a :class:`nasco.nn.Precision`.

Every evaluator that scores a network for an accelerator applies this one rule before it calls
:func:`nasco.nn.quantize`: a width of :data:`FLOAT_BITS` or more runs in float, and the membrane
width counts only for a spiking network (an ANN has no membrane). torch is imported only when a
:class:`~nasco.nn.Precision` is made.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nasco.dsl import AcceleratorTemplate
    from nasco.nn import Precision

__all__ = ["FLOAT_BITS", "as_precision", "precision_metric", "precision_of"]

# Bit widths at or above this are run in float (32-bit floats carry a 24-bit mantissa, so a
# wider fixed-point grid changes no value the float network computes at its scale).
FLOAT_BITS = 32

Bits = tuple[int, int, int]  # (weight, activation, membrane)


def precision_of(template: AcceleratorTemplate) -> Bits:
    """The (weight, activation, membrane) bits of a resolved template."""
    b = template.bits
    return int(b.weight), int(b.activation), int(b.membrane)


def as_precision(bits: Bits, *, spiking: bool) -> Precision:
    """The :class:`~nasco.nn.Precision` a network (spiking or not) runs at on an accelerator with
    (weight, activation, membrane) ``bits``: None (float) for a width of at least :data:`FLOAT_BITS`,
    and for the membrane of an ANN."""
    from nasco.nn import Precision

    w, a, m = (None if b >= FLOAT_BITS else int(b) for b in bits)
    return Precision(w, a, m if spiking else None)


def precision_metric(bits: Bits) -> dict[str, int]:
    """The template's bits as a result records them (metrics ``precision``)."""
    return dict(zip(("weight", "activation", "membrane"), (int(b) for b in bits)))
