"""`nasco search` executor flags: usage errors, the process pool end to end, --storage."""
from __future__ import annotations

import json
import os

import pytest

from nasco.run import Ledger

TABLE = ["search", "--space", "nb201", "--evaluator", "table", "--table", "nb201", "--quiet", "--seed", "2"]


@pytest.mark.parametrize("flags, message", [
    (["--batch", "4"], "--batch (evaluations per Ray task) applies to --executor ray, not 'inprocess'"),
    (["--workers", "2"], "--workers needs --executor pool, ray or tune"),
    (["--executor", "pool", "--cpus-per-trial", "2"], "--cpus-per-trial applies to --executor ray or tune, not 'pool'"),
    (["--executor", "ray", "--workers", "0"], "--workers must be > 0, found 0"),
    (["--executor", "ray", "--trial-timeout", "-1"], "--trial-timeout must be > 0, found -1"),
    (["--executor", "ray", "--scheduler", "asha"], "--scheduler, --asha-* and --tune-optuna apply to --executor tune, not 'ray'"),
    (["--executor", "tune", "--tune-optuna"], "--tune-optuna hands the proposals to Tune's OptunaSearch: it needs an optuna-*"),
    (["--max-retries", "-1"], "--max-retries must be >= 0, found -1"),
])
def test_executor_usage_errors_are_one_line(capsys, tmp_path, flags, message, run_cli):
    code, _, err = run_cli(capsys, *TABLE, "--budget", "3", "--out", str(tmp_path / "r"), *flags)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert message in err
    assert not (tmp_path / "r").exists()  # nothing was started or written


def test_pool_executor_end_to_end_under_storage(capsys, tmp_path, run_cli):
    storage = tmp_path / "shared"
    code, out, err = run_cli(capsys, *TABLE, "--budget", "12", "--executor", "pool", "--workers", "2",
                             "--storage", str(storage), "--out", "runs/p")
    assert code == 0, err
    run = storage / "runs" / "p"
    rows = Ledger(run / "ledger.jsonl").rows()
    assert len(rows) == 12 and len({r["id"] for r in rows}) == 12
    # Worker processes did the lookups, not the driver (one may do them all: they are cheap).
    assert all(not r["worker"].endswith(f":{os.getpid()}") for r in rows)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["executor"] == {"executor": "pool", "workers": 2, "trial_timeout": None, "max_retries": 2,
                                   "threads": 1}
    # Two workers: a job running on each and one waiting, by default.
    assert summary["window"] == 4 and json.loads((run / "run.json").read_text())["window"] == 4
    # The same run with the same window in-process proposes and records the same cells.
    code, _, err = run_cli(capsys, *TABLE, "--budget", "12", "--window", "4", "--out", str(tmp_path / "inproc"))
    assert code == 0, err
    a = sorted((r["seq"], r["id"], r["objectives"]["accuracy"]) for r in rows)
    b = sorted((r["seq"], r["id"], r["objectives"]["accuracy"]) for r in Ledger(tmp_path / "inproc").rows())
    assert a == b
