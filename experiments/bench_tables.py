"""Lookup-table speed: cold load of every nb201 column from the cache, its memory, and
vectorised lookups per second, each against a baseline measured in the same run.

    OMP_NUM_THREADS=1 python experiments/bench_tables.py

Targets (the lookup-table issue): cold load <= 0.2 s, RSS < 100 MB, >= 1e7 lookups/s.
The cold load runs in a fresh interpreter; its time excludes the interpreter start and
the imports (reported apart), its RSS is the process's peak (VmHWM) after the load.
Baseline: pandas.read_csv of the three shared (or shipped) gzip'd CSV files, and
pandas' .loc lookups.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# Peak RSS from /proc (VmHWM, per address space): ru_maxrss survives fork + exec, so a
# child started from this (pandas-loaded) process would report the parent's peak.
HWM = """
def _hwm():
    try:
        for line in open('/proc/self/status'):
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""
COLD = """
import json, resource, time
t0 = time.perf_counter()
from nasco.tables import load_table, STATS
import pyarrow.parquet
t1 = time.perf_counter()
t = load_table('nb201', cache={cache!r})
t2 = time.perf_counter()
assert STATS['cache_hits'] == 1 and STATS['parsed'] == 0
print(json.dumps({{"import_s": t1 - t0, "load_s": t2 - t1, "columns": len(t.columns), "rows": len(t),
                  "rss_mb": _hwm()}}))
"""
BASE = """
import json, resource, time
import pandas as pd
t1 = time.perf_counter()
frames = [pd.read_csv(p) for p in {paths!r}]
t2 = time.perf_counter()
print(json.dumps({{"load_s": t2 - t1, "columns": sum(f.shape[1] for f in frames),
                  "rss_mb": _hwm()}}))
"""


def _run(code: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", "import resource\n" + HWM + code], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    from nasco.tables import load_table

    cache = tempfile.mkdtemp(prefix="nasco-bench-")
    t0 = time.perf_counter()
    table = load_table("nb201", cache=cache)           # builds the cache once
    build = time.perf_counter() - t0
    colds = [_run(COLD.format(cache=cache)) for _ in range(5)]
    cold = min(colds, key=lambda d: d["load_s"])
    shared = Path(os.environ.get("NASCO_NB201_DIR", ROOT.parent / "shared" / "data" / "nb201"))
    paths = [str(shared / f"{n}.csv.gz") for n in ("nb201_accuracy", "nb201_device_latency", "nb201_pi5_energy")]
    if not all(Path(p).is_file() for p in paths):
        paths = [str(ROOT / "search_spaces" / "nb201_table.csv.gz")]
    base = min((_run(BASE.format(paths=paths)) for _ in range(3)), key=lambda d: d["load_s"])

    rng = np.random.default_rng(0)
    keys = rng.integers(0, len(table), 1_000_000)
    col = table.column_for("accuracy", dataset="c10", split="test", fidelity=200)
    table.query(keys, col)
    reps, t0 = 20, time.perf_counter()
    for _ in range(reps):
        table.query(keys, col)
    qps = reps * len(keys) / (time.perf_counter() - t0)
    frame = table.to_pandas().set_index("index")
    few = keys[:100_000]
    t0 = time.perf_counter()
    frame.loc[few, col].to_numpy()
    pandas_qps = len(few) / (time.perf_counter() - t0)

    print(f"cache build (parse + check + ids, once): {build:.2f} s")
    print(f"cold load, {cold['columns']} columns x {cold['rows']} rows from the parquet cache: "
          f"{cold['load_s'] * 1e3:.1f} ms (target <= 200 ms; imports {cold['import_s']:.2f} s apart); "
          f"pandas.read_csv of {len(paths)} gz file(s): {base['load_s'] * 1e3:.0f} ms -> {base['load_s'] / cold['load_s']:.0f}x")
    print(f"peak RSS of the cold-load process: {cold['rss_mb']:.0f} MB (target < 100 MB); "
          f"read_csv process: {base['rss_mb']:.0f} MB")
    print(f"vectorised lookups: {qps:.3g}/s (target >= 1e7); pandas .loc: {pandas_qps:.3g}/s -> {qps / pandas_qps:.0f}x")
    ok = cold["load_s"] <= 0.2 and cold["rss_mb"] < 100 and qps >= 1e7
    print("targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
