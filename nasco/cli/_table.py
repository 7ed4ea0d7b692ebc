"""`nasco table import | info | query`: lookup tables on the command line."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from nasco.cli._common import UsageError

__all__ = ["add_table"]


def _index(text: str) -> int:
    """The argparse type of --index: an integer that fits the tables' int64 index (a negative one
    or one past the table's last is reported by the table, with its range)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an official index (an integer), found '{text}'") from None
    if not -2**63 <= value < 2**63:
        raise argparse.ArgumentTypeError("expected an official index, an integer in int64 range (below 2**63), "
                                         f"found '{text}'")
    return value


def _cmd_import(args: argparse.Namespace) -> int:
    if args.format:
        try:
            from nasco.tables._convert import convert
        except ImportError as exc:
            raise UsageError(f"--format {args.format}: the converters are not available ({exc})") from None
        if not args.out:
            raise UsageError("--format needs --out DIR")
        try:
            df = convert(args.file, args.format, trust_pickle=args.trust_pickle)
        except Exception as exc:  # noqa: BLE001 - any converter failure is the file's fault: one line
            raise UsageError(f"{args.file}: {exc}") from None
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        dest = out / f"{Path(args.file).name.split('.')[0]}.parquet"
        tmp = dest.with_name(dest.name + ".partial")
        df.to_parquet(tmp, index=False)
        tmp.replace(dest)  # atomic: a reader never sees half a file
        print(f"{dest}: {len(df)} rows, columns {', '.join(map(str, df.columns))}")
        return 0
    from nasco.tables import load_table

    t = load_table(args.file, rebuild=args.rebuild)
    print(f"{t.name}: {len(t)} rows, {len(t.spec.metrics)} metric columns; cache {t.cache_path}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from nasco.tables import load_table

    info = load_table(args.name).info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['name']}: {info['description']}\n  file {info['file']}\n  data {info['source']} "
          f"({info['rows']} rows, space {info['space']})\n  cache {info['cache']}\n  provenance {info['provenance']}")
    for c in info["columns"]:
        where = ", ".join(f"{k}={c[k]}" for k in ("dataset", "split", "fidelity") if c[k] is not None)
        print(f"  {c['column']:<30} {c['metric']:<24} {c['direction']} {c['unit'] or '-':<3} {where:<36} "
              f"min {c['min']:.6g} max {c['max']:.6g}" + (f" missing {c['missing']}" if c["missing"] else ""))
    return 0


def _cmd_query(args: argparse.Namespace) -> int:
    import numpy as np

    from nasco.tables import load_table

    t = load_table(args.name)
    if (args.index is None) == (args.arch is None):
        raise UsageError("give one of --index I (repeatable) or --arch ARCH_STR")
    keys = np.asarray(args.index, dtype=np.int64) if args.index is not None else np.asarray([args.arch])
    col = t.column_for(args.metric, dataset=args.dataset, split=args.split, fidelity=args.fidelity)
    try:
        values = t.query(keys, col)
    except KeyError as exc:
        flag = "--index" if args.index is not None else "--arch"
        raise UsageError(f"{flag}: {exc.args[0]}; 'nasco table info {args.name}' describes the "
                         "table") from None
    shown = [int(k) for k in keys] if args.index is not None else [args.arch]
    if args.json:
        print(json.dumps({"table": t.name, "column": col, "unit": t.spec.metrics[col].unit,
                          "keys": shown, "values": [float(v) for v in values]}))
    else:
        for k, v in zip(shown, values):
            print(f"{k}\t{col}\t{v:.10g}")
    return 0


def add_table(sub) -> None:
    p = sub.add_parser("table", help="lookup tables: import, info, query",
                       description="NAS-Bench-style lookup tables (kind lookup_table): build the cache, "
                                   "describe a table, query it.")
    tsub = p.add_subparsers(dest="table_command", metavar="SUBCOMMAND", parser_class=type(p))
    tsub.required = True
    i = tsub.add_parser("import", help="validate a lookup_table file and build its cache, or convert an "
                                       "official benchmark file",
                        description="FILE.yaml: check the table against its space and write the parquet cache. "
                                    "With --format: convert an official file (NATS-Bench archive, NAS-Bench-201 "
                                    ".pth, HW-NAS-Bench pickle) into a parquet table in --out.")
    i.add_argument("file", help="a lookup_table .yaml (or, with --format, the official file)")
    i.add_argument("--format", choices=("nats", "nb201-pth", "hwnasbench-pickle"), help="convert FILE from this format")
    i.add_argument("--out", help="output folder for --format")
    i.add_argument("--trust-pickle", action="store_true", help="allow unpickling a file you trust (--format only)")
    i.add_argument("--rebuild", action="store_true", help="rebuild the cache even if it is current")
    i.set_defaults(func=_cmd_import)
    f = tsub.add_parser("info", help="describe a table: columns, metrics, ranges, cache",
                        description="Describe a table: its columns and metrics, their ranges, its cache file.")
    f.add_argument("name", help="built-in name (nb201) or lookup_table .yaml")
    f.add_argument("--json", action="store_true", help="print JSON")
    f.set_defaults(func=_cmd_info)
    q = tsub.add_parser("query", help="look values up by official index or arch string",
                        description="Print METRIC for cells given by --index (repeatable) or --arch.")
    q.add_argument("name", help="built-in name (nb201) or lookup_table .yaml")
    q.add_argument("--metric", required=True, help="metric (accuracy, eyeriss_latency, ...) or column name")
    q.add_argument("--dataset", help="c10, c100, in16")
    q.add_argument("--split", help="train, valid, test, valtest")
    q.add_argument("--fidelity", type=int, help="training epochs (12, 200)")
    q.add_argument("--index", type=_index, nargs="+", action="extend",
                   help="official indices (several may follow one --index, and --index may repeat)")
    q.add_argument("--arch", help="NB201 arch string |op~0|+|op~0|op~1|+...")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=_cmd_query)
