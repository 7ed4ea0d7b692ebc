"""The nasco command line: a thin layer over the Python API."""
from __future__ import annotations

import os
import sys

from nasco.cli._common import Parser, fail, user_errors
from nasco.cli._cost import add_cost
from nasco.cli._search import add_search
from nasco.cli._searchers import add_searchers
from nasco.cli._spaces import add_spaces, add_validate
from nasco.cli._table import add_table

__all__ = ["main", "build_parser"]


def build_parser() -> Parser:
    import nasco

    p = Parser(prog="nasco", description="Neural architecture search for spiking and ANN networks "
                                         "co-designed with accelerators.")
    p.add_argument("--version", action="version", version=f"nasco {nasco.__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    add_search(sub)
    add_searchers(sub)
    add_cost(sub)
    add_spaces(sub)
    add_validate(sub)
    add_table(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    # One thread by default: two OpenMP threads on a busy 2-core machine can run far slower.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except user_errors() as exc:
        fail(str(exc).replace("\n", " "))
    except KeyboardInterrupt:
        print("nasco: interrupted; the ledger keeps every finished evaluation (rerun with --resume)",
              file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`nasco table info nb201 | head`): stop quietly, as Unix tools
        # do, and point stdout at devnull so the interpreter's final flush cannot raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
