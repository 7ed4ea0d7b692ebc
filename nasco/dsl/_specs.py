"""The spec objects of the DSL: architecture spaces, accelerator templates, energy tables."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from nasco.dsl._build import spec_field as F
from nasco.dsl._choice import Choice
from nasco.dsl._errors import SpecError, close_matches, shown
from nasco.dsl._units import UNITS, parse_quantity
from nasco.dsl._vocab import OPS

__all__ = [
    "SCHEMA_VERSION", "StemSpec", "MacroSpec", "CellSpec", "NeuronSpec", "TrainingSpec",
    "ArchSpace", "PEArraySpec", "PESpec", "RFSpec", "BufferSpec", "BandwidthSpec", "BitsSpec", "SpikesSpec",
    "Constraint",
    "AcceleratorTemplate", "Constant", "EnergyTable",
]

SCHEMA_VERSION = 1

NEURONS = ("lif", "plif")
PLACEMENTS = ("pre_op", "post_node", "spike_native")  # see NeuronSpec.placement
# Surrogate gradients that spikingjelly.activation_based.surrogate provides.
SURROGATES = ("atan", "sigmoid", "piecewise_quadratic", "soft_sign", "erf")


def _options(value):
    return value.options if isinstance(value, Choice) else (value,)


@dataclass(frozen=True, kw_only=True)
class StemSpec:
    kernel: int = F(3, doc="stem conv kernel", min=1, max=11)
    channels: int | Choice = F(doc="base channel count C", min=1, max=4096, searchable=True)
    multiplier: int = F(1, doc="stem channels = multiplier * C", min=1, max=8)


@dataclass(frozen=True, kw_only=True)
class MacroSpec:
    stem: StemSpec = F(doc="the stem conv")
    cells: int | Choice = F(doc="number of cell positions", min=1, max=64, searchable=True)
    reductions: tuple[int, ...] = F((), doc="cell positions that halve the resolution", min=0)
    reduction: str = F("cell", doc="what sits at a reduction position", enum=("cell", "resblock"))
    channel_multiplier: int = F(2, doc="channel growth at each reduction", min=1, max=4)

    def _check(self, path: tuple) -> None:
        red = self.reductions
        if list(red) != sorted(set(red)):
            raise SpecError("strictly increasing reduction positions", list(red),
                            path=path + ("reductions",), hint="sort them and drop repeats")
        smallest = min(_options(self.cells))
        if red and red[-1] >= smallest:
            raise SpecError(
                f"reduction positions below the smallest cell count ({smallest})", list(red),
                path=path + ("reductions",),
                hint=f"positions are 0..{smallest - 1}; lower them or raise 'cells'",
            )
        if len(red) >= smallest:
            raise SpecError("at least one normal cell", f"{len(red)} reductions in {smallest} cells",
                            path=path + ("reductions",))


@dataclass(frozen=True, kw_only=True)
class CellSpec:
    type: str = F(doc="cell family", enum=("darts", "dense"))
    nodes: int = F(doc="intermediate nodes", min=1, max=12)
    ops: tuple[str, ...] = F(doc="the op vocabulary of the cell edges")
    edges_per_node: int | None = F(None, doc="inputs kept per node (darts cells)", min=1)
    pool_bn: bool = F(False, doc="a BatchNorm after each pooling edge op, so that a pool's output is "
                                 "normalised like a conv op's (DARTS's search-time mixed op has one)")

    def _check(self, path: tuple) -> None:
        if not self.ops:
            raise SpecError("at least one op", "an empty list", path=path + ("ops",))
        for i, op in enumerate(self.ops):
            if op not in OPS:
                raise SpecError("an op of the vocabulary (" + ", ".join(OPS) + ")", f"'{op}'",
                                path=path + ("ops", i), hint=close_matches(op, OPS))
        for i, op in enumerate(self.ops):
            if op in self.ops[:i]:
                raise SpecError("distinct ops", f"'{op}' again", path=path + ("ops", i),
                                hint=f"it is already ops[{self.ops.index(op)}]; remove the repeat")
        if self.type == "darts":
            if self.edges_per_node is None:
                raise SpecError("edges_per_node for a darts cell", "it missing",
                                path=path + ("edges_per_node",), hint="DARTS keeps 2")
            if self.edges_per_node > 2:
                raise SpecError("edges_per_node <= 2 (the first node sees only the two cell inputs)",
                                self.edges_per_node, path=path + ("edges_per_node",))
            if all(o == "none" for o in self.ops):
                raise SpecError("an op other than 'none'", list(self.ops), path=path + ("ops",))
        elif self.edges_per_node is not None:
            raise SpecError("no edges_per_node for a dense cell (every edge carries an op)",
                            self.edges_per_node, path=path + ("edges_per_node",))


@dataclass(frozen=True, kw_only=True)
class NeuronSpec:
    type: str | Choice = F("lif", doc="spiking neuron model", enum=NEURONS, searchable=True)
    tau: float | Choice = F(2.0, doc="membrane time constant", gt=1.0, searchable=True)
    v_threshold: float | Choice = F(1.0, doc="firing threshold", gt=0.0, searchable=True)
    v_reset: float | None = F(0.0, doc="hard-reset value; null for soft reset")
    surrogate: str | Choice = F("atan", doc="surrogate gradient", enum=SURROGATES, searchable=True)
    surrogate_alpha: float = F(2.0, doc="surrogate sharpness", gt=0.0)
    detach_reset: bool = F(True, doc="detach the reset from the graph")
    # pre_op: a neuron before every conv inside each op; post_node: a neuron after each cell
    # node's sum; spike_native: post_node plus a neuron after each preprocessing conv and at
    # the end of each op whose output is not already spikes, so that every tensor a layer reads
    # from memory (the stem's image aside) is a spike map (see nasco.nn.plan_network).
    placement: str | Choice = F("pre_op", doc="where neurons sit (the cell's spike wiring)",
                                enum=PLACEMENTS, searchable=True)


@dataclass(frozen=True, kw_only=True)
class TrainingSpec:
    epochs: int | Choice = F(3, doc="training epochs per candidate", min=1, max=10000, searchable=True)
    batch_size: int = F(64, min=1, max=65536)
    lr: float = F(0.05, min=1e-10, max=100.0,
                  why="a step below 1e-10 cannot move a float32 weight (their spacing near 0.01 is 9.3e-10); "
                      "one above 100 is a slip of the exponent")
    optimizer: str = F("sgd", enum=("sgd", "adam"))
    weight_decay: float = F(5e-4, min=0.0)
    # Spiking spaces: the loss adds spike_penalty x the mean firing rate of the network's
    # neurons (nasco.evaluate.train_and_evaluate), trading accuracy for fewer spikes. Searchable
    # (--set 'training.spike_penalty={choice: [0.0, 1.0, 4.0]}'). ANNs have no neurons to penalise.
    spike_penalty: float | Choice = F(0.0, doc="loss weight of the mean firing rate", min=0.0, max=1000.0,
                                      searchable=True)


@dataclass(frozen=True, kw_only=True)
class ArchSpace:
    """A cell-based architecture space (ANN or spiking)."""

    schema: int = F(doc="DSL schema version")
    kind: str = F(doc="file kind", enum=("arch_space",))
    name: str = F(doc="space name")
    description: str = F("", doc="one line for 'nasco spaces'")
    macro: MacroSpec = F(doc="the macro skeleton")
    cell: CellSpec = F(doc="the searched cell")
    neuron: NeuronSpec | None = F(None, doc="spiking neuron; absent for ANNs")
    timesteps: int | Choice | None = F(None, doc="SNN timesteps", min=1, max=64, searchable=True)
    # direct: the image at every timestep; rate: Bernoulli spikes of it; events: event-camera
    # frames (B, T, C, H, W) from tonic data, one per timestep (see nasco.evaluate.load_dataset)
    encoding: str = F("direct", doc="SNN input encoding", enum=("direct", "rate", "events"))
    official_index: str | None = F(None, doc="table mapping cells to official indices")
    training: TrainingSpec = F(TrainingSpec(), doc="training budget per candidate")

    @property
    def spiking(self) -> bool:
        return self.neuron is not None

    def _check(self, path: tuple) -> None:
        if self.neuron is not None and self.timesteps is None:
            raise SpecError("timesteps for a spiking space", "it missing", path=path + ("timesteps",),
                            hint="add e.g. 'timesteps: {choice: [2, 4]}'")
        if self.neuron is None and self.timesteps is not None:
            found = self.timesteps.to_data() if isinstance(self.timesteps, Choice) else self.timesteps
            raise SpecError("no timesteps without a neuron section", found,
                            path=path + ("timesteps",), hint="add 'neuron:' or drop 'timesteps'")
        if self.macro.reduction == "resblock" and self.cell.type == "darts":
            raise SpecError("reduction: cell for darts cells", "'resblock'",
                            path=path + ("macro", "reduction"))


# ------------------------------------------------------------------ accelerators
DATAFLOWS = ("os", "ws", "is", "rs")
PE_TYPES = ("mac", "sop")
TIMESTEP_LOOPS = ("inner", "outer")
# The loop dimensions of a (grouped) conv a loop-unrolled array can spread over its PEs: ZigZag's
# names (K output channels, C input channels, OX/OY output columns/rows, FX/FY filter
# columns/rows, G groups).
UNROLL_DIMS = ("K", "C", "OX", "OY", "FX", "FY", "G")
# What a double-buffered tile is (BandwidthSpec.exposed).
EXPOSED_TILES = ("buffer", "fold")
SPIKE_FORMATS = ("dense", "aer", "bitmap_rle")

# Physical ranges of the template's numbers. Each is wide enough for any real design and
# keeps the cost model's arithmetic finite: a clock of 1e-320 MHz or a bandwidth of 1e-300
# bytes/cycle would give infinite latencies.
_WHY_CLOCK = ("a clock of 1 kHz to 100 GHz: no digital accelerator runs slower, CMOS logic tops out near "
              "10 GHz")
_WHY_BUFFER = ("at least a byte and at most 64 GiB: more SRAM than the largest chip holds "
               "(Cerebras WSE-3, 44 GB on a wafer)")
_WHY_DRAM = ("1e-3 to 1e6 bytes/cycle: a 16-bit LPDDR channel (0.4 GB/s) at 100 GHz still gives 4e-3; "
             "eight HBM3e stacks (10 TB/s) at 10 MHz give 1e6")
_WHY_ARRAY = "1 to 4096 PEs a side: 16.7 million PEs, 256 times the TPU v1's 256 x 256 array"
_WHY_RF = "1 to 65,536 words a PE: Eyeriss's scratchpads hold 12 to 224"
_WHY_BITS = "1 to 64 bits: from spikes to the widest integer and float datapaths"
_WHY_NOC = ("1e-3 to 1e9 bytes/cycle: every PE of a 4096 x 4096 array fed a 64-bit word per cycle "
            "takes 1.3e8")


@dataclass(frozen=True, kw_only=True)
class PEArraySpec:
    """The PE array: ``rows`` x ``cols`` PEs.

    ``unroll`` (optional) makes it a loop-unrolled array, as ZigZag's spatial mappings and
    Timeloop's spatial factors describe one: the loop dimensions of a conv spread across the PEs,
    each over a fixed number of them (K output channels, C input channels, OX/OY output columns
    and rows, FX/FY filter columns and rows, G groups), whose product is the PE count. The array
    then takes one cycle per iteration of the loops left in time (:func:`nasco.hw.unrolled_cycles`)
    and has no systolic fill or drain; the dataflow still says which operand stays in the PEs
    and so what each level of the memory hierarchy moves. Without it the array is a systolic
    array of SCALE-Sim's kind (the dataflow's fold arithmetic, :mod:`nasco.hw._systolic`).
    """

    rows: int | Choice = F(doc="PE rows", min=1, max=4096, why=_WHY_ARRAY, searchable=True)
    cols: int | Choice = F(doc="PE columns", min=1, max=4096, why=_WHY_ARRAY, searchable=True)
    unroll: dict[str, int] | None = F(None, doc="loop dimension -> PEs it spreads over (a loop-unrolled "
                                      "array; K, C, OX, OY, FX, FY, G)", min=1, max=4096 * 4096,
                                      why="at most the largest array's PE count")


@dataclass(frozen=True, kw_only=True)
class PESpec:
    """What one PE computes.

    ``mac``: a multiplier and an accumulator (every ANN accelerator). ``sop``: a spiking PE,
    an AND gate that lets a weight through when its input spiked and an adder that
    accumulates it into the membrane (SATA, Yin et al., TCAD 2022); non-binary inputs (a
    directly encoded first layer) run bit-serially, one bit plane per pass.

    ``timestep_loop`` (sop PEs) orders a spiking layer's loops. ``inner``: all T timesteps of
    a tile (one fold of the array) run while its weights and membranes stay on chip, as in
    SATA; the tile's input spike maps of all T timesteps must fit the ifmap buffer. ``outer``:
    the layer runs one timestep at a time over all its tiles; weights that do not fit their
    buffer come from DRAM again each timestep, and the whole layer's membranes wait in the
    membrane buffer between timesteps, or go to DRAM and back when they do not fit. The
    costs and the tiling rules are in :mod:`nasco.hw._sop`. MAC PEs ignore the key (their
    spiking layers already run timestep by timestep, the outer order); a template whose PEs
    can only be ``mac`` may not ask for ``outer``.
    """

    type: str | Choice = F("mac", doc="PE kind", enum=PE_TYPES, searchable=True)
    skip_zero_spikes: bool | Choice = F(
        False, doc="sop PEs: zero spikes skip cycles (true) or only gate energy", searchable=True)
    timestep_loop: str | Choice = F(
        "inner", enum=TIMESTEP_LOOPS, searchable=True,
        doc="sop PEs: timesteps innermost over each tile (inner) or outermost over the layer (outer)")

    def _check(self, path: tuple) -> None:
        if "sop" not in _options(self.type) and "outer" in _options(self.timestep_loop):
            raise SpecError("timestep_loop 'inner' (the default) on MAC PEs: the loop order is a choice of "
                            "spiking (sop) PEs", "'outer' among the options", path=path + ("timestep_loop",),
                            hint="drop timestep_loop, or offer pe.type sop")


@dataclass(frozen=True, kw_only=True)
class SpikesSpec:
    """How spike maps are stored in the buffers and moved over the NoC and to and from DRAM.

    ``dense``: one bit per neuron per timestep, spiked or not. ``aer``: address events, one
    ``address_bits`` word per spike and nothing for a silent neuron. ``bitmap_rle``: the
    bitmap run-length coded as in Eyeriss's RLC, one ``run_bits``-bit zero run and a 1-bit
    level per code. The cost model's formulas are in :mod:`nasco.hw._spikes`. Only the
    traffic of spike maps changes: a PE still sees its input as a bit per MAC position.
    """

    format: str | Choice = F("dense", doc="spike-map encoding in buffers, NoC and DRAM", enum=SPIKE_FORMATS,
                             searchable=True)
    address_bits: int | Choice | None = F(
        None, doc="aer: bits per event; null: the fewest that name every neuron of the map, per map",
        min=1, max=64, why=_WHY_BITS, searchable=True)
    run_bits: int | Choice = F(5, doc="bitmap_rle: bits of a zero-run field (Eyeriss's RLC: 5)",
                               min=1, max=16,
                               why="1 to 16 bits: runs of up to 65,535 zeros; Eyeriss's RLC uses 5",
                               searchable=True)


@dataclass(frozen=True, kw_only=True)
class RFSpec:
    """Register files inside each PE, in words (Eyeriss: 12 ifmap, 224 filter, 24 psum)."""

    ifmap_words: int | Choice = F(doc="ifmap scratchpad per PE", min=1, max=65536, why=_WHY_RF,
                                  searchable=True)
    filter_words: int | Choice = F(doc="filter scratchpad per PE", min=1, max=65536, why=_WHY_RF,
                                   searchable=True)
    psum_words: int | Choice = F(doc="psum scratchpad per PE", min=1, max=65536, why=_WHY_RF,
                                 searchable=True)


@dataclass(frozen=True, kw_only=True)
class BufferSpec:
    ifmap_kb: float | Choice = F(doc="ifmap SRAM (KiB)", min=0.001, max=67_108_864, why=_WHY_BUFFER,
                                 searchable=True)
    filter_kb: float | Choice = F(doc="filter SRAM (KiB)", min=0.001, max=67_108_864, why=_WHY_BUFFER,
                                  searchable=True)
    ofmap_kb: float | Choice = F(doc="ofmap SRAM (KiB)", min=0.001, max=67_108_864, why=_WHY_BUFFER,
                                 searchable=True)
    membrane_kb: float | Choice | None = F(
        None, doc="membrane SRAM (KiB) of sop PEs; null: in the ofmap SRAM", min=0.001, max=67_108_864,
        why=_WHY_BUFFER, searchable=True)


@dataclass(frozen=True, kw_only=True)
class BandwidthSpec:
    """How fast data moves, and how much of it latency cannot hide.

    Every buffer is double buffered: while the array works on one tile of an operand, the
    next comes from DRAM, so a layer takes the longest of its compute and its DRAM transfers,
    plus what no double buffer hides, the first tile's load and the last tile's store.
    ``exposed`` says what a tile is. ``buffer``: half of the operand's buffer (the other half
    is being filled), or the whole operand when it is smaller, as in SCALE-Sim's up-front
    prefetch and MAESTRO's first ingress and last egress. ``fold``: one fold of the array's
    share of each operand (the layer's words over its folds, or row-stationary passes): a
    transfer engine that streams fold by fold, as ZigZag charges the data one temporal
    iteration needs before it starts.
    """

    dram_bytes_per_cycle: float | Choice = F(doc="DRAM bandwidth", min=1e-3, max=1e6, why=_WHY_DRAM,
                                             searchable=True)
    exposed: str = F("buffer", doc="the tile whose first load and last store latency exposes: buffer or fold",
                     enum=EXPOSED_TILES)
    noc_bytes_per_cycle: float | Choice | None = F(
        None, doc="buffer <-> PE network bandwidth; null: never the bottleneck", min=1e-3, max=1e9,
        why=_WHY_NOC, searchable=True)


@dataclass(frozen=True, kw_only=True)
class BitsSpec:
    weight: int | Choice = F(8, min=1, max=64, why=_WHY_BITS, searchable=True)
    activation: int | Choice = F(8, min=1, max=64, why=_WHY_BITS, searchable=True)
    accumulator: int = F(32, min=1, max=64, why=_WHY_BITS)
    membrane: int | Choice = F(16, doc="membrane potential width of spiking layers", min=1, max=64,
                               why=_WHY_BITS, searchable=True)


@dataclass(frozen=True, kw_only=True)
class Constraint:
    max: str = F(doc="upper limit with a unit, e.g. '2 ms'",
                 hint="quote the number and its unit: \"2 ms\"")


# The least spec (base units) a design could meet; below it a spec is a unit or exponent slip.
SPEC_FLOORS: dict[str, tuple[float, str]] = {
    "latency": (1e-11, "10 ps: one cycle of the fastest clock a template may declare (100 GHz)"),
    # Horowitz, ISSCC 2014 (45 nm): an 8-bit add takes 0.03 pJ, the cheapest operation listed.
    "energy": (1e-15, "1 fJ: below a single 8-bit add (0.03 pJ at 45 nm)"),
    # Horowitz, ISSCC 2014 (45 nm): an 8-bit adder takes 36 um2.
    "area": (1e-6, "1 um2: smaller than a single 8-bit adder (36 um2 at 45 nm)"),
    "power": (1e-9, "1 nW: a spec in W, mW or uW below a nanowatt is a slip of the unit or exponent"),
}


def _check_specs(specs: dict[str, Constraint] | None, path: tuple) -> None:
    for metric, c in (specs or {}).items():
        if metric not in UNITS:
            raise SpecError("a spec on " + ", ".join(UNITS), f"'{metric}'",
                            path=path + ("specs", metric), hint=close_matches(metric, UNITS))
        value = parse_quantity(c.max, metric, path + ("specs", metric, "max"))
        floor, why = SPEC_FLOORS[metric]
        if not value >= floor:  # NaN fails too
            raise SpecError(f"a spec of at least {why}", shown(c.max),
                            path=path + ("specs", metric, "max"), hint="check the unit and the exponent")


def _limits(specs: dict[str, Constraint] | None) -> dict[str, float]:
    return {m: parse_quantity(c.max, m, ("specs", m, "max")) for m, c in (specs or {}).items()}


@dataclass(frozen=True, kw_only=True)
class AcceleratorTemplate:
    """A parameterised accelerator (a PE array with buffers) plus its design specs."""

    schema: int = F(doc="DSL schema version")
    kind: str = F(doc="file kind", enum=("accelerator",))
    name: str = F()
    description: str = F("")
    dataflow: str | Choice = F(doc="dataflow: os, ws, is (systolic) or rs (row stationary)", enum=DATAFLOWS,
                               searchable=True)
    pe_array: PEArraySpec = F()
    pe: PESpec = F(PESpec(), doc="what one PE computes")
    rf: RFSpec | None = F(None, doc="register files per PE (needed by rs)")
    buffers: BufferSpec = F()
    bandwidth: BandwidthSpec = F()
    clock_mhz: float | Choice = F(doc="clock frequency (MHz)", min=1e-3, max=1e5, why=_WHY_CLOCK,
                                  searchable=True)
    bits: BitsSpec = F(BitsSpec())
    spikes: SpikesSpec = F(SpikesSpec(), doc="how spike maps are stored and moved")
    technology: str = F(doc="name or path of an energy_table file")
    specs: dict[str, Constraint] | None = F(None, doc="design specs (latency, energy, area, power)")

    def _check(self, path: tuple) -> None:
        _check_specs(self.specs, path)
        if "rs" in _options(self.dataflow) and self.rf is None:
            raise SpecError("an 'rf:' section for the row-stationary dataflow", "it missing",
                            path=path + ("rf",),
                            hint="Eyeriss: rf: {ifmap_words: 12, filter_words: 224, psum_words: 24}")
        if ("os" in _options(self.dataflow) and 1 in _options(self.pe_array.rows)
                and 1 in _options(self.pe_array.cols)):
            # SCALE-Sim's fold of F * (T + R + C - 2) - 1 cycles is then a cycle short of the T
            # MACs a fold's single PE does, so repeated folds would beat one MAC per cycle.
            raise SpecError("an output-stationary array of at least 2 PEs (rows + cols >= 3)",
                            "rows 1 and cols 1 among the options", path=path + ("pe_array",),
                            hint="allow at least 2 rows or 2 columns, or pick ws or is for a single PE")
        self._check_unroll(path + ("pe_array", "unroll"))
        if "sop" in _options(self.pe.type) and "rs" in _options(self.dataflow):
            raise SpecError("a systolic dataflow (os, ws, is) for sop PEs", "'rs'", path=path + ("dataflow",),
                            hint="spiking PEs are modelled on systolic arrays (SATA)")
        self._check_tiles(path)

    def _check_unroll(self, path: tuple) -> None:
        """A loop-unrolled array names only conv loop dimensions, spreads them over exactly its
        PEs for every choice of rows and cols, and has MAC PEs on a systolic dataflow (the
        row-stationary and spiking PEs' models count their own folds)."""
        unroll = self.pe_array.unroll
        if unroll is None:
            return
        for dim in unroll:
            if dim not in UNROLL_DIMS:
                raise SpecError(f"a loop dimension, one of {', '.join(UNROLL_DIMS)}", f"'{dim}'",
                                path=path + (dim,), hint=close_matches(dim, UNROLL_DIMS))
        if not unroll:
            raise SpecError("at least one loop dimension", "an empty mapping", path=path,
                            hint="e.g. unroll: {K: 32, C: 32}, or remove the key for a systolic array")
        pes = math.prod(unroll.values())
        for rows in _options(self.pe_array.rows):
            for cols in _options(self.pe_array.cols):
                if rows * cols != pes:
                    found = " x ".join(f"{d} {n}" for d, n in unroll.items())
                    raise SpecError(f"unrolled dimensions whose product is the {rows}x{cols} = {rows * cols} "
                                    f"PEs", f"{found} = {pes}", path=path,
                                    hint="make the factors multiply to rows x cols")
        if "rs" in _options(self.dataflow):
            raise SpecError("a systolic dataflow (os, ws, is) for an unrolled array", "'rs'",
                            path=path[:-2] + ("dataflow",),
                            hint="the row-stationary model maps its own loops; remove pe_array.unroll")
        if "sop" in _options(self.pe.type):
            raise SpecError("mac PEs for an unrolled array", "sop among the options",
                            path=path[:-2] + ("pe", "type"),
                            hint="spiking PEs are modelled on systolic arrays (SATA); remove pe_array.unroll")

    def _check_tiles(self, path: tuple) -> None:
        """Every buffer must hold what one fold of the array keeps in it; checked for every
        combination of choices, so that no candidate of the template is impossible."""
        kib = 8 * 1024
        b, bits = self.buffers, self.bits
        for rows in _options(self.pe_array.rows):
            for cols in _options(self.pe_array.cols):
                fold = rows * cols
                need = [("filter_kb", max(_options(bits.weight)), "ws", "one fold of stationary weights"),
                        ("ifmap_kb", max(_options(bits.activation)), "is", "one fold of stationary inputs"),
                        ("ofmap_kb", bits.accumulator, "os", "one fold of stationary partial sums")]
                for key, width, flow, what in need:
                    if flow not in _options(self.dataflow):
                        continue
                    kb = min(_options(getattr(b, key)))
                    if kb * kib < fold * width:
                        raise SpecError(
                            f"{key} >= {fold * width / kib:g} KiB ({what}: {rows}x{cols} PEs x {width} bits)",
                            f"{kb:g}", path=path + ("buffers", key),
                            hint="enlarge the buffer or shrink the PE array")
                if b.membrane_kb is not None:
                    kb = min(_options(b.membrane_kb))
                    mb = max(_options(bits.membrane))
                    if kb * kib < fold * mb:
                        raise SpecError(
                            f"membrane_kb >= {fold * mb / kib:g} KiB (one membrane per PE output of a "
                            f"fold: {rows}x{cols} x {mb} bits)", f"{kb:g}",
                            path=path + ("buffers", "membrane_kb"), hint="enlarge it or shrink the PE array")

    def limits(self) -> dict[str, float]:
        """Design specs in base units (s, J, mm2, W)."""
        return _limits(self.specs)


# ------------------------------------------------------------------ technology
_WIDTH_KEY = re.compile(r"^(mac|mult|add)_(\d+)b$")

# Ceilings on one entry of an energy table, in base units: they catch a wrong unit or exponent
# before it turns into absurd or infinite costs. Horowitz (ISSCC 2014, 45 nm) puts the costliest
# operation, a 64-bit DRAM access, at 1.3-2.6 nJ (about 40 pJ a bit) and the largest unit, a
# 32-bit float multiplier, at 7,700 um2: a microjoule and a square millimetre are far above both.
MAX_ENTRY_ENERGY_J = 1e-6
MAX_ENTRY_AREA_MM2 = 1.0
# The floor of a non-zero energy entry: Landauer's bound kT ln 2 at 300 K (R. Landauer, "Irreversibility
# and heat generation in the computing process", IBM J. Res. Dev. 5(3), 1961), 1.380649e-23 J/K x 300 K x
# ln 2 = 2.87e-21 J. A value below it is a unit or exponent slip.
MIN_ENTRY_ENERGY_J = 1.380649e-23 * 300 * math.log(2)


@dataclass(frozen=True, kw_only=True)
class Constant:
    value: float = F(doc="the number", min=0.0)
    unit: str = F(doc="its unit ('MAC': a multiple of the table's mac_reference)")
    source: str = F(doc="where the number comes from")

    def _check(self, path: tuple) -> None:
        known = {u for q in ("energy", "area") for u in UNITS[q]} | {"MAC"}
        if self.unit not in known:
            raise SpecError("an energy or area unit (" + ", ".join(sorted(known)) + ")",
                            f"'{self.unit}'", path=path + ("unit",), hint=close_matches(self.unit, known))
        if not self.source.strip():
            raise SpecError("a source for the constant", "an empty string", path=path + ("source",))


@dataclass(frozen=True, kw_only=True)
class EnergyTable:
    """Per-operation energies and areas at one technology node, each with its source.

    Arithmetic entries are named by width (``mac_8b``, ``mac_16b``, ``add_32b``); the cost
    model scales the nearest one to the template's widths. Memory entries are per bit:
    ``register_bit`` (PE registers and register files; ``rf_ifmap_bit``, ``rf_filter_bit``,
    ``rf_psum_bit`` override it per operand), ``sram_read_bit`` / ``sram_write_bit``
    (buffers), ``noc_bit`` (buffer <-> PE network; optional), ``dram_bit``. A table of
    relative costs (Eyeriss's) gives its entries in unit ``MAC`` and anchors them with
    ``mac_reference``.
    """

    schema: int = F()
    kind: str = F(enum=("energy_table",))
    name: str = F()
    description: str = F("")
    node_nm: int = F(doc="technology node", min=1)
    mac_reference: Constant | None = F(None, doc="absolute energy of 1 MAC for entries in unit 'MAC'")
    energy: dict[str, Constant] = F(doc="per-access/per-op energies")
    area: dict[str, Constant] = F(doc="per-unit areas")

    REQUIRED_ENERGY = ("sram_read_bit", "sram_write_bit", "dram_bit", "register_bit")
    REQUIRED_AREA = ("sram_bit", "register_bit")
    OPTIONAL_ENERGY = ("noc_bit", "rf_ifmap_bit", "rf_filter_bit", "rf_psum_bit", "and_gate")
    # Arithmetic families: one entry of each at some width is required.
    REQUIRED_ENERGY_FAMILIES = ("mac", "add")
    REQUIRED_AREA_FAMILIES = ("mac", "add")

    def _check(self, path: tuple) -> None:
        for section, needed, families, qty, other in (
                ("energy", self.REQUIRED_ENERGY, self.REQUIRED_ENERGY_FAMILIES, "energy", "area"),
                ("area", self.REQUIRED_AREA, self.REQUIRED_AREA_FAMILIES, "area", "energy")):
            table = getattr(self, section)
            for key in needed:
                if key not in table:
                    raise SpecError(f"an entry '{key}'", "it missing", path=path + (section, key),
                                    hint="entries: " + ", ".join(needed) + " and "
                                    + ", ".join(f"{f}_<bits>b" for f in families))
            for fam in families:
                if not any((m := _WIDTH_KEY.match(k)) and m.group(1) == fam for k in table):
                    raise SpecError(f"an entry '{fam}_<bits>b' (e.g. {fam}_8b)", "none",
                                    path=path + (section,), hint=f"add {fam}_8b with its source")
            for key, c in table.items():
                units = UNITS[qty] if not (qty == "energy" and c.unit == "MAC") else {"MAC": 1.0}
                if c.unit not in units:
                    raise SpecError(f"an {qty} unit (" + ", ".join(UNITS[qty]) + ")", f"'{c.unit}'",
                                    path=path + (section, key, "unit"),
                                    hint=f"'{c.unit}' is an {other} unit; this entry is under '{section}:'")
        self._check_ceilings(path)
        uses_mac = any(c.unit == "MAC" for c in self.energy.values())
        if uses_mac and self.mac_reference is None:
            raise SpecError("a 'mac_reference' for entries in unit MAC", "it missing",
                            path=path + ("mac_reference",),
                            hint="mac_reference: {value: 0.208, unit: pJ, source: ...}")
        if self.mac_reference is not None and self.mac_reference.unit not in UNITS["energy"]:
            raise SpecError("an absolute energy unit (" + ", ".join(UNITS["energy"]) + ")",
                            f"'{self.mac_reference.unit}'", path=path + ("mac_reference", "unit"))

    def _check_ceilings(self, path: tuple) -> None:
        """Every entry at most MAX_ENTRY_ENERGY_J / MAX_ENTRY_AREA_MM2 once in base units."""
        ref = self.mac_reference
        if ref is not None and ref.unit in UNITS["energy"] and ref.value * UNITS["energy"][ref.unit] > \
                MAX_ENTRY_ENERGY_J:
            raise SpecError("a mac_reference of at most 1 uJ (a 64-bit DRAM access takes 2.6 nJ)",
                            f"{ref.value:g} {ref.unit}", path=path + ("mac_reference", "value"),
                            hint="check the unit and the exponent")
        for section, ceiling, what in (("energy", MAX_ENTRY_ENERGY_J, "1 uJ per op or bit (a 64-bit DRAM "
                                        "access takes 2.6 nJ)"),
                                       ("area", MAX_ENTRY_AREA_MM2, "1 mm2 per unit (a 32-bit float "
                                        "multiplier takes 0.0077 mm2)")):
            for key, c in getattr(self, section).items():
                if c.unit == "MAC" and section == "energy":
                    if ref is None or ref.unit not in UNITS["energy"]:
                        continue  # the missing or bad reference is reported below
                    base = c.value * ref.value * UNITS["energy"][ref.unit]
                elif c.unit in UNITS[section]:
                    base = c.value * UNITS[section][c.unit]
                else:
                    continue  # a unit of the wrong kind: reported above
                if base > ceiling:
                    raise SpecError(f"at most {what}", f"{c.value:g} {c.unit}",
                                    path=path + (section, key, "value"),
                                    hint="check the unit and the exponent")
                # c.value, not base, tells zero apart: base may underflow to 0.
                if section == "energy" and c.value > 0 and base < MIN_ENTRY_ENERGY_J:
                    raise SpecError("zero or at least 2.87e-21 J (kT ln 2 at 300 K, the least energy "
                                    "erasing a bit dissipates)", f"{c.value:g} {c.unit}",
                                    path=path + (section, key, "value"),
                                    hint="check the unit and the exponent")

    def energy_j(self, key: str) -> float:
        c = self.energy[key]
        if c.unit == "MAC":
            ref = self.mac_reference
            return c.value * ref.value * UNITS["energy"][ref.unit]
        return c.value * UNITS["energy"][c.unit]

    def area_mm2(self, key: str) -> float:
        c = self.area[key]
        return c.value * UNITS["area"][c.unit]

    def widths(self, family: str, section: str = "energy") -> dict[int, str]:
        """Bit width -> key of the entries of one arithmetic family (mac, mult, add)."""
        out = {}
        for key in getattr(self, section):
            m = _WIDTH_KEY.match(key)
            if m and m.group(1) == family:
                out[int(m.group(2))] = key
        return out

    def scaled(self, family: str, bits_a: int, bits_b: int | None = None, section: str = "energy") -> float:
        """Energy (J) or area (mm2) of one ``family`` op on operands of the given widths.

        Takes the entry of the nearest width n and scales it: multipliers (mac, mult) by
        (a * b) / n^2, adders by a / n, as array multipliers and ripple adders grow
        (Horowitz, ISSCC 2014: 8b -> 32b mult 0.2 -> 3.1 pJ, add 0.03 -> 0.1 pJ).
        """
        widths = self.widths(family, section)
        if not widths:
            raise KeyError(f"{self.name}: no {family}_<bits>b entry")
        b = bits_a if bits_b is None else max(bits_a, bits_b)
        n = min(widths, key=lambda w: (abs(w - b), -w))
        get = self.energy_j if section == "energy" else self.area_mm2
        base = get(widths[n])
        if family in ("mac", "mult"):
            return base * bits_a * (bits_a if bits_b is None else bits_b) / (n * n)
        return base * bits_a / n
