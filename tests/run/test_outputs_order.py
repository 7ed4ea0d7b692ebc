"""pareto.csv and summary.json's front are in seq order, whatever order a pool of workers
appended the ledger's rows in: two runs with the same rows write the same files."""
from __future__ import annotations

import json

from nasco.core import Candidate, Objective
from nasco.run import Ledger
from nasco.run._outputs import write_outputs

OBJ = (Objective("accuracy", "max", "fraction", 1.0, 0.0), Objective("latency", "min", "s", 0.0, 1.0))
# Three rows on the front (none dominates another) and one dominated by seq 0 (hand-checked:
# 0.5 < 0.9 and 0.6 > 0.2).
ROWS = {0: (0.9, 0.2), 1: (0.7, 0.1), 2: (0.95, 0.5), 3: (0.5, 0.6)}
ID = {seq: Candidate.make({"n": seq}).id for seq in ROWS}


def _write(folder, order):
    folder.mkdir()
    ledger = Ledger(folder / "ledger.jsonl")
    for seq in order:
        acc, lat = ROWS[seq]
        ledger.append({"seq": seq, "id": ID[seq], "status": "ok", "arch": {"n": seq}, "hw": {},
                       "objectives": {"accuracy": acc, "latency": lat}})
    write_outputs(folder, ledger, OBJ, None, {})
    return folder


def test_front_is_in_seq_order_whatever_order_the_rows_finished(tmp_path):
    in_order = _write(tmp_path / "a", [0, 1, 2, 3])
    finished = _write(tmp_path / "b", [2, 0, 3, 1])  # as two workers may append them
    lines = (finished / "pareto.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in lines] == ["id", ID[0], ID[1], ID[2]]
    assert (finished / "pareto.csv").read_bytes() == (in_order / "pareto.csv").read_bytes()
    summary = json.loads((finished / "summary.json").read_text())
    assert summary["front_ids"] == [ID[0], ID[1], ID[2]]
