"""How well do zero-cost proxies rank darts_snn architectures? Kendall tau against training.

A seeded sample of ``--n`` distinct darts_snn cells (macro hyperparameters at the space's
defaults: 8 stem channels, 3 cells, LIF with tau 2, T = 4; see DESIGN below), each

* scored by every proxy of :data:`nasco.evaluate._proxies.PROXIES` at initialisation (weights
  seeded ``--seed``, one minibatch of 64 training images drawn with ``--seed``, the same for
  every architecture), and
* trained on digits with one fixed budget for all (``--epochs``, batch ``--batch``, the space's
  lr 0.05 and SGD, seed ``--seed``), as :class:`nasco.evaluate.TrainCostEvaluator` trains;
  validation and test accuracy recorded.

Then Kendall tau-b and Spearman rho (scipy) of each proxy with the trained test accuracy (and
validation accuracy), oriented "higher proxy => better": min-direction proxies (params,
flops, sops) are negated first. A proxy value that is NaN/inf leaves that architecture out
of that proxy's row (n says how many remain).

DESIGN: the macro hyperparameters stay at the defaults so that the study measures what a
cell-level proxy is used for, ranking cells. Sampling channels/cells/T as well would let
params/flops "predict" accuracy through width alone and mix two questions.

Resumable: one JSON line per architecture is appended to ``--out`` (default
experiments/results/proxy_tau.jsonl) as it completes; a restart skips those already there
(lines of another --epochs/--batch/--seed are refused). ``--reseed K`` trains the first K
cells again with seed + 1, a reference for how much of any ranking is training noise. The
table goes to ``--report``. Usage::

    OMP_NUM_THREADS=1 nice -n 10 python experiments/proxy_tau.py --n 50 --epochs 4 --seed 0 --reseed 20
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import kendalltau, spearmanr  # noqa: E402

from nasco.dsl import find_file, load_file  # noqa: E402
from nasco.evaluate import TrainConfig, load_dataset, train_and_evaluate  # noqa: E402
from nasco.evaluate._proxies import PROXIES, ProxyProbe, proxy_batch  # noqa: E402
from nasco.nn import GraphNet, plan_network  # noqa: E402
from nasco.space import SearchSpace  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PROXY_BATCH = 64


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


def run_one(space: SearchSpace, cand: Any, data: Any, args: argparse.Namespace) -> dict[str, Any]:
    arch, _ = space.resolve(cand)
    plan = plan_network(arch, cand.arch["cell"], data.input_shape, data.num_classes)
    x, y = proxy_batch(data, PROXY_BATCH, args.seed)
    probe = ProxyProbe(plan, arch, x, y, seed=args.seed)
    t0 = time.perf_counter()
    proxies = {}
    for name in PROXIES:
        try:
            proxies[name] = probe.score(name)
        except (RuntimeError, ValueError, np.linalg.LinAlgError) as exc:
            print(f"  {cand.id}: proxy {name} failed: {exc}", file=sys.stderr)
            proxies[name] = float("nan")
    proxy_s = time.perf_counter() - t0
    tr = train(arch, plan, data, args, args.seed)  # the same seed: the initial weights the proxies saw
    return {"id": cand.id, "arch": cand.arch, "epochs": args.epochs, "batch": args.batch,
            "lr": float(arch.training.lr), "seed": args.seed, "valid_accuracy": tr.valid_accuracy,
            "test_accuracy": tr.test_accuracy, "train_loss": tr.train_loss, "train_seconds": tr.seconds,
            "proxy_seconds": proxy_s,
            "proxies": {k: (v if math.isfinite(v) else repr(v)) for k, v in proxies.items()}}


def train(arch: Any, plan: Any, data: Any, args: argparse.Namespace, seed: int) -> Any:
    """Train as TrainCostEvaluator does, with the study's fixed budget."""
    t = arch.training
    torch.manual_seed(seed)
    model = GraphNet(plan, arch)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch, lr=float(t.lr), optimizer=t.optimizer,
                      weight_decay=t.weight_decay, seed=seed)
    return train_and_evaluate(model, data, cfg)


def retrain(space: SearchSpace, cand: Any, data: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The cell trained again with seed + 1: how much of the ranking is training noise."""
    arch, _ = space.resolve(cand)
    plan = plan_network(arch, cand.arch["cell"], data.input_shape, data.num_classes)
    tr = train(arch, plan, data, args, args.seed + 1)
    return {"id": cand.id, "epochs": args.epochs, "batch": args.batch, "seed": args.seed,
            "train_seed": args.seed + 1, "valid_accuracy": tr.valid_accuracy, "test_accuracy": tr.test_accuracy,
            "train_seconds": tr.seconds}


def load_done(path: Path, args: argparse.Namespace) -> dict[str, dict]:
    done: dict[str, dict] = {}
    if not path.is_file():
        return done
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if (row["epochs"], row["batch"], row["seed"]) != (args.epochs, args.batch, args.seed):
            raise SystemExit(f"{path} holds rows of epochs={row['epochs']} batch={row['batch']} "
                             f"seed={row['seed']}; use another --out for epochs={args.epochs} "
                             f"batch={args.batch} seed={args.seed}")
        done[row["id"]] = row
    return done


def correlations(rows: list[dict], target: str) -> list[tuple[str, float, float, float, int]]:
    """(proxy, Kendall tau, Spearman rho, tau's p-value, n) against ``target``."""
    out = []
    for name, d in PROXIES.items():
        pairs = [(r["proxies"][name], r[target]) for r in rows
                 if isinstance(r["proxies"][name], (int, float)) and math.isfinite(r["proxies"][name])]
        if len(pairs) < 3:
            out.append((name, float("nan"), float("nan"), float("nan"), len(pairs)))
            continue
        p, a = np.array(pairs).T
        p = -p if d.sense == "min" else p  # "higher proxy => better" for every row
        kt = kendalltau(p, a)
        out.append((name, float(kt.statistic), float(spearmanr(p, a).statistic), float(kt.pvalue), len(pairs)))
    return out


def _p(p: float) -> str:
    return "<0.001" if p < 1e-3 else f"{p:.3f}"


def write_report(rows: list[dict], args: argparse.Namespace, sizes: dict[str, int], reseeded: list[dict],
                 path: Path) -> str:
    test = correlations(rows, "test_accuracy")
    valid = {n: (t, r) for n, t, r, _p, _n in correlations(rows, "valid_accuracy")}
    acc = np.array([r["test_accuracy"] for r in rows])
    va = np.array([r["valid_accuracy"] for r in rows])
    tv = kendalltau(va, acc).statistic if len(rows) > 2 else float("nan")
    hp = ", ".join(f"{k} {v}" for k, v in rows[0]["arch"]["hp"].items())
    compute = sum(r["train_seconds"] + r["proxy_seconds"] for r in rows)
    out = args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out
    cmd = (f"OMP_NUM_THREADS=1 nice -n 10 python experiments/proxy_tau.py --n {args.n} --epochs {args.epochs} "
           f"--batch {args.batch} --seed {args.seed} --reseed {args.reseed}")
    lines = [
        "# Zero-cost proxies vs trained accuracy on darts_snn (digits)", "",
        f"{len(rows)} distinct random darts_snn cells (sample seed {args.seed}); macro hyperparameters at the "
        f"space defaults ({hp}), so only the cell varies. Each trained on digits (scikit-learn 8x8, split seed "
        f"{args.seed}: {sizes['train']} train / {sizes['valid']} valid / {sizes['test']} test) for "
        f"{args.epochs} epochs, batch {args.batch}, SGD lr {rows[0]['lr']} with cosine decay, weight decay 5e-4, "
        f"training seed {args.seed}; weights initialised with torch.manual_seed({args.seed}) for both the "
        f"proxies and the training. Proxies on one minibatch of {PROXY_BATCH} training images drawn with seed "
        f"{args.seed}, the same for every cell.", "",
        "Kendall tau-b (with its two-sided p-value) and Spearman rho (scipy) of each proxy with the trained "
        "**test** accuracy, and with the validation accuracy. Sign convention: higher proxy => better; the "
        "min-direction proxies (params, flops, sops) are negated first, so a positive tau for them means that "
        "*smaller* networks trained better.", "",
        "| proxy | direction | tau (test) | p | rho (test) | n | tau (valid) | rho (valid) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, t, r, pv, n in sorted(test, key=lambda z: -z[1] if math.isfinite(z[1]) else 9):
        vt, vr = valid[name]
        lines.append(f"| {name} | {PROXIES[name].sense} | {t:+.3f} | {_p(pv)} | {r:+.3f} | {n} | {vt:+.3f} | "
                     f"{vr:+.3f} |")
    lines += [
        "",
        f"Test accuracy over the cells: mean {acc.mean():.4f}, min {acc.min():.4f}, max {acc.max():.4f}, std "
        f"{acc.std():.4f} (one test image = {100 / sizes['test']:.2f} %). Noise references: tau(valid acc, test "
        f"acc) = {tv:+.3f} over the {len(rows)} cells.",
    ]
    if reseeded:
        by_id = {r["id"]: r for r in rows}
        a0 = [by_id[r["id"]]["test_accuracy"] for r in reseeded]
        a1 = [r["test_accuracy"] for r in reseeded]
        tau_s = kendalltau(a0, a1).statistic
        lines.append(f"Training noise: the first {len(reseeded)} cells trained again with seed {args.seed + 1} "
                     f"(init, batch order); tau(test acc seed {args.seed}, test acc seed {args.seed + 1}) = "
                     f"{tau_s:+.3f}. A proxy cannot rank better than the training it is compared with.")
    n = len(rows)
    sig = 1.96 * math.sqrt(2 * (2 * n + 5) / (9 * n * (n - 1)))  # tau's null std (Kendall, 1938)
    lines += [
        f"Under no association |tau| exceeds {sig:.2f} with probability 5 % at n = {n} (normal approximation).",
        "",
        "Caveats: one proxy batch and one initialisation per cell (SNASNet averages SAHD over two batches); "
        "proxies are scored at the weights training starts from. sops uses the spike rates of the initial "
        "network on the proxy batch, not those of the trained one."
        + (f" jacob_cov: an input has {sizes['input_values']} values, so with {PROXY_BATCH} samples the "
           "correlation matrix of the (row-centred) Jacobians is rank-deficient: its near-zero eigenvalues add "
           "about the same -1/k to every cell, and the ranking comes from the others."
           if PROXY_BATCH >= sizes["input_values"] else ""),
        "",
        f"Time per cell: training {np.mean([r['train_seconds'] for r in rows]):.1f} s, all nine proxies "
        f"{np.mean([r['proxy_seconds'] for r in rows]):.2f} s (one thread, nice 10, on a 2-core box shared with "
        f"other jobs); {compute / 60:.1f} min for the {len(rows)} cells"
        + (f", plus {sum(r['train_seconds'] for r in reseeded) / 60:.1f} min of re-training." if reseeded else "."),
        "", f"Reproduce: `{cmd}` (resumable; rows in {out}).",
        f"Versions: python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}.", "",
    ]
    text = "\n".join(lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=50, help="number of architectures (default 50)")
    ap.add_argument("--epochs", type=int, default=4, help="training epochs, the same for all (default 4)")
    ap.add_argument("--batch", type=int, default=32, help="training batch size (default 32)")
    ap.add_argument("--seed", type=int, default=0,
                    help="seed of the architecture sample, data split, proxy batch, init and training (default 0)")
    ap.add_argument("--reseed", type=int, default=0,
                    help="train the first K cells again with seed + 1 as a training-noise reference (default 0)")
    ap.add_argument("--out", type=Path, default=ROOT / "experiments" / "results" / "proxy_tau.jsonl",
                    help="JSON lines, one per architecture, appended as they complete (resume); the re-trained "
                         "cells go to OUT's name + _reseed.jsonl")
    ap.add_argument("--report", type=Path, default=ROOT / "experiments" / "results" / "proxy_tau.md",
                    help="the markdown table written at the end")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    space = SearchSpace(load_file(find_file("darts_snn")), None)
    data = load_dataset("digits", seed=args.seed)
    cands = sample_candidates(space, args.n, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    reseed_path = args.out.with_name(args.out.stem + "_reseed.jsonl")
    jobs = [(args.out, cands, run_one), (reseed_path, cands[:args.reseed], retrain)]
    results = []
    for path, todo, fn in jobs:
        done = load_done(path, args)
        for i, cand in enumerate(todo):
            if cand.id in done:
                continue
            row = fn(space, cand, data, args)
            with open(path, "a") as f:
                f.write(json.dumps(row) + "\n")
            done[cand.id] = row
            print(f"[{path.name} {i + 1}/{len(todo)}] {cand.id}: test {row['test_accuracy']:.4f} train "
                  f"{row['train_seconds']:.0f} s; {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
        results.append([done[c.id] for c in todo])
    sizes = {**data.sizes(), "input_values": int(np.prod(data.input_shape))}
    print(write_report(results[0], args, sizes, results[1], args.report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
