"""The bad-input corpus: every mistake a new user makes exits 2 with one line on stderr.

Each case of ``tests/bad_inputs/manifest.csv`` (and each file of ``tests/dsl/corpus``, given
to ``nasco validate``) runs through the CLI's ``main`` in this process and must end with

* exit code 2,
* stderr exactly one non-empty line (so no traceback and no warning beside it),
* that line naming the file or flag at fault (the ``mentions`` column, ``;``-separated),
* under 2 s of wall time and a tracemalloc peak under 300 MB.

Manifest columns: ``id``; ``argv`` (split as a shell would, then placeholders expanded);
``mentions``; ``subprocess`` (``yes``: also run from a fresh ``python -m nasco``);
``mistake`` (what the user did). Placeholders:

* ``{corpus}``: tests/bad_inputs; ``{dsl}``: tests/dsl/corpus; ``{shipped}``: search_spaces;
* ``{out}``: a path that does not exist yet (a run directory to create);
* ``{file}``: a regular file (for flags that want a directory);
* ``{run:NAME}``: a copy, made for the case, of a small real run (nb201 on the table evaluator)
  damaged by ``RUN_DAMAGE[NAME]``; ``{run}`` in mentions is that copy;
* ``{table:NAME}``: the lookup_table file of a 300-row cut of the shipped nb201 table,
  damaged by ``TABLE_DAMAGE[NAME]``; ``{tabledir}`` in mentions is its folder.
"""
from __future__ import annotations

import contextlib
import csv
import gc
import gzip
import io
import json
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import time
import traceback
import tracemalloc
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from nasco.cli import main

TESTS = Path(__file__).resolve().parent
CORPUS = TESTS / "bad_inputs"
DSL_CORPUS = TESTS / "dsl" / "corpus"
SHIPPED = TESTS.parent / "search_spaces"
MANIFEST = CORPUS / "manifest.csv"

WALL_LIMIT_S = 2.0
PEAK_LIMIT_BYTES = 300 * 2**20
# Guards, not limits: a case that blows up (an alias bomb expanding, a 1e9 x 1e9 layer) is
# stopped and reported as failed instead of hanging the run or exhausting the shared machine.
# The alarm interrupts Python code only; the address-space cap turns a runaway allocation
# into MemoryError.
GUARD_SECONDS = 4
GUARD_EXTRA_ADDRESS_SPACE = 3 * 2**30
SUBPROCESS_TIMEOUT_S = 60
TABLE_ROWS = 300


# ---------------------------------------------------------------------- the cases
@dataclass(frozen=True)
class Case:
    id: str
    argv: str
    mentions: str
    subprocess: bool
    mistake: str


def _manifest() -> list[Case]:
    with open(MANIFEST, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [Case(r["id"], r["argv"], r["mentions"], r["subprocess"] == "yes", r["mistake"]) for r in rows]


def _dsl_cases() -> list[Case]:
    """Every file of the DSL corpus through `nasco validate` (the library-level test checks its message)."""
    return [Case(f"dsl-{p.stem}", f"validate {{dsl}}/{p.name}", f"{{dsl}}/{p.name}", False,
                 "tests/dsl/corpus file through the CLI") for p in sorted(DSL_CORPUS.glob("*.yaml"))]


CASES = _manifest() + _dsl_cases()


# ---------------------------------------------------------------------- damaged run directories
def _ledger_lines(run: Path) -> list[str]:
    return (run / "ledger.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)


def _write_ledger(run: Path, lines: list[str]) -> None:
    (run / "ledger.jsonl").write_text("".join(lines), encoding="utf-8")


def _insert_ledger(text: str) -> Callable[[Path], None]:
    """Put ``text`` between the second and third row of the ledger."""
    def damage(run: Path) -> None:
        lines = _ledger_lines(run)
        _write_ledger(run, lines[:2] + [text] + lines[2:])
    return damage


def _edit_row(edit: Callable[[dict], object]) -> Callable[[Path], None]:
    """Rewrite the second ledger row with ``edit`` (which changes the row in place)."""
    def damage(run: Path) -> None:
        lines = _ledger_lines(run)
        row = json.loads(lines[1])
        edit(row)
        lines[1] = json.dumps(row) + "\n"
        _write_ledger(run, lines)
    return damage


def _edit_run_json(edit: Callable[[dict], object]) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        meta = json.loads((run / "run.json").read_text(encoding="utf-8"))
        edit(meta)
        (run / "run.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return damage


def _run_json_bytes(data: bytes) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        (run / "run.json").write_bytes(data)
    return damage


def _replace_by_dir(name: str) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        (run / name).unlink()
        (run / name).mkdir()
    return damage


def _duplicate_row(run: Path) -> None:
    lines = _ledger_lines(run)
    _write_ledger(run, lines[:2] + [lines[1]] + lines[2:])


def _torn_middle(run: Path) -> None:
    lines = _ledger_lines(run)
    _write_ledger(run, lines[:1] + [lines[1][: len(lines[1]) // 2] + "\n"] + lines[2:])


def _set(path: tuple, value: object) -> Callable[[dict], None]:
    def edit(d: dict) -> None:
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value
    return edit


RUN_DAMAGE: dict[str, Callable[[Path], None]] = {
    "ok": lambda run: None,
    "garbage_line": _insert_ledger("garbage, not a ledger row\n"),
    "invalid_utf8_line": lambda run: (run / "ledger.jsonl").write_bytes(
        b"".join(s.encode() for s in _ledger_lines(run)[:2]) + b'{"seq": 9, "id": "\xff\xfe"}\n'
        + b"".join(s.encode() for s in _ledger_lines(run)[2:])),
    "empty_object_lines": _insert_ledger("{}\n{}\n"),
    "blank_line": _insert_ledger("\n"),
    "torn_middle_line": _torn_middle,
    "nan_objective": _edit_row(_set(("objectives", "accuracy"), float("nan"))),
    "string_objective": _edit_row(_set(("objectives", "accuracy"), "high")),
    "duplicated_row": _duplicate_row,
    "row_list": _insert_ledger("[1, 2, 3]\n"),
    "row_unknown_status": _edit_row(_set(("status",), "great")),
    "row_foreign_arch": _edit_row(_set(("arch", "cell", "edges"), ["conv_3x5"] * 6)),
    "ledger_directory": _replace_by_dir("ledger.jsonl"),
    "run_json_list": _run_json_bytes(b"[]\n"),
    "run_json_garbage": _run_json_bytes(b"this is not JSON\n"),
    "run_json_empty": _run_json_bytes(b""),
    "run_json_invalid_utf8": _run_json_bytes(b'{"seed": "\xff\xfe"}\n'),
    "run_json_directory": _replace_by_dir("run.json"),
    "config_null": _edit_run_json(_set(("config",), None)),
    "window_abc": _edit_run_json(_set(("window",), "abc")),
    "window_zero": _edit_run_json(_set(("window",), 0)),
    "window_negative": _edit_run_json(_set(("window",), -3)),
    "unknown_searcher": _edit_run_json(lambda m: (_set(("searcher", "name"), "evolutionx")(m),
                                                  _set(("config", "searcher"), "evolutionx")(m))),
    "seed_string": _edit_run_json(_set(("seed",), "abc")),
    "seed_negative": _edit_run_json(_set(("seed",), -1)),
    "budget_string": _edit_run_json(_set(("config", "budget"), "ten")),
    "space_unknown": _edit_run_json(lambda m: (_set(("config", "space"), "nb_201")(m),
                                               _set(("config", "space_file"), None)(m))),
    "objectives_unknown": _edit_run_json(lambda m: (_set(("objectives",), ["acc"])(m),
                                                    _set(("objective_defs",), [])(m))),
    "evaluator_unknown": _edit_run_json(_set(("config", "evaluator"), "oracle")),
    "missing_run_json": lambda run: (run / "run.json").unlink(),
}


# ---------------------------------------------------------------------- damaged tables
def _csv_lines() -> list[str]:
    """Header and the first TABLE_ROWS rows of the shipped nb201 table."""
    with gzip.open(SHIPPED / "nb201_table.csv.gz", "rt", encoding="utf-8", newline="") as fh:
        return [next(fh) for _ in range(TABLE_ROWS + 1)]


def _cell(lines: list[str], row: int, col: str, value: str) -> list[str]:
    """``lines`` with data row ``row`` (1-based) having ``value`` in column ``col``."""
    header = lines[0].rstrip("\n").split(",")
    cells = lines[row].rstrip("\n").split(",")
    cells[header.index(col)] = value
    return lines[:row] + [",".join(cells) + "\n"] + lines[row + 1:]


def _gz(text: str) -> bytes:
    return gzip.compress(text.encode("utf-8"), mtime=0)


def _table_data(name: str, lines: list[str]) -> bytes:
    text = "".join(lines)
    damaged = {
        "ok": lambda: _gz(text),
        "truncated_gz": lambda: _gz(text)[: len(_gz(text)) // 2],
        "cut_mid_row": lambda: _gz("".join(lines[:150]) + lines[150][: len(lines[150]) // 2]),
        "inf_accuracy": lambda: _gz("".join(_cell(lines, 7, "c10valid_valid_200ep", "inf"))),
        "huge_accuracy": lambda: _gz("".join(_cell(lines, 7, "c10_test_200ep", "1e400"))),
        "negative_accuracy": lambda: _gz("".join(_cell(lines, 7, "c10_test_200ep", "-5"))),
        "accuracy_over_100": lambda: _gz("".join(_cell(lines, 7, "c10_test_200ep", "250"))),
        "short_row": lambda: _gz("".join(lines[:20]) + ",".join(lines[20].split(",")[:10]) + "\n"
                                 + "".join(lines[21:])),
        "long_row": lambda: _gz("".join(lines[:20]) + lines[20].rstrip("\n") + ",1,2,3\n"
                                + "".join(lines[21:])),
        "header_only": lambda: _gz(lines[0]),
        "empty_gz": lambda: _gz(""),
        "zero_bytes": lambda: b"",
        "duplicate_index": lambda: _gz("".join(lines + [lines[5]])),
        "index_out_of_range": lambda: _gz("".join(_cell(_cell(lines, 9, "index", "99999"), 9, "arch_str",
                                                        ""))),
        "index_fraction": lambda: _gz("".join(_cell(lines, 9, "index", "8.5"))),
        "arch_mismatch": lambda: _gz("".join(_cell(lines, 9, "index", "9000"))),
        "invalid_utf8": lambda: gzip.compress(
            text.encode().replace(b"avg_pool_3x3~0", b"avg_p\xffol_3x3~0", 1), mtime=0),
        "not_gzip": lambda: text.encode(),
    }
    damaged["passwd_index"] = damaged["missing_index_file"] = damaged["ok"]
    return damaged[name]()


def _build_table(folder: Path, name: str, lines: list[str]) -> Path:
    folder.mkdir(parents=True)
    spec = (SHIPPED / "nb201_table.yaml").read_text(encoding="utf-8")
    spec = spec.replace("name: nb201_table", f"name: nb201_cut_{name}")
    (folder / "data.csv.gz").write_bytes(_table_data(name, lines))
    spec = spec.replace("data: nb201_table.csv.gz", "data: data.csv.gz")
    if name in ("passwd_index", "missing_index_file"):
        index = "/etc/passwd" if name == "passwd_index" else "no_such_index.csv.gz"
        space = (SHIPPED / "nb201.yaml").read_text(encoding="utf-8")
        (folder / "space.yaml").write_text(space.replace("official_index: nb201_index.csv.gz",
                                                         f"official_index: {index}"), encoding="utf-8")
        spec = spec.replace("space: nb201", "space: space.yaml")
    (folder / "table.yaml").write_text(spec, encoding="utf-8")
    return folder / "table.yaml"


TABLE_DAMAGE = ("ok", "truncated_gz", "cut_mid_row", "inf_accuracy", "huge_accuracy", "negative_accuracy",
                "accuracy_over_100", "short_row", "long_row", "header_only", "empty_gz", "zero_bytes",
                "duplicate_index", "index_out_of_range", "index_fraction", "arch_mismatch", "invalid_utf8",
                "not_gzip", "passwd_index", "missing_index_file")


# ---------------------------------------------------------------------- running a case
class _CaseTimeout(BaseException):
    """Raised by the guard alarm; a BaseException so that no `except Exception` swallows it."""


@contextlib.contextmanager
def _guards():
    def alarm(signum, frame):
        raise _CaseTimeout(f"stopped by the {GUARD_SECONDS} s guard")

    old_handler = signal.signal(signal.SIGALRM, alarm)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    vm = next(int(line.split()[1]) * 1024 for line in Path("/proc/self/status").read_text().splitlines()
              if line.startswith("VmSize:"))
    cap = vm + GUARD_EXTRA_ADDRESS_SPACE
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    signal.setitimer(signal.ITIMER_REAL, GUARD_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _show_warning(message, category, filename, lineno, file=None, line=None):
    # What the interpreter does outside pytest: a warning is printed on stderr.
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


@dataclass
class Outcome:
    code: int | None
    stderr: str
    wall: float
    peak: int


def run_in_process(argv: list[str], capfd) -> Outcome:
    """Run ``nasco ARGV`` through ``main`` as the console script would, measuring it.

    The wall time and the tracemalloc peak cover ``main`` only: process start-up and the
    imports of torch, pandas and nasco (about 3 s and 400 MB RSS on a cold start, the same
    for every command, good input or bad) are paid once, before, by the session fixture. What
    is measured is what the bad input itself costs. An exception escaping ``main`` is printed
    as the interpreter would (traceback, exit 1)."""
    # Garbage left by earlier tests (an unclosed file's ResourceWarning) is collected here, not
    # in the middle of the case, where its warning would count as one of the case's lines.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    capfd.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = _show_warning
        tracemalloc.start()
        t0 = time.perf_counter()
        try:
            with _guards():
                code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # noqa: BLE001 - what escapes main is what the user would see
            sys.stderr.write(traceback.format_exc())
            code = 1
        wall = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    err = capfd.readouterr().err
    return Outcome(code, err, wall, peak)


def _verdict(case: Case, argv: list[str], mentions: list[str], o: Outcome,
             check_cost: bool = True) -> list[str]:
    """What is wrong with the outcome of a case (empty: it passed)."""
    lines = [ln for ln in o.stderr.splitlines() if ln.strip()]
    problems = []
    if o.code != 2:
        problems.append(f"exit {o.code} (want 2)")
    if len(lines) != 1 or len(o.stderr.strip().splitlines()) != 1:
        problems.append(f"{len(o.stderr.strip().splitlines())} stderr lines (want 1)")
    if "Traceback" in o.stderr:
        problems.append("a traceback")
    missing = [m for m in mentions if lines and not any(m in ln for ln in lines[-1:])]
    if missing:
        problems.append(f"the line does not name {', '.join(repr(m) for m in missing)}")
    if check_cost and o.wall >= WALL_LIMIT_S:
        problems.append(f"{o.wall:.2f} s (limit {WALL_LIMIT_S:g})")
    if check_cost and o.peak >= PEAK_LIMIT_BYTES:
        problems.append(f"peak {o.peak / 2**20:.0f} MB (limit {PEAK_LIMIT_BYTES / 2**20:.0f})")
    if not problems:
        return []
    head = " | ".join(ln[:300] for ln in o.stderr.strip().splitlines()[-3:]) or "(stderr empty)"
    return [f"case {case.id} ({case.mistake}): " + "; ".join(problems)
            + f" [exit {o.code}, {len(lines)} lines, {o.wall:.2f} s, peak {o.peak / 2**20:.0f} MB]"
            + f"\n  argv: nasco {shlex.join(argv)}\n  stderr (last lines): {head}"]


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module", autouse=True)
def _frozen_heap():
    """Every object alive when this module starts is collected once and then frozen (``gc.freeze``),
    so the ``gc.collect()`` before each case scans only what the cases made, not the heap the
    whole suite has built up (see the README's Tests and CI). Unfrozen when the module ends."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.fixture(scope="session")
def corpus_env(tmp_path_factory):
    """A table cache, one tiny real run, the damaged tables, and every import done (see run_in_process)."""
    import optuna  # noqa: F401
    import pandas  # noqa: F401
    import sqlalchemy  # noqa: F401
    import torch  # noqa: F401

    # The rest of the imports the commands make lazily (cost, validate, the evaluators).
    import nasco.evaluate  # noqa: F401
    import nasco.nn  # noqa: F401

    root = tmp_path_factory.mktemp("bad-inputs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NASCO_CACHE", str(root / "cache"))
        base = root / "base-run"
        ledger = str(base / "ledger.jsonl")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            for argv in (["search", "--space", "nb201", "--evaluator", "table", "--table", "nb201",
                          "--budget", "4", "--seed", "0", "--out", str(base), "--quiet"],
                         ["cost", "--hw", "systolic_template", "--workload", "example"],
                         ["cost", "--hw", "systolic_template", "--workload", ledger, "--row", "0"],
                         ["validate", "nb201", "darts_snn", "asic_template", "hetero_2task", "horowitz_45nm"],
                         ["table", "info", "nb201"]):
                assert main(argv) == 0, argv
        lines = _csv_lines()
        tables = {name: _build_table(root / "tables" / name, name, lines) for name in TABLE_DAMAGE}
        yield {"root": root, "base": base, "tables": tables}


def _expand(case: Case, env: dict, work: Path) -> tuple[list[str], list[str]]:
    """(argv, mentions) of a case with its placeholders filled in; builds what they name."""
    work.mkdir(parents=True, exist_ok=True)
    subs = {"{corpus}": str(CORPUS), "{dsl}": str(DSL_CORPUS), "{shipped}": str(SHIPPED),
            "{out}": str(work / "out"), "{file}": str(work / "file.txt")}
    (work / "file.txt").write_text("a regular file, not a directory\n", encoding="utf-8")
    argv = []
    for tok in shlex.split(case.argv):
        if "{run:" in tok:
            name = tok[tok.index("{run:") + 5: tok.index("}", tok.index("{run:"))]
            run = work / "run"
            if not run.exists():
                shutil.copytree(env["base"], run)
                RUN_DAMAGE[name](run)
            subs["{run}"] = str(run)
            tok = tok.replace(f"{{run:{name}}}", str(run))
        if "{table:" in tok:
            name = tok[tok.index("{table:") + 7: tok.index("}", tok.index("{table:"))]
            subs["{tabledir}"] = str(env["tables"][name].parent)
            tok = tok.replace(f"{{table:{name}}}", str(env["tables"][name]))
        for k, v in subs.items():
            tok = tok.replace(k, v)
        argv.append(tok)
    mentions = []
    for m in case.mentions.split(";"):
        for k, v in subs.items():
            m = m.replace(k, v)
        if m:
            mentions.append(m)
    return argv, mentions


# ---------------------------------------------------------------------- the tests
def test_manifest_is_well_formed():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "a case id is used twice"
    assert len(CASES) >= 200
    assert sum(c.subprocess for c in CASES) == 5
    for c in CASES:
        assert c.mentions and c.mistake, c.id
        for tok in shlex.split(c.argv):
            if "{run:" in tok:
                assert tok.split("{run:")[1].split("}")[0] in RUN_DAMAGE, c.id
            if "{table:" in tok:
                assert tok.split("{table:")[1].split("}")[0] in TABLE_DAMAGE, c.id
    used = {p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*") if p.is_file()} - {"manifest.csv"}
    named = {tok.split("{corpus}/")[1] for c in CASES for tok in shlex.split(c.argv) if "{corpus}/" in tok}
    assert used <= named, f"files no case uses: {sorted(used - named)}"


CONTROLS = [Case(f"control-{i}", argv, "", False, "no mistake") for i, argv in enumerate((
    "search --resume --out {run:ok} --quiet",
    "cost --hw systolic_template --workload {run:ok}/ledger.jsonl --row 0",
    "table info {table:ok}",
    "table query {table:ok} --metric c10_test_200ep --index 1",
))]


@pytest.mark.parametrize("case", CONTROLS, ids=[c.id for c in CONTROLS])
def test_undamaged_fixtures_work(case, corpus_env, capfd, tmp_path, monkeypatch):
    """The controls: the undamaged run resumes and costs, the undamaged table cut loads and answers,
    through the same placeholders as the cases, so what fails in a case is its damage."""
    monkeypatch.chdir(tmp_path)
    argv, _ = _expand(case, corpus_env, tmp_path / "case")
    o = run_in_process(argv, capfd)
    assert o.code == 0, (argv, o.stderr)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gives_one_line(case, corpus_env, capfd, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a run without --out would write runs/ here
    argv, mentions = _expand(case, corpus_env, tmp_path / "case")
    outcome = run_in_process(argv, capfd)
    problems = _verdict(case, argv, mentions, outcome)
    assert not problems, problems[0]


SUBPROCESS_CASES = [c for c in CASES if c.subprocess]


@pytest.mark.parametrize("case", SUBPROCESS_CASES, ids=[c.id for c in SUBPROCESS_CASES])
def test_bad_input_from_a_fresh_process(case, corpus_env, tmp_path):
    """The same from `python -m nasco` in a new process: exit 2, one line (start-up included,
    so no time or memory limit here)."""
    argv, mentions = _expand(case, corpus_env, tmp_path / "case")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", NASCO_CACHE=os.environ["NASCO_CACHE"])
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "nasco", *argv], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=SUBPROCESS_TIMEOUT_S)
    o = Outcome(res.returncode, res.stderr, time.perf_counter() - t0, 0)
    problems = _verdict(case, argv, mentions, o, check_cost=False)
    assert not problems, problems[0]
