"""Random search: independent uniform samples from the joint space."""
from __future__ import annotations

from nasco.search._base import Searcher
from nasco.space import Candidate

__all__ = ["RandomSearch"]


class RandomSearch(Searcher):
    """Samples every candidate with ``space.sample``; results are ignored.

    Random search is the baseline every NAS method has to beat (Li & Talwalkar, UAI 2019).
    It samples without replacement: a sample already asked or told is drawn again (up to
    ``FRESH_TRIES`` times, so a nearly exhausted space still gets an answer). Its whole state
    is the generator and the ids seen, which the base class already saves.
    """

    name = "random"

    def _ask(self, n: int) -> list[Candidate]:
        out: list[Candidate] = []
        for _ in range(n):
            out.append(self._fresh(lambda: self.space.sample(self.rng), {c.id for c in out}))
        return out
