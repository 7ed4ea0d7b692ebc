"""Retraining after a search: which architectures of the front are trained stand-alone, and
the front a run reports once some are.

An evaluator that scores with inherited weights (the one-shot evaluator) ranks architectures
cheaply but not exactly; its ``retrainer`` trains the best of them from scratch. Those
trainings are written to the ledger as retrain rows (``phase`` :data:`RETRAIN_PHASE`), after
the search's rows, and the reported front takes their stand-alone accuracy in place of the
inherited one.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Sequence

import pandas as pd

from nasco.core import Candidate, Objective
from nasco.pareto import expand_pairs, pareto_front
from nasco.run._ledger import RETRAIN_PHASE, is_retrain, search_rows

__all__ = ["ACCURACY_SOURCES", "RETRAIN_PHASE", "Retrain", "accuracy_sources", "arch_of", "reported_rows",
           "retrain_plan", "retrained_archs"]

ACCURACY = "accuracy"  # the objective that ranks the front's architectures for retraining
# The values of the metric ``accuracy_source``: weights inherited from a supernet, or a network
# trained on its own.
INHERITED, STAND_ALONE = "inherited", "stand-alone"
ACCURACY_SOURCES = (INHERITED, STAND_ALONE)


def arch_of(row: dict[str, Any]) -> str:
    """The architecture of a ledger row (or pair) as canonical JSON: rows with equal ones are
    evaluations of one architecture, whatever their accelerator."""
    arch = row.get("arch")
    if isinstance(arch, str):  # a flat frame's column
        arch = json.loads(arch)
    return json.dumps(arch or {}, sort_keys=True)


@dataclass(frozen=True)
class Retrain:
    """One architecture to train stand-alone: ``cand`` is it with the accelerator of its best
    front pair; ``retrains`` the seqs of the search rows of that architecture (failed ones
    aside); ``inherited_accuracy`` its best accuracy on the search's front."""

    cand: Candidate
    retrains: tuple[int, ...]
    inherited_accuracy: float


def retrain_plan(rows: Sequence[dict[str, Any]], objectives: Sequence[Objective], top: int) -> list[Retrain]:
    """The ``top`` best architectures of the search's front, best first.

    The front is that of the search rows alone (the feasible non-dominated (architecture,
    accelerator) pairs, :func:`nasco.pareto.expand_pairs`), so the plan does not change as
    retrain rows are written. Its pairs are grouped by architecture (a front of pairs can hold
    one architecture several times), and each architecture is ranked by its best value of the
    ``accuracy`` objective on the front; a tie goes to the architecture evaluated first (lower
    seq). Fewer than ``top`` when the front holds fewer architectures."""
    defs = {o.name: o for o in objectives}
    if ACCURACY not in defs:
        raise ValueError(f"retraining ranks the front by the objective '{ACCURACY}'; the run's objectives "
                         f"are {', '.join(defs)}")
    search = search_rows(rows)
    first: dict[str, int] = {}
    seqs: dict[str, list[int]] = {}
    for r in sorted(search, key=lambda r: int(r["seq"])):
        a = arch_of(r)
        first.setdefault(a, int(r["seq"]))
        if r.get("status") != "failed":
            seqs.setdefault(a, []).append(int(r["seq"]))
    front = pareto_front(expand_pairs(search), list(objectives))
    best: dict[str, tuple[float, dict[str, Any]]] = {}  # arch -> (accuracy, accelerator of that pair)
    for _, pair in front.iterrows():  # in seq order: of equal accuracies the first pair stays
        a, acc = arch_of(pair), float(pair[ACCURACY])
        if a not in best or defs[ACCURACY].to_min(acc) < defs[ACCURACY].to_min(best[a][0]):
            best[a] = (acc, json.loads(pair["hw"]) if isinstance(pair["hw"], str) else dict(pair["hw"] or {}))
    order = sorted(best, key=lambda a: (defs[ACCURACY].to_min(best[a][0]), first[a]))[:max(int(top), 0)]
    return [Retrain(Candidate.make(json.loads(a), best[a][1]), tuple(seqs.get(a, ())), best[a][0])
            for a in order]


def retrained_archs(rows: Sequence[dict[str, Any]]) -> set[str]:
    """The architectures (:func:`arch_of`) with a retrain row that has a stand-alone accuracy
    (status ok or infeasible)."""
    return {arch_of(r) for r in rows if is_retrain(r) and r.get("status") != "failed"}


def reported_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows whose pairs make a run's reported front: the retrain rows, and the search rows
    of every architecture that no retrain row with a stand-alone accuracy stands for. A
    retrained architecture's search rows are left out, so its inherited accuracy never
    stands on the front; its retrain row (scored on the accelerator space as any trained
    network) stands in for them. A failed retrain leaves its architecture's search rows in."""
    done = retrained_archs(rows)
    return [r for r in rows if is_retrain(r) or arch_of(r) not in done]


def accuracy_sources(front: pd.DataFrame) -> list[str | None]:
    """The ``accuracy_source`` metric of each row of a front frame (its ``metrics`` column,
    JSON or dicts; None where a row has none)."""
    out: list[str | None] = []
    for m in front.get("metrics", pd.Series([], dtype=object)):
        if isinstance(m, str):
            m = json.loads(m)
        elif not isinstance(m, dict):
            m = {} if m is None or (isinstance(m, float) and math.isnan(m)) else dict(m)
        src = m.get("accuracy_source")
        out.append(str(src) if src is not None else None)
    return out
