"""Re-cost a workload with ZigZag, KU Leuven's analytical design-space explorer (PyPI ``zigzag-dse``).

ZigZag is an optional extra (``pip install 'nasco[zigzag]'``); it is imported inside the functions
that run it, so ``nasco.hw`` imports without it. The templates translated from ZigZag's bundled
accelerators (``search_spaces/zigzag_<name>.yaml``) are costed on ZigZag's own accelerator and
mapping files, not on a re-translation of the template, so the numbers are ZigZag's.

The pipeline runs ZigZag's own stages in ZigZag's order (workload parser, accelerator parser,
layer iterator, spatial-mapping generator, LOMA temporal-mapping generator, cost model), as
``zigzag.api.get_hardware_performance_zigzag`` does, with two reductions that change no number:
one search per layer keeps both the best mapping for energy and the best for latency
(``MinimalEnergyStage`` and ``MinimalLatencyStage`` rules), and a layer identical to an earlier
one (type, loop sizes, relations, padding, precisions, operand sources) reuses its search.
"""
from __future__ import annotations

import json
import logging
import math
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasco.core import NascoError
from nasco.hw._workload import Workload

__all__ = ["LPF_LIMIT", "NB_SPATIAL_MAPPINGS", "OPTIMIZE", "PACKAGED_MAPPINGS", "ZIGZAG_ACCELERATORS",
           "ZIGZAG_EXTRA", "ZigZagError", "ZigZagReport", "layer_key", "require_zigzag", "run_zigzag",
           "side_by_side", "zigzag_accelerator", "zigzag_available", "zigzag_cost", "zigzag_costs",
           "zigzag_inputs", "zigzag_layers", "zigzag_mapping", "zigzag_stages"]

# The extra of pyproject.toml that installs zigzag-dse (and six, which zigzag-dse 3.9.1 imports
# without declaring it).
ZIGZAG_EXTRA = "nasco[zigzag]"
# nasco template -> the ZigZag accelerator (zigzag/inputs/hardware/<name>.yaml) it was translated from.
ZIGZAG_ACCELERATORS = {"zigzag_tpu_like": "tpu_like", "zigzag_edge_tpu_like": "edge_tpu_like",
                       "zigzag_eyeriss_like": "eyeriss_like", "zigzag_tesla_npu_like": "tesla_npu_like"}
LPF_LIMIT = 6             # ZigZag's default loop-prime-factor limit of its LOMA temporal-mapping search
NB_SPATIAL_MAPPINGS = 3   # ZigZag's default number of generated spatial mappings
OPTIMIZE = ("energy", "latency")
# Mapping files nasco ships (package data, nasco/hw/zigzag_mappings/<name>.yaml) for the ZigZag
# accelerators that zigzag-dse 3.9.1 ships without one; the others use ZigZag's own
# zigzag/inputs/mapping/<name>.yaml.
_MAPPINGS = Path(__file__).resolve().parent / "zigzag_mappings"
PACKAGED_MAPPINGS = ("eyeriss_like",)


class ZigZagError(NascoError):
    """ZigZag cannot cost this: it is not installed, or the template has no ZigZag description."""


def zigzag_available() -> bool:
    """Whether ``zigzag.api`` imports (zigzag-dse and its undeclared dependency ``six``)."""
    try:
        import zigzag.api  # noqa: F401
    except ImportError:
        return False
    return True


def require_zigzag(what: str = "ZigZag") -> None:
    """A ZigZagError (one line: ``what`` needs zigzag-dse, and how to install it) unless
    :func:`zigzag_available`."""
    if not zigzag_available():
        raise ZigZagError(f"{what} needs zigzag-dse, which is not importable here: "
                          f"pip install '{ZIGZAG_EXTRA}'")


def zigzag_inputs() -> Path:
    """The ``inputs`` folder of the installed ZigZag (its hardware, mapping and workload files)."""
    import zigzag
    return Path(zigzag.__file__).parent / "inputs"


def zigzag_accelerator(template_name: str) -> str:
    """The ZigZag accelerator a template was translated from; a ZigZagError when it has none."""
    if template_name not in ZIGZAG_ACCELERATORS:
        raise ZigZagError(f"template '{template_name}' has no ZigZag description; templates with one: "
                          f"{', '.join(ZIGZAG_ACCELERATORS)} (--hw NAME)")
    return ZIGZAG_ACCELERATORS[template_name]


def zigzag_mapping(accelerator: str) -> Path:
    """The mapping file ZigZag runs ``accelerator`` with: nasco's packaged one for the accelerators
    zigzag-dse 3.9.1 ships without a mapping (:data:`PACKAGED_MAPPINGS`), else ZigZag's own
    (``zigzag/inputs/mapping/<accelerator>.yaml``, which needs ZigZag installed)."""
    if accelerator in PACKAGED_MAPPINGS:
        return _MAPPINGS / f"{accelerator}.yaml"
    return zigzag_inputs() / "mapping" / f"{accelerator}.yaml"


# ---------------------------------------------------------------------- nasco layers -> ZigZag layers
def zigzag_layers(workload: Workload, bits: dict[str, int]) -> tuple[list[dict[str, Any]], list[str]]:
    """(ZigZag's user-format layers, names of the layers ZigZag does not cost) of ``workload``.

    Conv layers become ZigZag's ONNX Conv format, linear layers its Gemm format, as ZigZag's ONNX
    parser writes them (zigzag/parser/onnx/conv_parser.py, gemm_parser.py). nasco's ifmap sides
    include the padding, so a conv's padding is 0 and its input is the padded map. A layer run for
    ``timesteps`` steps is ZigZag's batch (B, or D of a Gemm) of that size; a spiking input is a
    1-bit input operand. Neuron, pool and add layers are not costed (ZigZag costs Conv and Gemm
    only). ``bits``: the template's ``weight``, ``activation`` and ``accumulator`` widths.
    """
    out: list[dict[str, Any]] = []
    skipped: list[str] = []
    for layer in workload.layers:
        if layer.kind not in ("conv", "linear"):
            skipped.append(layer.name)
            continue
        nid = len(out)
        act = 1 if layer.spiking_input else bits["activation"]
        data: dict[str, Any] = {
            "id": nid, "name": layer.name,
            # W constant; I from the layer before, as the ONNX parser links a chain
            "operand_source": {"W": nid, "I": nid - 1 if nid else nid},
            "operand_precision": {"W": bits["weight"], "I": act, "O_final": bits["activation"],
                                  "O": bits["accumulator"]},
        }
        if layer.kind == "linear":
            data.update(operator_type="Gemm", dimension_relations=[], equation="O[d][k]+=I[d][c]*W[c][k]",
                        loop_dims=["C", "D", "K"],
                        loop_sizes=[layer.channels, layer.timesteps, layer.num_filters])
        else:
            g = layer.groups
            data.update(
                operator_type="Conv", equation="O[b][g][k][oy][ox]+=W[g][k][c][fy][fx]*I[b][g][c][iy][ix]",
                loop_dims=["B", "K", "G", "OX", "OY", "C", "FX", "FY"],
                loop_sizes=[layer.timesteps, layer.num_filters // g, g, layer.ofmap_w, layer.ofmap_h,
                            layer.channels // g, layer.filter_w, layer.filter_h],
                dimension_relations=[f"ix={layer.stride}*ox+{layer.dilation}*fx",
                                     f"iy={layer.stride}*oy+{layer.dilation}*fy"],
                pr_loop_dims=["IX", "IY"], pr_loop_sizes=[layer.ifmap_w, layer.ifmap_h],
                padding=[[0, 0], [0, 0]])
        out.append(data)
    return out, skipped


# ---------------------------------------------------------------------- ZigZag's pipeline
def layer_key(layer: Any) -> str:
    """What makes two ZigZag layers cost the same: type, loop sizes, relations, padding, precisions,
    constant operands."""
    sizes = sorted((str(d), int(s)) for d, s in layer.layer_dim_sizes.items())
    prec = sorted((str(k), int(v)) for k, v in layer.operand_precision.data.items())
    return json.dumps([layer.type, str(layer.equation), sizes, [str(r) for r in layer.dimension_relations],
                       str(layer.padding), prec, sorted(str(o) for o in layer.constant_operands)])


def zigzag_stages(parser: Any) -> list[Any]:
    """ZigZag's stages after ``parser`` (its ONNXModelParserStage or WorkloadParserStage), with the
    two reductions of the module docstring. The pipeline yields, per layer, the best mapping for
    energy and ``{"layer", "latency" (the best mapping for latency), "reused_from", "search_s"}``."""
    from zigzag.cost_model.cost_model import CostModelEvaluation
    from zigzag.stages.evaluation.cost_model_evaluation import CostModelStage
    from zigzag.stages.mapping.spatial_mapping_generation import SpatialMappingGeneratorStage
    from zigzag.stages.mapping.temporal_mapping_generator_stage import TemporalMappingGeneratorStage
    from zigzag.stages.parser.accelerator_parser import AcceleratorParserStage
    from zigzag.stages.stage import Stage
    from zigzag.stages.workload_iterator import WorkloadStage
    from zigzag.workload.layer_node import LayerNode

    def better_energy(a, b) -> bool:  # MinimalEnergyStage's rule
        return b is None or a.energy_total < b.energy_total or (
            a.energy_total == b.energy_total and a.latency_total2 < b.latency_total2)

    def better_latency(a, b) -> bool:  # MinimalLatencyStage's rule
        return b is None or a.latency_total2 < b.latency_total2 or (
            a.latency_total2 == b.latency_total2 and a.energy_total < b.energy_total)

    class BothMinimaStage(Stage):
        """Yields (best-for-energy CME, {"latency": best-for-latency CME})."""

        def run(self):
            sub = self.list_of_callables[0](self.list_of_callables[1:], **self.kwargs)
            best_e = best_l = None
            for cme, extra in sub.run():
                lat = cme
                while not isinstance(extra, dict) and isinstance(extra, tuple) and extra:
                    extra = extra[-1]
                if isinstance(extra, dict) and "latency" in extra:
                    lat = extra["latency"]
                assert isinstance(cme, CostModelEvaluation)
                if better_energy(cme, best_e):
                    best_e = cme
                if better_latency(lat, best_l):
                    best_l = lat
            assert best_e is not None
            yield best_e, {"latency": best_l}

    class TimedUniqueWorkloadStage(WorkloadStage):
        """ZigZag's layer iterator, timing each search and reusing it for repeated layers."""

        def run(self):
            seen: dict[str, tuple[Any, Any, str, float]] = {}
            for layer in self.workload.topological_sort():
                if not isinstance(layer, LayerNode):
                    continue
                key = layer_key(layer)
                if key in seen:
                    e, lat, first, took = seen[key]
                    yield e, {"layer": layer, "latency": lat, "reused_from": first, "search_s": 0.0}
                    continue
                kwargs = self.kwargs.copy()
                kwargs["layer"] = layer
                kwargs["accelerator"] = self.accelerator
                t0 = time.perf_counter()
                sub = self.list_of_callables[0](self.list_of_callables[1:], **kwargs)
                for e, extra in sub.run():
                    took = time.perf_counter() - t0
                    seen[key] = (e, extra["latency"], layer.name, took)
                    yield e, {"layer": layer, "latency": extra["latency"], "reused_from": "",
                              "search_s": took}

    return [parser, AcceleratorParserStage, TimedUniqueWorkloadStage, BothMinimaStage,
            SpatialMappingGeneratorStage, BothMinimaStage, TemporalMappingGeneratorStage, CostModelStage]


def run_zigzag(workload: str | list[dict[str, Any]], accelerator: str, mapping: str,
               lpf_limit: int = LPF_LIMIT) -> Iterator[tuple[Any, dict[str, Any]]]:
    """ZigZag's results per layer of ``workload`` (an ONNX file path, or user-format layers) on the
    accelerator and mapping YAML files: (best mapping for energy, the pipeline's info dict)."""
    logging.disable(logging.CRITICAL)  # ZigZag logs every mapping it tries
    from zigzag.mapping.temporal_mapping import TemporalMappingType
    from zigzag.stages.main import MainStage
    from zigzag.stages.parser.onnx_model_parser import ONNXModelParserStage
    from zigzag.stages.parser.workload_parser import WorkloadParserStage

    onnx_file = isinstance(workload, str) and workload.endswith(".onnx")
    parser = ONNXModelParserStage if onnx_file else WorkloadParserStage
    main = MainStage(zigzag_stages(parser), accelerator=accelerator, workload=workload, mapping=mapping,
                     dump_folder=None, loma_lpf_limit=lpf_limit, loma_show_progress_bar=False,
                     nb_mappings_generated=NB_SPATIAL_MAPPINGS, enable_mix_spatial_mapping_generation=False,
                     access_same_data_considered_as_no_access=True,
                     temporal_mapping_type=TemporalMappingType("uneven"))
    try:
        yield from main.run()
    finally:
        logging.disable(logging.NOTSET)


# ---------------------------------------------------------------------- the report
@dataclass(frozen=True)
class ZigZagReport:
    """ZigZag's per-layer cost of the layers it costs, on the mapping it found best for ``optimize``.

    ``energy_j`` in joules, ``cycles`` in ZigZag's cycles (``latency_total2``: including on- and
    off-loading), ``latency_s`` the cycles at the template's clock. ``skipped``: the workload's layers
    ZigZag does not cost.
    """

    accelerator: str
    optimize: str
    lpf_limit: int
    clock_hz: float
    names: tuple[str, ...]
    kinds: tuple[str, ...]
    macs: tuple[int, ...]
    energy_j: tuple[float, ...]
    cycles: tuple[float, ...]
    skipped: tuple[str, ...] = ()
    search_s: tuple[float, ...] = field(default=(), compare=False)

    @property
    def latency_s(self) -> tuple[float, ...]:
        return tuple(c / self.clock_hz for c in self.cycles)

    def to_dict(self) -> dict[str, Any]:
        """``{layers, total, assumptions}`` in base units (J, s), the shape of CostReport.to_dict."""
        layers = [{"name": n, "kind": k, "macs": m, "cycles": c, "latency_s": c / self.clock_hz,
                   "energy_j": e}
                  for n, k, m, c, e in zip(self.names, self.kinds, self.macs, self.cycles, self.energy_j)]
        cycles = math.fsum(self.cycles)
        total = {"macs": sum(self.macs), "cycles": cycles, "latency_s": cycles / self.clock_hz,
                 "energy_j": math.fsum(self.energy_j)}
        return {"layers": layers, "total": total,
                "assumptions": {"accelerator": self.accelerator, "optimize": self.optimize,
                                "lpf_limit": self.lpf_limit, "nb_spatial_mappings": NB_SPATIAL_MAPPINGS,
                                "not_costed": list(self.skipped)}}


def zigzag_costs(workload: Workload, template: Any, *, lpf_limit: int = LPF_LIMIT,
                 onnx: str | Path | None = None) -> dict[str, ZigZagReport]:
    """ZigZag's cost of ``workload`` on the ZigZag accelerator ``template`` was translated from, on
    its best mapping for energy and on its best mapping for latency (``{"energy": ..., "latency":
    ...}``, keys :data:`OPTIMIZE`), both from one mapping search per layer.

    ``template``: a resolved accelerator template (its name picks ZigZag's accelerator and mapping
    files, its bits the operand precisions, its clock the latency). ``onnx``: the ONNX file the
    workload was read from; ZigZag's own ONNX parser then reads it (its Conv, Gemm and MatMul
    nodes), instead of the translation of :func:`zigzag_layers`. A ZigZagError (one line) when
    the template has no ZigZag description, ZigZag is not installed or nothing is left to cost.
    """
    if lpf_limit < 1:
        raise ValueError(f"lpf_limit must be >= 1, got {lpf_limit}")
    acc = zigzag_accelerator(template.name)
    require_zigzag()
    inputs = zigzag_inputs()
    kinds = {layer.name: layer.kind for layer in workload.layers}
    source: str | list[dict[str, Any]] = ""
    skipped: list[str] = []
    if onnx is None:
        bits = {k: int(getattr(template.bits, k)) for k in ("weight", "activation", "accumulator")}
        source, skipped = zigzag_layers(workload, bits)
        if not source:
            raise ZigZagError(f"workload {workload.name!r}: no conv or linear layer for ZigZag to cost")
    rows: dict[str, list[tuple]] = {o: [] for o in OPTIMIZE}
    with tempfile.TemporaryDirectory(prefix="nasco-zigzag-") as tmp:
        if onnx is not None:  # ZigZag's ONNX parser reads the shapes of a shape-inferred model only
            import onnx as onnx_lib
            source = str(Path(tmp) / "inferred.onnx")
            onnx_lib.save(onnx_lib.shape_inference.infer_shapes(onnx_lib.load(str(onnx))), source)
        for best_e, info in run_zigzag(source, str(inputs / "hardware" / f"{acc}.yaml"),
                                       str(zigzag_mapping(acc)), lpf_limit):
            layer = info["layer"]
            kind = kinds.get(layer.name, "linear" if layer.type in ("Gemm", "MatMul") else "conv")
            for optimize, cme in (("energy", best_e), ("latency", info["latency"])):
                rows[optimize].append((layer.name, kind, int(layer.total_mac_count),
                                       float(cme.energy_total) * 1e-12, float(cme.latency_total2),
                                       float(info["search_s"])))
    if onnx is not None:
        costed = {r[0] for r in rows["energy"]}
        skipped = [layer.name for layer in workload.layers if layer.name not in costed]
    out = {}
    for optimize, found in rows.items():
        names, kinds_, macs, energy, cycles, search = zip(*found) if found else ((),) * 6
        out[optimize] = ZigZagReport(accelerator=acc, optimize=optimize, lpf_limit=lpf_limit,
                                     clock_hz=float(template.clock_mhz) * 1e6, names=tuple(names),
                                     kinds=tuple(kinds_), macs=tuple(macs), energy_j=tuple(energy),
                                     cycles=tuple(cycles), skipped=tuple(skipped), search_s=tuple(search))
    return out


def zigzag_cost(workload: Workload, template: Any, *, optimize: str = "energy", lpf_limit: int = LPF_LIMIT,
                onnx: str | Path | None = None) -> ZigZagReport:
    """ZigZag's cost of ``workload`` on the mapping it found best for ``optimize`` (``"energy"`` or
    ``"latency"``); the other arguments as :func:`zigzag_costs`."""
    if optimize not in OPTIMIZE:
        raise ValueError(f"optimize must be one of {', '.join(OPTIMIZE)}, got {optimize!r}")
    return zigzag_costs(workload, template, lpf_limit=lpf_limit, onnx=onnx)[optimize]


def side_by_side(nasco: dict[str, Any], zigzag: dict[str, Any]) -> dict[str, Any]:
    """nasco's and ZigZag's totals over the layers both cost, and their ratios (nasco / ZigZag; NaN
    where ZigZag's total is 0). ``nasco``: a :meth:`CostReport.to_dict`; ``zigzag``: a
    :meth:`ZigZagReport.to_dict`; each needs only ``layers`` rows with ``name``, ``energy_j`` and
    ``latency_s``."""
    both = {row["name"] for row in zigzag["layers"]} & {row["name"] for row in nasco["layers"]}
    ours = [row for row in nasco["layers"] if row["name"] in both]
    theirs = [row for row in zigzag["layers"] if row["name"] in both]
    n_e = math.fsum(row["energy_j"] for row in ours)
    n_l = math.fsum(row["latency_s"] for row in ours)
    z_e = math.fsum(row["energy_j"] for row in theirs)
    z_l = math.fsum(row["latency_s"] for row in theirs)
    return {"layers": len(ours), "nasco_energy_j": n_e, "zigzag_energy_j": z_e,
            "energy_ratio": n_e / z_e if z_e else math.nan,
            "nasco_latency_s": n_l, "zigzag_latency_s": z_l, "latency_ratio": n_l / z_l if z_l else math.nan}
