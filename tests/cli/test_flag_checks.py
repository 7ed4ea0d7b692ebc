"""Flag values the CLI refuses before any work: one line naming the flag, exit code 2."""
from __future__ import annotations

import argparse

import pytest

from nasco.cli import main
from nasco.cli._common import float_in, int_in, key_value, nonempty
from nasco.cli._cost import MAX_INPUT_SIDE, _parse_shape
from nasco.cli._search import _check_gpu, _device, _ref_point_text
from nasco.cli._table import _index

TABLE_SEARCH = ["search", "--space", "nb201", "--evaluator", "table", "--table", "nb201", "--budget", "2",
                "--quiet"]
TRAIN_SEARCH = ["search", "--space", "nb201", "--budget", "1", "--epochs", "1", "--limit", "64", "--quiet"]


def run_cli(capsys, argv: list[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("argv,line", [
    (["cost", "--hw", "systolic_template", "--workload", "example", "--spike-rate", "-1"],
     "argument --spike-rate: expected a finite number in [0, 1], found '-1'; see 'nasco cost --help'"),
    (["cost", "--hw", "systolic_template", "--workload", "example", "--spike-rate", "nan"],
     "argument --spike-rate: expected a finite number in [0, 1], found 'nan'; see 'nasco cost --help'"),
    (["cost", "--hw", "systolic_template", "--workload", "example", "--spike-rate", "7"],
     "argument --spike-rate: expected a finite number in [0, 1], found '7'; see 'nasco cost --help'"),
    (["cost", "--workload", "x.json", "--input-shape", "0,8,8"],
     "argument --input-shape: expected C,H,W, three integers in [1, 65536], such as 1,8,8, found '0,8,8'; "
     "see 'nasco cost --help'"),
    (["cost", "--workload", "x.json", "--input-shape", "1,-8,8"],
     "argument --input-shape: expected C,H,W, three integers in [1, 65536], such as 1,8,8, found '1,-8,8'; "
     "see 'nasco cost --help'"),
    (["cost", "--workload", "x.json", "--input-shape", "1,1000000000,1000000000"],
     "argument --input-shape: expected C,H,W, three integers in [1, 65536], such as 1,8,8, found "
     "'1,1000000000,1000000000'; see 'nasco cost --help'"),
    (["cost", "--workload", "x.json", "--classes", "0"],
     "argument --classes: expected an integer >= 1, found '0'; see 'nasco cost --help'"),
    (["cost", "--workload", "x.json", "--classes", "-10"],
     "argument --classes: expected an integer >= 1, found '-10'; see 'nasco cost --help'"),
    (["cost", "--hw", "systolic_template", "--workload", "example", "--set", "=ws"],
     "argument --set: expected KEY=VALUE with a dotted KEY such as dataflow=ws or macro.cells=3, "
     "found '=ws'; see 'nasco cost --help'"),
    (["table", "query", "nb201", "--metric", "c10_test_200ep", "--index", "100000000000000000000000"],
     "argument --index: expected an official index, an integer in int64 range (below 2**63), found "
     "'100000000000000000000000'; see 'nasco table query --help'"),
    ([*TABLE_SEARCH, "--searcher", ""],
     "argument --searcher: expected a searcher name (see 'nasco searchers'), found an empty value; "
     "see 'nasco search --help'"),
    ([*TABLE_SEARCH, "--ref-point", "accuracy=nan"],
     "argument --ref-point: expected NAME=NUMBER[,NAME=NUMBER...] with finite numbers, found 'accuracy=nan'; "
     "see 'nasco search --help'"),
    ([*TABLE_SEARCH, "--trial-timeout", "nan"], "--trial-timeout must be > 0, found nan"),
    ([*TABLE_SEARCH, "--executor", "ray", "--cpus-per-trial", "nan"],
     "--cpus-per-trial must be > 0, found nan"),
    ([*TABLE_SEARCH, "--executor", "ray", "--gpus-per-trial", "nan"],
     "--gpus-per-trial must be >= 0, found nan"),
    ([*TABLE_SEARCH, "--threads", "0"],
     "argument --threads: expected an integer >= 1, found '0'; see 'nasco search --help'"),
    ([*TRAIN_SEARCH, "--threads", "-1"],
     "argument --threads: expected an integer >= 1, found '-1'; see 'nasco search --help'"),
    ([*TRAIN_SEARCH, "--epochs", "0"],
     "argument --epochs: expected an integer >= 1, found '0'; see 'nasco search --help'"),
    ([*TRAIN_SEARCH, "--max-train-seconds", "-1"],
     "argument --max-train-seconds: expected a finite number > 0, found '-1'; see 'nasco search --help'"),
    ([*TRAIN_SEARCH, "--max-train-seconds", "nan"],
     "argument --max-train-seconds: expected a finite number > 0, found 'nan'; see 'nasco search --help'"),
    ([*TRAIN_SEARCH, "--device", "tpu"],
     "argument --device: expected auto, cpu, cuda or cuda:N, found 'tpu'; see 'nasco search --help'"),
    (["search", "--space", "", "--evaluator", "table", "--budget", "1"],
     "argument --space: expected a built-in space name or a .yaml path, found an empty value; "
     "see 'nasco search --help'"),
    (["--budget", "3"],
     "--budget is a flag of 'nasco search'; put the command first, e.g. 'nasco search --budget 3'"),
    (["--bud", "3"], "--bud is a flag of 'nasco search'; put the command first, e.g. 'nasco search --bud 3'"),
    (["--bogus"],
     "--bogus: not a flag of nasco; give a command first (search, searchers, cost, spaces, validate, table, "
     "export, report, show); "
     "see 'nasco --help'"),
])
def test_a_bad_flag_value_is_one_line_naming_the_flag(capsys, tmp_path, monkeypatch, argv, line):
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(capsys, argv)
    assert (code, err) == (2, f"nasco: error: {line}\n")
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_nascos_own_flags_and_their_prefixes_still_work(capsys):
    import nasco

    for argv in (["--version"], ["--vers"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert (e.value.code, capsys.readouterr().out) == (0, f"nasco {nasco.__version__}\n")


@pytest.mark.parametrize("parse,text,value", [
    (int_in(1), "1", 1), (int_in(0, 5), "5", 5), (float_in(0.0, 1.0), "0", 0.0),
    (float_in(0.0, 1.0), "1", 1.0),
    (float_in(0.0, above=True), "1e-9", 1e-9), (nonempty("x"), "nb201", "nb201"),
    (key_value, "hw.dataflow=ws", "hw.dataflow=ws"), (key_value, "macro.cells=", "macro.cells="),
    (_parse_shape, f"3,{MAX_INPUT_SIDE},1", (3, MAX_INPUT_SIDE, 1)), (_device, "cuda:3", "cuda:3"),
    (_device, "auto", "auto"), (_index, str(2**63 - 1), 2**63 - 1), (_index, "-1", -1),
    (_ref_point_text, "energy=1e-4,latency=5", "energy=1e-4,latency=5"),
])
def test_the_edges_of_each_range_are_accepted(parse, text, value):
    assert parse(text) == value


@pytest.mark.parametrize("parse,text", [
    (int_in(1), "0"), (int_in(0, 5), "6"), (int_in(1), "1.5"), (float_in(0.0, 1.0), "-0.001"),
    (float_in(0.0, 1.0), "inf"), (float_in(0.0, above=True), "0"), (float_in(0.0, above=True), "inf"),
    (nonempty("x"), "  "),
    (key_value, "macro..cells=3"), (key_value, "dataflow"), (_parse_shape, f"1,{MAX_INPUT_SIDE + 1},1"),
    (_parse_shape, "1,8"), (_device, "cuda:"), (_device, "gpu"), (_ref_point_text, "energy=inf"),
    (_ref_point_text, "=1"), (_index, str(2**63)), (_index, "1.5"),
])
def test_just_outside_each_range_is_refused(parse, text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse(text)


def test_out_under_a_regular_file(capsys, tmp_path):
    (tmp_path / "file.txt").write_text("not a folder\n")
    out = tmp_path / "file.txt" / "run"
    code, err = run_cli(capsys, [*TABLE_SEARCH, "--out", str(out)])
    assert (code, err) == (2, f"nasco: error: --out {out}: {tmp_path / 'file.txt'} is a file, not a folder; "
                              "choose a run directory outside it\n")


def test_storage_that_is_a_regular_file(capsys, tmp_path):
    (tmp_path / "file.txt").write_text("not a folder\n")
    code, err = run_cli(capsys, [*TABLE_SEARCH, "--storage", str(tmp_path / "file.txt"), "--out", "run"])
    assert (code, err) == (2, f"nasco: error: --storage {tmp_path / 'file.txt'}: a file, not a folder; "
                              "give a directory every node can read and write\n")


def test_device_with_the_table_evaluator(capsys, tmp_path):
    code, err = run_cli(capsys, [*TABLE_SEARCH, "--out", str(tmp_path / "out"), "--device", "cuda:7"])
    assert (code, err) == (2, "nasco: error: --device applies to --evaluator train, oneshot or proxy, "
                              "not table\n")
    assert not (tmp_path / "out").exists()


def test_a_ref_point_for_an_objective_not_searched(capsys, tmp_path):
    code, err = run_cli(capsys, [*TABLE_SEARCH, "--out", str(tmp_path / "out"), "--ref-point", "energy=1e-4"])
    assert (code, err) == (2, "nasco: error: --ref-point energy: not an objective of this search (accuracy); "
                              "bound only the searched objectives (--objectives)\n")
    assert not (tmp_path / "out").exists()


def _gpus(monkeypatch, n: int) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n)


def _args(device: str, executor: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(device=device, executor=executor, ray_address=None)


def test_a_gpu_the_machine_lacks(capsys, tmp_path, monkeypatch):
    _gpus(monkeypatch, 0)
    code, err = run_cli(capsys, [*TRAIN_SEARCH, "--out", str(tmp_path / "out"), "--device", "cuda:99"])
    assert (code, err) == (2, "nasco: error: --device cuda:99: torch sees no GPU on this machine; use "
                              "--device auto or cpu, or run on a machine with that GPU (--executor ray with "
                              "--gpus-per-trial)\n")
    assert not (tmp_path / "out").exists()


def test_gpu_numbers_are_checked_against_the_gpus_torch_sees(monkeypatch):
    _gpus(monkeypatch, 2)
    _check_gpu(_args("cuda:1"))
    _check_gpu(_args("cuda"))
    _check_gpu(_args("cpu"))
    with pytest.raises(ValueError, match=r"^--device cuda:2: torch sees 2 GPUs \(cuda:0\.\.cuda:1\); "):
        _check_gpu(_args("cuda:2"))
    # Ray workers may hold the GPU the driver lacks.
    _gpus(monkeypatch, 0)
    _check_gpu(_args("cuda:0", executor="ray"))
    with pytest.raises(ValueError, match=r"^--device cuda: torch sees no GPU on this machine"):
        _check_gpu(_args("cuda", executor="pool"))
