"""`nasco report` and `nasco show`: a run's HTML report and markdown summary; one candidate."""
from __future__ import annotations

import argparse

from nasco.cli._common import int_in
from nasco.hw import ZIGZAG_EXTRA, ZIGZAG_LPF_LIMIT

__all__ = ["add_report"]

_RUN_HELP = "a run directory (the --out of nasco search)"


def _cmd_report(args: argparse.Namespace) -> int:
    from nasco.report import write_report

    html_path, md_path = write_report(args.run, args.out, zigzag=args.zigzag,
                                      zigzag_lpf_limit=args.zigzag_lpf_limit)
    print(f"report: {html_path}")
    print(f"summary: {md_path}")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from nasco.report import show_candidate

    lines, png = show_candidate(args.run, args.id, args.png)
    print("\n".join(lines))
    if png is not None:
        print(f"cell diagram: {png}")
    return 0


def add_report(sub) -> None:
    p = sub.add_parser(
        "report", help="write a run's report: report.html (self-contained, offline) and report.md",
        description="Write RUN's report: report.html, one self-contained file that opens offline (the "
                    "Pareto front as an interactive scatter matrix, the hypervolume history, each front "
                    "architecture's cells, accelerator, per-layer energy and spike rates, the run's counts "
                    "and config), and report.md, a markdown summary.")
    p.add_argument("run", metavar="RUN", help=_RUN_HELP)
    p.add_argument("--out", metavar="DIR", default=None,
                   help="folder for report.html and report.md (default RUN)")
    p.add_argument("--zigzag", action="store_true",
                   help="also re-cost each shown front architecture's best pair with ZigZag (pip install "
                        f"'{ZIGZAG_EXTRA}') on the accelerator its zigzag_* template was translated from, "
                        "and show nasco's and ZigZag's energy and latency side by side with their ratios; a "
                        "pair ZigZag cannot cost says why in its row")
    p.add_argument("--zigzag-lpf-limit", type=int_in(1), default=ZIGZAG_LPF_LIMIT,
                   help=f"--zigzag: the loop-prime-factor limit of ZigZag's LOMA mapping search; lower "
                        f"searches fewer temporal mappings, faster (default {ZIGZAG_LPF_LIMIT}, ZigZag's)")
    p.set_defaults(func=_cmd_report)
    s = sub.add_parser(
        "show", help="print one candidate of a run and write its cell diagram PNG",
        description="Print one candidate of RUN (objectives, architecture, accelerator, precision) and write "
                    "its cell diagram as a PNG.")
    s.add_argument("run", metavar="RUN", help=_RUN_HELP)
    s.add_argument("--id", required=True, help="a front id (pareto.csv's id column) or a ledger row's id")
    s.add_argument("--png", metavar="PATH", default=None,
                   help="where to write the cell diagram (default RUN/cells-ID.png)")
    s.set_defaults(func=_cmd_show)
