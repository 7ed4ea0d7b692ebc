"""The report's second opinion: the front members whose energy the report recomputes, re-costed
with ZigZag (:func:`nasco.hw.zigzag_costs`), nasco's and ZigZag's energy and latency side by side."""
from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nasco.report._html import data_script, table
from nasco.report._markdown import md_table
from nasco.report._member import Member, member_cost
from nasco.report._run import RunData
from nasco.report._text import value_text

__all__ = ["ZIGZAG_DATA_ID", "ZigZagRow", "zigzag_markdown", "zigzag_rows", "zigzag_section"]

ZIGZAG_DATA_ID = "nasco-zigzag"  # the embedded rows of the comparison


@dataclass(frozen=True)
class ZigZagRow:
    """One member re-costed by ZigZag. ``compared``: :func:`nasco.hw.zigzag_side_by_side`'s totals,
    energy against ZigZag's best mapping for energy and latency against its best mapping for
    latency (None when ZigZag could not cost it: ``note`` says why). ``layers``: per layer both
    cost, ``name``, ``macs`` and ``zigzag_macs`` (each tool's count), ``nasco_energy_j``,
    ``zigzag_energy_j``, ``nasco_latency_s``, ``zigzag_latency_s``.
    ``note``: why there is no comparison, or what differs between the two sides."""

    id: str
    template: str
    accelerator: str
    compared: dict[str, Any] | None
    note: str
    layers: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "template": self.template, "accelerator": self.accelerator,
                "compared": self.compared, "note": self.note, "layers": self.layers}


def _compare(run: RunData, m: Member, lpf_limit: int) -> ZigZagRow:
    from nasco.hw import ZigZagError, zigzag_accelerator, zigzag_costs, zigzag_side_by_side

    name = m.template.name if m.template is not None else ""
    if m.template is None:
        return ZigZagRow(m.id, name, "", None, "no single accelerator (no accelerator, or a multi-task pair)")
    try:
        acc = zigzag_accelerator(name)
    except ZigZagError as exc:
        return ZigZagRow(m.id, name, "", None, str(exc))
    found = member_cost(run, m)
    if found is None:
        return ZigZagRow(m.id, name, acc, None, "no workload: the run kept no trained network for this pair")
    workload, rates, rep = found
    try:
        zz = zigzag_costs(workload, m.template, lpf_limit=lpf_limit)
    except ZigZagError as exc:
        return ZigZagRow(m.id, name, acc, None, str(exc))
    ours = rep.to_dict()
    by_e, by_l = zz["energy"].to_dict(), zz["latency"].to_dict()
    energy, latency = zigzag_side_by_side(ours, by_e), zigzag_side_by_side(ours, by_l)
    compared = {k: v for k, v in energy.items() if "latency" not in k}
    compared.update({k: v for k, v in latency.items() if k.endswith(("latency_s", "latency_ratio"))})
    nasco_rows = {row["name"]: row for row in ours["layers"]}
    lat_rows = {row["name"]: row for row in by_l["layers"]}
    layers = [{"name": row["name"], "macs": nasco_rows[row["name"]]["macs"], "zigzag_macs": row["macs"],
               "nasco_energy_j": nasco_rows[row["name"]]["energy_j"], "zigzag_energy_j": row["energy_j"],
               "nasco_latency_s": nasco_rows[row["name"]]["latency_s"],
               "zigzag_latency_s": lat_rows[row["name"]]["latency_s"]}
              for row in by_e["layers"] if row["name"] in nasco_rows]
    notes = []
    skipped = zz["energy"].skipped
    if skipped:
        notes.append(f"{len(skipped)} layer(s) ZigZag does not cost (it costs conv and linear only) left out "
                     "of both sides")
    if rates:
        notes.append("spiking: nasco costs the spike rates measured in training, ZigZag dense 1-bit inputs")
    searched = sorted(k for k in m.hw if k != "template")
    if searched:
        notes.append(f"ZigZag costs its own {acc} accelerator file; the searched choices "
                     f"({', '.join(searched)}) change nasco's numbers only")
    return ZigZagRow(m.id, name, acc, compared, "; ".join(notes), layers)


def zigzag_rows(run: RunData, members: Sequence[Member], lpf_limit: int) -> list[ZigZagRow]:
    """Each member re-costed by ZigZag with LOMA's loop-prime-factor limit ``lpf_limit``, or why not
    (a template without a ZigZag description, no trained network): a row each, in order. ZigZag
    must be installed (:func:`nasco.hw.require_zigzag`)."""
    return [_compare(run, m, lpf_limit) for m in members]


def _value(v: float, run: RunData, name: str) -> str:
    obj = next((o for o in run.objectives if o.name == name), None)
    if obj is not None:
        return value_text(v, obj)
    return f"{v:.4g} {'J' if name == 'energy' else 's'}"


def _cells(run: RunData, row: ZigZagRow) -> list[Any]:
    c = row.compared
    if c is None:
        return [row.id, row.template, "", "", "", "", "", "", "", row.note]
    return [row.id, f"{row.template} ({row.accelerator})", c["layers"],
            _value(c["nasco_energy_j"], run, "energy"), _value(c["zigzag_energy_j"], run, "energy"),
            f"{c['energy_ratio']:.4g}", _value(c["nasco_latency_s"], run, "latency"),
            _value(c["zigzag_latency_s"], run, "latency"), f"{c['latency_ratio']:.4g}", row.note]


_HEADER = ["id", "template (ZigZag)", "layers", "energy nasco", "energy ZigZag", "nasco / ZigZag",
           "latency nasco", "latency ZigZag", "nasco / ZigZag", "note"]


def _explained(lpf_limit: int) -> str:
    return (f"Each front architecture's best pair (the ones whose energy is recomputed below), re-costed "
            f"with ZigZag on the accelerator its template was translated from: energy against ZigZag's best "
            f"mapping for energy, latency against its best mapping for latency (LOMA loop-prime-factor "
            f"limit {lpf_limit}), summed over the layers both cost (ZigZag costs conv and linear layers). "
            f"nasco maps each layer with its template's fixed dataflow; ZigZag searches the mapping.")


def zigzag_section(run: RunData, rows: Sequence[ZigZagRow], lpf_limit: int) -> str:
    """The report.html section: the side-by-side table, each compared member's layers, the data."""
    details = ""
    for row in rows:
        if not row.layers:
            continue
        lines = [[r["name"], _value(r["nasco_energy_j"], run, "energy"),
                  _value(r["zigzag_energy_j"], run, "energy"),
                  f"{r['nasco_energy_j'] / r['zigzag_energy_j']:.4g}" if r["zigzag_energy_j"] else "n/a",
                  _value(r["nasco_latency_s"], run, "latency"), _value(r["zigzag_latency_s"], run, "latency"),
                  f"{r['nasco_latency_s'] / r['zigzag_latency_s']:.4g}" if r["zigzag_latency_s"] else "n/a"]
                 for r in row.layers]
        details += (f"<details><summary>{html.escape(row.id)}: per layer</summary>"
                    + table(["layer", "energy nasco", "energy ZigZag", "nasco / ZigZag", "latency nasco",
                             "latency ZigZag", "nasco / ZigZag"], lines) + "</details>")
    return (f'<h2 id="zigzag">nasco vs ZigZag</h2><p class="note">{html.escape(_explained(lpf_limit))}</p>'
            + table(_HEADER, [_cells(run, r) for r in rows]) + details
            + data_script(ZIGZAG_DATA_ID, [r.to_dict() for r in rows]))


def zigzag_markdown(run: RunData, rows: Sequence[ZigZagRow], lpf_limit: int) -> list[str]:
    """report.md's lines for the comparison: a heading, what is compared, the table."""
    return ["## nasco vs ZigZag", "", _explained(lpf_limit), "",
            *md_table(_HEADER, [_cells(run, r) for r in rows]), ""]
