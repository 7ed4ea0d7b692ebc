"""Candidates: one architecture genotype joined with one accelerator configuration."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from nasco.core._errors import NascoError

__all__ = ["Candidate", "canonical_json"]


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no spaces: the same text in every process and run."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


@dataclass(frozen=True)
class Candidate:
    """An immutable joint candidate.

    ``arch`` holds the cell genotype (``cell``) and the values picked for the space's
    choices (``hp``); for NAS-Bench-201 also ``index`` and ``arch_str``. ``hw`` maps each
    accelerator choice (dotted key path) to its value. Both are stored as canonical JSON,
    so a candidate cannot be changed in place and its ``id`` is stable everywhere. Either
    part that is not a JSON object is a :class:`~nasco.core.NascoError`.
    """

    arch_json: str
    hw_json: str = "{}"
    id: str = field(init=False)

    def __post_init__(self) -> None:
        parts = {"arch": json.loads(self.arch_json), "hw": json.loads(self.hw_json)}
        for key, value in parts.items():
            if not isinstance(value, dict):
                raise NascoError(f"candidate: key '{key}': expected a JSON object ("
                                 f"{'the genotype' if key == 'arch' else 'the accelerator choices'}), found "
                                 f"{json.dumps(value)[:40]}; give a row of a ledger or pareto.csv, or "
                                 f"Candidate.to_json()")
        arch, hw = canonical_json(parts["arch"]), canonical_json(parts["hw"])
        object.__setattr__(self, "arch_json", arch)
        object.__setattr__(self, "hw_json", hw)
        digest = hashlib.sha256(f"{arch}|{hw}".encode()).hexdigest()
        object.__setattr__(self, "id", digest[:16])

    @classmethod
    def make(cls, arch: dict[str, Any], hw: dict[str, Any] | None = None) -> Candidate:
        return cls(canonical_json(arch), canonical_json(hw or {}))

    @property
    def arch(self) -> dict[str, Any]:
        """A fresh copy of the architecture part."""
        return json.loads(self.arch_json)

    @property
    def hw(self) -> dict[str, Any]:
        """A fresh copy of the accelerator part."""
        return json.loads(self.hw_json)

    def to_json(self) -> str:
        return canonical_json({"id": self.id, "arch": self.arch, "hw": self.hw})

    @classmethod
    def from_json(cls, text: str) -> Candidate:
        data = json.loads(text)
        cand = cls.make(data["arch"], data.get("hw", {}))
        if "id" in data and data["id"] != cand.id:
            raise ValueError(f"candidate id {data['id']} does not match its content ({cand.id})")
        return cand

    def __repr__(self) -> str:
        return f"Candidate(id={self.id})"
