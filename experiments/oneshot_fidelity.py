"""Do inherited accuracies rank cells? One-shot (SPOS) scores against stand-alone training.

``--n`` distinct random cells of ``--space`` (sample seed ``--seed``; macro hyperparameters,
neuron and timesteps at the space's defaults), each

* trained stand-alone on digits as :class:`nasco.evaluate.TrainCostEvaluator` trains it (the
  space's ``training`` settings) once per training seed of ``--seeds``; the reference is the
  mean validation accuracy over the seeds, and the mean pairwise Kendall tau between seeds is
  the noise ceiling (no score ranks a seed's training better than another seed's does);
* scored with inherited weights as :class:`nasco.evaluate.OneShotEvaluator` scores it: one
  supernet of the default macro trained by SPOS (:func:`nasco.evaluate.train_supernet`, each
  step a random cell with random neuron settings and timesteps, gradient clipped to
  ``--grad-clip``), the cell's path loaded into its stand-alone network, BN statistics
  re-estimated on ``RECALIBRATION_BATCHES`` fixed training batches, then a validation pass.
  The supernet is trained afresh for the space's epochs times each of ``--multipliers`` (the
  cosine schedule spans the whole training);
* scored by every zero-cost proxy of :data:`nasco.evaluate._proxies.PROXIES` at the
  initialisation of training seed ``--seed`` (one batch of 64 training images, seed ``--seed``),
  each proxy's sign taken as its declared sense (a min-sense proxy is negated).

Then Kendall tau-b (scipy) of each score with the mean stand-alone validation and test
accuracies. Stand-alone and inherited results are kept in JSON lines files (``--cache``,
``--inherited-cache``) and reused by later runs with the same settings, so an interrupted run
continues where it stopped.

Usage::

    OMP_NUM_THREADS=1 nice -n 10 python experiments/oneshot_fidelity.py --space darts_snn --n 40 \\
        --seeds 0 1 2 --multipliers 1 8 16
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _provenance import git_commit  # noqa: E402
from proxy_tau import sample_candidates  # noqa: E402
from scipy.stats import kendalltau  # noqa: E402

from nasco.dsl import Choice, find_file, load_file, resolve  # noqa: E402
from nasco.evaluate import TrainConfig, load_dataset, recalibrate_bn, train_and_evaluate, train_supernet  # noqa: E402
from nasco.evaluate._fewshot import restricted_sampler, split_edge  # noqa: E402
from nasco.evaluate._oneshot import RECALIBRATION_BATCHES, shares_weights  # noqa: E402
from nasco.evaluate._proxies import PROXIES, ProxyProbe, proxy_batch  # noqa: E402
from nasco.evaluate._spos import GRAD_CLIP  # noqa: E402
from nasco.evaluate._train import evaluate_accuracy  # noqa: E402
from nasco.nn import GraphNet, OneShotNet, plan_network  # noqa: E402
from nasco.space import SearchSpace  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PROXY_BATCH = 64


def config(arch: Any, seed: int, epochs: int | None = None) -> TrainConfig:
    """The space's training settings, as TrainCostEvaluator builds them."""
    t = arch.training
    return TrainConfig(epochs=int(epochs or t.epochs), batch_size=int(t.batch_size), lr=float(t.lr),
                       optimizer=t.optimizer, weight_decay=t.weight_decay, seed=seed)


def read_rows(path: Path, **match: Any) -> list[dict]:
    """The JSON lines of ``path`` whose fields equal ``match`` (a missing ``space`` reads as
    darts_snn, a missing ``pool_bn`` as false: rows written before those fields existed)."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            row.setdefault("space", "darts_snn")
            row.setdefault("pool_bn", False)
            if all(row.get(k) == v for k, v in match.items()):
                rows.append(row)
    return rows


def append_row(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")


def standalone(space: SearchSpace, name: str, cands: list, data: Any, seeds: list[int], cache: Path,
               pool_bn: bool) -> dict[tuple[str, int], dict]:
    """Each cell trained stand-alone once per seed (read from ``cache`` when it is there)."""
    done = {(r["id"], r["seed"]): r for r in read_rows(cache, space=name, pool_bn=pool_bn) if "kind" not in r}
    todo = [(c, s) for s in seeds for c in cands if (c.id, s) not in done]
    for k, (cand, seed) in enumerate(todo):
        arch, _ = space.resolve(cand)
        plan = plan_network(arch, cand.arch["cell"], data.input_shape, data.num_classes)
        torch.manual_seed(seed)
        tr = train_and_evaluate(GraphNet(plan, arch), data, config(arch, seed))
        row = {"space": name, "id": cand.id, "seed": seed, "pool_bn": pool_bn,
               "valid_accuracy": tr.valid_accuracy, "test_accuracy": tr.test_accuracy, "seconds": tr.seconds}
        done[(cand.id, seed)] = row
        append_row(cache, row)
        print(f"stand-alone {k + 1}/{len(todo)} {cand.id} seed {seed}: valid {tr.valid_accuracy:.4f} "
              f"({tr.seconds:.1f} s)", flush=True)
    return done


def reference(name: str, n: int, seed: int, seeds: list[int], cache: Path) -> tuple:
    """(data, space, pool_bn, cells, valid and test accuracy per training seed, their means over
    the seeds) of ``n`` cells of space ``name`` sampled with ``seed``, each trained stand-alone
    once per seed of ``seeds`` (:func:`standalone`, read from ``cache`` where it holds them)."""
    data = load_dataset("digits", seed=seed)
    space = SearchSpace(load_file(find_file(name)), None)
    pool_bn = bool(space.tasks[0].spec.cell.pool_bn)
    cands = sample_candidates(space, n, seed)
    alone = standalone(space, name, cands, data, seeds, cache, pool_bn)
    sv = {s: [alone[(c.id, s)]["valid_accuracy"] for c in cands] for s in seeds}
    st = {s: [alone[(c.id, s)]["test_accuracy"] for c in cands] for s in seeds}
    mv = [float(np.mean([sv[s][i] for s in seeds])) for i in range(len(cands))]
    mt = [float(np.mean([st[s][i] for s in seeds])) for i in range(len(cands))]
    return data, space, pool_bn, cands, sv, st, mv, mt


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
    tau = getattr(spec.neuron, "tau", None) if spec.neuron is not None else None
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


def proxies(space: SearchSpace, name: str, cands: list, data: Any, seed: int, cache: Path,
            pool_bn: bool) -> dict[str, dict[str, float]]:
    """Every zero-cost proxy of each cell, signed so that higher means better (cached)."""
    done = {r["id"]: r["proxies"] for r in read_rows(cache, space=name, pool_bn=pool_bn, seed=seed,
                                                     kind="proxies")}
    x, y = proxy_batch(data, PROXY_BATCH, seed)
    for cand in cands:
        if cand.id in done:
            continue
        arch, _ = space.resolve(cand)
        plan = plan_network(arch, cand.arch["cell"], data.input_shape, data.num_classes)
        probe = ProxyProbe(plan, arch, x, y, seed=seed)
        got = {}
        for pname, d in PROXIES.items():
            try:
                v = float(probe.score(pname))
            except (RuntimeError, ValueError, np.linalg.LinAlgError):
                v = float("nan")
            got[pname] = -v if d.sense == "min" else v
        done[cand.id] = got
        append_row(cache, {"kind": "proxies", "space": name, "id": cand.id, "seed": seed, "pool_bn": pool_bn,
                           "proxies": {k: (v if math.isfinite(v) else None) for k, v in got.items()}})
    return {k: {p: (float("nan") if v is None else v) for p, v in d.items()} for k, d in done.items()}


def few_shot_note(edge: str | None, space: SearchSpace, cands: list) -> str:
    """The report's words on the few-shot split (empty without one)."""
    if not edge:
        return ""
    split = split_edge(space.tasks[0].spec, edge)
    used = sorted({split.op_of(c.arch["cell"]) for c in cands})
    return (f"; FEW-SHOT: the supernet split on edge {split.name} into {len(used)} sub-supernets (the ops "
            f"these cells carry there: {', '.join(used)}; the edge has {len(split.ops)}), each trained for "
            "the full epochs from the same initialisation seed; loss: their mean; supernet seconds: their "
            "sum")


def tau(a: list[float], b: list[float]) -> tuple[float, float]:
    """Kendall tau-b and its p-value over the pairs where both are finite."""
    pairs = [(x, y) for x, y in zip(a, b) if math.isfinite(x) and math.isfinite(y)]
    if len(pairs) < 3:
        return float("nan"), float("nan")
    r = kendalltau(*zip(*pairs))
    return float(r.statistic), float(r.pvalue)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--space", default="darts_snn", help="a cell space (default darts_snn)")
    ap.add_argument("--n", type=int, default=40, help="cells (default 40)")
    ap.add_argument("--seed", type=int, default=0,
                    help="cell sample, data split, supernet and proxy seed (default 0)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                    help="stand-alone training seeds (default 0 1 2)")
    ap.add_argument("--multipliers", type=int, nargs="+", default=[1, 4, 8],
                    help="supernet epochs as multiples of the space's epochs (default 1 4 8)")
    ap.add_argument("--grad-clip", type=float, default=GRAD_CLIP,
                    help=f"SPOS gradient-norm clip; 0 for none (default {GRAD_CLIP})")
    ap.add_argument("--cache", type=Path,
                    default=ROOT / "experiments/results/oneshot_fidelity_standalone.jsonl",
                    help="stand-alone results and proxies, reused across runs")
    ap.add_argument("--inherited-cache", type=Path,
                    default=ROOT / "experiments/results/oneshot_fidelity_inherited.jsonl",
                    help="inherited accuracies per supernet training, reused across runs")
    ap.add_argument("--report", type=Path, default=None,
                    help="markdown report (default experiments/results/oneshot_fidelity_SPACE.md, with "
                         "--few-shot oneshot_fidelity_SPACE_fewshot.md)")
    ap.add_argument("--supernet-seeds", type=int, nargs="+", default=None, metavar="S",
                    help="train each supernet once per seed (initialisation, sampled paths, batches, BN "
                         "recalibration) and add a row for the mean of their inherited accuracies, a "
                         "supernet ensemble (default: --seed alone)")
    ap.add_argument("--few-shot", default=None, metavar="EDGE",
                    help="few-shot supernets split on this cell edge (e.g. normal.n0.e0): one per op the "
                         "cells carry there, each trained for the full epochs")
    return ap


def inherited_rows(space: SearchSpace, cands: list, data: Any, args: argparse.Namespace, pool_bn: bool,
                   base_epochs: int, mv: list[float], mt: list[float]) -> list[tuple]:
    """Per supernet multiple and supernet seed, then (with several seeds) for the mean of the
    seeds' scores: (label, inherited accuracies, epoch losses, supernet seconds, tau with the mean
    stand-alone validation accuracies, tau with the test ones); each supernet read from
    ``--inherited-cache`` when it holds it, else measured and added to it."""
    clip = args.grad_clip or None
    seeds = args.supernet_seeds or [args.seed]
    rows = []
    for m in args.multipliers:
        per_seed = []
        for s in seeds:
            # a supernet seeded apart from the cells is keyed by its own seed (rows written before
            # the option existed have none: their supernet seed is the cells' seed)
            key = {"space": args.space, "pool_bn": pool_bn, "seed": args.seed, "n": args.n, "grad_clip": clip,
                   "few_shot": args.few_shot, **({} if s == args.seed else {"supernet_seed": s})}
            got = [r for r in read_rows(args.inherited_cache, **key, epochs=base_epochs * m)
                   if r.get("supernet_seed", args.seed) == s]
            if got:
                accs, losses, secs = got[-1]["accuracies"], got[-1]["epoch_losses"], got[-1]["seconds"]
            else:
                accs, losses, secs = inherited(space, cands, data, s, base_epochs * m, clip, args.few_shot)
                append_row(args.inherited_cache, {**key, "epochs": base_epochs * m,
                                                  "ids": [c.id for c in cands], "accuracies": accs,
                                                  "epoch_losses": losses, "seconds": secs})
            per_seed.append((accs, losses, secs))
            tv, tt = tau(accs, mv), tau(accs, mt)
            label = f"{base_epochs * m} epochs" + (f", supernet seed {s}" if len(seeds) > 1 else "")
            rows.append((label, accs, losses, secs, tv, tt))
            print(f"supernet {label} ({secs:.0f} s): inherited mean {np.mean(accs):.3f}, "
                  f"tau(mean valid) {tv[0]:+.3f} (p {tv[1]:.3f}), tau(mean test) {tt[0]:+.3f}", flush=True)
        if len(seeds) > 1:
            accs = [float(np.mean(col)) for col in zip(*(a for a, _, _ in per_seed))]
            losses = [float(np.mean(col)) for col in zip(*(lo for _, lo, _ in per_seed))]
            secs = sum(sec for *_, sec in per_seed)
            tv, tt = tau(accs, mv), tau(accs, mt)
            label = (f"{base_epochs * m} epochs, mean of {len(seeds)} supernets "
                     f"(seeds {' '.join(map(str, seeds))})")
            rows.append((label, accs, losses, secs, tv, tt))
            print(f"supernet {label}: tau(mean valid) {tv[0]:+.3f} (p {tv[1]:.3f}), "
                  f"tau(mean test) {tt[0]:+.3f}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = _parser()
    args = ap.parse_args(argv)
    if args.n < 3 or min(args.multipliers) < 1 or args.grad_clip < 0 or len(set(args.seeds)) < 2:
        ap.error("--n must be >= 3, --multipliers >= 1, --grad-clip >= 0, and --seeds two or more distinct")
    suffix = "_fewshot" if args.few_shot else ""
    report = args.report or ROOT / f"experiments/results/oneshot_fidelity_{args.space}{suffix}.md"
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    data, space, pool_bn, cands, sv, st, mv, mt = reference(args.space, args.n, args.seed, args.seeds,
                                                            args.cache)
    ceiling = [tau(sv[a], sv[b])[0] for a, b in itertools.combinations(args.seeds, 2)]
    ceiling_t = [tau(st[a], st[b])[0] for a, b in itertools.combinations(args.seeds, 2)]
    prox = proxies(space, args.space, cands, data, args.seed, args.cache, pool_bn)
    base_epochs = int(space.resolve(cands[0])[0].training.epochs)
    rows = inherited_rows(space, cands, data, args, pool_bn, base_epochs, mv, mt)
    clip = args.grad_clip or None

    cmd = "OMP_NUM_THREADS=1 python experiments/oneshot_fidelity.py " + " ".join(sys.argv[1:] if argv is None
                                                                                  else argv)
    hp = ", ".join(f"{k} {v}" for k, v in cands[0].arch["hp"].items()) or "none"
    lines = [
        f"# One-shot rank fidelity on {args.space} (digits)", "",
        f"Command: `{cmd}`  ", f"Commit: {git_commit()}  ",
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}  ",
        f"Machine: {platform.node()}, {platform.machine()}, {os.cpu_count()} cores, torch "
        f"{torch.__version__}, {torch.get_num_threads()} thread; {time.perf_counter() - t0:.0f} s in all "
        "(results read from the caches are not counted)", "",
        f"{args.n} distinct random {args.space} cells (sample seed {args.seed}; other choices at their "
        f"defaults: {hp}; BN after pooling ops: {pool_bn}). Stand-alone: each trained on digits with the "
        f"space's training settings ({base_epochs} epochs) with each training seed of {args.seeds}; the "
        "reference is the mean accuracy over the seeds. Inherited: one SPOS supernet of the default macro "
        "(each step a random cell, and random neuron type, tau and timesteps where the space has them), "
        f"gradient clip {clip}, trained afresh for each epoch count"
        + (f" and once per supernet seed of {args.supernet_seeds} (the mean of their scores is the "
           "ensemble's score)" if args.supernet_seeds and len(args.supernet_seeds) > 1 else "")
        + "; each cell's path weights, BN "
        f"recalibrated on {RECALIBRATION_BATCHES} training batches, validation accuracy"
        f"{few_shot_note(args.few_shot, space, cands)}. Kendall tau-b (scipy).", "",
        "Noise ceiling (stand-alone seed-to-seed tau, mean over seed pairs): validation "
        f"{np.mean(ceiling):+.3f} ({', '.join(f'{v:+.3f}' for v in ceiling)}), test "
        f"{np.mean(ceiling_t):+.3f} ({', '.join(f'{v:+.3f}' for v in ceiling_t)}). "
        f"0.8 x the validation ceiling: {0.8 * np.mean(ceiling):+.3f}.", "",
        "| score | tau vs mean stand-alone valid (p) | tau vs mean stand-alone test (p) | mean score "
        "| seconds |",
        "|---|---|---|---|---|",
    ]
    for label, accs, losses, secs, tv, tt in rows:
        lines.append(f"| inherited, supernet {label} (last loss {losses[-1]:.3f}) "
                     f"| {tv[0]:+.3f} ({tv[1]:.3f}) | {tt[0]:+.3f} ({tt[1]:.3f}) | {np.mean(accs):.3f} "
                     f"| {secs:.0f} (supernet) |")
    for pname, d in PROXIES.items():
        vals = [prox[c.id][pname] for c in cands]
        tv, tt = tau(vals, mv), tau(vals, mt)
        lines.append(f"| proxy {pname} ({d.sense}; signed) | {tv[0]:+.3f} ({tv[1]:.3f}) "
                     f"| {tt[0]:+.3f} ({tt[1]:.3f}) | | |")
    for s in args.seeds:
        others = [float(np.mean([sv[o][i] for o in args.seeds if o != s])) for i in range(len(cands))]
        tv = tau(sv[s], others)
        lines.append(f"| stand-alone seed {s} vs mean of the other seeds | {tv[0]:+.3f} ({tv[1]:.3f}) | | "
                     f"{np.mean(sv[s]):.3f} | |")
    lines += ["", f"Mean stand-alone valid accuracy: mean {np.mean(mv):.3f} (min {min(mv):.3f}, "
              f"max {max(mv):.3f}).",
              "", "| cell id | " + " | ".join(f"valid s{s}" for s in args.seeds) + " | mean test | " +
              " | ".join(f"inherited ({label})" for label, *_ in rows) + " |",
              "|---|" + "---|" * (len(args.seeds) + 1 + len(rows))]
    for i, c in enumerate(cands):
        lines.append(f"| {c.id} | " + " | ".join(f"{sv[s][i]:.3f}" for s in args.seeds)
                     + f" | {mt[i]:.3f} | " + " | ".join(f"{r[1][i]:.3f}" for r in rows) + " |")
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(lines) + "\n")
    print(f"wrote {report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
