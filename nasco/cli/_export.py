"""`nasco export`: one candidate's network of a run as NIR, ONNX or torch, with a JSON sidecar."""
from __future__ import annotations

import argparse

from nasco.cli._common import int_in

__all__ = ["add_export"]

_FORMATS = ("torch", "nir", "onnx")  # nasco.export.FORMATS; named here so --help imports no torch


def _cmd_export(args: argparse.Namespace) -> int:
    import nasco
    from nasco.export import SIDECAR

    study = nasco.load_study(args.run)
    out = study.export(args.id, args.format, args.out, approximate=args.approximate, train=args.train,
                       task=args.task)
    print(f"exported {args.id} as {args.format} to {out} (what it is: {out / SIDECAR})")
    return 0


def add_export(sub) -> None:
    p = sub.add_parser(
        "export", help="export a found network: NIR (spiking), ONNX or torch",
        description="Export the trained network of one candidate of a run (an id from pareto.csv or "
                    "the ledger, or a unique prefix) to a folder: NIR for spiking networks (snnTorch, Norse, "
                    "Sinabs, Lava-DL read it), ONNX from plain operators (a spiking network unrolled over "
                    "its timesteps), or torch (safetensors weights; nasco.export.load_torch rebuilds the "
                    "module). Beside it, nasco_export.json: the architecture, accelerator, precision, "
                    "objectives and versions. What a format cannot express exactly is refused with one line.",
        epilog="example: nasco export runs/darts_snn-asic_template-seed0 --id f224161a --format nir")
    p.add_argument("run", help="the run directory (nasco search --out)")
    p.add_argument("--id", required=True, help="the candidate: an id of pareto.csv or the ledger, or a "
                                               "unique prefix of one")
    p.add_argument("--format", choices=_FORMATS, default="torch", help="the format (default: torch)")
    p.add_argument("--out", help="the folder to write (default: RUN/exports/ID-FORMAT); an earlier export "
                                 "there is replaced")
    p.add_argument("--approximate", action="store_true",
                   help="NIR: map what NIR cannot express exactly (max pooling as average pooling, ...) and "
                        "list each approximation in the sidecar, instead of refusing")
    p.add_argument("--train", action="store_true",
                   help="a candidate whose weights the run did not keep: train it first with the run's "
                        "recorded settings and seed (kept in the run for next time)")
    p.add_argument("--task", type=int_in(0), help="multi-task runs: the task whose network to export")
    p.set_defaults(func=_cmd_export)
