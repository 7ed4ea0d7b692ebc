"""NIR round trip of trained darts_snn networks through snnTorch and Norse.

Trains N networks (distinct cells drawn by a seeded sampler over every op NIR expresses, in
normal and reduction cells; each trained with the space's training settings on digits), or
takes the front members of finished runs (--runs), exports each to NIR, loads the graph in
snnTorch and Norse, runs both beside nasco's GraphNet on the digits test split and writes a
markdown table: per network and framework the share of equal predictions, of equal spikes per
(neuron, timestep) and of logits within LOGIT_ATOL per (input, timestep, class); the same per op
kind (over the networks using it); and the cases the export refuses.

    python experiments/nir_roundtrip.py --n 10 --out experiments/results/nir_roundtrip.md
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _provenance import git_commit  # noqa: E402

from nasco.dsl import ArchSpace, load_spec  # noqa: E402
from nasco.evaluate import TrainConfig, load_dataset, train_and_evaluate  # noqa: E402
from nasco.export import ExportError  # noqa: E402
from nasco.export._nir import plan_to_nir  # noqa: E402
from nasco.export._nir_roundtrip import (  # noqa: E402,E501
    LOGIT_ATOL,
    READERS,
    agreement,
    load_reader,
    trace_graphnet,
    trace_reader,
)
from nasco.nn import GraphNet, plan_network  # noqa: E402
from nasco.space import SearchSpace  # noqa: E402

EXPRESSIBLE = ["skip_connect", "conv_1x1", "conv_3x3", "sep_conv_3x3", "dil_conv_3x3", "avg_pool_3x3"]
DT = 1e-4


def sampled_networks(n: int, seed: int, data, overrides: dict) -> list[tuple[str, ArchSpace, dict]]:
    """``n`` distinct cells of darts_snn restricted to the ops NIR expresses; redraws (up to 50
    times) until every op appears in a normal and in a reduction cell."""
    space = SearchSpace(load_spec("darts_snn", overrides={("cell", "ops"): EXPRESSIBLE, **overrides}))
    rng = np.random.default_rng(seed)
    for _ in range(50):
        cands, seen = [], set()
        while len(cands) < n:
            cand = space.sample(rng)
            if cand.id not in seen:
                seen.add(cand.id)
                cands.append(cand)
        covered = {kind: {op for c in cands for op, _j in c.arch["cell"][kind]}
                   for kind in ("normal", "reduce")}
        if all(v == set(EXPRESSIBLE) for v in covered.values()):
            break
    return [(c.id[:10], space.resolve(c)[0], c.arch["cell"]) for c in cands]


def train(arch: ArchSpace, cell: dict, data, seed: int) -> GraphNet:
    plan = plan_network(arch, cell, data.input_shape, data.num_classes)
    torch.manual_seed(seed)
    net = GraphNet(plan, arch)
    t = arch.training
    train_and_evaluate(net, data, TrainConfig(epochs=t.epochs, batch_size=t.batch_size, lr=t.lr, seed=seed))
    return net.eval()


def front_networks(run_dirs: list[Path]) -> list[tuple[str, ArchSpace, dict, dict]]:
    """The distinct trained networks of the front members (pareto.csv) of finished runs, as
    `nasco export` loads them: (name, space, cell, state)."""
    import csv

    from nasco.export import ExportError, load_network

    out, seen = [], set()
    for run in run_dirs:
        with open(run / "pareto.csv", newline="") as fh:
            ids = [row["id"] for row in csv.DictReader(fh)]
        for cid in ids:
            try:
                net = load_network(run, cid)
            except ExportError as exc:  # no network kept (a table run): say so, go on
                print(f"{run}: {exc}")
                continue
            if net.key not in seen:
                seen.add(net.key)
                out.append((f"{run.name}/{cid[:10]}", net.space, net.inputs["arch"]["cell"], net.state))
    return out


def round_trip(name: str, arch: ArchSpace, cell: dict, net: GraphNet, data) -> list[dict]:
    graph, notes = plan_to_nir(net.plan, arch, net.state_dict(), dt=DT)
    assert not notes, notes
    ref = trace_graphnet(net, data.x_test)
    rate = float(torch.cat([s.flatten() for s in ref.spikes.values()]).mean())
    ops = sorted({op for kind in cell.values() for op, _j in kind})
    rows = []
    for reader in READERS:
        other = trace_reader(load_reader(graph, reader, DT), reader, data.x_test, net.plan.timesteps,
                             list(ref.spikes))
        a = agreement(ref, other)
        pairs = sum(v.numel() for v in ref.spikes.values())
        rows.append({"net": name, "reader": reader, "ops": ops, "T": net.plan.timesteps, "rate": rate,
                     "neuron": arch.neuron.type, "pairs": pairs, **a})
    return rows


def refused_cases(data) -> list[tuple[str, str]]:
    """What the export refuses, each with its one-line message."""
    cases = []
    base = {("macro", "cells"): 3, ("macro", "stem", "channels"): 8}
    maxpool = {"normal": [["max_pool_3x3", 0], ["skip_connect", 1]] * 4,
               "reduce": [["max_pool_3x3", 0], ["conv_1x1", 1]] * 4}
    conv = {k: [["conv_3x3", 0], ["conv_3x3", 1]] * 4 for k in ("normal", "reduce")}
    for label, name, over, cell in (
            ("max pooling", "darts_snn", {}, maxpool),
            ("soft reset", "darts_snn", {("neuron", "v_reset"): None}, conv),
            ("rate encoding", "darts_snn", {("encoding",): "rate"}, conv),
            ("ANN", "darts", {}, conv)):
        space = SearchSpace(load_spec(name, overrides={**base, **over}))
        arch, _ = space.resolve(space.sample(np.random.default_rng(0)))
        plan = plan_network(arch, cell, data.input_shape, data.num_classes)
        torch.manual_seed(0)
        try:
            plan_to_nir(plan, arch, GraphNet(plan, arch).state_dict())
            cases.append((label, "exported (not refused)"))
        except ExportError as e:
            cases.append((label, str(e)))
    return cases


def pct(x: float) -> str:
    return f"{100 * x:.4f}"


def markdown(rows: list[dict], refused: list[tuple[str, str]], command: str, seconds: float,
             images: int) -> str:
    lines = ["# NIR round trip: nasco -> NIR -> snnTorch / Norse", "",
             f"git commit {git_commit()}; command `{command}`; {seconds:.0f} s on CPU.", "",
             f"Digits test split ({images} images), dt = {DT}. Agreement with nasco's GraphNet: "
             "predictions (argmax of the logits averaged over T), spikes of every neuron layer per "
             f"(neuron, timestep), logits per (image, timestep, class) within {LOGIT_ATOL}.", "",
             "Readers: snnTorch 1.0.0 `import_from_nir` (it fixes dt = 1e-4); Norse 1.1.0's node mapping "
             "(`_import_norse_module` with the export dt) run by `nirtorch.nir_to_torch`, because "
             "`norse.torch.from_nir` executes nodes depth-first and feeds a node the previous timestep's "
             "value of a branch it reaches later (see nasco/export/_nir_roundtrip.py).", "",
             "| network | neuron | T | mean spike rate | framework | predictions % | spikes % | "
             "last layer spikes % | logits % | max logit diff | (neuron, timestep) pairs |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['net']} | {r['neuron']} | {r['T']} | {r['rate']:.3f} | {r['reader']} | "
                     f"{pct(r['predictions'])} | {pct(r['spikes'])} | {pct(r['last_layer_spikes'])} | "
                     f"{pct(r['logits'])} | {r['max_logit_diff']:.2g} | {r['pairs']} |")
    lines += ["", "## Per op kind (networks whose cells use the op; mean over them)", "",
              "| op | framework | networks | predictions % | spikes % | logits % |",
              "|---|---|---|---|---|---|"]
    by_op: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        for op in r["ops"]:
            by_op[(op, r["reader"])].append(r)
    for (op, reader), rs in sorted(by_op.items()):
        lines.append(f"| {op} | {reader} | {len(rs)} | " + " | ".join(
            pct(float(np.mean([r[k] for r in rs]))) for k in ("predictions", "spikes", "logits")) + " |")
    lines += ["", "## Refused (networks of --runs the export refuses, then one case per refusal)", "",
              "| case | message |", "|---|---|"]
    lines += [f"| {label} | `{msg}` |" for label, msg in refused]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=10, help="networks to sample and train (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the cell sampler and the trainings")
    p.add_argument("--stem-channels", type=int, default=8, help="macro.stem.channels of the sampled networks")
    p.add_argument("--cells", type=int, default=3, help="macro.cells of the sampled networks")
    p.add_argument("--runs", type=Path, nargs="+", help="run directories: use their front members instead")
    p.add_argument("--out", type=Path, default=Path("experiments/results/nir_roundtrip.md"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    data = load_dataset("digits", seed=0)
    rows, refused = [], []
    if args.runs:
        for name, arch, cell, state in front_networks(args.runs):
            net = GraphNet(plan_network(arch, cell, data.input_shape, data.num_classes), arch)
            net.load_state_dict(state)
            try:
                rows += round_trip(name, arch, cell, net.eval(), data)
            except ExportError as e:  # a front member NIR cannot hold (max pooling, ...)
                refused.append((name, str(e)))
    else:
        over = {("macro", "stem", "channels"): args.stem_channels, ("macro", "cells"): args.cells}
        for name, arch, cell in sampled_networks(args.n, args.seed, data, over):
            rows += round_trip(name, arch, cell, train(arch, cell, data, args.seed), data)
            print(f"{name}: " + ", ".join(f"{r['reader']} spikes {pct(r['spikes'])}%" for r in rows[-2:]),
                  flush=True)
    command = "python experiments/nir_roundtrip.py " + " ".join(argv if argv is not None else sys.argv[1:])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    refused += refused_cases(data)
    args.out.write_text(markdown(rows, refused, command, time.perf_counter() - start, len(data.y_test)))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
