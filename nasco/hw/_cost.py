"""The analytical cost model of the systolic templates: cycles, latency, energy, area.

Compute cycles and SRAM access counts come from :mod:`nasco.hw._systolic`, which equals
SCALE-Sim v3 exactly. On top of them this module charges energy per access from the
template's energy table, DRAM traffic against the buffer sizes and bandwidth, spiking
layers as spike-gated accumulates, and neuron updates with their membrane traffic.
Everything is vectorised over the layers of a workload (numpy, no loop per layer).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nasco.dsl import AcceleratorTemplate, EnergyTable, search_dimensions
from nasco.hw._systolic import systolic_compute_cycles, systolic_sram_accesses
from nasco.hw._workload import Workload

__all__ = ["CostModel", "CostReport", "ENERGY_PARTS"]

ENERGY_PARTS = ("compute", "register", "sram", "dram", "neuron")


@dataclass(frozen=True)
class CostReport:
    """Per-layer arrays (in workload order) and totals, in s, J and mm2."""

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    cycles: np.ndarray          # max(compute, DRAM) cycles: what latency is made of
    compute_cycles: np.ndarray  # the array's compute cycles alone (SCALE-Sim's Total - Stall)
    latency_s: np.ndarray
    energy: dict[str, np.ndarray]
    utilization: np.ndarray
    macs: np.ndarray
    ops: np.ndarray  # MACs for ANN layers, spike-gated accumulates for spiking ones
    area_mm2: float
    assumptions: dict[str, Any] = field(default_factory=dict)

    @property
    def energy_j(self) -> np.ndarray:
        return sum(self.energy.values())

    def total(self) -> dict[str, Any]:
        cycles = int(self.cycles.sum())
        busy = self.macs.sum()
        pes = self.assumptions.get("pes", 1)
        return {
            "cycles": cycles,
            "compute_cycles": int(self.compute_cycles.sum()),
            "latency_s": float(self.latency_s.sum()),
            "energy_j": float(self.energy_j.sum()),
            "energy": {k: float(v.sum()) for k, v in self.energy.items()},
            "area_mm2": self.area_mm2,
            "utilization": float(busy / (cycles * pes)) if cycles else 0.0,
            "macs": int(self.macs.sum()),
            "ops": float(self.ops.sum()),
        }

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``nasco cost --json``: ``layers`` (in order) and ``total``."""
        layers = []
        for i, name in enumerate(self.names):
            layers.append({
                "name": name,
                "kind": self.kinds[i],
                "cycles": int(self.cycles[i]),
                "compute_cycles": int(self.compute_cycles[i]),
                "latency_s": float(self.latency_s[i]),
                "energy_j": float(self.energy_j[i]),
                "energy": {k: float(v[i]) for k, v in self.energy.items()},
                "area_mm2": self.area_mm2,
                "utilization": float(self.utilization[i]),
                "macs": int(self.macs[i]),
                "ops": float(self.ops[i]),
            })
        return {"layers": layers, "total": self.total(), "assumptions": dict(self.assumptions)}


class CostModel:
    """Costs workloads on one resolved accelerator template (no choices left).

    Latency per layer is max(compute cycles, DRAM cycles): the buffers are double
    buffered, so transfers overlap compute as in MAESTRO's max(ingress, compute, egress)
    runtime model (Kwon et al., MICRO 2019).
    """

    def __init__(self, template: AcceleratorTemplate, table: EnergyTable) -> None:
        left = search_dimensions(template)
        if left:
            raise ValueError("CostModel needs a resolved template; still open: " + ", ".join(left))
        self.t = template
        self.table = table
        self.rows = int(template.pe_array.rows)
        self.cols = int(template.pe_array.cols)
        self.clock_hz = float(template.clock_mhz) * 1e6
        b = template.bits
        self.wb, self.ab, self.acc, self.mb = int(b.weight), int(b.activation), b.accumulator, b.membrane
        e = table.energy_j
        # Array multipliers scale with the product of operand widths, adders linearly with
        # width (Horowitz, ISSCC 2014: 8b->32b mult 0.2->3.1 pJ, add 0.03->0.1 pJ).
        self.e_mac = e("mac_8b") * (self.wb * self.ab) / 64.0
        self.e_ac = e("add_8b") * self.wb / 8.0
        self.e_reg = e("register_bit")
        self.e_sram_r, self.e_sram_w = e("sram_read_bit"), e("sram_write_bit")
        self.e_dram = e("dram_bit")
        # A LIF update: leak and threshold compare, each one add at membrane width
        # (the integrate step is the accumulate charged to the layer feeding it).
        self.e_neuron_op = 2 * e("add_16b") * self.mb / 16.0 if "add_16b" in table.energy else 2 * e("add_8b")

    # ------------------------------------------------------------------ area
    def area_mm2(self, spiking: bool) -> float:
        a = self.table.area_mm2
        pe = (a("mult_8b") * (self.wb * self.ab) / 64.0 + a("add_32b") * self.acc / 32.0
              if "mult_8b" in self.table.area and "add_32b" in self.table.area else a("mac_8b"))
        pe += a("register_bit") * (self.wb + self.ab + self.acc)  # operand and psum registers
        pes = self.rows * self.cols * pe
        kb = float(self.t.buffers.ifmap_kb) + float(self.t.buffers.filter_kb) + float(self.t.buffers.ofmap_kb)
        sram = kb * 1024 * 8 * a("sram_bit")  # cell area only; periphery is not modelled
        lif = 0.0
        if spiking:  # one LIF unit per array column (SATA places them at the array edge)
            lif = self.cols * (2 * a("add_8b") * self.mb / 8.0 + a("register_bit") * self.mb)
        return float(pes + sram + lif)

    # ------------------------------------------------------------------ cost
    def cost(self, workload: Workload, spike_rates: dict[str, float] | None = None,
             default_rate: float | None = None) -> CostReport:
        """Cost every layer of ``workload``.

        ``spike_rates`` maps layer name -> measured input spike rate for layers with spiking
        input; a spiking layer without one takes ``default_rate`` (recorded in
        ``assumptions``), or 1.0 (every input spikes: an upper bound) when that is None.
        """
        a = workload.arrays()
        n = len(workload)
        kind = a["kind"]
        compute = kind != "neuron"
        spiking = a["spiking_input"]
        steps = a["timesteps"].astype(np.float64)
        g = np.maximum(a["groups"], 1)
        # A dilated filter reads the same window count as an undilated one on the ifmap
        # that yields the same output size; groups run one after another.
        oh = (a["ifmap_h"] - (a["dilation"] * (a["filter_h"] - 1) + 1)) // a["stride"] + 1
        ow = (a["ifmap_w"] - (a["dilation"] * (a["filter_w"] - 1) + 1)) // a["stride"] + 1
        oh, ow = np.maximum(oh, 1), np.maximum(ow, 1)
        ih = (oh - 1) * a["stride"] + a["filter_h"]
        iw = (ow - 1) * a["stride"] + a["filter_w"]
        ch_g = np.maximum(a["channels"] // g, 1)
        nf_g = np.maximum(a["num_filters"] // g, 1)
        args = (self.t.dataflow, self.rows, self.cols, ih, iw, a["filter_h"], a["filter_w"], ch_g, nf_g,
                a["stride"])
        cyc_pass = np.where(compute, systolic_compute_cycles(*args) * g, 0)
        sram = {k: np.where(compute, v * g, 0) for k, v in systolic_sram_accesses(*args).items()}
        macs_pass = np.where(compute, oh * ow * a["num_filters"] * a["filter_h"] * a["filter_w"] * ch_g, 0)

        rates = np.ones(n)
        missing = []
        for i, layer in enumerate(workload.layers):
            if layer.spiking_input:
                if spike_rates and layer.name in spike_rates:
                    rates[i] = float(spike_rates[layer.name])
                else:
                    missing.append(layer.name)
                    rates[i] = 1.0 if default_rate is None else float(default_rate)
        rates = np.clip(rates, 0.0, 1.0)

        # Neuron layers: one LIF unit per column updates `cols` neurons per cycle.
        elems = a["elements"].astype(np.float64)
        cyc_neuron = np.where(compute, 0, np.ceil(elems / self.cols))
        cycles = (cyc_pass + cyc_neuron) * steps

        macs = macs_pass * steps
        ops = np.where(spiking, macs * rates, macs)
        e_compute = np.where(spiking, ops * self.e_ac, macs * self.e_mac)
        # Each PE latches the operand it passes on and updates its accumulator every cycle
        # it works (Kung, 'Why systolic architectures?', 1982): spikes are 1-bit operands.
        in_bits = np.where(spiking, 1, self.ab)
        e_register = (macs * in_bits + ops * (self.wb + self.acc)) * self.e_reg
        ifmap_bits = np.where(spiking, 1, self.ab)
        e_sram = ((sram["ifmap_reads"] * ifmap_bits + sram["filter_reads"] * self.wb) * self.e_sram_r
                  + sram["ofmap_writes"] * self.ab * self.e_sram_w) * steps

        # DRAM: when either operand fits its buffer it stays resident while the other streams
        # through once. When neither fits, one is tiled and the other re-streamed for every
        # tile; the cheaper loop order is taken.
        kib = 1024 * 8
        w_bits = np.where(compute, a["filter_h"] * a["filter_w"] * ch_g * a["num_filters"], 0) * self.wb
        i_bits = np.where(compute, ih * iw * a["channels"], 0) * ifmap_bits
        o_bits = np.where(compute, oh * ow * a["num_filters"], 0) * self.ab
        buf_w = float(self.t.buffers.filter_kb) * kib
        buf_i = float(self.t.buffers.ifmap_kb) * kib
        tiles_w = np.ceil(np.maximum(w_bits, 1) / buf_w)
        tiles_i = np.ceil(np.maximum(i_bits, 1) / buf_i)
        neither = (w_bits > buf_w) & (i_bits > buf_i)
        refetch_i = np.where(neither & (i_bits * tiles_w + w_bits <= w_bits * tiles_i + i_bits), tiles_w, 1)
        refetch_w = np.where(neither & (refetch_i == 1), tiles_i, 1)
        dram_w = w_bits * refetch_w
        dram_i = i_bits * refetch_i
        # Weights stay on chip across timesteps when they fit; activations move every step.
        w_steps = np.where(w_bits <= buf_w, 1.0, steps)
        dram_bits = dram_w * w_steps + (dram_i + o_bits) * steps
        # Membrane potentials live in the ofmap buffer when they fit, else go to DRAM.
        mem_bits = elems * self.mb
        mem_on_chip = mem_bits <= float(self.t.buffers.ofmap_kb) * kib
        dram_bits = dram_bits + np.where(mem_on_chip, 0, 2 * mem_bits * steps)
        e_dram = dram_bits * self.e_dram
        e_neuron = (elems * self.e_neuron_op + np.where(mem_on_chip, mem_bits * (self.e_sram_r + self.e_sram_w), 0)) * steps

        dram_cycles = dram_bits / 8.0 / float(self.t.bandwidth.dram_bytes_per_cycle)
        total_cycles = np.maximum(cycles, np.ceil(dram_cycles)).astype(np.int64)
        latency = total_cycles / self.clock_hz
        pes = self.rows * self.cols
        util = np.where(total_cycles > 0, macs / np.maximum(total_cycles * pes, 1), 0.0)
        assumptions: dict[str, Any] = {"pes": pes, "dataflow": self.t.dataflow}
        if missing:
            assumptions["spike_rate_assumed"] = {"rate": 1.0 if default_rate is None else default_rate,
                                                 "layers": missing}
        return CostReport(
            names=tuple(layer.name for layer in workload.layers),
            kinds=tuple(kind.tolist()),
            cycles=total_cycles,
            compute_cycles=cycles.astype(np.int64),
            latency_s=latency,
            energy={"compute": e_compute, "register": e_register, "sram": e_sram, "dram": e_dram,
                    "neuron": e_neuron},
            utilization=util,
            macs=macs.astype(np.float64),
            ops=ops.astype(np.float64),
            area_mm2=self.area_mm2(bool((kind == "neuron").any())),
            assumptions=assumptions,
        )


