"""NB201 searcher harness: searchers x datasets x query budgets x seeds on the lookup table.

The protocol (Dong & Yang, ICLR 2020; see shared/docs/REFERENCES.md, NB201): each searcher is
driven in-process with ``ask(1)`` / ``tell`` one query at a time, every tell being one table
query; it sees validation accuracy only, and the run reports the 200-epoch test accuracy of
the candidate with the best validation accuracy among those it queried. No ledger is written:
the evaluation is ``nasco.evaluate.TableEvaluator``, the same lookup ``nasco search
--evaluator table`` uses.

Search columns: CIFAR-10 searches ``c10valid_valid_200ep`` (the 'cifar10-valid' split) and
reports ``c10_test_200ep``. The table has no 200-epoch held-out validation column for CIFAR-100
or ImageNet16-120 (only ``*_valtest_200ep``, which contains the test set), so those search
the 12-epoch validation columns (``c100_valid_12ep``, ``in16_valid_12ep``; the paper's own
reward fidelity) and report ``c100_test_200ep`` / ``in16_test_200ep``.

``--mo``: objectives validation accuracy and HW-NAS-Bench Eyeriss latency (``eyeriss_ms``),
scored on the searcher's protocol: a run's front is the one ``nasco search`` writes to
``pareto.csv`` (:func:`nasco.pareto.pareto_front` of the queried cells on validation accuracy
and latency, the objectives the searcher saw), and each member is scored on 200-epoch test
error and latency. The true front is computed exhaustively over all 15,625 cells on (test
error, latency). Both are normalised at the true front's ideal and nadir and their
hypervolume taken with pymoo at the reference point (1, 1) = the nadir (EvoXBench's
convention; points worse than the reference add nothing); the run reports HV(run) / HV(true)
as ``hv_ratio``. Beside it, labelled oracle, ``oracle_hv_ratio``: the same ratio for the
non-dominated set on *test* error of every cell the run queried, a selection no search can
make. Peers that are not nasco searchers run in the same loop on the same cells: Optuna's own
NSGA-II and TPE samplers (``study.ask``/``study.tell`` over the six edge ops) and pymoo's own
NSGA-II (``algorithm.ask``/``tell`` over six ``Choice`` variables); their repeated proposals
are queried again and count against the budget.

``--objectives-set 3`` / ``4`` (implies ``--mo``): the same protocol with more hardware
objectives beside validation accuracy, every one a column of the shipped table that ``nasco
search --evaluator table --objectives`` takes by name: 3 adds Raspberry Pi 5 energy
(``pi5_energy``, HW-NAS-Bench-360), 4 adds that and HW-NAS-Bench FPGA latency
(``fpga_latency``). The true front, ideal and nadir are exhaustive over the 15,625 cells in as
many dimensions; pymoo's NSGA-III (``pymoo-own-nsga3``, Das-Dennis reference directions) joins
the peers.

Beside the runs, labelled ceiling and not a search result, :func:`ceiling`: the score of
exhaustive search under this protocol (every cell queried, the front chosen on validation,
scored on test), and the score of the validation-chosen front of the true front's own cells (a
query set no search can aim at, since it is chosen on test).

Per-run records are appended to ``<out>.jsonl`` as runs finish; a rerun with the same
``--out`` skips the runs already recorded (resume), and the markdown is rewritten from all
records.

Usage::

    OMP_NUM_THREADS=1 python experiments/nb201_harness.py \\
        --searchers random,evolution,optuna-tpe,predictor-guided,nsga2 --datasets c10 \\
        --budgets 50,100 --seeds 50 [--jobs 1] [--mo] [--objectives-set 2|3|4] \\
        [--time-limit S] [--out experiments/results/nb201_harness.md]

``--seeds`` is a count (seeds 0..N-1) or ranges, e.g. ``0-19,100-119``; the tables group seeds
by hundreds (0-99 are the seeds settings may be chosen on, 100-199 held out).
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # a shared 2-core box: see REFERENCES.md's library notes

import argparse
import json
import re
import shlex
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

SEARCHERS = ("random", "evolution", "nsga2", "optuna-tpe", "predictor-guided", "predictor-guided+synflow")
DATASETS = ("c10", "c100", "in16")
DATASET_NAMES = {"c10": "CIFAR-10", "c100": "CIFAR-100", "in16": "ImageNet16-120"}
# Search (split, fidelity) per dataset; the report is always test at 200 epochs.
SEARCH_COLUMN = {"c10": ("valid", 200), "c100": ("valid", 12), "in16": ("valid", 12)}
# Settings for budgets of 50-300 queries. Evolution: P = 20, S = 5 as REFERENCES.md's measured
# row; nsga2 / optuna-nsga2 keep their population of 20 (2-15 generations at these budgets).
SEARCHER_KW: dict[str, dict[str, Any]] = {
    "evolution": {"population_size": 20, "sample_size": 5},
    # The zero-cost variant: synflow as a predictor feature and a warmup that starts from the
    # 10 best of 1000 random cells by synflow (Abdelfattah et al., ICLR 2021). Proxies are
    # computed on untrained networks, not queried: they are not counted in the budget.
    "predictor-guided+synflow": {"zero_cost": "synflow", "warmup": 1000},
}
# Harness labels that name a nasco searcher with settings: label -> searcher name.
VARIANTS = {"predictor-guided+synflow": "predictor-guided"}
# Not nasco searchers: Optuna's own samplers and pymoo's own NSGA-II, each driven through its
# library's ask/tell over the six edge ops; every proposal is one table query, repeats included,
# as the library asks them. Optuna's TPE at its defaults (seeded); both NSGA-IIs with the
# population of 20 that nasco's nsga2 uses (2-15 generations at 50-300 queries).
OPTUNA_OWN = "optuna-own-tpe"
OPTUNA_OWN_NSGA2 = "optuna-own-nsga2"
PYMOO_OWN_NSGA2 = "pymoo-own-nsga2"
PYMOO_OWN_NSGA3 = "pymoo-own-nsga3"
PEERS = (OPTUNA_OWN, OPTUNA_OWN_NSGA2, PYMOO_OWN_NSGA2, PYMOO_OWN_NSGA3)
PEER_LABELS = {OPTUNA_OWN: "Optuna's own TPE (TPESampler defaults, not through nasco)",
               OPTUNA_OWN_NSGA2: "Optuna's own NSGA-II (NSGAIISampler, population 20, not through nasco)",
               PYMOO_OWN_NSGA2: "pymoo's own NSGA-II (population 20, mixed-variable operators, "
                                "not through nasco)",
               PYMOO_OWN_NSGA3: "pymoo's own NSGA-III (Das-Dennis directions, population = their number, "
                                "mixed-variable operators, not through nasco)"}
NSGA2_POPULATION = 20
MO_PROTOCOL = "returned-front"
MO_PROTOCOL_TEXT = (
    "Protocol (the searcher's): each run's front is the one `nasco search` writes to pareto.csv, the "
    "non-dominated set of the cells it queried on validation accuracy and the hardware objectives, what "
    "it saw; each member is scored on 200-epoch test error and the same hardware objectives. The true "
    "front is the exhaustive non-dominated set of all 15,625 cells on (test error, hardware objectives). "
    "Both are normalised at the true front's ideal and nadir, HV at the reference point (1, ..., 1) = "
    "the nadir (pymoo), and each cell is the "
    "mean ± std (ddof 1) over seeds of HV(run) / HV(true). The oracle rows select the non-dominated set "
    "on test of every queried cell, which no search can do; they bound what a selection step could gain. "
    "Optuna's and pymoo's own samplers may propose a cell again; each proposal is a query.")
LATENCY = "eyeriss_latency"
# The objectives beside validation accuracy, per ``--objectives-set``: table metrics by name
# (search_spaces/nb201_table.yaml), all minimised. 1 is the single-objective harness.
HW_OBJECTIVES = {1: (), 2: (LATENCY,), 3: (LATENCY, "pi5_energy"), 4: (LATENCY, "pi5_energy", "fpga_latency")}
HW_LABELS = {LATENCY: "Eyeriss latency", "pi5_energy": "Pi 5 energy", "fpga_latency": "FPGA latency"}

# NB201 paper (Dong & Yang, ICLR 2020, Table 5): CIFAR-10 test, 12-epoch valid reward, time budget.
PAPER_ROWS = [("random search", "93.70 ± 0.36"), ("REA", "93.92 ± 0.30"), ("REINFORCE", "93.85 ± 0.37"),
              ("BOHB", "93.61 ± 0.52")]
# REFERENCES.md "Measured here on shared/data/nb201" (>= 50 seeds; search c10valid_valid_200ep,
# report c10_test_200ep): {budget: mean}.
MEASURED_ROWS = [("random search", {100: "93.80", 300: "93.97"}),
                 ("regularized evolution (P = 20, S = 5)", {100: "94.18", 300: "94.35"}),
                 ("Optuna 5.0 TPE", {50: "94.08 ± 0.31", 100: "94.29 ± 0.18"})]
OPTIMA = {"c10": 94.37, "c100": 73.51, "in16": 47.31}
# The 2-objective goal the reference line quotes (HV ratio at 300 queries).
MO_TARGET = 0.98

_STATE: dict[str, Any] = {}


def _setup() -> dict[str, Any]:
    """Load the table and space once per process."""
    if _STATE:
        return _STATE
    from nasco.dsl import load_file
    from nasco.space import SearchSpace
    from nasco.tables import load_table

    table = load_table("nb201")
    arch = load_file(table.where.space_file, kind="arch_space")
    _STATE.update(table=table, space=SearchSpace(arch, None), evaluators={})
    return _STATE


def _evaluator(dataset: str, n_obj: int):
    """The table evaluator of ``dataset``'s search column and ``HW_OBJECTIVES[n_obj]``."""
    from nasco.evaluate import TableEvaluator

    st = _setup()
    key = (dataset, n_obj)
    if key not in st["evaluators"]:
        split, fid = SEARCH_COLUMN[dataset]
        objectives = ("accuracy", *HW_OBJECTIVES[n_obj])
        st["evaluators"][key] = TableEvaluator(st["table"], objectives, dataset=dataset, fidelity=fid, split=split)
    return st["evaluators"][key]


def front_scale(F: np.ndarray) -> dict[str, Any]:
    """Ideal, nadir and normalised hypervolume of the true front of the exhaustive set ``F``
    (n x k, minimisation; rows with a NaN are left out). The ideal and nadir are the front's
    per-objective minimum and maximum; ``hv_true`` is its hypervolume once scaled to 0 at the
    ideal and 1 at the nadir, at the reference point (1, ..., 1)."""
    from nasco.pareto import hypervolume, nondominated_mask

    F = np.asarray(F, float)
    F = F[~np.isnan(F).any(axis=1)]
    front = np.unique(F[nondominated_mask(F)], axis=0)
    ideal, nadir = front.min(axis=0), front.max(axis=0)
    return {"ideal": ideal, "nadir": nadir, "size": len(front),
            "hv_true": hypervolume((front - ideal) / (nadir - ideal), np.ones(F.shape[1]))}


def hv_ratio(F: np.ndarray, scale: dict[str, Any]) -> float:
    """HV of the points ``F`` (n x k, minimisation, natural units) over the true front's, both
    normalised with ``scale`` (:func:`front_scale`); points beyond the nadir add nothing."""
    from nasco.pareto import hypervolume

    F = np.asarray(F, float).reshape(-1, len(scale["ideal"]))
    z = (F - scale["ideal"]) / (scale["nadir"] - scale["ideal"])
    return hypervolume(z, np.ones(F.shape[1])) / scale["hv_true"]


def returned_front(valid_acc: np.ndarray, hw: np.ndarray, objectives: Any) -> np.ndarray:
    """Indices of the front a run returns from its queried cells: the rows ``nasco search``
    writes to pareto.csv (:func:`nasco.pareto.pareto_front` on validation accuracy and the
    hardware objectives ``hw``, one column per ``objectives[1:]``, in the objectives' own
    units), in query order."""
    import pandas as pd

    from nasco.pareto import pareto_front

    names = [o.name for o in objectives]
    hw = np.asarray(hw, float).reshape(len(valid_acc), len(names) - 1)
    rows = pd.DataFrame({"status": "ok", names[0]: valid_acc,
                         **{n: hw[:, j] for j, n in enumerate(names[1:])}, "_row": np.arange(len(valid_acc))})
    return pareto_front(rows, objectives)["_row"].to_numpy()


def score_mo(valid_acc: Any, test_err: Any, hw: Any, objectives: Any,
             scale: dict[str, Any]) -> dict[str, Any]:
    """The searcher's-protocol score of one run's queried cells: the front chosen on validation
    (:func:`returned_front`) scored on (test error, hardware objectives ``hw``) as ``hv_ratio``;
    the oracle, the non-dominated set on (test error, ``hw``) of every queried cell, as
    ``oracle_hv_ratio``."""
    from nasco.pareto import nondominated_mask

    hw = np.asarray(hw, float).reshape(len(test_err), len(objectives) - 1)
    test_f = np.column_stack([np.asarray(test_err, float), hw])
    chosen = returned_front(np.asarray(valid_acc, float), hw, objectives)
    oracle = test_f[nondominated_mask(test_f)]
    return {"hv_ratio": hv_ratio(test_f[chosen], scale), "front_size": int(len(chosen)),
            "oracle_hv_ratio": hv_ratio(oracle, scale),
            "oracle_front_size": int(len(np.unique(oracle, axis=0)))}


def _all_cells(dataset: str, n_obj: int) -> dict[str, Any]:
    """Every cell of the table: validation accuracy as the searcher's ``accuracy`` objective
    (a fraction), 200-epoch test error (%) and the hardware objectives (n x (n_obj - 1))."""
    st = _setup()
    ev = _evaluator(dataset, n_obj)
    cols = st["table"].columns
    return {"valid_acc": np.asarray(cols[ev.columns["accuracy"]], float) * ev.scale["accuracy"],
            "test_err": 100.0 - np.asarray(cols[ev.test_column], float),
            "hw": np.stack([np.asarray(cols[ev.columns[o]], float) for o in HW_OBJECTIVES[n_obj]], axis=1),
            "objectives": ev.objective_defs}


def _true_front(dataset: str, n_obj: int = 2) -> dict[str, Any]:
    """:func:`front_scale` of all cells of the table on (200-epoch test error %, hardware objectives)."""
    st = _setup()
    key = ("front", dataset, n_obj)
    if key not in st:
        cells = _all_cells(dataset, n_obj)
        st[key] = front_scale(np.column_stack([cells["test_err"], cells["hw"]]))
    return st[key]


def ceiling(valid_acc: Any, test_err: Any, hw: Any, objectives: Any, scale: dict[str, Any]) -> dict[str, Any]:
    """What selection on validation allows when the cells given are all there are (not a search
    result). ``hv_ratio``: the front exhaustive search returns, every cell queried and the front
    chosen on validation (:func:`score_mo` of all cells). ``best_set_hv_ratio``: the same for
    a run that queried only the cells of the true front on (test error, ``hw``), their
    ``true_front_cells``; a query set chosen on test, which only bounds from below what the best
    possible set of queries scores. Rows with a NaN are left out."""
    from nasco.pareto import nondominated_mask

    valid_acc, test_err = np.asarray(valid_acc, float), np.asarray(test_err, float)
    hw = np.asarray(hw, float).reshape(len(test_err), len(objectives) - 1)
    ok = ~(np.isnan(valid_acc) | np.isnan(test_err) | np.isnan(hw).any(axis=1))
    valid_acc, test_err, hw = valid_acc[ok], test_err[ok], hw[ok]
    every = score_mo(valid_acc, test_err, hw, objectives, scale)
    best = np.flatnonzero(nondominated_mask(np.column_stack([test_err, hw])))
    on_best = score_mo(valid_acc[best], test_err[best], hw[best], objectives, scale)
    return {"hv_ratio": every["hv_ratio"], "front_size": every["front_size"], "cells": int(ok.sum()),
            "best_set_hv_ratio": on_best["hv_ratio"], "true_front_cells": int(len(best))}


def table_ceiling(dataset: str, n_obj: int) -> dict[str, Any]:
    """:func:`ceiling` of the whole table for ``dataset`` and ``HW_OBJECTIVES[n_obj]``."""
    cells = _all_cells(dataset, n_obj)
    return ceiling(cells["valid_acc"], cells["test_err"], cells["hw"], cells["objectives"],
                   _true_front(dataset, n_obj))


def run_one(searcher: str, dataset: str, budget: int, seed: int, mo: bool, n_obj: int = 2) -> dict[str, Any]:
    """One search of ``budget`` sequential queries; returns the run's record. ``mo``: validation
    accuracy and ``HW_OBJECTIVES[n_obj]`` (``n_obj`` objectives in all), else accuracy alone. A
    searcher that raises gives a record with ``error`` (and no result), counted in the tables."""
    n_obj = n_obj if mo else 1
    try:
        return _run_one(searcher, dataset, budget, seed, n_obj)
    except Exception as exc:  # noqa: BLE001 - recorded and reported, never dropped silently
        msg = f"{type(exc).__name__}: {exc}"
        print(f"ERROR {searcher} {dataset} b={budget} seed={seed}: {msg}", file=sys.stderr, flush=True)
        return {"searcher": searcher, "dataset": dataset, "budget": budget, "seed": seed, "mo": mo,
                **({"n_obj": n_obj} if mo else {}),
                "seconds": 0.0, "failed": 0, "unique": 0, "warnings": [], "error": msg[:300]}


class _OptunaOwn:
    """Optuna's own sampler as an ask/tell pair for the loop below: each ask is one
    ``study.ask`` with a categorical per edge, each tell one ``study.tell`` (what
    ``study.optimize`` does per trial). Objectives: accuracy (max), then the hardware
    objectives ``hw`` (min)."""

    def __init__(self, space: Any, seed: int, sampler: str, hw: tuple[str, ...]) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.space, self.ops, self.hw = space, list(space.cells.ops), hw
        smp = (optuna.samplers.TPESampler(seed=seed) if sampler == "tpe" else
               optuna.samplers.NSGAIISampler(population_size=NSGA2_POPULATION, seed=seed))
        directions = ["maximize"] + ["minimize"] * len(hw)
        self.study = optuna.create_study(directions=directions, sampler=smp)
        self.n_edges = len(space.sample(np.random.default_rng(0)).arch["cell"]["edges"])  # 6 in NB201

    def ask(self, n: int) -> list[Any]:
        self.trial = self.study.ask()
        ops = [self.trial.suggest_categorical(f"edge{i}", self.ops) for i in range(self.n_edges)]
        return [self.space.make({"edges": ops})]

    def tell(self, cand: Any, res: Any) -> None:
        import optuna

        if not res.feasible:
            self.study.tell(self.trial, state=optuna.trial.TrialState.FAIL)
            return
        vals = [float(res.objectives[o]) for o in ("accuracy", *self.hw)]
        self.study.tell(self.trial, vals)


class _PymooOwn:
    """pymoo's own NSGA-II (population 20) or NSGA-III (``algorithm="nsga3"``: Das-Dennis
    reference directions, :func:`nsga3_directions`, population = their number), with
    mixed-variable sampling, mating and duplicate elimination over one ``Choice`` per edge, as
    an ask/tell pair for the loop below: a generation is asked from pymoo, served one cell per
    ask, and told back once all its cells are scored. Objectives in minimisation form:
    (-accuracy, hardware objectives ``hw``)."""

    def __init__(self, space: Any, seed: int, hw: tuple[str, ...], algorithm: str = "nsga2") -> None:
        from pymoo.algorithms.moo.nsga2 import NSGA2
        from pymoo.algorithms.moo.nsga3 import NSGA3
        from pymoo.core.mixed import (
            MixedVariableDuplicateElimination,
            MixedVariableMating,
            MixedVariableSampling,
        )
        from pymoo.core.problem import Problem
        from pymoo.core.termination import NoTermination
        from pymoo.core.variable import Choice

        self.space, self.ops, self.hw = space, list(space.cells.ops), hw
        self.n_edges = len(space.sample(np.random.default_rng(0)).arch["cell"]["edges"])
        variables = {f"edge{i}": Choice(options=self.ops) for i in range(self.n_edges)}
        problem = Problem(vars=variables, n_obj=1 + len(hw))
        dup = MixedVariableDuplicateElimination()
        operators = {"sampling": MixedVariableSampling(), "eliminate_duplicates": dup,
                     "mating": MixedVariableMating(eliminate_duplicates=dup)}
        if algorithm == "nsga3":
            dirs = nsga3_directions(1 + len(hw))
            self.algo = NSGA3(dirs, pop_size=len(dirs), **operators)
        else:
            self.algo = NSGA2(pop_size=NSGA2_POPULATION, **operators)
        self.algo.setup(problem, termination=NoTermination(), seed=seed)
        self.pop: Any = None
        self.next = 0
        self.F: list[list[float]] = []

    def ask(self, n: int) -> list[Any]:
        if self.pop is None:
            self.pop, self.next, self.F = self.algo.ask(), 0, []
        x = self.pop[self.next].X
        return [self.space.make({"edges": [x[f"edge{i}"] for i in range(self.n_edges)]})]

    def tell(self, cand: Any, res: Any) -> None:
        worst = 1e30  # finite, so pymoo's normalisation never sees inf
        self.F.append([-float(res.objectives["accuracy"]) if res.feasible else worst]
                      + [float(res.objectives[o]) if res.feasible else worst for o in self.hw])
        self.next += 1
        if self.next == len(self.pop):
            self.pop.set("F", np.asarray(self.F, float))
            self.algo.tell(infills=self.pop)
            self.pop = None


def nsga3_directions(n_obj: int) -> np.ndarray:
    """Das-Dennis reference directions for NSGA-III (Deb & Jain 2014) with the fewest partitions
    that give at least the population NSGA-II uses here (20): 20 directions for 2 objectives
    (19 partitions), 21 for 3 (5), 20 for 4 (3)."""
    from math import comb

    from pymoo.util.ref_dirs import get_reference_directions

    p = next(p for p in range(1, 100) if comb(p + n_obj - 1, n_obj - 1) >= NSGA2_POPULATION)
    return get_reference_directions("das-dennis", n_obj, n_partitions=p)


def make_runner(searcher: str, space: Any, objective_defs: Any, seed: int, hw: tuple[str, ...]) -> Any:
    """The ask/tell object for harness label ``searcher`` on accuracy and the hardware
    objectives ``hw`` (none: single objective): a peer library's own, else the nasco searcher
    (with its harness settings), every one seeded with ``seed``."""
    if searcher == OPTUNA_OWN:
        return _OptunaOwn(space, seed, "tpe", hw)
    if searcher in (OPTUNA_OWN_NSGA2, PYMOO_OWN_NSGA3) and not hw:
        raise ValueError(f"{searcher} is multi-objective only here")
    if searcher == OPTUNA_OWN_NSGA2:
        return _OptunaOwn(space, seed, "nsga2", hw)
    if searcher in (PYMOO_OWN_NSGA2, PYMOO_OWN_NSGA3):
        return _PymooOwn(space, seed, hw, "nsga3" if searcher == PYMOO_OWN_NSGA3 else "nsga2")
    from nasco.search import make_searcher

    return make_searcher(VARIANTS.get(searcher, searcher), space, objective_defs, seed,
                         **SEARCHER_KW.get(searcher, {}))


def _run_one(searcher: str, dataset: str, budget: int, seed: int, n_obj: int) -> dict[str, Any]:
    st = _setup()
    ev = _evaluator(dataset, n_obj)
    hw_names, mo = HW_OBJECTIVES[n_obj], n_obj > 1
    s = make_runner(searcher, st["space"], ev.objective_defs, seed, hw_names)
    t0 = time.perf_counter()
    valid, test, hw, acc_obj, ids, n_failed, n_queries = [], [], [], [], [], 0, 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(budget):
            (cand,) = s.ask(1)
            res = ev.evaluate(cand, seed)
            n_queries += 1
            s.tell(cand, res)
            if not res.feasible:
                n_failed += 1
                continue
            ids.append(cand.id)
            valid.append(res.metrics["valid_accuracy"])
            test.append(res.metrics["test_accuracy"])
            if mo:
                acc_obj.append(res.objectives["accuracy"])  # what the ledger, so pareto.csv, holds
                hw.append([res.objectives[o] for o in hw_names])
    seconds = time.perf_counter() - t0
    rec: dict[str, Any] = {"searcher": searcher, "dataset": dataset, "budget": budget, "seed": seed, "mo": mo,
                           "seconds": round(seconds, 3), "queries": n_queries, "failed": n_failed,
                           "unique": len(set(ids)),
                           "warnings": sorted({str(w.message)[:200] for w in caught})}
    if valid:
        best = int(np.argmax(valid))  # first of the best validation accuracy
        rec.update(best_valid=100 * valid[best], best_test=100 * test[best],
                   oracle_test=100 * max(test))
    if mo:
        rec["protocol"] = "returned-front"
        rec["n_obj"] = n_obj
        rec.update(score_mo(acc_obj, 100.0 - 100 * np.asarray(test), np.asarray(hw, float),
                            ev.objective_defs, _true_front(dataset, n_obj)))
    return rec


def n_obj_of(r: dict[str, Any]) -> int:
    """A record's number of objectives: 1 single-objective; multi-objective records written
    before ``--objectives-set`` have no ``n_obj`` and are the 2-objective problem."""
    return int(r.get("n_obj", 2)) if r["mo"] else 1


def _key(r: dict[str, Any]) -> tuple:
    return (r["searcher"], r["dataset"], int(r["budget"]), int(r["seed"]), bool(r["mo"]), n_obj_of(r))


def _ms(x: list[float], digits: int = 2) -> str:
    if not x:
        return "—"
    a = np.asarray(x, float)
    sd = a.std(ddof=1) if len(a) > 1 else 0.0
    return f"{a.mean():.{digits}f} ± {sd:.{digits}f}"


def problem_label(n_obj: int) -> str:
    """'test error × Eyeriss latency × ...' for ``n_obj`` objectives."""
    return " × ".join(["test error", *(HW_LABELS[o] for o in HW_OBJECTIVES[n_obj])])


def _ceilings(records: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    """:func:`table_ceiling` of every (dataset, number of objectives) of the multi-objective
    ``records`` (cached per process)."""
    st = _setup()
    out = {}
    for key in sorted({(r["dataset"], n_obj_of(r)) for r in records if r["mo"]}):
        if ("ceiling", key) not in st:
            st[("ceiling", key)] = table_ceiling(*key)
        out[key] = st[("ceiling", key)]
    return out


def render(records: list[dict[str, Any]], command: str | None, wall: float,
           ceilings: dict[tuple[str, int], dict[str, Any]] | None = None) -> str:
    """The markdown of ``records``: the commands that produced the records shown (and ``command``,
    the current one, unless None), then the tables; ``ceilings`` (:func:`_ceilings`), each
    under the tables of its (dataset, number of objectives)."""
    # Multi-objective records of an earlier protocol (no "protocol" key: the front of every queried
    # cell on test) stay in the .jsonl but are neither shown nor mixed in.
    stale = sum(1 for r in records if r["mo"] and r.get("protocol") != MO_PROTOCOL)
    records = [r for r in records if not r["mo"] or r.get("protocol") == MO_PROTOCOL]
    commands = list(dict.fromkeys([*(r["command"] for r in records if r.get("command")),
                                   *([command] if command else [])]))
    lines = ["# NB201 searcher harness", "",
             "Generated by `experiments/nb201_harness.py` (per-run records: the `.jsonl` of the same name, the resume file). Commands:", "",
             *(f"    {c}" for c in commands), "",
             "Protocol: sequential `ask(1)`/`tell`, one table query per tell (repeated asks count as queries); "
             "searchers see validation accuracy only. Single objective: each cell is the mean ± std "
             "(ddof 1) over seeds of the "
             "200-epoch **test** accuracy (%) of the queried cell with the best validation accuracy. "
             "CIFAR-10 searches `c10valid_valid_200ep`; CIFAR-100 and ImageNet16-120 search their 12-epoch "
             "`*_valid_12ep` (the table has no 200-epoch held-out validation column for them). "
             "Searcher settings: " + ", ".join(f"{k} {v}" for k, v in SEARCHER_KW.items())
             + "; the others at their nasco defaults. `predictor-guided+synflow` is nasco's predictor-guided "
             "searcher with the synflow zero-cost proxy as a feature and a zero-cost warmup (its first 10 "
             "queries are the 10 best of 1000 random cells by synflow); synflow is computed on the untrained "
             "network (~0.1 s of CPU per cell, cached), never queried from the table, so it is not counted "
             "in the budget. nasco's searchers skip candidates they already asked (up to 50 redraws); the "
             "libraries' own samplers (rows not through nasco) do not.", ""]
    so = [r for r in records if not r["mo"]]
    mo = [r for r in records if r["mo"]]
    if stale:
        lines += [f"{stale} multi-objective records of the earlier protocol (the front of every queried cell "
                  "selected on test) are kept in the .jsonl and not shown; a `--mo` run scores the front the "
                  "run returns instead.", ""]
    total = sum(r["seconds"] for r in so + mo)
    groups = [("Single objective: test accuracy (%)", so)] + [
        (f"Multi-objective, {k} objectives ({problem_label(k)}): HV ratio",
         [r for r in mo if n_obj_of(r) == k]) for k in sorted({n_obj_of(r) for r in mo})]
    for title, recs in groups:
        if recs:
            lines += _result_tables(title, recs, ceilings or {}) + _timing_table(recs)
    lines += _error_lines(records)
    lines += ["## Published and measured references", "",
              "NB201 paper (Dong & Yang, ICLR 2020, Table 5; CIFAR-10 test, 12-epoch valid reward, *time* "
              "budget, not a query budget, so not directly comparable):", "",
              "| searcher | CIFAR-10 test |", "|---|---|"]
    lines += [f"| {n} | {v} |" for n, v in PAPER_ROWS]
    ceiling_2 = (ceilings or {}).get(("c10", 2))
    lines += ["", "Multi-objective reference (issue text): Optuna's NSGA-II measured HV ratio 0.946 at 300 "
              "queries on this protocol (the front the search returns, chosen on validation, scored on "
              f"test); target >= {MO_TARGET}."
              + (f" Exhaustive search scores {ceiling_2['hv_ratio']:.3f} on this protocol (the ceiling line "
                 "under the 2-objective tables)" + (": the target lies above what a searcher that finds every "
                                                    "cell scores, and a mean over seeds reaches it only if most "
                                                    "runs miss the cells whose validation accuracy misleads."
                                                    if ceiling_2["hv_ratio"] < MO_TARGET else ".")
                 if ceiling_2 else ""), "",
              f"Sum of per-run search time: {total:.0f} s"
              + (f"; this invocation's wall time: {wall:.0f} s." if command else "."), ""]
    warns = sorted({w for r in records for w in r.get("warnings", [])})
    if warns:
        lines += ["Warnings raised during runs (deduplicated):", ""] + [f"- `{w}`" for w in warns[:20]] + [""]
    return "\n".join(lines)


def _result_tables(title: str, recs: list[dict[str, Any]],
                   ceilings: dict[tuple[str, int], dict[str, Any]]) -> list[str]:
    """One table per dataset, seed range and metric of ``recs`` (all of one problem): mean ± std
    per searcher and budget; for multi-objective records, each dataset's ceiling line
    (:func:`ceiling`) from ``ceilings`` where it holds one."""
    lines = [f"## {title}", ""]
    n_obj = n_obj_of(recs[0])
    if recs[0]["mo"]:
        lines += [MO_PROTOCOL_TEXT, ""]
    metrics = ([("hv_ratio", "front the run returns (pareto.csv, chosen on validation), scored on test"),
                ("oracle_hv_ratio", "oracle, not a search result: non-dominated set on test of every "
                                    "queried cell")] if recs[0]["mo"] else [("best_test", "")])
    for ds in [d for d in DATASETS if any(r["dataset"] == d for r in recs)]:
        for group in sorted({seed_group(r["seed"]) for r in recs if r["dataset"] == ds}):
            rd = [r for r in recs if r["dataset"] == ds and seed_group(r["seed"]) == group]
            budgets = sorted({r["budget"] for r in rd})
            names = [s for s in dict.fromkeys(r["searcher"] for r in rd)]
            seeds = sorted({r["seed"] for r in rd})
            for metric, what in metrics:
                head = (f"### {DATASET_NAMES[ds]}, seeds {_ranges(seeds)}"
                        + (f" (optimum test {OPTIMA[ds]})" if not recs[0]["mo"] else
                           f" ({problem_label(n_obj)}): {what}"))
                lines += [head, "", "| searcher | " + " | ".join(f"{b} queries" for b in budgets) + " |",
                          "|---|" + "---|" * len(budgets)]
                for s in names:
                    cells = []
                    for b in budgets:
                        rr = [r for r in rd if r["searcher"] == s and r["budget"] == b]
                        vals = [r[metric] for r in rr if metric in r]
                        n_err = sum(1 for r in rr if "error" in r)
                        err = f", {n_err} errored" if n_err else ""
                        cells.append(f"{_ms(vals, 3 if recs[0]['mo'] else 2)} (n={len(vals)}{err})"
                                     if rr else "—")
                    lines.append(f"| {PEER_LABELS.get(s, f'nasco {s}')} | " + " | ".join(cells) + " |")
                if ds == "c10" and not recs[0]["mo"]:
                    for name, row in MEASURED_ROWS:
                        lines.append(f"| REFERENCES.md measured: {name} | "
                                     + " | ".join(row.get(b, "—") for b in budgets) + " |")
                lines.append("")
        if (ds, n_obj) in ceilings:
            c = ceilings[(ds, n_obj)]
            scores = [r["hv_ratio"] for r in recs if r["dataset"] == ds and "hv_ratio" in r]
            above = [x for x in scores if x > c["hv_ratio"]]
            lines += [ceiling_line(c) + f" Runs above the exhaustive figure: {len(above)} of {len(scores)} here"
                      + (f" (best {max(above):.3f})." if above else "."), ""]
    return lines


def ceiling_line(c: dict[str, Any]) -> str:
    """The labelled ceiling line of :func:`ceiling`'s figures (not a search result)."""
    return (f"**Ceiling of this protocol, not a search result:** exhaustive search (all {c['cells']:,} cells "
            f"queried, the front chosen on validation: {c['front_size']} cells) scores HV ratio "
            f"**{c['hv_ratio']:.3f}**; a searcher that finds every cell gets that, and one that queries fewer "
            f"scores more only where the cells it missed rank better on validation than on test, which it "
            f"cannot see. Querying exactly the {c['true_front_cells']} cells of the true front (a set chosen "
            f"on test, so no search can aim at it) and choosing among them on validation scores "
            f"{c['best_set_hv_ratio']:.3f}, a lower bound on the best possible set of queries.")


def _timing_table(recs: list[dict[str, Any]]) -> list[str]:
    """Seconds, unique cells and failed queries per run, per (searcher, dataset, budget)."""
    lines = ["Seconds per run (mean) and unique cells per run (mean):", "",
              "| searcher | dataset | budget | runs | s/run | unique cells | failed queries |", "|---|---|---|---|---|---|---|"]
    groups: dict[tuple, list] = {}
    for r in recs:
        groups.setdefault((r["searcher"], r["dataset"], r["budget"]), []).append(r)
    for (s, ds, b), rr in groups.items():
        rr = [r for r in rr if "error" not in r] or rr
        lines.append(f"| {s} | {ds} | {b} | {len(rr)} | {np.mean([r['seconds'] for r in rr]):.2f} | "
                     f"{np.mean([r['unique'] for r in rr]):.1f} | {sum(r['failed'] for r in rr)} |")
    lines.append("")
    return lines


def _error_lines(records: list[dict[str, Any]]) -> list[str]:
    """One line per (searcher, kind of error) of the runs that raised, with their seeds."""
    def kind(e: str) -> str:  # one line per error kind, whatever numbers it quotes
        return re.sub(r"\d{5,}", "N", e)

    errors = sorted({(r["searcher"], kind(r["error"])) for r in records if "error" in r})
    if not errors:
        return []
    lines = ["Runs that raised (no result; seeds listed):", ""]
    for s, e in errors:
        seeds = sorted({r["seed"] for r in records if "error" in r and kind(r["error"]) == e
                        and r["searcher"] == s})
        lines.append(f"- {s}, seeds {seeds}: `{e}`")
    return lines + [""]

def seed_group(seed: int) -> int:
    """Seeds are reported in groups of a hundred: 0-99 (settings may be chosen on them), 100-199, ..."""
    return int(seed) // 100


def _ranges(seeds: list[int]) -> str:
    """Sorted ints as compact ranges: [0, 1, 2, 5] -> '0-2, 5'."""
    out: list[str] = []
    for s in seeds:
        if out and int(out[-1].split("-")[-1]) == s - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{s}"
        else:
            out.append(str(s))
    return ", ".join(out)


def parse_seeds(text: str) -> list[int]:
    """``--seeds``: a count N (seeds 0..N-1) or comma-separated seeds and ranges (``0-19,100-119``)."""
    text = text.strip()
    if text.isdigit():
        return list(range(int(text)))
    seeds: list[int] = []
    for part in _csv(text):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise ValueError(f"--seeds: expected a count or ranges like 0-19,100-119, found {part!r}")
        seeds += range(int(m.group(1)), int(m.group(2) or m.group(1)) + 1)
    return list(dict.fromkeys(seeds))


def plan(searchers: list[str], datasets: list[str], budgets: list[int], seeds: list[int], mo: bool,
         done: set[tuple] = frozenset(), n_obj: int = 2) -> list[tuple]:
    """The runs to do, as :func:`run_one`'s arguments, seed-major so that a run cut short still
    has every (searcher, budget) cell at equal seeds: every searcher gets every (dataset,
    budget, seed), less those ``done`` (keys of records, :func:`_key`)."""
    n_obj = n_obj if mo else 1
    return [(s, d, b, seed, mo, n_obj) for seed in seeds for d in datasets for b in budgets
            for s in searchers if (s, d, b, seed, mo, n_obj) not in done]


def _csv(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--searchers", default=",".join(SEARCHERS))
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--budgets", default="50,100,300")
    p.add_argument("--seeds", default="50",
                   help="a count N (seeds 0..N-1; default 50) or ranges, e.g. 0-19,100-119")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--mo", action="store_true", help="multi-objective: accuracy vs Eyeriss latency, HV ratio")
    p.add_argument("--objectives-set", type=int, choices=sorted(k for k in HW_OBJECTIVES if k > 1), default=2,
                   help="objectives of --mo: 2 accuracy, Eyeriss latency; 3 and Pi 5 energy; 4 and FPGA "
                        "latency (3 and 4 imply --mo)")
    p.add_argument("--out", default="experiments/results/nb201_harness.md")
    p.add_argument("--time-limit", type=float, default=None, help="stop submitting new runs after this many s")
    p.add_argument("--render-only", action="store_true",
                   help="rewrite the markdown from the .jsonl; run nothing")
    args = p.parse_args(argv)
    args.mo = args.mo or args.objectives_set > 2
    from nasco.search import SEARCHERS as KNOWN

    searchers, datasets = _csv(args.searchers), _csv(args.datasets)
    budgets = [int(b) for b in _csv(args.budgets)]
    try:
        seeds = parse_seeds(args.seeds)
    except ValueError as exc:
        p.error(str(exc))
    bad = ([s for s in searchers if s not in KNOWN and s not in VARIANTS and s not in PEERS]
           + [d for d in datasets if d not in DATASETS])
    if bad:
        p.error(f"unknown searcher/dataset {bad}; searchers: {sorted([*KNOWN, *VARIANTS, *PEERS])}; "
                f"datasets: {list(DATASETS)}")
    out = Path(args.out)
    jsonl = out.with_suffix(".jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    records = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()] if jsonl.exists() else []
    done = {_key(r) for r in records if not r["mo"] or r.get("protocol") == MO_PROTOCOL}
    if args.render_only:
        out.write_text(render(records, None, 0.0, _ceilings(records)))
        return 0
    todo = plan(searchers, datasets, budgets, seeds, args.mo, done, args.objectives_set)
    command = "OMP_NUM_THREADS=1 python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    print(f"{len(todo)} runs to do ({len(done)} already in {jsonl})", file=sys.stderr, flush=True)
    t0 = time.perf_counter()

    def record(rec: dict[str, Any]) -> None:
        rec["command"] = command
        records.append(rec)
        with jsonl.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
        val = (f"hv {rec.get('hv_ratio', float('nan')):.3f} "
               f"(oracle {rec.get('oracle_hv_ratio', float('nan')):.3f})"
               if rec["mo"] else f"test {rec.get('best_test', float('nan')):.2f}")
        print(f"[{time.perf_counter() - t0:7.1f}s] {rec['searcher']} {rec['dataset']} b={rec['budget']} "
              f"seed={rec['seed']}: {val} ({rec['seconds']:.1f}s)", file=sys.stderr, flush=True)
        if len(records) % 10 == 0:
            out.write_text(render(records, command, time.perf_counter() - t0, _ceilings(records)))

    def over() -> bool:
        return args.time_limit is not None and time.perf_counter() - t0 > args.time_limit

    if args.jobs <= 1:
        for job in todo:
            if over():
                print("time limit reached; stopping", file=sys.stderr)
                break
            record(run_one(*job))
    else:
        with ProcessPoolExecutor(args.jobs) as pool:
            futs = [pool.submit(run_one, *job) for job in todo]
            for fut in as_completed(futs):
                record(fut.result())
                if over():
                    for f in futs:
                        f.cancel()
                    print("time limit reached; cancelling the rest", file=sys.stderr)
                    break
    text = render(records, command, time.perf_counter() - t0, _ceilings(records))
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
