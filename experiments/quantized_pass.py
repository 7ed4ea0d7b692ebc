"""Time of a quantized validation pass, with and without the two inference paths of nasco.nn.

A trained network's hardware front costs one quantized validation pass per distinct precision
(19 on asic_template), and those passes are most of what the hardware inner loop adds to a
run. Without a gradient to keep, two layers take their own path:

* :class:`nasco.nn.FixedPointNeuron` on a fixed grid runs its time steps in its own loop
  (``_steps``) instead of spikingjelly's ``SimpleBaseNode.multi_step_forward`` (charge, fire
  through the surrogate, reset, step by step, then ``torch.stack``);
* ``nasco.nn._torch.MaxPool2d`` pools in channels-last memory instead of torch's NCHW kernel.

Three arms: ``before`` (neither), ``loop`` (the neuron loop only) and ``now`` (both). This
script trains ``--archs`` random darts_snn networks on digits (the space's training section,
seed i for the i-th; architectures from ``numpy.random.default_rng(--seed)``), calibrates
each, and for each of three precisions times :func:`nasco.evaluate._train.evaluate_accuracy`
of the quantized network on the validation split in each arm, alternating, ``--repeats`` times
in one process. It reports the median seconds, the ratios before / loop and before / now per
network and precision and their medians, and fails when the arms' accuracies differ.

    OMP_NUM_THREADS=1 python experiments/quantized_pass.py [--archs 3] [--repeats 5] [--seed 0]
        [--out experiments/results/quantized_pass.md]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from spikingjelly.activation_based.neuron.base_node import SimpleBaseNode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _provenance import git_commit, write_report  # noqa: E402
from precision import train_sampled  # noqa: E402

from nasco.evaluate import calibrate, load_dataset  # noqa: E402
from nasco.evaluate._train import evaluate_accuracy  # noqa: E402
from nasco.nn import FixedPointNeuron, Precision, quantize  # noqa: E402
from nasco.nn._torch import MaxPool2d  # noqa: E402
from nasco.study._spaces import build_space  # noqa: E402

PRECISIONS = (Precision(8, 8, 8), Precision(4, 4, 4), Precision(16, 16, 16))


@contextmanager
def arm(neuron_loop: bool, pool: bool):
    """FixedPointNeuron with its own loop (else spikingjelly's), MaxPool2d with its own path
    (else torch's NCHW forward)."""
    loop, forward = FixedPointNeuron.multi_step_forward, MaxPool2d.forward
    if not neuron_loop:
        FixedPointNeuron.multi_step_forward = SimpleBaseNode.multi_step_forward
    if not pool:
        MaxPool2d.forward = torch.nn.MaxPool2d.forward
    try:
        yield
    finally:
        FixedPointNeuron.multi_step_forward, MaxPool2d.forward = loop, forward


ARMS = {"before": (False, False), "loop": (True, False), "now": (True, True)}


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
        seed = args.seed + i
        cand, arch, _plan, model, _tr = train_sampled(space, rng, data, seed)
        ranges = calibrate(model, data, seed=seed)
        for p in PRECISIONS:
            qmodel = quantize(model, p, ranges)
            seconds: dict[str, list[float]] = {name: [] for name in ARMS}
            accs: set[float] = set()
            for _ in range(args.repeats):
                for name, flags in ARMS.items():
                    with arm(*flags):
                        s, acc = timed_pass(qmodel, data, seed)
                    seconds[name].append(s)
                    accs.add(acc)
            if len(accs) != 1:
                print(f"network {i} {p}: the arms' accuracies differ: {sorted(accs)}", file=sys.stderr)
                return 1
            med = {k: statistics.median(v) for k, v in seconds.items()}
            ratio = (med["before"] / med["loop"], med["before"] / med["now"])
            ratios.append(ratio)
            bits = f"{p.weight}/{p.activation}/{p.membrane}"
            net = f"T {arch.timesteps}, C{arch.macro.stem.channels}"
            rows.append(f"| {i} | `{cand.id[:10]}` | {net} | {bits} | "
                        f"{100 * accs.pop():.1f} | {med['before']:.3f} | {med['loop']:.3f} | "
                        f"{med['now']:.3f} | {ratio[0]:.2f} | {ratio[1]:.2f} |")
            print(rows[-1], flush=True)
    lines = [
        "# Quantized validation pass: nasco.nn's inference paths against the generic ones",
        "",
        "`" + " ".join(["OMP_NUM_THREADS=1 python experiments/quantized_pass.py",
                        *(sys.argv[1:] if argv is None else argv)]) + "`",
        "",
        f"Finished {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, commit {git_commit()}, "
        f"Python {platform.python_version()}, torch {torch.__version__}, 1 thread. {args.archs} random "
        f"darts_snn networks trained on digits; each pass is the {len(data.y_valid)}-image validation "
        f"split; median of {args.repeats} passes per arm, alternating in one process. `before`: "
        "spikingjelly's multi-step loop for the fixed-point neurons and torch's NCHW max pooling; "
        "`loop`: FixedPointNeuron's own loop; `now`: that and MaxPool2d's channels-last pooling. "
        "Every arm gives the same accuracy in every pass.",
        "",
        "| # | candidate | network | bits W/A/membrane | accuracy % | before s | loop s | now s "
        "| before / loop | before / now |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        *(f"Median ratio before / {name}: **{statistics.median(r[k] for r in ratios):.2f}** "
          f"(range {min(r[k] for r in ratios):.2f}-{max(r[k] for r in ratios):.2f})." for k, name
          in enumerate(("loop", "now"))),
        "",
    ]
    write_report(args.out, lines)
    print(f"median ratios before / loop {statistics.median(r[0] for r in ratios):.2f}, before / now "
          f"{statistics.median(r[1] for r in ratios):.2f}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
