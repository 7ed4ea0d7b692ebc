"""Do exported ONNX files compute what nasco's torch networks compute? A round trip per network.

For each space (darts, darts_snn, nb201), ``--n`` networks are sampled with a seeded sampler
whose cells together hold every op of the space (a candidate is redrawn until the sample's
cells cover all ops; an op still missing is reported), trained ``--epochs`` on digits with
nasco's trainer (the space's batch size, lr and optimiser, seed ``--seed``), exported with
:func:`nasco.export._onnx.write_onnx` (spiking networks with their last neuron layer's spikes
as a second output) and run by onnxruntime (CPUExecutionProvider) on the digits test split.
The reference is the trained torch GraphNet itself, spikingjelly's neurons included.

Macros are small so that a run fits a CPU: 3 cells (a reduction at 1), the space's own stem
and neuron choices; darts_snn networks alternate LIF/PLIF and hard/soft reset (network i:
PLIF when i is odd, soft reset when i // 2 is odd).

Reported per network: max |logit difference| and the number of test samples over 1e-4,
prediction agreement, spike agreement of the exposed layer (fraction of equal spikes;
"identical" when all are) and its spike rate, for spiking networks the max |logit difference|
in torch between the exported module (unrolled neurons) and the GraphNet with spikingjelly's,
test accuracy, export seconds; and per op kind the worst of these over the networks holding it.
Usage::

    OMP_NUM_THREADS=1 python experiments/onnx_roundtrip.py --n 4 --epochs 2 \\
        --out experiments/results/onnx_roundtrip.md
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _provenance import git_commit  # noqa: E402

from nasco.dsl import load_spec  # noqa: E402
from nasco.evaluate import TrainConfig, load_dataset, train_and_evaluate  # noqa: E402
from nasco.export._onnx import _exported_module, torch_outputs, write_onnx  # noqa: E402  (the module it exports)
from nasco.nn import GraphNet, plan_network  # noqa: E402
from nasco.space import SearchSpace  # noqa: E402

SPACES = ("darts", "darts_snn", "nb201")
MACRO = {("macro", "cells"): 3, ("macro", "reductions"): [1]}


def cell_ops(cell: dict) -> set[str]:
    return set(cell["edges"]) if "edges" in cell else {op for edges in cell.values() for op, _ in edges}


def sample_covering(space: SearchSpace, n: int, rng: np.random.Generator, tries: int = 1000) -> list:
    """``n`` candidates whose cells together hold every op of the space, when ``tries`` redraws
    of the last candidates find such a set; otherwise the best set found."""
    ops = set(space.arch_spec.cell.ops)
    out = [space.sample(rng) for _ in range(n)]
    for _ in range(tries):
        missing = ops - set().union(*(cell_ops(c.arch["cell"]) for c in out))
        if not missing:
            break
        i = int(rng.integers(n))  # redraw one candidate; keep the draw if it covers more
        new = space.sample(rng)
        trial = out[:i] + [new] + out[i + 1:]
        if len(ops - set().union(*(cell_ops(c.arch["cell"]) for c in trial))) < len(missing):
            out = trial
    return out


def load_space(name: str) -> SearchSpace:
    overrides = {**MACRO, ("macro", "stem", "channels"): 8} if name == "nb201" else MACRO
    return SearchSpace(load_spec(name, overrides=overrides))


def neuron_variant(arch, i: int):
    """Network ``i``'s neuron: PLIF when ``i`` is odd, soft reset when ``i // 2`` is odd."""
    if arch.neuron is None:
        return arch
    neuron = dataclasses.replace(arch.neuron, type="plif" if i % 2 else "lif",
                                 v_reset=None if (i // 2) % 2 else arch.neuron.v_reset)
    return dataclasses.replace(arch, neuron=neuron)


def run_one(space: SearchSpace, i: int, cand: Any, data: Any, args: argparse.Namespace,
            work: Path) -> dict[str, Any]:
    name = space.arch_spec.name
    arch = neuron_variant(space.resolve(cand)[0], i)
    plan = plan_network(arch, cand.arch["cell"], data.input_shape, data.num_classes)
    torch.manual_seed(args.seed)
    model = GraphNet(plan, arch)
    t = arch.training
    res = train_and_evaluate(model, data, TrainConfig(epochs=args.epochs, batch_size=t.batch_size, lr=t.lr,
                                                       optimizer=t.optimizer, seed=args.seed))
    model.eval()
    t0 = time.perf_counter()
    facts = write_onnx(plan, arch, model.state_dict(), work / f"{name}_{i}", spike_output=plan.spiking)
    export_s = time.perf_counter() - t0
    path = work / f"{name}_{i}" / facts["files"][0]
    tap = facts["outputs"][1]["node"] if plan.spiking else None
    logits, spikes = torch_outputs(model, data.x_test, tap)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outs = session.run(None, {"input": data.x_test.numpy()})
    diff = np.abs(outs[0] - logits).max(1)
    row = {"space": name, "i": i, "ops": sorted(cell_ops(cand.arch["cell"])), "hp": cand.arch["hp"],
           "max_abs_logit_diff": float(diff.max()), "samples_over_1e-4": int((diff > 1e-4).sum()),
           "prediction_agreement": float((outs[0].argmax(1) == logits.argmax(1)).mean()),
           "test_accuracy_torch": float((logits.argmax(1) == data.y_test.numpy()).mean()),
           "test_accuracy_onnx": float((outs[0].argmax(1) == data.y_test.numpy()).mean()),
           "export_s": export_s, "kib": path.stat().st_size / 1024, "train_s": res.seconds,
           "nodes": len(onnx.load(str(path)).graph.node)}
    if plan.spiking:
        with torch.no_grad():  # the exported torch module itself: unrolled neurons against spikingjelly's
            unrolled = _exported_module(plan, arch, model.state_dict())(data.x_test).numpy()
        n = arch.neuron
        row.update(unrolled_vs_spikingjelly=float(np.abs(unrolled - logits).max()),
                   neuron=f"{n.type} {'tau0' if n.type == 'plif' else 'tau'} {n.tau} "
                          f"{'soft' if n.v_reset is None else 'hard'}")
        row.update(spike_agreement=float((outs[1] == spikes).mean()), spikes_identical=bool(np.array_equal(
            outs[1], spikes)), spike_rate=float(spikes.mean()), tap=tap, timesteps=plan.timesteps)
    return row


READING = (
    "Reading it: onnxruntime's kernels sum in another order than torch's, so values differ in the last "
    "float32 bits. In a spiking network a membrane within that rounding of the threshold can fire on one "
    "side and not the other; the flipped spike then moves the logits of that sample by a synaptic weight, "
    "which the 'samples > 1e-4' column counts (the exposed layer is only the last neuron node, so a flip "
    "elsewhere can leave it identical). A 0 in 'torch: unrolled vs spikingjelly' says the exported module "
    "itself computes spikingjelly's function exactly.")


def network_table(rows: list[dict]) -> list[str]:
    out = ["| space | # | neuron, T | ops in its cells | max abs logit diff | samples > 1e-4 | prediction "
           "agreement | spike agreement (rate) | torch: unrolled vs spikingjelly | test acc torch / onnx | "
           "export s | ONNX nodes |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        spikes = (f"{r['spike_agreement']:.6f}{' identical' if r['spikes_identical'] else ''} "
                  f"({r['spike_rate']:.3f})" if "spike_agreement" in r else "-")
        neuron = f"{r['neuron']}, T {r['timesteps']}" if "neuron" in r else "-"
        unrolled = f"{r['unrolled_vs_spikingjelly']:.1e}" if "neuron" in r else "-"
        out.append(f"| {r['space']} | {r['i']} | {neuron} | {len(r['ops'])}: {', '.join(r['ops'])} | "
                   f"{r['max_abs_logit_diff']:.1e} | {r['samples_over_1e-4']} | "
                   f"{r['prediction_agreement']:.4f} | "
                   f"{spikes} | {unrolled} | "
                   f"{r['test_accuracy_torch']:.3f} / {r['test_accuracy_onnx']:.3f} | {r['export_s']:.0f} | "
                   f"{r['nodes']} |")
    return out


def op_table(rows: list[dict], ops_of: dict[str, tuple[str, ...]]) -> list[str]:
    out = ["| space | op | networks | worst max abs logit diff | worst prediction agreement | "
           "worst spike agreement |", "|---|---|---|---|---|---|"]
    for space, ops in ops_of.items():
        for op in ops:
            held = [r for r in rows if r["space"] == space and op in r["ops"]]
            if not held:
                out.append(f"| {space} | {op} | 0 (not covered) | - | - | - |")
                continue
            spikes = [r["spike_agreement"] for r in held if "spike_agreement" in r]
            out.append(f"| {space} | {op} | {len(held)} | {max(r['max_abs_logit_diff'] for r in held):.1e} | "
                       f"{min(r['prediction_agreement'] for r in held):.4f} | "
                       f"{f'{min(spikes):.6f}' if spikes else '-'} |")
    return out


def report(rows: list[dict], ops_of: dict, args: argparse.Namespace, seconds: float) -> str:
    snn = [r for r in rows if "spike_agreement" in r]
    ann = [r for r in rows if "spike_agreement" not in r]
    lines = [
        "# ONNX round trip: exported files against the torch networks they came from", "",
        f"- command: `OMP_NUM_THREADS=1 python experiments/onnx_roundtrip.py {' '.join(sys.argv[1:])}`",
        f"- git commit: {git_commit()}",
        f"- torch {torch.__version__}, onnx {onnx.__version__}, onnxruntime {ort.__version__} "
        f"(CPUExecutionProvider), Python {platform.python_version()}; wall {seconds / 60:.1f} min",
        f"- {args.n} networks per space, trained {args.epochs} epochs on digits (seed {args.seed}); "
        f"compared on the {args.test_size} digits of the test split",
        "",
        "## Summary", "",
    ]
    if ann:
        worst = max(r["max_abs_logit_diff"] for r in ann)
        agree = min(r["prediction_agreement"] for r in ann)
        lines.append(f"- ANN: worst max abs logit difference {worst:.1e}, prediction agreement {agree:.4f}")
    if snn:
        identical = sum(r["spikes_identical"] for r in snn)
        lines.append(f"- SNN: spike trains of the exposed layer identical in {identical} of {len(snn)} "
                     "networks "
                     f"(worst agreement {min(r['spike_agreement'] for r in snn):.6f}); "
                     f"prediction agreement {min(r['prediction_agreement'] for r in snn):.4f}; worst max abs "
                     f"logit difference {max(r['max_abs_logit_diff'] for r in snn):.1e} "
                     f"({sum(r['samples_over_1e-4'] for r in snn)} samples over 1e-4 in all); in torch, "
                     f"unrolled neurons against spikingjelly's: worst "
                     f"{max(r['unrolled_vs_spikingjelly'] for r in snn):.1e}")
    lines += ["", READING,
              "", "## Per network", "", *network_table(rows), "", "## Per op kind", "",
              "The worst value over the networks whose cells hold the op.", "", *op_table(rows, ops_of), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=4, help="networks per space (default 4)")
    ap.add_argument("--epochs", type=int, default=2, help="training epochs per network (default 2)")
    ap.add_argument("--seed", type=int, default=0, help="sampler, weights and training seed (default 0)")
    ap.add_argument("--spaces", nargs="+", default=list(SPACES), choices=SPACES)
    ap.add_argument("--out", type=Path, default=Path("experiments/results/onnx_roundtrip.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    data = load_dataset("digits", seed=args.seed)
    args.test_size = len(data.y_test)
    rows, ops_of = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.spaces:
            space = load_space(name)
            ops_of[name] = tuple(space.arch_spec.cell.ops)
            for i, cand in enumerate(sample_covering(space, args.n, np.random.default_rng(args.seed))):
                rows.append(run_one(space, i, cand, data, args, Path(tmp)))
                r = rows[-1]
                print(f"{name} {i}: max abs {r['max_abs_logit_diff']:.1e} "
                      f"agreement {r['prediction_agreement']:.4f} spikes {r.get('spike_agreement', '-')} "
                      f"export {r['export_s']:.0f}s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report(rows, ops_of, args, time.perf_counter() - start))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
