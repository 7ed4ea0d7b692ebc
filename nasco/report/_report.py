"""``write_report``: a run's self-contained HTML report and its markdown summary."""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from nasco.hw import ZIGZAG_LPF_LIMIT, require_zigzag
from nasco.report._cells import cell_svg
from nasco.report._figures import energy_figure, front_figure, history_figure, spike_rate_figure
from nasco.report._front import ArchGroup, arch_groups, evaluated_pairs, front_frame
from nasco.report._html import data_script, figure_div, page, table
from nasco.report._markdown import best_rows, markdown_summary
from nasco.report._member import Member, accelerator_rows, front_member, layer_energy, precision_text
from nasco.report._run import RunData, load_run
from nasco.report._text import accelerator_text, arch_text, cell_text, objectives_text, value_text
from nasco.report._zigzag import zigzag_markdown, zigzag_rows, zigzag_section

__all__ = ["HTML_FILE", "MAX_ARCHITECTURES", "MAX_PAIRS_LISTED", "MD_FILE", "write_report"]

HTML_FILE, MD_FILE = "report.html", "report.md"
MAX_ARCHITECTURES = 8   # front architectures drawn in detail (cells, accelerator, energy), best first
MAX_PAIRS_LISTED = 10   # an architecture's front pairs listed in its table
FRONT_DATA_ID = "nasco-front"      # the embedded pareto.csv rows
COUNTS_DATA_ID = "nasco-counts"    # the embedded counts of the ledger's search rows
ENERGY_DATA_PREFIX = "nasco-energy-"  # + member id: the embedded per-layer energy (J) and spike rates


def _spiking(run: RunData) -> bool:
    return run.arch_spec is not None and run.arch_spec.neuron is not None


def _hover(run: RunData, m: Member) -> str:
    lines = [f"<b>{m.id}</b>", objectives_text(m.values, run.objectives), f"arch: {arch_text(m.arch)}",
             *cell_text(m.arch), f"accelerator: {accelerator_text(m.template, m.hw)}",
             f"precision: {precision_text(m.template, _spiking(run))}"]
    return "<br>".join(html.escape(s) if i else s for i, s in enumerate(lines))


def _summary(run: RunData, members: list[Member], groups: list[ArchGroup]) -> str:
    c, cfg = run.counts(), run.config
    hv = run.hypervolume()
    facts = [("evaluations", c["total"]), ("ok", c["ok"]), ("infeasible", c["infeasible"]),
             ("failed", c["failed"]), ("front pairs", len(members)), ("front architectures", len(groups)),
             ("normalised HV", "n/a" if hv is None else f"{hv:.4g}")]
    boxes = "".join(f'<div class="fact">{html.escape(k)}<b>{html.escape(str(v))}</b></div>' for k, v in facts)
    what = table(["space", "accelerator", "searcher", "evaluator", "seed", "budget"],
                 [[cfg.get("space"), cfg.get("hw") or "none", cfg.get("searcher"), cfg.get("evaluator"),
                   run.meta.get("seed"), cfg.get("budget")]])
    best = table(["objective", "best", "id", "accelerator"], best_rows(run, members))
    return (f'<h2 id="summary">Summary</h2><div class="facts">{boxes}</div>{what}'
            f"<h3>Best per objective (front)</h3>{best}")


def _front_section(run: RunData, members: list[Member], groups: list[ArchGroup]) -> str:
    pairs = evaluated_pairs(run)
    front_ids = {m.id for m in members}
    others = pairs[~pairs["id"].isin(front_ids) & pairs["status"].isin(["ok", "infeasible"])]
    fig = front_figure(front_frame(run, members), others, run.objectives, run.limits,
                       [_hover(run, m) for m in members])
    limits = ", ".join(f"{k} ≤ {value_text(v, next(o for o in run.objectives if o.name == k))}"
                       for k, v in run.limits.items() if k in run.names) or "none"
    return (f'<h2 id="front">Pareto front</h2><p class="note">{len(members)} front pairs (architecture × '
            f"accelerator) of {len(groups)} architectures, coloured by accelerator template; grey: the other "
            f"evaluated pairs (crosses: infeasible). Dashed lines: design-spec limits "
            f"({html.escape(limits)}). Hover a point for its architecture, accelerator and precision; drag "
            f"to select (the same points light up in every panel), double-click to reset.</p>"
            f"{figure_div(fig)}{data_script(FRONT_DATA_ID, run.front)}")


def _history_section(run: RunData) -> str:
    fig = history_figure(evaluated_pairs(run), run.objectives)
    body = (figure_div(fig) if fig is not None else
            '<p class="note">No normalised hypervolume: an objective has no ideal or bound '
            '(give --ref-point).</p>')
    best = " and the best accuracy so far" if "accuracy" in run.names else ""
    return (f'<h2 id="history">Search history</h2><p class="note">Normalised hypervolume of the front (each '
            f"objective scaled to 0 at its ideal and 1 at its bound){best}, after each evaluation.</p>{body}")


def _energy_block(run: RunData, m: Member) -> str:
    energy = layer_energy(run, m)
    if energy is None:
        return '<p class="note">No per-layer energy: the run kept no trained network for this candidate.</p>'
    energy_obj = next((o for o in run.objectives if o.name == "energy"), None)
    totals = energy.totals()
    rows = [[part, value_text(v, energy_obj) if energy_obj else f"{v:.4g} J"] for part, v in totals.items()]
    data = {"layers": list(energy.names), "kinds": list(energy.kinds),
            "parts": {k: v.tolist() for k, v in energy.parts.items()}, "spike_rates": energy.spike_rates}
    out = (f"<h4>Energy per layer, by part (per inference)</h4>{figure_div(energy_figure(energy))}"
           f"{table(['part', 'total'], rows)}{data_script(ENERGY_DATA_PREFIX + m.id, data)}")
    if energy.twin is not None:
        latency_obj = next((o for o in run.objectives if o.name == "latency"), None)
        out += _twin_text(energy.twin, energy_obj, latency_obj)
    if energy.spike_rates:
        out += f"<h4>Input spike rate per layer</h4>{figure_div(spike_rate_figure(energy.spike_rates))}"
    return out


def _twin_text(twin: dict[str, Any], energy_obj: Any, latency_obj: Any) -> str:
    """The spiking network beside its ceil(log2(T+1))-bit ANN twin on the same accelerator."""
    energy = value_text(twin["twin_energy"], energy_obj) if energy_obj else f"{twin['twin_energy']:.4g} J"
    latency = (value_text(twin["twin_latency"], latency_obj) if latency_obj
               else f"{twin['twin_latency']:.4g} s")
    where = {"never": "costs more than its twin at every spike rate, even 0",
             "always": "costs less than its twin at every spike rate",
             "none": "has no layer that takes spikes"}.get(twin["break_even"])
    if where is None:
        rate = 100 * twin["break_even_rate"]
        where = f"costs less than its twin below a uniform input spike rate of {rate:.3g} %"
    return (f'<p class="note">ANN twin ({twin["twin_bits"]}-bit activations, MAC PEs, same accelerator): '
            f"{html.escape(energy)}, {html.escape(latency)}; snn_advantage (twin energy / SNN energy) "
            f"{twin['snn_advantage']:.3g}. The SNN {where}.</p>")


def _arch_block(run: RunData, k: int, group: ArchGroup) -> str:
    m = group.best
    head = f'<div class="arch" id="arch-{k}"><h3>Architecture {k}: {html.escape(arch_text(m.arch))}</h3>'
    listed = sorted(group.members, key=lambda p: tuple(o.to_min(p.values[o.name]) for o in run.objectives))
    listed = listed[:MAX_PAIRS_LISTED]
    rows = [[p.id, *[value_text(p.values[o.name], o) for o in run.objectives],
             accelerator_text(p.template, p.hw)] for p in listed]
    more = len(group.members) - len(listed)
    pairs = (f"<p>{len(group.members)} front pairs with this architecture"
             + (f" (the best {len(listed)} listed; all in pareto.csv)" if more else "") + ":</p>"
             + table(["id", *[o.name for o in run.objectives], "accelerator"], rows))
    cells = (f'<div class="cells">{cell_svg(run.arch_spec.cell, m.arch["cell"])}</div>'
             if run.arch_spec is not None and "cell" in m.arch else "")
    acc = table(["field", "value", "searched"],
                [[f, v, "yes" if s else ""] for f, v, s in accelerator_rows(m)])
    detail = (f"<h4>Its best pair {html.escape(m.id)}: accelerator "
              f"({html.escape(precision_text(m.template, _spiking(run)))})</h4>{acc}")
    return (head + pairs + "<h4>Cells</h4>" + cells + detail + _export_hint(run, m) + _energy_block(run, m)
            + "</div>")


def _export_hint(run: RunData, m: Member) -> str:
    """The command that exports the pair's trained network (none for a network the run did not train)."""
    if not (m.row.get("metrics") or {}).get("training"):
        return ""
    formats = "nir|onnx|torch" if _spiking(run) else "onnx|torch"
    command = f"nasco export {run.path} --id {m.id} --format {formats}"
    return f'<p class="note">Export this network: <code>{html.escape(command)}</code></p>'



def _architectures(run: RunData, groups: list[ArchGroup]) -> str:
    shown = groups[:MAX_ARCHITECTURES]
    cap = (f" The best {len(shown)} of {len(groups)} are shown (ranked by their best pair on "
           f"{run.names[0]}, ties by the next objective)." if len(groups) > len(shown) else "")
    note = (f'<p class="note">Each distinct architecture on the front: its front pairs, its cells, and for '
            f"its best pair the accelerator, the energy per layer recomputed with the cost model and the "
            f"spike rates measured in its training.{cap}</p>")
    return '<h2 id="architectures">Front architectures</h2>' + note + "".join(
        _arch_block(run, k + 1, g) for k, g in enumerate(shown))


def _config_section(run: RunData) -> str:
    c = run.counts()
    out = '<h2 id="config">Run</h2>' + table(["ok", "infeasible", "failed", "total"],
                                              [[c["ok"], c["infeasible"], c["failed"], c["total"]]])
    if run.failed_reasons():
        out += "<h4>Failed candidates, by reason</h4>" + table(["reason", "rows"], run.failed_reasons())
    if run.violated_specs():
        out += "<h4>Infeasible candidates, by violated design spec</h4>" + table(["spec", "rows"],
                                                                                 run.violated_specs())
    specs = run.meta.get("design_specs") or {}
    if specs:
        out += "<h4>Design specs</h4>" + table(["accelerator", "limits"], [
            [k, ", ".join(f"{n} ≤ {v:g}" for n, v in lim.items())] for k, lim in specs.items()])
    config = json.dumps(run.meta.get("config"), indent=2, default=str)
    return out + f"<details><summary>run.json config</summary><pre>{html.escape(config)}</pre></details>"


def write_report(run_dir: str | Path, out: str | Path | None = None, *, zigzag: bool = False,
                 zigzag_lpf_limit: int = ZIGZAG_LPF_LIMIT) -> tuple[Path, Path]:
    """Write ``report.html`` (one self-contained file: works offline, no server, no external
    resource) and ``report.md`` for the run in ``run_dir``, into ``out`` (a folder; default
    the run directory). Returns their paths. A :class:`nasco.run.RunDirError` (one line) when
    ``run_dir`` is not a finished run directory.

    ``zigzag``: both files also show each shown architecture's best pair re-costed with ZigZag
    (:func:`nasco.hw.zigzag_costs`, LOMA loop-prime-factor limit ``zigzag_lpf_limit``), nasco's
    and ZigZag's energy and latency side by side with their ratios; a pair ZigZag cannot cost
    (a template without a ZigZag description, no trained network) is a row that says why. A
    :class:`nasco.hw.ZigZagError` (one line, how to install it) when ZigZag is not installed."""
    if zigzag:
        require_zigzag("--zigzag")
    run = load_run(run_dir)
    members = [front_member(run, f) for f in run.front]
    groups = arch_groups(members, run.objectives)
    compared = (zigzag_rows(run, [g.best for g in groups[:MAX_ARCHITECTURES]], zigzag_lpf_limit)
                if zigzag else None)
    sections = [("summary", "Summary"), ("front", "Front"), ("history", "History"),
                ("architectures", "Architectures"), *([("zigzag", "ZigZag")] if zigzag else []),
                ("config", "Run")]
    nav = "".join(f'<a href="#{i}">{t}</a>' for i, t in sections)
    body = (f"<h1>nasco run report</h1><p class=\"sub\">{html.escape(str(run.path.resolve()))} · created "
            f"{html.escape(str(run.meta.get('created_at', '')))}</p><nav>{nav}</nav>"
            + _summary(run, members, groups) + _front_section(run, members, groups) + _history_section(run)
            + _architectures(run, groups)
            + (zigzag_section(run, compared, zigzag_lpf_limit) if compared is not None else "")
            + _config_section(run) + data_script(COUNTS_DATA_ID, run.counts()))
    folder = Path(out) if out is not None else run.path
    folder.mkdir(parents=True, exist_ok=True)
    html_path, md_path = folder / HTML_FILE, folder / MD_FILE
    html_path.write_text(page(f"nasco report: {run.path.name}", body), encoding="utf-8")
    extra = zigzag_markdown(run, compared, zigzag_lpf_limit) if compared is not None else ()
    md_path.write_text(markdown_summary(run, members, groups, extra), encoding="utf-8")
    return html_path, md_path
