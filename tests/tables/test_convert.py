"""Converters for the official NB201-family release files, tested on tiny files built in the same structures.

The builders mirror the official layouts (see nasco/tables/_convert.py's docstring for sources): ArchResults /
ResultsCount state dicts as in D-X-Y/NATS-Bench api_utils.py, the NATS "simple" archive of bz2 pickles, the
NAS-Bench-201 .pth dict with 'less'/'full', and the HW-NAS-Bench pickle.
"""
from __future__ import annotations

import bz2
import pickle
import tarfile
from pathlib import Path

import pytest
import torch

from nasco.tables._convert import FORMATS, ConvertError, convert, describe

torch.set_num_threads(1)

ARCHS = [
    # official indexes 0 and 1 (shared/data/nb201/nb201_accuracy.csv.gz), then two made-up but valid cells
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
]
SEEDS = {"cifar10-valid": [777, 888], "cifar10": [777], "cifar100": [777, 999], "ImageNet16-120": [777]}
SETS = {"cifar10-valid": ["x-valid", "ori-test"], "cifar10": ["ori-test"],
        "cifar100": ["ori-test", "x-valid", "x-test"], "ImageNet16-120": ["ori-test", "x-valid", "x-test"]}
SET_OFFSET = {"x-valid": 0.1, "x-test": 0.2, "ori-test": 0.3}
DS_OFFSET = {"cifar10-valid": 1.0, "cifar10": 2.0, "cifar100": 3.0, "ImageNet16-120": 4.0}


def acc(index: int, epochs: int, dataset: str, name: str, seed: int) -> float:
    return 10.0 * index + epochs / 10 + DS_OFFSET[dataset] + SET_OFFSET[name] + seed / 1000


def result_state(index: int, epochs: int, dataset: str, seed: int) -> dict:
    """A ResultsCount.state_dict(): every attribute of api_utils.ResultsCount."""
    evals = {f"{n}@{e}": (acc(index, epochs, dataset, n, seed) if e == epochs - 1 else 1.0)
             for n in SETS[dataset] for e in range(epochs)}
    return {
        "name": f"{dataset}-seed-{seed}", "net_state_dict": None,
        "train_acc1es": {e: (50.0 + index + seed / 1000 if e == epochs - 1 else 1.0) for e in range(epochs)},
        "train_acc5es": None, "train_losses": {e: 1.0 for e in range(epochs)},
        "train_times": {e: 0.5 for e in range(epochs)},
        "arch_config": {"channel": 16, "num_cells": 5, "arch_str": ARCHS[index], "class_num": 10},
        "params": 0.1 * (index + 1) + DS_OFFSET[dataset], "flop": 10.0 * (index + 1) + DS_OFFSET[dataset],
        "seed": seed, "epochs": epochs, "latency": [0.001 * (index + 1), 0.003 * (index + 1)],
        "eval_names": list(SETS[dataset]), "eval_acc1es": evals,
        "eval_times": {k: 0.1 for k in evals}, "eval_losses": {k: 2.0 for k in evals},
    }


def arch_state(index: int, epochs: int) -> dict:
    """An ArchResults.state_dict()."""
    return {"arch_index": index, "arch_str": ARCHS[index], "clear_net_done": True,
            "all_results": {(d, s): result_state(index, epochs, d, s)
                            for d, seeds in SEEDS.items() for s in seeds},
            "dataset_seed": {d: list(s) for d, s in SEEDS.items()}}


def bz2_pickle(obj: object, path: Path) -> None:
    with bz2.BZ2File(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=4)


@pytest.fixture
def nats_dir(tmp_path: Path) -> Path:
    root = tmp_path / "NATS-tss-v1_0-3ffb9-simple"
    root.mkdir()
    bz2_pickle({"meta_archs": ARCHS, "total_archs": len(ARCHS)}, root / "meta.pickle.pbz2")
    for i in range(len(ARCHS)):
        bz2_pickle({"12": arch_state(i, 12), "200": arch_state(i, 200)}, root / f"{i:06d}.pickle.pbz2")
    return root


@pytest.fixture
def nats_tar(nats_dir: Path) -> Path:
    out = nats_dir.parent / "NATS-tss-v1_0-3ffb9-simple.tar"
    with tarfile.open(out, "w") as tar:
        tar.add(nats_dir, arcname=nats_dir.name)
    return out


@pytest.fixture
def pth(tmp_path: Path) -> Path:
    out = tmp_path / "NAS-Bench-201-v1_1-096897.pth"
    torch.save({"meta_archs": ARCHS, "total_archs": len(ARCHS), "evaluated_indexes": list(range(len(ARCHS))),
                "arch2infos": {i: {"less": arch_state(i, 12), "full": arch_state(i, 200)}
                               for i in range(len(ARCHS))}}, out)
    return out


HW_METRICS = ["edgegpu_latency", "edgegpu_energy", "raspi4_latency", "edgetpu_latency", "pixel3_latency",
              "eyeriss_latency", "eyeriss_energy", "eyeriss_arithmetic_intensity", "fpga_latency",
              "fpga_energy"]


def hw_value(index: int, dataset: str, metric: str) -> float:
    return 1.0 + index + 0.01 * HW_METRICS.index(metric) + DS_OFFSET[dataset]


def hw_space() -> dict:
    space = {}
    for ds, n_cls in (("cifar10", 10), ("cifar100", 100), ("ImageNet16-120", 120)):
        part = {m: [hw_value(i, ds, m) for i in range(len(ARCHS))] for m in HW_METRICS}
        part["config"] = [{"name": "infer.tiny", "C": 16, "N": 5, "arch_str": a, "num_classes": n_cls}
                          for a in ARCHS]
        space[ds] = part
    return space


@pytest.fixture
def hw_pickle(tmp_path: Path) -> Path:
    out = tmp_path / "HW-NAS-Bench-v1_0.pickle"
    out.write_bytes(pickle.dumps({"nasbench201": hw_space(), "fbnet": {"edgegpu_latency": {"op": 1.0}}}))
    return out


def one_line_error(path: Path, fmt: str, match: str, **kw) -> str:
    kw.setdefault("trust_pickle", True)
    with pytest.raises(ConvertError, match=match) as info:
        convert(path, fmt, **kw)
    msg = str(info.value)
    assert "\n" not in msg and "Traceback" not in msg
    assert str(path) in msg
    return msg


# ---------------------------------------------------------------------------------------------- tests


def test_formats_and_describe():
    assert FORMATS == ("nats", "nb201-pth", "hwnasbench-pickle")
    for fmt in FORMATS:
        assert describe(fmt).startswith(fmt + ": ") and "\n" not in describe(fmt)
    with pytest.raises(ConvertError, match="did you mean 'nats'"):
        describe("natss")


def check_accuracy_table(df, n=len(ARCHS)):
    assert list(df["index"]) == list(range(n))
    assert list(df["arch_str"]) == ARCHS[:n]
    assert list(df.columns[:3]) == ["index", "arch_str", "n_seeds"]
    for i in range(n):
        row = df.iloc[i]
        assert row["n_seeds"] == 2
        for hp in (12, 200):
            for col, dataset, name in (("c10valid_valid", "cifar10-valid", "x-valid"),
                                       ("c10valid_test", "cifar10-valid", "ori-test"),
                                       ("c10_test", "cifar10", "ori-test"),
                                       ("c100_valid", "cifar100", "x-valid"),
                                       ("c100_test", "cifar100", "x-test"),
                                       ("c100_valtest", "cifar100", "ori-test"),
                                       ("in16_valid", "ImageNet16-120", "x-valid"),
                                       ("in16_test", "ImageNet16-120", "x-test"),
                                       ("in16_valtest", "ImageNet16-120", "ori-test")):
                want = sum(acc(i, hp, dataset, name, s) for s in SEEDS[dataset]) / len(SEEDS[dataset])
                assert row[f"{col}_{hp}ep"] == pytest.approx(want, abs=1e-12), (i, hp, col)
            assert row[f"c10_train_{hp}ep"] == pytest.approx(50.0 + i + 0.777)
        assert row["c10_flops_m"] == pytest.approx(10.0 * (i + 1) + 2.0)
        assert row["in16_params_mb"] == pytest.approx(0.1 * (i + 1) + 4.0)
        assert row["c100_bench_latency_ms"] == pytest.approx(2.0 * (i + 1))  # mean of 1 and 3 ms
    assert "c10_valid_200ep" not in df  # cifar10 (train+valid) has no validation set


def test_nats_directory(nats_dir):
    df = convert(nats_dir, "nats", trust_pickle=True)
    check_accuracy_table(df)
    assert df["index"].dtype == "int64"


def test_nats_tar_matches_directory(nats_dir, nats_tar):
    from pandas.testing import assert_frame_equal
    assert_frame_equal(convert(nats_tar, "nats", trust_pickle=True),
                       convert(nats_dir, "nats", trust_pickle=True))


def test_nats_single_file_pickle(tmp_path):
    out = tmp_path / "NATS-tss-v1_0-3ffb9.pickle.pbz2"
    bz2_pickle({"meta_archs": ARCHS, "evaluated_indexes": set(range(4)),
                "arch2infos": {i: {"12": arch_state(i, 12), "200": arch_state(i, 200)} for i in range(4)}},
               out)
    check_accuracy_table(convert(out, "nats", trust_pickle=True))


def test_nb201_pth(pth):
    check_accuracy_table(convert(pth, "nb201-pth", trust_pickle=True))


def test_max_rows(nats_tar, pth, hw_pickle):
    check_accuracy_table(convert(nats_tar, "nats", trust_pickle=True, max_rows=2), n=2)
    check_accuracy_table(convert(pth, "nb201-pth", trust_pickle=True, max_rows=3), n=3)
    assert len(convert(hw_pickle, "hwnasbench-pickle", trust_pickle=True, max_rows=1)) == 1
    with pytest.raises(ConvertError, match="max_rows"):
        convert(pth, "nb201-pth", trust_pickle=True, max_rows=0)


def test_hwnasbench(hw_pickle):
    df = convert(hw_pickle, "hwnasbench-pickle", trust_pickle=True)
    assert list(df["index"]) == [0, 1, 2, 3] and list(df["arch_str"]) == ARCHS
    for i in range(4):
        row = df.iloc[i]
        assert row["eyeriss_ms"] == hw_value(i, "cifar10", "eyeriss_latency")
        assert row["fpga_ms"] == hw_value(i, "cifar10", "fpga_latency")
        assert row["raspi4_ms"] == hw_value(i, "cifar10", "raspi4_latency")
        assert row["pixel3_ms"] == hw_value(i, "cifar10", "pixel3_latency")
        assert row["edgetpu_ms"] == hw_value(i, "cifar10", "edgetpu_latency")
        assert row["eyeriss_mj"] == hw_value(i, "cifar10", "eyeriss_energy")
        assert row["edgegpu_mj"] == hw_value(i, "cifar10", "edgegpu_energy")
        assert row["eyeriss_arith_intensity"] == hw_value(i, "cifar10", "eyeriss_arithmetic_intensity")
        assert row["c100_fpga_mj"] == hw_value(i, "cifar100", "fpga_energy")
        assert row["in16_eyeriss_ms"] == hw_value(i, "ImageNet16-120", "eyeriss_latency")
    assert len(df.columns) == 2 + 3 * len(HW_METRICS)


@pytest.mark.parametrize("fmt", FORMATS)
def test_refuses_to_unpickle_without_trust(fmt, nats_tar, pth, hw_pickle):
    path = {"nats": nats_tar, "nb201-pth": pth, "hwnasbench-pickle": hw_pickle}[fmt]
    msg = one_line_error(path, fmt, "--trust-pickle", trust_pickle=False)
    assert "runs code" in msg


def test_unknown_format_and_missing_path(tmp_path, pth):
    with pytest.raises(ConvertError, match="unknown format 'nb201'.*did you mean 'nb201-pth'"):
        convert(pth, "nb201", trust_pickle=True)
    one_line_error(tmp_path / "nope.pth", "nb201-pth", "no such file")


def test_wrong_format(nats_dir, nats_tar, pth, hw_pickle):
    one_line_error(pth, "nats", "not a NATS-Bench.*zip file.*nb201-pth")
    one_line_error(nats_tar, "nb201-pth", "not a NAS-Bench-201.*tar archive.*'nats'")
    one_line_error(nats_dir, "hwnasbench-pickle", "not an HW-NAS-Bench pickle.*directory")
    one_line_error(hw_pickle, "nb201-pth", "corrupt or not in the expected format")
    one_line_error(pth, "hwnasbench-pickle", "not an HW-NAS-Bench pickle.*zip")
    one_line_error(hw_pickle, "nats", "not a NATS-Bench")


def test_truncated_files(tmp_path, nats_dir, nats_tar, pth, hw_pickle):
    for path in (nats_tar, pth, hw_pickle):
        data = path.read_bytes()
        path.write_bytes(data[: len(data) * 3 // 5])
    one_line_error(nats_tar, "nats", "truncated|corrupt|missing|incomplete")
    one_line_error(pth, "nb201-pth", "corrupt or not in the expected format")
    one_line_error(hw_pickle, "hwnasbench-pickle", "truncated")
    member = nats_dir / "000002.pickle.pbz2"
    member.write_bytes(member.read_bytes()[:100])
    one_line_error(nats_dir, "nats", r"000002\.pickle\.pbz2: this bz2 pickle is truncated")


def test_incomplete_nats_archive(nats_dir):
    (nats_dir / "000003.pickle.pbz2").unlink()
    one_line_error(nats_dir, "nats", "missing 000003.pickle.pbz2")
    (nats_dir / "meta.pickle.pbz2").unlink()
    one_line_error(nats_dir, "nats", "missing meta.pickle.pbz2")


def test_missing_keys(tmp_path, nats_dir):
    out = tmp_path / "bad.pth"
    torch.save({"meta_archs": ARCHS, "evaluated_indexes": []}, out)
    one_line_error(out, "nb201-pth", "missing key 'arch2infos'")

    state = arch_state(1, 12)
    del state["all_results"][("cifar100", 999)]["eval_acc1es"]["x-test@11"]
    torch.save({"meta_archs": ARCHS, "arch2infos": {1: {"less": state}}}, out)
    msg = one_line_error(out, "nb201-pth", "missing key 'x-test@11'")
    assert "arch 1" in msg and "cifar100 seed 999" in msg

    bad = arch_state(2, 200)
    del bad["dataset_seed"]
    bz2_pickle({"200": bad}, nats_dir / "000002.pickle.pbz2")
    one_line_error(nats_dir, "nats", r"000002\.pickle\.pbz2 schedule '200': missing key 'dataset_seed'")

    space = hw_space()
    space["cifar100"]["fpga_latency"] = space["cifar100"]["fpga_latency"][:3]
    hw = tmp_path / "hw.pickle"
    hw.write_bytes(pickle.dumps({"nasbench201": space}))
    one_line_error(hw, "hwnasbench-pickle", "cifar100/fpga_latency: has 3 entries, expected 4")
    space = hw_space()
    del space["ImageNet16-120"]["eyeriss_energy"]
    hw.write_bytes(pickle.dumps({"nasbench201": space}))
    one_line_error(hw, "hwnasbench-pickle", "ImageNet16-120: missing key 'eyeriss_energy'")
    hw.write_bytes(pickle.dumps({"fbnet": {}}))
    one_line_error(hw, "hwnasbench-pickle", "missing key 'nasbench201'")


def test_bad_arch_strings(tmp_path, nats_dir):
    bz2_pickle({"meta_archs": ARCHS[:2] + ["|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|"]},
               nats_dir / "meta.pickle.pbz2")
    msg = one_line_error(nats_dir, "nats", r"meta_archs\[2\]: bad arch string")
    assert "conv_5x5" in msg
    state = arch_state(0, 12)
    state["arch_str"] = ARCHS[3]
    out = tmp_path / "bad.pth"
    torch.save({"meta_archs": ARCHS, "arch2infos": {0: {"less": state}}}, out)
    one_line_error(out, "nb201-pth", "differs from the index's")
    space = hw_space()
    space["cifar10"]["config"][1]["arch_str"] = "|nor_conv_3x3~1|+|none~0|none~1|+|none~0|none~1|none~2|"
    hw = tmp_path / "hw.pickle"
    hw.write_bytes(pickle.dumps({"nasbench201": space}))
    one_line_error(hw, "hwnasbench-pickle", r"config\[1\]: bad arch string")


def test_wrong_types_deep_inside_are_convert_errors(tmp_path):
    state = arch_state(0, 12)
    state["dataset_seed"]["cifar10"] = 5  # not a list of seeds
    out = tmp_path / "bad.pth"
    torch.save({"meta_archs": ARCHS, "arch2infos": {0: {"less": state}}}, out)
    one_line_error(out, "nb201-pth", "not in the nb201-pth layout")


def test_hwnasbench_extra_keys(tmp_path):
    space = hw_space()
    space["cifar10"]["edgegpu_power"] = [0.5, 0.6, 0.7, 0.8]  # an unknown per-arch list keeps its name
    space["cifar10"]["version"] = "1.0"  # not per-architecture: left out, with a warning
    hw = tmp_path / "hw.pickle"
    hw.write_bytes(pickle.dumps({"nasbench201": space}))
    with pytest.warns(UserWarning, match="version.*left out"):
        df = convert(hw, "hwnasbench-pickle", trust_pickle=True)
    assert list(df["edgegpu_power"]) == [0.5, 0.6, 0.7, 0.8] and "version" not in df


def test_cli_import_format_writes_the_converted_parquet(tmp_path, pth, capsys):
    import pandas as pd

    from nasco.cli import main

    out = tmp_path / "converted"
    for argv, msg in (([str(pth), "--format", "nb201-pth", "--out", str(out)], "--trust-pickle"),
                      ([str(pth), "--format", "nb201-pth", "--trust-pickle"], "--format needs --out DIR"),
                      ([str(tmp_path / "nope.pth"), "--format", "nb201-pth", "--out", str(out), "--trust-pickle"],
                       "no such file")):
        with pytest.raises(SystemExit) as e:
            main(["table", "import", *argv])
        err = capsys.readouterr().err
        assert e.value.code == 2 and msg in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()  # nothing half-written
    assert main(["table", "import", str(pth), "--format", "nb201-pth", "--out", str(out), "--trust-pickle"]) == 0
    dest = out / "NAS-Bench-201-v1_1-096897.parquet"
    assert f"{dest}: {len(ARCHS)} rows" in capsys.readouterr().out
    got = pd.read_parquet(dest)
    check_accuracy_table(got)
    pd.testing.assert_frame_equal(got, convert(pth, "nb201-pth", trust_pickle=True))
