"""The nasco command line: a thin layer over the Python API."""
from __future__ import annotations

import argparse
import os
import sys

from nasco.cli._common import Parser, fail, user_errors
from nasco.cli._cost import add_cost
from nasco.cli._export import add_export
from nasco.cli._report import add_report
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
    add_export(sub)
    add_report(sub)
    return p


def _flag_before_command(parser: Parser, argv: list[str]) -> None:
    """One line when the first word is a command's flag, not nasco's own (``nasco --budget 3``)."""
    if not argv or not argv[0].startswith("-") or argv[0] == "-":
        return
    flag = argv[0].partition("=")[0]
    if any(known.startswith(flag) for known in parser._option_string_actions):  # argparse takes prefixes
        return
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    takers = [name for name, p in sub.choices.items()
              if any(known.startswith(flag) for known in p._option_string_actions)]
    if takers:
        also = f" (and {', '.join(takers[1:])})" if takers[1:] else ""
        fail(f"{flag} is a flag of 'nasco {takers[0]}'{also}; put the command first, e.g. "
             f"'nasco {takers[0]} {' '.join(argv)}'")
    fail(f"{flag}: not a flag of nasco; give a command first ({', '.join(sub.choices)}); see 'nasco --help'")


def main(argv: list[str] | None = None) -> int:
    # One thread by default: two OpenMP threads on a busy 2-core machine can run far slower.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    parser = build_parser()
    _flag_before_command(parser, sys.argv[1:] if argv is None else list(argv))
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
