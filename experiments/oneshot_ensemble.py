"""Rank fidelity of the one-shot evaluator itself, with an ensemble of supernets.

The cells, the stand-alone reference and the noise ceiling are those of
``experiments/oneshot_fidelity.py`` (same ``--space``, ``--n``, ``--seed`` and ``--seeds``; its
stand-alone cache is read, and filled where it lacks a training). Here the inherited scores come
from :class:`nasco.evaluate.OneShotEvaluator` with ``supernets=N`` (``--supernets``), no
accelerator (so no quantization: the float validation accuracy of each inherited network), run
seed ``--run-seed``, its supernets trained for the evaluator's default epochs (16 times the
space's). Reported: Kendall tau-b of each replica's own score and of the ensemble's (their mean,
the candidate's accuracy) with the mean stand-alone validation and test accuracies.

Usage::

    OMP_NUM_THREADS=1 python experiments/oneshot_ensemble.py --space darts_snn --supernets 3
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import itertools  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _provenance import git_commit  # noqa: E402
from oneshot_fidelity import reference, tau  # noqa: E402

from nasco.evaluate import OneShotEvaluator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--space", default="darts_snn", help="a cell space (default darts_snn)")
    ap.add_argument("--n", type=int, default=40, help="cells (default 40)")
    ap.add_argument("--seed", type=int, default=0, help="cell sample and data split seed (default 0)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                    help="stand-alone training seeds (default 0 1 2)")
    ap.add_argument("--supernets", type=int, default=3, help="the evaluator's supernets (default 3)")
    ap.add_argument("--run-seed", type=int, default=0, help="the evaluator's run seed (default 0)")
    ap.add_argument("--cache", type=Path,
                    default=ROOT / "experiments/results/oneshot_fidelity_standalone.jsonl",
                    help="stand-alone results, shared with oneshot_fidelity.py")
    ap.add_argument("--report", type=Path, default=None,
                    help="markdown report (default experiments/results/oneshot_ensemble_SPACE.md)")
    args = ap.parse_args(argv)
    if args.n < 3 or args.supernets < 1 or len(set(args.seeds)) < 2:
        ap.error("--n must be >= 3, --supernets >= 1, and --seeds two or more distinct")
    report = args.report or ROOT / f"experiments/results/oneshot_ensemble_{args.space}.md"
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    data, space, _, cands, sv, _, mv, mt = reference(args.space, args.n, args.seed, args.seeds, args.cache)
    ceiling = float(np.mean([tau(sv[a], sv[b])[0] for a, b in itertools.combinations(args.seeds, 2)]))

    with tempfile.TemporaryDirectory() as tmp:
        ev = OneShotEvaluator(space, data, ("accuracy",), hw_inner=False, supernets=args.supernets)
        ev.attach_run_dir(tmp, resume=False, seed=args.run_seed)
        t1 = time.perf_counter()
        results = []
        for k, cand in enumerate(cands):
            results.append(ev.evaluate(cand, args.run_seed))
            acc = results[-1].objectives.get("accuracy", float("nan"))
            print(f"{k + 1}/{len(cands)} {cand.id}: {results[-1].status}, accuracy {acc:.4f} "
                  f"({time.perf_counter() - t1:.0f} s)", flush=True)
        failed = [r for r in results if r.status == "failed"]
        if failed:
            print(f"oneshot_ensemble: {len(failed)} candidates failed, e.g. {failed[0].error}",
                  file=sys.stderr)
            return 1
        scores = {"ensemble": [r.metrics["valid_accuracy"] for r in results]}
        if args.supernets > 1:
            members = [ev._store.get(r.metrics["training"]).inputs["ensemble"] for r in results]
            for j in range(args.supernets):
                scores[f"replica {j}"] = [ev._store.get(m[j]).valid_accuracy for m in members]
        seconds = time.perf_counter() - t1
        epochs = results[0].metrics["supernet_epochs"]

    cmd = "OMP_NUM_THREADS=1 python experiments/oneshot_ensemble.py " + " ".join(sys.argv[1:] if argv is None
                                                                                  else argv)
    lines = [
        f"# One-shot evaluator with {args.supernets} supernets: rank fidelity on {args.space} (digits)", "",
        f"Command: `{cmd}`  ", f"Commit: {git_commit()}  ",
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}  ",
        f"Machine: {platform.node()}, {platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, 1 thread; {time.perf_counter() - t0:.0f} s in all, of which "
        f"{seconds:.0f} s the evaluator's {len(cands)} evaluations (its {args.supernets} supernets' "
        "training included)", "",
        f"The {args.n} cells and the stand-alone reference of `experiments/oneshot_fidelity.py` (sample seed "
        f"{args.seed}; the mean validation accuracy over training seeds {args.seeds}). Inherited: "
        f"`OneShotEvaluator(supernets={args.supernets})`, run seed {args.run_seed}, no accelerator (float "
        f"validation accuracy), supernets of {epochs} epochs. Kendall tau-b (scipy).", "",
        f"Noise ceiling (stand-alone seed-to-seed tau, mean over seed pairs): {ceiling:+.3f}; 0.8 x it: "
        f"{0.8 * ceiling:+.3f}.", "",
        "| score | tau vs mean stand-alone valid (p) | tau vs mean stand-alone test (p) | mean score |",
        "|---|---|---|---|",
    ]
    for name, vals in sorted(scores.items(), key=lambda kv: kv[0] != "ensemble"):
        tv, tt = tau(vals, mv), tau(vals, mt)
        label = f"mean of the {args.supernets} supernets (the evaluator's accuracy)" if name == "ensemble" \
            else f"supernet {name}"
        lines.append(f"| {label} | {tv[0]:+.3f} ({tv[1]:.3f}) | {tt[0]:+.3f} ({tt[1]:.3f}) "
                     f"| {np.mean(vals):.3f} |")
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-len(scores) - 2:]))
    print(f"wrote {report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
