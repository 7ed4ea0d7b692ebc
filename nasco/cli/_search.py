"""`nasco search`: a joint architecture x accelerator search, written to a run directory."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nasco.cli._common import UsageError, parse_objectives, split_task_overrides
from nasco.dsl import HW_KINDS, MultiAccelerator, find_file, load_file

__all__ = ["add_search", "DEFAULT_BUDGET"]

# The default run (darts_snn x asic_template on digits) fits in 5 minutes on 2 cores;
# see the README for the measured figures.
DEFAULT_BUDGET = 10
# A differentiable searcher runs a supernet search per candidate (per accelerator
# configuration): two keep `--searcher darts` on the default space within 10 minutes.
DARTS_BUDGET = 2
DEFAULT_POPULATION = 6


def _load_search_files(args: argparse.Namespace) -> tuple[list, object | None]:
    """(architecture spaces, accelerator spec or None) with the --set overrides applied."""
    spaces = args.space or []
    space_over, hw_over = split_task_overrides(args.set, len(spaces))
    hw = load_file(find_file(args.hw, what="accelerator template, set or multi-accelerator"),
                   overrides=hw_over or None, kind=HW_KINDS) if args.hw else None
    k = hw.sub_accelerators if isinstance(hw, MultiAccelerator) else 1
    if len(spaces) != k:
        if isinstance(hw, MultiAccelerator):
            raise UsageError(f"--hw {args.hw} has {k} sub-accelerators, one per task: give --space {k} times "
                             f"(found {len(spaces)})")
        raise UsageError(f"{len(spaces)} --space (tasks) need a multi_accelerator --hw with {len(spaces)} "
                         f"sub-accelerators (e.g. --hw hetero_2task); found "
                         + (f"'{hw.name}' ({hw.kind})" if hw is not None else "no --hw"))
    archs = [load_file(find_file(name), overrides=over or None, kind="arch_space")
             for name, over in zip(spaces, space_over)]
    return archs, hw


def _table_search(args: argparse.Namespace) -> int:
    """``--evaluator table``: every evaluation is one lookup in ``--table``."""
    from nasco.evaluate import TableEvaluator
    from nasco.space import SearchSpace
    from nasco.tables import load_table

    if not args.table:
        raise UsageError("--evaluator table needs --table NAME (e.g. --table nb201)")
    if args.hw:
        raise UsageError("--evaluator table scores architectures from the table only; drop --hw "
                         "(use a table metric such as eyeriss_latency as an objective)")
    table = load_table(args.table)
    from nasco.evaluate import register_objective

    for name in table.metric_names:
        try:
            register_objective(name, table.direction(name))
        except ValueError:
            pass  # a built-in objective of the same name keeps its direction; the evaluator checks
    objectives = parse_objectives(args.objectives or "accuracy")
    archs, _hw = _load_search_files(args)
    if len(archs) != 1:
        raise UsageError("--evaluator table takes one --space")
    if archs[0].name != load_file(table.where.space_file, kind="arch_space").name:
        raise UsageError(f"--table {args.table} holds cells of space '{table.spec.space}', not '{archs[0].name}'")
    space = SearchSpace(archs[0], None)
    evaluator = TableEvaluator(table, objectives, dataset=args.table_dataset, fidelity=args.table_fidelity,
                               split=args.table_split)
    kw = _searcher_options(args)
    searcher = _make_searcher(args, space, objectives, kw)
    out = _out_dir(args, f"runs/{archs[0].name}-table-{table.name}-seed{args.seed}")
    config = {"space": archs[0].name, "space_file": getattr(archs[0], "source", None), "hw": None,
              "evaluator": "table", **evaluator.describe(), "searcher": args.searcher, "searcher_options": kw,
              "budget": args.budget}
    outcome = _run(args, space=space, evaluator=evaluator, searcher=searcher, budget=args.budget, out_dir=out,
                   seed=args.seed, config=config)
    c = outcome.counts
    print(f"{out}: {c['total']} table queries (ok {c['ok']}, failed {c['failed']}); front of {len(outcome.front)}; "
          f"hypervolume {outcome.hypervolume:.4g}; searcher saw {evaluator.valid_column}, reports "
          f"{evaluator.test_column}")
    print(f"files: {out / 'ledger.jsonl'}, {out / 'pareto.csv'}, {out / 'pareto.png'}, {out / 'summary.json'}")
    return 0


# Searchers besides evolution whose constructor takes population_size.
_POPULATION_SEARCHERS = ("nsga2", "nsga3", "optuna-nsga2")


def _searcher_options(args: argparse.Namespace) -> dict:
    kw: dict = {}
    if args.searcher == "evolution":
        # Regularized evolution samples its first population at random; the small default
        # leaves room for evolution within the short default budget (Real et al., AAAI 2019,
        # use P = 20..100 for long runs: pass --population). It does not follow --budget, so a
        # run resumed with a larger budget replays the same searcher.
        kw["population_size"] = args.population or DEFAULT_POPULATION
        kw["sample_size"] = max(2, min(5, kw["population_size"] // 2))
    elif args.searcher in _POPULATION_SEARCHERS:
        if args.population:  # their own default otherwise (20: pymoo's and Optuna's NSGA-II size)
            kw["population_size"] = args.population
    elif args.population:
        raise UsageError(f"--population applies to --searcher {', '.join(('evolution',) + _POPULATION_SEARCHERS)} "
                         f"only, not '{args.searcher}'")
    opts = _parse_searcher_opts(args)
    if args.population and "population_size" in opts:
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
        if not args.searcher.startswith("optuna-"):
            raise UsageError(f"--optuna-storage applies to the optuna-* searchers only, not '{args.searcher}'")
        from nasco.search._optuna import check_storage, mask_url

        try:
            check_storage(args.optuna_storage)
        except ValueError as exc:
            raise UsageError(f"--optuna-storage: {exc}") from None
        # run.json and summary.json record the options: never a password (_make_searcher
        # gives the searcher the URL itself, from args).
        kw["storage"] = mask_url(args.optuna_storage)
    return kw


def _parse_searcher_opts(args: argparse.Namespace) -> dict:
    """``--searcher-opt KEY=VALUE``: VALUE is read as YAML (1000, 0.5, synflow, null, {a: 1})."""
    import yaml

    from nasco.cli._searchers import searcher_options
    from nasco.search import SEARCHERS

    from nasco.search import DIFFERENTIABLE

    known = [k for k, _ in searcher_options({**SEARCHERS, **DIFFERENTIABLE}[args.searcher])]
    out: dict = {}
    for item in args.searcher_opt or []:
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise UsageError(f"--searcher-opt: expected KEY=VALUE, found '{item}'")
        if key not in known:
            raise UsageError(f"--searcher-opt {key}: '{args.searcher}' has no option '{key}'; its options: "
                             f"{', '.join(known) or 'none'}")
        try:
            out[key] = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise UsageError(f"--searcher-opt {key}: value '{raw}' is not valid YAML ({exc.problem})") from None
    return out


def _make_searcher(args: argparse.Namespace, space, objectives, kw: dict):
    from nasco.search import make_searcher

    given = dict(kw)
    if "storage" in kw and getattr(args, "optuna_storage", None):
        given["storage"] = args.optuna_storage  # kw holds it with the password masked
    try:
        return make_searcher(args.searcher, space, objectives, args.seed, **given)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--searcher {args.searcher} with options {kw}: {exc}") from None


def _executor(args: argparse.Namespace):
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
    if args.workers is not None and name == "inprocess":
        raise UsageError("--workers needs --executor pool, ray or tune (inprocess runs one evaluation at a time)")
    if name != "tune" and (args.scheduler or args.asha_grace is not None or args.tune_optuna):
        raise UsageError(f"--scheduler, --asha-* and --tune-optuna apply to --executor tune, not '{name}'")
    if args.tune_optuna and not args.searcher.startswith("optuna-"):
        raise UsageError(f"--tune-optuna hands the proposals to Tune's OptunaSearch: it needs an optuna-* "
                         f"--searcher, not '{args.searcher}'")
    for flag, value in (("--workers", args.workers), ("--batch", args.batch), ("--window", args.window),
                        ("--cpus-per-trial", args.cpus_per_trial), ("--trial-timeout", args.trial_timeout)):
        if value is not None and value <= 0:
            raise UsageError(f"{flag} must be > 0, found {value:g}")
    if args.gpus_per_trial is not None and args.gpus_per_trial < 0:
        raise UsageError(f"--gpus-per-trial must be >= 0, found {args.gpus_per_trial:g}")
    if args.max_retries < 0:
        raise UsageError(f"--max-retries must be >= 0, found {args.max_retries}")
    kw: dict = {"trial_timeout": args.trial_timeout, "workers": args.workers, "max_retries": args.max_retries,
                "threads": args.threads}
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


def _run(args: argparse.Namespace, **kw):
    """run_search with the executor, window and run directory that the flags ask for."""
    from nasco.run import run_search

    executor = _executor(args)
    try:
        return run_search(**kw, resume=args.resume, progress=not args.quiet and sys.stderr,
                          executor=executor, window=args.window)
    except ConnectionError as exc:
        raise UsageError(f"--ray-address {args.ray_address}: {exc}") from None


def _out_dir(args: argparse.Namespace, default: str) -> Path:
    """--out (default ``default``), under --storage when given and relative."""
    out = Path(args.out or default)
    if args.storage and not out.is_absolute():
        out = Path(args.storage) / out
    return out


def _cmd_search(args: argparse.Namespace) -> int:
    from nasco.search import DIFFERENTIABLE, SEARCHERS

    known = {**SEARCHERS, **DIFFERENTIABLE}
    if args.budget is None:
        args.budget = DARTS_BUDGET if args.searcher in DIFFERENTIABLE else DEFAULT_BUDGET
    if args.budget < 1:
        raise UsageError(f"--budget must be >= 1, found {args.budget}")
    if args.searcher not in known:
        import difflib
        close = difflib.get_close_matches(args.searcher, list(known), n=1)
        raise UsageError(f"--searcher: unknown '{args.searcher}'; known: {', '.join(known)}"
                         + (f"; did you mean '{close[0]}'?" if close else ""))
    if args.searcher in DIFFERENTIABLE and args.evaluator != "train":
        raise UsageError(f"--searcher {args.searcher} trains a supernet on --dataset and retrains what it "
                         f"derives: it needs --evaluator train, not '{args.evaluator}'")
    if args.evaluator == "table":
        return _table_search(args)
    if args.table:
        raise UsageError("--table applies to --evaluator table only")
    return _train_search(args)


def _train_search(args: argparse.Namespace) -> int:
    import torch

    from nasco.evaluate import TrainCostEvaluator, load_dataset
    from nasco.space import SearchSpace

    proxy = args.evaluator == "proxy"
    if proxy:
        from nasco.evaluate._proxies import DEFAULT_OBJECTIVES  # registers the proxies as objectives

        if args.epochs is not None or args.max_train_seconds is not None:
            raise UsageError("--epochs and --max-train-seconds apply to --evaluator train; --evaluator proxy "
                             "does not train")
    objectives = parse_objectives(args.objectives or (",".join(DEFAULT_OBJECTIVES) if proxy
                                                      else "accuracy,energy,latency,area"))
    archs, hw = _load_search_files(args)
    multi = isinstance(hw, MultiAccelerator)
    datasets = args.dataset or ["digits"]
    if len(datasets) not in (1, len(archs)):
        raise UsageError(f"--dataset given {len(datasets)} times for {len(archs)} --space; give it once "
                         f"(every task) or once per --space")
    hw_objectives = {"energy", "latency", "area"} & set(objectives)
    if hw is None and hw_objectives:
        raise UsageError(f"objectives {', '.join(sorted(hw_objectives))} need an accelerator: add --hw "
                         "asic_template, or --objectives accuracy")
    torch.set_num_threads(args.threads)
    if args.device == "auto":  # recorded in run.json as the device actually used
        # With --gpus-per-trial the evaluations run on workers that hold a GPU, which the
        # driver's machine may not have.
        args.device = "cuda" if torch.cuda.is_available() or (args.gpus_per_trial or 0) > 0 else "cpu"
    space = SearchSpace(archs if multi else archs[0], hw)
    loaded: dict[str, object] = {}
    for name in datasets:
        if name not in loaded:
            loaded[name] = load_dataset(name, seed=args.seed, trust_pickle=args.trust_pickle, limit=args.limit)
    data = [loaded[name] for name in datasets]
    if proxy:
        from nasco.evaluate import ProxyEvaluator

        try:
            evaluator = ProxyEvaluator(space, data[0], objectives)
        except ValueError as exc:
            raise UsageError(f"--evaluator proxy: {exc}") from None
    else:
        evaluator = TrainCostEvaluator(space, data if multi else data[0], objectives, epochs=args.epochs,
                                       device=args.device, max_seconds=args.max_train_seconds)
    kw = _searcher_options(args)
    from nasco.search import DIFFERENTIABLE

    # The data and the device are not settings of the search but inputs of the supernet.
    extra = ({"data": data[0], "device": args.device, "log": not args.quiet}
             if args.searcher in DIFFERENTIABLE else {})
    searcher = _make_searcher(args, space, objectives, {**kw, **extra})
    if kw.get("hw_search") == "enumerate" and space.hw is not None and args.budget > space.hw.size():
        raise UsageError(f"--budget {args.budget} is more than the {space.hw.size()} configurations of --hw "
                         f"{hw.name} that hw_search=enumerate can search; give --budget {space.hw.size()} or less")
    arch_name = "+".join(a.name for a in archs)
    out = _out_dir(args, f"runs/{arch_name}-{hw.name if hw else 'nohw'}-seed{args.seed}")
    config = {
        "space": arch_name, "space_file": getattr(archs[0], "source", None),
        "hw": hw.name if hw else None, "hw_file": getattr(hw, "source", None) if hw else None,
        "set": list(args.set or []), "dataset": datasets[0], "dataset_source": data[0].source,
        "searcher": args.searcher, "searcher_options": kw, "budget": args.budget, "epochs": args.epochs, "limit": args.limit,
        "device": args.device, "threads": args.threads,
    }
    if proxy:
        config.update(evaluator="proxy", **evaluator.describe())
    if multi:
        config.update(space_files=[getattr(a, "source", None) for a in archs], datasets=datasets,
                      dataset_sources=[d.source for d in data])
    outcome = _run(args, space=space, evaluator=evaluator, searcher=searcher, budget=args.budget,
                   out_dir=out, seed=args.seed, config=config, limits=evaluator.limits)
    c = outcome.counts
    print(f"{out}: {c['total']} evaluations (ok {c['ok']}, infeasible {c['infeasible']}, failed {c['failed']}); "
          f"front of {len(outcome.front)}; hypervolume {outcome.hypervolume:.4g}; "
          f"{outcome.wall_seconds:.0f} s")
    print(f"files: {out / 'ledger.jsonl'}, {out / 'pareto.csv'}, {out / 'pareto.png'}, {out / 'summary.json'}")
    return 0


def add_search(sub) -> None:
    p = sub.add_parser(
        "search", help="search architectures x accelerator configurations; writes ledger, front, plot, summary",
        description="Search a space (and an accelerator template, template set, or a multi-accelerator with "
                    "one space per task) with real training on a dataset and the analytical cost model. Writes DIR/ledger.jsonl (every evaluation, durable as it "
                    "completes), DIR/pareto.csv, DIR/pareto.png and DIR/summary.json.")
    p.add_argument("--space", required=True, action="append",
                   help="architecture space: built-in name (darts_snn, darts, nb201) or .yaml; give it once per "
                        "task (k times) with a multi_accelerator --hw")
    p.add_argument("--hw", help="accelerator template, accelerator_set (asic_template) or multi_accelerator "
                                "(hetero_2task): built-in name or .yaml")
    p.add_argument("--budget", type=int, default=None,
                   help=f"number of distinct evaluations (default {DEFAULT_BUDGET}; {DARTS_BUDGET} for --searcher "
                        f"darts, where each one is a supernet search on one accelerator configuration)")
    p.add_argument("--seed", type=int, default=0, help="run seed: data split, searcher and training (default 0)")
    p.add_argument("--out", help="run directory (default runs/SPACE-HW-seedS)")
    p.add_argument("--searcher", default="evolution",
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
                   help=f"population size of evolution (default {DEFAULT_POPULATION}; tournament size = half of "
                        "it, 2..5), nsga2, nsga3 and optuna-nsga2 (default 20)")
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
    p.add_argument("--evaluator", choices=("train", "table", "proxy"), default="train",
                   help="train: real training plus the cost model (default); table: look every candidate up "
                        "in --table (one evaluation = one query; the searcher sees validation accuracy, the "
                        "ledger and reports carry test accuracy); proxy: no training, zero-cost proxies of the "
                        "initial network on one minibatch of 64 training images, and the cost model with the "
                        "spike rates of that batch (single-task spaces)")
    p.add_argument("--table", help="lookup table for --evaluator table: built-in name (nb201) or lookup_table .yaml")
    p.add_argument("--table-dataset", default="c10", help="table evaluator: dataset (c10, c100, in16; default c10)")
    p.add_argument("--table-fidelity", type=int, default=200,
                   help="table evaluator: training epochs of the accuracy the searcher sees (12 or 200; default 200)")
    p.add_argument("--table-split", default="valid",
                   help="table evaluator: split the searcher sees (default valid; c100/in16 at 200 epochs have "
                        "only valtest)")
    p.add_argument("--dataset", action="append", default=None,
                   help="'digits' (scikit-learn, embedded; the default), a local image folder, or a CIFAR-10 "
                        "python folder; once for every task, or once per --space")
    p.add_argument("--trust-pickle", action="store_true", help="allow unpickling CIFAR-10 batch files you trust")
    p.add_argument("--limit", type=int, default=None, help="use at most this many images per split")
    p.add_argument("--epochs", type=int, default=None, help="override the space's training epochs")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a field before the search. Spaces: macro.cells=3 (every --space), "
                        "task1.macro.cells=3 (the second --space only). Accelerator, prefixed hw.: a "
                        "template's field (hw.dataflow=ws); for a set or multi_accelerator its own keys "
                        "(hw.specs.latency.max='1 ms', hw.budget.pes=512), hw.template=NAME or "
                        "hw.template='{choice: [A, B]}' to keep only those members, hw.NAME.KEY=V for "
                        "member NAME, hw.KEY=V with a template field for every member (hw.clock_mhz=200)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out (after an interruption, a killed driver, or with a larger "
                        "--budget): the ledger's evaluations are replayed to the searcher, not re-run; "
                        "evaluations lost with the driver are run again")
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
    p.add_argument("--device", default="auto",
                   help="torch device for training: auto (cuda when torch sees a GPU, else cpu; the default), "
                        "cpu, cuda, cuda:N")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--max-train-seconds", type=float, default=None, help="cap each candidate's training time")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=_cmd_search)
