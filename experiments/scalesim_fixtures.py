"""Generate SCALE-Sim v3 reference fixtures for the analytical systolic-array model.

Runs the real SCALE-Sim simulator (``pip install scalesim==3.0.0 'numpy<2.4'``; numpy >= 2.4
makes scalesim 3.0.0 crash with ``TypeError: only 0-dimensional arrays can be converted to
Python scalars`` in ``read_buffer.prefetch_active_buffer``) over a deterministic set of
single-conv-layer cases and writes one CSV row per case.

Usage (with a venv where scalesim 3.0.0 works)::

    OMP_NUM_THREADS=1 python experiments/scalesim_fixtures.py \
        --out tests/fixtures/scalesim/cases.csv

Each case writes a ``.cfg``, a one-layer topology ``.csv`` and an (empty) layout ``.csv`` to
a temporary directory and runs SCALE-Sim through its Python API (``scalesim.scale_sim.scalesim``,
equivalent to ``python -m scalesim.scale -c cfg -t topo -l layout -p outdir``) with trace saving
disabled, then parses ``COMPUTE_REPORT.csv`` and ``DETAILED_ACCESS_REPORT.csv``.

The case list is: hand-picked edge cases (layer smaller than the array, exactly one fold, one
fold plus one, fully-connected layers as 1x1 conv on a 1x1 ifmap, 512 channels, 7x7/5x5 stride-2
layers, non-square ifmaps/filters) for every dataflow, a seeded random sample (``SEED``), and a few
small-SRAM cases that do stall.  Everything except the ``stall`` group uses ``SRAM_KB`` per
buffer, large enough that every operand fits in the active half of its SRAM (no stalls).
"""
from __future__ import annotations

import argparse
import csv
import importlib.metadata
import io
import os
import random
import sys
import tempfile
import time
from contextlib import redirect_stdout
from multiprocessing import Pool
from pathlib import Path

SEED = 20240611
N_RANDOM = 120
SRAM_KB = 2048          # per buffer (ifmap / filter / ofmap); active half = 1 Mi words
DRAM_BW = 10            # words/cycle: Bandwidth, IfmapSRAMBankBandwidth, FilterSRAMBankBandwidth
MAX_MACS = 400_000      # keeps each SCALE-Sim run to a few seconds (its inner loops are Python)
SHAPES: list[tuple[int, int]] = [(8, 8), (16, 16), (32, 8), (12, 14), (7, 13), (4, 4)]
DATAFLOWS = ("os", "ws", "is")

CFG_TEMPLATE = """[general]
run_name = fixture

[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: {sram_kb}
FilterSramSzkB: {sram_kb}
OfmapSramSzkB: {sram_kb}
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Bandwidth: {bw}
Dataflow: {dataflow}
ReadRequestBuffer: 512
WriteRequestBuffer: 512

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: {bw}
IfmapSRAMBankNum: 1
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: {bw}
FilterSRAMBankNum: 1
FilterSRAMBankPort: 2

[run_presets]
InterfaceBandwidth: USER
UseRamulatorTrace: False

[sparsity]
SparsitySupport: false
"""

TOPO_HEADER = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, "
               "Channels, Num Filter, Strides,\n")

LAYER_KEYS = ("ifmap_h", "ifmap_w", "filter_h", "filter_w", "channels", "num_filters", "stride")
COLUMNS = (["case_id", "group", "dataflow", "array_rows", "array_cols", *LAYER_KEYS,
            "sram_kb", "dram_bw", "total_cycles", "stall_cycles", "compute_cycles",
            "total_cycles_incl_prefetch", "ifmap_sram_reads", "filter_sram_reads",
            "ofmap_sram_writes", "ifmap_dram_reads", "filter_dram_reads", "ofmap_dram_writes",
            "overall_util_pct", "mapping_eff_pct", "compute_util_pct", "scalesim_version"])


def _layer(ih: int, iw: int, fh: int, fw: int, ch: int, nf: int, s: int) -> dict[str, int]:
    return dict(zip(LAYER_KEYS, (ih, iw, fh, fw, ch, nf, s)))


def hand_cases() -> list[dict]:
    """Edge cases, each run for every dataflow on the listed array shape."""
    L = _layer
    picks: list[tuple[tuple[int, int], dict[str, int]]] = [
        ((16, 16), L(2, 2, 1, 1, 3, 4, 1)),        # layer much smaller than the array
        ((7, 13), L(1, 1, 1, 1, 1, 1, 1)),         # degenerate 1 MAC
        ((8, 8), L(10, 10, 3, 3, 1, 8, 1)),        # OS: 64 px x 8 filt = exactly one fold
        ((8, 8), L(1, 1, 1, 1, 8, 8, 1)),          # WS: window 8 x 8 filters = one fold
        ((8, 8), L(4, 2, 1, 1, 8, 3, 1)),          # IS: window 8 x 8 px = one fold
        ((8, 8), L(11, 10, 3, 3, 1, 9, 1)),        # one fold + 1 along both GEMM dims (OS)
        ((12, 14), L(1, 1, 1, 1, 512, 100, 1)),    # FC layer 512 -> 100
        ((32, 8), L(1, 1, 1, 1, 1, 10, 1)),        # FC layer 1 -> 10
        ((16, 16), L(1, 1, 1, 1, 300, 1, 1)),      # FC layer 300 -> 1
        ((16, 16), L(3, 3, 3, 3, 512, 8, 1)),      # 512 channels, 3x3 on 3x3 -> 1 px
        ((32, 8), L(13, 13, 7, 7, 3, 16, 2)),      # 7x7 stride-2 stem-like
        ((12, 14), L(14, 14, 5, 5, 6, 16, 2)),     # 5x5 stride 2, (14-5)//2+1 = 5
        ((7, 13), L(9, 14, 3, 3, 5, 7, 1)),        # non-square ifmap
        ((16, 16), L(8, 12, 1, 3, 4, 6, 1)),       # non-square filter 1x3
        ((8, 8), L(7, 7, 7, 7, 512, 4, 1)),        # 7x7x512 window, single output px
        ((4, 4), L(6, 6, 3, 3, 2, 5, 2)),          # stride 2 with remainder, tiny array
    ]
    out = []
    for shape, layer in picks:
        for df in DATAFLOWS:
            out.append(dict(group="hand", dataflow=df, array_rows=shape[0],
                            array_cols=shape[1], sram_kb=SRAM_KB, **layer))
    return out


def random_cases(n: int = N_RANDOM, seed: int = SEED) -> list[dict]:
    """Seeded random layers; dataflow and array shape are cycled for balanced coverage."""
    rng = random.Random(seed)
    out: list[dict] = []
    i = 0
    while len(out) < n:
        df = DATAFLOWS[i % 3]
        rows, cols = SHAPES[(i // 3) % len(SHAPES)]
        i += 1
        fh = rng.choice([1, 3, 5, 7])
        fw = fh if rng.random() < 0.9 else rng.choice([1, 3, 5, 7])
        s = rng.choice([1, 2])
        ch = max(1, round(2 ** rng.uniform(0, 9)))        # 1 .. 512
        nf = max(1, round(2 ** rng.uniform(0, 8)))        # 1 .. 256
        oh = rng.randint(1, 12)
        ow = oh if rng.random() < 0.7 else rng.randint(1, 12)
        ih = (oh - 1) * s + fh + rng.randint(0, s - 1)    # exercise the floor in the ofmap size
        iw = (ow - 1) * s + fw + rng.randint(0, s - 1)
        if oh * ow * fh * fw * ch * nf > MAX_MACS:
            continue
        out.append(dict(group="random", dataflow=df, array_rows=rows, array_cols=cols,
                        sram_kb=SRAM_KB, **_layer(ih, iw, fh, fw, ch, nf, s)))
    return out


def stall_cases() -> list[dict]:
    """Small-SRAM cases (1 kB buffers) so that SCALE-Sim reports non-zero stall cycles."""
    layer = _layer(6, 6, 3, 3, 8, 12, 1)
    return [dict(group="stall", dataflow=df, array_rows=8, array_cols=8, sram_kb=1, **layer)
            for df in DATAFLOWS]


def all_cases() -> list[dict]:
    cases = hand_cases() + random_cases() + stall_cases()
    for k, c in enumerate(cases):
        c["case_id"] = k
        c["dram_bw"] = DRAM_BW
    return cases


def _read_report(path: Path) -> list[str]:
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    return [x.strip() for x in lines[1].split(",") if x.strip() != ""]


def run_case(case: dict) -> dict:
    """Run SCALE-Sim on one case and return the fixture row."""
    from scalesim.scale_sim import scalesim  # imported lazily: only the generator needs it

    with tempfile.TemporaryDirectory(prefix="ssim_") as tmp:
        d = Path(tmp)
        (d / "arch.cfg").write_text(CFG_TEMPLATE.format(
            rows=case["array_rows"], cols=case["array_cols"], sram_kb=case["sram_kb"],
            bw=case["dram_bw"], dataflow=case["dataflow"]))
        (d / "topo.csv").write_text(TOPO_HEADER + "L0, " + ", ".join(
            str(case[k]) for k in LAYER_KEYS) + ",\n")
        (d / "layout.csv").write_text("Layer name,\n")
        with redirect_stdout(io.StringIO()):
            sim = scalesim(save_disk_space=True, verbose=False, config=str(d / "arch.cfg"),
                           topology=str(d / "topo.csv"), layout=str(d / "layout.csv"))
            sim.run_scale(top_path=str(d / "out"))
        comp = _read_report(d / "out" / "fixture" / "COMPUTE_REPORT.csv")
        det = _read_report(d / "out" / "fixture" / "DETAILED_ACCESS_REPORT.csv")
    as_int = lambda x: int(round(float(x)))  # noqa: E731  (reports print e.g. "793.0")
    total, stall = as_int(comp[2]), as_int(comp[3])
    row = dict(case)
    row.update(
        total_cycles=total, stall_cycles=stall, compute_cycles=total - stall,
        total_cycles_incl_prefetch=as_int(comp[1]),
        ifmap_sram_reads=as_int(det[3]), filter_sram_reads=as_int(det[6]),
        ofmap_sram_writes=as_int(det[9]), ifmap_dram_reads=as_int(det[12]),
        filter_dram_reads=as_int(det[15]), ofmap_dram_writes=as_int(det[18]),
        overall_util_pct=repr(float(comp[4])), mapping_eff_pct=repr(float(comp[5])),
        compute_util_pct=repr(float(comp[6])),
        scalesim_version=importlib.metadata.version("scalesim"),
    )
    return row


def _run_timed(case: dict) -> tuple[dict, float]:
    t0 = time.perf_counter()
    row = run_case(case)
    return row, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("tests/fixtures/scalesim/cases.csv"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="only the first N cases (debugging)")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    cases = all_cases()
    if args.limit:
        cases = cases[: args.limit]
    t0 = time.perf_counter()
    rows: list[dict] = []
    with Pool(args.jobs) as pool:
        for row, dt in pool.imap(_run_timed, cases):
            rows.append(row)
            print(f"[{row['case_id']:3d}] {row['dataflow']} {row['array_rows']}x"
                  f"{row['array_cols']} compute={row['compute_cycles']} "
                  f"stall={row['stall_cycles']} ({dt:.1f}s)", file=sys.stderr)
    import numpy as np  # version of the numpy scalesim ran with, for the record

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as fh:
        fh.write(f"# SCALE-Sim {importlib.metadata.version('scalesim')} fixtures, numpy "
                 f"{np.__version__}, python {sys.version.split()[0]}; generated by "
                 f"experiments/scalesim_fixtures.py (seed {SEED}); see README.md\n")
        w = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {len(rows)} cases to {args.out} in {time.perf_counter() - t0:.0f}s",
          file=sys.stderr)


if __name__ == "__main__":
    main()
