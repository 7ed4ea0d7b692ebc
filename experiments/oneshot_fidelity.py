"""Do inherited accuracies rank darts_snn cells? One-shot (SPOS) scores against stand-alone training.

``--n`` distinct random darts_snn cells (sample seed ``--seed``; macro hyperparameters, neuron
and timesteps at the space's defaults), each

* trained stand-alone on digits as :class:`nasco.evaluate.TrainCostEvaluator` trains it (the
  space's ``training`` settings, seed ``--seed``), validation and test accuracy recorded; and
* scored with inherited weights as :class:`nasco.evaluate.OneShotEvaluator` scores it: one
  supernet of the default macro trained by SPOS (:func:`nasco.evaluate.train_supernet`, each
  step a random cell with random neuron settings and timesteps, gradient clipped to
  ``--grad-clip``), the cell's path loaded into its stand-alone network, BN statistics
  re-estimated on ``RECALIBRATION_BATCHES`` fixed training batches, then a
  validation pass. The supernet is trained afresh for the space's epochs times each of
  ``--multipliers`` (the cosine schedule spans the whole training).

Then Kendall tau-b (scipy) of the inherited validation accuracy with the stand-alone validation
and test accuracies. ``--pool-bn`` measures a change to the network plans that nasco does not
make: a BatchNorm after every pooling op of a cell's edge (DARTS's search-time mixed op has
one, without affine parameters), in the supernet and in the stand-alone networks alike.
``--few-shot EDGE`` (an edge name of :mod:`nasco.evaluate._fewshot`, e.g. ``normal.n0.e0``)
measures few-shot supernets as ``OneShotEvaluator(few_shot=EDGE)`` trains them: one
sub-supernet per op the cells carry on that edge, each trained for the full epochs on cells
with that op there (same initialisation seed for all), each cell scored on its op's; the
supernet seconds are their sum.
Stand-alone results are kept in ``--cache`` (JSON lines, one per cell) and reused by later runs
with the same seed and ``--pool-bn``.

Usage::

    OMP_NUM_THREADS=1 nice -n 10 python experiments/oneshot_fidelity.py --n 20 --seed 0 --multipliers 1 2 4
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import kendalltau  # noqa: E402

from nasco.dsl import Choice, find_file, load_file, resolve  # noqa: E402
from nasco.evaluate import TrainConfig, load_dataset, recalibrate_bn, train_and_evaluate, train_supernet  # noqa: E402
from nasco.evaluate._fewshot import restricted_sampler, split_edge  # noqa: E402
from nasco.evaluate._oneshot import RECALIBRATION_BATCHES, shares_weights  # noqa: E402
from nasco.evaluate._spos import GRAD_CLIP  # noqa: E402
from nasco.evaluate._train import evaluate_accuracy  # noqa: E402
from nasco.nn import GraphNet, OneShotNet, plan_network  # noqa: E402
from nasco.space import SearchSpace  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def patch_pool_bn() -> None:
    """Planner patch for ``--pool-bn``: a BatchNorm after each pooling edge op."""
    import nasco.nn._plan as plan
    from nasco.dsl._vocab import OPS

    edge = plan._Builder.edge

    def edge_with_bn(self: Any, x: str, name: str, op: str, c_out: int, stride: int) -> str:
        out = edge(self, x, name, op, c_out, stride)
        pooled = self.nodes[self.index[out]].op in ("avgpool", "maxpool")
        if OPS[op].kind in ("pool_avg", "pool_max") and pooled:
            return self.bn(out, f"{name}.pool_bn")
        return out

    plan._Builder.edge = edge_with_bn


def sample_candidates(space: SearchSpace, n: int, seed: int) -> list:
    """``n`` distinct cells (by candidate id), hyperparameters at their defaults."""
    rng = np.random.default_rng(seed)
    out, seen = [], set()
    while len(out) < n:
        cand = space.make(space.cells.sample(rng))
        if cand.id not in seen:
            seen.add(cand.id)
            out.append(cand)
    return out


def config(arch: Any, seed: int, epochs: int | None = None) -> TrainConfig:
    """The space's training settings, as TrainCostEvaluator builds them."""
    t = arch.training
    return TrainConfig(epochs=int(epochs or t.epochs), batch_size=int(t.batch_size), lr=float(t.lr),
                       optimizer=t.optimizer, weight_decay=t.weight_decay, seed=seed)


def standalone(space: SearchSpace, cands: list, data: Any, seed: int, cache: Path,
               pool_bn: bool) -> dict[str, dict]:
    """Each cell trained stand-alone (read from ``cache`` when it is there)."""
    done: dict[str, dict] = {}
    if cache.is_file():
        for line in cache.read_text().splitlines():
            row = json.loads(line)
            if row["seed"] == seed and row.get("pool_bn", False) == pool_bn:
                done[row["id"]] = row
    for k, cand in enumerate(cands):
        if cand.id in done:
            continue
        arch, _ = space.resolve(cand)
        plan = plan_network(arch, cand.arch["cell"], data.input_shape, data.num_classes)
        torch.manual_seed(seed)
        tr = train_and_evaluate(GraphNet(plan, arch), data, config(arch, seed))
        row = {"id": cand.id, "seed": seed, "pool_bn": pool_bn, "valid_accuracy": tr.valid_accuracy,
               "test_accuracy": tr.test_accuracy, "seconds": tr.seconds}
        done[cand.id] = row
        with cache.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"stand-alone {k + 1}/{len(cands)} {cand.id}: valid {tr.valid_accuracy:.4f} "
              f"({tr.seconds:.1f} s)", flush=True)
    return done


def inherited(space: SearchSpace, cands: list, data: Any, seed: int, epochs: int,
              grad_clip: float | None, few_shot: str | None = None) -> tuple[list[float], list[float], float]:
    """(inherited validation accuracy per cell, the supernet's epoch losses, its seconds). With
    ``few_shot``: one sub-supernet per op the cells carry on that edge; the losses are their
    mean per epoch and the seconds their sum."""
    part = space.tasks[0]
    spec = part.spec
    fixed = {k: v for k, v in space.make(space.cells.sample(np.random.default_rng(0))).arch["hp"].items()
             if not shares_weights(k)}
    base = resolve(spec, fixed)
    tau = getattr(spec.neuron, "tau", None)
    taus = tau.options if isinstance(tau, Choice) else (() if tau is None else (tau,))
    split = split_edge(base, few_shot) if few_shot else None
    groups: dict[str | None, list[int]] = {}
    for i, cand in enumerate(cands):
        groups.setdefault(None if split is None else split.op_of(cand.arch["cell"]), []).append(i)
    cfg = config(base, seed, epochs)
    accs = [float("nan")] * len(cands)
    losses, seconds = [], 0.0
    for op, idx in groups.items():
        torch.manual_seed(seed)
        net = OneShotNet(base, data.input_shape, data.num_classes, taus=taus)
        draw = part.sample if split is None or op is None else restricted_sampler(part.sample, split, op)

        def sample(rng: np.random.Generator, draw: Any = draw) -> tuple[Any, dict[str, Any]]:
            cell, hp = draw(rng)
            return resolve(spec, {**hp, **fixed}), cell

        res = train_supernet(net, sample, data, cfg, grad_clip=grad_clip)
        losses.append(res.epoch_losses)
        seconds += res.seconds
        net.eval()
        for i in idx:
            cand = cands[i]
            arch, _ = space.resolve(cand)
            model = GraphNet(plan_network(arch, cand.arch["cell"], data.input_shape, data.num_classes), arch)
            model.load_state_dict(net.path_state_dict(arch, cand.arch["cell"]))
            recalibrate_bn(model, data.x_train, batches=RECALIBRATION_BATCHES, batch_size=cfg.batch_size,
                           seed=seed)
            accs[i] = evaluate_accuracy(model, data.x_valid, data.y_valid, batch_size=256, device="cpu",
                                        amp=False)
        if split is not None:
            print(f"  sub-supernet {split.name}={op}: {len(idx)} cells, {res.seconds:.0f} s", flush=True)
    return accs, [float(np.mean(col)) for col in zip(*losses)], seconds


def few_shot_note(split: Any, cands: list) -> str:
    """The report's sentence on the few-shot split (empty without one)."""
    if split is None:
        return ""
    used = sorted({split.op_of(c.arch["cell"]) for c in cands})
    return (f"; FEW-SHOT: the supernet split on edge {split.name} into {len(used)} sub-supernets (the ops "
            f"these cells carry there: {', '.join(used)}; the edge has {len(split.ops)}), each trained for "
            "the full epochs, the same initialisation seed; loss: their mean; supernet seconds: their sum")


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return out + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20, help="cells (default 20)")
    ap.add_argument("--seed", type=int, default=0,
                    help="cell sample, data split and training seed (default 0)")
    ap.add_argument("--multipliers", type=int, nargs="+", default=[1, 2, 4],
                    help="supernet epochs as multiples of the space's epochs (default 1 2 4)")
    ap.add_argument("--grad-clip", type=float, default=GRAD_CLIP,
                    help=f"SPOS gradient-norm clip; 0 for none (default {GRAD_CLIP})")
    ap.add_argument("--cache", type=Path,
                    default=ROOT / "experiments/results/oneshot_fidelity_standalone.jsonl",
                    help="stand-alone results, reused across runs")
    ap.add_argument("--report", type=Path, default=None,
                    help="the report (default experiments/results/oneshot_fidelity.md, with --few-shot "
                         "oneshot_fidelity_fewshot.md)")
    ap.add_argument("--pool-bn", action="store_true",
                    help="measure plans with a BatchNorm after each pooling edge op")
    ap.add_argument("--few-shot", default=None, metavar="EDGE",
                    help="few-shot supernets split on this cell edge (e.g. normal.n0.e0): one per op the "
                         "cells carry there, each trained for the full epochs")
    args = ap.parse_args(argv)
    if args.report is None:
        name = "oneshot_fidelity_fewshot.md" if args.few_shot else "oneshot_fidelity.md"
        args.report = ROOT / "experiments/results" / name
    if args.n < 3 or min(args.multipliers) < 1 or args.grad_clip < 0:
        ap.error("--n must be >= 3, --multipliers >= 1 and --grad-clip >= 0")
    torch.set_num_threads(1)
    if args.pool_bn:
        patch_pool_bn()
    t0 = time.perf_counter()
    data = load_dataset("digits", seed=args.seed)
    space = SearchSpace(load_file(find_file("darts_snn")), None)
    cands = sample_candidates(space, args.n, args.seed)
    split = None
    if args.few_shot:
        try:
            split = split_edge(space.tasks[0].spec, args.few_shot)
        except ValueError as exc:
            ap.error(f"--few-shot: {exc}")
        used = {split.op_of(c.arch["cell"]) for c in cands}
        print(f"few-shot on {split.name}: {len(used)} sub-supernets for these cells (the edge carries "
              f"{len(split.ops)} ops; a search trains one per op it meets, so the supernets cost up to "
              f"{len(split.ops)}x one supernet)", flush=True)
    alone = standalone(space, cands, data, args.seed, args.cache, args.pool_bn)
    sv = [alone[c.id]["valid_accuracy"] for c in cands]
    st = [alone[c.id]["test_accuracy"] for c in cands]
    base_epochs = int(space.resolve(cands[0])[0].training.epochs)
    clip = args.grad_clip or None
    rows = []
    for m in args.multipliers:
        accs, losses, secs = inherited(space, cands, data, args.seed, base_epochs * m, clip, args.few_shot)
        tv, tt = kendalltau(accs, sv), kendalltau(accs, st)
        rows.append((m, accs, losses, secs, tv, tt))
        print(f"supernet {base_epochs * m} epochs ({secs:.0f} s): losses {[round(v, 3) for v in losses]}, "
              f"inherited mean {np.mean(accs):.3f}, tau(valid) {tv.statistic:+.3f} (p {tv.pvalue:.3f}), "
              f"tau(test) {tt.statistic:+.3f}", flush=True)

    cmd = "OMP_NUM_THREADS=1 python experiments/oneshot_fidelity.py " + " ".join(sys.argv[1:] if argv is None
                                                                                  else argv)
    hp = ", ".join(f"{k} {v}" for k, v in cands[0].arch["hp"].items())
    lines = [
        "# One-shot rank fidelity on darts_snn (digits)", "",
        f"Command: `{cmd}`  ", f"Commit: {_commit()}  ",
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}  ",
        f"Machine: {platform.node()}, {platform.machine()}, {os.cpu_count()} cores, torch "
        f"{torch.__version__}, {torch.get_num_threads()} thread; {time.perf_counter() - t0:.0f} s in all "
        "(stand-alone trainings from the cache are not counted)", "",
        f"{args.n} distinct random darts_snn cells (sample seed {args.seed}; {hp}). Stand-alone: each "
        f"trained on digits with the space's training settings ({base_epochs} epochs), seed {args.seed}. "
        "Inherited: one SPOS supernet of the default macro (each step a random cell, neuron type, tau and "
        f"timesteps), gradient clip {clip}, trained afresh for each epoch count; each cell's path weights, "
        f"BN recalibrated on {RECALIBRATION_BATCHES} training batches, validation accuracy"
        f"{'; PLANS PATCHED: a BatchNorm after every pooling edge op' if args.pool_bn else ''}"
        f"{few_shot_note(split, cands)}. Kendall "
        "tau-b (scipy) of the inherited validation accuracy with the stand-alone validation / test "
        "accuracy.", "",
        "| supernet epochs | last epoch loss | inherited valid acc mean (min-max) "
        "| tau vs stand-alone valid (p) | tau vs stand-alone test (p) | supernet seconds |",
        "|---|---|---|---|---|---|",
    ]
    for m, accs, losses, secs, tv, tt in rows:
        lines.append(f"| {base_epochs * m} | {losses[-1]:.3f} | {np.mean(accs):.3f} "
                     f"({min(accs):.3f}-{max(accs):.3f}) | {tv.statistic:+.3f} ({tv.pvalue:.3f}) "
                     f"| {tt.statistic:+.3f} ({tt.pvalue:.3f}) | {secs:.0f} |")
    lines += ["", f"Stand-alone valid accuracy: mean {np.mean(sv):.3f} (min {min(sv):.3f}, "
              f"max {max(sv):.3f}).",
              "", "| cell id | stand-alone valid | stand-alone test | " +
              " | ".join(f"inherited ({base_epochs * m} ep)" for m, *_ in rows) + " |",
              "|---|---|---|" + "---|" * len(rows)]
    for i, c in enumerate(cands):
        accs = " | ".join(f"{r[1][i]:.3f}" for r in rows)
        lines.append(f"| {c.id} | {sv[i]:.3f} | {st[i]:.3f} | {accs} |")
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
