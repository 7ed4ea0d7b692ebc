"""Optuna inside Ray Tune: a nasco searcher whose proposals come from Tune's ``OptunaSearch``
(``TuneExecutor(optuna=True)``, ``nasco search --executor tune --tune-optuna``); see
:mod:`nasco.run._tune` for why it is a searcher adapter rather than Tune's search algorithm.
Ray is imported when such a searcher is made, not with this module."""
from __future__ import annotations

from typing import Any

from nasco.core import Result
from nasco.search._base import Searcher as NascoSearcher
from nasco.search._optuna import SAMPLER_RETRIES, OptunaSearcher
from nasco.space import Candidate

__all__ = ["TuneOptunaSearcher"]


class TuneOptunaSearcher(NascoSearcher):
    """A nasco searcher whose proposals come from Ray Tune's ``OptunaSearch`` built like
    ``source`` (a nasco Optuna searcher): the same sampler (class, settings, seed), the
    objectives as ``metric`` with their senses as ``mode``, and ``source``'s codec as the
    define-by-run space. ``ask`` is ``OptunaSearch.suggest``, ``tell`` is
    ``OptunaSearch.on_trial_complete`` (failed: an errored trial, FAIL in the study;
    infeasible: its values with the constraint ``violation`` set, as the nasco searcher
    does). A proposal already asked or told is dropped as FAIL (samplers ignore failed
    trials) and asked again, at most ``SAMPLER_RETRIES`` times."""

    def __init__(self, source: NascoSearcher) -> None:
        if not isinstance(source, OptunaSearcher):
            raise ValueError(f"optuna=True runs nasco's Optuna searchers (optuna-tpe, optuna-nsga2, "
                             f"optuna-random) through Tune's OptunaSearch; the search uses '{source.name}'")
        super().__init__(source.space, source.objective_defs, seed=source.seed)
        from ray.tune.search.optuna import OptunaSearch

        self.name = f"{source.name}-tune"
        self.source = source
        self.sampler = source._sampler()
        self.tune_search = OptunaSearch(space=self._define, metric=list(self.objectives),
                                        mode=[self.directions[o] for o in self.objectives],
                                        sampler=self.sampler)
        self._n = 0
        self._pending: dict[str, list[str]] = {}

    @classmethod
    def wrap(cls, searcher: NascoSearcher) -> TuneOptunaSearcher:
        if isinstance(searcher, cls):
            return searcher
        if searcher.n_told:
            raise ValueError("optuna=True replaces the search's Optuna searcher before its first proposal")
        return cls(searcher)

    def _define(self, trial: Any) -> dict[str, Any]:
        src = self.source
        cand = src.codec.decode(lambda name, options: src._suggest(trial, name, options))
        return {"nasco_candidate": cand.to_json()}

    def _ask(self, n: int) -> list[Candidate]:
        out: list[Candidate] = []
        for _ in range(n):
            picked = {c.id for c in out}
            for attempt in range(SAMPLER_RETRIES + 1):
                trial_id = f"nasco-{self._n}"
                self._n += 1
                cand = Candidate.from_json(self.tune_search.suggest(trial_id)["nasco_candidate"])
                if attempt < SAMPLER_RETRIES and (cand.id in self._seen or cand.id in picked):
                    self.tune_search.on_trial_complete(trial_id, error=True)
                    continue
                break
            self._pending.setdefault(cand.id, []).append(trial_id)
            out.append(cand)
        return out

    def _tell(self, candidate: Candidate, result: Result) -> None:
        self._require_objectives(candidate, result)
        waiting = self._pending.get(candidate.id)
        if not waiting:
            return  # told without being asked: OptunaSearch has no trial for it
        trial_id = waiting.pop(0)
        if not waiting:
            del self._pending[candidate.id]
        if result.status == "failed" or not all(o in result.objectives for o in self.objectives):
            self.tune_search.on_trial_complete(trial_id, error=True)
            return
        ot_trial = getattr(self.tune_search, "_ot_trials", {}).get(trial_id)
        if ot_trial is not None and hasattr(ot_trial, "set_constraint"):
            viol = 0.0
            if result.status != "ok":
                viol = sum(max(float(v), 0.0) for v in result.violations.values()) or 1.0
            ot_trial.set_constraint("violation", viol)
        values = {o: float(result.objectives[o]) for o in self.objectives}
        self.tune_search.on_trial_complete(trial_id, result=values)
