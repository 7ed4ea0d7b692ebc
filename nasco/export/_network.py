"""A run's trained network by candidate id: found in the ledger, rebuilt from what the run kept.

An id is a front pair's (pareto.csv's ``id``) or a ledger row's, or a prefix of one that no
other id shares. Its network is the training its row names (``metrics.training``): the
record in ``trainings/`` (trained stand-alone) or ``inherited/`` (a one-shot score: the
supernet's weights for that path, recalibrated), whose inputs hold the resolved space, the
cell and the data's shapes, and whose weights are safetensors. An architecture retrained
after a search is found with its stand-alone row, as on the reported front.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from nasco.evaluate._oneshot import INHERITED_DIR
from nasco.evaluate._trainings import DIRNAME as TRAININGS_DIR
from nasco.evaluate._trainings import TrainingStore
from nasco.export._errors import ExportError, MissingWeightsError
from nasco.pareto import expand_pairs
from nasco.run import Ledger
from nasco.run._ledger import FILENAME as LEDGER_FILE
from nasco.run._retrain import reported_rows

__all__ = ["STORES", "TrainedNetwork", "find_pair", "load_network", "training_key_of"]

STORES = (TRAININGS_DIR, INHERITED_DIR)  # the folders of a run directory that keep networks


def _pairs(run_dir: Path) -> list[dict[str, Any]]:
    """Every pair of the run, those of the reported front's rows first (so a retrained
    architecture's id finds its stand-alone row)."""
    path = run_dir / LEDGER_FILE
    if not path.is_file():
        raise ExportError(str(run_dir), f"expected a run directory holding {LEDGER_FILE}, found none",
                          "give the folder that 'nasco search --out' wrote")
    rows = Ledger(path).rows()
    out, seen = [], set()
    for pair in expand_pairs(reported_rows(rows)) + expand_pairs(rows):
        if pair.get("id") not in seen:
            seen.add(pair.get("id"))
            out.append(pair)
    return out


def find_pair(run_dir: str | Path, cid: str) -> dict[str, Any]:
    """The pair (as :func:`nasco.pareto.expand_pairs` gives it) whose id is ``cid`` or starts
    with it; an ExportError names close ids when none or several match."""
    run_dir = Path(run_dir)
    pairs = _pairs(run_dir)
    hits = [p for p in pairs if str(p.get("id", "")).startswith(cid)] if cid else []
    exact = [p for p in hits if p.get("id") == cid]
    if exact or len(hits) == 1:
        return (exact or hits)[0]
    ids = [str(p.get("id")) for p in pairs]
    if hits:
        raise ExportError(f"{run_dir}", f"id '{cid}' is the start of {len(hits)} ids "
                          f"({', '.join(str(p['id']) for p in hits[:4])})", "give more of it")
    close = difflib.get_close_matches(cid, ids, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else "see the id column of pareto.csv"
    raise ExportError(f"{run_dir}", f"no candidate with id '{cid}' among its {len(ids)}", hint)


def training_key_of(pair: dict[str, Any], task: int | None = None) -> str:
    """The key of the training a pair's network is: its ``metrics.training`` (one per task in
    a multi-task run, where ``task`` picks one)."""
    where = f"candidate {pair.get('id')}"
    if pair.get("status") == "failed":
        raise ExportError(where, f"its evaluation failed ({pair.get('reason')}), so it has no network",
                          "export another candidate of the front")
    key = (pair.get("metrics") or {}).get("training")
    if key is None:
        raise ExportError(where, "its row names no trained network (scored from a table or a proxy)",
                          "export a candidate of a run with the train or oneshot evaluator")
    if isinstance(key, list):
        if task is None or not 0 <= task < len(key):
            raise ExportError(where, f"it has one network per task ({len(key)} tasks), found task {task}",
                              f"pass --task N with N in 0..{len(key) - 1}")
        return str(key[task])
    if task not in (None, 0):
        raise ExportError(where, f"it has one network, found task {task}", "leave out --task")
    return str(key)


@dataclass(frozen=True)
class TrainedNetwork:
    """One trained network of a run: its pair (``hw``, ``objectives``, ``metrics``), the
    training record's key and inputs, and its weights."""

    pair: dict[str, Any]
    key: str
    inputs: dict[str, Any]
    state: dict[str, Any] = field(repr=False)
    store: str = TRAININGS_DIR  # the folder it came from

    @cached_property
    def space(self) -> Any:
        """The resolved architecture space the network was built in."""
        from nasco.dsl import ArchSpace, build

        return build(ArchSpace, self.inputs["space"])

    @cached_property
    def plan(self) -> Any:
        from nasco.nn import plan_network

        data = self.inputs["data"]
        return plan_network(self.space, self.inputs["arch"]["cell"], tuple(data["input_shape"]),
                            int(data["num_classes"]))

    def module(self) -> Any:
        """A :class:`nasco.nn.GraphNet` with the weights, in eval mode."""
        from nasco.nn import GraphNet

        net = GraphNet(self.plan, self.space)
        net.load_state_dict(self.state)
        return net.eval()


def load_network(run_dir: str | Path, cid: str, *, task: int | None = None,
                 key: str | None = None) -> TrainedNetwork:
    """The trained network of candidate ``cid`` of the run in ``run_dir`` (``key``: that
    training's instead of the one its row names). An ExportError when the run kept no
    weights for it (hint: train it first)."""
    run_dir = Path(run_dir)
    pair = find_pair(run_dir, cid)
    key = key or training_key_of(pair, task)
    for folder in STORES:
        store = TrainingStore(run_dir / folder)
        rec = store.get(key)
        if rec is None:
            continue
        if rec.diverged is not None:
            raise ExportError(f"candidate {pair['id']}", f"its training diverged ({rec.diverged})",
                              "export another candidate of the front")
        return TrainedNetwork(pair=pair, key=key, inputs=dict(rec.inputs), state=store.state_dict(key),
                              store=folder)
    raise MissingWeightsError(f"candidate {pair['id']}", f"the run kept no weights for its network "
                              f"{key[:16]} (in {' or '.join(STORES)})",
                              "pass --train to train it with the run's settings")
