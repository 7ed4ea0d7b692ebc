"""The spiking dataflow on sop (spike-gated accumulate) PEs, as in SATA: the LIF units at the
array edge fused with the layer that feeds them and the timestep loop innermost over each
tile. :class:`~nasco.hw.CostModel` takes its buffer, NoC, DRAM and membrane traffic from
:func:`sop_traffic` on ``pe.type: sop`` templates (its array cycles and accesses come from the
template's dataflow, :mod:`nasco.hw._systolic` or :mod:`nasco.hw._rowstationary`)."""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["sop_traffic"]


def sop_traffic(a: dict[str, np.ndarray], core: dict[str, Any], steps: np.ndarray, lif_src: np.ndarray,
                fused: np.ndarray, ifmap_bits: Any, vec_in: np.ndarray, vec_out: np.ndarray, *, dataflow: str,
                act_bits: int, weight_bits: int, membrane_bits: int, e_sram_r: float, e_sram_w: float,
                e_reg: float, e_neuron_op: float, spike_out_bits: np.ndarray | None = None
                ) -> dict[str, np.ndarray]:
    """Buffer, NoC, DRAM and membrane traffic of the spiking dataflow on sop PEs.

    ``a`` are the workload's columns by name, ``core`` the array's accesses from the
    dataflow's core, ``ifmap_bits`` the bits per input element and ``vec_in`` / ``vec_out``
    the vector unit's elements; the energies are per bit (SRAM read and write, register) and
    per neuron update; ``spike_out_bits`` the bits per element of the spike map each neuron
    layer emits (None: dense, 1 bit; see :mod:`nasco.hw._spikes`). Returns the SRAM energy
    and NoC bits that replace the dense dataflow's, the bits each layer reads (``neuron_in``)
    and writes (``out_bits`` per output element, ``neuron_out``) over all its timesteps, and
    the neuron updates' energy.

    The LIF units at the array edge are fused with the layer that feeds them (``lif_src``,
    see Layer.output_bits) and the timestep loop runs innermost over each tile, as in SATA
    (Yin et al., TCAD 2022; SATA_Sim charges a layer its ofmap cycles x T plus one filter
    load, and its PEs emit 1-bit outputs: inference-energy-cal/energy-cal.py, archs/
    sata-config.yaml 'output-prec: 1'). Hence, per layer:

    * weights: a weight-stationary fold keeps its weights for all T timesteps, so the
      filter SRAM is read once (os/is stream them, once per timestep) and DRAM weights are
      fetched once, even when the layer's weights do not fit their buffer;
    * inputs: a spike map is streamed each timestep, 1 bit per element; all T maps of a
      layer decide whether its input stays resident in the ifmap buffer. Spikes move
      densely (every bit, spiked or not), as in SATA's buffers;
    * outputs: a fused source writes 1-bit spikes, one map per timestep of its LIF (also a
      source that runs once, such as a directly encoded stem: its LIF integrates the same
      current T times); any other layer writes ``output_bits`` (0: activation width) per
      element each timestep;
    * membranes, at membrane width, never go to DRAM. A LIF unit that receives all T
      currents of a neuron in a row keeps its membrane in its own register (a register
      read and write per update): under ws the stationary weights see each output
      pixel's T spike vectors back to back, so a column's currents leave it timestep-
      minor; so does a neuron layer on its own, and a LIF fused with a once-run source.
      Under os and is a fold computes one timestep at a time, so its membranes wait in
      the membrane buffer between timesteps (the template guarantees it holds one fold):
      a buffer read and write per update;
    * a neuron layer on its own reads its input currents (activation width) and writes its
      spikes each timestep, through the buffers and DRAM like a pool or an add layer.
    """
    neuron = a["neuron"] != 0
    elems = a["elements"].astype(np.float64)
    alone = neuron & ~fused
    out_steps = np.where(lif_src, np.roll(steps, -1), steps)
    out_w = np.where(a["output_bits"] > 0, a["output_bits"], act_bits)
    w_reads = 1.0 if dataflow == "ws" else steps
    neuron_in = np.where(alone, elems * act_bits * steps, 0.0)
    neuron_out = np.where(alone, elems * steps, 0.0)
    if spike_out_bits is not None:  # a fused source writes its neuron's map, a lone neuron its own
        out_w = np.where(lif_src, np.roll(spike_out_bits, -1), out_w)
        neuron_out = neuron_out * spike_out_bits
    reads = ((core["ifmap_reads"] + vec_in) * ifmap_bits * steps
             + core["filter_reads"] * weight_bits * w_reads + neuron_in)
    writes = (core["ofmap_writes"] + vec_out) * out_w * out_steps + neuron_out
    per_step = fused & (np.roll(steps, 1) > 1) & (dataflow != "ws")
    e_mem_bit = np.where(per_step, e_sram_r + e_sram_w, 2 * e_reg)
    return {
        "e_sram": reads * e_sram_r + writes * e_sram_w,
        "noc_bits": core["ifmap_reads"] * ifmap_bits * steps + core["ofmap_writes"] * out_w * out_steps,
        "out_bits": out_w * out_steps,
        "neuron_in": neuron_in,
        "neuron_out": neuron_out,
        "e_neuron": np.where(neuron, elems * (e_neuron_op + membrane_bits * e_mem_bit) * steps, 0.0),
    }
