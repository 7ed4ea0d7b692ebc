"""The spiking dataflow on sop (spike-gated accumulate) PEs, as in SATA: the LIF units at the
array edge fused with the layer that feeds them, and the template's timestep loop order
(``pe.timestep_loop``). :class:`~nasco.hw.CostModel` takes its buffer, NoC, DRAM and membrane
traffic from :func:`sop_traffic` on ``pe.type: sop`` templates (its array cycles and accesses
come from the template's dataflow, :mod:`nasco.hw._systolic`), and the buffer space each
layer's tiles need under the loop order from :func:`sop_tiling`.

A tile is one fold of the systolic array (:mod:`nasco.hw._systolic`): with SCALE-Sim's GEMM
dimensions ``(Sr, Sc, T)`` of a layer (per group), a fold maps at most ``rows`` of ``Sr`` on
the array's rows and ``cols`` of ``Sc`` on its columns and streams all ``T`` through them::

    dataflow   Sr    Sc    T     the fold's input words          the fold's output neurons
    ws         W     K     Npx   min(R, W) * Npx  (streamed)      min(C, K), one per LIF unit
    os         Npx   K     W     min(R, Npx) * W  (streamed)      min(R, Npx) * min(C, K)
    is         W     Npx   K     min(R, W) * min(C, Npx)  (held)  min(C, Npx) * K

(``Npx`` output pixels, ``W`` the window fh * fw * channels, ``K`` filters). The input words are
the slice of the ifmap operand matrix one (full) fold reads, as SCALE-Sim's ifmap buffer holds
and counts them (its ifmap reads are the folds' slices summed, see
:func:`~nasco.hw._systolic.systolic_sram_accesses`), at the bits per element of the layer's
input (1 for dense spikes, the spike format's bits otherwise, the activation width for a
bit-serial input). The output neurons are those whose membranes are in flight while the
fold runs.

Timestep loop orders (Yin et al., "SATA", TCAD 2022: the timestep loop innermost; Bhattacharjee
et al., arXiv 2309.03388: data movement repeated over timesteps decides the energy):

* ``inner``: all T timesteps of a tile run back to back. Its input spike maps of all T
  timesteps, T x the fold's input words, must fit the ifmap buffer together. Its membranes
  are state, held once whatever T (T multiplies the inputs, not the membranes): under ws
  each LIF unit keeps one neuron's membrane in its register while the T currents of that
  neuron arrive in a row, so one register per column always suffices (not checked); under
  os and is the fold computes one timestep at a time, so the fold's output neurons'
  membranes wait in the membrane buffer (``buffers.membrane_kb``, or the ofmap buffer when
  it is null) between timesteps and must fit it. Only conv and linear layers are tiled
  this way; pool, add and lone neuron layers stream element by element.
* ``outer``: the layer runs one timestep at a time over all its tiles. The ifmap buffer needs
  one timestep of a tile's input; the layer's membranes, all of them, persist between
  timesteps in the membrane buffer, or go to DRAM and back each timestep when they do not
  fit (never infeasible).

The array's cycles are the same under both orders: CostModel charges each fold its SCALE-Sim
cycles, the stationary operand's load included, once per timestep. A layer that cannot be
tiled under the order makes the candidate infeasible (see :meth:`nasco.hw.CostModel.cost`); it
is costed all the same.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["TILING_BUFFERS", "sop_tiling", "sop_traffic"]


def sop_traffic(a: dict[str, np.ndarray], core: dict[str, Any], steps: np.ndarray, lif_src: np.ndarray,
                fused: np.ndarray, ifmap_bits: Any, vec_in: np.ndarray, vec_out: np.ndarray, *, dataflow: str,
                act_bits: int, weight_bits: int, membrane_bits: int, e_sram_r: float, e_sram_w: float,
                e_reg: float, e_neuron_op: float, spike_out_bits: np.ndarray | None = None,
                loop: str = "inner", membrane_buffer_bits: Any = None) -> dict[str, np.ndarray]:
    """Buffer, NoC, DRAM and membrane traffic of the spiking dataflow on sop PEs.

    ``a`` are the workload's columns by name, ``core`` the array's accesses from the
    dataflow's core, ``ifmap_bits`` the bits per input element and ``vec_in`` / ``vec_out``
    the vector unit's elements; the energies are per bit (SRAM read and write, register) and
    per neuron update; ``spike_out_bits`` the bits per element of the spike map each neuron
    layer emits (None: dense, 1 bit; see :mod:`nasco.hw._spikes`); ``loop`` the timestep loop
    order and ``membrane_buffer_bits`` the membrane buffer's size (read by ``outer`` only).
    Returns the SRAM energy and NoC bits that replace the dense dataflow's, the bits each
    layer reads (``neuron_in``) and writes (``out_bits`` per output element, ``neuron_out``)
    over all its timesteps, the neuron updates' energy and ``spilled``: the neuron layers
    whose membranes go to DRAM and back each timestep (never under ``inner``).

    The LIF units at the array edge are fused with the layer that feeds them (``lif_src``,
    see Layer.output_bits). SATA runs the timestep loop innermost over each tile (Yin et al.,
    TCAD 2022; SATA_Sim charges a layer its ofmap cycles x T plus one filter load, and its PEs
    emit 1-bit outputs: inference-energy-cal/energy-cal.py, archs/sata-config.yaml
    'output-prec: 1'): ``inner``. Hence, per layer:

    * weights: under ``inner`` a weight-stationary fold keeps its weights for all T
      timesteps, so the filter SRAM is read once (os/is stream them, once per timestep) and
      DRAM weights are fetched once, even when the layer's weights do not fit their buffer.
      Under ``outer`` every dataflow reads the filter SRAM once per timestep, and weights
      that do not fit their buffer come from DRAM once per timestep (CostModel._dram);
    * inputs: a spike map is streamed each timestep, 1 bit per element (dense). Under
      ``inner`` all T maps of a layer decide whether its input stays resident in the ifmap
      buffer; under ``outer`` one timestep's map does. Spikes move densely (every bit,
      spiked or not), as in SATA's buffers, unless the template's spike format says
      otherwise;
    * outputs: a fused source writes 1-bit spikes, one map per timestep of its LIF (also a
      source that runs once, such as a directly encoded stem: its LIF integrates the same
      current T times); any other layer writes ``output_bits`` (0: activation width) per
      element each timestep;
    * membranes, at membrane width, under ``inner`` never go to DRAM. A LIF unit that
      receives all T currents of a neuron in a row keeps its membrane in its own register
      (a register read and write per update): under ws the stationary weights see each
      output pixel's T spike vectors back to back, so a column's currents leave it timestep-
      minor; so does a neuron layer on its own, and a LIF fused with a once-run source.
      Under os and is a fold computes one timestep at a time, so its membranes wait in
      the membrane buffer between timesteps (:func:`sop_tiling` checks that they fit):
      a buffer read and write per update. Under ``outer`` every neuron layer's membranes
      wait in the membrane buffer between timesteps (a buffer read and write per update)
      when all of them fit it, else they go to DRAM and back each timestep (charged by
      CostModel._dram, 2 x elements x membrane bits x T);
    * a neuron layer on its own reads its input currents (activation width) and writes its
      spikes each timestep, through the buffers and DRAM like a pool or an add layer.
    """
    neuron = a["neuron"] != 0
    elems = a["elements"].astype(np.float64)
    alone = neuron & ~fused
    out_steps = np.where(lif_src, np.roll(steps, -1), steps)
    out_w = np.where(a["output_bits"] > 0, a["output_bits"], act_bits)
    w_reads = 1.0 if dataflow == "ws" and loop == "inner" else steps
    neuron_in = np.where(alone, elems * act_bits * steps, 0.0)
    neuron_out = np.where(alone, elems * steps, 0.0)
    if spike_out_bits is not None:  # a fused source writes its neuron's map, a lone neuron its own
        out_w = np.where(lif_src, np.roll(spike_out_bits, -1), out_w)
        neuron_out = neuron_out * spike_out_bits
    reads = ((core["ifmap_reads"] + vec_in) * ifmap_bits * steps
             + core["filter_reads"] * weight_bits * w_reads + neuron_in)
    writes = (core["ofmap_writes"] + vec_out) * out_w * out_steps + neuron_out
    e_mem_bit, spilled = _membrane_access(neuron, fused, elems, steps, dataflow, loop, membrane_bits,
                                          membrane_buffer_bits, e_sram_r + e_sram_w, e_reg)
    return {
        "e_sram": reads * e_sram_r + writes * e_sram_w,
        "noc_bits": core["ifmap_reads"] * ifmap_bits * steps + core["ofmap_writes"] * out_w * out_steps,
        "out_bits": out_w * out_steps,
        "neuron_in": neuron_in,
        "neuron_out": neuron_out,
        "e_neuron": np.where(neuron, elems * (e_neuron_op + membrane_bits * e_mem_bit) * steps, 0.0),
        "spilled": spilled,
    }



def _membrane_access(neuron: np.ndarray, fused: np.ndarray, elems: np.ndarray, steps: np.ndarray,
                     dataflow: str, loop: str, membrane_bits: Any, membrane_buffer_bits: Any,
                     e_sram_rw: float, e_reg: float) -> tuple[np.ndarray, np.ndarray]:
    """(energy per membrane bit per update, spilled) per layer: where each neuron layer keeps its
    membranes between timesteps under the loop order (see :func:`sop_traffic`). ``inner``: in
    the LIF units' registers (a read and a write), or in the membrane buffer when a fold under
    os/is computes one timestep at a time; ``outer``: in the membrane buffer, or spilled to DRAM
    (charged by the cost model) when the layer's membranes do not fit it."""
    if loop == "inner":
        per_step = fused & (np.roll(steps, 1) > 1) & (dataflow != "ws")
        return np.where(per_step, e_sram_rw, 2 * e_reg), np.zeros(len(steps), dtype=bool)
    spilled = neuron & (elems * membrane_bits > membrane_buffer_bits)
    return np.where(spilled, 0.0, e_sram_rw), spilled

# The buffers a tile may not fit (sop_tiling's ``need_<buffer>``, in this order).
TILING_BUFFERS = ("ifmap", "membrane")


def sop_tiling(a: dict[str, np.ndarray], compute: np.ndarray, lif_src: np.ndarray, steps: np.ndarray,
               oh: np.ndarray, ow: np.ndarray, ch_g: np.ndarray, nf_g: np.ndarray, ifmap_bits: Any, *,
               dataflow: str, rows: int, cols: int, loop: str, membrane_bits: Any, ifmap_buffer_bits: Any,
               membrane_buffer_bits: Any) -> dict[str, Any]:
    """The buffer space one tile of each layer needs under the timestep loop order ``loop``
    (see the module's docstring for the tile and the rules).

    ``compute`` marks conv and linear layers, ``lif_src`` those that feed a fused LIF, ``oh``,
    ``ow``, ``ch_g`` and ``nf_g`` the output size and the channels and filters per group,
    ``ifmap_bits`` the bits per input element. Returns per layer: ``words`` (the fold's input
    words, one timestep) and ``neurons`` (its output neurons whose membranes the membrane
    buffer holds; 0 where none wait there), ``need_ifmap`` and ``need_membrane`` in bits (0
    where nothing is checked), ``have_ifmap`` and ``have_membrane`` (the buffers in bits) and
    ``excess``: the largest need / have - 1 over the two buffers, clipped at 0 (positive:
    the layer cannot be tiled)."""
    npx = oh * ow
    win = a["filter_h"] * a["filter_w"] * ch_g
    k = nf_g
    if dataflow == "ws":
        words, neurons = np.minimum(rows, win) * npx, np.zeros_like(k)
    elif dataflow == "os":
        words, neurons = np.minimum(rows, npx) * win, np.minimum(rows, npx) * np.minimum(cols, k)
    else:
        words, neurons = np.minimum(rows, win) * np.minimum(cols, npx), np.minimum(cols, npx) * k
    in_steps = steps if loop == "inner" else 1.0
    need_i = np.where(compute, words * ifmap_bits * in_steps, 0.0)
    held = compute & lif_src & (steps > 1) & (loop == "inner") & (dataflow != "ws")
    neurons = np.where(held, neurons, 0)
    need_m = neurons * membrane_bits
    over = np.maximum(need_i / ifmap_buffer_bits, need_m / membrane_buffer_bits) - 1.0
    return {"words": np.where(compute, words, 0), "neurons": neurons, "need_ifmap": need_i,
            "need_membrane": need_m, "have_ifmap": ifmap_buffer_bits, "have_membrane": membrane_buffer_bits,
            "excess": np.maximum(over, 0.0)}
