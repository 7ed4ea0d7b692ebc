"""The front as the report groups it: one group per distinct architecture, best first."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pandas as pd

from nasco.core import Objective
from nasco.report._member import Member
from nasco.report._run import RunData
from nasco.run._ledger import rows_frame
from nasco.run._retrain import arch_of

__all__ = ["ArchGroup", "arch_groups", "evaluated_pairs", "front_frame"]


@dataclass(frozen=True, eq=False)
class ArchGroup:
    """The front members of one architecture, in pareto.csv order; ``best`` the one that is
    best on the first objective (ties: the next objective, and so on)."""

    members: list[Member]
    best: Member


def _rank(member: Member, objectives: Sequence[Objective]) -> tuple[float, ...]:
    return tuple(o.to_min(member.values[o.name]) for o in objectives)


def arch_groups(members: Sequence[Member], objectives: Sequence[Objective]) -> list[ArchGroup]:
    """``members`` grouped by architecture; the groups ordered by their best member's rank."""
    groups: dict[str, list[Member]] = {}
    for m in members:
        groups.setdefault(arch_of({"arch": m.arch}), []).append(m)
    out = [ArchGroup(ms, min(ms, key=lambda m: _rank(m, objectives))) for ms in groups.values()]
    return sorted(out, key=lambda g: _rank(g.best, objectives))


def front_frame(run: RunData, members: Sequence[Member]) -> pd.DataFrame:
    """pareto.csv's rows as a frame with each member's ``template`` ('' without an accelerator)."""
    df = pd.DataFrame(run.front, columns=run.front_columns)
    df["template"] = [m.template.name if m.template is not None else str(m.hw.get("template") or
                                                                          run.config.get("hw") or "")
                      for m in members]
    return df


def evaluated_pairs(run: RunData) -> pd.DataFrame:
    """Every (architecture, accelerator) pair the search scored, in ``seq`` order (the frame
    :func:`nasco.pareto.hypervolume_history` reads)."""
    df = rows_frame(run.search, run.names, pairs=True)
    return df.sort_values("seq", kind="stable").reset_index(drop=True)
