"""Joint architecture x accelerator search with DARTS inside: the ``darts`` searcher.

The differentiable search itself is :func:`nasco.search.fit_darts` (a ``fit`` that returns
a cell, not an ask/tell loop). This searcher is the outer loop the driver runs: each ask
picks an accelerator configuration (the template's default first, then samples, every
configuration in turn, or mutations of tournament winners), runs DARTS with that
configuration's cost table in the hardware-aware loss, and proposes the derived cell on
that accelerator as one joint candidate; the evaluator retrains and costs it like any
other candidate, so the ledger, front and summary are the same as for every searcher.

Sharing: the warm-up epochs train weights only and do not depend on the accelerator, so
they run once and every configuration's search starts from them. With ``lam = 0`` nothing
depends on the accelerator: the first search's cell is reused for every configuration.

Run directory: ``darts/<hw key>/checkpoint.pt`` (after every epoch; a killed search
resumes there), ``darts/<hw key>/fit.json`` (the finished search: a resumed run replays it
instead of searching again) and ``darts/warmup.pt``.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import sys
import warnings
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from nasco.dsl import resolve
from nasco.core import Result
from nasco.search._base import Searcher
from nasco.evaluate._joint import EnergyTableCache
from nasco.evaluate._train import TrainingDiverged
from nasco.search._darts import DartsConfig, fit_darts, load_checkpoint, save_checkpoint
from nasco.search._evolution import tournament_order
from nasco.space import Candidate, SearchSpace, canonical_json

__all__ = ["DartsSearcher", "HW_SEARCH"]

HW_SEARCH = ("sample", "enumerate", "evolution")


def _hw_key(hw: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(hw).encode()).hexdigest()[:12] if hw else "nohw"


def enumerate_hw(hw_space) -> list[dict[str, Any]]:
    """Every configuration of a template or template set, defaults first, then in the
    order of the choices (members in their declared order)."""
    from nasco.space._hw import TemplateSetSpace, TemplateSpace

    def of(member: TemplateSpace) -> list[dict[str, Any]]:
        dims = member.dims()
        keys = list(dims)
        return [dict(zip(keys, vals)) for vals in itertools.product(*(dims[k].options for k in keys))]

    if isinstance(hw_space, TemplateSpace):
        out = of(hw_space)
    elif isinstance(hw_space, TemplateSetSpace):
        out = [{"template": name, **v} for name, m in hw_space.members.items() for v in of(m)]
    else:
        raise ValueError(f"hw_search='enumerate' takes a template or a template set, not '{hw_space.name}' "
                         f"({type(hw_space).__name__}); use hw_search='sample' or 'evolution'")
    default = hw_space.defaults()
    return [default] + [h for h in out if h != default]


class DartsSearcher(Searcher, EnergyTableCache):
    """DARTS (first or second order, optionally DARTS-PT and a hardware-aware loss) per accelerator configuration.

    Each ask runs one differentiable search of the cell (the space's other choices at their
    defaults, or ``hp``) with loss CE + lam * E_alpha[cost] / cost_0 on the proposed
    accelerator configuration, and proposes the derived cell on it. ``hw_search``: 'sample'
    (the default configuration first, then random ones), 'enumerate' (every configuration
    in turn) or 'evolution' (after ``population`` samples, mutate the winner of a
    tournament of two among the last ``population`` results, as regularized evolution).
    The other settings are those of :class:`nasco.search.DartsConfig`; ``lam`` defaults to 1
    with an accelerator and 0 without; ``cost`` is 'energy', 'latency' or 'energy+latency'.
    Needs the training data (``data``).
    """

    name = "darts"

    def __init__(self, space: SearchSpace, objectives: tuple[str, ...], *, seed: int = 0, data: Any = None,
                 epochs: int = 4, warmup_epochs: int = 2, batch_size: int = 32, lr: float = 0.05,
                 alpha_lr: float = 6e-3, order: int = 1, schedule: str = "cosine", power: float = 10.0,
                 lam: float | None = None, cost: str = "energy", pt: bool = False, pt_samples: int = 64,
                 pt_tune_steps: int = 2, hw_search: str = "sample", population: int = 4,
                 hp: dict[str, Any] | None = None, device: str = "cpu", log: Any = True) -> None:
        super().__init__(space, objectives, seed=seed)
        if space.multi_task:
            raise ValueError("the darts searcher searches one task's cell; multi-task spaces are not supported")
        if hw_search not in HW_SEARCH:
            raise ValueError(f"hw_search={hw_search!r} must be one of {', '.join(HW_SEARCH)}")
        if population < 1:
            raise ValueError(f"population={population} must be >= 1")
        costs = tuple(c.strip() for c in str(cost).split("+"))
        if lam is None:  # the hardware term when there is hardware to cost
            lam = 1.0 if space.hw is not None else 0.0
        self.config = DartsConfig(epochs=int(epochs), warmup_epochs=int(warmup_epochs), batch_size=int(batch_size),
                                  lr=float(lr), alpha_lr=float(alpha_lr), order=int(order), schedule=schedule,
                                  power=float(power), lam=float(lam), cost=costs, pt=bool(pt),
                                  pt_samples=int(pt_samples), pt_tune_steps=int(pt_tune_steps), seed=int(seed),
                                  device=device)
        if self.config.lam > 0 and space.hw is None:
            raise ValueError(f"lam={lam} needs an accelerator (--hw) for its cost; use lam=0 without one")
        hp = dict(hp or {})
        unknown = sorted(set(hp) - set(space.arch_dims))
        if unknown:
            raise ValueError(f"hp: unknown choices {unknown}; the space's choices: {sorted(space.arch_dims)}")
        self.hp = {k: hp.get(k, c.default) for k, c in space.arch_dims.items()}
        self.hw_search = hw_search
        self.population = int(population)
        self.data = data
        self.run_dir: Path | None = None
        self._log = log
        self._told: list[tuple[dict[str, Any], Result]] = []
        self._hw_seen: set[str] = set()
        self._enum: list[dict[str, Any]] | None = None
        self._asked = 0
        self._warm: dict[str, Any] | None = None
        self._fits: dict[str, dict[str, Any]] = {}     # hw key -> finished fit summary
        self._tables: dict = {}                         # EnergyTableCache's
        self._info: dict[str, dict[str, Any]] = {}     # candidate id -> ledger info

    # ------------------------------------------------------------------ plumbing
    def attach_run_dir(self, out_dir: str | Path, resume: bool = False) -> None:
        """Checkpoints and finished searches live in ``out_dir/darts`` (see module docstring)."""
        self.run_dir = Path(out_dir) / "darts"

    def log(self, text: str) -> None:
        if self._log is True:
            print(text, file=sys.stderr, flush=True)
        elif callable(self._log):
            self._log(text)

    def candidate_info(self, candidate: Candidate) -> dict[str, Any] | None:
        """What the search that proposed ``candidate`` found (recorded in its ledger row)."""
        return self._info.get(candidate.id)

    # ------------------------------------------------------------------ hardware proposals
    def _next_hw(self) -> dict[str, Any]:
        hw = self.space.hw
        if hw is None:
            return {}
        if self.hw_search == "enumerate":
            if self._enum is None:
                self._enum = enumerate_hw(hw)
            left = [h for h in self._enum if _hw_key(h) not in self._hw_seen]
            if not left:
                # All searched: a repeat, which the driver serves from the ledger (and stops
                # after too many of them) instead of searching again.
                warnings.warn(f"darts: all {len(self._enum)} accelerator configurations were searched; "
                              f"proposing the first again", RuntimeWarning, stacklevel=3)
                return self._enum[0]
            return left[0]
        if self._asked == 0:
            return hw.defaults()
        if self.hw_search == "evolution" and len(self._told) >= self.population:
            recent = self._told[-self.population:]
            picks = self.rng.choice(len(recent), size=min(2, len(recent)), replace=False)
            results = [recent[int(i)][1] for i in picks]
            order = tournament_order(results, self.objective_defs, self.rng.random(len(results)))
            parent = recent[int(picks[int(order[0])])][0]

            def draw() -> dict[str, Any]:
                return hw.mutate(parent, self.rng) or hw.sample(self.rng)
        else:
            def draw() -> dict[str, Any]:
                return hw.sample(self.rng)
        cand = draw()
        for _ in range(49):  # a fresh configuration when there is one (cf. Searcher._fresh)
            if _hw_key(cand) not in self._hw_seen:
                break
            cand = draw()
        return cand

    # ------------------------------------------------------------------ the inner search
    def _fit(self, hw: dict[str, Any], k: int) -> dict[str, Any]:
        """The finished search for ``hw`` (run now, read back from the run directory, or
        shared when it cannot depend on the accelerator)."""
        if self.data is None:
            raise ValueError("the darts searcher needs the training data: DartsSearcher(..., data=DataSplits)")
        c = self.config
        key = _hw_key(hw)
        # With lam = 0 (and no accelerator) the search does not see the accelerator: one
        # search serves every configuration of a run. Without an accelerator, each ask is a
        # search with another seed (DARTS is commonly reported over several seeds).
        share = c.lam == 0 and self.space.hw is not None
        slot = "shared" if share else (key if self.space.hw is not None else f"seed{k}")
        if slot in self._fits:
            return dict(self._fits[slot], reused=True)
        folder = self.run_dir / slot if self.run_dir is not None else None
        done = folder / "fit.json" if folder is not None else None
        if done is not None and done.is_file():
            summary = json.loads(done.read_text())
            self._fits[slot] = summary
            self.log(f"[darts] search for {slot} read back from {done}")
            return summary
        arch = resolve(self.space.arch_spec, self.hp)
        template = table = None
        if self.space.hw is not None:
            template = self.space.hw.resolve(hw)[0]
            table = self.table_of(template)
        config = c if self.space.hw is not None or k == 0 else replace(c, seed=c.seed + k)
        warm = self._warm_state() if share is False and self.space.hw is not None else None
        label = f"{template.name} {key}" if template is not None else slot
        self.log(f"[darts] search {self._asked + 1}: cell of {arch.name} on {label} (lam {c.lam}, "
                 f"{c.epochs} epochs, {c.warmup_epochs} warm-up)")
        try:
            fit = fit_darts(arch, self.data, config, hw=(template, table) if template is not None else None,
                            checkpoint=folder / "checkpoint.pt" if folder is not None else None,
                            log=self.log, warm_start=warm)
        except TrainingDiverged as exc:
            # Recorded as a failed candidate (the cell it had reached, with the reason); the
            # outer search goes on with the next configuration.
            summary = {"cell": exc.cell, "search_failed": f"TrainingDiverged: {exc}", "slot": slot,
                       "history": [{k2: v for k2, v in h.items()} for h in exc.history],
                       "warm_start": warm is not None, "config": asdict(config)}
            self._save(folder, summary)
            self._fits[slot] = summary
            return summary
        if fit.warm is not None and self._warm is None:
            self._warm = fit.warm
            if self.run_dir is not None:
                save_checkpoint(self.run_dir / "warmup.pt", fit.warm)
        summary = {
            "cell": fit.cell, "search_seconds": round(fit.seconds, 2), "collapse": fit.collapse,
            "expected": fit.expected, "reference": fit.reference, "weights": fit.weights, "pt": fit.pt,
            "resumed_from_epoch": fit.resumed_from, "warm_start": warm is not None,
            "history": [{k2: v for k2, v in h.items() if k2 != "cell"} | {"cell": h["cell"]} for h in fit.history],
            "config": asdict(config), "slot": slot,
        }
        self._save(folder, summary)
        self._fits[slot] = summary
        return summary

    @staticmethod
    def _save(folder: Path | None, summary: dict[str, Any]) -> None:
        if folder is None:
            return
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "fit.json.tmp"
        tmp.write_text(json.dumps(summary, indent=1, default=float))
        tmp.replace(folder / "fit.json")

    def _warm_state(self) -> dict[str, Any] | None:
        if self._warm is None and self.run_dir is not None:
            self._warm = load_checkpoint(self.run_dir / "warmup.pt")
        return self._warm

    # ------------------------------------------------------------------ ask / tell
    def _ask(self, n: int) -> list[Candidate]:
        out = []
        for _ in range(n):
            hw = self._next_hw()
            summary = self._fit(hw, self._asked)
            cand = self.space.make(summary["cell"], self.hp, hw if self.space.hw is not None else None)
            self._hw_seen.add(_hw_key(hw))
            self._asked += 1
            info = {k: summary[k] for k in ("search_seconds", "collapse", "expected", "slot", "warm_start",
                                            "resumed_from_epoch", "search_failed") if k in summary}
            info.update(searcher="darts", reused=bool(summary.get("reused", False)),
                        lam=self.config.lam, order=self.config.order, pt=self.config.pt,
                        final_search_valid_accuracy=summary["history"][-1]["search_valid_accuracy"]
                        if summary.get("history") else None)
            self._info[cand.id] = info
            out.append(cand)
        return out

    def _tell(self, candidate: Candidate, result: Result) -> None:
        self._told.append((dict(candidate.hw), result))
        self._hw_seen.add(_hw_key(candidate.hw))

    def _state(self) -> dict[str, Any]:
        return {"asked": self._asked, "told": [[hw, r.to_dict()] for hw, r in self._told]}

    def _load_state(self, state: dict[str, Any]) -> None:
        self._asked = int(state.get("asked", 0))
        self._told = [(hw, Result.from_dict(r)) for hw, r in state.get("told", [])]
        self._hw_seen = {_hw_key(hw) for hw, _ in self._told}
