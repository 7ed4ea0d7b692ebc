"""The multi-task hardware inner loop (nasco.evaluate.multi_hardware_front) on hetero_2task.

Networks: darts_snn and darts candidates for digits (full split), drawn with fixed seeds, each
trained by TrainCostEvaluator (``--epochs``, run seed 0). For each candidate the evaluator
runs the loop (its default ``hw_exhaustive``) and reports: the loop's wall seconds, the
configurations each task keeps of asic_template's 31,904, the in-budget pairs of the kept
sets, and the front's size. The quantized accuracies the loop asks for are memoised by the
evaluator per (training, precision), so the evaluation's loop pays for them and the
NSGA-II runs below do not.

``--nsga2 B [B ...]`` (sets HW_PAIR_BUDGET): the same networks' loop forced into NSGA-II
(``exhaustive=0``) with each evaluation budget, against the exhaustive front: the share of
the exhaustive front's objective vectors it found and the hypervolume ratio (accuracy,
energy, latency, area in minimisation form, normalised to the exhaustive front's ideal and
nadir, reference 1.1 each; pymoo's HV), and its seconds beyond the per-task costing.

Usage::

    OMP_NUM_THREADS=1 python experiments/hw_multi_loop.py --seeds 0 1 2 --nsga2 2000 5000 10000 \\
        [--out experiments/results/hw_multi_loop.md]
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

OBJ = ("accuracy", "energy", "latency", "area")


def _min_form(points) -> np.ndarray:
    from nasco.core import BUILTIN_OBJECTIVES

    return np.array([[-p.values[o] if BUILTIN_OBJECTIVES[o].maximise else p.values[o] for o in OBJ]
                     for p in points])


def _hv_ratio(found, exact) -> float:
    from pymoo.indicators.hv import HV

    E, F = _min_form(exact), _min_form(found)
    lo, hi = E.min(axis=0), E.max(axis=0)
    scale = np.where(hi > lo, hi - lo, 1.0)
    hv = HV(ref_point=np.full(len(OBJ), 1.1))
    return float(hv((F - lo) / scale) / hv((E - lo) / scale))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--nsga2", type=int, nargs="*", default=[])
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from nasco.dsl import load_spec
    from nasco.evaluate import TaskNetwork, TrainCostEvaluator, multi_hardware_front
    from nasco.evaluate._data import load_dataset
    from nasco.space import SearchSpace

    space = SearchSpace([load_spec("darts_snn"), load_spec("darts")], load_spec("hetero_2task"))
    ev = TrainCostEvaluator(space, load_dataset("digits", seed=0), OBJ, epochs=args.epochs)
    lines = ["| seed | loop s | evaluation s | kept | in-budget pairs | front | feasible |",
             "|---|---|---|---|---|---|---|"]
    nsga = ["| seed | budget | found / exhaustive front | HV ratio | s (exhaustive s) |",
            "|---|---|---|---|---|"]
    for seed in args.seeds:
        cand = space.sample(np.random.default_rng(seed))
        t = time.perf_counter()
        res = ev.evaluate(cand, seed)
        info = res.metrics["hw_front"]
        lines.append(f"| {seed} | {res.metrics['hw_front_seconds']:.1f} | {time.perf_counter() - t:.1f} | "
                     f"{info['kept']} | {info['pairs']} | {info['front']} | {info['feasible']} |")
        print(lines[-1], flush=True)
        if not args.nsga2:
            continue
        archs, _ = space.resolve(cand)
        nets = [ev._task(i, a, g, None, f"t{i}")[3]
                for i, (a, g) in enumerate(zip(archs, space.task_archs(cand)))]
        tasks = [TaskNetwork(n.workload, n.rates, n.accuracy_at) for n in nets]
        exact = multi_hardware_front(tasks, space.hw, objectives=OBJ, proposed=cand.hw, table_of=ev.table_of)
        want = {tuple(p.objectives[o] for o in OBJ) for p in exact.points}
        for budget in args.nsga2:
            f = multi_hardware_front(tasks, space.hw, objectives=OBJ, proposed=cand.hw, exhaustive=0,
                                     budget=budget, seed=seed, table_of=ev.table_of)
            got = {tuple(p.objectives[o] for o in OBJ) for p in f.points}
            nsga.append(f"| {seed} | {budget} | {len(got & want)} / {len(want)} | "
                        f"{_hv_ratio(f.points, exact.points):.4f} | {f.seconds:.1f} ({exact.seconds:.1f}) |")
            print(nsga[-1], flush=True)
    text = "\n".join(lines + ([""] + nsga if args.nsga2 else [])) + "\n"
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
    print(text)


if __name__ == "__main__":
    main()
