"""The run's markdown summary: the run, its counts, hypervolume, the best per objective and
the front members."""
from __future__ import annotations

from typing import Any, Sequence

from nasco.report._member import Member
from nasco.report._run import RunData
from nasco.report._text import accelerator_text, arch_text, value_text

__all__ = ["MAX_FRONT_ROWS", "best_rows", "markdown_summary", "md_table"]

MAX_FRONT_ROWS = 40  # front members listed in report.md (best first); pareto.csv has them all


def best_rows(run: RunData, members: Sequence[Member]) -> list[list[Any]]:
    """[objective, best value (display units), id, accelerator] for each objective, over the front."""
    out = []
    for o in run.objectives:
        if not members:
            out.append([o.name, "n/a", "", ""])
            continue
        m = min(members, key=lambda m: o.to_min(m.values[o.name]))
        out.append([o.name, value_text(m.values[o.name], o), m.id, accelerator_text(m.template, m.hw)])
    return out


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(cell(v) for v in r) + " |" for r in rows)]


def markdown_summary(run: RunData, members: Sequence[Member], groups: Sequence[Any],
                     extra: Sequence[str] = ()) -> str:
    """report.md's text; ``extra``: lines of further sections, after the front members."""
    c, cfg = run.counts(), run.config
    hv = run.hypervolume()
    lines = [f"# nasco run report: {run.path.name}", "",
             f"- space **{cfg.get('space')}**, accelerator **{cfg.get('hw') or 'none'}**, searcher "
             f"{cfg.get('searcher')}, evaluator {cfg.get('evaluator')}, seed {run.meta.get('seed')}",
             f"- {c['total']} evaluations: {c['ok']} ok, {c['infeasible']} infeasible, {c['failed']} failed",
             f"- front: {len(members)} pairs (architecture x accelerator) of {len(groups)} architectures",
             f"- normalised hypervolume: {'n/a' if hv is None else f'{hv:.4g}'}"]
    for reason, n in run.failed_reasons():
        lines.append(f"- failed ({n}): {reason}")
    lines += ["", "## Best per objective", "",
              *md_table(["objective", "best", "id", "accelerator"], best_rows(run, members))]
    ranked = sorted(members, key=lambda m: tuple(o.to_min(m.values[o.name]) for o in run.objectives))
    shown = ranked[:MAX_FRONT_ROWS]
    more = (f" (the best {len(shown)} of {len(members)}; all in pareto.csv)" if len(ranked) > len(shown)
            else "")
    rows = [[m.id, *[value_text(m.values[o.name], o) for o in run.objectives], arch_text(m.arch),
             accelerator_text(m.template, m.hw)] for m in shown]
    lines += ["", f"## Front members{more}", "",
              *md_table(["id", *[o.name for o in run.objectives], "architecture", "accelerator"], rows),
              "", *extra, "The interactive report with cell diagrams and per-layer energy: report.html.", ""]
    return "\n".join(lines)
