"""A ledger row and its members as (architecture, accelerator) pairs."""
from __future__ import annotations

from typing import Any, Iterable

from nasco.core import Candidate

__all__ = ["expand_pairs"]


def expand_pairs(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every (architecture, accelerator configuration) pair the rows scored, once, in ``seq`` order.

    A row without ``members`` is one pair, returned as it is. A row with members (see
    :class:`nasco.core.Result`) is the row itself, then one pair per member whose ``hw``
    differs from the row's: a copy of the row with the member's ``hw``, ``status``,
    ``objectives`` and ``violations``, its ``metrics`` updated by the member's, ``id`` the
    id of (the row's arch, the member's hw) and ``row_id`` the row's id. Every pair of such a
    row has ``pair``: 0 for the row's own configuration, then 1, 2, ... in member order.
    A failed row has no members.

    Each pair appears once: rows of one trained network share members, and a member may be
    another row's own candidate. A pair whose id an earlier pair has is left out; rows are
    taken in ``seq`` order, so the earliest evaluation keeps it."""
    out: list[dict[str, Any]] = []
    seen: set[Any] = set()
    for row in sorted(rows, key=lambda r: r.get("seq", 0)):
        members = row.get("members") or []
        if not members or row.get("status") == "failed":
            if row.get("id") not in seen:
                seen.add(row.get("id"))
                out.append(row)
            continue
        base = {k: v for k, v in row.items() if k != "members"}
        if row["id"] not in seen:
            seen.add(row["id"])
            out.append({**base, "pair": 0, "row_id": row["id"]})
        k = 0
        for m in members:
            hw = m["hw"]
            if hw == (row.get("hw") or {}):
                continue
            k += 1
            pid = Candidate.make(row["arch"], hw).id
            if pid in seen:
                continue
            seen.add(pid)
            out.append({**base, "pair": k, "row_id": row["id"], "id": pid,
                        "hw": hw, "status": m["status"], "objectives": dict(m.get("objectives") or {}),
                        "violations": dict(m.get("violations") or {}),
                        "metrics": {**(row.get("metrics") or {}), **(m.get("metrics") or {})}})
    return out
