"""The analytical cost model of the systolic templates: cycles, latency, energy, area.

Compute cycles and SRAM access counts come from the template's dataflow, beside it:
:mod:`nasco.hw._systolic` (which equals SCALE-Sim v3 exactly) or :mod:`nasco.hw._rowstationary`,
and on spiking (sop) PEs the traffic of :mod:`nasco.hw._sop`; a loop-unrolled array
(``pe_array.unroll``) takes its cycles from :mod:`nasco.hw._unrolled` instead. On top of them this module
charges, stage by stage (geometry, compute, buffers, DRAM, latency), energy per access from
the template's energy table, DRAM traffic against the buffer sizes and bandwidth, spiking
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

from nasco.core import NascoError
from nasco.dsl import AcceleratorTemplate, EnergyTable, search_dimensions
from nasco.hw._rowstationary import rs_layer_core
from nasco.hw._sop import TILING_BUFFERS, sop_tiling, sop_traffic
from nasco.hw._spikes import spike_map_bits
from nasco.hw._systolic import systolic_layer_core
from nasco.hw._unrolled import unrolled_cycles
from nasco.hw._workload import COLUMNS, Workload

__all__ = ["CostError", "CostModel", "CostReport", "ENERGY_PARTS", "MAX_CYCLES", "MappingError"]


class MappingError(ValueError):
    """A layer that the template's dataflow cannot map; the message names it and says why."""


class CostError(NascoError):
    """A cost the model cannot stand behind: infinite, negative, or a utilisation outside [0, 1].

    The DSL's ranges and the workload's size bounds keep real templates and networks clear of
    it; the message names the template, the layer and the quantity."""


ENERGY_PARTS = ("compute", "register", "noc", "sram", "dram", "neuron")

# The most cycles a layer or a workload may take: they are counted in int64, and 2**62 leaves a
# factor of two for sums (4.6e18 cycles: 146 years at 1 GHz).
MAX_CYCLES = 2**62


# ---------------------------------------------------------------------- the stages' results
# Per-layer arrays that one stage of CostModel._layer_costs hands to the next.
@dataclass(frozen=True)
class _Geometry:
    """What each layer is and its shapes."""

    a: dict[str, np.ndarray]  # the workload's columns by name
    pool: np.ndarray          # on the vector unit: a pool ...
    add: np.ndarray           # ... or an element-wise add
    vector: np.ndarray
    compute: np.ndarray       # conv and linear layers: the array's work
    neuron: np.ndarray
    spiking: np.ndarray       # array layers with spiking input
    lif_src: np.ndarray       # array or add layers that feed a fused LIF (sop templates)
    fused: np.ndarray         # neuron layers fused with the layer before them
    steps: np.ndarray         # timesteps (float64)
    elems: np.ndarray         # elements (float64)
    g: np.ndarray             # groups, dilation, output size, channels and filters per group
    dil: np.ndarray
    oh: np.ndarray
    ow: np.ndarray
    ch_g: np.ndarray
    nf_g: np.ndarray
    ih: np.ndarray            # the padded input the outputs cover
    iw: np.ndarray


@dataclass(frozen=True)
class _Work:
    """The array's ops and every unit's cycles, and the arithmetic's energy."""

    snn: bool                 # spiking arithmetic applies to this batch of layers
    serial: np.ndarray        # non-binary input run bit-serially on sop PEs
    vec_binary: np.ndarray    # a pool or an add of binary spikes
    macs: np.ndarray
    ops: np.ndarray
    busy: np.ndarray          # MAC positions the array steps through (utilisation's numerator)
    cycles: np.ndarray        # compute cycles of all timesteps (float64)
    e_compute: np.ndarray


@dataclass(frozen=True)
class _Buffers:
    """Register-file, SRAM and NoC traffic and energy."""

    ifmap_bits: Any           # bits per input element (array or scalar)
    vec_in: np.ndarray        # vector-unit elements read and written
    vec_out: np.ndarray
    e_register: np.ndarray
    e_sram: np.ndarray
    noc_bits: np.ndarray
    e_noc: np.ndarray
    sop: dict[str, np.ndarray] | None  # the spiking dataflow's traffic (sop templates)


@dataclass(frozen=True)
class _Dram:
    """DRAM traffic and the neuron updates' energy."""

    bits: np.ndarray
    e_dram: np.ndarray
    e_neuron: np.ndarray
    i_bits: np.ndarray        # what a layer reads and writes (latency's exposed transfers)
    w_bits: np.ndarray
    o_bits: np.ndarray
    buf_i: float              # buffer sizes in bits
    buf_w: float
    buf_o: float


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
    # MAC positions the array stepped through: the MACs, or on an array that skips zero spikes
    # the spike-gated accumulates of its spiking layers (None: the MACs).
    busy: np.ndarray | None = None
    # Spiking (sop) templates: the layers that cannot be tiled under the template's timestep
    # loop order, one line each (layer, buffer, bits needed, bits the template has; empty:
    # every layer can), and the largest need / have - 1 over the layers' tiles (0 when all fit).
    infeasible: tuple[str, ...] = ()
    tiling_excess: float = 0.0

    @property
    def energy_j(self) -> np.ndarray:
        return sum(self.energy.values())

    def total(self) -> dict[str, Any]:
        cycles = int(self.cycles.sum())
        busy = (self.macs if self.busy is None else self.busy).sum()
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
        """The JSON shape of ``nasco cost --json``: ``layers`` (in order) and ``total``.

        Linear in the layers: every per-layer column is converted to Python numbers once."""
        energy_j = self.energy_j.tolist()  # the parts summed once, not once per layer
        parts = {k: v.tolist() for k, v in self.energy.items()}
        cycles, compute = self.cycles.tolist(), self.compute_cycles.tolist()
        latency, util = self.latency_s.tolist(), self.utilization.tolist()
        macs, ops = self.macs.tolist(), self.ops.tolist()
        layers = []
        for i, name in enumerate(self.names):
            layers.append({
                "name": name,
                "kind": self.kinds[i],
                "cycles": int(cycles[i]),
                "compute_cycles": int(compute[i]),
                "latency_s": float(latency[i]),
                "energy_j": float(energy_j[i]),
                "energy": {k: float(v[i]) for k, v in parts.items()},
                "area_mm2": self.area_mm2,
                "utilization": float(util[i]),
                "macs": int(macs[i]),
                "ops": float(ops[i]),
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
        unroll = template.pe_array.unroll
        self.unroll = None if unroll is None else {str(d): int(n) for d, n in unroll.items()}
        self.rs = template.dataflow == "rs"
        self.sop = template.pe.type == "sop"
        self.skip_zero = bool(template.pe.skip_zero_spikes) and self.sop
        # The timestep loop order of sop PEs (nasco.hw._sop); MAC PEs ignore it.
        self.loop = str(template.pe.timestep_loop) if self.sop else "inner"
        spikes = template.spikes
        self.spike_format = str(spikes.format)
        self.address_bits = None if spikes.address_bits is None else int(spikes.address_bits)
        self.run_bits = int(spikes.run_bits)
        noc = template.bandwidth.noc_bytes_per_cycle
        self.noc_bpc = None if noc is None else float(noc)
        self.fold_tiles = template.bandwidth.exposed == "fold"
        e = table.energy_j
        self.e_add1 = table.scaled("add", 1)
        # An accumulate adds a weight into the psum/membrane; a sop PE's AND gate adds its own.
        self.e_and = e("and_gate") if self.sop and "and_gate" in table.energy else 0.0
        self.e_reg = e("register_bit")
        self.e_rf_i, self.e_rf_f, self.e_rf_p = (e(k) if k in table.energy else self.e_reg
                                                 for k in ("rf_ifmap_bit", "rf_filter_bit", "rf_psum_bit"))
        self.e_sram_r, self.e_sram_w = e("sram_read_bit"), e("sram_write_bit")
        self.e_noc = e("noc_bit") if "noc_bit" in table.energy else 0.0
        self.e_dram = e("dram_bit")
        b, bufs = template.bits, template.buffers
        self._scaled = table.scaled
        self._set_sizes(weight=int(b.weight), activation=int(b.activation), accumulator=b.accumulator,
                        membrane=b.membrane, clock_mhz=float(template.clock_mhz),
                        ifmap_kb=float(bufs.ifmap_kb), filter_kb=float(bufs.filter_kb),
                        ofmap_kb=float(bufs.ofmap_kb),
                        membrane_kb=None if bufs.membrane_kb is None else float(bufs.membrane_kb),
                        dram_bpc=float(template.bandwidth.dram_bytes_per_cycle))
        self.assumed: dict[str, Any] = {}
        if "noc_bit" not in table.energy:
            self.assumed["noc_energy"] = f"not charged: energy table {table.name!r} has no noc_bit"

    def _set_sizes(self, *, weight: Any, activation: Any, accumulator: Any, membrane: Any, clock_mhz: Any,
                   ifmap_kb: Any, filter_kb: Any, ofmap_kb: Any, membrane_kb: Any, dram_bpc: Any) -> None:
        """The fields that only scale the per-layer arithmetic (bit widths, buffer sizes, DRAM
        bandwidth, clock) and the op energies that follow from the widths. Scalars here; one
        column per configuration in :func:`nasco.hw.cost_configurations`, where ``_scaled``
        looks each configuration's widths up in the same table."""
        self.wb, self.ab, self.acc, self.mb = weight, activation, accumulator, membrane
        self.clock_hz = clock_mhz * 1e6
        self.ifmap_kb, self.filter_kb, self.ofmap_kb = ifmap_kb, filter_kb, ofmap_kb
        self.membrane_buffer_kb = membrane_kb  # None: no membrane buffer of its own (area)
        self.membrane_kb = ofmap_kb if membrane_kb is None else membrane_kb  # where membranes live
        self.dram_bpc = dram_bpc
        self.e_mac = self._scaled("mac", weight, activation)
        self.e_add_act = self._scaled("add", activation)
        self.e_ac = self._scaled("add", weight) + self.e_and
        # A LIF update: integrate the input current into the membrane and compare it with the
        # threshold, one add each at membrane width; the leak is a shift and the reset a
        # multiplexer, not charged (SATA_Sim's forward LIF: 1 add, 1 compare, 1 shift, 2 muxes;
        # github.com/RuokaiYin/SATA_Sim, config/sata_config.yaml).
        self.e_neuron_op = 2 * self._scaled("add", membrane)

    # ------------------------------------------------------------------ area
    def area_mm2(self, spiking: bool) -> float:
        """Cell area of the PEs, register files, buffers and LIF units (mm2); SRAM periphery
        and wiring are not modelled."""
        return float(self._area(spiking))

    def _area(self, spiking: bool) -> Any:
        """:meth:`area_mm2` before its conversion to float (a column of areas in
        :func:`nasco.hw.cost_configurations`)."""
        t, a, scaled = self.table, self.table.area_mm2, self._scaled
        if self.sop:  # an AND gate and an adder at weight width, accumulating into the membrane
            pe = scaled("add", self.wb, section="area")
        elif t.widths("mult", "area"):
            pe = (scaled("mult", self.wb, self.ab, section="area")
                  + scaled("add", self.acc, section="area"))
        else:
            pe = scaled("mac", self.wb, self.ab, section="area")
        pe += a("register_bit") * (self.wb + self.ab + self.acc)  # operand and psum registers
        rf = self.t.rf
        if rf is not None:
            # Eyeriss builds the filter scratchpad from SRAM and the ifmap and psum scratchpads
            # from registers (Chen et al., JSSC 2017, Sec. V).
            pe += (a("register_bit") * (int(rf.ifmap_words) * self.ab + int(rf.psum_words) * self.acc)
                   + a("sram_bit") * int(rf.filter_words) * self.wb)
        pes = self.rows * self.cols * pe
        kb = self.ifmap_kb + self.filter_kb + self.ofmap_kb
        if self.membrane_buffer_kb is not None:
            kb += self.membrane_buffer_kb
        sram = kb * 1024 * 8 * a("sram_bit")
        lif = 0.0
        if spiking:  # one LIF unit per array column (SATA places them at the array edge)
            lif = self.cols * (2 * scaled("add", self.mb, section="area") + a("register_bit") * self.mb)
        return pes + sram + lif

    # ------------------------------------------------------------------ cost
    def cost(self, workload: Workload, spike_rates: dict[str, float] | None = None,
             default_rate: float | None = None) -> CostReport:
        """Cost every layer of ``workload``.

        ``spike_rates`` maps layer name -> measured input spike rate for layers with spiking
        input; a spiking layer without one takes ``default_rate`` (recorded in
        ``assumptions``), or 1.0 (every input spikes: an upper bound) when that is None.
        When the template's ``spikes.format`` is not ``dense``, a neuron layer's name gives the
        spike rate of the map it emits (the same default applies, recorded as
        ``spike_out_rate_assumed``); a dense template never reads those entries.

        On sop templates the report's ``assumptions`` name the ``timestep_loop`` order, and a
        layer whose tiles do not fit the buffers under that order (:func:`~nasco.hw._sop.sop_tiling`)
        is listed in :attr:`CostReport.infeasible` (and ``assumptions['tiling_infeasible']``) with
        the buffer, the bits it needs and the bits the template has: the workload is still
        costed, and it is the caller's to count the design infeasible (it is not an error).
        """
        cols = workload.columns()
        self._check_mappable(cols, lambda i: (workload.name, workload.layers[i].name))
        rates = np.ones(len(workload))
        missing = _fill_rates(rates, workload, np.flatnonzero(_rate_layers(cols)), spike_rates, default_rate)
        out_missing = []
        if self.spike_format != "dense":  # the maps the neurons write are sized by their rates
            out_missing = _fill_rates(rates, workload, np.flatnonzero(cols[_NEURON] != 0), spike_rates,
                                      default_rate)
        r = self._layer_costs(cols, np.clip(rates, 0.0, 1.0))
        area = self.area_mm2(bool(cols[_NEURON].any()))
        self._check_results(r, area, lambda i: (workload.name, workload.layers[i].name),
                            np.array([0, len(workload)], dtype=np.int64))
        pes = self.rows * self.cols
        assumptions: dict[str, Any] = {"pes": pes, "dataflow": self.t.dataflow, **self.assumed}
        if self.unroll is not None:
            assumptions["unroll"] = dict(self.unroll)
        if self.fold_tiles:
            assumptions["exposed"] = "fold"
        if missing:
            assumptions["spike_rate_assumed"] = {"rate": 1.0 if default_rate is None else default_rate,
                                                 "layers": missing}
        if self.spike_format != "dense":
            assumptions["spikes"] = self.spike_format
        if out_missing:
            assumptions["spike_out_rate_assumed"] = {"rate": 1.0 if default_rate is None else default_rate,
                                                     "layers": out_missing}
        infeasible: tuple[str, ...] = ()
        if self.sop:
            assumptions["timestep_loop"] = self.loop
            if (r["tiling_excess"] > 0).any():
                infeasible = tuple(self._tiling_reasons(cols, np.clip(rates, 0.0, 1.0),
                                                        [layer.name for layer in workload.layers]))
                assumptions["tiling_infeasible"] = list(infeasible)
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
            area_mm2=area,
            assumptions=assumptions,
            busy=r["busy"],
            tiling_excess=float(r["tiling_excess"].max(initial=0.0)),
            infeasible=infeasible,
        )

    def cost_many(self, workloads: Sequence[Workload], spike_rates: Sequence[dict | None] | None = None,
                  default_rate: float | None = None) -> dict[str, np.ndarray]:
        """Totals of many workloads on this template, vectorised over all their layers.

        The layers' columns (:meth:`Workload.columns`) are concatenated and costed by the same
        per-layer arithmetic as :meth:`cost`, then summed per workload (``np.add.reduceat``).
        Returns arrays with one entry per workload: ``cycles``, ``compute_cycles`` (int64),
        ``latency_s``, ``energy_j``, ``energy_<part>`` for each of ``ENERGY_PARTS``, ``macs``,
        ``ops``, ``utilization``, ``area_mm2``, and ``rate_assumed_layers``: how many spiking
        layers (and, on a template whose spikes are not dense, neuron layers: see :meth:`cost`)
        took ``default_rate`` (or 1.0) for want of a measured rate, and ``tiling_excess``: the
        :attr:`CostReport.tiling_excess` of each workload (positive: a layer cannot be tiled
        under the template's timestep loop order). ``spike_rates[k]`` is the layer name ->
        rate map of ``workloads[k]`` (None: none measured).
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
        pe_cycles = out["cycles"] * pes
        busy = out.pop("busy")
        out["utilization"] = np.where(pe_cycles > 0, busy / np.maximum(pe_cycles, 1), 0.0)
        area = {flag: self.area_mm2(flag) for flag in (False, True)}
        for value in area.values():
            if not (np.isfinite(value) and value >= 0):
                self._fail("the template", "area_mm2", value, "a finite, non-negative area")
        bad = np.flatnonzero(~((out["utilization"] >= 0) & (out["utilization"] <= 1)))
        if bad.size:
            k = int(bad[0])
            self._fail(f"workload {workloads[k].name!r}", "utilization", float(out["utilization"][k]),
                       "a utilisation in [0, 1]")
        out["area_mm2"] = np.where(out.pop("has_neuron") > 0, area[True], area[False])
        return out

    def _cost_batch(self, workloads: Sequence[Workload], offsets: np.ndarray,
                    spike_rates: Sequence[dict | None] | None, default_rate: float | None
                    ) -> dict[str, np.ndarray]:
        """Per-workload sums for a batch of workloads whose layers start at ``offsets``."""
        n_w = len(workloads)
        cols = (np.concatenate([w.columns() for w in workloads], axis=1) if n_w
                else np.zeros((len(COLUMNS), 0), dtype=np.int64))
        def locate(i: int) -> tuple[str, str]:
            k = int(np.searchsorted(offsets, i, side="right")) - 1
            return workloads[k].name, workloads[k].layers[i - int(offsets[k])].name

        self._check_mappable(cols, locate)
        rates = np.ones(cols.shape[1])
        assumed = np.zeros(n_w, dtype=np.int64)

        def fill(layers: np.ndarray) -> None:
            """Fill ``rates`` at the stacked rows ``layers``, workload by workload, counting the
            rates each workload had to assume."""
            owner = np.searchsorted(offsets, layers, side="right") - 1
            bounds = np.searchsorted(owner, np.arange(n_w + 1))
            for k in np.flatnonzero(np.diff(bounds)):
                rows = layers[bounds[k]:bounds[k + 1]]
                missing = _fill_rates(rates, workloads[k], rows - offsets[k],
                                      spike_rates[k] if spike_rates is not None else None,
                                      default_rate, base=int(offsets[k]))
                assumed[k] += len(missing)

        fill(np.flatnonzero(_rate_layers(cols)))
        if self.spike_format != "dense":  # the rates of the maps the neurons emit (see cost)
            fill(np.flatnonzero(cols[_NEURON] != 0))
        r = self._layer_costs(cols, np.clip(rates, 0.0, 1.0), utilization=False)
        self._check_results(r, None, locate, offsets)
        r["energy_j"] = sum(r["energy_" + k] for k in ENERGY_PARTS)
        del r["utilization"]
        r["has_neuron"] = cols[_NEURON]
        nonempty = offsets[1:] > offsets[:-1]
        starts = offsets[:-1][nonempty]
        out: dict[str, np.ndarray] = {}
        for key, per_layer in r.items():
            total = np.zeros(n_w, dtype=per_layer.dtype)
            if starts.size:  # the tiling excess of a workload is its worst layer's
                reduce = np.maximum.reduceat if key == "tiling_excess" else np.add.reduceat
                total[nonempty] = reduce(per_layer, starts)
            out[key] = total
        out["rate_assumed_layers"] = assumed
        return out

    def _fail(self, where: str, key: str, value: float, expected: str) -> None:
        raise CostError(f"{self.t.name}: {where}: {key} is {value:.6g}, expected {expected}; the "
                        "template's numbers or the workload's sizes are outside what the cost model can "
                        "cost (see the ranges of the accelerator DSL and nasco.hw.Layer's size bounds)")

    def _check_results(self, r: dict[str, np.ndarray | None], area: float | None, locate,
                       offsets: np.ndarray) -> None:
        """Check the per-layer results of :meth:`_layer_costs` (and the area) and turn the cycle
        counts into int64, in place: energies, latency, MACs and ops finite and non-negative,
        cycles in [0, MAX_CYCLES] per layer and per workload (``offsets``: where each workload's
        layers start, as in :meth:`cost_many`), utilisation in [0, 1]. ``locate(i)`` gives
        (workload name, layer name) of layer ``i``. Raises :class:`CostError`."""
        if area is not None and not (np.isfinite(area) and area >= 0):
            self._fail("the template", "area_mm2", area, "a finite, non-negative area")
        for key, value in r.items():
            if value is None:
                continue
            if key in ("cycles", "compute_cycles"):
                ok, expected = (value >= 0) & (value <= MAX_CYCLES), f"a count in [0, {MAX_CYCLES:.3g}]"
            elif key == "utilization":
                ok, expected = (value >= 0) & (value <= 1), "a utilisation in [0, 1]"
            else:
                ok, expected = np.isfinite(value) & (value >= 0), "a finite, non-negative value"
            if not ok.all():  # NaN fails every comparison
                i = int(np.flatnonzero(~ok)[0])
                wname, lname = locate(i)
                self._fail(f"layer {lname!r} of {wname!r}", key, float(value[i]), expected)
        starts = offsets[:-1][offsets[1:] > offsets[:-1]]
        for key in ("cycles", "compute_cycles"):
            if starts.size:
                totals = np.add.reduceat(r[key], starts)
                if (totals > MAX_CYCLES).any():
                    k = int(np.flatnonzero(totals > MAX_CYCLES)[0])
                    self._fail(f"workload {locate(int(starts[k]))[0]!r}", f"{key} (all layers)",
                               float(totals[k]), f"a count in [0, {MAX_CYCLES:.3g}]")
            r[key] = r[key].astype(np.int64)

    def _check_mappable(self, cols: np.ndarray, locate) -> None:
        """Raise :class:`MappingError` for the first layer the dataflow cannot map.

        Row stationary keeps a filter row in each PE's filter scratchpad and slides the
        ifmap row's window, (S - 1) * dilation + 1 values, through the ifmap scratchpad, so
        both must fit (Eyeriss: S <= 12 with its 12-word ifmap pad). Systolic arrays fold any
        layer. ``locate(i)`` gives (workload name, layer name) of column ``i``.
        """
        if not self.rs:
            return
        a = dict(zip(COLUMNS, cols))
        conv = (a["neuron"] == 0) & (a["pool"] == 0) & (a["add"] == 0)
        rf = self.t.rf
        window = (np.maximum(a["dilation"], 1) * (a["filter_w"] - 1) + 1)
        for mask, why in (
                (conv & (a["filter_w"] > int(rf.filter_words)),
                 lambda i: f"a filter row of {int(a['filter_w'][i])} weights does not fit the "
                           f"{int(rf.filter_words)}-word filter scratchpad"),
                (conv & (window > int(rf.ifmap_words)),
                 lambda i: f"its ifmap window of {int(window[i])} values (filter width "
                           f"{int(a['filter_w'][i])}, dilation {int(a['dilation'][i])}) does not fit the "
                           f"{int(rf.ifmap_words)}-word ifmap scratchpad")):
            bad = np.flatnonzero(mask)
            if bad.size:
                i = int(bad[0])
                wname, lname = locate(i)
                raise MappingError(f"{self.t.name}: layer {lname!r} of {wname!r} cannot be mapped "
                                   f"row-stationary: {why(i)}; enlarge rf in the template or pick a systolic "
                                   "dataflow")

    def _layer_costs(self, cols: np.ndarray, rates: np.ndarray,
                     utilization: bool = True) -> dict[str, np.ndarray]:
        """The per-layer arithmetic of :meth:`cost` and :meth:`cost_many`, in five stages.

        ``cols`` is a :data:`nasco.hw.COLUMNS` array (one column per layer), ``rates`` the
        clipped input spike rate of each layer (ignored where the input is not spiking).
        The geometry says what each layer is and its shapes; the dataflow's core decides the
        array's cycles and the words each level of the hierarchy moves
        (:func:`~nasco.hw._systolic.systolic_layer_core`,
        :func:`~nasco.hw._rowstationary.rs_layer_core`); compute, the buffers (register files,
        SRAM, NoC), DRAM and latency are then the same arithmetic for every dataflow, with
        the spiking dataflow's traffic from :func:`~nasco.hw._sop.sop_traffic` on sop PEs.
        """
        geo = self._geometry(dict(zip(COLUMNS, cols)))
        a = geo.a
        if self.rs:
            rf = self.t.rf
            core = rs_layer_core(self.rows, self.cols, a["filter_h"], a["filter_w"], a["stride"], geo.dil,
                                 geo.oh, geo.ow, geo.ch_g, geo.nf_g, geo.g, geo.compute,
                                 psum_words=int(rf.psum_words), filter_words=int(rf.filter_words))
        else:
            core = systolic_layer_core(self.t.dataflow, self.rows, self.cols, a["filter_h"], a["filter_w"],
                                       a["stride"], geo.oh, geo.ow, geo.ch_g, geo.nf_g, geo.g, geo.compute)
            if self.unroll is not None:  # a loop-unrolled array: its own cycles, the dataflow's words
                cyc = unrolled_cycles(self.unroll, K=geo.nf_g, C=geo.ch_g, OX=geo.ow, OY=geo.oh,
                                      FX=a["filter_w"], FY=a["filter_h"], G=geo.g)
                core = {**core, "cycles": np.where(geo.compute, cyc, 0)}
        work = self._compute(geo, core, rates)
        buf = self._buffers(geo, core, work, rates)
        dram = self._dram(geo, buf)
        r = self._latency(work, buf, dram, core["folds"], utilization)
        r["tiling_excess"] = (self._tiling(geo, buf)["excess"] if self.sop
                              else np.zeros(len(geo.steps)))
        return r

    def _tiling(self, geo: _Geometry, buf: _Buffers) -> dict[str, Any]:
        """The buffer space each layer's tiles need under the template's timestep loop order
        (:func:`~nasco.hw._sop.sop_tiling`; sop templates)."""
        kib = 1024 * 8
        return sop_tiling(geo.a, geo.compute, geo.lif_src, geo.steps, geo.oh, geo.ow, geo.ch_g, geo.nf_g,
                          buf.ifmap_bits, dataflow=self.t.dataflow, rows=self.rows, cols=self.cols,
                          loop=self.loop, membrane_bits=self.mb, ifmap_buffer_bits=self.ifmap_kb * kib,
                          membrane_buffer_bits=self.membrane_kb * kib)

    def _tiling_reasons(self, cols: np.ndarray, rates: np.ndarray, names: Sequence[str]) -> list[str]:
        """One line per layer of ``cols`` that cannot be tiled under the timestep loop order:
        the layer, the buffer, the bits one tile needs there and the bits the template has."""
        geo = self._geometry(dict(zip(COLUMNS, cols)))
        a = geo.a
        core = systolic_layer_core(self.t.dataflow, self.rows, self.cols, a["filter_h"], a["filter_w"],
                                   a["stride"], geo.oh, geo.ow, geo.ch_g, geo.nf_g, geo.g, geo.compute)
        tiling = self._tiling(geo, self._buffers(geo, core, self._compute(geo, core, rates), rates))

        def what(buffer: str, i: int) -> str:
            if buffer == "membrane":
                neurons = int(tiling["neurons"][i])
                return f"the membranes of one fold's {neurons} output neurons x {self.mb} bits"
            n = int(geo.steps[i]) if self.loop == "inner" else 1
            steps = f"{n} timestep" + ("s" if n != 1 else "")
            return f"{int(tiling['words'][i])} input words of one fold x {steps}"

        out = []
        for i in np.flatnonzero(tiling["excess"] > 0).tolist():
            for buffer in TILING_BUFFERS:
                need, have = float(tiling[f"need_{buffer}"][i]), float(tiling[f"have_{buffer}"])
                if need > have:
                    out.append(f"layer {names[i]!r}: timestep_loop {self.loop} on {self.t.dataflow} "
                               f"({self.rows}x{self.cols} PEs) needs {need:.10g} bits of the {buffer} buffer "
                               f"({what(buffer, i)}); the template has {have:.10g} bits "
                               f"({have / (1024 * 8):g} KiB)")
        return out

    def _geometry(self, a: dict[str, np.ndarray]) -> _Geometry:
        """What each layer is (array, vector unit or neurons; spiking input; a fused LIF) and
        its shapes: output size, channels and filters per group, the padded input it reads."""
        pool, add = a["pool"] != 0, a["add"] != 0
        vector = pool | add
        compute = (a["neuron"] == 0) & ~vector  # conv and linear layers: the array's work
        neuron = a["neuron"] != 0
        spiking = (a["spiking_input"] != 0) & compute
        # sop templates: a conv/linear/add with output_bits 1 hands its output to the LIF units
        # at the array edge, which update the neuron layer right after it in the same pass (a
        # fused LIF, see Layer.output_bits); mac templates cost every layer on its own.
        lif_src = (a["output_bits"] > 0) & (compute | add) & self.sop
        fused = np.roll(lif_src, 1) & neuron  # Workload guarantees the neuron follows its source
        g = np.maximum(a["groups"], 1)
        dil = np.maximum(a["dilation"], 1)
        oh = (a["ifmap_h"] - (dil * (a["filter_h"] - 1) + 1)) // a["stride"] + 1
        ow = (a["ifmap_w"] - (dil * (a["filter_w"] - 1) + 1)) // a["stride"] + 1
        oh, ow = np.maximum(oh, 1), np.maximum(ow, 1)
        return _Geometry(
            a=a, pool=pool, add=add, vector=vector, compute=compute, neuron=neuron, spiking=spiking,
            lif_src=lif_src, fused=fused, steps=a["timesteps"].astype(np.float64),
            elems=a["elements"].astype(np.float64), g=g, dil=dil, oh=oh, ow=ow,
            ch_g=np.maximum(a["channels"] // g, 1), nf_g=np.maximum(a["num_filters"] // g, 1),
            # The padded input the output window covers (a pool's input, as for a conv).
            ih=(oh - 1) * a["stride"] + dil * (a["filter_h"] - 1) + 1,
            iw=(ow - 1) * a["stride"] + dil * (a["filter_w"] - 1) + 1)

    def _compute(self, geo: _Geometry, core: dict[str, Any], rates: np.ndarray) -> _Work:
        """Array ops and cycles, LIF and vector-unit cycles, and the arithmetic's energy."""
        a, steps, spiking = geo.a, geo.steps, geo.spiking
        macs_pass = np.where(geo.compute, geo.oh * geo.ow * a["num_filters"] * a["filter_h"] * a["filter_w"]
                             * geo.ch_g, 0)
        # Spike-gated work: an input spike lets one weight through (an accumulate, AC).
        # sop PEs run a non-binary input (a directly encoded first layer) bit-serially, one
        # bit plane of the activation per pass, each plane a spike map.
        # (ANN batches on MAC templates skip the spiking arithmetic: same values, less work.)
        snn = self.sop or bool(a["spiking_input"].any())
        serial = geo.compute & ~spiking & self.sop
        macs = macs_pass * steps
        if snn:
            ops = np.where(spiking, macs * rates, np.where(serial, macs * self.ab, macs))
            cyc_pass = np.where(serial, core["cycles"] * self.ab, core["cycles"]).astype(np.float64)
        else:
            ops = macs
            cyc_pass = core["cycles"].astype(np.float64)
        busy = macs
        if self.skip_zero:  # zero spikes skip their cycles: an event-driven array does the AC work only
            cyc_pass = np.where(spiking, np.ceil(cyc_pass * rates), cyc_pass)
            busy = np.where(spiking, ops, macs)  # ... so it steps through the spiking positions only

        # Neuron layers: one LIF unit per column updates `cols` neurons per cycle. A fused LIF
        # takes the currents as they leave the array's columns, one per column per cycle, so its
        # updates hide under the array's own cycles.
        elems = geo.elems
        cyc_neuron = np.where(geo.neuron & ~geo.fused, np.ceil(elems / self.cols), 0)
        # Pool and add layers run on a vector unit with one lane per array column (beside the
        # LIF units), one op per lane per cycle. A pool charges one compare (max) or add (avg)
        # per window element, k*k per output: k*k - 1 combine the window, and the first one
        # loads the running max/sum; an add layer of n operands charges n - 1 adds per output.
        vec_ops = np.where(geo.pool, elems * a["filter_h"] * a["filter_w"],
                           np.where(geo.add, elems * (a["operands"] - 1), 0.0))
        cyc_vector = np.ceil(vec_ops / self.cols)
        cycles = (cyc_pass + cyc_neuron + cyc_vector) * steps

        # Vector ops are adds/compares at activation width; on a pool of binary spikes they are
        # 1-bit operations (an OR for max-pool, a 1-bit count for avg-pool): add_8b / 8 each. An
        # add of n spike maps counts spikes: adds at the count's width, bit_length(n) bits
        # (adders scale linearly in width, EnergyTable.scaled).
        vec_binary = geo.vector & (a["spiking_input"] != 0)
        if snn:
            count_bits = np.where(geo.add, np.floor(np.log2(np.maximum(a["operands"], 1))) + 1, 1.0)
            e_vec_op = np.where(vec_binary, self.e_add1 * count_bits, self.e_add_act)
            e_op = np.where(spiking | serial, self.e_ac, self.e_mac)
            e_compute = ops * e_op + vec_ops * steps * e_vec_op
        else:
            e_compute = ops * self.e_mac + vec_ops * steps * self.e_add_act
        return _Work(snn=snn, serial=serial, vec_binary=vec_binary, macs=macs, ops=ops, busy=busy,
                     cycles=cycles, e_compute=e_compute)

    def _buffers(self, geo: _Geometry, core: dict[str, Any], work: _Work, rates: np.ndarray) -> _Buffers:
        """Register-file, SRAM and NoC traffic and their energy.

        Spike maps cost the bits per element of the template's ``spikes.format``
        (:func:`~nasco.hw._spikes.spike_map_bits`) wherever they are stored or moved: a
        spiking conv/linear layer's input at its measured rate (over the padded input the layer
        reads, as SCALE-Sim counts it: padding never spikes, so a sparse format is charged
        for rate x padded elements, slightly more than the spikes), and on sop templates the
        map a neuron layer emits at its own rate (see :meth:`cost`). A pool or an add of spikes
        has no measured input rate and reads them dense (1 bit per element), and a max-pool's
        output map stays dense too. The PEs
        still latch one spike bit per MAC position (the register files), whatever the format.
        With ``pe.skip_zero_spikes`` (sop) an array skips the cycles of zero spikes (compute
        cycles x rate); the gated work (weight reads, accumulator updates, adds) follows the
        spikes on either setting, since SATA clock-gates a PE whose input did not spike."""
        a, steps, spiking, serial, ops = geo.a, geo.steps, geo.spiking, work.serial, work.ops
        # Register files: every MAC position reads its input operand (1 bit when it is a
        # spike); every op reads its weight and updates its psum (``psum_rw`` accesses). A sop
        # PE latches exactly this: its spike scratchpad every cycle, and, only when the spike
        # lets a weight through, a weight-scratchpad read and a write of its accumulator
        # register (SATA_Sim's PE: spike SPAD ungated, weight SPAD and 16-bit reg-acc clock
        # gated; github.com/RuokaiYin/SATA_Sim, inference-energy-cal/archs/sata-config.yaml).
        # A bit-serial layer latches one input bit per MAC position per bit plane.
        if work.snn:
            in_bits = np.where(spiking | serial, 1, self.ab)
            in_slots = np.where(serial, ops, work.macs)
            ifmap_bits = np.where(spiking | work.vec_binary, 1, self.ab)
            if self.spike_format != "dense":
                in_elems = a["ifmap_h"] * a["ifmap_w"] * a["channels"]
                ifmap_bits = np.where(spiking, self._spike_bits(rates, in_elems), ifmap_bits)
        else:
            in_bits, in_slots, ifmap_bits = self.ab, work.macs, self.ab
        e_register = (in_slots * in_bits * self.e_rf_i + ops * self.wb * self.e_rf_f
                      + ops * core["psum_rw"] * self.acc * self.e_rf_p)
        # The vector unit reads each input element once (a line buffer holds the pooling
        # window's rows) and writes each output once. A pool's input is its padded ifmap, as
        # for a conv; an add reads its `operands` inputs.
        vec_in = np.where(geo.pool, geo.ih * geo.iw * a["channels"],
                          np.where(geo.add, a["operands"] * a["elements"], 0))
        vec_out = np.where(geo.vector, a["elements"], 0)
        buf_bits_r = core["ifmap_reads"] * ifmap_bits + core["psum_reads"] * self.acc + vec_in * ifmap_bits
        buf_bits_w = core["ofmap_writes"] * self.ab + core["psum_writes"] * self.acc + vec_out * self.ab
        e_sram = (buf_bits_r * self.e_sram_r + core["filter_reads"] * self.wb * self.e_sram_r
                  + buf_bits_w * self.e_sram_w) * steps
        # NoC: every word between a buffer (or DRAM, for filters that bypass the buffers) and
        # the PEs crosses the network once, multicast included.
        if self.e_noc or self.noc_bpc is not None or self.sop:
            noc_bits = (core["ifmap_reads"] * ifmap_bits + core["psum_reads"] * self.acc
                        + core["ofmap_writes"] * self.ab + core["psum_writes"] * self.acc
                        + core["filter_words"] * self.wb) * steps
        else:  # neither charged nor a bottleneck in this template
            noc_bits = np.zeros(len(steps))
        sop = None
        if self.sop:
            sop = sop_traffic(a, core, steps, geo.lif_src, geo.fused, ifmap_bits, vec_in, vec_out,
                              dataflow=self.t.dataflow, act_bits=self.ab, weight_bits=self.wb,
                              membrane_bits=self.mb, e_sram_r=self.e_sram_r, e_sram_w=self.e_sram_w,
                              e_reg=self.e_reg, e_neuron_op=self.e_neuron_op,
                              spike_out_bits=(None if self.spike_format == "dense"
                                              else self._spike_bits(rates, a["elements"])),
                              loop=self.loop, membrane_buffer_bits=self.membrane_kb * 1024 * 8)
            e_sram, noc_bits = sop["e_sram"], sop["noc_bits"]
        return _Buffers(ifmap_bits=ifmap_bits, vec_in=vec_in, vec_out=vec_out, e_register=e_register,
                        e_sram=e_sram, noc_bits=noc_bits, e_noc=noc_bits * self.e_noc, sop=sop)

    def _spike_bits(self, rates: np.ndarray, elements: np.ndarray) -> np.ndarray:
        """Bits per element and timestep of spike maps of ``elements`` neurons at ``rates``."""
        return spike_map_bits(self.spike_format, rates, elements, address_bits=self.address_bits,
                              run_bits=self.run_bits)

    def _dram(self, geo: _Geometry, buf: _Buffers) -> _Dram:
        """DRAM traffic of weights, activations and spilled membranes, and the neuron updates'
        energy (which depends on where the membranes live)."""
        a, steps, compute, sop = geo.a, geo.steps, geo.compute, buf.sop
        oh, ow = geo.oh, geo.ow
        # DRAM: when either operand fits its buffer it stays resident while the other streams
        # through once. When neither fits, one of three loop orders re-streams an operand: the
        # weights tiled (inputs re-read per weight tile), the inputs tiled (weights re-read per
        # input tile), or the outputs tiled (their psums stay in the ofmap buffer until done;
        # the inputs are re-read per output tile, each weight is read once: Eyeriss's order,
        # JSSC 2017 Sec. IV). The cheapest is taken. Pool and add layers have no weights: their
        # inputs and outputs make the same layer-by-layer round trip as a conv's.
        kib = 1024 * 8
        w_bits = np.where(compute, a["filter_h"] * a["filter_w"] * geo.ch_g * a["num_filters"], 0) * self.wb
        i_bits = np.where(compute, geo.ih * geo.iw * a["channels"], buf.vec_in) * buf.ifmap_bits
        o_bits = np.where(compute, oh * ow * a["num_filters"], buf.vec_out) * self.ab
        outer = self.loop == "outer"
        if sop is not None:  # what a layer reads and writes over all its timesteps (sop_traffic) ...
            o_elems = np.where(compute, oh * ow * a["num_filters"], buf.vec_out)
            o_bits = o_elems * sop["out_bits"] + sop["neuron_out"]
            if outer:  # ... but the input of one timestep decides its residency
                i_bits = i_bits + sop["neuron_in"] / steps
            else:  # ... all T maps of the input do
                i_bits = i_bits * steps + sop["neuron_in"]
        buf_w = self.filter_kb * kib
        buf_i = self.ifmap_kb * kib
        buf_o = self.ofmap_kb * kib
        tiles_w = np.ceil(np.maximum(w_bits, 1) / buf_w)
        tiles_i = np.ceil(np.maximum(i_bits, 1) / buf_i)
        psum_bits = np.where(compute, oh * ow * a["num_filters"], 0) * self.acc
        tiles_o = np.ceil(np.maximum(psum_bits, 1) / buf_o)
        neither = (w_bits > buf_w) & (i_bits > buf_i)
        by_w = i_bits * tiles_w + w_bits
        by_i = w_bits * tiles_i + i_bits
        by_o = i_bits * tiles_o + w_bits
        order_i = by_i < np.minimum(by_w, by_o)  # ties go to the orders that read weights once
        refetch_i = np.where(neither & ~order_i, np.minimum(tiles_w, tiles_o), 1)
        refetch_w = np.where(neither & order_i, tiles_i, 1)
        dram_w = w_bits * refetch_w
        dram_i = i_bits * refetch_i
        # Weights stay on chip across timesteps when they fit; activations move every step.
        # (sop, timestep loop inner: the timestep loop runs inside each weight tile, so weights
        # are read once, and i_bits/o_bits already hold every timestep; outer: weights that do
        # not fit come again each timestep, i_bits is one timestep's and o_bits all of them.)
        if not self.sop:
            w_steps = np.where(w_bits <= buf_w, 1.0, steps)
            dram_bits = dram_w * w_steps + (dram_i + o_bits) * steps
        elif outer:
            dram_bits = dram_w * np.where(w_bits <= buf_w, 1.0, steps) + dram_i * steps + o_bits
        else:
            dram_bits = dram_w * 1.0 + (dram_i + o_bits) * 1.0
        # Membrane potentials live in their buffer when they fit, else go to DRAM.
        mem_bits = np.where(geo.neuron, geo.elems, 0.0) * self.mb
        mem_on_chip = mem_bits <= self.membrane_kb * kib
        if self.sop:  # inner: tile-resident or in the LIF units' registers, never spilled; outer: the
            mem_on_chip = ~sop["spilled"]  # layer's membranes in their buffer when they fit (sop_traffic)
        dram_bits = dram_bits + np.where(mem_on_chip, 0, 2 * mem_bits * steps)
        membrane = np.where(mem_on_chip, mem_bits * (self.e_sram_r + self.e_sram_w), 0)
        e_neuron = np.where(geo.neuron, geo.elems * self.e_neuron_op + membrane, 0.0) * steps
        if sop is not None:
            e_neuron = sop["e_neuron"]
        return _Dram(bits=dram_bits, e_dram=dram_bits * self.e_dram, e_neuron=e_neuron, i_bits=i_bits,
                     w_bits=w_bits, o_bits=o_bits, buf_i=buf_i, buf_w=buf_w, buf_o=buf_o)

    def _latency(self, work: _Work, buf: _Buffers, dram: _Dram, folds: np.ndarray,
                 utilization: bool) -> dict[str, np.ndarray]:
        """Cycles and latency, and the per-layer results of :meth:`_layer_costs`; ``folds``: the
        array's folds (or passes) of each layer, what a tile is when the template's
        ``bandwidth.exposed`` is ``fold``."""
        # Latency: the buffers are double buffered, so DRAM and NoC transfers overlap compute
        # and a layer takes the longest of the three (MAESTRO's max(ingress, compute, egress)).
        bpc = self.dram_bpc
        dram_cycles = np.ceil(dram.bits / 8.0 / bpc)
        # Double buffering hides every transfer but the first tile's load and the last tile's
        # store (MAESTRO: the first ingress and the last egress are exposed). A tile is half a
        # buffer (the other half is being filled) or the whole operand when it is smaller; with
        # fold tiles (bandwidth.exposed: fold), at most one fold's share of the operand.
        i_tile, w_tile, o_tile = dram.buf_i / 2, dram.buf_w / 2, dram.buf_o / 2
        if self.fold_tiles:
            n = np.maximum(folds, 1)
            i_tile, w_tile, o_tile = (np.minimum(t, b / n) for t, b in
                                      ((i_tile, dram.i_bits), (w_tile, dram.w_bits), (o_tile, dram.o_bits)))
        exposed = (np.minimum(dram.i_bits, i_tile) + np.minimum(dram.w_bits, w_tile)
                   + np.minimum(dram.o_bits, o_tile))
        fill_cycles = np.ceil(exposed / 8.0 / bpc)
        cycles = work.cycles
        total_cycles = np.maximum(cycles + fill_cycles, dram_cycles)
        if self.noc_bpc is not None:
            total_cycles = np.maximum(total_cycles, np.ceil(buf.noc_bits / 8.0 / self.noc_bpc))
        pes = self.rows * self.cols
        busy = work.busy
        return {
            "cycles": total_cycles,
            "compute_cycles": cycles,
            "latency_s": total_cycles / self.clock_hz,
            "energy_compute": work.e_compute, "energy_register": buf.e_register, "energy_noc": buf.e_noc,
            "energy_sram": buf.e_sram, "energy_dram": dram.e_dram, "energy_neuron": dram.e_neuron,
            "utilization": (np.where(total_cycles > 0, busy / np.maximum(total_cycles * pes, 1), 0.0)
                            if utilization else None),
            "busy": np.asarray(busy, dtype=np.float64),
            "macs": np.asarray(work.macs, dtype=np.float64),
            "ops": np.asarray(work.ops, dtype=np.float64),
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
