"""The darts searcher's derived cell is scored like any candidate: at its accelerator's bit widths.

A one-search run on a tiny spiking cell and sata_like with four choices left (32 configurations,
four membrane widths): the ledger row's accuracy is the quantized accuracy of the network stored
in the run's trainings folder (recomputed here with quantized_accuracy), the float accuracy is
the metric valid_accuracy, and the row's members (its hardware front) each carry the accuracy at
their own bits. About 15 seconds.
"""
from __future__ import annotations

import json

import pytest
import torch

from nasco.dsl import load_spec
from nasco.evaluate import TrainCostEvaluator, load_dataset, quantized_accuracy
from nasco.nn import Precision
from nasco.space import SearchSpace

torch.set_num_threads(1)

OBJ = ("accuracy", "energy", "latency", "area")
# One cell of 8 channels, 2 timesteps: DARTS stays fast, and 3 epochs on 300 digits train the
# derived network well enough that its bit widths change its accuracy (measured: 0.417 float,
# 0.423 at the proposed 8-bit membrane, 0.153 at 4 bits).
# No BN after the pooling ops: the network whose accuracy was measured to depend on the bits.
ARCH = {("macro", "cells"): 1, ("macro", "stem", "channels"): 8, ("macro", "reductions"): [],
        ("timesteps",): 2, ("cell", "pool_bn"): False}
# sata_like with its dataflow, skipping, clock and membrane width left (2 x 2 x 2 x 4 configurations).
FIXED = {("pe_array", "rows"): 16, ("pe_array", "cols"): 8, ("buffers", "ifmap_kb"): 32,
         ("buffers", "filter_kb"): 144, ("buffers", "ofmap_kb"): 32, ("buffers", "membrane_kb"): 4,
         ("bandwidth", "dram_bytes_per_cycle"): 16}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from nasco.run import run_search
    from nasco.search import DartsSearcher

    digits = load_dataset("digits", seed=0, limit=300)
    space = SearchSpace(load_spec("darts_snn", overrides=ARCH), load_spec("sata_like", overrides=FIXED))
    out = tmp_path_factory.mktemp("darts_precision")
    ev = TrainCostEvaluator(space, digits, OBJ, epochs=8, lr=0.05)
    searcher = DartsSearcher(space, OBJ, data=digits, epochs=2, warmup_epochs=1, batch_size=16, log=False)
    run_search(space=space, evaluator=ev, searcher=searcher, budget=1, out_dir=out, seed=0, progress=False,
               limits=ev.limits)
    (row,) = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]
    return space, digits, out, row


def _bits(space, hw: dict) -> tuple[int, int, int]:
    (template,) = space.hw.resolve(hw)
    b = template.bits
    return int(b.weight), int(b.activation), int(b.membrane)


@pytest.mark.filterwarnings("ignore:DARTS collapse warning")
def test_the_derived_cell_is_scored_at_its_accelerators_bits(run):
    space, digits, out, row = run
    assert row["status"] in ("ok", "infeasible") and row["metrics"]["search"]["searcher"] == "darts"
    fit = json.loads((out / "darts" / row["metrics"]["search"]["slot"] / "fit.json").read_text())
    assert row["arch"]["cell"] == fit["cell"]  # the row is the search's derived cell
    key = row["metrics"]["training"]
    stored = json.loads((out / "trainings" / f"{key}.json").read_text())
    # The weights as the run stored them, read back by a fresh evaluator on the run directory.
    reader = TrainCostEvaluator(space, digits, OBJ, epochs=8, lr=0.05)
    reader.attach_run_dir(out, resume=True, seed=0)
    model = reader.load_trained(key)
    w, a, m = _bits(space, row["hw"])
    assert (w, a) == (8, 8) and m < 32  # every width of this template is quantized
    assert row["metrics"]["precision"] == {"weight": w, "activation": a, "membrane": m}
    want = quantized_accuracy(model, digits, Precision(w, a, m), seed=int(stored["inputs"]["seed"]))
    assert row["objectives"]["accuracy"] == want
    assert row["metrics"]["valid_accuracy"] == stored["valid_accuracy"]  # the float network's
    assert want != stored["valid_accuracy"]  # this network's accuracy depends on the bits

    # The hardware front: each member is this network on another configuration, its accuracy
    # the quantized one at that configuration's bits.
    members = row.get("members", [])
    assert members and row["metrics"]["hw_front"]["configurations"] == 32
    for member in members:
        mw, ma, mm = _bits(space, member["hw"])
        acc = quantized_accuracy(model, digits, Precision(mw, ma, mm), seed=int(stored["inputs"]["seed"]))
        assert member["objectives"]["accuracy"] == acc
    assert len({_bits(space, m["hw"])[2] for m in members}) >= 2  # several membrane widths: measured 4 and 6
