"""The ledger: durable JSON lines, torn-tail recovery, flat frames."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from nasco.core import Candidate
from nasco.run import LEDGER_COLUMNS, Ledger, LedgerError


def _row(seq: int, status: str = "ok", **objs: float) -> dict:
    arch, hw = {"cell": {"edges": ["a", "b"]}, "hp": {"t": seq}}, {"pe_array.rows": 8}
    return {"seq": seq, "id": Candidate.make(arch, hw).id, "arch": arch,
            "hw": hw, "seed": 1000 + seq, "status": status,
            "reason": "RuntimeError: x" if status == "failed" else None,
            "objectives": objs, "violations": {"area": 0.5} if status == "infeasible" else {},
            "metrics": {"n": np.int64(seq), "v": np.float32(0.5)}, "seconds": 0.25,
            "started_at": "2026-01-01T00:00:00.000+00:00", "finished_at": "2026-01-01T00:00:00.250+00:00"}


def test_append_and_read_back(tmp_path):
    led = Ledger(tmp_path)  # a directory: the file is ledger.jsonl inside it
    assert led.path == tmp_path / "ledger.jsonl" and led.rows() == []
    led.append(_row(0, accuracy=0.5, energy=1e-3))
    led.append(_row(1, "failed"))
    led.append(_row(2, "infeasible", accuracy=0.7, energy=2e-3))
    lines = led.path.read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(x)["id"] for x in lines)
    rows = Ledger(led.path).rows()
    assert [r["seq"] for r in rows] == [0, 1, 2]
    assert rows[0]["metrics"] == {"n": 0, "v": 0.5}  # numpy scalars stored as their values
    assert rows[1]["reason"] == "RuntimeError: x" and rows[1]["objectives"] == {}
    # pandas reads it as JSON Lines too.
    df = pd.read_json(led.path, lines=True)
    assert df["status"].tolist() == ["ok", "failed", "infeasible"]
    with pytest.raises(TypeError, match="JSON data"):
        led.append({"bad": object()})
    assert len(Ledger(led.path)) == 3


def test_to_frame_columns(tmp_path):
    led = Ledger(tmp_path / "ledger.jsonl")
    led.append(_row(0, accuracy=0.5, energy=1e-3))
    led.append(_row(1, "failed"))
    df = led.to_frame()
    assert list(df.columns) == [*LEDGER_COLUMNS, "accuracy", "energy", "arch", "hw", "violations", "metrics"]
    assert list(LEDGER_COLUMNS) == ["seq", "id", "status", "reason", "seed", "seconds", "started_at",
                                    "finished_at"]
    assert df["accuracy"].tolist()[0] == 0.5 and np.isnan(df["accuracy"].tolist()[1])
    assert json.loads(df["arch"][0]) == {"cell": {"edges": ["a", "b"]}, "hp": {"t": 0}}
    assert json.loads(df["hw"][0]) == {"pe_array.rows": 8}
    assert json.loads(df["metrics"][1]) == {"n": 1, "v": 0.5}
    assert json.loads(df["violations"][0]) == {}
    # Asked-for objectives are columns even when no row has them.
    assert list(led.to_frame(("accuracy", "latency")).columns)[8:10] == ["accuracy", "latency"]
    empty = Ledger(tmp_path / "none.jsonl").to_frame(("accuracy",))
    assert empty.empty and "accuracy" in empty.columns


@pytest.mark.parametrize("tail", [b'{"seq": 2, "id": "id0', b'{"seq": 2, "id": "id002"}', b"\x00" * 64,
                                  b"\x00" * 10 + b"\n" + b"\x00" * 5])
def test_torn_last_line_is_ignored_then_cut(tmp_path, tail):
    led = Ledger(tmp_path / "ledger.jsonl")
    led.append(_row(0, accuracy=0.1))
    led.append(_row(1, accuracy=0.2))
    good = led.path.read_bytes()
    with open(led.path, "ab") as fh:  # a crash in the middle of the third write
        fh.write(tail)
    fresh = Ledger(led.path)
    with pytest.warns(RuntimeWarning, match="torn last line"):
        assert [r["seq"] for r in fresh.rows()] == [0, 1]
    with pytest.warns(RuntimeWarning, match="removing a torn last line"):
        fresh.append(_row(2, accuracy=0.3))
    assert led.path.read_bytes().startswith(good)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [r["seq"] for r in Ledger(led.path).rows()] == [0, 1, 2]
        fresh.append(_row(3, accuracy=0.4))  # the tail is checked once per instance
    assert len(led.path.read_text().splitlines()) == 4


def test_corrupt_middle_line_is_an_error(tmp_path):
    path = tmp_path / "ledger.jsonl"
    path.write_text(json.dumps(_row(0, accuracy=0.1), default=int) + "\n" + "{oops\n"
                    + json.dumps({"seq": 2}) + "\n")
    with pytest.raises(LedgerError, match=r"ledger.jsonl:2: cannot read"):
        Ledger(path).rows()


def test_a_row_whose_content_does_not_match_its_id_is_an_error(tmp_path):
    path = tmp_path / "ledger.jsonl"
    edited = _row(1, accuracy=0.2) | {"arch": {"cell": {"edges": ["c", "b"]}, "hp": {"t": 1}}}
    path.write_text("".join(json.dumps(r, default=int) + "\n" for r in (_row(0, accuracy=0.1), edited)))
    with pytest.raises(LedgerError, match=r"ledger.jsonl:2: key 'id': .* is not the id of the row's arch"):
        Ledger(path).rows()


def test_a_ledger_that_is_a_directory_is_an_error(tmp_path):
    (tmp_path / "ledger.jsonl").mkdir()
    for given in (tmp_path, tmp_path / "ledger.jsonl"):
        with pytest.raises(LedgerError, match="expected the ledger file, found a directory"):
            Ledger(given).rows()
