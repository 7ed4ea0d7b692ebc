"""Many configurations of one accelerator template costed at once, bit for bit as one by one.

Configurations that agree on every choice outside :data:`SIZED` (dataflow, array shape, PE
kind, register files, NoC) share the workload's geometry and the dataflow's core (cycles and
accesses). The choices in :data:`SIZED` (bit widths, buffer sizes, DRAM bandwidth, clock) only
scale the per-layer arithmetic, so :class:`CostModel`'s own stages run once per such group with
those fields as columns (one row per configuration) and numpy broadcasting over the layers:
each element sees the same IEEE operations, in the same order, as in
``CostModel(resolve(template, config), table).cost(workload, rates)``, and the totals are
summed per row as :meth:`CostReport.total` sums them.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nasco.dsl import AcceleratorTemplate, EnergyTable, resolve, search_dimensions
from nasco.hw._cost import (
    _NEURON,
    ENERGY_PARTS,
    MAX_CYCLES,
    CostModel,
    MappingError,
    _fill_rates,
    _rate_layers,
)
from nasco.hw._workload import Workload

__all__ = ["SIZED", "cost_configurations"]

# The template fields that configurations of one group may vary (dotted key paths): the
# keyword of CostModel._set_sizes each one sets and the conversion CostModel.__init__ applies.
SIZED: dict[str, tuple[str, Any]] = {
    "bits.weight": ("weight", int), "bits.activation": ("activation", int),
    "bits.accumulator": ("accumulator", None), "bits.membrane": ("membrane", None),
    "clock_mhz": ("clock_mhz", float), "buffers.ifmap_kb": ("ifmap_kb", float),
    "buffers.filter_kb": ("filter_kb", float), "buffers.ofmap_kb": ("ofmap_kb", float),
    "buffers.membrane_kb": ("membrane_kb", float), "bandwidth.dram_bytes_per_cycle": ("dram_bpc", float),
}


def _field(template: AcceleratorTemplate, path: str) -> Any:
    value: Any = template
    for part in path.split("."):
        value = getattr(value, part)
    return value


def _columnwise(scaled):
    """``EnergyTable.scaled`` over columns of widths: each distinct width (pair) looked up once
    with Python numbers, exactly as the scalar model looks it up."""
    cache: dict[tuple, float] = {}

    def lookup(family: str, bits_a: np.ndarray, bits_b: np.ndarray | None = None,
               section: str = "energy") -> np.ndarray:
        a = np.asarray(bits_a).ravel().tolist()
        b = [None] * len(a) if bits_b is None else np.asarray(bits_b).ravel().tolist()
        out = np.empty(len(a))
        for i, pair in enumerate(zip(a, b)):
            key = (family, section, *pair)
            if key not in cache:
                cache[key] = scaled(family, pair[0], pair[1], section=section)
            out[i] = cache[key]
        return out[:, None]

    return lookup


class _Columns(CostModel):
    """A CostModel whose :data:`SIZED` fields are columns, one row per configuration."""

    def __init__(self, template: AcceleratorTemplate, table: EnergyTable,
                 sizes: dict[str, np.ndarray | None]) -> None:
        super().__init__(template, table)
        self._scaled = _columnwise(table.scaled)
        self._set_sizes(**{SIZED[k][0]: v for k, v in sizes.items()})


def _column(values: list, convert: Any) -> np.ndarray:
    if convert is not None:
        values = [convert(v) for v in values]
    return np.array(values)[:, None]


def cost_configurations(template: AcceleratorTemplate, table: EnergyTable,
                        configs: Sequence[Mapping[str, Any]], workload: Workload,
                        spike_rates: Mapping[str, float] | None = None, default_rate: float | None = None, *,
                        unmappable: str = "raise") -> dict[str, np.ndarray]:
    """Totals of ``workload`` on every configuration of ``template`` in ``configs``.

    ``configs[k]`` maps the template's choices (dotted key paths, :func:`nasco.dsl.search_dimensions`)
    to values; a choice it leaves out takes its default. Entry ``k`` of each returned array equals
    the same key of ``CostModel(resolve(template, configs[k]), table).cost(workload, spike_rates,
    default_rate).total()`` exactly: ``cycles``, ``compute_cycles``, ``macs`` (int64), ``latency_s``,
    ``energy_j``, ``energy_<part>`` for each of :data:`ENERGY_PARTS`, ``area_mm2``, ``utilization``,
    ``ops`` (float64); ``mapped`` (bool) says which configurations the dataflow can map;
    ``tiling_excess`` (float64) equals the report's :attr:`~nasco.hw.CostReport.tiling_excess`
    (positive: a layer cannot be tiled under the configuration's timestep loop order).

    A configuration whose dataflow cannot map a layer raises :class:`MappingError` (as
    :meth:`CostModel.cost` does), or with ``unmappable="skip"`` gets ``mapped`` False and zeros.
    A cost the model cannot stand behind raises :class:`~nasco.hw.CostError` as
    :meth:`CostModel.cost` would for that configuration.
    """
    if unmappable not in ("raise", "skip"):
        raise ValueError(f"unmappable: expected 'raise' or 'skip', found {unmappable!r}")
    dims = search_dimensions(template)
    n = len(configs)
    full = [{k: c.get(k, ch.default) for k, ch in dims.items()} for c in configs]
    for k, c in enumerate(configs):
        unknown = [key for key in c if key not in dims]
        if unknown:
            raise ValueError(f"configs[{k}]: {unknown[0]!r} is not a choice of template '{template.name}'; "
                             f"its choices: {', '.join(dims) or 'none'}")
    structural = [k for k in dims if k not in SIZED]
    groups: dict[tuple, list[int]] = {}
    for i, values in enumerate(full):
        groups.setdefault(tuple(values[k] for k in structural), []).append(i)

    cols = workload.columns()
    rates = np.ones(len(workload))
    _fill_rates(rates, workload, np.flatnonzero(_rate_layers(cols)), dict(spike_rates or {}), default_rate)
    # The rates of the maps neurons emit: read only where spikes are not dense (CostModel.cost).
    _fill_rates(rates, workload, np.flatnonzero(cols[_NEURON] != 0), dict(spike_rates or {}), default_rate)
    rates = np.clip(rates, 0.0, 1.0)
    spiking = bool(cols[_NEURON].any())

    out = {key: np.zeros(n, dtype=np.int64) for key in ("cycles", "compute_cycles", "macs")}
    out.update({key: np.zeros(n) for key in ("latency_s", "energy_j", "area_mm2", "utilization", "ops",
                                            "tiling_excess", *(f"energy_{p}" for p in ENERGY_PARTS))})
    out["mapped"] = np.ones(n, dtype=bool)
    for rows in groups.values():
        rep = resolve(template, full[rows[0]])
        sizes: dict[str, np.ndarray | None] = {}
        for k, (_, conv) in SIZED.items():
            if k in dims:
                sizes[k] = _column([full[i][k] for i in rows], conv)
            elif _field(rep, k) is None:  # an optional field the template leaves out
                sizes[k] = None
            else:
                sizes[k] = _column([_field(rep, k)] * len(rows), conv)
        model = _Columns(rep, table, sizes)
        try:
            model._check_mappable(cols, lambda i: (workload.name, workload.layers[i].name))
        except MappingError:
            if unmappable == "raise":
                raise
            out["mapped"][rows] = False
            continue
        totals = _group_totals(model, cols, rates, spiking, len(rows))
        for j in np.flatnonzero(~totals.pop("ok")).tolist():
            # A value outside the checked ranges: the scalar model raises CostError for it (or,
            # at the edge of a bound, costs it; its totals are then taken).
            model_j = CostModel(resolve(template, full[rows[j]]), table)
            report = model_j.cost(workload, spike_rates, default_rate)
            total = report.total()
            total.update({f"energy_{p}": v for p, v in total.pop("energy").items()})
            total["tiling_excess"] = report.tiling_excess
            for key in totals:
                totals[key][j] = total[key]
        for key, value in totals.items():
            out[key][rows] = value
    return out


def _group_totals(model: _Columns, cols: np.ndarray, rates: np.ndarray, spiking: bool,
                  n: int) -> dict[str, np.ndarray]:
    """Per-configuration totals of one group, as CostReport.total() forms them, and ``ok``:
    whether every layer passed CostModel._check_results's checks."""
    r = model._layer_costs(cols, rates, utilization=False)
    n_layers = cols.shape[1]

    def rows(value: Any) -> np.ndarray:
        return np.ascontiguousarray(np.broadcast_to(value, (n, n_layers)))

    ok = np.ones(n, dtype=bool)
    per: dict[str, np.ndarray] = {}
    for key, value in r.items():
        if value is None:
            continue
        v = rows(value)
        if key in ("cycles", "compute_cycles"):
            good = (v >= 0) & (v <= MAX_CYCLES)
        else:
            good = np.isfinite(v) & (v >= 0)
        ok &= good.all(axis=1)
        per[key] = v
    cycles = {k: per[k].astype(np.int64) for k in ("cycles", "compute_cycles")}
    for k in cycles:  # the per-workload bound, on the float cycles as CostModel checks it
        ok &= per[k].sum(axis=1) <= MAX_CYCLES
    energy = {p: per["energy_" + p] for p in ENERGY_PARTS}
    energy_j = sum(energy.values())
    area = np.broadcast_to(np.asarray(model._area(spiking), dtype=np.float64).reshape(-1), (n,))
    ok &= np.isfinite(area) & (area >= 0)
    out = {k: v.sum(axis=1) for k, v in cycles.items()}
    out["latency_s"] = per["latency_s"].sum(axis=1)
    out["energy_j"] = energy_j.sum(axis=1)
    out.update({f"energy_{p}": v.sum(axis=1) for p, v in energy.items()})
    out["area_mm2"] = area.copy()
    pes = model.rows * model.cols
    busy = per["busy"].sum(axis=1)
    out["utilization"] = np.array([float(b / (c * pes)) if c else 0.0
                                   for b, c in zip(busy.tolist(), out["cycles"].tolist())])
    out["macs"] = per["macs"].sum(axis=1).astype(np.int64)
    out["ops"] = per["ops"].sum(axis=1)
    out["tiling_excess"] = per["tiling_excess"].max(axis=1, initial=0.0)
    out["ok"] = ok
    return out
