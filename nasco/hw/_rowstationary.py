"""The row-stationary (RS) dataflow of Eyeriss, as closed-form numpy arithmetic.

Chen, Emer & Sze, "Eyeriss: A Spatial Architecture for Energy-Efficient Dataflow for
Convolutional Neural Networks", ISCA 2016, and Chen et al., "Eyeriss: An Energy-Efficient
Reconfigurable Accelerator for Deep Convolutional Neural Networks", JSSC 2017.

In RS each PE runs a 1-D convolution: one filter row (S weights) slides over one ifmap row
and produces one psum row of F outputs, S x F MACs, one per cycle. A *PE set* of R rows
(filter rows) x E columns (ofmap rows) computes the 2-D convolution of one (channel,
filter) pair: filter rows stay in a PE row, ifmap rows move diagonally, psums add up each
PE column. The set is mapped onto the physical array:

* R larger than the array's rows: the filter rows are split into ``ceil(R / rows)`` folds
  whose psums are accumulated one after another;
* E larger than the array's columns: the ofmap rows are strip-mined into
  ``ceil(E / cols)`` strips of at most ``cols`` rows;
* sets smaller than the array: ``floor(rows / set_h) * floor(cols / set_w)`` copies run at
  once on different (channel, filter) pairs.

A pass of the array thus takes ``S * F`` cycles, and a layer needs
``ceil(C * M / copies) * strips * folds`` passes (per image). On AlexNet CONV1 (R = 11,
E = 55) a 12 x 14 array holds one 11 x 14 set: 154 active PEs, the figure of Eyeriss's
JSSC paper; CONV3 (R = 3, E = 13) holds four 3 x 13 sets: 156 PEs.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["rs_mapping", "rs_compute_cycles", "rs_accesses", "rs_layer_accesses", "rs_layer_core"]


def _i(x: ArrayLike) -> NDArray[np.int64]:
    return np.asarray(x, dtype=np.int64)


def _cdiv(a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.int64]:
    return -(-a // b)


def rs_mapping(rows: ArrayLike, cols: ArrayLike, filter_h: ArrayLike, ofmap_h: ArrayLike,
               pairs: ArrayLike) -> dict[str, NDArray[np.int64]]:
    """The RS mapping of layers onto a ``rows x cols`` array (broadcastable arrays).

    ``pairs`` = channels x filters (per group). Returns set_h, set_w, folds (filter-row
    folds), strips (ofmap-row strips), copies (sets running at once) and passes.
    """
    rows, cols, r, e, pairs = _i(rows), _i(cols), _i(filter_h), _i(ofmap_h), _i(pairs)
    folds = _cdiv(r, rows)
    set_h = _cdiv(r, folds)
    strips = _cdiv(e, cols)
    set_w = _cdiv(e, strips)
    copies = np.maximum((rows // set_h) * (cols // set_w), 1)
    copies = np.minimum(copies, np.maximum(pairs, 1))
    passes = _cdiv(pairs, copies) * strips * folds
    return {"set_h": set_h, "set_w": set_w, "folds": folds, "strips": strips, "copies": copies,
            "passes": passes}


def rs_compute_cycles(rows: ArrayLike, cols: ArrayLike, filter_h: ArrayLike, filter_w: ArrayLike,
                      ofmap_h: ArrayLike, ofmap_w: ArrayLike, channels: ArrayLike,
                      num_filters: ArrayLike, batch: ArrayLike = 1) -> NDArray[np.int64]:
    """Compute cycles of conv layers (per group) under RS: passes x S x F x batch.

    One MAC per PE per cycle (Eyeriss's PE has one multiplier and one adder); images of a
    batch run one after another through the same mapping.
    """
    m = rs_mapping(rows, cols, filter_h, ofmap_h, _i(channels) * _i(num_filters))
    return m["passes"] * _i(filter_w) * _i(ofmap_w) * _i(batch)


def rs_accesses(rows: ArrayLike, cols: ArrayLike, filter_h: ArrayLike, filter_w: ArrayLike,
                ifmap_w: ArrayLike, ofmap_h: ArrayLike, ofmap_w: ArrayLike, channels: ArrayLike,
                num_filters: ArrayLike, batch: ArrayLike = 1) -> dict[str, NDArray[np.int64]]:
    """Word accesses per layer at each level of Eyeriss's hierarchy under RS.

    * register file: every MAC reads an ifmap value, a weight and a psum and writes the
      psum back (ISCA 2016, Sec. V: the RF serves all three operands);
    * global buffer: per pass a set reads its ``set_h`` filter rows (S words each) and the
      ``set_h + set_w - 1`` ifmap rows its diagonals need (ifmap_w words each), and writes
      ``set_w`` psum rows (F words); a psum row is read back when a later pass continues
      its accumulation (another channel or filter-row fold);
    * NoC: every global-buffer word travels over the NoC once, multicast included.
    """
    rows, cols = _i(rows), _i(cols)
    r, s, wi = _i(filter_h), _i(filter_w), _i(ifmap_w)
    e, f, c, mm, n = _i(ofmap_h), _i(ofmap_w), _i(channels), _i(num_filters), _i(batch)
    m = rs_mapping(rows, cols, r, e, c * mm)
    macs = r * s * e * f * c * mm * n
    runs = m["passes"] * m["copies"] * n  # set executions, each one (channel, filter, strip, fold)
    glb_filter = runs * m["set_h"] * s
    glb_ifmap = runs * (m["set_h"] + m["set_w"] - 1) * wi
    glb_psum_w = runs * m["set_w"] * f
    # Accumulation over channels and filter-row folds: every run after the first of an
    # output row re-reads the partial sums it continues.
    outputs = e * f * mm * n
    glb_psum_r = np.maximum(glb_psum_w - outputs, 0)
    return {
        "rf": 4 * macs,
        "glb_reads": glb_filter + glb_ifmap + glb_psum_r,
        "glb_writes": glb_psum_w,
        "noc": glb_filter + glb_ifmap + glb_psum_r + glb_psum_w,
        "macs": macs,
    }


def rs_layer_accesses(rows: ArrayLike, cols: ArrayLike, filter_h: ArrayLike, filter_w: ArrayLike,
                      ofmap_h: ArrayLike, ofmap_w: ArrayLike, channels: ArrayLike, num_filters: ArrayLike,
                      groups: ArrayLike = 1, stride: ArrayLike = 1, dilation: ArrayLike = 1,
                      psum_words: int = 1, filter_words: int = 1 << 30) -> dict[str, NDArray[np.int64]]:
    """Cycles and word movements of whole layers (one image) under RS, for the cost model.

    ``channels`` and ``num_filters`` are per group. Every (channel, filter) pair of every
    group is one 2-D convolution, so a depthwise layer (one channel per group) fills the
    array with copies of different groups instead of running groups one after another.

    * cycles: passes x S x F (``folds``: the passes);
    * copies stacked vertically (``rows // set_h`` of them) take different channels, so their
      psums add up down the array's columns (Eyeriss accumulates channels spatially when sets
      are short; Timeloop's Eyeriss-like mapping puts C on the same PE axis as the filter
      rows); copies side by side take different filters of those channels;
    * ``ifmap_reads``: per pass, the ifmap rows a set's diagonals need,
      ``(set_w - 1) * stride + (set_h - 1) * dilation + 1`` rows of ``W`` words for each
      channel the pass holds, read once and multicast to the copies that share it; a PE
      whose scratchpads hold ``p = min(psum_words, filter_words // S)`` filters (Eyeriss's
      mapping parameter p, JSSC 2017 Table III) runs them on each ifmap row it receives,
      so ifmap rows are fetched once per p passes over those filters;
    * ``filter_words``: filter rows delivered to the filter scratchpads, once per pair and
      filter-row fold; they stay there across ofmap strips (S words per PE);
    * ``psum_writes``: per pass, each column of copies writes ``set_w`` psum rows of F words
      (the vertical stack has summed its channels); ``psum_reads``: every write after the
      first of an output row reads back the partial sums it continues;
    * ``ofmap_writes``: 0 here: finished outputs are the last psum writes.
    """
    rows, cols = _i(rows), _i(cols)
    r, s, e, f = _i(filter_h), _i(filter_w), _i(ofmap_h), _i(ofmap_w)
    c, m, g = _i(channels), _i(num_filters), np.maximum(_i(groups), 1)
    u, d = np.maximum(_i(stride), 1), np.maximum(_i(dilation), 1)
    mp = rs_mapping(rows, cols, r, e, c * m * g)
    passes, copies = mp["passes"], mp["copies"]
    cycles = passes * s * f
    in_w = (f - 1) * u + (s - 1) * d + 1
    rows_needed = (mp["set_w"] - 1) * u + (mp["set_h"] - 1) * d + 1
    vertical = np.maximum(np.minimum(np.minimum(rows // mp["set_h"], c), copies), 1)
    channels_per_pass = np.maximum(vertical, _cdiv(copies, np.minimum(copies, m)))
    across = np.maximum(copies // vertical, 1)  # copies side by side: different filters
    p = np.clip(np.minimum(psum_words, filter_words // np.maximum(s, 1)), 1, None)
    p = np.minimum(p, _cdiv(m, across))
    ifmap_reads = _cdiv(passes, p) * channels_per_pass * rows_needed * in_w
    filter_words = (passes // mp["strips"]) * copies * mp["set_h"] * s
    psum_writes = passes * _cdiv(copies, vertical) * mp["set_w"] * f
    outputs = e * f * m * g
    psum_reads = np.maximum(psum_writes - outputs, 0)
    return {"cycles": cycles, "folds": passes, "ifmap_reads": ifmap_reads, "filter_words": filter_words,
            "psum_reads": psum_reads, "psum_writes": psum_writes, "ofmap_writes": np.zeros_like(cycles)}


def rs_layer_core(rows: int, cols: int, filter_h: ArrayLike, filter_w: ArrayLike, stride: ArrayLike,
                  dilation: ArrayLike, ofmap_h: ArrayLike, ofmap_w: ArrayLike, channels: ArrayLike,
                  num_filters: ArrayLike, groups: ArrayLike, compute: NDArray[np.bool_], *, psum_words: int,
                  filter_words: int) -> dict[str, Any]:
    """The cost model's core of row-stationary layers (:func:`rs_layer_accesses`), 0 where
    ``compute`` is False (layers off the array). Filters go from DRAM to the PEs' filter
    scratchpads (they bypass the global buffer, as in Eyeriss: no ``filter_reads``); ifmaps
    and psums live in the global buffer; each MAC reads and writes its psum in the psum
    scratchpad (``psum_rw`` 2)."""
    acc = rs_layer_accesses(rows, cols, filter_h, filter_w, ofmap_h, ofmap_w, channels, num_filters, groups,
                            stride, dilation, psum_words=psum_words, filter_words=filter_words)
    out: dict[str, Any] = {k: np.where(compute, v, 0) for k, v in acc.items()}
    out["filter_reads"] = np.zeros_like(out["cycles"])
    out["psum_rw"] = 2
    return out
