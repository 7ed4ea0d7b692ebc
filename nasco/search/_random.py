"""Random search: independent uniform samples from the joint space."""
from __future__ import annotations

from nasco.search._base import Searcher
from nasco.space import Candidate

__all__ = ["RandomSearch"]


class RandomSearch(Searcher):
    """Samples every candidate with ``space.sample``; results are ignored.

    Random search is the baseline every NAS method has to beat (Li & Talwalkar, UAI 2019).
    Its whole state is the generator, which the base class already saves.
    """

    name = "random"

    def _ask(self, n: int) -> list[Candidate]:
        return [self.space.sample(self.rng) for _ in range(n)]
