"""`nasco spaces` and `nasco validate`."""
from __future__ import annotations

import argparse
import json

from nasco.dsl import (
    AcceleratorSet, AcceleratorTemplate, ArchSpace, EnergyTable, LookupTableSpec, MultiAccelerator, builtin_names,
    find_file, load_energy_table, load_file, search_dimensions,
)
from nasco.cli._common import split_overrides
from nasco.space import SearchSpace, hw_space

__all__ = ["add_spaces", "add_validate"]


def _describe(spec) -> dict:
    if isinstance(spec, ArchSpace):
        return SearchSpace(spec).describe() | {"kind": "arch_space", "spiking": spec.spiking,
                                               "description": spec.description}
    if isinstance(spec, (AcceleratorTemplate, AcceleratorSet)):
        return hw_space(spec).describe()
    if isinstance(spec, EnergyTable):
        return {"kind": "energy_table", "name": spec.name, "description": spec.description,
                "node_nm": spec.node_nm,
                "energy": {k: f"{c.value} {c.unit}" for k, c in spec.energy.items()},
                "area": {k: f"{c.value} {c.unit}" for k, c in spec.area.items()}}
    raise TypeError(type(spec))  # pragma: no cover


def _print_description(d: dict) -> None:
    print(f"{d.get('name') or d.get('arch')} ({d['kind']}): {d.get('description', '')}")
    if d["kind"] == "arch_space":
        s = d["size"]
        print(f"  spiking: {d['spiking']}")
        print(f"  cells: {s['cells']:,} genotypes")
        for k, v in d["arch_choices"].items():
            print(f"  choice {k}: {v}")
        print(f"  size: {s['arch']:,} architectures")
    elif d["kind"] == "accelerator":
        for k, v in d["choices"].items():
            print(f"  choice {k}: {v}")
        print(f"  technology: {d['technology']}")
        for k, v in d["specs"].items():
            print(f"  spec {k} <= {v}")
        print(f"  size: {d['size']:,} configurations")
    elif d["kind"] in ("accelerator_set", "multi_accelerator"):
        if d["kind"] == "multi_accelerator":
            b = d["budget"]
            print(f"  sub-accelerators: {d['sub_accelerators']} (one per task), sharing {b['pes']:,} PEs and "
                  f"{b['dram_bytes_per_cycle']:g} DRAM bytes/cycle")
        else:
            print(f"  default member: {d['default']}")
        for name in d["templates"]:
            choices = d["choices"][name]
            print(f"  member {name}: {', '.join(f'{k} {v}' for k, v in choices.items()) or 'no choices'}")
        for k, v in d["specs"].items():
            print(f"  spec {k} <= {v}" + (" (slowest sub-accelerator)" if k == "latency" and
                                          d["kind"] == "multi_accelerator" else ""))
        what = "partitions within budget" if d["kind"] == "multi_accelerator" else "configurations"
        print(f"  size: {d['size']:,} {what}")
    else:
        print(f"  node: {d['node_nm']} nm")
        for k, v in d["energy"].items():
            print(f"  energy {k}: {v}")
        for k, v in d["area"].items():
            print(f"  area {k}: {v}")


def _cmd_spaces(args: argparse.Namespace) -> int:
    if args.name:
        d = _describe(load_file(find_file(args.name)))
        if args.json:
            print(json.dumps(d, indent=2))
        else:
            _print_description(d)
        return 0
    rows = []
    for kind, title in (("arch_space", "architecture spaces"), ("accelerator", "accelerator templates"),
                        ("accelerator_set", "accelerator sets"), ("multi_accelerator", "multi-accelerators"),
                        ("energy_table", "energy tables")):
        names = builtin_names(kind)
        rows.append((title, [(n, _describe(load_file(find_file(n)))) for n in names]))
    if args.json:
        print(json.dumps({t: {n: d for n, d in items} for t, items in rows}, indent=2))
        return 0
    lines = []
    for title, items in rows:
        lines.append((title, []))
        for name, d in items:
            size = d.get("size")
            size_txt = f"{size['arch']:,} architectures" if isinstance(size, dict) else (
                f"{size:,} configurations" if size else "")
            if d["kind"] in ("accelerator_set", "multi_accelerator"):
                size_txt = f"{len(d['templates'])} templates, {size_txt}"
            lines[-1][1].append((name, size_txt, d.get("description", "")))
    entries = [e for _, es in lines for e in es]
    w_name = max((len(e[0]) for e in entries), default=0)
    w_size = max((len(e[1]) for e in entries), default=0)
    for title, es in lines:
        print(f"{title}:")
        for name, size_txt, desc in es:
            print(f"  {name:<{w_name}}  {size_txt:<{w_size}}  {desc}")
    return 0


def add_spaces(sub) -> None:
    p = sub.add_parser("spaces", help="list the built-in spaces, templates, template sets, multi-accelerators and "
                                      "energy tables, or describe one",
                       description="Without NAME: list the built-ins. With NAME (a built-in or a path): "
                                   "its choices and the size of the space.")
    p.add_argument("name", nargs="?", help="a built-in name (darts_snn, asic_template, ...) or a .yaml path")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_spaces)


def _cmd_validate(args: argparse.Namespace) -> int:
    space_over, hw_over = split_overrides(args.set)
    for item in args.files:
        path = find_file(item)
        spec = load_file(path, overrides=space_over or hw_over or None)
        extra = ""
        if isinstance(spec, ArchSpace) and spec.official_index:
            from nasco.space._nb201 import index_table_of

            extra = f", official index of {len(index_table_of(spec)):,} cells"
        if isinstance(spec, LookupTableSpec):
            from nasco.tables import load_table

            extra = f", {len(load_table(path)):,} rows"
        if isinstance(spec, AcceleratorTemplate):
            table = load_energy_table(spec)
            extra = f", energy table '{table.name}'"
        if isinstance(spec, AcceleratorSet):
            hw = hw_space(spec)
            tables = sorted({load_energy_table(t).name for t in hw.templates()})
            what = "partitions within budget" if isinstance(spec, MultiAccelerator) else "configurations"
            n = len(spec.templates)
            print(f"{path}: ok ({type(spec).__name__} '{spec.name}', {n} template{'s' if n != 1 else ''}: "
                  f"{', '.join(spec.templates)}; {hw.size():,} {what}; energy tables "
                  f"{', '.join(repr(t) for t in tables)})")
            continue
        dims = search_dimensions(spec)
        print(f"{path}: ok ({type(spec).__name__} '{spec.name}', {len(dims)} choices{extra})")
    return 0


def add_validate(sub) -> None:
    p = sub.add_parser("validate", help="check DSL files; exit 2 with a one-line error on the first fault",
                       description="Load and validate DSL files (architecture spaces, accelerator templates, "
                                   "accelerator sets, multi-accelerators, energy tables, lookup tables); a set's "
                                   "member files are validated with it, a space's official index file and a "
                                   "lookup table's data are read and checked. Errors name the file, line, key "
                                   "path, what was expected, what was found and a hint.")
    p.add_argument("files", nargs="+", metavar="FILE", help="paths or built-in names")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a field before validating (as for search: macro.cells=4, hw.template=nvdla_like, "
                        "hw.budget.pes=1024)")
    p.set_defaults(func=_cmd_validate)
