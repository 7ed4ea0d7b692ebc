"""Regenerate search_spaces/nb201_table.csv.gz from the shared NAS-Bench-201 files.

The three files in ../shared/data/nb201 (accuracy, HW-NAS-Bench/HELP device latency,
Raspberry Pi 5 energy) are joined on the official index and written as one gzip'd CSV
that ships with the package; search_spaces/nb201_table.md restates their provenance.
Values are copied, not recomputed: pandas writes each float's shortest round-trip form.

    python scripts/build_nb201_table.py [SHARED_NB201_DIR]
"""
from __future__ import annotations

import gzip
import os
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
FILES = ("nb201_accuracy.csv.gz", "nb201_device_latency.csv.gz", "nb201_pi5_energy.csv.gz")


def main(argv: list[str]) -> int:
    src = Path(argv[0] if argv else os.environ.get("NASCO_NB201_DIR", ROOT.parent / "shared" / "data" / "nb201"))
    frames = [pd.read_csv(src / f) for f in FILES]
    out = frames[0]
    for f in frames[1:]:
        if len(f) != len(out) or not (f["index"].to_numpy() == out["index"].to_numpy()).all():
            raise SystemExit(f"{src}: the files do not share the same index column")
        out = out.merge(f, on="index", how="inner", validate="one_to_one")
    dest = ROOT / "search_spaces" / "nb201_table.csv.gz"
    # mtime=0: the same inputs give the same bytes.
    with gzip.GzipFile(dest, "wb", compresslevel=9, mtime=0) as fh:
        fh.write(out.to_csv(index=False).encode())
    print(f"{dest}: {len(out)} rows x {out.shape[1]} columns, {dest.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
