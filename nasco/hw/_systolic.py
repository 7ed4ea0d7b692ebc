"""Closed-form systolic-array cycle / SRAM-access model, exact w.r.t. SCALE-Sim v3 (3.0.0).

Reference: A. Samajdar et al., "A Systematic Methodology for Characterizing Scalability of DNN
Accelerators using SCALE-Sim", ISPASS 2020, and the scalesim 3.0.0 source
(``scalesim/compute/systolic_compute_{os,ws,is}.py``, ``single_layer_sim.py``,
``memory/double_buffered_scratchpad_mem.py``).  This is an independent re-derivation of what that
code computes, written so that a whole batch of layers is evaluated with numpy vector ops.

Mapping of a conv layer onto a GEMM (SCALE-Sim convention, ifmap already padded)::

    E_h = ceil((ifmap_h - filter_h) / stride) + 1,  E_w likewise   (see conv_gemm_dims)
    Npx = E_h * E_w        (ofmap pixels per filter)
    W   = filter_h * filter_w * channels   (convolution window)
    K   = num_filters

SCALE-Sim names the spatial GEMM dims Sr (mapped on array rows R), Sc (array cols C) and the
temporal dim T (streamed through the array)::

    dataflow   Sr    Sc    T       stationary operand
    os         Npx   K     W       outputs
    ws         W     K     Npx     filters
    is         W     Npx   K       ifmap

The operand matrices are tiled into ``F = ceil(Sr/R) * ceil(Sc/C)`` folds which run strictly one
after another (no overlap between folds).  Per fold SCALE-Sim builds demand matrices with one row
per cycle; including pipeline fill, skew and drain a fold takes

    os:       T + R + C - 2   rows  (T-1 streaming steps before outputs are complete, R rows
                                     of outputs shifted out, C-1 column skew)
    ws, is:   T + 2R + C - 2  rows  (R cycles to load the stationary tile, T streaming steps,
                                     R-1 skew of the streaming operand, C-1 partial-sum drain)

(the ISPASS 2020 paper quotes 2R + C + T - 2 for os; the 3.0.0 code, reproduced here, uses the
row counts above).

The memory simulator services row i at cycle i (+ stalls) and reports ``Total Cycles`` as the
cycle of the last OFMAP row, i.e. ``F * rows_per_fold - 1``; ``Total - Stall`` equals this value.

SRAM access counts are the sizes of the operand-matrix slices SCALE-Sim sums up per fold
(padding to the array edge excluded; null addresses of partial windows, see conv_gemm_dims,
included).  With ``Fr = ceil(Sr/R)`` and ``Fc = ceil(Sc/C)``::

    os: ifmap = Fc*Sr*T      filter = Fr*Sc*T      ofmap = Sr*Sc + F*(R + C)
    ws: ifmap = Fc*Sr*T      filter = Sr*Sc        ofmap = Fr*Sc*T
    is: ifmap = Sr*Sc        filter = Fc*Sr*T      ofmap = Fr*Sc*T

(the ``F*(R + C)`` term for os reproduces an extra per-fold increment in scalesim 3.0.0's
``create_ofmap_demand_mat``; for ws/is the ofmap is re-written once per row fold because partial
sums are not accumulated inside the array across folds).
"""
from __future__ import annotations

from typing import Any, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "DATAFLOWS",
    "conv_gemm_dims",
    "systolic_gemm_dims",
    "systolic_num_folds",
    "systolic_compute_cycles",
    "systolic_sram_accesses",
    "systolic_utilization",
    "systolic_prefetch_fits",
    "systolic_dram_accesses",
    "systolic_total_cycles_incl_prefetch",
]

DATAFLOWS: tuple[str, ...] = ("os", "ws", "is")

IntArray = NDArray[np.int64]
_Int = Union[int, ArrayLike]


def _i64(x: _Int) -> IntArray:
    return np.asarray(x, dtype=np.int64)


def _cdiv(a: IntArray, b: IntArray) -> IntArray:
    """Ceil division for non-negative int64 arrays."""
    return -(-a // b)


def _check_dataflow(dataflow: str) -> str:
    df = dataflow.lower()
    if df not in DATAFLOWS:
        raise ValueError(f"unknown dataflow {dataflow!r}; expected one of {DATAFLOWS}")
    return df


def conv_gemm_dims(ifmap_h: _Int, ifmap_w: _Int, filter_h: _Int, filter_w: _Int,
                   channels: _Int, num_filters: _Int, stride: _Int
                   ) -> tuple[IntArray, IntArray, IntArray]:
    """Return ``(Npx, W, K)``: ofmap pixels per filter, window size, number of filters.

    The ifmap is taken as already padded.  Like SCALE-Sim (``topology_utils``:
    ``ceil((ifmap - filter + stride) / stride)``) the ofmap side is
    ``ceil((ifmap - filter) / stride) + 1``: equal to the usual ``(ifmap - filter) // stride + 1``
    when the stride divides ``ifmap - filter``, otherwise one larger (SCALE-Sim keeps a last,
    partially out-of-bounds window whose missing ifmap addresses are null but still counted).
    To model a framework's floor convention exactly, pass
    ``ifmap = (ofmap - 1) * stride + filter``.
    """
    ih, iw, fh, fw = _i64(ifmap_h), _i64(ifmap_w), _i64(filter_h), _i64(filter_w)
    s = _i64(stride)
    if (np.any(ih < fh) or np.any(iw < fw) or np.any(fh < 1) or np.any(fw < 1) or np.any(s < 1)
            or np.any(_i64(channels) < 1) or np.any(_i64(num_filters) < 1)):
        raise ValueError("need ifmap >= filter >= 1 and stride, channels, num_filters >= 1")
    npx = (_cdiv(ih - fh, s) + 1) * (_cdiv(iw - fw, s) + 1)
    win = fh * fw * _i64(channels)
    npx, win, k = np.broadcast_arrays(npx, win, _i64(num_filters))
    return np.array(npx), np.array(win), np.array(k)


def systolic_gemm_dims(dataflow: str, ifmap_h: _Int, ifmap_w: _Int, filter_h: _Int,
                       filter_w: _Int, channels: _Int, num_filters: _Int, stride: _Int
                       ) -> tuple[IntArray, IntArray, IntArray]:
    """Return SCALE-Sim's ``(Sr, Sc, T)`` for the given dataflow (see module docstring)."""
    df = _check_dataflow(dataflow)
    npx, win, k = conv_gemm_dims(ifmap_h, ifmap_w, filter_h, filter_w, channels, num_filters,
                                 stride)
    if df == "os":
        return npx, k, win
    if df == "ws":
        return win, k, npx
    return win, npx, k


def _folds(sr: IntArray, sc: IntArray, rows: _Int, cols: _Int
           ) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    r, c = _i64(rows), _i64(cols)
    if np.any(r < 1) or np.any(c < 1):
        raise ValueError("array dims must be >= 1")
    return _cdiv(sr, r), _cdiv(sc, c), r, c


def systolic_num_folds(dataflow: str, rows: _Int, cols: _Int, ifmap_h: _Int, ifmap_w: _Int,
                       filter_h: _Int, filter_w: _Int, channels: _Int, num_filters: _Int,
                       stride: _Int) -> IntArray:
    """Number of folds ``ceil(Sr/R) * ceil(Sc/C)`` SCALE-Sim runs sequentially."""
    sr, sc, _ = systolic_gemm_dims(dataflow, ifmap_h, ifmap_w, filter_h, filter_w, channels,
                                   num_filters, stride)
    fr, fc, _, _ = _folds(sr, sc, rows, cols)
    return fr * fc


def _rows_per_fold(df: str, t: IntArray, r: IntArray, c: IntArray) -> IntArray:
    if df == "os":
        return t + r + c - 2
    return t + 2 * r + c - 2


def systolic_compute_cycles(dataflow: str, rows: _Int, cols: _Int, ifmap_h: _Int,
                            ifmap_w: _Int, filter_h: _Int, filter_w: _Int, channels: _Int,
                            num_filters: _Int, stride: _Int) -> IntArray:
    """Stall-free cycles of one conv layer = SCALE-Sim ``Total Cycles - Stall Cycles``.

    ``F * (T + R + C - 2) - 1`` for os and ``F * (T + 2R + C - 2) - 1`` for ws / is, with
    ``F = ceil(Sr/R) * ceil(Sc/C)``.  Layer arguments are broadcastable int arrays.
    """
    df = _check_dataflow(dataflow)
    sr, sc, t = systolic_gemm_dims(df, ifmap_h, ifmap_w, filter_h, filter_w, channels,
                                   num_filters, stride)
    fr, fc, r, c = _folds(sr, sc, rows, cols)
    return fr * fc * _rows_per_fold(df, t, r, c) - 1


def systolic_sram_accesses(dataflow: str, rows: _Int, cols: _Int, ifmap_h: _Int,
                           ifmap_w: _Int, filter_h: _Int, filter_w: _Int, channels: _Int,
                           num_filters: _Int, stride: _Int) -> dict[str, IntArray]:
    """SRAM reads/writes as reported in SCALE-Sim's DETAILED_ACCESS_REPORT (words).

    Returns ``{"ifmap_reads", "filter_reads", "ofmap_writes"}``.
    """
    df = _check_dataflow(dataflow)
    sr, sc, t = systolic_gemm_dims(df, ifmap_h, ifmap_w, filter_h, filter_w, channels,
                                   num_filters, stride)
    fr, fc, r, c = _folds(sr, sc, rows, cols)
    streamed = fc * sr * t          # operand on the rows edge, re-read for every column fold
    if df == "os":
        return {"ifmap_reads": streamed, "filter_reads": fr * sc * t,
                "ofmap_writes": sr * sc + fr * fc * (r + c)}
    stationary = sr * sc            # loaded once into the array
    partial_out = fr * sc * t       # outputs written once per row fold
    if df == "ws":
        return {"ifmap_reads": streamed, "filter_reads": stationary,
                "ofmap_writes": partial_out}
    return {"ifmap_reads": stationary, "filter_reads": streamed, "ofmap_writes": partial_out}


def systolic_cycles_and_accesses(dataflow: str, rows: int, cols: int, ifmap_h: IntArray, ifmap_w: IntArray,
                                 filter_h: IntArray, filter_w: IntArray, channels: IntArray,
                                 num_filters: IntArray, stride: IntArray
                                 ) -> tuple[IntArray, dict[str, IntArray]]:
    """:func:`systolic_compute_cycles` and :func:`systolic_sram_accesses` (with the folds of
    :func:`systolic_num_folds` as ``folds``) in one pass over int64 arrays, for the cost model's
    hot path: the GEMM dimensions and folds are computed once, and the argument checks are left
    to :class:`nasco.hw.Layer`, which validated every layer when it was built."""
    df = _check_dataflow(dataflow)
    npx = (_cdiv(ifmap_h - filter_h, stride) + 1) * (_cdiv(ifmap_w - filter_w, stride) + 1)
    win = filter_h * filter_w * channels
    k = num_filters
    sr, sc, t = (npx, k, win) if df == "os" else (win, k, npx) if df == "ws" else (win, npx, k)
    fr, fc = _cdiv(sr, rows), _cdiv(sc, cols)
    folds = fr * fc
    cycles = folds * _rows_per_fold(df, t, rows, cols) - 1
    streamed = fc * sr * t
    if df == "os":
        acc = {"ifmap_reads": streamed, "filter_reads": fr * sc * t,
               "ofmap_writes": sr * sc + folds * (rows + cols)}
    elif df == "ws":
        acc = {"ifmap_reads": streamed, "filter_reads": sr * sc, "ofmap_writes": fr * sc * t}
    else:
        acc = {"ifmap_reads": sr * sc, "filter_reads": streamed, "ofmap_writes": fr * sc * t}
    acc["folds"] = folds
    return cycles, acc


def systolic_utilization(dataflow: str, rows: _Int, cols: _Int, ifmap_h: _Int, ifmap_w: _Int,
                         filter_h: _Int, filter_w: _Int, channels: _Int, num_filters: _Int,
                         stride: _Int, total_cycles: _Int | None = None
                         ) -> dict[str, NDArray[np.float64]]:
    """SCALE-Sim COMPUTE_REPORT utilisation columns, in percent.

    * ``overall_util``: ``MACs / (total_cycles * R * C)``; ``total_cycles`` defaults to the
      stall-free :func:`systolic_compute_cycles` (pass SCALE-Sim's total to include stalls).
    * ``mapping_efficiency``: mean over folds of the used PE fraction = ``Sr*Sc / (F*R*C)``.
    * ``compute_util``: mean over folds of ``used_PEs * T / (R*C*fold_cycles)`` where SCALE-Sim
      takes ``fold_cycles = T + R + C - 2`` (os) or ``T + 2R + 2C - 3`` (ws / is).
    """
    df = _check_dataflow(dataflow)
    sr, sc, t = systolic_gemm_dims(df, ifmap_h, ifmap_w, filter_h, filter_w, channels,
                                   num_filters, stride)
    fr, fc, r, c = _folds(sr, sc, rows, cols)
    pes = (r * c).astype(np.float64)
    nfold = (fr * fc).astype(np.float64)
    macs = (sr * sc * t).astype(np.float64)
    if total_cycles is None:
        total = fr * fc * _rows_per_fold(df, t, r, c) - 1
    else:
        total = _i64(total_cycles)
    fold_cycles = t + r + c - 2 if df == "os" else t + 2 * r + 2 * c - 3
    return {
        "overall_util": 100.0 * macs / (total * pes),
        "mapping_efficiency": 100.0 * (sr * sc) / (nfold * pes),
        "compute_util": 100.0 * macs / (nfold * pes * fold_cycles),
    }


def _prefetch_words(df: str, sr: IntArray, sc: IntArray, t: IntArray, fr: IntArray,
                    fc: IntArray, r: IntArray, c: IntArray
                    ) -> tuple[IntArray, IntArray, IntArray]:
    """Sizes (incl. zero padding) of the ifmap / filter prefetch matrices and the ofmap words."""
    row_side = fr * r * t           # rows-edge operand, padded to full array rows per fold
    if df == "os":
        return row_side, fc * c * t, sr * sc
    col_side = fc * c * sr          # stationary (ws) / cols-edge (is) operand, padded
    out = fr * sc * t
    if df == "ws":
        return row_side, col_side, out
    return col_side, row_side, out


def systolic_prefetch_fits(dataflow: str, rows: _Int, cols: _Int, ifmap_h: _Int, ifmap_w: _Int,
                           filter_h: _Int, filter_w: _Int, channels: _Int, num_filters: _Int,
                           stride: _Int, ifmap_sram_kb: _Int, filter_sram_kb: _Int,
                           ofmap_sram_kb: _Int) -> NDArray[np.bool_]:
    """Sufficient condition for the DRAM / prefetch-inclusive formulas below to be exact.

    SCALE-Sim (1-byte words, double buffers split 50/50) then prefetches each whole padded input
    operand into the active half before cycle 0 and never drains the OFMAP buffer mid-layer, so
    no stalls occur: ``P_if <= ifmap_words/2``, ``P_f <= filter_words/2``,
    ``W_of <= ofmap_words/2``.
    """
    df = _check_dataflow(dataflow)
    sr, sc, t = systolic_gemm_dims(df, ifmap_h, ifmap_w, filter_h, filter_w, channels,
                                   num_filters, stride)
    fr, fc, r, c = _folds(sr, sc, rows, cols)
    p_if, p_f, w_of = _prefetch_words(df, sr, sc, t, fr, fc, r, c)
    half = [(_i64(kb) * 1024) // 2 for kb in (ifmap_sram_kb, filter_sram_kb, ofmap_sram_kb)]
    return (p_if <= half[0]) & (p_f <= half[1]) & (w_of <= half[2])


def systolic_dram_accesses(dataflow: str, rows: _Int, cols: _Int, ifmap_h: _Int,
                           ifmap_w: _Int, filter_h: _Int, filter_w: _Int, channels: _Int,
                           num_filters: _Int, stride: _Int, ifmap_bw: _Int = 10,
                           filter_bw: _Int = 10) -> dict[str, IntArray]:
    """DRAM traffic SCALE-Sim reports in USER-bandwidth mode, **only** for the regime where
    every operand fits in the active half of its SRAM (:func:`systolic_prefetch_fits`: whole
    operand prefetched once, no stalls).  Reads are whole ``bw``-word lines: ``ceil(P/bw)*bw``
    for the padded prefetch matrix size P; ofmap writes are the non-null ofmap demands
    (independent of the bandwidth).
    """
    df = _check_dataflow(dataflow)
    sr, sc, t = systolic_gemm_dims(df, ifmap_h, ifmap_w, filter_h, filter_w, channels,
                                   num_filters, stride)
    fr, fc, r, c = _folds(sr, sc, rows, cols)
    p_if, p_f, w_of = _prefetch_words(df, sr, sc, t, fr, fc, r, c)
    bi, bf = _i64(ifmap_bw), _i64(filter_bw)
    return {"ifmap_reads": _cdiv(p_if, bi) * bi, "filter_reads": _cdiv(p_f, bf) * bf,
            "ofmap_writes": w_of}


def systolic_total_cycles_incl_prefetch(dataflow: str, rows: _Int, cols: _Int, ifmap_h: _Int,
                                        ifmap_w: _Int, filter_h: _Int, filter_w: _Int,
                                        channels: _Int, num_filters: _Int, stride: _Int,
                                        ifmap_bw: _Int = 10, filter_bw: _Int = 10,
                                        ofmap_bw: _Int = 10) -> IntArray:
    """SCALE-Sim's ``Total Cycles (incl. prefetch)`` in the same fits-in-SRAM, no-stall regime
    as :func:`systolic_dram_accesses` (check with :func:`systolic_prefetch_fits`)::

        compute_cycles + max(ceil(P_if/bw_if), ceil(P_f/bw_f)) + ceil(W_of/bw_of) - 1

    i.e. the up-front DRAM->SRAM prefetch of the slower input operand, the compute, and the
    final OFMAP SRAM->DRAM drain (one ``bw_of``-word line per cycle).
    """
    df = _check_dataflow(dataflow)
    sr, sc, t = systolic_gemm_dims(df, ifmap_h, ifmap_w, filter_h, filter_w, channels,
                                   num_filters, stride)
    fr, fc, r, c = _folds(sr, sc, rows, cols)
    p_if, p_f, w_of = _prefetch_words(df, sr, sc, t, fr, fc, r, c)
    compute = fr * fc * _rows_per_fold(df, t, r, c) - 1
    prefetch = np.maximum(_cdiv(p_if, _i64(ifmap_bw)), _cdiv(p_f, _i64(filter_bw)))
    return compute + prefetch + _cdiv(w_of, _i64(ofmap_bw)) - 1


def systolic_layer_core(dataflow: str, rows: int, cols: int, filter_h: IntArray, filter_w: IntArray,
                        stride: IntArray, ofmap_h: IntArray, ofmap_w: IntArray, channels: IntArray,
                        num_filters: IntArray, groups: IntArray, compute: np.ndarray) -> dict[str, Any]:
    """The cost model's core of OS/WS/IS layers on a systolic array: SCALE-Sim's cycles and SRAM
    accesses (:func:`systolic_cycles_and_accesses`) and its folds, groups one after another, 0 where
    ``compute`` is False (layers off the array). ``channels`` and ``num_filters`` are per group.
    Operands hop between neighbouring PEs, so the network is the array edge: each SRAM word
    crosses it once; nothing bypasses the buffers (``filter_words`` 0), there are no separate
    psum accesses, and each op updates its psum register once (``psum_rw`` 1)."""
    # A dilated filter reads the same window count as an undilated one on the ifmap
    # that yields the same output size.
    ih = (ofmap_h - 1) * stride + filter_h
    iw = (ofmap_w - 1) * stride + filter_w
    cyc, sram = systolic_cycles_and_accesses(dataflow, rows, cols, ih, iw, filter_h, filter_w, channels,
                                             num_filters, stride)
    cyc = np.where(compute, cyc * groups, 0)
    sram = {k: np.where(compute, v * groups, 0) for k, v in sram.items()}
    zero = np.zeros_like(cyc)
    return {"cycles": cyc, "folds": sram["folds"], "ifmap_reads": sram["ifmap_reads"],
            "filter_reads": sram["filter_reads"],
            "filter_words": zero, "ofmap_writes": sram["ofmap_writes"], "psum_reads": zero,
            "psum_writes": zero, "psum_rw": 1}
