"""Time of a quantized validation pass: FixedPointNeuron's own multi-step loop against spikingjelly's.

A trained network's hardware front costs one quantized validation pass per distinct precision
(19 on asic_template), and those passes are most of what the hardware inner loop adds to a
run. On a fixed grid without gradients, :class:`nasco.nn.FixedPointNeuron` runs its time steps
in its own loop (``_steps``); the baseline is spikingjelly's ``SimpleBaseNode.multi_step_forward``
(charge, fire through the surrogate, reset, step by step, then ``torch.stack``), which the
neuron runs with a gradient and which it ran before. This script trains ``--archs`` random
darts_snn networks on digits (the space's training section, seed i for the i-th; architectures
from ``numpy.random.default_rng(--seed)``), calibrates each, and for each of three precisions
times :func:`nasco.evaluate._train.evaluate_accuracy` of the quantized network on the
validation split with each loop, alternating, ``--repeats`` times in one process. It reports
the median seconds, their ratio (baseline / own loop) per network and precision and the median
ratio, and fails when the two loops' accuracies differ.

    OMP_NUM_THREADS=1 python experiments/quantized_pass.py [--archs 3] [--repeats 5] [--seed 0]
        [--out experiments/results/quantized_pass.md]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from spikingjelly.activation_based.neuron.base_node import SimpleBaseNode

from nasco.evaluate import TrainConfig, calibrate, load_dataset, train_and_evaluate
from nasco.evaluate._train import evaluate_accuracy
from nasco.nn import FixedPointNeuron, GraphNet, Precision, plan_network, quantize
from nasco.study._spaces import build_space

PRECISIONS = (Precision(8, 8, 8), Precision(4, 4, 4), Precision(16, 16, 16))


@contextmanager
def generic_loop():
    """FixedPointNeuron with spikingjelly's step-by-step multi-step loop (the baseline)."""
    own = FixedPointNeuron.multi_step_forward
    FixedPointNeuron.multi_step_forward = SimpleBaseNode.multi_step_forward
    try:
        yield
    finally:
        FixedPointNeuron.multi_step_forward = own


@contextmanager
def own_loop():
    yield


def timed_pass(model, data, seed: int) -> tuple[float, float]:
    """Seconds and accuracy of one validation pass (rate draws, if any, seeded)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        t = time.perf_counter()
        acc = evaluate_accuracy(model, data.x_valid, data.y_valid)
        return time.perf_counter() - t, acc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, default=3, help="random darts_snn networks")
    ap.add_argument("--repeats", type=int, default=5, help="timed passes per loop, alternating")
    ap.add_argument("--seed", type=int, default=0,
                    help="architecture sampling; network i trains with seed + i")
    ap.add_argument("--out", type=Path, default=Path("experiments/results/quantized_pass.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    data = load_dataset("digits", seed=0)
    space, _facts = build_space("darts_snn", None)
    rng = np.random.default_rng(args.seed)
    rows, ratios = [], []
    for i in range(args.archs):
        cand = space.sample(rng)
        arch, _hw = space.resolve(cand)
        plan = plan_network(arch, cand.arch["cell"], data.input_shape, data.num_classes)
        seed = args.seed + i
        torch.manual_seed(seed)
        model = GraphNet(plan, arch)
        t = arch.training
        train_and_evaluate(model, data, TrainConfig(epochs=int(t.epochs), batch_size=int(t.batch_size),
                                                    lr=float(t.lr), optimizer=t.optimizer,
                                                    weight_decay=t.weight_decay, seed=seed))
        ranges = calibrate(model, data, seed=seed)
        for p in PRECISIONS:
            qmodel = quantize(model, p, ranges)
            seconds: dict[str, list[float]] = {"spikingjelly": [], "own": []}
            accs: dict[str, set[float]] = {"spikingjelly": set(), "own": set()}
            for _ in range(args.repeats):
                for name, loop in (("spikingjelly", generic_loop), ("own", own_loop)):
                    with loop():
                        s, acc = timed_pass(qmodel, data, seed)
                    seconds[name].append(s)
                    accs[name].add(acc)
            if accs["spikingjelly"] != accs["own"] or len(accs["own"]) != 1:
                print(f"network {i} {p}: the loops' accuracies differ: {accs}", file=sys.stderr)
                return 1
            med = {k: statistics.median(v) for k, v in seconds.items()}
            ratio = med["spikingjelly"] / med["own"]
            ratios.append(ratio)
            bits = f"{p.weight}/{p.activation}/{p.membrane}"
            net = f"T {arch.timesteps}, C{arch.macro.stem.channels}"
            rows.append(f"| {i} | `{cand.id[:10]}` | {net} | {bits} | "
                        f"{100 * accs['own'].pop():.1f} | {med['spikingjelly']:.3f} | {med['own']:.3f} | "
                        f"{ratio:.2f} |")
            print(rows[-1], flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip() or "?"
    lines = [
        "# Quantized validation pass: FixedPointNeuron's own loop against spikingjelly's",
        "",
        "`" + " ".join(["OMP_NUM_THREADS=1 python experiments/quantized_pass.py",
                        *(sys.argv[1:] if argv is None else argv)]) + "`",
        "",
        f"Finished {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, commit {commit}, "
        f"Python {platform.python_version()}, torch {torch.__version__}, 1 thread. {args.archs} random "
        f"darts_snn networks trained on digits; each pass is the {len(data.y_valid)}-image validation "
        f"split; median of {args.repeats} passes per loop, alternating in one process. Both loops give "
        "the same accuracy in every pass.",
        "",
        "| # | candidate | network | bits W/A/membrane | accuracy % | spikingjelly loop s | own loop s "
        "| ratio |",
        "|---|---|---|---|---:|---:|---:|---:|",
        *rows,
        "",
        f"Median ratio (spikingjelly loop / own loop): **{statistics.median(ratios):.2f}** "
        f"(range {min(ratios):.2f}-{max(ratios):.2f}).",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"median ratio {statistics.median(ratios):.2f}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
