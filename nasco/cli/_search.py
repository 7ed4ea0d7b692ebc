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
    from nasco.run import run_search
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
    out = Path(args.out or f"runs/{archs[0].name}-table-{table.name}-seed{args.seed}")
    config = {"space": archs[0].name, "space_file": getattr(archs[0], "source", None), "hw": None,
              "evaluator": "table", **evaluator.describe(), "searcher": args.searcher, "searcher_options": kw,
              "budget": args.budget}
    outcome = run_search(space=space, evaluator=evaluator, searcher=searcher, budget=args.budget, out_dir=out,
                         seed=args.seed, resume=args.resume, config=config, progress=not args.quiet and sys.stderr)
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
    kw.update(opts)
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

    try:
        return make_searcher(args.searcher, space, objectives, args.seed, **kw)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--searcher {args.searcher} with options {kw}: {exc}") from None


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
    from nasco.run import run_search
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
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
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
    out = Path(args.out or f"runs/{arch_name}-{hw.name if hw else 'nohw'}-seed{args.seed}")
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
    outcome = run_search(space=space, evaluator=evaluator, searcher=searcher, budget=args.budget,
                         out_dir=out, seed=args.seed, resume=args.resume, config=config,
                         progress=not args.quiet and sys.stderr, limits=evaluator.limits)
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
    p.add_argument("--resume", action="store_true", help="continue the run in --out without re-evaluating")
    p.add_argument("--device", default="auto",
                   help="torch device for training: auto (cuda when torch sees a GPU, else cpu; the default), "
                        "cpu, cuda, cuda:N")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--max-train-seconds", type=float, default=None, help="cap each candidate's training time")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=_cmd_search)
