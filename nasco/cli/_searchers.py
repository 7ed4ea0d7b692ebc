"""`nasco searchers`: the registered searchers, what each does, and its settings."""
from __future__ import annotations

import argparse
import inspect

from nasco.cli._common import UsageError

__all__ = ["add_searchers", "searcher_options"]


def searcher_options(cls) -> list[tuple[str, object]]:
    """(name, default) of the constructor settings of a searcher class (keyword-only, bar seed)."""
    params = inspect.signature(cls.__init__).parameters
    # seed is --seed; a differentiable searcher's data, device and log come from --dataset,
    # --device and --quiet.
    return [(k, p.default) for k, p in params.items()
            if p.kind == p.KEYWORD_ONLY and k not in ("seed", "data", "device", "log")]


def _cmd_searchers(args: argparse.Namespace) -> int:
    from nasco.search import DIFFERENTIABLE, SEARCHERS

    known = {**SEARCHERS, **DIFFERENTIABLE}
    names = [args.name] if args.name else list(known)
    for name in names:
        if name not in known:
            raise UsageError(f"searchers: unknown '{name}'; known: {', '.join(known)}")
        cls = known[name]
        doc = inspect.getdoc(cls) or ""
        print(f"{name}: {doc.splitlines()[0] if doc else cls.__name__}")
        if args.name:  # one searcher: its whole description
            rest = "\n".join(doc.splitlines()[1:]).strip()
            if rest:
                print("\n".join("    " + line for line in rest.splitlines()))
        opts = searcher_options(cls)
        if opts:
            print("    options (--searcher-opt KEY=VALUE): "
                  + ", ".join(f"{k}={d!r}" for k, d in opts))
    return 0


def add_searchers(sub) -> None:
    p = sub.add_parser("searchers", help="list the searchers and their --searcher-opt settings",
                       description="List the searchers 'nasco search --searcher' takes, with the settings each "
                                   "accepts through --searcher-opt KEY=VALUE and their defaults. With NAME, the "
                                   "searcher's whole description.")
    p.add_argument("name", nargs="?", help="one searcher to describe (default: all)")
    p.set_defaults(func=_cmd_searchers)
