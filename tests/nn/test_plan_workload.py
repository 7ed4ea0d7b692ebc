"""Plans, torch networks and workloads agree: MACs and parameters counted on the running
torch module equal the cost model's workload; spike rates cover exactly the spiking-input
layers; NB201's macro skeleton and the dead-branch pruning of 'none' edges."""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from nasco.dsl import load_spec  # noqa: E402
from nasco.nn import GraphNet, plan_network, plan_workload  # noqa: E402
from nasco.space import SearchSpace  # noqa: E402

torch.set_num_threads(1)
functional = pytest.importorskip("spikingjelly.activation_based.functional")

INPUT = (1, 8, 8)
CLASSES = 10
BATCH = 3


# ---------------------------------------------------------------------- helpers
def _build(space: SearchSpace, cand):
    arch, _hw = space.resolve(cand)
    plan = plan_network(arch, cand.arch["cell"], INPUT, CLASSES)
    torch.manual_seed(0)
    return plan, GraphNet(plan, arch), plan_workload(plan)


def _run_counting(net: nn.Module, x: torch.Tensor):
    """Forward ``x`` through ``net`` with hooks on every Conv2d/Linear; return
    (MACs actually performed, per-module input tensors, output)."""
    macs = [0]
    inputs: dict[nn.Module, list[torch.Tensor]] = {}

    def conv_hook(m: nn.Conv2d, args, out):
        kh, kw = m.kernel_size
        macs[0] += out.numel() * kh * kw * (m.in_channels // m.groups)
        inputs.setdefault(m, []).append(args[0].detach())

    def linear_hook(m: nn.Linear, args, out):
        macs[0] += (out.numel() // m.out_features) * m.out_features * m.in_features
        inputs.setdefault(m, []).append(args[0].detach())

    handles = []
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    try:
        with torch.no_grad():
            out = net(x)
    finally:
        for h in handles:
            h.remove()
        functional.reset_net(net)
    return macs[0], inputs, out


def _weight_params(net: nn.Module) -> int:
    return sum(m.weight.numel() for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


def _is_binary(t: torch.Tensor) -> bool:
    return bool(((t == 0) | (t == 1)).all())


def _sampled(name: str, n: int, seed: int, overrides=None):
    space = SearchSpace(load_spec(name, overrides=overrides))
    rng = np.random.default_rng(seed)
    return space, [space.sample(rng) for _ in range(n)]


CASES = [
    ("darts_snn", None, 3, 11),
    ("darts", None, 3, 12),
    ("nb201", None, 3, 13),
    ("darts_snn", {("encoding",): "rate"}, 2, 14),
    ("darts_snn", {("neuron", "placement"): "post_node"}, 2, 15),
    ("darts_snn", {("neuron", "placement"): "spike_native"}, 3, 16),
]
IDS = ["darts_snn", "darts", "nb201", "snn_rate", "snn_post_node", "snn_spike_native"]


# ---------------------------------------------------------------------- MACs / params
@pytest.mark.parametrize("name,overrides,n,seed", CASES, ids=IDS)
def test_hook_counted_macs_and_params_equal_workload(name, overrides, n, seed):
    space, cands = _sampled(name, n, seed, overrides)
    # the default candidate too, so the space's defaults are covered
    cands.append(space.make(cands[0].arch["cell"]))
    seen_macs = set()
    for cand in cands:
        plan, net, wl = _build(space, cand)
        net.eval()
        x = torch.rand(BATCH, *INPUT)
        macs, _inputs, out = _run_counting(net, x)
        assert out.shape == (BATCH, CLASSES)
        assert torch.isfinite(out).all()
        assert macs % BATCH == 0
        assert macs // BATCH == wl.macs, (name, cand.arch)
        assert _weight_params(net) == wl.params
        # one workload layer per conv/linear module, in the same number
        n_modules = sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in net.modules())
        assert sum(layer.kind in ("conv", "linear") for layer in wl.layers) == n_modules
        seen_macs.add(wl.macs)
    assert len(seen_macs) > 1  # the candidates really differ


@pytest.mark.parametrize("name,overrides,n,seed", CASES, ids=IDS)
def test_every_pool_and_add_node_has_one_workload_layer(name, overrides, n, seed):
    """Each avgpool/maxpool plan node is one 'pool' layer and each add node one 'add' layer,
    with the node's output element count, in plan order; they carry no MACs or params."""
    space, cands = _sampled(name, n, seed, overrides)
    seen = set()
    for cand in cands:
        arch, _hw = space.resolve(cand)
        plan = plan_network(arch, cand.arch["cell"], INPUT, CLASSES)
        wl = plan_workload(plan)
        binary, static = plan.binary(), plan.static()
        nodes = plan.by_name()
        vector = [n for n in plan.nodes if n.op in ("avgpool", "maxpool", "add")]
        layers = [layer for layer in wl.layers if layer.kind in ("pool", "add")]
        assert [layer.name for layer in layers] == [n.name for n in vector]
        for node, layer in zip(vector, layers):
            c, h, w = node.shape
            assert layer.elements == layer.ofmap_elements == c * h * w, node.name
            assert layer.macs == 0 and layer.params == 0
            assert layer.timesteps == (1 if static[node.name] else plan.timesteps)
            if node.op == "add":
                assert layer.kind == "add" and layer.operands == len(node.inputs) >= 2
                assert layer.spiking_input == all(binary[i] for i in node.inputs)
            else:
                a, (ci, hi, wi) = node.attrs, nodes[node.inputs[0]].shape
                assert layer.kind == "pool" and layer.filter_h == layer.filter_w == a["kernel"]
                assert (layer.ifmap_h, layer.ifmap_w) == (hi + 2 * a["padding"], wi + 2 * a["padding"])
                assert layer.stride == a["stride"] and layer.channels == layer.num_filters == ci
                assert (layer.ofmap_h, layer.ofmap_w) == (h, w)
                assert layer.spiking_input == binary[node.inputs[0]]
            seen.add(node.op)
    # every case builds adds (cell node sums), and pools come up in the sampled cells
    assert "add" in seen and seen & {"avgpool", "maxpool"}


def test_snn_timesteps_multiply_all_but_the_direct_stem():
    space = SearchSpace(load_spec("darts_snn"))
    cand = space.sample(np.random.default_rng(3))
    arch, _ = space.resolve(cand)
    T = int(arch.timesteps)
    assert T > 1
    plan, net, wl = _build(space, cand)
    by_name = {layer.name: layer for layer in wl.layers}
    assert by_name["stem.conv"].timesteps == 1 and not by_name["stem.conv"].spiking_input
    assert all(layer.timesteps == T for layer in wl.layers if layer.name != "stem.conv")
    # rate encoding: the stem sees spikes at every timestep
    space_r = SearchSpace(load_spec("darts_snn", overrides={("encoding",): "rate"}))
    plan_r = plan_network(space_r.resolve(cand)[0], cand.arch["cell"], INPUT, CLASSES)
    stem_r = next(layer for layer in plan_workload(plan_r).layers if layer.name == "stem.conv")
    assert stem_r.timesteps == T and stem_r.spiking_input
    # the stem of the directly encoded net runs on the batch once, the rest on T*B rows
    _m, inputs, _out = _run_counting(net.eval(), torch.rand(BATCH, *INPUT))
    assert inputs[net.module_of("stem.conv")][0].shape[0] == BATCH
    assert inputs[net.module_of(plan.output)][0].shape[0] == T * BATCH


# ---------------------------------------------------------------------- spike rates
def test_spike_rates_cover_exactly_the_spiking_input_layers():
    # a low threshold so that the random net spikes at all (rates strictly inside (0, 1))
    space = SearchSpace(load_spec("darts_snn", overrides={("neuron", "v_threshold"): 0.25}))
    cand = space.sample(np.random.default_rng(5))
    plan, net, wl = _build(space, cand)
    net.train()
    spiking = {layer.name for layer in wl.layers if layer.spiking_input and layer.kind in ("conv", "linear")}
    assert spiking and spiking == set(net.spike_inputs)

    # independent measurement: pre-hooks on the same modules
    sums = {name: [0.0, 0] for name in spiking}
    handles = []
    for name in spiking:
        def pre(_m, args, name=name):
            x = args[0].detach()
            assert _is_binary(x), f"{name} is marked spiking but its input is not binary"
            sums[name][0] += float(x.double().sum())
            sums[name][1] += x.numel()
        handles.append(net.module_of(name).register_forward_pre_hook(pre))
    torch.manual_seed(1)
    xs = [torch.rand(BATCH, *INPUT) * 2.0, torch.rand(BATCH + 1, *INPUT)]
    with net.spike_rate_recorder() as rec:
        for x in xs:
            with torch.no_grad():
                assert net(x).shape == (x.shape[0], CLASSES)
            functional.reset_net(net)
    for h in handles:
        h.remove()
    rates = rec.rates()
    assert set(rates) == spiking
    for name, r in rates.items():
        assert 0.0 <= r <= 1.0
        assert r == pytest.approx(sums[name][0] / sums[name][1], rel=1e-12, abs=1e-15)
    assert any(0.0 < r < 1.0 for r in rates.values())
    # hooks are gone after the context: a further forward changes nothing
    before = dict(rates)
    with torch.no_grad():
        net(xs[0])
    functional.reset_net(net)
    assert rec.rates() == before


def test_pre_op_convs_see_spikes_except_stem_and_pointwise():
    """pre_op (the built-in darts_snn): a neuron precedes every act-conv, so every conv has
    spiking input except the directly-encoded stem and the pointwise half of a separable
    conv (it follows the depthwise conv with no neuron between); the head's linear sees
    averaged spikes. What the workload claims is checked on the running network."""
    space, cands = _sampled("darts_snn", 2, 21, {("neuron", "v_threshold"): 0.25})
    for cand in cands:
        plan, net, wl = _build(space, cand)
        _m, inputs, _ = _run_counting(net.train(), torch.rand(BATCH, *INPUT))
        for layer in wl.layers:
            if layer.kind not in ("conv", "linear"):
                continue
            expected = not (layer.name in ("stem.conv", "head.linear") or layer.name.endswith(".pw"))
            assert layer.spiking_input == expected, layer.name
            if layer.spiking_input:
                assert all(_is_binary(t) for t in inputs[net.module_of(layer.name)]), layer.name
        assert not _is_binary(inputs[net.module_of("stem.conv")][0])


# ---------------------------------------------------------------------- post_node
POST = {("neuron", "placement"): "post_node"}


def _post_node_layers():
    space, cands = _sampled("darts_snn", 3, 31, POST)
    out = []
    for cand in cands:
        plan, net, wl = _build(space, cand)
        out.append((plan, net, wl))
    return out


def test_post_node_neurons_sit_after_nodes_and_spiking_flags_are_real():
    for plan, net, wl in _post_node_layers():
        ops = {n.name: n.op for n in plan.nodes}
        neurons = [n for n, op in ops.items() if op == "neuron"]
        assert "stem.neuron" in neurons
        nodes = plan.by_name()
        after_nodes = [n for n in neurons if not n.endswith(".act")]
        assert all(n == "stem.neuron" or n.split(".")[-2].startswith("n") for n in after_nodes)
        # a neuron inside an op appears only where its input is not already spikes
        binary = plan.binary()
        acts = [n for n in neurons if n.endswith(".act")]
        assert all(not binary[nodes[n].inputs[0]] for n in acts)
        _m, inputs, _ = _run_counting(net.train(), torch.rand(BATCH, *INPUT))
        names = {layer.name: layer for layer in wl.layers}
        for layer in wl.layers:
            if layer.spiking_input and layer.kind in ("conv", "linear"):
                assert all(_is_binary(t) for t in inputs[net.module_of(layer.name)]), layer.name
        # the cell preprocessing convs read the stem's / previous cells' spikes
        pre = [n for n in names if n.endswith((".pre0.conv", ".pre1.conv"))]
        assert pre and all(names[n].spiking_input for n in pre)
        # ... and so do the edges leaving the two cell inputs: a neuron follows the
        # preprocessing BN because its output is not spikes
        from_inputs = [n for n in names if ".e0." in n or ".e1." in n]
        from_inputs = [n for n in from_inputs if n.endswith((".conv", ".dw"))]
        assert from_inputs and all(names[n].spiking_input for n in from_inputs)


def test_post_node_every_conv_but_the_stem_has_spiking_input():
    for _plan, _net, wl in _post_node_layers():
        convs = [layer for layer in wl.layers if layer.kind == "conv" and layer.name != "stem.conv"]
        assert all(layer.spiking_input for layer in convs), [
            layer.name for layer in convs if not layer.spiking_input]


# ---------------------------------------------------------------------- spike_native
NATIVE = {("neuron", "placement"): "spike_native"}


def test_spike_native_every_value_a_layer_reads_is_spikes():
    """spike_native: every conv, linear and add reads spikes but the stem (the image) and the
    head's linear (globally pooled spikes); checked on the values the running network feeds
    its modules and its adds, and each neuron sits on a value that is not spikes already."""
    space, cands = _sampled("darts_snn", 3, 41, {**NATIVE, ("neuron", "v_threshold"): 0.25})
    adds_seen = 0
    for cand in cands:
        plan, net, wl = _build(space, cand)
        binary, nodes = plan.binary(), plan.by_name()
        assert all(not binary[nodes[n.name].inputs[0]] for n in plan.nodes if n.op == "neuron")
        for layer in wl.layers:
            if layer.kind in ("conv", "linear", "add"):
                assert layer.spiking_input == (layer.name not in ("stem.conv", "head.linear")), layer.name
        _m, inputs, _ = _run_counting(net.train(), torch.rand(BATCH, *INPUT))
        for layer in wl.layers:
            if layer.spiking_input and layer.kind in ("conv", "linear"):
                assert all(_is_binary(t) for t in inputs[net.module_of(layer.name)]), layer.name
        # the adds' operands, recorded from the running network (GraphNet keeps no module for them)
        values = {}
        hooks = [m.register_forward_hook(lambda _m, _a, out, k=k: values.__setitem__(k, out.detach()))
                 for k, m in net.layers.items()]
        try:
            with torch.no_grad():
                net(torch.rand(BATCH, *INPUT))
        finally:
            for h in hooks:
                h.remove()
            functional.reset_net(net)
        for n in plan.nodes:
            if n.op == "add":
                adds_seen += 1
                for i in n.inputs:
                    key = i.replace(".", "__")
                    assert nodes[i].op == "neuron" and key in values, (n.name, i)
                    assert _is_binary(values[key]), (n.name, i)
    assert adds_seen


def test_spike_native_fuses_every_neuron_after_a_conv_or_sum():
    """What leaves a preprocessing conv, an edge's conv and a node's sum is spikes: each feeds
    exactly one neuron, which the workload fuses with it (output_bits 1)."""
    space, cands = _sampled("darts_snn", 3, 43, NATIVE)
    for cand in cands:
        arch, _hw = space.resolve(cand)
        wl = plan_workload(plan_network(arch, cand.arch["cell"], INPUT, CLASSES))
        by_name = {layer.name: layer for layer in wl.layers}
        pre = [n for n in by_name if n.endswith((".pre0.conv", ".pre1.conv"))]
        sums = [n for n in by_name if n.endswith(".sum")]
        assert pre and sums
        assert all(by_name[n].output_bits == 1 for n in pre + sums), [
            n for n in pre + sums if by_name[n].output_bits != 1]


def test_spike_native_fires_no_neuron_on_spikes():
    """A node whose one input is a skip of spikes passes them on: a second neuron on a spike
    map would only delay and thin it."""
    space = SearchSpace(load_spec("darts_snn", overrides={**NATIVE, ("cell", "edges_per_node"): 1}))
    genes = [("conv_3x3", 1), ("skip_connect", 2), ("conv_1x1", 3), ("skip_connect", 4)]
    cand = space.make({"normal": genes, "reduce": genes})
    plan, _net, wl = _build(space, cand)
    nodes = plan.by_name()
    assert not any(f"cells.0.n{i}.neuron" in nodes for i in range(4))
    # each conv's output fires once, and the skips pass those spikes on to the cell's output
    fired = ("cells.0.n0.e1.neuron", "cells.0.n2.e3.neuron")
    assert nodes["cells.0.out"].inputs == (fired[0], fired[0], fired[1], fired[1])
    assert all(nodes[f].op == "neuron" for f in fired)


def test_placement_is_searchable():
    space = SearchSpace(load_spec("darts_snn", overrides={
        ("neuron", "placement"): {"choice": ["pre_op", "post_node", "spike_native"]}}))
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(30):
        arch, _hw = space.resolve(space.sample(rng))
        seen.add(arch.neuron.placement)
    assert seen == {"pre_op", "post_node", "spike_native"}


# ---------------------------------------------------------------------- NB201 skeleton
def test_nb201_index_6111_skeleton():
    space = SearchSpace(load_spec("nb201"))
    cand = space.from_index(6111)
    assert cand.arch["index"] == 6111
    edges = cand.arch["cell"]["edges"]
    plan, net, wl = _build(space, cand)
    nodes = plan.by_name()
    positions = {int(n.split(".")[1]) for n in nodes if n.startswith("cells.")}
    assert positions == set(range(17))
    res = {p for p in positions if f"cells.{p}.short.conv" in nodes}
    normal = {p for p in positions
              if any(n.startswith(f"cells.{p}.n") for n in nodes)}
    assert res == {5, 11}
    assert len(normal) == 15 and normal == set(range(17)) - {5, 11}
    assert nodes["stem.conv"].shape[0] == 16
    assert nodes["head.linear"].attrs["c_in"] == 64
    assert net.module_of("head.linear").in_features == 64
    assert net.module_of("stem.conv").out_channels == 16
    # channels of the normal cells: 16, 32, 64 per stage
    for p in normal:
        convs = [n for name, n in nodes.items() if name.startswith(f"cells.{p}.") and n.op == "conv"]
        assert {n.shape[0] for n in convs} == {16 if p < 5 else 32 if p < 11 else 64}

    # MACs by hand: per normal cell every edge's conv is H*W*C*C*k*k
    kk = {"nor_conv_3x3": 9, "nor_conv_1x1": 1, "skip_connect": 0, "avg_pool_3x3": 0, "none": 0}
    per_cell = sum(kk[op] for op in edges)
    expect = 8 * 8 * 16 * 9  # stem
    for c, hw in ((16, 64), (32, 16), (64, 4)):
        expect += 5 * per_cell * hw * c * c
    for c_in, c_out, hw in ((16, 32, 16), (32, 64, 4)):  # resblocks: a (s2), b, shortcut 1x1
        expect += hw * c_out * 9 * c_in + hw * c_out * 9 * c_out + hw * c_out * c_in
    expect += 64 * CLASSES
    assert wl.macs == expect
    macs, _i, out = _run_counting(net.eval(), torch.rand(BATCH, *INPUT))
    assert out.shape == (BATCH, CLASSES) and macs // BATCH == expect


# ---------------------------------------------------------------------- 'none' pruning
def _dense(edges):
    space = SearchSpace(load_spec("nb201"))
    cand = space.make({"edges": edges})
    plan, net, wl = _build(space, cand)
    macs, _i, out = _run_counting(net.eval(), torch.rand(BATCH, *INPUT))
    assert out.shape == (BATCH, CLASSES) and torch.isfinite(out).all()
    assert macs // BATCH == wl.macs and _weight_params(net) == wl.params
    return plan, wl


def test_all_none_cell_is_a_zero_node_and_runs():
    plan, wl = _dense(["none"] * 6)
    nodes = plan.by_name()
    normal = [p for p in range(17) if p not in (5, 11)]
    assert all(nodes[f"cells.{p}.zero"].op == "zero" for p in normal)
    assert not any(n.startswith(f"cells.{p}.n") for p in normal for n in nodes)
    # only the stem, the resblocks and the head have layers
    owners = {".".join(layer.name.split(".")[:2]) if layer.name.startswith("cells.")
              else layer.name.split(".")[0] for layer in wl.layers}
    assert owners == {"stem", "cells.5", "cells.11", "head"}


def test_dead_node_has_no_layers():
    # edges (1,0) (2,0) (2,1) (3,0) (3,1) (3,2): node 1 is never reached
    c1, c3 = "nor_conv_1x1", "nor_conv_3x3"
    plan, wl = _dense(["none", c3, c3, c1, c3, c1])
    names = [layer.name for layer in wl.layers]
    normal = [p for p in range(17) if p not in (5, 11)]
    for p in normal:
        assert not any(n.startswith((f"cells.{p}.n1.", f"cells.{p}.n2.e1.", f"cells.{p}.n3.e1."))
                       for n in names)
        for live in (f"cells.{p}.n2.e0.conv", f"cells.{p}.n3.e0.conv", f"cells.{p}.n3.e2.conv"):
            assert live in names
    # node 2 cannot reach the output when (3,2) is none: nothing of node 2 is built
    plan2, wl2 = _dense([c3, c3, c3, c1, c3, "none"])
    names2 = {layer.name for layer in wl2.layers}
    assert not any(".n2." in n for n in names2)
    assert "cells.0.n1.e0.conv" in names2 and "cells.0.n3.e1.conv" in names2
