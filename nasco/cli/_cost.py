"""`nasco cost`: per-layer and total cost of a workload on an accelerator template."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nasco.cli._common import UsageError, split_overrides
from nasco.dsl import (
    HW_KINDS, TEMPLATE_KEY, AcceleratorSet, SpecError, defaults, find_file, load_energy_table,
    load_file, resolve, search_dimensions, to_data,
)
from nasco.hw import CostModel, read_scalesim_csv

__all__ = ["add_cost"]


def _parse_shape(text: str) -> tuple[int, int, int]:
    try:
        c, h, w = (int(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"--input-shape expects C,H,W such as 1,8,8; found '{text}'") from None
    return c, h, w


def _candidate_workload(path: Path, args: argparse.Namespace) -> tuple[Any, dict, dict]:
    """(workload, hw choice values, spike rates) of a candidate JSON file."""
    from nasco.nn import plan_network, plan_workload
    from nasco.space import Candidate, SearchSpace

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpecError("a candidate JSON object with 'arch' and 'hw'", type(exc).__name__, file=str(path)) from None
    if not isinstance(data, dict) or "arch" not in data:
        raise SpecError("a candidate JSON object with 'arch' (and 'hw')", "no 'arch' key", file=str(path),
                        hint="use a row of a ledger or pareto.csv, or Candidate.to_json()")
    for key in ("arch", "hw"):
        if isinstance(data.get(key), str):  # a pareto.csv row keeps them as JSON text
            data[key] = json.loads(data[key])
    space_name = args.space or data.get("space")
    if not space_name:
        raise UsageError(f"{path}: say which architecture space the candidate belongs to with --space")
    space = SearchSpace(load_file(find_file(space_name), kind="arch_space"))
    hw = dict(data.get("hw") or {})
    arch_data = data["arch"]
    if isinstance(arch_data, dict) and "tasks" in arch_data:  # a multi-task candidate: one task of it
        tasks, subs = arch_data["tasks"], hw.get("sub_accelerators") or []
        if not 0 <= args.task < len(tasks):
            raise UsageError(f"--task {args.task}: the candidate has tasks 0..{len(tasks) - 1}")
        arch_data = tasks[args.task]
        hw = dict(subs[args.task]) if args.task < len(subs) else {}
    cand = Candidate.make(arch_data, {})
    try:
        space.cells.check(cand.arch.get("cell"))
    except ValueError as exc:
        raise SpecError(f"a cell of space '{space.arch_spec.name}'", str(exc), file=str(path), path=("arch", "cell")) from None
    arch = resolve(space.arch_spec, cand.arch.get("hp", {}))
    plan = plan_network(arch, cand.arch["cell"], _parse_shape(args.input_shape), args.classes)
    rates = (data.get("metrics") or {}).get("spike_rates") or {}
    task_metrics = (data.get("metrics") or {}).get("tasks")
    if isinstance(task_metrics, list) and args.task < len(task_metrics):  # a multi-task ledger row
        rates = (task_metrics[args.task] or {}).get("spike_rates") or {}
    return plan_workload(plan, name=path.stem), hw, rates


def _cmd_cost(args: argparse.Namespace) -> int:
    _space_over, hw_over = split_overrides([s if s.startswith("hw.") else "hw." + s for s in (args.set or [])])
    spec = load_file(find_file(args.hw, what="accelerator template or set"), overrides=hw_over or None,
                     kind=HW_KINDS)
    path = Path(args.workload)
    if not path.is_file():
        raise UsageError(f"--workload {path}: no such file; give a SCALE-Sim topology .csv or a candidate .json")
    if path.suffix.lower() == ".json":
        workload, cand_hw, rates = _candidate_workload(path, args)
    else:
        workload, cand_hw, rates = read_scalesim_csv(path), {}, {}
    template = spec
    if isinstance(spec, AcceleratorSet):
        # A set (or a multi-accelerator's pool): the member the candidate picked, else the default.
        picked = cand_hw.pop(TEMPLATE_KEY, None)
        name = picked or spec.default_member
        if name not in spec.templates:
            raise UsageError(f"--hw {args.hw}: no member '{name}' (members: {', '.join(spec.templates)})")
        template = spec.member(name)
        where = f"member of {spec.kind} '{spec.name}'"
        if picked:
            note = f"the candidate's {where}"
        elif (TEMPLATE_KEY,) in hw_over:
            note = f"{where}, picked by --set template"
        else:
            note = f"the default {where}; --set template=NAME picks another"
        print(f"template: {name} ({note})", file=sys.stderr)
    dims = search_dimensions(template)
    values = defaults(template)
    taken = {k: v for k, v in values.items() if k not in cand_hw}
    values.update({k: v for k, v in cand_hw.items() if k in dims})
    resolved = resolve(template, values)
    model = CostModel(resolved, load_energy_table(template))
    report = model.cost(workload, rates, default_rate=args.spike_rate)
    out = report.to_dict()
    out["assumptions"]["choices_taken"] = taken
    out["assumptions"]["hw"] = {k: v for k, v in to_data(resolved).items()
                                if k not in ("schema", "kind", "description", "specs")}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    if taken:
        print("defaults taken: " + ", ".join(f"{k}={v}" for k, v in taken.items())
              + " (fix any with --set KEY=VALUE)", file=sys.stderr)
    print(f"{'layer':<28} {'kind':<7} {'cycles':>10} {'latency_s':>11} {'energy_j':>11} {'util':>6}")
    for layer in out["layers"]:
        print(f"{layer['name'][:28]:<28} {layer['kind']:<7} {layer['cycles']:>10} {layer['latency_s']:>11.4e} "
              f"{layer['energy_j']:>11.4e} {layer['utilization']:>6.2f}")
    t = out["total"]
    print(f"{'total':<28} {'':<7} {t['cycles']:>10} {t['latency_s']:>11.4e} {t['energy_j']:>11.4e} "
          f"{t['utilization']:>6.2f}")
    print("energy: " + ", ".join(f"{k} {v:.3e} J" for k, v in t["energy"].items()) + f"; area {t['area_mm2']:.4f} mm2")
    if "spike_rate_assumed" in out["assumptions"]:
        a = out["assumptions"]["spike_rate_assumed"]
        print(f"note: {len(a['layers'])} spiking layers had no measured spike rate; assumed {a['rate']} "
              "(set --spike-rate)", file=sys.stderr)
    return 0


def add_cost(sub) -> None:
    p = sub.add_parser("cost", help="cost a workload on an accelerator template (cycles, latency, energy, area)",
                       description="Per-layer and total cost of a workload on an accelerator template. "
                                   "FILE is a SCALE-Sim topology CSV or a candidate JSON (a ledger row, a "
                                   "pareto.csv row as JSON, or Candidate.to_json()). Choices left open in "
                                   "the template take their declared defaults unless the candidate or "
                                   "--set fixes them.")
    p.add_argument("--hw", required=True,
                   help="accelerator template, or a set / multi-accelerator (its default member, or the one "
                        "a candidate picked): built-in name or .yaml path")
    p.add_argument("--workload", required=True, metavar="FILE", help="SCALE-Sim topology .csv or candidate .json")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="fix a template field, e.g. dataflow=os; for a set: template=NAME picks the member")
    p.add_argument("--json", action="store_true", help="print {layers: [...], total: {...}} as JSON")
    p.add_argument("--space", help="architecture space of a candidate JSON (if the file does not say)")
    p.add_argument("--task", type=int, default=0,
                   help="a multi-task candidate: which task (and sub-accelerator) to cost (default 0)")
    p.add_argument("--spike-rate", type=float, default=None,
                   help="input spike rate for spiking layers without a measured one (default 1.0: an upper bound)")
    p.add_argument("--input-shape", default="1,8,8", help="C,H,W of the network input for a candidate (default 1,8,8)")
    p.add_argument("--classes", type=int, default=10, help="classes of the network output for a candidate")
    p.set_defaults(func=_cmd_cost)
