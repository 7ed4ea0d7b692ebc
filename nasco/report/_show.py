"""One candidate of a run, as ``nasco show`` prints it, and its cell diagram."""
from __future__ import annotations

from pathlib import Path

from nasco.report._cells import cell_png
from nasco.report._member import find_member, precision_text
from nasco.report._run import load_run
from nasco.report._text import accelerator_text, arch_text, cell_text, value_text

__all__ = ["show_candidate"]


def show_candidate(run_dir: str | Path, cid: str,
                   png: str | Path | None = None) -> tuple[list[str], Path | None]:
    """The lines describing candidate ``cid`` of the run in ``run_dir`` (a front id of pareto.csv
    or a ledger row's id): its status, objectives, architecture, accelerator and precision; and
    the PNG of its cell diagram, written at ``png`` (default ``RUN/cells-ID.png``; None when the
    run has no single cell space). A :class:`nasco.core.NascoError` (one line, naming close
    matches) for an unknown id."""
    run = load_run(run_dir)
    m = find_member(run, cid)
    spiking = run.arch_spec is not None and run.arch_spec.neuron is not None
    where = "on the front" if m.on_front else "not on the front"
    lines = [f"candidate {m.id} ({m.status}, {where}; ledger row {m.row.get('id', '?')})"]
    lines += [f"  {o.name:<10} {value_text(m.values[o.name], o)}" for o in run.objectives]
    lines += [f"architecture: {arch_text(m.arch)}", *(f"  {t}" for t in cell_text(m.arch)),
              f"accelerator: {accelerator_text(m.template, m.hw)}",
              f"precision: {precision_text(m.template, spiking)}"]
    if m.status == "failed":
        lines.append(f"reason: {m.row.get('reason')}")
    if m.status == "infeasible":
        lines.append("violates: " + ", ".join(sorted(m.row.get("violations") or {})))
    path = None
    if run.arch_spec is not None and "cell" in m.arch:
        target = png if png is not None else run.path / f"cells-{m.id}.png"
        path = cell_png(run.arch_spec.cell, m.arch["cell"], target)
    return lines, path
