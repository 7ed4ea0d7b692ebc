"""Accuracy after post-training quantization of random darts_snn and darts networks on digits.

For each space, ``--archs`` architectures are sampled (``numpy.random.default_rng(--seed)``) and
trained on digits (data split seed ``--data-seed``) with the space's own ``training`` section
(darts and darts_snn: 2 epochs, batch 32, SGD lr 0.05; ``--epochs`` overrides the epochs), weights
initialised with ``torch.manual_seed(--seed + i)`` for the i-th architecture and training seeded
the same. Each trained network is calibrated once (:func:`nasco.evaluate.calibrate` on
``--calibration-batches`` training batches of ``--calibration-batch-size``, as the train
evaluator does) and its validation accuracy measured (:func:`nasco.evaluate.quantized_accuracy`) at:

* float, and weights = activations = b bits for b in 16, 8, 6, 4 (membranes float);
* darts_snn only: membrane b bits for b in 16, 12, 8, 6, 4, with weights and activations float,
  so the column shows the membrane's own effect; once with the grid's reach fitted to the float
  spikes (what nasco does) and once spanning the whole calibrated range (the baseline);
* float with every conv/linear weight moved by seeded uniform noise of up to half a 16-bit (and
  an 8-bit) per-channel step: how many images a random perturbation of the size of that width's
  rounding flips in the float network itself, the control for the W/A column at that width.

It writes a table per space (one row per architecture, then the median) to ``--out``, with the
command line, commit, date and machine. One core, about 5 minutes.

Usage::

    OMP_NUM_THREADS=1 python experiments/precision.py [--archs 10] [--seed 0] [--data-seed 0]
        [--epochs N] [--out experiments/results/precision.md]
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import platform
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _provenance import git_commit  # noqa: E402

from nasco.evaluate import TrainConfig, calibrate, load_dataset, quantized_accuracy, train_and_evaluate  # noqa: E402
from nasco.evaluate._train import evaluate_accuracy  # noqa: E402
from nasco.nn import GraphNet, Precision, plan_network  # noqa: E402
from nasco.study._spaces import build_space  # noqa: E402

WA_BITS = (16, 8, 6, 4)
MEMBRANE_BITS = (16, 12, 8, 6, 4)
NOISE_BITS = (16, 8)


def _arch_label(arch, cand) -> str:
    m = arch.macro
    label = f"C{m.stem.channels} cells {m.cells}"
    if arch.neuron is not None:
        label += f", {arch.neuron.type} tau {arch.neuron.tau:g}, T {arch.timesteps}"
    return label


def train_sampled(space, rng: np.random.Generator, data, seed: int, epochs: int | None = None):
    """A random architecture of ``space`` (drawn from ``rng``), its weights initialised with
    ``torch.manual_seed(seed)`` and trained on ``data`` with its space's ``training`` section
    (``epochs`` in place of its epochs), seeded ``seed``: (candidate, arch, plan, model, TrainResult)."""
    cand = space.sample(rng)
    arch, _hw = space.resolve(cand)
    plan = plan_network(arch, cand.arch["cell"], data.input_shape, data.num_classes)
    torch.manual_seed(seed)
    model = GraphNet(plan, arch)
    t = arch.training
    tr = train_and_evaluate(model, data, TrainConfig(epochs=int(t.epochs) if epochs is None else epochs,
                                                     batch_size=int(t.batch_size), lr=float(t.lr),
                                                     optimizer=t.optimizer, weight_decay=t.weight_decay,
                                                     seed=seed))
    return cand, arch, plan, model, tr


def run_space(name: str, data, args) -> list[dict]:
    space, _facts = build_space(name, None)
    rng = np.random.default_rng(args.seed)
    rows = []
    for i in range(args.archs):
        seed = args.seed + i
        start = time.perf_counter()
        cand, arch, plan, model, tr = train_sampled(space, rng, data, seed, args.epochs)
        ranges = calibrate(model, data, batches=args.calibration_batches,
                           batch_size=args.calibration_batch_size, seed=seed)
        kw = dict(ranges=ranges, seed=seed)
        row = {"id": cand.id[:10], "label": _arch_label(arch, cand), "float": tr.valid_accuracy,
               "train_s": time.perf_counter() - start}
        for b in NOISE_BITS:
            row[f"noise{b}"] = _weight_noise_accuracy(model, data, b, seed)
        for b in WA_BITS:
            row[f"wa{b}"] = quantized_accuracy(model, data, Precision(b, b, None), **kw)
        if plan.spiking:
            whole = dataclasses.replace(ranges, neuron_inputs={})
            for b in MEMBRANE_BITS:
                row[f"m{b}"] = quantized_accuracy(model, data, Precision(None, None, b), **kw)
                row[f"mw{b}"] = quantized_accuracy(model, data, Precision(None, None, b), ranges=whole,
                                                   seed=seed)
        rows.append(row)
        cols = [k for k in row if k == "float" or k.startswith(("noise", "wa", "m"))]
        scores = ", ".join(f"{k} {100 * row[k]:.1f}" for k in cols)
        print(f"{name} {i}: {row['label']}: {scores}", flush=True)
    return rows


def _weight_noise_accuracy(model, data, bits: int, seed: int) -> float:
    """Validation accuracy of ``model`` with each conv/linear weight moved by uniform noise in
    +-half the per-output-channel step of a ``bits``-bit symmetric grid (seeded by ``seed``)."""
    noisy = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in noisy.modules():
            if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)):
                w = layer.weight
                step = w.abs().amax(dim=tuple(range(1, w.dim())), keepdim=True) / (2 ** (bits - 1) - 1)
                w.add_((torch.rand(w.shape, generator=gen) - 0.5) * step)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return evaluate_accuracy(noisy, data.x_valid, data.y_valid)


def table(rows: list[dict]) -> list[str]:
    keys = ["float"] + [f"noise{b}" for b in NOISE_BITS] + [f"wa{b}" for b in WA_BITS]
    heads = ["float"] + [f"noise {b}" for b in NOISE_BITS] + [f"W/A {b}" for b in WA_BITS]
    if "m16" in rows[0]:
        keys += [f"m{b}" for b in MEMBRANE_BITS] + [f"mw{b}" for b in MEMBRANE_BITS]
        heads += [f"mem {b}" for b in MEMBRANE_BITS] + [f"mem {b} whole" for b in MEMBRANE_BITS]
    out = ["| # | candidate | architecture | " + " | ".join(heads) + " |",
           "|---|---|---|" + "---:|" * len(heads)]
    for i, r in enumerate(rows):
        cells = " | ".join(f"{100 * r[k]:.1f}" for k in keys)
        out.append(f"| {i} | `{r['id']}` | {r['label']} | {cells} |")
    med = [float(np.median([r[k] for r in rows])) for k in keys]
    out.append("| | **median** | | " + " | ".join(f"**{100 * m:.1f}**" for m in med) + " |")
    drop = [float(np.median([r[k] - r["float"] for r in rows])) for k in keys]
    cells = " | ".join(f"{100 * d:+.1f}" for d in drop)
    out.append(f"| | median change vs float (points) | | {cells} |")
    for limit in (0.2, 1.0):
        # A hundredth of a point of slack absorbs the float rounding of percentages of a count.
        within = [sum(abs(100 * (r[k] - r["float"])) <= limit + 1e-9 for r in rows) for k in keys]
        cells = " | ".join(f"{w}/{len(rows)}" for w in within)
        out.append(f"| | within {limit:g} point{'s' if limit != 1 else ''} of float | | {cells} |")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spaces", nargs="+", default=["darts_snn", "darts"], help="architecture spaces")
    ap.add_argument("--archs", type=int, default=10, help="random architectures per space")
    ap.add_argument("--seed", type=int, default=0,
                    help="architecture sampling; architecture i trains with seed + i")
    ap.add_argument("--data-seed", type=int, default=0, help="digits split seed")
    ap.add_argument("--epochs", type=int, default=None, help="training epochs (default: the space's)")
    ap.add_argument("--calibration-batches", type=int, default=8, help="training batches that set the ranges")
    ap.add_argument("--calibration-batch-size", type=int, default=64)
    ap.add_argument("--out", type=Path, default=Path("experiments/results/precision.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    data = load_dataset("digits", seed=args.data_seed)
    results = {name: run_space(name, data, args) for name in args.spaces}
    minutes = (time.perf_counter() - start) / 60
    command = " ".join(["OMP_NUM_THREADS=1 python experiments/precision.py",
                        shlex.join(sys.argv[1:] if argv is None else argv)]).strip()
    lines = [
        "# Accuracy after post-training quantization (digits)",
        "",
        f"`{command}`",
        "",
        f"Finished {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, commit {git_commit()}, "
        f"Python {platform.python_version()}, torch {torch.__version__}, {platform.machine()} CPU, 1 thread "
        f"({os.cpu_count()} cores shared with other work); {minutes:.1f} minutes.",
        "",
        f"Setup: {args.archs} random architectures per space (`default_rng({args.seed})`), trained on digits "
        f"(split seed {args.data_seed}: {len(data.y_train)} train / {len(data.y_valid)} validation images) "
        "with the space's own `training` section (batch 32, SGD lr 0.05, "
        f"{'2 epochs' if args.epochs is None else f'{args.epochs} epochs (--epochs)'}); architecture i is "
        f"initialised and trained with seed {args.seed} + i. Accuracy: validation top-1 in percent "
        f"(one image = {100 / len(data.y_valid):.2f} points). Calibration: {args.calibration_batches} "
        f"training batches of {args.calibration_batch_size}, min/max ranges (and a sample of every neuron's "
        "inputs) observed once per network on "
        "the float network.",
        "",
        "Columns: `noise b`: float, each weight moved by seeded uniform noise of up to half its b-bit "
        "per-channel step (the float network's own sensitivity to a random perturbation of that size: "
        "the control for `W/A b`); "
        "`W/A b`: weights (per output channel, symmetric) and conv/linear inputs (per tensor; "
        "spikes never) at b bits, membranes float; `mem b` (darts_snn): the membrane, threshold and leak "
        "at b bits fixed point, weights and activations float, the grid's reach fitted to the float "
        "network's spikes on the calibration batches (`FixedPointNeuron.fit_range`); `mem b whole`: the "
        "same with the grid spanning the whole calibrated membrane range. Biases and batch norms stay "
        "float.",
        "",
    ]
    for name, rows in results.items():
        lines += [f"## {name}", ""] + table(rows) + [""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out} ({minutes:.1f} min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
