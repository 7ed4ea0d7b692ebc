"""`nasco search`: a joint architecture x accelerator search, written to a run directory."""
from __future__ import annotations

import argparse
import difflib
import math
import re
import sys
import warnings
from pathlib import Path

from nasco.cli._common import UsageError, float_in, int_in, key_value, nonempty

__all__ = ["add_search"]

# Searchers whose constructor takes population_size (what --population sets).
_POPULATION_SEARCHERS = ("evolution", "nsga2", "nsga3", "optuna-nsga2")


def _searcher_options(args: argparse.Namespace, searcher: str) -> dict:
    """--population, --searcher-opt and --optuna-storage as the searcher's options."""
    kw: dict = {}
    if args.population is not None:
        if searcher not in _POPULATION_SEARCHERS:
            raise UsageError(f"--population applies to --searcher {', '.join(_POPULATION_SEARCHERS)} only, "
                             f"not '{searcher}'")
        kw["population_size"] = args.population
    opts = _parse_searcher_opts(args, searcher)
    if args.population is not None and "population_size" in opts:
        raise UsageError("give the population once: --population or --searcher-opt population_size, not both")
    if "storage" in opts:  # the constructor's keyword, so 'nasco searchers' lists it: same as --optuna-storage
        if args.optuna_storage:
            raise UsageError("give the Optuna storage once: --optuna-storage or --searcher-opt storage, not both")
        storage = opts.pop("storage")
        if storage is not None and not isinstance(storage, str):
            raise UsageError(f"--searcher-opt storage: expected a URL or a path, found {storage!r}")
        args.optuna_storage = storage
    kw.update(opts)
    if args.optuna_storage:
        if not searcher.startswith("optuna-"):
            raise UsageError(f"--optuna-storage applies to the optuna-* searchers only, not '{searcher}'")
        from nasco.search._optuna import check_storage

        try:
            check_storage(args.optuna_storage)
        except ValueError as exc:
            raise UsageError(f"--optuna-storage: {exc}") from None
        kw["storage"] = args.optuna_storage  # the study records it with the password masked
    return kw


def _parse_searcher_opts(args: argparse.Namespace, searcher: str) -> dict:
    """``--searcher-opt KEY=VALUE``: VALUE is read as YAML (1000, 0.5, synflow, null, {a: 1})."""
    from nasco.cli._searchers import searcher_options
    from nasco.dsl import VALID_YAML, SpecError, capped, load_value
    from nasco.search import DIFFERENTIABLE, SEARCHERS

    known = [k for k, _ in searcher_options({**SEARCHERS, **DIFFERENTIABLE}[searcher])]
    out: dict = {}
    for item in args.searcher_opt or []:
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise UsageError(f"--searcher-opt: expected KEY=VALUE, found '{item}'")
        if key not in known:
            raise UsageError(f"--searcher-opt {key}: '{searcher}' has no option '{key}'; its options: "
                             f"{', '.join(known) or 'none'}")
        try:  # the DSL's bounded loader: aliases cannot blow the value up
            out[key] = load_value(raw, f"--searcher-opt {key}")
        except SpecError as err:
            if err.expected != VALID_YAML:
                raise
            raise UsageError(f"--searcher-opt {key}: value {capped(raw)} is not valid YAML: "
                             f"{err.found}") from None
    return out


def _executor(args: argparse.Namespace, searcher: str):
    """The executor that --executor and its settings ask for (started by the driver)."""
    from nasco.run import make_executor

    name = args.executor or ("ray" if args.ray_address else "inprocess")
    remote = name in ("ray", "tune")
    for flag, value, default in (("--ray-address", args.ray_address, None),
                                 ("--cpus-per-trial", args.cpus_per_trial, None),
                                 ("--gpus-per-trial", args.gpus_per_trial, None)):
        if value != default and not remote:
            raise UsageError(f"{flag} applies to --executor ray or tune, not '{name}'")
    if args.batch != 1 and name != "ray":
        raise UsageError(f"--batch (evaluations per Ray task) applies to --executor ray, not '{name}'")
    if args.front_worker is not None and name != "inprocess":
        raise UsageError(f"--front-worker applies to --executor inprocess, not '{name}' (its workers make each "
                         f"evaluation whole)")
    if args.workers is not None and name == "inprocess":
        raise UsageError("--workers needs --executor pool, ray or tune (inprocess runs one evaluation at a time)")
    if name != "tune" and (args.scheduler or args.asha_grace is not None or args.tune_optuna):
        raise UsageError(f"--scheduler, --asha-* and --tune-optuna apply to --executor tune, not '{name}'")
    if args.tune_optuna and not searcher.startswith("optuna-"):
        raise UsageError(f"--tune-optuna hands the proposals to Tune's OptunaSearch: it needs an optuna-* "
                         f"--searcher, not '{searcher}'")
    for flag, value in (("--workers", args.workers), ("--batch", args.batch), ("--window", args.window),
                        ("--cpus-per-trial", args.cpus_per_trial), ("--trial-timeout", args.trial_timeout)):
        if value is not None and not (value > 0 and math.isfinite(value)):  # NaN compares false
            raise UsageError(f"{flag} must be > 0, found {value:g}")
    if args.gpus_per_trial is not None and not (args.gpus_per_trial >= 0 and math.isfinite(args.gpus_per_trial)):
        raise UsageError(f"--gpus-per-trial must be >= 0, found {args.gpus_per_trial:g}")
    if args.max_retries < 0:
        raise UsageError(f"--max-retries must be >= 0, found {args.max_retries}")
    kw: dict = {"trial_timeout": args.trial_timeout, "workers": args.workers, "max_retries": args.max_retries,
                "threads": args.threads or 1}
    if name == "inprocess":
        kw["front_worker"] = args.front_worker
    if remote:
        kw.update(address=args.ray_address, cpus_per_trial=args.cpus_per_trial or 1.0,
                  gpus_per_trial=args.gpus_per_trial or 0.0)
    if name == "ray":
        kw["batch"] = args.batch
    if name == "tune":
        kw.update(storage=str(Path(args.storage).resolve() / "tune") if args.storage else None,
                  scheduler=args.scheduler, optuna=args.tune_optuna,
                  asha={k: v for k, v in (("grace_period", args.asha_grace),) if v is not None})
    try:
        return make_executor(name, **kw)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--executor {name}: {exc}") from None


def _out_dir(args: argparse.Namespace) -> Path | None:
    """--out, under --storage when given and relative (None: the study's default)."""
    if args.storage and Path(args.storage).exists() and not Path(args.storage).is_dir():
        raise UsageError(f"--storage {args.storage}: a file, not a folder; give a directory every node can "
                         "read and write")
    if not args.out:
        return None
    out = Path(args.out)
    if args.storage and not out.is_absolute():
        out = Path(args.storage) / out
    for folder in (out, *out.parents):
        if folder.exists():
            if not folder.is_dir():
                raise UsageError(f"--out {out}: {folder} is a file, not a folder; choose a run directory "
                                 "outside it")
            break
    return out


def _parse_ref_point(text: str | None) -> dict | None:
    """``--ref-point energy=1e-4,latency=5e-4`` (natural units) -> a dict of finite numbers."""
    if not text:
        return None
    out: dict = {}
    for item in text.split(","):
        key, eq, raw = item.partition("=")
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not eq or not key.strip() or not math.isfinite(value):
            raise UsageError(f"--ref-point: expected NAME=NUMBER[,NAME=NUMBER...] with finite numbers, found "
                             f"'{item}'")
        out[key.strip()] = value
    return out


def _ref_point_text(text: str) -> str:
    """The argparse type of --ref-point: the text, once it parses (kept as text: a resume compares it)."""
    try:
        _parse_ref_point(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--ref-point: ")) from None
    return text


def _check_ref_point(args: argparse.Namespace, evaluator) -> None:
    """Every objective --ref-point names is one the evaluator scores."""
    ref = _parse_ref_point(args.ref_point) or {}
    names = list(getattr(evaluator, "objectives", ()))
    stray = [k for k in ref if k not in names]
    if stray:
        close = difflib.get_close_matches(stray[0], names, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else "bound only the searched objectives (--objectives)"
        raise UsageError(f"--ref-point {stray[0]}: not an objective of this search ({', '.join(names)}); {hint}")


# The devices --device takes: torch's names for what nasco trains on.
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def _device(text: str) -> str:
    """The argparse type of --device: auto, cpu, cuda or cuda:N."""
    if not _DEVICE.fullmatch(text.strip()):
        raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N, found '{text}'")
    return text.strip()


def _check_gpu(args: argparse.Namespace) -> None:
    """A cuda --device for evaluations in this process or its pool: the GPU must be there.

    On Ray the evaluations run on workers, which may hold GPUs the driver lacks: not checked."""
    name = args.executor or ("ray" if args.ray_address else "inprocess")
    if not args.device or not args.device.startswith("cuda") or name in ("ray", "tune"):
        return
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    n = int(args.device.partition(":")[2] or 0)
    if n >= count:
        have = f"torch sees {count} GPU{'s' if count != 1 else ''} (cuda:0..cuda:{count - 1})" if count else \
            "torch sees no GPU on this machine"
        raise UsageError(f"--device {args.device}: {have}; use --device auto or cpu, or run on a machine "
                         "with that GPU (--executor ray with --gpus-per-trial)")


def _evaluator_options(args: argparse.Namespace, kind: str) -> dict:
    """The evaluator settings the flags give (None: not given)."""
    if kind != "oneshot" and args.few_shot is not None:
        raise UsageError(f"--few-shot applies to --evaluator oneshot (it splits the supernet), not {kind}")
    if kind != "oneshot" and args.supernets is not None:
        raise UsageError(f"--supernets applies to --evaluator oneshot (it trains that many supernets), not {kind}")
    if args.retrain_top is not None and kind != "oneshot":
        raise UsageError(f"--retrain-top applies to --evaluator oneshot (its accuracies are inherited), not "
                         f"'{kind}', whose accuracies need no retraining")
    if kind == "table":
        given = {"table": args.table, "table_dataset": args.table_dataset, "table_fidelity": args.table_fidelity,
                 "table_split": args.table_split}
        for flag, v in (("--dataset", args.dataset), ("--epochs", args.epochs), ("--limit", args.limit),
                        ("--max-train-seconds", args.max_train_seconds), ("--device", args.device),
                        ("--hw-inner", args.hw_inner), ("--hw-exhaustive", args.hw_exhaustive)):
            if v is not None:
                raise UsageError(f"{flag} applies to --evaluator train, oneshot or proxy, not table")
        return given
    for flag, v in (("--table", args.table), ("--table-dataset", args.table_dataset),
                    ("--table-fidelity", args.table_fidelity), ("--table-split", args.table_split)):
        if v is not None:
            raise UsageError(f"{flag} applies to --evaluator table only")
    _check_gpu(args)
    given = {"dataset": (args.dataset[0] if args.dataset and len(args.dataset) == 1 else args.dataset),
             "limit": args.limit, "trust_pickle": args.trust_pickle or None,
             # --gpus-per-trial: evaluations run on workers that hold a GPU the driver may lack.
             "device": args.device or ("cuda" if (args.gpus_per_trial or 0) > 0 else None),
             "threads": args.threads}
    if kind == "proxy":
        if args.epochs is not None or args.max_train_seconds is not None:
            raise UsageError("--epochs and --max-train-seconds apply to --evaluator train; --evaluator proxy "
                             "does not train")
        for flag, v in (("--hw-inner", args.hw_inner), ("--hw-exhaustive", args.hw_exhaustive)):
            if v is not None:
                raise UsageError(f"{flag} applies to --evaluator train or oneshot")
    else:
        if kind == "oneshot" and args.max_train_seconds is not None:
            raise UsageError("--max-train-seconds applies to --evaluator train; --evaluator oneshot trains its "
                             "supernet for whole --epochs")
        given.update(epochs=args.epochs, hw_inner=None if args.hw_inner is None else args.hw_inner == "on",
                     hw_exhaustive=args.hw_exhaustive)
        if kind == "train":
            given["max_seconds"] = args.max_train_seconds
        else:
            given["few_shot"] = args.few_shot
            # one supernet is the default, recorded as such (None), so a run resumes either way
            given["supernets"] = args.supernets if args.supernets is not None and args.supernets > 1 else None
    return given


# Flags that define what a run is: on --resume each must agree with the recorded run. (The
# evaluator's settings are the library's to check: Study._recorded_evaluator.)
def _check_resume_flags(args: argparse.Namespace, study) -> None:
    cfg = study._recorded.get("config") or {}
    was_kind = cfg.get("evaluator", "train")
    clashes = []

    def clash(flag: str, given, recorded) -> None:
        clashes.append(f"{flag} {given!r} (the run has {recorded!r})")

    if args.evaluator is not None and args.evaluator != was_kind:
        clash("--evaluator", args.evaluator, was_kind)
    if args.space is not None and "+".join(_names(args.space)) != cfg.get("space"):
        clash("--space", "+".join(args.space), cfg.get("space"))
    if args.hw is not None and _names([args.hw])[0] != cfg.get("hw"):
        clash("--hw", args.hw, cfg.get("hw"))
    if args.set is not None and list(args.set) != list(cfg.get("set") or []):
        clash("--set", args.set, cfg.get("set"))
    if args.seed is not None and args.seed != study.seed:
        clash("--seed", args.seed, study.seed)
    if args.searcher is not None and args.searcher != study.searcher_name:
        clash("--searcher", args.searcher, study.searcher_name)
    if args.objectives is not None and tuple(s.strip() for s in args.objectives.split(",")) != \
            tuple(o.name for o in study.objectives):
        clash("--objectives", args.objectives, ",".join(o.name for o in study.objectives))
    if args.ref_point is not None and _parse_ref_point(args.ref_point) != (cfg.get("ref_point") or None):
        clash("--ref-point", args.ref_point, cfg.get("ref_point"))
    if args.population is not None or args.searcher_opt:
        given = _searcher_options(args, study.searcher_name)
        rec = dict(study.searcher_options)
        for k, v in given.items():
            if k != "storage" and rec.get(k) != v:
                flag = "--population" if k == "population_size" and args.population is not None else \
                    f"--searcher-opt {k}"
                clash(flag, v, rec.get(k))
    if clashes:
        raise UsageError(f"--resume {study.storage}: {'; '.join(clashes)}; drop the flag (the recorded run "
                         f"sets it) or choose another --out")


def _budget(text: str) -> int:
    """``--budget``: a whole number of evaluations, also in exponent form (1e4)."""
    try:
        value = float(text) if any(c in text for c in ".eE") else int(text)
    except ValueError:
        value = None
    if value is None or value != value or value in (float("inf"), float("-inf")) or value != int(value) \
            or value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number of evaluations (10, 1e4), "
                                         f"found '{text}'")
    return int(value)


def _names(items) -> list[str]:
    """Built-in names of spaces or templates given by name or path (a path's file stem)."""
    return [Path(x).stem if str(x).endswith((".yaml", ".yml")) else str(x) for x in items]


def _cmd_search(args: argparse.Namespace) -> int:
    if args.budget is not None and args.budget < 1:
        raise UsageError(f"--budget must be >= 1, found {args.budget}")
    if not args.quiet and sys.stderr.isatty():
        # The imports and the evaluator's data take seconds before the run's first line. Off a
        # terminal nothing is said, so a user mistake still reads as its one line.
        print("nasco search: loading the libraries, the search space and the evaluator's data",
              file=sys.stderr, flush=True)
    return _search(args)


def _search(args: argparse.Namespace) -> int:
    import nasco
    from nasco.run._ledger import FILENAME
    from nasco.core import RunDirError
    from nasco.run._rundir import RUN_FILE
    from nasco.study import DEFAULT_SEARCHER

    out = _out_dir(args)
    if args.resume and out is not None and (out / RUN_FILE).exists():
        with warnings.catch_warnings():  # resuming it fails with one line of its own
            warnings.filterwarnings("ignore", message=".*is not registered in this nasco", category=RuntimeWarning)
            study = nasco.load_study(out)
        kind = (study._recorded.get("config") or {}).get("evaluator", "train")
        options = _evaluator_options(args, args.evaluator or kind)
        _check_resume_flags(args, study)
        if args.optuna_storage:
            study.searcher_options["storage"] = args.optuna_storage
        try:
            evaluator = study._recorded_evaluator(args.evaluator, **options)
        except RunDirError as exc:
            setting = getattr(exc, "setting", None)
            if options.get(setting) is None:
                raise
            flag = {"max_seconds": "max_train_seconds"}.get(setting, setting).replace("_", "-")
            raise UsageError(f"--{flag}: {exc}") from None
    else:
        if args.resume and out is not None and (out / FILENAME).exists():
            raise UsageError(f"--resume --out {out}: {out / RUN_FILE} is missing, so the run cannot be continued "
                             f"safely; start afresh in another --out")
        if not args.space:
            raise UsageError("--space is required (e.g. --space darts_snn), unless --resume continues the run "
                             "in --out")
        searcher = args.searcher or DEFAULT_SEARCHER
        from nasco.study._study import _known_searcher

        _known_searcher(searcher)
        kind = args.evaluator or "train"
        from nasco.search import DIFFERENTIABLE

        if searcher in DIFFERENTIABLE and kind != "train":
            raise UsageError(f"--searcher {searcher} trains a supernet on --dataset and retrains what it "
                             f"derives: it needs --evaluator train, not '{kind}'")
        options = _evaluator_options(args, kind)
        study = nasco.create_study(space=args.space if len(args.space) > 1 else args.space[0], hw=args.hw,
                                   objectives=args.objectives, searcher=searcher,
                                   searcher_options=_searcher_options(args, searcher), storage=out,
                                   seed=args.seed if args.seed is not None else 0, sets=args.set or (),
                                   ref_point=_parse_ref_point(args.ref_point), load_if_exists=args.resume)
        if args.resume and (study.storage / RUN_FILE).exists():
            return _search(_with_out(args, study.storage))
        evaluator = study.make_evaluator(kind, **options)
        _check_ref_point(args, evaluator)
    executor = _executor(args, study.searcher_name)
    try:
        outcome = study.optimize(evaluator, budget=args.budget, executor=executor, window=args.window,
                                 progress=not args.quiet and sys.stderr, device=getattr(evaluator, "device", None),
                                 log=not args.quiet, retrain_top=args.retrain_top)
    except ConnectionError as exc:
        raise UsageError(f"--ray-address {args.ray_address}: {exc}") from None
    _report(outcome, evaluator)
    _write_report(outcome.out_dir)
    return 0


def _write_report(out: Path) -> None:
    """The run's report.html and report.md, and their path on stdout; a report that cannot be
    written is a warning (the search's files are complete), naming the command that retries it."""
    from nasco.core import NascoError
    from nasco.report import write_report

    try:
        html_path, _ = write_report(out)
    except (NascoError, OSError, ValueError) as exc:
        print(f"nasco: warning: report not written ({exc}); retry with 'nasco report {out}'", file=sys.stderr)
        return
    print(f"report: {html_path} (and report.md beside it)")



def _report(outcome, evaluator) -> None:
    """The finished run's lines on stdout: counts, front, hypervolume, trainings, why it
    stopped early, and its files."""
    from nasco.run._ledger import FILENAME
    from nasco.run._outputs import OUTPUT_FILES

    c, out = outcome.counts, outcome.out_dir
    hv = "n/a" if outcome.hypervolume is None else f"{outcome.hypervolume:.4g}"
    if hasattr(evaluator, "valid_column"):
        print(f"{out}: {c['total']} table queries (ok {c['ok']}, failed {c['failed']}); front of "
              f"{len(outcome.front)}; normalised hypervolume {hv}; searcher saw {evaluator.valid_column}, reports "
              f"{evaluator.test_column}")
    else:
        sources = outcome.sources
        front = f"front of {len(outcome.front)}" + ("" if sources is None else " (accuracy: " + ", ".join(
            f"{sources.get(s, 0)} {s}" for s in ("stand-alone", "inherited")) + ")")
        print(f"{out}: {c['total']} evaluations (ok {c['ok']}, infeasible {c['infeasible']}, failed {c['failed']}); "
              f"{front}; normalised hypervolume {hv}; {outcome.wall_seconds:.0f} s")
    if c.get("retrained"):
        print(f"{c['retrained']} architectures of the front retrained stand-alone after the search "
              f"({outcome.retrained} this session); the front reports their stand-alone accuracy")
    if outcome.trainings is not None:
        print(f"{outcome.trainings} trainings for the {c['total']} evaluations (the budget counts trainings; "
              f"an architecture evaluated on other hardware reuses its training)")
    if outcome.stopped == "exhausted":
        what = "architectures are trained" if outcome.trainings is not None else \
            f"{c['total']} distinct candidates are evaluated"
        print(f"stopped early: the space is exhausted (all its {what}, fewer than the budget)")
    elif outcome.stopped == "row_limit":
        print(f"stopped early: {c['total']} evaluations, the most a run makes for its budget of trainings "
              f"(max(100, 20 x budget)): the searcher kept proposing trained architectures")
    print(f"files: {', '.join(str(out / name) for name in (FILENAME, *OUTPUT_FILES))}")


def _with_out(args: argparse.Namespace, out: Path) -> argparse.Namespace:
    ns = argparse.Namespace(**vars(args))
    ns.out, ns.storage = str(out), None
    return ns


def add_search(sub) -> None:
    p = sub.add_parser(
        "search",
        help="search architectures x accelerator configurations; writes ledger, front, plots, summary, report",
        description="Search a space (and an accelerator template, template set, or a multi-accelerator with "
                    "one space per task) with real training on a dataset and the analytical cost model. Writes "
                    "DIR/ledger.jsonl (every evaluation, durable as it completes), DIR/pareto.csv, "
                    "DIR/pareto.png, DIR/history.png, DIR/summary.json, and at the end DIR/report.html "
                    "(self-contained) and DIR/report.md.")
    _add_problem(p)
    _add_searcher(p)
    _add_evaluator(p)
    _add_run(p)
    _add_executors(p)
    p.set_defaults(func=_cmd_search)


def _add_problem(p) -> None:
    """What is searched: the spaces, the accelerator, the budget and the seed."""
    p.add_argument("--space", action="append", type=nonempty("a built-in space name or a .yaml path"),
                   help="architecture space: built-in name (darts_snn, darts, nb201) or .yaml; give it once per "
                        "task (k times) with a multi_accelerator --hw; not needed with --resume")
    p.add_argument("--hw", help="accelerator template, accelerator_set (asic_template) or multi_accelerator "
                                "(hetero_2task): built-in name or .yaml")
    p.add_argument("--budget", type=_budget, default=None,
                   help="with --evaluator train: number of distinct trainings, per task with several --space "
                        "(an architecture trains once; "
                        "its evaluations on other hardware reuse the training and cost no budget; the run stops "
                        "after max(100, 20 x budget) evaluations in all); with the other evaluators, and with "
                        "--searcher darts, where each one is a supernet search on one accelerator configuration: "
                        "number of distinct evaluations (default 10; 2 for --searcher darts; with --resume the "
                        "recorded budget)")
    p.add_argument("--seed", type=int, default=None, help="run seed: data split, searcher and training (default 0)")
    p.add_argument("--out", help="run directory (default runs/SPACE-HW-seedS)")


def _add_searcher(p) -> None:
    """Who proposes, and what it ranks by."""
    p.add_argument("--searcher", default=None, type=nonempty("a searcher name (see 'nasco searchers')"),
                   help="evolution (regularized evolution), random, nsga2 / nsga3 (pymoo), optuna-tpe, "
                        "optuna-nsga2, optuna-random, predictor-guided, darts (differentiable: DARTS / DARTS-PT "
                        "with a hardware-aware loss per accelerator configuration; the derived cell is retrained) "
                        "(default evolution)")
    p.add_argument("--searcher-opt", action="append", metavar="KEY=VALUE",
                   help="a searcher setting, VALUE read as YAML; repeat for several, e.g. for predictor-guided "
                        "on nb201: --searcher-opt zero_cost=synflow --searcher-opt warmup=1000 (see "
                        "'nasco searchers' for each searcher's options)")
    p.add_argument("--optuna-storage", metavar="URL_OR_PATH", default=None,
                   help="where the optuna-* searchers keep their study: a database URL (sqlite:///PATH.db, "
                        "postgresql://USER:PASSWORD@HOST/DB for many jobs of a cluster, the driver installed), "
                        "journal:PATH, or a PATH ending in .journal or .log (default: SQLite, optuna.db in the run "
                        "directory; a storage outside it names the study after the run directory). "
                        "optuna-dashboard opens it: optuna-dashboard sqlite:///RUN/optuna.db")
    p.add_argument("--population", type=int, default=None,
                   help="population size of evolution (default 6; tournament size = half of it, 2..5), nsga2, "
                        "nsga3 and optuna-nsga2 (default 20)")
    p.add_argument("--objectives", default=None,
                   help="comma-separated: accuracy, energy, latency, area, params, macs (default "
                        "accuracy,energy,latency,area); with --evaluator proxy: the zero-cost proxies naswot, "
                        "sahd, synflow, snip, grad_norm, jacob_cov (higher is better), params, flops, sops (lower "
                        "is better), plus macs, energy, latency, area (default naswot,energy,latency,area: NASWOT "
                        "works for ANNs and SNNs alike; note that on darts_snn/digits no data-driven proxy ranked "
                        "trained accuracy better than chance, |tau| <= 0.11 over 50 cells, while the parameter "
                        "count did, bigger cells training better, see experiments/results/proxy_tau.md); with "
                        "--evaluator table: accuracy and any metric of the table, e.g. accuracy,eyeriss_latency "
                        "(default accuracy)")


def _add_evaluator(p) -> None:
    """How a candidate is scored: training, proxies or a lookup table."""
    p.add_argument("--evaluator", choices=("train", "oneshot", "table", "proxy"), default=None,
                   help="train: real training plus the cost model (default); oneshot: weight sharing, a "
                        "supernet of the space trained once per run by single-path one-shot (SPOS; --epochs, "
                        "default 16 times the space's), each candidate scored with the weights it inherits (BN "
                        "statistics re-estimated on 8 training batches) plus the cost model, the budget "
                        "counting evaluations (single-task spaces); table: look every candidate up "
                        "in --table (one evaluation = one query; the searcher sees validation accuracy, the "
                        "ledger and reports carry test accuracy); proxy: no training, zero-cost proxies of the "
                        "initial network on one minibatch of 64 training images, and the cost model with the "
                        "spike rates of that batch (single-task spaces)")
    p.add_argument("--table", help="lookup table for --evaluator table: built-in name (nb201) or lookup_table .yaml")
    p.add_argument("--table-dataset", default=None, help="table evaluator: dataset (c10, c100, in16; default c10)")
    p.add_argument("--table-fidelity", type=int, default=None,
                   help="table evaluator: training epochs of the accuracy the searcher sees (12 or 200; default 200)")
    p.add_argument("--table-split", default=None,
                   help="table evaluator: split the searcher sees (default valid; c100/in16 at 200 epochs have "
                        "only valtest)")
    p.add_argument("--dataset", action="append", default=None,
                   help="'digits' (scikit-learn, embedded; the default), a local image folder, or a CIFAR-10 "
                        "python folder; once for every task, or once per --space")
    p.add_argument("--trust-pickle", action="store_true", help="allow unpickling CIFAR-10 batch files you trust")
    p.add_argument("--limit", type=int, default=None, help="use at most this many images per split")
    p.add_argument("--epochs", type=int_in(1), default=None, help="override the space's training epochs (with --evaluator "
                   "oneshot: the supernet's, by default 16 times the space's epochs)")
    p.add_argument("--supernets", type=int_in(1), default=None, metavar="N",
                   help="--evaluator oneshot: score each candidate on N supernets trained with N seeds and take "
                        "the mean of their inherited accuracies (and of their quantized accuracies and spike "
                        "rates): better ranking for N times the supernets' training (default 1)")
    p.add_argument("--few-shot", nargs="?", const=True, default=None, metavar="EDGE",
                   help="--evaluator oneshot: few-shot NAS, each supernet split on the cell edge EDGE into one "
                        "sub-supernet per op of that edge, each trained for the full epochs (the supernets' cost "
                        "times the number of ops); a candidate inherits from the one of its op there. EDGE: "
                        "darts cells KIND.nI.eJ (KIND normal or reduce, node I from 0, input J: 0 and 1 the cell "
                        "inputs, 2+j node j; where the node may drop the edge, the cells without it have a "
                        "sub-supernet 'none'), nb201 cells nI.eJ (node I from 1, input J < I); without EDGE "
                        "normal.n0.e0 (darts) or n1.e0 (nb201)")
    p.add_argument("--device", default=None, type=_device,
                   help="torch device for training: auto (cuda when torch sees a GPU, else cpu; the default), "
                        "cpu, cuda, cuda:N")
    p.add_argument("--threads", type=int_in(1), default=None, help="torch CPU threads (default 1)")
    p.add_argument("--max-train-seconds", type=float_in(0.0, above=True), default=None, help="cap each candidate's training time")
    p.add_argument("--retrain-top", type=int_in(0), default=None, metavar="K",
                   help="--evaluator oneshot: after the search (beyond its --budget, which counts the "
                        "search's evaluations alone), train the K best architectures of the front from "
                        "scratch as --evaluator train would (distinct architectures ranked by their best "
                        "accuracy on the front; same data, training settings, seed and hardware inner loop). "
                        "Each is a retrain row of the ledger, and the front (pareto.csv, summary.json) "
                        "reports it with its stand-alone accuracy in place of the inherited one "
                        "(pareto.csv's accuracy_source); --resume finishes an interrupted retraining "
                        "(default 0; with --resume the recorded K)")
    p.add_argument("--hw-inner", choices=("on", "off"), default=None,
                   help="train and oneshot evaluators: score each trained (or inherited) network on the "
                        "accelerator space's other configurations too, so the front holds (architecture, accelerator) pairs (default on; "
                        "off costs only the proposed configuration)")
    p.add_argument("--hw-exhaustive", type=int_in(0), default=None, metavar="N",
                   help="hardware inner loop: cost every configuration when the accelerator space has at "
                        "most N, else search it with NSGA-II; on a multi-accelerator, score every in-budget "
                        "partition of the tasks' non-dominated configurations when there are at most N, else "
                        "search them with NSGA-II (default 16000)")


def _add_run(p) -> None:
    """The run directory: overrides, hypervolume bounds, resume and output."""
    p.add_argument("--set", action="append", metavar="KEY=VALUE", type=key_value,
                   help="override a field before the search. Spaces: macro.cells=3 (every --space), "
                        "task1.macro.cells=3 (the second --space only). Accelerator, prefixed hw.: a "
                        "template's field (hw.dataflow=ws); for a set or multi_accelerator its own keys "
                        "(hw.specs.latency.max='1 ms', hw.budget.pes=512), hw.template=NAME or "
                        "hw.template='{choice: [A, B]}' to keep only those members, hw.NAME.KEY=V for "
                        "member NAME, hw.KEY=V with a template field for every member (hw.clock_mhz=200)")
    p.add_argument("--ref-point", default=None, metavar="NAME=VALUE,...", type=_ref_point_text,
                   help="hypervolume bounds, natural units (energy=1e-4,latency=5e-4): the worst value of each "
                        "objective that counts; default the design-spec limit, else the objective's documented "
                        "bound (accuracy 0, energy 1 mJ, latency 10 ms, area 10 mm2; a table's worst value). "
                        "Recorded, so two runs on the same problem compare (summary.json)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out (no other flag needed: the run's recorded settings are used, "
                        "and a flag that contradicts them is an error) (after an interruption, a killed driver, or with a larger "
                        "--budget): the ledger's evaluations are replayed to the searcher, not re-run; "
                        "evaluations lost with the driver are run again")
    p.add_argument("--quiet", action="store_true", help="no progress line")


def _add_executors(p) -> None:
    """Where evaluations run."""
    g = p.add_argument_group("where evaluations run (executors)")
    g.add_argument("--executor", choices=("inprocess", "pool", "ray", "tune"), default=None,
                   help="inprocess: one at a time in this process (the default); pool: a local pool of "
                        "--workers processes; ray: Ray tasks on a local Ray instance bound to 127.0.0.1 or on "
                        "the cluster at --ray-address (the default with --ray-address); tune: Ray Tune trials, "
                        "with nasco's searcher as Tune's search algorithm (for --scheduler asha)")
    g.add_argument("--workers", type=int, default=None,
                   help="evaluations at once (pool: processes, default one per core; ray/tune: at most this "
                        "many, default as many as the cluster's CPUs / --cpus-per-trial allow)")
    g.add_argument("--ray-address", default=None, metavar="auto|HOST:PORT",
                   help="join this Ray cluster (started with 'ray start --head'; 'auto' finds the local one) "
                        "instead of starting a local instance")
    g.add_argument("--cpus-per-trial", type=float, default=None, help="CPUs reserved per evaluation (default 1)")
    g.add_argument("--gpus-per-trial", type=float, default=None,
                   help="GPUs reserved per evaluation, fractions allowed (default 0; > 0 makes --device auto "
                        "train on cuda)")
    g.add_argument("--batch", type=int, default=1,
                   help="evaluations per Ray task (default 1); for cheap evaluations (a lookup, a proxy) a "
                        "batch amortises Ray's per-task overhead, see the README's executor figures")
    g.add_argument("--window", type=int, default=None,
                   help="proposals out at once (default --workers x --batch); results are told to the searcher "
                        "in proposal order, so a run is the same whatever order evaluations finish in. Recorded "
                        "in run.json; a resumed run keeps it")
    g.add_argument("--front-worker", choices=("auto", "on", "off"), default=None,
                   help="inprocess: make each network's hardware inner loop (its quantized validation passes "
                        "and the accelerator search) in a second process while the next network trains; the "
                        "searcher proposes and the ledger holds the same as without it. auto (the default): "
                        "on once a network takes 1 s or more to train, with half a CPU or more spare (load average)")
    g.add_argument("--trial-timeout", type=float, default=None, metavar="SECONDS",
                   help="an evaluation running longer is stopped and recorded as failed (reason 'timeout'); "
                        "the search goes on")
    g.add_argument("--max-retries", type=int, default=2,
                   help="times an evaluation is run again after its worker process died (killed, node lost, "
                        "out of memory), each recorded in the row's 'retries' (default 2)")
    g.add_argument("--storage", default=None, metavar="DIR",
                   help="a directory every node of the cluster can read and write (NFS, a shared volume): "
                        "the run directory (--out, when relative) is created under it, and so are Ray Tune's "
                        "results with --executor tune")
    g.add_argument("--scheduler", choices=("asha",), default=None,
                   help="--executor tune: stop unpromising training early with ASHA on the first objective, "
                        "reported once per epoch (stopped candidates are recorded as failed, with the reason)")
    g.add_argument("--asha-grace", type=int, default=None,
                   help="--scheduler asha: epochs every candidate trains before it can be stopped (default 1)")
    g.add_argument("--tune-optuna", action="store_true",
                   help="--executor tune with an optuna-* --searcher: Tune's OptunaSearch makes the proposals, "
                        "with the searcher's sampler, seed and objectives (resume such a run with the flag too)")
