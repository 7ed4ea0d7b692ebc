"""ONNX models -> workloads (nasco.hw.read_onnx): small torch modules exported to ONNX against
hand-computed MACs and parameters, the operator forms torch does not emit (auto_pad, asymmetric
pads) built with onnx.helper, refusals, and nasco's own networks exported to ONNX against the
workload nasco plans for them."""
from __future__ import annotations

import dataclasses
import logging
import warnings
from collections import Counter

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from nasco.dsl import SpecError, load_spec
from nasco.export._onnx import OPSET, write_onnx
from nasco.hw import Layer, read_onnx
from nasco.nn import GraphNet, plan_network, plan_workload
from nasco.space import SearchSpace

torch.set_num_threads(1)
# torch's exporter logs a line per torchvision op it cannot register (torchvision is not installed)
logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)


def export(module: nn.Module, x: torch.Tensor, path, *, batch_axis: bool = False):
    """``module`` on example input ``x`` written to ``path`` by torch's ONNX exporter (as
    nasco.export writes networks); ``batch_axis``: axis 0 symbolic."""
    dynamic = ({0: torch.export.Dim("batch")},) if batch_axis else None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*LeafSpec.*", category=FutureWarning)
        torch.onnx.export(module.eval(), (x,), str(path), dynamo=True, verbose=False, opset_version=OPSET,
                          input_names=["input"], dynamic_shapes=dynamic, external_data=False)
    return path


def _fields(layer: Layer) -> tuple:
    """A layer without its name, for comparing layers from two sources."""
    return dataclasses.astuple(dataclasses.replace(layer, name=""))


# ---------------------------------------------------------------- hand-computed small modules
class Convs(nn.Module):
    """Strided, grouped, depthwise and dilated 3x3 convs on a 4-channel input."""

    def __init__(self) -> None:
        super().__init__()
        self.strided = nn.Conv2d(4, 8, 3, stride=2, padding=1, bias=False)
        self.grouped = nn.Conv2d(4, 8, 3, padding=1, groups=2)
        self.depthwise = nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False)
        self.dilated = nn.Conv2d(4, 8, 3, padding=2, dilation=2, bias=False)

    def forward(self, x):
        return torch.cat([self.strided(x).flatten(1), self.grouped(x).flatten(1),
                          self.depthwise(x).flatten(1), self.dilated(x).flatten(1)], 1)


def test_strided_grouped_depthwise_and_dilated_convs(tmp_path):
    wl = read_onnx(export(Convs(), torch.zeros(1, 4, 9, 9), tmp_path / "convs.onnx"))
    assert [la.kind for la in wl.layers] == ["conv"] * 4
    strided, grouped, depthwise, dilated = wl.layers
    # By hand, on a 9x9 input (padded ifmaps include both pads):
    # strided: pad 1 -> 11x11, (11 - 3) // 2 + 1 = 5; 5*5 outputs x 8 filters x 3*3*4 = 7200 MACs
    assert (strided.ifmap_h, strided.ifmap_w, strided.stride, strided.ofmap_h) == (11, 11, 2, 5)
    assert (strided.macs, strided.params) == (7200, 288)
    # grouped: 9*9 outputs x 8 filters x 3*3*(4/2) = 11664 MACs, 3*3*2*8 = 144 weights (the bias is no MAC)
    assert (grouped.groups, grouped.macs, grouped.params) == (2, 11664, 144)
    # depthwise: 81 x 4 x 9 x 1 = 2916 MACs, 36 weights
    assert (depthwise.groups, depthwise.macs, depthwise.params) == (4, 2916, 36)
    # dilated: 3x3 taps 2 apart span 5; pad 2 -> 13x13, 13 - 5 + 1 = 9; 81 x 8 x 9 x 4 = 23328 MACs
    assert (dilated.dilation, dilated.ifmap_h, dilated.ofmap_h) == (2, 13, 9)
    assert (dilated.macs, dilated.params) == (23328, 288)
    assert wl.macs == 7200 + 11664 + 2916 + 23328 and wl.params == 288 + 144 + 36 + 288
    assert wl.meta == {"batch": 1, "skipped": ()}


class Head(nn.Module):
    """conv -> BN -> ReLU6 -> HardSwish -> global average pool -> flatten -> linear -> sigmoid."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 1, bias=False)
        self.bn = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6, 5)

    def forward(self, x):
        y = nn.functional.hardswish(nn.functional.relu6(self.bn(self.conv(x))))
        return torch.sigmoid(self.fc(nn.functional.adaptive_avg_pool2d(y, 1).flatten(1)))


def test_bn_activations_and_global_pool_are_not_costed(tmp_path):
    wl = read_onnx(export(Head(), torch.zeros(1, 3, 5, 5), tmp_path / "head.onnx"))
    # conv: 25 outputs x 6 filters x 3 = 450 MACs, 18 weights; linear: 6 x 5 = 30 MACs and weights
    assert [(la.kind, la.macs, la.params) for la in wl.layers] == [("conv", 450, 18), ("linear", 30, 30)]
    fc = wl.layers[1]
    assert (fc.ifmap_h, fc.ifmap_w, fc.channels, fc.num_filters) == (1, 1, 6, 5)


class Tokens(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        return self.fc(x)


def test_linear_on_rows_is_one_layer_per_sample_and_its_bias_is_folded(tmp_path):
    wl = read_onnx(export(Tokens(), torch.zeros(1, 3, 16), tmp_path / "rows.onnx"))
    # [1, 3, 16] @ [16, 5] (+ bias): 3 rows x 16 x 5 = 240 MACs, 80 weights; the bias add is no layer
    assert [(la.kind, la.ifmap_h, la.macs, la.params) for la in wl.layers] == [("linear", 3, 240, 80)]


class Pools(nn.Module):
    def forward(self, x):
        return torch.cat([nn.functional.max_pool2d(x, 3, 2, 1).flatten(1),
                          nn.functional.avg_pool2d(x, 2).flatten(1),
                          nn.functional.max_pool2d(x, 2, 2, ceil_mode=True).flatten(1)], 1)


def test_pools_use_the_conv_geometry(tmp_path):
    wl = read_onnx(export(Pools(), torch.zeros(1, 4, 9, 9), tmp_path / "pools.onnx"))
    got = [(la.kind, la.ifmap_h, la.filter_h, la.stride, la.ofmap_h, la.elements, la.macs, la.params)
           for la in wl.layers]
    assert got == [
        ("pool", 11, 3, 2, 5, 4 * 5 * 5, 0, 0),  # pad 1 -> 11, (11 - 3) // 2 + 1 = 5
        ("pool", 9, 2, 2, 4, 4 * 4 * 4, 0, 0),  # 9 // 2 = 4 windows (the 9th row is dropped)
        ("pool", 10, 2, 2, 5, 4 * 5 * 5, 0, 0),  # ceil_mode: ceil(7 / 2) + 1 = 5, so the ifmap holds 10
    ]


class Residual(nn.Module):
    """Two convs summed (an add of two computed maps), then a broadcast add of a per-channel mean."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(2, 3, 1, bias=False)
        self.b = nn.Conv2d(2, 3, 1, bias=False)

    def forward(self, x):
        y = self.a(x) + self.b(x)
        return y + y.mean(dim=(2, 3), keepdim=True) + 1.0


def test_adds_of_computed_maps_are_add_layers(tmp_path):
    wl = read_onnx(export(Residual(), torch.zeros(1, 2, 4, 5), tmp_path / "res.onnx"))
    adds = [la for la in wl.layers if la.kind == "add"]
    # each add: 3 x 4 x 5 = 60 output elements of 2 operands; the broadcast [1,3,1,1] operand counts
    # as one; "+ 1.0" has a constant operand and is no layer
    got = [(la.elements, la.operands, la.channels, la.ifmap_h, la.ifmap_w) for la in adds]
    assert got == [(60, 2, 3, 4, 5)] * 2
    assert [la.kind for la in wl.layers] == ["conv", "conv", "add", "add"]


class Stacked(nn.Module):
    """Three maps summed the way GraphNet sums a cell node's inputs: torch.stack(xs).sum(0)."""

    def forward(self, x):
        return torch.stack([x, torch.relu(x), torch.sigmoid(x)]).sum(0)


def test_a_stacked_sum_is_one_add_of_its_operands(tmp_path):
    wl = read_onnx(export(Stacked(), torch.zeros(1, 2, 3, 3), tmp_path / "stack.onnx"))
    assert [(la.kind, la.elements, la.operands) for la in wl.layers] == [("add", 18, 3)]


def test_one_dimensional_conv(tmp_path):
    conv = nn.Conv1d(2, 4, 3, padding=1, bias=False)
    wl = read_onnx(export(conv, torch.zeros(1, 2, 10), tmp_path / "c1.onnx"))
    (la,) = wl.layers
    # a 1-D map is a 1-row 2-D one: ifmap 1x12, filter 1x3, 10 outputs x 4 filters x 3 x 2 = 240 MACs
    assert (la.ifmap_h, la.ifmap_w, la.filter_h, la.filter_w, la.macs, la.params) == (1, 12, 1, 3, 240, 24)


@pytest.mark.parametrize("batch_axis", [False, True])
def test_workload_is_per_sample(tmp_path, batch_axis):
    path = export(Convs(), torch.zeros(4, 4, 9, 9), tmp_path / "b4.onnx", batch_axis=batch_axis)
    one = read_onnx(export(Convs(), torch.zeros(1, 4, 9, 9), tmp_path / "b1.onnx"))
    wl = read_onnx(path)
    # a fixed batch of 4 is 4 samples; a symbolic one is fixed at 1: either way, the per-sample layers
    assert wl.meta["batch"] == (1 if batch_axis else 4)
    assert [_fields(la) for la in wl.layers] == [_fields(la) for la in one.layers]
    assert all(la.timesteps == 1 for la in wl.layers)


class Stem(nn.Module):
    """A ResNet stem (7x7/2 conv, BN, ReLU, 3x3/2 max-pool), a MobileNet-style depthwise and pointwise
    pair with ReLU6 and a residual add, global average pool and classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 7, 2, 3, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.dw = nn.Conv2d(16, 16, 3, 1, 1, groups=16)
        self.pw = nn.Conv2d(16, 16, 1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.bn(self.conv(x))), 3, 2, 1)
        y = nn.functional.relu6(self.pw(self.dw(x))) + x
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))


def test_a_file_of_torchs_older_exporter_at_opset_11(tmp_path):
    """The TorchScript-based exporter writes what older ONNX files hold: Constant nodes, Clip with
    constant bounds, GlobalAveragePool, Flatten."""
    path = tmp_path / "stem.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the older exporter is deprecated
        torch.onnx.export(Stem().eval(), (torch.zeros(1, 3, 32, 32),), str(path), dynamo=False,
                          opset_version=11, input_names=["input"], dynamic_axes={"input": {0: "batch"}})
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"Constant", "Clip", "GlobalAveragePool", "Flatten"} <= ops
    wl = read_onnx(path)
    got = [(la.kind, la.ifmap_h, la.filter_h, la.stride, la.groups, la.macs, la.params, la.elements)
           for la in wl.layers]
    assert got == [
        # pad 3: 38 rows, (38 - 7) // 2 + 1 = 16
        ("conv", 38, 7, 2, 1, 16 * 16 * 16 * 7 * 7 * 3, 7 * 7 * 3 * 16, 0),
        ("pool", 18, 3, 2, 1, 0, 0, 16 * 8 * 8),  # pad 1: 18, (18 - 3) // 2 + 1 = 8
        ("conv", 10, 3, 1, 16, 8 * 8 * 16 * 9, 9 * 16, 0),  # depthwise
        ("conv", 8, 1, 1, 1, 8 * 8 * 16 * 16, 16 * 16, 0),
        ("add", 8, 1, 1, 1, 0, 0, 16 * 8 * 8),
        ("linear", 1, 1, 1, 1, 160, 160, 0),
    ]


# ---------------------------------------------------------------- forms built by hand
def _model(nodes, inputs, outputs, inits=(), opset=OPSET) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _conv_model(path, x_shape, w_shape, **attrs):
    w = numpy_helper.from_array(np.zeros(w_shape, np.float32), "w")
    m = _model([helper.make_node("Conv", ["x", "w"], ["y"], name="c", **attrs)],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    onnx.save(m, str(path))
    return path


@pytest.mark.parametrize("auto_pad, ifmap, ofmap", [
    # 7 inputs, 3 taps, stride 2. SAME: ceil(7 / 2) = 4 outputs, (4 - 1) * 2 + 3 - 7 = 2 padded rows;
    # VALID: (7 - 3) // 2 + 1 = 3
    ("SAME_UPPER", 9, 4), ("SAME_LOWER", 9, 4), ("VALID", 7, 3)])
def test_auto_pad(tmp_path, auto_pad, ifmap, ofmap):
    path = _conv_model(tmp_path / "a.onnx", [1, 2, 7, 7], [3, 2, 3, 3], strides=[2, 2], auto_pad=auto_pad)
    (la,) = read_onnx(path).layers
    assert (la.ifmap_h, la.ifmap_w, la.ofmap_h, la.ofmap_w) == (ifmap, ifmap, ofmap, ofmap)
    assert la.macs == ofmap * ofmap * 3 * 9 * 2


def test_asymmetric_pads_are_summed(tmp_path):
    # pads [top, left, bottom, right] = [0, 1, 2, 0]: 6 + 0 + 2 = 8 rows, 6 + 1 + 0 = 7 columns
    path = _conv_model(tmp_path / "p.onnx", [1, 1, 6, 6], [1, 1, 3, 3], pads=[0, 1, 2, 0])
    (la,) = read_onnx(path).layers
    assert (la.ifmap_h, la.ifmap_w, la.ofmap_h, la.ofmap_w, la.macs) == (8, 7, 6, 5, 6 * 5 * 9)


@pytest.mark.parametrize("pool", ["GlobalAveragePool", "GlobalMaxPool"])
def test_a_global_pool_before_the_classifier_is_not_costed(tmp_path, pool):
    w = numpy_helper.from_array(np.zeros((4, 2, 1, 1), np.float32), "w")
    fc = numpy_helper.from_array(np.zeros((4, 3), np.float32), "fc")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"), helper.make_node(pool, ["c"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "fc"], ["y"], name="fc")]
    m = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 5, 5])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w, fc])
    onnx.save(m, str(tmp_path / "g.onnx"))
    wl = read_onnx(tmp_path / "g.onnx")
    # conv: 25 x 4 x 2 = 200 MACs; linear 4 -> 3: 12; the pool between them is no layer
    assert [(la.name, la.macs, la.params) for la in wl.layers] == [("conv", 200, 8), ("fc", 12, 12)]


def test_unequal_strides_are_unsupported(tmp_path):
    path = _conv_model(tmp_path / "s.onnx", [1, 1, 8, 8], [1, 1, 3, 3], strides=[1, 2])
    with pytest.raises(SpecError) as e:
        read_onnx(path)
    assert "stride 1x2" in str(e.value) and "op type Conv at node 'c'" in str(e.value)


def _matmul_model(path, b_constant: bool):
    inputs = [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 3, 4])]
    inits = []
    if b_constant:
        inits = [numpy_helper.from_array(np.zeros((4, 2), np.float32), "b")]
    else:
        inputs.append(helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 4, 2]))
    m = _model([helper.make_node("MatMul", ["a", "b"], ["y"], name="mm")], inputs,
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    onnx.save(m, str(path))
    return path


def test_matmul_of_two_computed_tensors_is_unsupported(tmp_path):
    (la,) = read_onnx(_matmul_model(tmp_path / "w.onnx", b_constant=True)).layers
    assert (la.kind, la.macs, la.params) == ("linear", 3 * 4 * 2, 8)
    with pytest.raises(SpecError) as e:
        read_onnx(_matmul_model(tmp_path / "aa.onnx", b_constant=False))
    assert "op type MatMul at node 'mm'" in str(e.value) and "two computed tensors" in str(e.value)


# ---------------------------------------------------------------- refusals
class Gated(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 1, bias=False)

    def forward(self, x):
        y = self.conv(x)
        return y * torch.sigmoid(y)  # a product of two computed maps: not a layer nasco has


def test_an_unsupported_operator_is_one_line_naming_it(tmp_path):
    path = export(Gated(), torch.zeros(1, 2, 3, 3), tmp_path / "gated.onnx")
    mul = next(n for n in onnx.load(str(path)).graph.node if n.op_type == "Mul")
    with pytest.raises(SpecError) as e:
        read_onnx(path)
    text = str(e.value)
    assert "\n" not in text and text.startswith(str(path))
    assert f"op type Mul at node '{mul.name}'" in text and "--skip-unsupported" in text
    wl = read_onnx(path, skip_unsupported=True)
    assert wl.meta["skipped"] == ((mul.name, "Mul"),)
    assert [(la.kind, la.macs) for la in wl.layers] == [("conv", 9 * 2 * 2)]


@pytest.mark.parametrize("content", [b"", b"layer name,1,2\n", bytes(range(256)) * 4])
def test_a_file_that_is_not_onnx_is_one_line(tmp_path, content):
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    with pytest.raises(SpecError) as e:
        read_onnx(path)
    assert "\n" not in str(e.value) and str(e.value).startswith(str(path)) and "ONNX model" in str(e.value)


def test_external_data_is_never_opened(tmp_path):
    src = export(Convs(), torch.zeros(1, 4, 9, 9), tmp_path / "src.onnx")
    model = onnx.load(str(src))
    out = tmp_path / "ext"
    out.mkdir()
    # tensors of 1024 bytes or more go to the external file: the conv weights, not the small shape tensors
    onnx.save_model(model, str(out / "m.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=1024)
    stored = onnx.load(str(out / "m.onnx"), load_external_data=False).graph.initializer
    # the strided and dilated convs hold 3*3*4*8 = 288 floats (1152 bytes) each; the rest are smaller
    assert sum(t.data_location == TensorProto.EXTERNAL for t in stored) == 2
    (out / "weights.bin").unlink()  # were it opened, reading would fail
    want = [_fields(la) for la in read_onnx(src).layers]
    assert [_fields(la) for la in read_onnx(out / "m.onnx").layers] == want


# ---------------------------------------------------------------- nasco's networks, exported
SMALL = {("macro", "cells"): 3, ("macro", "reductions"): [1], ("macro", "stem", "channels"): 8}


def _exported(name: str, overrides: dict, cell: dict, tmp_path):
    space = load_spec(name, overrides=overrides)
    from nasco.dsl import resolve

    arch = resolve(space, {})
    plan = plan_network(arch, cell, (1, 8, 8), 10)
    torch.manual_seed(0)
    write_onnx(plan, arch, GraphNet(plan, arch).state_dict(), tmp_path)
    return plan, plan_workload(plan), read_onnx(tmp_path / "network.onnx", skip_unsupported=plan.spiking)


def _cells(name: str, n: int, seed: int) -> list[dict]:
    space = SearchSpace(load_spec(name, overrides=SMALL))
    rng = np.random.default_rng(seed)
    return [space.sample(rng).arch["cell"] for _ in range(n)]


def _repeated_pools(plan) -> set[str]:
    """The pool nodes of ``plan`` that repeat an earlier one: the same pool, on the same input.
    torch's exporter (its onnxscript optimizer) computes such a repeat once; the plan costs each
    edge of the cell, so the plan's workload holds these pools and the file does not."""
    seen, repeats = set(), set()
    for n in plan.nodes:
        if n.op in ("avgpool", "maxpool"):
            key = (n.op, tuple(sorted(n.attrs.items())), n.inputs)
            if key in seen:
                repeats.add(n.name)
            seen.add(key)
    return repeats


# (space, sampled cell, pools the cell repeats): seeded samples; darts' second repeats two
# max-pools of one input (edges n0.e1 and n3.e1 of both normal cells)
GENOTYPES = [("darts", 0, 0), ("darts", 1, 2), ("darts", 2, 0), ("nb201", 0, 0), ("nb201", 1, 0),
             ("nb201", 2, 0)]


@pytest.mark.parametrize("name, index, repeated", GENOTYPES)
def test_an_exported_ann_is_the_workload_nasco_plans(name, index, repeated, tmp_path):
    cell = _cells(name, 3, seed=11)[index]
    plan, planned, read = _exported(name, SMALL, cell, tmp_path)
    assert read.meta["skipped"] == ()
    # Layer for layer (conv, linear, pool, add: geometry, MACs, parameters), in the plan's order;
    # both leave the head's global average pool, BN and ReLU uncosted. Only the names differ, and
    # the file computes a repeated pool once.
    repeats = _repeated_pools(plan)
    assert len(repeats) == repeated
    assert [_fields(la) for la in read.layers] == [_fields(la) for la in planned.layers
                                                   if la.name not in repeats]
    # pools have no MACs and no weights: the totals are the plan's exactly
    assert (read.macs, read.params) == (planned.macs, planned.params)
    assert Counter(la.kind for la in read.layers)["conv"] >= 5


def test_an_exported_snn_has_the_planned_conv_linear_and_pool_layers(tmp_path):
    cell = _cells("darts", 1, seed=5)[0]
    plan, planned, read = _exported("darts_snn", {**SMALL, ("timesteps",): 2}, cell, tmp_path)
    array = ("conv", "linear", "pool")

    def strip(la: Layer) -> tuple:  # the ONNX graph does not say which inputs are spikes
        return _fields(dataclasses.replace(la, spiking_input=False, output_bits=0))

    # The export runs the layers time-major on [T * batch, ...]: each runs T = 2 times per sample,
    # the direct-encoded stem once, as planned.
    repeats = _repeated_pools(plan)
    assert [strip(la) for la in read.layers if la.kind in array] == \
        [strip(la) for la in planned.layers if la.kind in array and la.name not in repeats]
    assert (read.macs, read.params) == (planned.macs, planned.params)
    # The LIF updates are plain element-wise ops in the file (UnrolledLIF): no neuron layer is read,
    # and their Sub, Div, GreaterOrEqual and Where are skipped, with the mean of the logits over T.
    assert not any(la.kind == "neuron" for la in read.layers)
    assert {op for _, op in read.meta["skipped"]} == {"Sub", "Div", "GreaterOrEqual", "Where", "ReduceMean"}
