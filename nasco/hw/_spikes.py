"""Bits that a spike map costs in the buffers, on the NoC and in DRAM, per neuron and timestep.

The accelerator template's ``spikes`` section (:class:`nasco.dsl._specs.SpikesSpec`) picks the
encoding; :class:`~nasco.hw.CostModel` multiplies every spike map it stores or moves by the
bits per element given here, with the map's measured spike rate ``r``:

* ``dense``: 1 bit per neuron and timestep whatever the rate (a bitmap; SATA's buffers hold
  spikes this way, Yin et al., TCAD 2022).
* ``aer``: address-event representation, ``r * A`` bits: each spike is one event word
  holding the address of the neuron that fired, a silent neuron costs nothing. The time of
  an event is when it is sent ("time represents itself", Boahen, "Point-to-point
  connectivity between neuromorphic chips using address events", IEEE TCAS-II 47(5), 2000);
  here a map's events are streamed in the timestep that produced them, so an event carries
  no timestamp and no per-event overhead is charged. ``A`` is ``spikes.address_bits``, or
  with ``null`` the fewest bits that name every element of the map, ceil(log2(elements)).
* ``bitmap_rle``: the bitmap run-length coded as by Eyeriss's RLC (Chen et al., "Eyeriss: an
  energy-efficient reconfigurable accelerator for deep convolutional neural networks",
  JSSC 52(1), 2017: each code a 5-bit run of zeros and the level that ends it; a run longer
  than the field ends in a code of level 0). A spike's level is 1 bit, so a code is
  ``k + 1`` bits for a ``k``-bit run field (``spikes.run_bits``). With spikes independent at
  rate r (the cost model knows only the mean rate), codes are a renewal process whose cycles
  are min(G, 2^k) elements long, G ~ Geometric(r), of mean (1 - (1 - r)^(2^k)) / r; so
  ``(k + 1) * r / (1 - (1 - r)^(2^k))`` bits per element, (k + 1) / 2^k at r = 0 and k + 1
  at r = 1. Codes are counted packed end to end (Eyeriss packs three into a 64-bit word
  with a term bit; that packing is not modelled).
"""
from __future__ import annotations

import numpy as np

from nasco.dsl._specs import SPIKE_FORMATS

__all__ = ["SPIKE_FORMATS", "address_bits_for", "spike_map_bits"]


def address_bits_for(elements: np.ndarray) -> np.ndarray:
    """ceil(log2(elements)), at least 1: the bits that name each element of a map (int64).

    Exact for every count up to 2**53: ``frexp`` returns the exponent e with
    elements - 1 = m * 2**e, m in [0.5, 1), which is the bit length of elements - 1."""
    n = np.maximum(np.asarray(elements, dtype=np.int64), 2) - 1
    return np.frexp(n.astype(np.float64))[1].astype(np.int64)


def spike_map_bits(fmt: str, rates: np.ndarray, elements: np.ndarray, *, address_bits: int | None,
                   run_bits: int) -> np.ndarray:
    """Bits per neuron and timestep of spike maps at ``rates`` (spikes per neuron per timestep).

    ``elements``: the neurons of each map (for ``aer`` with ``address_bits`` None). See the
    module's docstring for each format's formula and source."""
    r = np.asarray(rates, dtype=np.float64)
    if fmt == "dense":
        return np.ones_like(r)
    if fmt == "aer":
        a = address_bits_for(elements) if address_bits is None else int(address_bits)
        return r * a
    if fmt == "bitmap_rle":
        k = int(run_bits)
        m = float(2**k)
        at_zero = (k + 1) / m  # the limit of the formula as r -> 0: one filler code per 2^k zeros
        safe = np.where(r > 0, r, 1.0)
        return np.where(r > 0, (k + 1) * safe / (1.0 - (1.0 - safe) ** m), at_zero)
    raise ValueError(f"spike format {fmt!r} is unknown; known: {', '.join(SPIKE_FORMATS)}")
