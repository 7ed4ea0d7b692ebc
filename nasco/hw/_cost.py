"""The analytical cost model of the systolic templates: cycles, latency, energy, area.

Compute cycles and SRAM access counts come from :mod:`nasco.hw._systolic`, which equals
SCALE-Sim v3 exactly. On top of them this module charges energy per access from the
template's energy table, DRAM traffic against the buffer sizes and bandwidth, spiking
layers as spike-gated accumulates, neuron updates with their membrane traffic, and pooling
and element-wise adds on a vector unit beside the array.
Everything is vectorised over the layers of a workload (numpy, no loop per layer), and
:meth:`CostModel.cost_many` runs the same arithmetic over the layers of many workloads at once.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nasco.dsl import AcceleratorTemplate, EnergyTable, search_dimensions
from nasco.hw._systolic import systolic_compute_cycles, systolic_sram_accesses
from nasco.hw._workload import COLUMNS, Workload

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
    ops: np.ndarray  # array ops: MACs (ANN), spike-gated accumulates (spiking); 0 for neuron/pool/add
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
        self.e_add8 = e("add_8b")
        self.e_ac = self.e_add8 * self.wb / 8.0
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
        cols = workload.columns()
        rates = np.ones(len(workload))
        missing = _fill_rates(rates, workload, np.flatnonzero(_rate_layers(cols)), spike_rates, default_rate)
        r = self._layer_costs(cols, np.clip(rates, 0.0, 1.0))
        pes = self.rows * self.cols
        assumptions: dict[str, Any] = {"pes": pes, "dataflow": self.t.dataflow}
        if missing:
            assumptions["spike_rate_assumed"] = {"rate": 1.0 if default_rate is None else default_rate,
                                                 "layers": missing}
        return CostReport(
            names=tuple(layer.name for layer in workload.layers),
            kinds=tuple(layer.kind for layer in workload.layers),
            cycles=r["cycles"],
            compute_cycles=r["compute_cycles"],
            latency_s=r["latency_s"],
            energy={k: r["energy_" + k] for k in ENERGY_PARTS},
            utilization=r["utilization"],
            macs=r["macs"],
            ops=r["ops"],
            area_mm2=self.area_mm2(bool(cols[_NEURON].any())),
            assumptions=assumptions,
        )

    def cost_many(self, workloads: Sequence[Workload], spike_rates: Sequence[dict | None] | None = None,
                  default_rate: float | None = None) -> dict[str, np.ndarray]:
        """Totals of many workloads on this template, vectorised over all their layers.

        The layers' columns (:meth:`Workload.columns`) are concatenated and costed by the same
        per-layer arithmetic as :meth:`cost`, then summed per workload (``np.add.reduceat``).
        Returns arrays with one entry per workload: ``cycles``, ``compute_cycles`` (int64),
        ``latency_s``, ``energy_j``, ``energy_<part>`` for each of ``ENERGY_PARTS``, ``macs``,
        ``ops``, ``utilization``, ``area_mm2``, and ``rate_assumed_layers``: how many spiking
        layers took ``default_rate`` (or 1.0) for want of a measured rate. ``spike_rates[k]``
        is the layer name -> rate map of ``workloads[k]`` (None: none measured).
        """
        n_w = len(workloads)
        if spike_rates is not None and len(spike_rates) != n_w:
            raise ValueError(f"cost_many: {len(spike_rates)} spike-rate maps for {n_w} workloads; "
                             "pass one per workload (None where a workload has none)")
        offsets = np.zeros(n_w + 1, dtype=np.int64)
        np.cumsum(np.fromiter((len(w) for w in workloads), np.int64, n_w), out=offsets[1:])
        # Whole workloads in batches of about _BATCH layers: the temporaries then stay in cache
        # and below malloc's mmap threshold: 1.1-1.4x faster than one pass over ~6e5 layers
        # (experiments/bench_cost_model.py). The arithmetic is elementwise and each workload's
        # sum sees the same layers in the same order, so batching changes no value.
        cuts = [0]
        while cuts[-1] < n_w:
            k = int(np.searchsorted(offsets, offsets[cuts[-1]] + _BATCH, side="right")) - 1
            cuts.append(min(max(k, cuts[-1] + 1), n_w))
        parts = [self._cost_batch(workloads[k0:k1], offsets[k0:k1 + 1] - offsets[k0],
                                  spike_rates[k0:k1] if spike_rates is not None else None, default_rate)
                 for k0, k1 in zip(cuts[:-1], cuts[1:])] or [self._cost_batch([], offsets[:1], None, None)]
        out = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
        pes = self.rows * self.cols
        busy = out["cycles"] * pes
        out["utilization"] = np.where(busy > 0, out["macs"] / np.maximum(busy, 1), 0.0)
        area = {flag: self.area_mm2(flag) for flag in (False, True)}
        out["area_mm2"] = np.where(out.pop("has_neuron") > 0, area[True], area[False])
        return out

    def _cost_batch(self, workloads: Sequence[Workload], offsets: np.ndarray,
                    spike_rates: Sequence[dict | None] | None, default_rate: float | None
                    ) -> dict[str, np.ndarray]:
        """Per-workload sums for a batch of workloads whose layers start at ``offsets``."""
        n_w = len(workloads)
        cols = (np.concatenate([w.columns() for w in workloads], axis=1) if n_w
                else np.zeros((len(COLUMNS), 0), dtype=np.int64))
        rates = np.ones(cols.shape[1])
        assumed = np.zeros(n_w, dtype=np.int64)
        spiking = np.flatnonzero(_rate_layers(cols))
        if spiking.size:
            owner = np.searchsorted(offsets, spiking, side="right") - 1
            bounds = np.searchsorted(owner, np.arange(n_w + 1))
            for k in np.flatnonzero(np.diff(bounds)):
                rows = spiking[bounds[k]:bounds[k + 1]]
                missing = _fill_rates(rates, workloads[k], rows - offsets[k],
                                      spike_rates[k] if spike_rates is not None else None,
                                      default_rate, base=int(offsets[k]))
                assumed[k] = len(missing)
        r = self._layer_costs(cols, np.clip(rates, 0.0, 1.0))
        r["energy_j"] = sum(r["energy_" + k] for k in ENERGY_PARTS)
        del r["utilization"]
        r["has_neuron"] = cols[_NEURON]
        nonempty = offsets[1:] > offsets[:-1]
        starts = offsets[:-1][nonempty]
        out: dict[str, np.ndarray] = {}
        for key, per_layer in r.items():
            total = np.zeros(n_w, dtype=per_layer.dtype)
            if starts.size:
                total[nonempty] = np.add.reduceat(per_layer, starts)
            out[key] = total
        out["rate_assumed_layers"] = assumed
        return out

    def _layer_costs(self, cols: np.ndarray, rates: np.ndarray) -> dict[str, np.ndarray]:
        """The per-layer arithmetic of :meth:`cost` and :meth:`cost_many`.

        ``cols`` is a :data:`nasco.hw.COLUMNS` array (one column per layer), ``rates`` the
        clipped input spike rate of each layer (ignored where the input is not spiking).
        """
        a = dict(zip(COLUMNS, cols))
        pool, add = a["pool"] != 0, a["add"] != 0
        vector = pool | add
        compute = (a["neuron"] == 0) & ~vector  # conv and linear layers: the array's work
        neuron = a["neuron"] != 0
        spiking = (a["spiking_input"] != 0) & compute
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

        # Neuron layers: one LIF unit per column updates `cols` neurons per cycle.
        elems = a["elements"].astype(np.float64)
        cyc_neuron = np.where(neuron, np.ceil(elems / self.cols), 0)
        # Pool and add layers run on a vector unit with one lane per array column (beside the
        # LIF units), one op per lane per cycle. A pool charges one compare (max) or add (avg)
        # per window element, k*k per output: k*k - 1 combine the window, and the first one
        # loads the running max/sum; an add layer of n operands charges n - 1 adds per output.
        vec_ops = np.where(pool, elems * a["filter_h"] * a["filter_w"],
                           np.where(add, elems * (a["operands"] - 1), 0.0))
        cyc_vector = np.ceil(vec_ops / self.cols)
        cycles = (cyc_pass + cyc_neuron + cyc_vector) * steps

        macs = macs_pass * steps
        ops = np.where(spiking, macs * rates, macs)
        # Vector ops are adds/compares at activation width; on a pool of binary spikes they are
        # 1-bit operations (an OR for max-pool, a 1-bit count for avg-pool): add_8b / 8 each.
        vec_binary = pool & (a["spiking_input"] != 0)
        e_vec_op = np.where(vec_binary, self.e_add8 / 8.0, self.e_add8 * self.ab / 8.0)
        e_compute = np.where(spiking, ops * self.e_ac, macs * self.e_mac) + vec_ops * steps * e_vec_op
        # Each PE latches the operand it passes on and updates its accumulator every cycle
        # it works (Kung, 'Why systolic architectures?', 1982): spikes are 1-bit operands.
        in_bits = np.where(spiking, 1, self.ab)
        e_register = (macs * in_bits + ops * (self.wb + self.acc)) * self.e_reg
        ifmap_bits = np.where(spiking | vec_binary, 1, self.ab)
        # The vector unit reads each input element once (a line buffer holds the pooling
        # window's rows) and writes each output once. A pool's input is its padded ifmap, as
        # for a conv; an add reads its `operands` inputs.
        vec_in = np.where(pool, ih * iw * a["channels"], np.where(add, a["operands"] * a["elements"], 0))
        vec_out = np.where(vector, a["elements"], 0)
        e_sram = ((sram["ifmap_reads"] * ifmap_bits + sram["filter_reads"] * self.wb) * self.e_sram_r
                  + sram["ofmap_writes"] * self.ab * self.e_sram_w
                  + vec_in * ifmap_bits * self.e_sram_r + vec_out * self.ab * self.e_sram_w) * steps

        # DRAM: when either operand fits its buffer it stays resident while the other streams
        # through once. When neither fits, one is tiled and the other re-streamed for every
        # tile; the cheaper loop order is taken. Pool and add layers have no weights: their
        # inputs and outputs make the same layer-by-layer round trip as a conv's.
        kib = 1024 * 8
        w_bits = np.where(compute, a["filter_h"] * a["filter_w"] * ch_g * a["num_filters"], 0) * self.wb
        i_bits = np.where(compute, ih * iw * a["channels"], vec_in) * ifmap_bits
        o_bits = np.where(compute, oh * ow * a["num_filters"], vec_out) * self.ab
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
        mem_bits = np.where(neuron, elems, 0.0) * self.mb
        mem_on_chip = mem_bits <= float(self.t.buffers.ofmap_kb) * kib
        dram_bits = dram_bits + np.where(mem_on_chip, 0, 2 * mem_bits * steps)
        e_dram = dram_bits * self.e_dram
        e_neuron = np.where(neuron, elems * self.e_neuron_op
                            + np.where(mem_on_chip, mem_bits * (self.e_sram_r + self.e_sram_w), 0), 0.0) * steps

        dram_cycles = dram_bits / 8.0 / float(self.t.bandwidth.dram_bytes_per_cycle)
        total_cycles = np.maximum(cycles, np.ceil(dram_cycles)).astype(np.int64)
        pes = self.rows * self.cols
        return {
            "cycles": total_cycles,
            "compute_cycles": cycles.astype(np.int64),
            "latency_s": total_cycles / self.clock_hz,
            "energy_compute": e_compute, "energy_register": e_register, "energy_sram": e_sram,
            "energy_dram": e_dram, "energy_neuron": e_neuron,
            "utilization": np.where(total_cycles > 0, macs / np.maximum(total_cycles * pes, 1), 0.0),
            "macs": macs.astype(np.float64),
            "ops": ops.astype(np.float64),
        }


_NEURON, _SPIKING = COLUMNS.index("neuron"), COLUMNS.index("spiking_input")
_POOL, _ADD = COLUMNS.index("pool"), COLUMNS.index("add")


def _rate_layers(cols: np.ndarray) -> np.ndarray:
    """Which layers take an input spike rate: conv/linear layers with spiking input (a pool
    of spikes is charged per window element, whatever the rate)."""
    return (cols[_SPIKING] != 0) & (cols[_NEURON] == 0) & (cols[_POOL] == 0) & (cols[_ADD] == 0)


_BATCH = 8192  # layers per batch in cost_many


def _fill_rates(rates: np.ndarray, workload: Workload, rows: np.ndarray, spike_rates: dict | None,
                default_rate: float | None, base: int = 0) -> list[str]:
    """Write the input spike rate of each spiking layer ``rows`` of ``workload`` into
    ``rates[base + row]``; return the names of those that took the default."""
    missing = []
    for i in rows.tolist():
        name = workload.layers[i].name
        if spike_rates and name in spike_rates:
            rates[base + i] = float(spike_rates[name])
        else:
            missing.append(name)
            rates[base + i] = 1.0 if default_rate is None else float(default_rate)
    return missing
