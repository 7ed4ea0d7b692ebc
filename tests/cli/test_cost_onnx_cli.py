"""`nasco cost --workload model.onnx`: an ONNX model exported from torch, costed end to end."""
from __future__ import annotations

import json
import logging
import warnings

import onnx
import pytest
import torch
from torch import nn

from nasco.dsl import defaults, find_file, load_energy_table, load_file, resolve
from nasco.export._onnx import OPSET
from nasco.hw import CostModel, Layer, Workload

torch.set_num_threads(1)
logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)


class Small(nn.Module):
    """conv 3->6 3x3 pad 1 on 5x5 -> ReLU -> flatten -> linear 150->4; ``gated``: times its sigmoid."""

    def __init__(self, gated: bool = False) -> None:
        super().__init__()
        self.gated = gated
        self.conv = nn.Conv2d(3, 6, 3, padding=1, bias=False)
        self.fc = nn.Linear(150, 4)

    def forward(self, x):
        y = torch.relu(self.conv(x)).flatten(1)
        return self.fc(y * torch.sigmoid(y) if self.gated else y)


def _export(tmp_path, gated: bool = False):
    path = tmp_path / ("gated.onnx" if gated else "small.onnx")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*LeafSpec.*", category=FutureWarning)
        torch.onnx.export(Small(gated).eval(), (torch.zeros(1, 3, 5, 5),), str(path), dynamo=True,
                          verbose=False, opset_version=OPSET, input_names=["input"],
                          dynamic_shapes=({0: torch.export.Dim("batch")},), external_data=False)
    return path


def _nodes(path, *ops: str) -> list[str]:
    return [n.name for n in onnx.load(str(path)).graph.node if n.op_type in ops]


def test_an_onnx_model_is_costed_as_its_hand_written_layers(tmp_path, capsys, run_cli):
    path = _export(tmp_path)
    code, out, err = run_cli(capsys, "cost", "--workload", str(path), "--hw", "systolic_template", "--json")
    assert code == 0, err
    rep = json.loads(out)
    assert [r["name"] for r in rep["layers"]] == _nodes(path, "Conv", "Gemm")
    assert [r["kind"] for r in rep["layers"]] == ["conv", "linear"]
    assert rep["assumptions"]["skipped"] == []
    # The same layers written by hand: the conv's 5x5 input padded to 7x7, the linear 150 -> 4.
    template = load_file(find_file("systolic_template"))
    model = CostModel(resolve(template, defaults(template)), load_energy_table(template))
    by_hand = Workload((Layer("c", "conv", 7, 7, 3, 3, 3, 6, 1), Layer("f", "linear", 1, 1, 1, 1, 150, 4)))
    want = model.cost(by_hand).to_dict()["total"]
    assert rep["total"]["cycles"] == want["cycles"]
    assert rep["total"]["energy_j"] == want["energy_j"] and rep["total"]["latency_s"] == want["latency_s"]
    # the text table: a row per layer and the total
    code, out, err = run_cli(capsys, "cost", "--workload", str(path), "--hw", "systolic_template")
    assert code == 0, err
    rows = [line.split()[0] for line in out.splitlines()[1:] if not line.startswith("energy (")]
    assert rows == [*_nodes(path, "Conv", "Gemm"), "total"]


def test_an_unsupported_node_is_one_line_and_skip_unsupported_costs_the_rest(tmp_path, capsys, run_cli):
    path = _export(tmp_path, gated=True)
    (mul,) = _nodes(path, "Mul")
    code, out, err = run_cli(capsys, "cost", "--workload", str(path), "--hw", "systolic_template")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"nasco: error: {path}")
    assert f"op type Mul at node '{mul}'" in err and "--skip-unsupported" in err
    code, out, err = run_cli(capsys, "cost", "--workload", str(path), "--hw", "systolic_template",
                             "--skip-unsupported", "--json")
    assert code == 0, err
    assert f"note: 1 unsupported node(s) not costed (Mul x1): {mul} (Mul)" in err
    rep = json.loads(out)
    assert rep["assumptions"]["skipped"] == [{"node": mul, "op_type": "Mul"}]
    assert [r["kind"] for r in rep["layers"]] == ["conv", "linear"]


@pytest.mark.parametrize("argv, line", [
    (["--hw", "systolic_template"], "expected an ONNX model (a protobuf ModelProto)"),
    ([], "nasco: error: --hw is needed to cost an ONNX model, e.g. --hw asic_template"),
])
def test_refusals_are_one_line(tmp_path, capsys, argv, line, run_cli):
    path = tmp_path / "notes.onnx"
    path.write_text("not a model\n")
    code, out, err = run_cli(capsys, "cost", "--workload", str(path), *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and line in err


def test_skip_unsupported_is_for_onnx_models(capsys, run_cli):
    code, _, err = run_cli(capsys, "cost", "--workload", "example", "--hw", "systolic_template",
                           "--skip-unsupported")
    assert code == 2 and err.count("\n") == 1 and "--skip-unsupported: applies to an ONNX model" in err
