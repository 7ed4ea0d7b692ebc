"""DARTS on darts_snn x one accelerator, on digits: derived cells against random cells, and
what the hardware-aware loss buys.

For each lambda in --lams, one DARTS search of the cell (the space's other choices at their
defaults; the warm-up epochs run once and are shared, since they do not depend on lambda);
each derived cell and --random random cells of the space are then retrained with the same
budget (--retrain-epochs, the same seed) and scored by the cost model on the template with
their measured spike rates, exactly as `nasco search` scores candidates.

    python experiments/darts_study.py                 # ~35 min on one core
    python experiments/darts_study.py --lams 0,1 --random 5 --search-epochs 3   # quicker

Rows go to experiments/results/darts_study.jsonl as they finish (a rerun skips them); the
table to experiments/results/darts_study.md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from nasco.dsl import load_energy_table, load_spec, resolve  # noqa: E402
from nasco.evaluate import TrainCostEvaluator, load_dataset  # noqa: E402
from nasco.search import DartsConfig, fit_darts  # noqa: E402
from nasco.space import SearchSpace  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0, help="data split, search and training seed (default 0)")
    p.add_argument("--lams", default="0,1,3", help="comma-separated hardware-loss weights (default 0,1,3)")
    p.add_argument("--search-epochs", type=int, default=8, help="DARTS epochs, warm-up included (default 8)")
    p.add_argument("--warmup", type=int, default=3, help="DARTS warm-up epochs (default 3)")
    p.add_argument("--random", type=int, default=20, help="random cells to retrain (default 20)")
    p.add_argument("--retrain-epochs", type=int, default=6, help="retraining epochs for every cell (default 6)")
    p.add_argument("--template", default="nvdla_like", help="asic_template member (default nvdla_like)")
    p.add_argument("--extra-seeds", default="1,2",
                   help="more training seeds for the derived cells only: how much of a difference between "
                        "them is retraining noise (default 1,2; '' for none)")
    p.add_argument("--cost", default="energy", help="cost metric(s) of the hardware loss (default energy)")
    p.add_argument("--out", default=str(RESULTS / "darts_study"), help="output stem (.jsonl, .md)")
    p.add_argument("--pt", action="store_true",
                   help="also select each lambda's cell by DARTS-PT on its trained supernet (read back from "
                        "the search's checkpoint in --checkpoints, or searched again: same seed, same supernet)")
    p.add_argument("--checkpoints", default="runs/darts_study", help="folder of the searches' checkpoints")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    lams = [float(x) for x in args.lams.split(",")]
    out_jsonl, out_md = Path(args.out + ".jsonl"), Path(args.out + ".md")
    out_jsonl.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if out_jsonl.is_file():
        for line in out_jsonl.read_text().splitlines():
            r = json.loads(line)
            done[r["key"]] = r

    def record(row: dict) -> None:
        done[row["key"]] = row
        with open(out_jsonl, "a") as f:
            f.write(json.dumps(row) + "\n")

    space = SearchSpace(load_spec("darts_snn"), load_spec("asic_template"))
    hw = {**space.hw.complete({"template": args.template})}
    data = load_dataset("digits", seed=args.seed)
    ev = TrainCostEvaluator(space, data, ("accuracy", "energy", "latency", "area"), epochs=args.retrain_epochs)
    hp = {k: c.default for k, c in space.arch_dims.items()}
    arch = resolve(space.arch_spec, hp)
    template = space.hw.resolve(hw)[0]
    table = load_energy_table(template)

    def score(key: str, cell: dict, extra: dict, seed: int | None = None) -> dict:
        if key in done:
            return done[key]
        cand = space.make(cell, hp, hw)
        t0 = time.perf_counter()
        res = ev.evaluate(cand, args.seed if seed is None else seed)
        row = {"key": key, "cell": cell, "status": res.status, "reason": res.reason,
               "valid_accuracy": res.metrics.get("valid_accuracy"), "test_accuracy": res.metrics.get("test_accuracy"),
               "energy_uj": res.objectives.get("energy", float("nan")) * 1e6,
               "latency_ms": res.objectives.get("latency", float("nan")) * 1e3,
               "mean_spike_rate": res.metrics.get("mean_spike_rate"), "retrain_seconds": time.perf_counter() - t0,
               **extra}
        record(row)
        print(f"{key}: test acc {row['test_accuracy']:.4f} energy {row['energy_uj']:.2f} uJ "
              f"({row['retrain_seconds']:.0f} s)", flush=True)
        return row

    warm = None
    for lam in lams:
        key = f"darts_lam{lam:g}"
        if key in done:
            continue
        cfg = DartsConfig(epochs=args.search_epochs, warmup_epochs=args.warmup, lam=lam,
                          cost=tuple(args.cost.split("+")), seed=args.seed)
        fit = fit_darts(arch, data, cfg, hw=(template, table), warm_start=warm,
                        checkpoint=Path(args.checkpoints) / f"seed{args.seed}_{key}.pt",
                        log=lambda s: print(s, flush=True))
        warm = warm or fit.warm
        score(key, fit.cell, {"kind": "darts", "lam": lam, "search_seconds": fit.seconds,
                              "expected_energy_uj": fit.expected.get("energy", float("nan")) * 1e6,
                              "collapse": fit.collapse, "search_valid_accuracy":
                              fit.history[-1]["search_valid_accuracy"]})
    for lam in lams if args.pt else []:
        key = f"darts_pt_lam{lam:g}"
        if key in done:
            continue
        cfg = DartsConfig(epochs=args.search_epochs, warmup_epochs=args.warmup, lam=lam,
                          cost=tuple(args.cost.split("+")), seed=args.seed, pt=True)
        fit = fit_darts(arch, data, cfg, hw=(template, table),
                        checkpoint=Path(args.checkpoints) / f"seed{args.seed}_darts_lam{lam:g}.pt",
                        log=lambda s: print(s, flush=True))
        score(key, fit.cell, {"kind": "darts_pt", "lam": lam, "search_seconds": fit.seconds,
                              "expected_energy_uj": fit.expected.get("energy", float("nan")) * 1e6,
                              "collapse": fit.collapse})
    extra_seeds = [int(x) for x in args.extra_seeds.split(",") if x.strip()]
    for lam in lams:
        first = done[f"darts_lam{lam:g}"]
        for sd in extra_seeds:
            score(f"darts_lam{lam:g}_seed{sd}", first["cell"], {"kind": "darts_reseed", "lam": lam, "train_seed": sd},
                  seed=sd)
    rng = np.random.default_rng(args.seed + 1000)
    for i in range(args.random):
        cell = space.cells.sample(rng)
        score(f"random{i}", cell, {"kind": "random"})

    rows = list(done.values())
    rand = [r for r in rows if r.get("kind") == "random" and r["status"] != "failed"]
    dart = sorted((r for r in rows if r.get("kind") == "darts"), key=lambda r: r["lam"])
    med = float(np.median([r["test_accuracy"] for r in rand])) if rand else float("nan")
    lines = [
        "# DARTS on darts_snn x asic_template on digits",
        "",
        f"Command: `python experiments/darts_study.py --seed {args.seed} --lams {args.lams} --search-epochs "
        f"{args.search_epochs} --warmup {args.warmup} --random {args.random} --retrain-epochs {args.retrain_epochs} "
        f"--template {args.template} --extra-seeds {args.extra_seeds}`",
        "",
        f"Template {args.template} at its defaults; space defaults (stem 8 channels, 3 cells, LIF tau 2, T=4). "
        f"Every cell retrained {args.retrain_epochs} epochs (batch 32, SGD lr 0.05, cosine) on the 60 % train "
        f"split, seed {args.seed}; accuracy on the 20 % test split; energy and latency from the cost model "
        f"with the spike rates measured on the validation split.",
        "",
        "| cell | lambda | test acc | valid acc | energy (uJ) | latency (ms) | normal-cell skip / param-free | search s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    pts = sorted((r for r in rows if r.get("kind") == "darts_pt"), key=lambda r: r["lam"])
    if pts:  # rows accumulate in the jsonl: say how the DARTS-PT ones were made
        lams_pt = ",".join(f"{r['lam']:g}" for r in pts)
        lines[4:4] = [f"DARTS-PT rows: `python experiments/darts_study.py --seed {args.seed} --lams {lams_pt} "
                      f"--pt` (the supernet of the same search, read back from its checkpoint or searched "
                      f"again with the same seed; op then topology selection on {DartsConfig.pt_samples} "
                      f"images per perturbation, {DartsConfig.pt_tune_steps} tuning steps after each decision)",
                      ""]
    for label, group in (("DARTS", dart), ("DARTS-PT", pts)):
        for r in group:
            c = r.get("collapse", {})
            lines.append(f"| {label} | {r['lam']:g} | {r['test_accuracy']:.4f} | {r['valid_accuracy']:.4f} | "
                         f"{r['energy_uj']:.2f} | {r['latency_ms']:.3f} | {c.get('normal_skip', 0):.2f} / "
                         f"{c.get('normal_parameter_free', 0):.2f} | {r['search_seconds']:.0f} |")
    if rand:
        accs = np.array([r["test_accuracy"] for r in rand])
        en = np.array([r["energy_uj"] for r in rand])
        lines.append(f"| {len(rand)} random: median | | {med:.4f} | | {np.median(en):.2f} | | | |")
        lines.append(f"| random: min / max | | {accs.min():.4f} / {accs.max():.4f} | | {en.min():.2f} / "
                     f"{en.max():.2f} | | | |")
    lines.append("")
    if extra_seeds:
        lines.append(f"The derived cells retrained with training seeds {args.seed}, {args.extra_seeds} "
                     f"(same data split), mean ± std:")
        lines.append("")
        lines.append("| lambda | test acc | energy (uJ) |")
        lines.append("|---|---|---|")
        for r in dart:
            group = [r] + [done[f"darts_lam{r['lam']:g}_seed{sd}"] for sd in extra_seeds
                           if f"darts_lam{r['lam']:g}_seed{sd}" in done]
            acc = np.array([g["test_accuracy"] for g in group])
            en = np.array([g["energy_uj"] for g in group])
            lines.append(f"| {r['lam']:g} | {acc.mean():.4f} ± {acc.std():.4f} | {en.mean():.2f} ± {en.std():.2f} |")
        lines.append("")
    if dart and rand:
        base = next((r for r in dart if r["lam"] == 0), None)
        for r in dart:
            verdict = "at least" if r["test_accuracy"] >= med else "below"
            better = sum(x["test_accuracy"] > r["test_accuracy"] for x in rand)
            lines.append(f"- lambda {r['lam']:g}: test accuracy {r['test_accuracy']:.4f}, {verdict} the random "
                         f"median {med:.4f} ({better} of {len(rand)} random cells are more accurate)" + (
                             f"; energy {r['energy_uj'] / base['energy_uj']:.3f}x of lambda 0's, accuracy "
                             f"{100 * (r['test_accuracy'] - base['test_accuracy']):+.2f} points"
                             if base is not None and r is not base else ""))
    out_md.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
