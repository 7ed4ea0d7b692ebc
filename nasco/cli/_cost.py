"""`nasco cost`: per-layer and total cost of a workload on an accelerator template.

The workload is a SCALE-Sim topology CSV, an ONNX model (``.onnx``, read by
:func:`nasco.hw.read_onnx`), or a candidate: one row of a run's ``pareto.csv``
or ``ledger.jsonl`` (picked by ``--id`` or ``--row``), or a single-row JSON file. A row read
from a run directory takes its architecture space, accelerator and ``--set`` overrides from
the run's recorded config (``run.json``, else ``summary.json``) unless ``--space`` / ``--hw``
say otherwise. ``--backend zigzag`` costs the conv and linear layers with ZigZag too
(:func:`nasco.hw.zigzag_cost`) and prints both totals side by side.
"""
from __future__ import annotations

import argparse
import csv
import difflib
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from nasco.cli._common import UsageError, float_in, int_in, key_value, split_overrides
from nasco.dsl import (
    HW_KINDS, TEMPLATE_KEY, AcceleratorSet, MultiAccelerator, SpecError, builtin_dir, defaults, find_file,
    load_energy_table, load_file, resolve, search_dimensions, to_data,
)
from nasco.hw import (
    ZIGZAG_EXTRA, ZIGZAG_LPF_LIMIT, ZIGZAG_OPTIMIZE, CostModel, read_scalesim_csv, snn_twin,
    zigzag_accelerator, zigzag_available, zigzag_cost, zigzag_side_by_side,
)

__all__ = ["add_cost"]

# `--workload example`: a SCALE-Sim topology shipped with the built-in DSL files.
EXAMPLE_WORKLOAD = "scalesim_example.csv"
# How many skipped ONNX nodes the note names (all of them are in --json's assumptions.skipped).
_SKIPPED_SHOWN = 10
# Display units of the text table, fixed per column; the DSL's own unit names, so a limit
# printed in a violation line can be pasted into --set 'hw.specs.latency.max=...'.
_SHOW = {"latency": ("ms", 1e3), "energy": ("uJ", 1e6), "area": ("mm2", 1.0)}
_TOTALS = {"latency": "latency_s", "energy": "energy_j", "area": "area_mm2"}


# The largest input side and channel count --input-shape takes: far above any image a network
# here is costed on, and small enough that the layer arithmetic stays within int64.
MAX_INPUT_SIDE = 65536


def _parse_shape(text: str) -> tuple[int, int, int]:
    """``--input-shape C,H,W``: three integers in [1, MAX_INPUT_SIDE] (an argparse type)."""
    rule = f"C,H,W, three integers in [1, {MAX_INPUT_SIDE}], such as 1,8,8"
    try:
        c, h, w = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {rule}, found '{text}'") from None
    if not all(1 <= v <= MAX_INPUT_SIDE for v in (c, h, w)):
        raise argparse.ArgumentTypeError(f"expected {rule}, found '{text}'")
    return c, h, w


# ---------------------------------------------------------------------- the file and its row
def _workload_path(text: str) -> Path:
    path = Path(text)
    if path.is_file():
        return path
    if text == "example":
        return builtin_dir() / EXAMPLE_WORKLOAD
    raise UsageError(f"--workload {text}: no such file; give a SCALE-Sim topology .csv, an ONNX model .onnx, "
                     "a run's pareto.csv or ledger.jsonl (with --id or --row), a candidate .json, or 'example'")


def _is_scalesim(path: Path) -> bool:
    """A .csv whose header starts with SCALE-Sim's 'Layer name' (else: a pareto.csv)."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            first = next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError):
        return True  # the SCALE-Sim reader names the problem
    return not first or first[0].strip().lower() == "layer name" or "id" not in [c.strip() for c in first]


def _json(text: str, file: str, where: str, expected: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise SpecError(expected, f"invalid JSON ({exc.msg} at column {exc.colno})", file=file,
                        path=(where,) if where else (),
                        hint="use the file nasco search wrote, unedited") from None
    except RecursionError:
        raise SpecError(expected, "JSON nested too deep to read", file=file, path=(where,) if where else (),
                        hint="use the file nasco search wrote, unedited") from None


def _read_rows(path: Path) -> list[dict]:
    """The candidate rows of a pareto.csv, ledger.jsonl or single-row JSON file."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError("a readable candidate file", type(exc).__name__, file=file) from None
    if path.suffix.lower() == ".csv":
        rows = []
        for n, row in enumerate(csv.DictReader(text.splitlines()), start=2):
            for key in ("arch", "hw"):  # pareto.csv keeps them as JSON text
                if isinstance(row.get(key), str):
                    row[key] = _json(row[key], f"{file}:{n}", key, "a JSON object")
            rows.append(row)
        return rows
    if path.suffix.lower() == ".jsonl":
        return [_json(line, f"{file}:{n}", "", "one JSON object per line (a ledger row)")
                for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    data = _json(text, file, "", "a candidate JSON object with 'arch' and 'hw'")
    if isinstance(data, dict):
        for key in ("arch", "hw"):
            if isinstance(data.get(key), str):  # a pareto.csv row converted to JSON
                data[key] = _json(data[key], file, key, "a JSON object")
    return [data]


def _pick_row(rows: list[dict], path: Path, args: argparse.Namespace) -> dict:
    """The row ``--id`` or ``--row`` names (the only one when the file holds one)."""
    if args.id is not None and args.row is not None:
        raise UsageError("give one of --id ID or --row N, not both")
    ids = [str(r.get("id")) for r in rows if isinstance(r, dict)]
    if args.id is not None:
        for r in rows:
            if isinstance(r, dict) and str(r.get("id")) == args.id:
                return r
        close = difflib.get_close_matches(args.id, ids, n=1, cutoff=0.5)
        more = ", ..." if len(ids) > 5 else ""
        hint = f"did you mean '{close[0]}'?" if close else f"its ids: {', '.join(ids[:5])}{more}"
        raise UsageError(f"--id {args.id}: {path} has no row with that id; {hint}")
    if args.row is not None:
        if not 0 <= args.row < len(rows):
            raise UsageError(f"--row {args.row}: {path} has rows 0..{len(rows) - 1}" if rows
                             else f"--row {args.row}: {path} has no rows")
        return rows[args.row]
    if len(rows) != 1:
        example = f" (e.g. --id {ids[0]})" if ids else ""
        raise UsageError(f"--workload {path}: holds {len(rows)} rows; pick one with --id ID{example} "
                         f"or --row N (0..{max(len(rows) - 1, 0)})")
    return rows[0]


def _run_config(folder: Path) -> tuple[dict, Path] | None:
    """The search config a run directory records (run.json, else summary.json), and its file."""
    for name in ("run.json", "summary.json"):
        p = folder / name
        if not p.is_file():
            continue
        try:
            config = json.loads(p.read_text(encoding="utf-8")).get("config")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(config, dict):
            return config, p
    return None


def _ledger_metrics(folder: Path, cid: str, phase: str | None = None) -> dict:
    """The metrics (spike rates, MACs, ...) of candidate ``cid`` in the run's ledger, if any:
    its search row's, or with ``phase`` 'retrain' its retrain row's (the stand-alone network)."""
    ledger = folder / "ledger.jsonl"
    if not cid or not ledger.is_file():
        return {}
    for line in ledger.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and row.get("id") == cid and row.get("phase") == phase \
                and isinstance(row.get("metrics"), dict):
            return row["metrics"]
    return {}


def _recorded(config: dict, key: str, files_key: str, task: int) -> str | None:
    """The run's recorded file (if it still exists) or built-in name of ``key``."""
    files = config.get(files_key)
    if isinstance(files, list) and task < len(files) and files[task] and Path(files[task]).is_file():
        return files[task]
    single = config.get(f"{key}_file")
    if isinstance(single, str) and Path(single).is_file() and not isinstance(files, list):
        return single
    name = config.get(key)
    if isinstance(name, str) and "+" in name and isinstance(files, list):  # a multi-task run's 'a+b'
        parts = name.split("+")
        return parts[task] if task < len(parts) else None
    return name if isinstance(name, str) else None


# ---------------------------------------------------------------------- a candidate's workload
def _candidate_workload(data: Any, file: str, space_name: str, space_over: dict,
                        args: argparse.Namespace) -> tuple[Any, dict, dict, dict]:
    """(workload, hw choice values, spike rates, recorded metrics) of one candidate row."""
    from nasco.evaluate._joint import emitted_rates
    from nasco.nn import plan_network, plan_workload
    from nasco.space import Candidate, SearchSpace

    if not isinstance(data, dict) or "arch" not in data:
        raise SpecError("a candidate JSON object with 'arch' (and 'hw')", "no 'arch' key", file=file,
                        hint="use a row of a ledger or pareto.csv, or Candidate.to_json()")
    space = SearchSpace(load_file(find_file(space_name), kind="arch_space", overrides=space_over or None))
    hw = _object(data.get("hw"), file, ("hw",), "an object of accelerator choices (dotted key: value)")
    arch_data = _object(data["arch"], file, ("arch",), "an object with 'cell' and 'hp'", required=True)
    if "tasks" in arch_data:  # a multi-task candidate: one task of it
        tasks = arch_data["tasks"]
        if not isinstance(tasks, list):
            raise SpecError("a list of per-task architectures", _kind(tasks), file=file, path=("arch", "tasks"))
        subs = hw.get("sub_accelerators") or []
        if not 0 <= args.task < len(tasks):
            raise UsageError(f"--task {args.task}: the candidate has tasks 0..{len(tasks) - 1}")
        where = ("arch", "tasks", args.task)
        arch_data = _object(tasks[args.task], file, where, "an object with 'cell' and 'hp'", required=True)
        hw = (_object(subs[args.task], file, ("hw", "sub_accelerators", args.task), "an object of accelerator "
                      "choices") if isinstance(subs, list) and args.task < len(subs) else {})
    elif args.task != 0:
        raise UsageError(f"--task {args.task}: the candidate has one task (--task 0)")
    else:
        where = ("arch",)
    hp = _object(arch_data.get("hp"), file, (*where, "hp"), "an object of the space's choices (dotted key: value)")
    _known_keys(hp, list(search_dimensions(space.arch_spec)), file, (*where, "hp"),
                f"a choice of space '{space.arch_spec.name}'", "cost the row with the space it was searched in "
                "(--space)")
    cand = Candidate.make(arch_data, {})
    try:
        space.cells.check(cand.arch.get("cell"))
    except ValueError as exc:
        raise SpecError(f"a cell of space '{space.arch_spec.name}'", str(exc), file=file,
                        path=("arch", "cell")) from None
    try:
        arch = resolve(space.arch_spec, cand.arch.get("hp", {}))
    except ValueError as exc:
        raise SpecError(f"choices of space '{space.arch_spec.name}'", str(exc), file=file,
                        path=("arch", "hp"),
                        hint="cost the row with the space it was searched in (--space)") from None
    plan = plan_network(arch, cand.arch["cell"], args.input_shape, args.classes)
    metrics = data.get("metrics") if isinstance(data.get("metrics"), dict) else {}
    rates = metrics.get("spike_rates") or {}
    task_metrics = metrics.get("tasks")
    if isinstance(task_metrics, list) and args.task < len(task_metrics):  # a multi-task ledger row
        metrics = task_metrics[args.task] or {}
        rates = metrics.get("spike_rates") or {}
    # The maps neurons emit take the rates their readers measured, as in the search's evaluator.
    rates = {**emitted_rates(plan, rates), **rates} if rates else rates
    return plan_workload(plan, name=str(data.get("id") or Path(file).stem)), hw, rates, metrics


def _kind(value: Any) -> str:
    """How a JSON value reads in an error: its JSON type, and the value when it is short."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    text = json.dumps(value, allow_nan=True)
    if value is None:
        return "null"
    return f"{names.get(type(value), 'a number')} {text}" if len(text) <= 40 else names.get(type(value), "a number")


def _object(value: Any, file: str, path: tuple, expected: str, *, required: bool = False) -> dict:
    """``value`` when it is a JSON object (absent or null: an empty one, unless ``required``); else a
    SpecError at ``path``."""
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise SpecError(expected, _kind(value), file=file, path=path,
                        hint="use a row of a ledger or pareto.csv, or Candidate.to_json()")
    return dict(value)


def _known_keys(values: dict, known: list[str], file: str, path: tuple, expected: str, hint: str) -> None:
    """A SpecError at the first key of ``values`` that is not in ``known``."""
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            listed = f"known: {', '.join(known)}" if known else "it has no such choices"
            raise SpecError(expected, f"unknown key '{key}'", file=file, path=(*path, key),
                            hint=f"did you mean '{close[0]}'?" if close else f"{listed}; {hint}")


def _macs_note(workload: Any, metrics: dict, args: argparse.Namespace) -> str | None:
    """A note when the row's network had other MACs than this one (another input shape)."""
    recorded = metrics.get("macs")
    if isinstance(recorded, (int, float)) and int(recorded) != int(workload.macs):
        return (f"note: the row's network had {int(recorded)} MACs, this one {int(workload.macs)}: give the "
                f"run's --input-shape and --classes (now {','.join(map(str, args.input_shape))}, {args.classes})")
    return None


# ---------------------------------------------------------------------- the command
def _run_overrides(config: dict, task: int) -> tuple[dict, dict]:
    """The run's --set as (space overrides of ``task``, accelerator overrides)."""
    if not config.get("set"):
        return {}, {}
    from nasco.study._spaces import split_task_overrides

    if isinstance(config.get("space_files"), list):
        per, hw_over = split_task_overrides(config["set"], len(config["space_files"]))
        return (per[task] if task < len(per) else {}), hw_over
    return split_overrides(config["set"])


def _accelerator(args: argparse.Namespace, path: Path, network: str | None, config: dict,
                 run_file: Path | None, run_hw_over: dict) -> tuple[Any, str, dict]:
    """(spec, its name, the overrides applied): --hw with --set, else the run's with its --set too."""
    hw_name = args.hw
    if hw_name is None:
        hw_name = _recorded(config, "hw", "", 0) if config else None
        if hw_name is None:
            if network:
                raise UsageError(f"--hw is needed to cost {network}, e.g. --hw asic_template")
            why = (f"the run in {run_file.parent} was searched without an accelerator (config.hw is null in "
                   f"{run_file.name})" if run_file else "no run.json or summary.json next to it says which")
            raise UsageError(f"--workload {path}: {why}; give --hw, e.g. --hw asic_template")
    else:
        run_hw_over = {}  # the run's template overrides belong to the run's template
    _space_over, hw_over = split_overrides([s if s.startswith("hw.") else "hw." + s for s in (args.set or [])])
    hw_over = {**run_hw_over, **hw_over}
    spec = load_file(find_file(hw_name, what="accelerator template or set"), overrides=hw_over or None,
                     kind=HW_KINDS)
    return spec, hw_name, hw_over


def _row_workload(args: argparse.Namespace, path: Path, config: dict,
                  run_space_over: dict) -> tuple[Any, dict, dict, dict]:
    """(workload, hw choice values, spike rates, recorded metrics) of the picked row of ``path``."""
    row = _pick_row(_read_rows(path), path, args)
    space_name = args.space or (row.get("space") if isinstance(row, dict) else None)
    space_over: dict = {}
    if not space_name and config:
        space_name = _recorded(config, "space", "space_files", args.task)
        space_over = run_space_over
    if not space_name:
        raise UsageError(f"{path}: say which architecture space the candidate belongs to with --space "
                         "(no run.json or summary.json next to it records one)")
    if isinstance(row, dict) and "metrics" not in row and path.suffix.lower() == ".csv":
        # pareto.csv keeps no metrics: the spike rates measured in the search are in the ledger
        # (a pair of the hardware inner loop names its ledger row in row_id; a stand-alone accuracy
        # is a retrain row's, whose network is not the search row's)
        phase = "retrain" if row.get("accuracy_source") == "stand-alone" else None
        cid = str(row.get("row_id") or row.get("id") or "")
        row = {**row, "metrics": _ledger_metrics(path.parent, cid, phase)}
    return _candidate_workload(row, str(path), space_name, space_over, args)


def _member(spec: Any, cand_hw: dict, hw_over: dict, hw_name: str) -> tuple[Any, str | None]:
    """The template to cost (a set's member the candidate picked, else its default) and a note."""
    if not isinstance(spec, AcceleratorSet):
        return spec, None
    # A set (or a multi-accelerator's pool): the member the candidate picked, else the default.
    picked = cand_hw.pop(TEMPLATE_KEY, None)
    name = picked or spec.default_member
    if name not in spec.templates:
        raise UsageError(f"--hw {hw_name}: no member '{name}' (members: {', '.join(spec.templates)})")
    where = f"member of {spec.kind} '{spec.name}'"
    if picked:
        note = f"the candidate's {where}"
    elif (TEMPLATE_KEY,) in hw_over:
        note = f"{where}, picked by --set template"
    else:
        note = f"the default {where}; --set template=NAME picks another"
    return spec.member(name), f"template: {name} ({note})"


def _skipped_note(workload: Any) -> str | None:
    """One line naming the ONNX nodes ``--skip-unsupported`` left out (None when none were)."""
    skipped = workload.meta.get("skipped", ())
    if not skipped:
        return None
    shown = ", ".join(f"{name} ({op})" for name, op in skipped[:_SKIPPED_SHOWN])
    more = f", and {len(skipped) - _SKIPPED_SHOWN} more" if len(skipped) > _SKIPPED_SHOWN else ""
    counts = ", ".join(f"{op} x{n}" for op, n in Counter(op for _, op in skipped).most_common())
    return f"note: {len(skipped)} unsupported node(s) not costed ({counts}): {shown}{more}"


def _read_workload(args: argparse.Namespace, path: Path, scalesim: bool, onnx_model: bool, config: dict,
                   run_space_over: dict, run_file: Any, notes: list[str | None]) -> tuple[Any, dict, dict]:
    """(workload, the candidate's hw choices, spike rates) of ``--workload``: a SCALE-Sim topology,
    an ONNX model or a candidate row; what to tell the user is appended to ``notes``."""
    if scalesim:
        return read_scalesim_csv(path), {}, {}
    if onnx_model:
        from nasco.hw import read_onnx

        workload = read_onnx(path, skip_unsupported=args.skip_unsupported)
        notes.append(_skipped_note(workload))
        return workload, {}, {}
    workload, cand_hw, rates, metrics = _row_workload(args, path, config, run_space_over)
    notes.append(_macs_note(workload, metrics, args))
    if run_file is not None:
        notes.append(f"run config: {run_file} (space and hw from it unless --space/--hw; its --set re-applied)")
    return workload, cand_hw, rates


def _cmd_cost(args: argparse.Namespace) -> int:
    from nasco.evaluate._joint import check_limits

    if args.backend == "zigzag" and not zigzag_available():
        raise UsageError(f"--backend zigzag needs zigzag-dse, which is not importable here: "
                         f"pip install '{ZIGZAG_EXTRA}'")
    path = _workload_path(args.workload)
    scalesim = path.suffix.lower() == ".csv" and _is_scalesim(path)
    onnx_model = path.suffix.lower() == ".onnx"
    if args.skip_unsupported and not onnx_model:
        raise UsageError(f"--skip-unsupported: applies to an ONNX model (.onnx), not to --workload {path}")
    network = "a SCALE-Sim topology" if scalesim else "an ONNX model" if onnx_model else None
    run = None if network else _run_config(path.parent)
    config, run_file = run if run else ({}, None)
    run_space_over, run_hw_over = _run_overrides(config, args.task)
    spec, hw_name, hw_over = _accelerator(args, path, network, config, run_file, run_hw_over)
    notes: list[str | None] = []  # printed once the cost is known, so an error stays one line
    workload, cand_hw, rates = _read_workload(args, path, scalesim, onnx_model, config, run_space_over,
                                              run_file, notes)
    template, note = _member(spec, cand_hw, hw_over, hw_name)
    notes.append(note)
    dims = search_dimensions(template)
    if not network:
        _known_keys(cand_hw, list(dims), str(path), ("hw",), f"a choice of template '{template.name}'",
                    "cost the row with the accelerator it was searched on (--hw)")
    values = defaults(template)
    taken = {k: v for k, v in values.items() if k not in cand_hw}
    values.update({k: v for k, v in cand_hw.items() if k in dims})
    try:
        resolved = resolve(template, values)
    except ValueError as exc:
        raise SpecError(f"choices of template '{template.name}'", str(exc), file=str(path), path=("hw",),
                        hint="cost the row with the accelerator it was searched on (--hw)") from None
    if args.backend == "zigzag":
        zigzag_accelerator(template.name)  # a template without a ZigZag description: one line, before costing
        if cand_hw or hw_over:
            notes.append(f"note: ZigZag costs its own {zigzag_accelerator(template.name)} accelerator file; the "
                         "choices and --set applied to the template change nasco's numbers only")
    table = load_energy_table(template)
    model = CostModel(resolved, table)
    report = model.cost(workload, rates, default_rate=args.spike_rate)
    out = report.to_dict()
    if any(layer.kind == "neuron" for layer in workload.layers):  # a spiking workload: its ANN twin beside it
        try:
            out["snn_twin"] = snn_twin(workload, resolved, table, out["total"])
        except ValueError as exc:  # layers with different T: no single twin width
            notes.append(f"note: no ANN twin: {exc}")
    out["assumptions"]["choices_taken"] = taken
    if onnx_model:
        out["assumptions"]["skipped"] = [{"node": name, "op_type": op} for name, op in workload.meta["skipped"]]
    out["assumptions"]["hw"] = {k: v for k, v in to_data(resolved).items()
                                if k not in ("schema", "kind", "description", "specs")}
    limits = template.limits()
    out["limits"] = limits
    out["violations"] = check_limits({m: out["total"][key] for m, key in _TOTALS.items()}, limits)
    if isinstance(spec, MultiAccelerator) and spec.limits():
        notes.append(f"note: the specs of {spec.name} bound the whole system (all tasks together); one "
                     "task is not checked against them")
    if args.backend == "zigzag":
        zz = zigzag_cost(workload, resolved, optimize=args.zigzag_optimize, lpf_limit=args.zigzag_lpf_limit,
                         onnx=path if onnx_model else None)
        out["zigzag"] = {**zz.to_dict(), "compared": zigzag_side_by_side(out, zz.to_dict())}
        if zz.skipped:
            notes.append(f"note: ZigZag costs conv and linear layers only; {len(zz.skipped)} layer(s) not "
                         "costed by it and left out of the comparison")
    for line in notes:
        if line:
            print(line, file=sys.stderr)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    _print_text(out, taken)
    return 0


def _print_text(out: dict, taken: dict) -> None:
    """The text form of ``nasco cost``: the defaults it took, the per-layer table and totals, the
    ANN twin, assumed rates, violated specs, untileable layers and ZigZag's side of a comparison."""
    if taken:
        print("defaults taken: " + ", ".join(f"{k}={v}" for k, v in taken.items())
              + " (fix any with --set KEY=VALUE)", file=sys.stderr)
    _print_table(out)
    if "snn_twin" in out:
        _print_twin(out["snn_twin"])
    if "spike_rate_assumed" in out["assumptions"]:
        a = out["assumptions"]["spike_rate_assumed"]
        print(f"note: {len(a['layers'])} spiking layers had no measured spike rate; assumed {a['rate']} "
              "(set --spike-rate)", file=sys.stderr)
    if "spike_out_rate_assumed" in out["assumptions"]:
        a = out["assumptions"]["spike_out_rate_assumed"]
        print(f"note: {len(a['layers'])} neuron layers had no measured rate for the spike maps they emit; "
              f"assumed {a['rate']} (set --spike-rate)", file=sys.stderr)
    for metric, excess in out["violations"].items():
        unit, scale = _SHOW[metric]
        limit = out["limits"][metric]
        print(f"spec violated: {metric} {(limit + excess) * scale:.4g} {unit} > {limit * scale:.4g} {unit}")
    for reason in out["assumptions"].get("tiling_infeasible", []):  # a search records these as infeasible
        print(f"cannot tile: {reason}")
    if "zigzag" in out:
        _print_zigzag(out["zigzag"])


def _print_zigzag(zz: dict) -> None:
    """ZigZag's per-layer table, then both totals side by side."""
    a = zz["assumptions"]
    print(f"ZigZag ({a['accelerator']}, best mapping for {a['optimize']}, lpf limit {a['lpf_limit']}):")
    lat_u, lat_k = _SHOW["latency"]
    en_u, en_k = _SHOW["energy"]
    print(f"{'layer':<28} {'kind':<7} {'cycles':>10} {'latency_' + lat_u:>12} {'energy_' + en_u:>12}")
    for row in [*zz["layers"], {**zz["total"], "name": "total", "kind": ""}]:
        print(f"{row['name'][:28]:<28} {row['kind']:<7} {row['cycles']:>10.0f} "
              f"{row['latency_s'] * lat_k:>12.5f} {row['energy_j'] * en_k:>12.4f}")
    c = zz["compared"]
    print(f"nasco vs ZigZag over the {c['layers']} layer(s) both cost: "
          f"energy {c['nasco_energy_j'] * en_k:.4f} vs {c['zigzag_energy_j'] * en_k:.4f} {en_u} "
          f"(nasco / ZigZag {c['energy_ratio']:.4f}); latency {c['nasco_latency_s'] * lat_k:.5f} vs "
          f"{c['zigzag_latency_s'] * lat_k:.5f} {lat_u} (nasco / ZigZag {c['latency_ratio']:.4f})")


def _print_twin(twin: dict) -> None:
    """The SNN's ANN twin (same template, MAC PEs, ceil(log2(T+1))-bit activations) beside it."""
    lat_u, lat_k = _SHOW["latency"]
    en_u, en_k = _SHOW["energy"]
    be = {"never": "none (the SNN costs more even at rate 0)", "always": "none (the SNN costs less even at rate 1)",
          "none": "none (no spiking-input layer)"}.get(twin["break_even"])
    be = be or f"{twin['break_even_rate']:.4f}"
    print(f"ANN twin ({twin['twin_bits']}-bit activations, MAC PEs): energy {twin['twin_energy'] * en_k:.4f} {en_u}, "
          f"latency {twin['twin_latency'] * lat_k:.5f} {lat_u}; snn_advantage (twin / SNN energy) "
          f"{twin['snn_advantage']:.4f}; break-even spike rate {be}")


def _print_table(out: dict) -> None:
    """Per-layer rows and the total in the fixed display units of ``_SHOW``."""
    lat_u, lat_k = _SHOW["latency"]
    en_u, en_k = _SHOW["energy"]
    print(f"{'layer':<28} {'kind':<7} {'cycles':>10} {'latency_' + lat_u:>12} {'energy_' + en_u:>12} "
          f"{'util':>6}")
    t = out["total"]
    for row in [*out["layers"], {**t, "name": "total", "kind": ""}]:
        print(f"{row['name'][:28]:<28} {row['kind']:<7} {row['cycles']:>10} "
              f"{row['latency_s'] * lat_k:>12.5f} {row['energy_j'] * en_k:>12.4f} {row['utilization']:>6.2f}")
    area_u, area_k = _SHOW["area"]
    print(f"energy ({en_u}): " + ", ".join(f"{k} {v * en_k:.4f}" for k, v in t["energy"].items())
          + f"; area {t['area_mm2'] * area_k:.4f} {area_u}")


def add_cost(sub) -> None:
    p = sub.add_parser("cost", help="cost a workload on an accelerator template (cycles, latency, energy, area)",
                       description="Per-layer and total cost of a workload on an accelerator template. "
                                   "FILE is a SCALE-Sim topology CSV ('example' names the one nasco ships), "
                                   "an ONNX model (.onnx; per sample, BN, activations and the global pool "
                                   "not costed; an operator nasco does not cost is an error unless "
                                   "--skip-unsupported), "
                                   "a run's pareto.csv or ledger.jsonl (one row of it: --id or --row), or a "
                                   "candidate JSON (a ledger row, a pareto.csv row as JSON, or "
                                   "Candidate.to_json()). A row of a run directory takes the run's space, "
                                   "accelerator and --set overrides from its run.json (or summary.json) "
                                   "unless --space / --hw are given. Choices left open in the template take "
                                   "their declared defaults unless the candidate or --set fixes them. The "
                                   "table shows latency in ms, energy in uJ and area in mm2; a last line "
                                   "names each design spec of the template the result exceeds.")
    p.add_argument("--hw",
                   help="accelerator template, or a set / multi-accelerator (its default member, or the one "
                        "a candidate picked): built-in name or .yaml path; default for a run's row: the "
                        "run's")
    p.add_argument("--workload", required=True, metavar="FILE",
                   help="SCALE-Sim topology .csv, 'example', an ONNX model .onnx, a run's pareto.csv / "
                        "ledger.jsonl, or a candidate .json")
    p.add_argument("--skip-unsupported", action="store_true",
                   help="an ONNX model: leave out the nodes nasco does not cost (listed on stderr and in "
                        "--json's assumptions.skipped) and cost the rest")
    p.add_argument("--id", help="the candidate id of the row to cost (pareto.csv, ledger.jsonl)")
    p.add_argument("--row", type=int, help="the row to cost, counted from 0 (pareto.csv, ledger.jsonl)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", type=key_value,
                   help="fix a template field, e.g. dataflow=os; for a set: template=NAME picks the member")
    p.add_argument("--json", action="store_true",
                   help="print {layers, total, limits, violations, assumptions} as JSON, in base units "
                        "(s, J, mm2); violations: metric -> amount over its limit")
    p.add_argument("--space", help="architecture space of a candidate (default: the file's, else the run's)")
    p.add_argument("--task", type=int, default=0,
                   help="a multi-task candidate: which task (and sub-accelerator) to cost (default 0)")
    p.add_argument("--spike-rate", type=float_in(0.0, 1.0), default=None,
                   help="input spike rate for spiking layers without a measured one (default 1.0: an upper bound)")
    p.add_argument("--input-shape", default=(1, 8, 8), type=_parse_shape,
                   help=f"C,H,W of the network input for a candidate, each 1..{MAX_INPUT_SIDE} (default 1,8,8)")
    p.add_argument("--classes", type=int_in(1), default=10, help="classes of the network output for a candidate")
    p.add_argument("--backend", choices=("nasco", "zigzag"), default="nasco",
                   help="zigzag: also cost the conv and linear layers with ZigZag (pip install "
                        f"'{ZIGZAG_EXTRA}') on the accelerator a zigzag_* template was translated from, and "
                        "show both totals side by side (--json: a 'zigzag' key); default nasco")
    p.add_argument("--zigzag-optimize", choices=ZIGZAG_OPTIMIZE, default="energy",
                   help="--backend zigzag: report ZigZag's best mapping for energy or for latency (default energy)")
    p.add_argument("--zigzag-lpf-limit", type=int_in(1), default=ZIGZAG_LPF_LIMIT,
                   help=f"--backend zigzag: the loop-prime-factor limit of ZigZag's LOMA mapping search; lower "
                        f"searches fewer temporal mappings, faster (default {ZIGZAG_LPF_LIMIT}, ZigZag's)")
    p.set_defaults(func=_cmd_cost)
