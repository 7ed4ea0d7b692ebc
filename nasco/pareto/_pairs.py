"""A ledger row and its members as (architecture, accelerator) pairs."""
from __future__ import annotations

from typing import Any, Iterable

from nasco.core import Candidate

__all__ = ["expand_pairs"]


def expand_pairs(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every (architecture, accelerator configuration) pair the rows scored, in row order.

    A row without ``members`` is one pair, returned as it is. A row with members (see
    :class:`nasco.core.Result`) is the row itself, then one pair per member whose ``hw``
    differs from the row's: a copy of the row with the member's ``hw``, ``status``,
    ``objectives`` and ``violations``, its ``metrics`` updated by the member's, ``id`` the
    id of (the row's arch, the member's hw) and ``row_id`` the row's id. Every pair of such a
    row has ``pair``: 0 for the row's own configuration, then 1, 2, ... in member order.
    A failed row has no members."""
    out: list[dict[str, Any]] = []
    for row in rows:
        members = row.get("members") or []
        if not members or row.get("status") == "failed":
            out.append(row)
            continue
        base = {k: v for k, v in row.items() if k != "members"}
        out.append({**base, "pair": 0, "row_id": row["id"]})
        k = 0
        for m in members:
            hw = m["hw"]
            if hw == (row.get("hw") or {}):
                continue
            k += 1
            out.append({**base, "pair": k, "row_id": row["id"], "id": Candidate.make(row["arch"], hw).id,
                        "hw": hw, "status": m["status"], "objectives": dict(m.get("objectives") or {}),
                        "violations": dict(m.get("violations") or {}),
                        "metrics": {**(row.get("metrics") or {}), **(m.get("metrics") or {})}})
    return out
