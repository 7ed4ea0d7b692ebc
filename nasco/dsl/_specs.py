"""The spec objects of the DSL: architecture spaces, accelerator templates, energy tables."""
from __future__ import annotations

from dataclasses import dataclass

from nasco.dsl._build import spec_field as F
from nasco.dsl._choice import Choice
from nasco.dsl._errors import SpecError, close_matches
from nasco.dsl._units import UNITS, parse_quantity
from nasco.dsl._vocab import OPS

__all__ = [
    "SCHEMA_VERSION", "StemSpec", "MacroSpec", "CellSpec", "NeuronSpec", "TrainingSpec",
    "ArchSpace", "PEArraySpec", "BufferSpec", "BandwidthSpec", "BitsSpec", "Constraint",
    "AcceleratorTemplate", "Constant", "EnergyTable",
]

SCHEMA_VERSION = 1

NEURONS = ("lif", "plif")
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
    placement: str = F("pre_op", doc="where neurons sit", enum=("pre_op", "post_node"))


@dataclass(frozen=True, kw_only=True)
class TrainingSpec:
    epochs: int | Choice = F(3, doc="training epochs per candidate", min=1, max=10000, searchable=True)
    batch_size: int = F(64, min=1, max=65536)
    lr: float = F(0.05, gt=0.0)
    optimizer: str = F("sgd", enum=("sgd", "adam"))
    weight_decay: float = F(5e-4, min=0.0)


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
    encoding: str = F("direct", doc="SNN input encoding", enum=("direct", "rate"))
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
@dataclass(frozen=True, kw_only=True)
class PEArraySpec:
    rows: int | Choice = F(doc="PE rows", min=1, max=4096, searchable=True)
    cols: int | Choice = F(doc="PE columns", min=1, max=4096, searchable=True)


@dataclass(frozen=True, kw_only=True)
class BufferSpec:
    ifmap_kb: float | Choice = F(doc="ifmap SRAM (KiB)", gt=0, searchable=True)
    filter_kb: float | Choice = F(doc="filter SRAM (KiB)", gt=0, searchable=True)
    ofmap_kb: float | Choice = F(doc="ofmap SRAM (KiB)", gt=0, searchable=True)


@dataclass(frozen=True, kw_only=True)
class BandwidthSpec:
    dram_bytes_per_cycle: float | Choice = F(doc="DRAM bandwidth", gt=0, searchable=True)


@dataclass(frozen=True, kw_only=True)
class BitsSpec:
    weight: int | Choice = F(8, min=1, max=64, searchable=True)
    activation: int | Choice = F(8, min=1, max=64, searchable=True)
    accumulator: int = F(32, min=1, max=64)
    membrane: int = F(16, min=1, max=64)


@dataclass(frozen=True, kw_only=True)
class Constraint:
    max: str = F(doc="upper limit with a unit, e.g. '2 ms'",
                 hint="quote the number and its unit: \"2 ms\"")


@dataclass(frozen=True, kw_only=True)
class AcceleratorTemplate:
    """A parameterised accelerator (systolic array with buffers) plus its design specs."""

    schema: int = F(doc="DSL schema version")
    kind: str = F(doc="file kind", enum=("accelerator",))
    name: str = F()
    description: str = F("")
    dataflow: str | Choice = F(doc="systolic dataflow", enum=("os", "ws", "is"), searchable=True)
    pe_array: PEArraySpec = F()
    buffers: BufferSpec = F()
    bandwidth: BandwidthSpec = F()
    clock_mhz: float | Choice = F(doc="clock frequency (MHz)", gt=0, searchable=True)
    bits: BitsSpec = F(BitsSpec())
    technology: str = F(doc="name or path of an energy_table file")
    specs: dict[str, Constraint] | None = F(None, doc="design specs (latency, energy, area, power)")

    def _check(self, path: tuple) -> None:
        for metric, c in (self.specs or {}).items():
            if metric not in UNITS:
                raise SpecError("a spec on " + ", ".join(UNITS), f"'{metric}'",
                                path=path + ("specs", metric), hint=close_matches(metric, UNITS))
            parse_quantity(c.max, metric, path + ("specs", metric, "max"))

    def limits(self) -> dict[str, float]:
        """Design specs in base units (s, J, mm2, W)."""
        return {m: parse_quantity(c.max, m, ("specs", m, "max")) for m, c in (self.specs or {}).items()}


# ------------------------------------------------------------------ technology
@dataclass(frozen=True, kw_only=True)
class Constant:
    value: float = F(doc="the number", min=0.0)
    unit: str = F(doc="its unit")
    source: str = F(doc="where the number comes from")

    def _check(self, path: tuple) -> None:
        known = {u for q in ("energy", "area") for u in UNITS[q]}
        if self.unit not in known:
            raise SpecError("an energy or area unit (" + ", ".join(sorted(known)) + ")",
                            f"'{self.unit}'", path=path + ("unit",), hint=close_matches(self.unit, known))
        if not self.source.strip():
            raise SpecError("a source for the constant", "an empty string", path=path + ("source",))


@dataclass(frozen=True, kw_only=True)
class EnergyTable:
    """Per-operation energies and areas at one technology node, each with its source."""

    schema: int = F()
    kind: str = F(enum=("energy_table",))
    name: str = F()
    description: str = F("")
    node_nm: int = F(doc="technology node", min=1)
    energy: dict[str, Constant] = F(doc="per-access/per-op energies")
    area: dict[str, Constant] = F(doc="per-unit areas")

    REQUIRED_ENERGY = ("mac_8b", "add_8b", "add_32b", "sram_read_bit", "sram_write_bit",
                       "dram_bit", "register_bit")
    REQUIRED_AREA = ("mac_8b", "add_8b", "sram_bit", "register_bit")

    def _check(self, path: tuple) -> None:
        for section, needed, qty, other in (("energy", self.REQUIRED_ENERGY, "energy", "area"),
                                            ("area", self.REQUIRED_AREA, "area", "energy")):
            table = getattr(self, section)
            for key in needed:
                if key not in table:
                    raise SpecError(f"an entry '{key}'", "it missing", path=path + (section, key),
                                    hint="entries: " + ", ".join(needed))
            for key, c in table.items():
                if c.unit not in UNITS[qty]:
                    raise SpecError(f"an {qty} unit (" + ", ".join(UNITS[qty]) + ")", f"'{c.unit}'",
                                    path=path + (section, key, "unit"),
                                    hint=f"'{c.unit}' is an {other} unit; this entry is under '{section}:'")

    def energy_j(self, key: str) -> float:
        c = self.energy[key]
        return c.value * UNITS["energy"][c.unit]

    def area_mm2(self, key: str) -> float:
        c = self.area[key]
        return c.value * UNITS["area"][c.unit]
