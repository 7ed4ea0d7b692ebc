"""`nasco export` and Study.export: finding a run's network, the torch format, the sidecar,
training a candidate whose weights the run did not keep, and the one-line refusals."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

import nasco
from nasco.cli import main
from nasco.evaluate import load_dataset
from nasco.evaluate._train import evaluate_accuracy
from nasco.export import SIDECAR, load_torch

# A search small enough for a test: 150 images per split, one epoch, one small cell. No BN after
# the pooling ops, as in the other tiny CLI runs.
TINY = ["--limit", "150", "--epochs", "1", "--quiet", "--set", "cell.pool_bn=false",
        "--set", "macro.cells=2", "--set", "macro.reductions=[1]", "--set", "macro.stem.channels=8"]
SEED = 5


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "snn"
    assert main(["search", "--space", "darts_snn", "--hw", "asic_template", "--budget", "2",
                 "--seed", str(SEED), "--out", str(out), *TINY]) == 0
    return out


def _front(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "pareto.csv")


def _ledger_row(run: Path, row_id: str) -> dict:
    rows = [json.loads(line) for line in (run / "ledger.jsonl").read_text().splitlines()]
    return next(r for r in rows if r["id"] == row_id)


def test_torch_export_reloads_the_trained_network(run, tmp_path, capsys):
    member = _front(run).iloc[0]
    code, out, err = run_cli(capsys, "export", str(run), "--id", member["id"], "--format", "torch",
                             "--out", str(tmp_path / "e"))
    assert code == 0, err
    assert str(tmp_path / "e") in out
    row = _ledger_row(run, member["row_id"])
    key = row["metrics"]["training"]
    # The exported weights are the run's, tensor for tensor.
    kept = load_file(str(run / "trainings" / f"{key}.safetensors"))
    exported = load_file(str(tmp_path / "e" / "network.safetensors"))
    assert kept.keys() == exported.keys()
    assert all(torch.equal(kept[k], exported[k]) for k in kept)
    # Rebuilt from the sidecar alone, the module scores on the run's validation split exactly the
    # accuracy the trainer recorded for it.
    model = load_torch(tmp_path / "e")
    data = load_dataset("digits", seed=SEED, limit=150)
    assert evaluate_accuracy(model, data.x_valid, data.y_valid) == row["metrics"]["valid_accuracy"]


def test_sidecar_says_what_was_exported(run, tmp_path):
    member = _front(run).iloc[-1]
    out = nasco.load_study(run).export(member["id"], "torch", tmp_path / "e")
    meta = json.loads((out / SIDECAR).read_text())
    row = _ledger_row(run, member["row_id"])
    assert meta["format"] == "torch"
    assert meta["id"] == member["id"] and meta["row_id"] == member["row_id"]
    assert meta["arch"] == json.loads(member["arch"]) and meta["hw"] == json.loads(member["hw"])
    assert meta["objectives"] == {k: member[k] for k in ("accuracy", "energy", "latency", "area")}
    # Every choice of the pair's configuration is in the resolved accelerator, defaults added.
    acc = meta["accelerator"]
    assert acc["name"] == meta["hw"]["template"]
    for path, value in meta["hw"].items():
        if path == "template":
            continue
        node = acc
        for part in path.split("."):
            node = node[part]
        assert node == value, path
    assert meta["precision"] == {k: acc["bits"][k] for k in ("weight", "activation", "membrane")}
    assert meta["accuracy_source"] == "stand-alone"
    assert meta["training"]["key"] == row["metrics"]["training"]
    assert meta["network"]["spiking"] is True and meta["network"]["input_shape"] == [1, 8, 8]
    assert meta["network"]["timesteps"] == row["arch"]["hp"].get("timesteps", meta["network"]["timesteps"])
    assert meta["versions"]["nasco"] == nasco.__version__ and meta["versions"]["safetensors"]
    assert sorted(p.name for p in out.iterdir()) == ["nasco_export.json", "network.safetensors"]


def test_default_folder_and_id_prefix(run, capsys):
    member = _front(run).iloc[0]
    code, out, err = run_cli(capsys, "export", str(run), "--id", member["id"][:10])
    assert code == 0, err
    folder = run / "exports" / f"{member['id']}-torch"
    assert json.loads((folder / SIDECAR).read_text())["id"] == member["id"]
    # Exporting again replaces the earlier export.
    assert run_cli(capsys, "export", str(run), "--id", member["id"])[0] == 0


def test_train_retrains_a_network_whose_weights_are_gone(run, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    member = _front(copy).iloc[0]
    key = _ledger_row(copy, member["row_id"])["metrics"]["training"]
    kept = load_file(str(copy / "trainings" / f"{key}.safetensors"))
    for f in (copy / "trainings").glob(f"{key}*"):
        shutil.rmtree(f) if f.is_dir() else f.unlink()
    code, _, err = run_cli(capsys, "export", str(copy), "--id", member["id"], "--out", str(tmp_path / "e"))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "kept no weights" in err and "--train" in err
    code, _, err = run_cli(capsys, "export", str(copy), "--id", member["id"], "--out", str(tmp_path / "e"),
                           "--train")
    assert code == 0, err
    # The run's settings and seed train the same weights again, bit for bit (CPU training is
    # deterministic for a seed: the same seed gives the same ledger).
    again = load_file(str(tmp_path / "e" / "network.safetensors"))
    assert kept.keys() == again.keys() and all(torch.equal(kept[k], again[k]) for k in kept)
    assert (copy / "trainings" / f"{key}.safetensors").is_file()


@pytest.mark.parametrize("args, words", [
    (["--id", "zzzz"], ["no candidate with id 'zzzz'", "pareto.csv"]),
    (["--id", ""], ["no candidate with id ''"]),
    (["--format", "torch", "--approximate"], ["--approximate", "--format nir"]),
    (["--format", "keras"], ["invalid choice: 'keras'"]),
    (["--task", "1"], ["found task 1", "leave out --task"]),
])
def test_bad_requests_exit_2_with_one_line(run, capsys, args, words):
    member = _front(run).iloc[0]
    argv = ["export", str(run), *(["--id", member["id"]] if "--id" not in args else []), *args]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    for w in words:
        assert w in err, (w, err)


def test_close_ids_are_suggested(run, capsys):
    member = _front(run).iloc[0]
    typo = member["id"][:-1] + ("0" if member["id"][-1] != "0" else "1")
    code, _, err = run_cli(capsys, "export", str(run), "--id", typo)
    assert code == 2 and f"did you mean {member['id']}" in err


def test_not_a_run_and_out_a_file(run, tmp_path, capsys):
    code, _, err = run_cli(capsys, "export", str(tmp_path), "--id", "abc")
    assert code == 2 and len(err.strip().splitlines()) == 1
    (tmp_path / "f").write_text("x")
    code, _, err = run_cli(capsys, "export", str(run), "--id", _front(run).iloc[0]["id"], "--out",
                           str(tmp_path / "f"))
    assert code == 2 and "found a file" in err
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "mine.txt").write_text("keep me")
    code, _, err = run_cli(capsys, "export", str(run), "--id", _front(run).iloc[0]["id"], "--out",
                           str(tmp_path / "d"))
    assert code == 2 and "found other files" in err
    assert (tmp_path / "d" / "mine.txt").read_text() == "keep me"


@pytest.fixture(scope="module")
def oneshot_run(tmp_path_factory) -> Path:
    """A one-shot run whose best architecture was retrained stand-alone after the search."""
    out = tmp_path_factory.mktemp("runs") / "oneshot"
    study = nasco.create_study(space="darts_snn", hw="asic_template", storage=out, seed=2,
                               sets=["macro.cells=1", "macro.reductions=[]", "macro.stem.channels=4",
                                     "timesteps=1", "training.epochs=1"])
    study.optimize(study.make_evaluator("oneshot", epochs=1, limit=100, hw_inner=False), budget=3,
                   retrain_top=1, progress=False)
    return out


def test_oneshot_exports_say_inherited_or_stand_alone(oneshot_run, tmp_path):
    rows = [json.loads(line) for line in (oneshot_run / "ledger.jsonl").read_text().splitlines()]
    retrained = next(r for r in rows if r.get("phase") == "retrain")
    inherited = next(r for r in rows if r.get("phase") is None and r["arch"] != retrained["arch"]
                     and r["status"] != "failed")
    study = nasco.load_study(oneshot_run)
    cases = ((retrained, "stand-alone", "trainings"), (inherited, "inherited", "inherited"))
    for row, source, store in cases:
        out = study.export(row["id"], "torch", tmp_path / source)
        meta = json.loads((out / SIDECAR).read_text())
        assert (meta["accuracy_source"], meta["training"]["store"]) == (source, store)
        assert meta["training"]["key"] == row["metrics"]["training"]
        kept = load_file(str(oneshot_run / store / f"{row['metrics']['training']}.safetensors"))
        exported = load_file(str(out / "network.safetensors"))
        assert kept.keys() == exported.keys() and all(torch.equal(kept[k], exported[k]) for k in kept)


@pytest.mark.parametrize("reader", ["snntorch", "norse"])
def test_nir_export_of_a_run_follows_the_network_in_other_frameworks(run, tmp_path, capsys, reader):
    """The file `nasco export --format nir` writes, read back with nir.read and loaded by another
    framework, predicts as nasco's network does on the run's test split."""
    import nir

    from nasco.export._nir_roundtrip import agreement, load_reader, trace_graphnet, trace_reader

    member = _front(run).iloc[0]
    assert run_cli(capsys, "export", str(run), "--id", member["id"], "--out", str(tmp_path / "t"))[0] == 0
    code, _, err = run_cli(capsys, "export", str(run), "--id", member["id"], "--format", "nir",
                           "--approximate", "--out", str(tmp_path / "n"))
    assert code == 0, err
    meta = json.loads((tmp_path / "n" / SIDECAR).read_text())
    net = load_torch(tmp_path / "t")
    neurons = [n.name for n in net.plan.nodes if n.op == "neuron"]
    module = load_reader(nir.read(str(tmp_path / "n" / "network.nir")), reader, meta["format_facts"]["dt"])
    x = load_dataset("digits", seed=SEED, limit=150).x_test
    agree = agreement(trace_graphnet(net, x), trace_reader(module, reader, x, net.plan.timesteps, neurons))
    assert agree["predictions"] == 1.0, agree
    # Measured 1.0 on this run; >= 99.9 % is the export's promise (float rounding of folded BNs
    # can flip a spike that sits on the threshold).
    assert agree["last_layer_spikes"] >= 0.999, agree


def test_onnx_export_of_a_run_runs_in_onnxruntime(run, tmp_path, capsys):
    """The file `nasco export --format onnx` writes, run by onnxruntime on the run's test split,
    gives the logits and predictions of the run's network."""
    import onnxruntime as ort

    member = _front(run).iloc[0]
    assert run_cli(capsys, "export", str(run), "--id", member["id"], "--out", str(tmp_path / "t"))[0] == 0
    code, _, err = run_cli(capsys, "export", str(run), "--id", member["id"], "--format", "onnx",
                           "--out", str(tmp_path / "o"))
    assert code == 0, err
    meta = json.loads((tmp_path / "o" / SIDECAR).read_text())
    [inp], [out] = meta["format_facts"]["inputs"], meta["format_facts"]["outputs"]
    x = load_dataset("digits", seed=SEED, limit=150).x_test
    session = ort.InferenceSession(str(tmp_path / "o" / "network.onnx"), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run([out["name"]], {inp["name"]: x.numpy()})[0])
    with torch.no_grad():
        want = load_torch(tmp_path / "t")(x)
    assert torch.equal(got.argmax(1), want.argmax(1))
    # Measured 1.5e-8 on this run; 1e-5 leaves room for onnxruntime's other summation order.
    assert float((got - want).abs().max()) <= 1e-5
