"""NIR export of spiking plans: the LIF mapping, the exact average pool, the round trip through
snnTorch and Norse (every op NIR can express, PLIF, a BN that cannot fold, zero and doubled
terms), each refusal, the approximations, and the written file."""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import nir  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from spikingjelly.activation_based import neuron as sj_neuron  # noqa: E402

from nasco.dsl import load_spec  # noqa: E402
from nasco.evaluate import TrainConfig, load_dataset, train_and_evaluate  # noqa: E402
from nasco.export import ExportError  # noqa: E402
from nasco.export._nir import _avgpool, _Graph, lif_parameters, plan_to_nir, write_nir  # noqa: E402
from nasco.export._nir_roundtrip import READERS, agreement, load_reader, trace_graphnet, trace_reader  # noqa: E402
from nasco.nn import GraphNet, Node, Plan, plan_network, plan_supernet  # noqa: E402
from nasco.space import SearchSpace  # noqa: E402

torch.set_num_threads(1)

# Every op darts_snn's NIR export expresses exactly, in a normal cell and in a reduction cell
# (strided skip, strided pools, pooling BN folded into the pool's convs).
ALL_OPS = {
    "normal": [["skip_connect", 0], ["conv_1x1", 1], ["conv_3x3", 0], ["sep_conv_3x3", 2],
               ["dil_conv_3x3", 1], ["avg_pool_3x3", 3], ["skip_connect", 2], ["avg_pool_3x3", 4]],
    "reduce": [["avg_pool_3x3", 0], ["sep_conv_3x3", 1], ["dil_conv_3x3", 0], ["conv_1x1", 2],
               ["skip_connect", 1], ["conv_3x3", 3], ["avg_pool_3x3", 2], ["skip_connect", 4]],
}
DT = 1e-4


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def _arch(cells: int = 3, **overrides):
    # Threshold 0.5: one epoch on digits then fires at a mean rate of 0.15 (0.014 at threshold 1).
    base = {("macro", "cells"): cells, ("macro", "stem", "channels"): 8, ("timesteps",): 4,
            ("neuron", "type"): "lif", ("neuron", "tau"): 2.0, ("neuron", "v_threshold"): 0.5,
            ("macro", "reductions"): [1, 2][:cells - 1]}
    base.update({tuple(k.split(".")): v for k, v in overrides.items()})
    space = SearchSpace(load_spec("darts_snn", overrides=base))
    arch, _ = space.resolve(space.sample(np.random.default_rng(0)))
    return arch


def _trained(digits, cell, epochs: int = 1, **overrides):
    arch = _arch(**overrides)
    plan = plan_network(arch, cell, digits.input_shape, digits.num_classes)
    torch.manual_seed(0)
    net = GraphNet(plan, arch)
    train_and_evaluate(net, digits, TrainConfig(epochs=epochs, batch_size=32, lr=0.05, seed=0))
    return plan, arch, net.eval()


@pytest.fixture(scope="module")
def all_ops(digits):
    return _trained(digits, ALL_OPS)


@pytest.fixture(scope="module")
def plif(digits):
    return _trained(digits, ALL_OPS, cells=2, **{"neuron.type": "plif"})


def _round_trip(plan, arch, net, x, reader):
    graph, notes = plan_to_nir(plan, arch, net.state_dict(), dt=DT)
    assert notes == []
    ref = trace_graphnet(net, x)
    module = load_reader(graph, reader, DT)
    other = trace_reader(module, reader, x, plan.timesteps, list(ref.spikes))
    return ref, agreement(ref, other)


# ---------------------------------------------------------------- the neuron
def test_lif_parameters_follow_spikingjelly_step_by_step():
    """NIR's LIF, stepped by forward Euler at dt with the exported parameters, gives the spikes
    of spikingjelly's LIFNode (tau 2 and 4/3, hard reset to 0 and to -0.5)."""
    gen = torch.Generator().manual_seed(0)
    for tau_sj, v_reset in ((2.0, 0.0), (1.333, 0.0), (2.0, -0.5)):
        x = (torch.rand((20, 500), generator=gen, dtype=torch.float64) * 1.8 + 0.2) * (1 - v_reset)
        sj = sj_neuron.LIFNode(tau=tau_sj, v_reset=v_reset, v_threshold=1.0, step_mode="m")
        expected = sj(x)
        p = lif_parameters(tau_sj, 1.0, v_reset, DT)
        assert p["r"] == 1.0 and p["v_leak"] == v_reset and p["v_reset"] == v_reset
        v = torch.full((500,), p["v_leak"], dtype=torch.float64)
        spikes = []
        for t in range(20):
            v = v + DT / p["tau"] * (p["v_leak"] - v) + DT / p["tau"] * p["r"] * x[t]
            z = (v > p["v_threshold"]).double()
            v = torch.where(z > 0, torch.full_like(v, p["v_reset"]), v)
            spikes.append(z)
        assert torch.equal(torch.stack(spikes), expected)
        assert 0.05 < float(expected.mean()) < 0.5


# ---------------------------------------------------------------- average pooling
@pytest.mark.parametrize("hw,k,s,p", [((8, 8), 3, 1, 1), ((8, 8), 3, 2, 1), ((5, 5), 3, 2, 1),
                                      ((4, 4), 2, 2, 0), ((2, 2), 3, 1, 1)])
def test_avgpool_convs_equal_pool_without_padding_count(hw, k, s, p):
    c = 3
    x = torch.randn((2, c, *hw), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    expected = F.avg_pool2d(x, k, s, p, count_include_pad=False)
    g = _Graph(terms={"x": ["x"]})
    node = Node("pool", "avgpool", ("x",), (c, *expected.shape[2:]), {"kernel": k, "stride": s, "padding": p})
    terms = _avgpool(g, node, (c, *hw), ["x"])
    vals = {"x": x}
    for name, conv in g.nodes.items():  # insertion order is topological
        src = sum(vals[a] for a, b in g.edges if b == name)
        weight, bias = torch.from_numpy(conv.weight).double(), torch.from_numpy(conv.bias).double()
        vals[name] = F.conv2d(src, weight, bias, conv.stride, conv.padding, conv.dilation)
    got = sum(vals[t] for t in terms)
    # Measured: at most 4.1e-8 over these cases (the float32 rounding of weights such as 1/9 and
    # 1/6, on float64 data of |x| < 4); 1e-6 leaves a margin.
    assert torch.allclose(got, expected, atol=1e-6, rtol=0)
    assert (len(terms) == 1) == (p == 0)  # a correction exactly where windows cross the padding


# ---------------------------------------------------------------- round trips
@pytest.mark.parametrize("reader", READERS)
def test_every_expressible_op_round_trips(all_ops, digits, reader):
    plan, arch, net = all_ops
    ops = {n.op for n in plan.nodes}
    assert {"conv", "bn", "neuron", "avgpool", "add", "concat", "gap", "linear"} <= ops
    groups = {n.attrs["groups"] for n in plan.nodes if n.op == "conv"}
    dilations = {n.attrs["dilation"] for n in plan.nodes if n.op == "conv"}
    assert groups != {1} and dilations == {1, 2}  # depthwise (sep, dil) and dilated convs are in
    ref, agree = _round_trip(plan, arch, net, digits.x_test, reader)
    rate = float(torch.cat([s.flatten() for s in ref.spikes.values()]).mean())
    assert 0.05 < rate < 0.5
    # Measured (360 test digits, T 4, both readers alike): predictions 100%; spikes 99.99963% of
    # 22.7M (neuron, timestep) pairs (83 flips where BN folding rounds a membrane across the
    # threshold), 99.993% in the last spiking layer; logits within 1e-4: 99.72% (a flipped spike
    # moves a timestep's logits by up to 0.42). Floors: 99.9% for spikes, 99% for logits.
    assert agree["predictions"] == 1.0
    assert agree["spikes"] >= 0.999 and agree["last_layer_spikes"] >= 0.999
    assert agree["logits"] >= 0.99


@pytest.fixture(scope="module")
def native(digits):
    over = {"neuron.placement": "spike_native", "neuron.v_threshold": 0.55}
    return _trained(digits, ALL_OPS, cells=2, **over)


@pytest.mark.parametrize("reader", READERS)
def test_spike_native_wiring_round_trips(native, digits, reader):
    """spike_native's extra neurons (after preprocessing, at the end of each op) and its adds
    of spike maps export like any other node.

    A neuron on a sum of spikes integrates small integers, so at a dyadic threshold (0.5, 1.0
    with tau 2) its membrane lands exactly on the threshold, and a reader that rounds its
    update differently flips the spike (measured: 13-20 % of a node neuron's spikes at 0.5).
    At 0.55 no membrane value k / 2**n can tie with it."""
    plan, arch, net = native
    names = {n.name for n in plan.nodes}
    assert "cells.0.pre0.neuron" in names and any(n.endswith(".e0.neuron") for n in names)
    nodes = plan.by_name()
    assert any(n.op == "add" and all(nodes[i].op == "neuron" for i in n.inputs) for n in plan.nodes)
    _ref, agree = _round_trip(plan, arch, net, digits.x_test, reader)
    # Measured (360 test digits, both readers): every spike and prediction equal, logits identical
    assert agree["predictions"] == agree["spikes"] == agree["logits"] == 1.0


@pytest.mark.parametrize("reader", READERS)
def test_plif_round_trips_with_learned_tau(plif, digits, reader):
    plan, arch, net = plif
    taus = {float(1 / torch.sigmoid(m.w.detach())) for m in net.modules()
            if isinstance(m, sj_neuron.ParametricLIFNode)}
    assert len(taus) > 1  # trained: the layers' time constants moved apart from init_tau
    _ref, agree = _round_trip(plan, arch, net, digits.x_test, reader)
    # Measured (both readers): predictions 100%, spikes 100% of 15.4M (neuron, timestep) pairs at a
    # mean rate of 0.15, logits within 7.2e-7. Floors as above.
    assert agree["predictions"] == 1.0 and agree["spikes"] >= 0.999 and agree["logits"] >= 0.99


def _hand_plan() -> Plan:
    """A BN that cannot fold (its pool is read twice), a value added to itself, and a 'zero' term."""
    def n(name, op, inputs, shape, **attrs):
        return Node(name, op, inputs, shape, attrs)
    pool = {"kernel": 3, "stride": 1, "padding": 1}
    nodes = (
        n("input", "input", (), (1, 8, 8)),
        n("encode", "encode", ("input",), (1, 8, 8), encoding="direct"),
        n("stem.conv", "conv", ("encode",), (4, 8, 8), c_in=1, kernel=3, stride=1, dilation=1, groups=1,
          padding=1),
        n("stem.bn", "bn", ("stem.conv",), (4, 8, 8)),
        n("a", "neuron", ("stem.bn",), (4, 8, 8)),
        n("pool", "avgpool", ("a",), (4, 8, 8), **pool),
        n("pool_bn", "bn", ("pool",), (4, 8, 8)),
        n("nothing", "zero", ("a",), (4, 8, 8)),
        n("sum", "add", ("pool_bn", "pool", "pool", "nothing"), (4, 8, 8)),
        n("b", "neuron", ("sum",), (4, 8, 8)),
        n("head.gap", "gap", ("b",), (4, 1, 1)),
        n("head.linear", "linear", ("head.gap",), (10, 1, 1), c_in=4),
    )
    return Plan(nodes, "head.linear", True, 4, 10, (1, 8, 8))


@pytest.mark.parametrize("reader", READERS)
def test_unfoldable_bn_doubled_and_zero_terms_round_trip(digits, reader):
    plan, arch = _hand_plan(), _arch()
    torch.manual_seed(0)
    net = GraphNet(plan, arch)
    with torch.no_grad():  # seeded BN statistics: the two layers fire at rates 0.34 and 0.27
        for bn, gain, shift in ((net.module_of("stem.bn"), (1.0, 3.0), (0.0, 1.0)),
                                (net.module_of("pool_bn"), (0.5, 1.0), (-1.0, -0.5))):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(*gain)
            bn.bias.uniform_(*shift)
    graph, _ = plan_to_nir(plan, arch, net.state_dict(), dt=DT)
    assert isinstance(graph.nodes["pool_bn"], nir.Conv2d)  # the per-channel affine, not folded
    assert sorted(a for a, b in graph.edges if b == "b") == ["pool.place.x2", "pool.x2", "pool_bn"]
    ref, agree = _round_trip(plan, arch, net, digits.x_test, reader)
    rates = [float(s.mean()) for s in ref.spikes.values()]
    assert all(0.05 < r < 0.5 for r in rates)
    # Measured (both readers): predictions 100%, spikes 100%, logits equal. Floors as above.
    assert agree["predictions"] == 1.0 and agree["spikes"] >= 0.999 and agree["logits"] >= 0.99


# ---------------------------------------------------------------- refusals
def _refusal(plan, arch, approximate=False):
    torch.manual_seed(0)
    state = GraphNet(plan, arch).state_dict()
    with pytest.raises(ExportError) as info:
        plan_to_nir(plan, arch, state, approximate=approximate)
    message = str(info.value)
    assert "\n" not in message and message == f"{info.value.where}: {info.value.reason}; {info.value.hint}"
    return info.value


MAXPOOL = {"normal": [["max_pool_3x3", 0], ["skip_connect", 1]] * 4,
           "reduce": [["max_pool_3x3", 0], ["conv_1x1", 1]] * 4}


def test_refuses_an_ann(digits):
    space = SearchSpace(load_spec("darts", overrides={("macro", "cells"): 3}))
    cand = space.sample(np.random.default_rng(0))
    arch, _ = space.resolve(cand)
    plan = plan_network(arch, cand.arch["cell"], digits.input_shape, digits.num_classes)
    err = _refusal(plan, arch)
    assert err.where == "head.linear" and "no neurons" in err.reason and "onnx" in err.hint


def test_refuses_max_pooling(digits):
    arch = _arch()
    plan = plan_network(arch, MAXPOOL, digits.input_shape, digits.num_classes)
    err = _refusal(plan, arch)
    assert err.where == "cells.0.n0.e0.pool" and "max pooling" in err.reason and "--approximate" in err.hint


def test_refuses_soft_reset(digits):
    arch = _arch(**{"neuron.v_reset": None})
    plan = plan_network(arch, ALL_OPS, digits.input_shape, digits.num_classes)
    err = _refusal(plan, arch)
    assert err.where == "cells.0.pre0.act" and "soft reset" in err.reason and "v_reset" in err.hint


def test_refuses_rate_encoding(digits):
    arch = _arch(encoding="rate")
    plan = plan_network(arch, ALL_OPS, digits.input_shape, digits.num_classes)
    err = _refusal(plan, arch)
    assert err.where == "encode" and "rate encoding" in err.reason and "direct" in err.hint


def test_refuses_a_supernet_mixed_op(digits):
    arch = _arch()
    plan = plan_supernet(arch, digits.input_shape, digits.num_classes).plan
    err = _refusal(plan, arch, approximate=True)
    assert err.where == "cells.0.n0.e0.mix" and "mixed op" in err.reason and "derive" in err.hint


def test_refuses_a_non_positive_dt(all_ops):
    plan, arch, net = all_ops
    with pytest.raises(ExportError, match="^dt: the time step must be positive, got 0.0;"):
        plan_to_nir(plan, arch, net.state_dict(), dt=0.0)


# ---------------------------------------------------------------- approximations
def test_approximations_are_recorded_one_line_each(digits):
    arch = _arch(encoding="rate", **{"neuron.v_reset": None})
    plan = plan_network(arch, MAXPOOL, digits.input_shape, digits.num_classes)
    torch.manual_seed(0)
    graph, notes = plan_to_nir(plan, arch, GraphNet(plan, arch).state_dict(), approximate=True)
    pools = [n.name for n in plan.nodes if n.op == "maxpool"]
    neurons = [n.name for n in plan.nodes if n.op == "neuron"]
    assert len(pools) == 12 and notes[0].startswith("encode: the Bernoulli rate encoder is left out")
    assert sorted(notes[1:]) == sorted(
        [f"{p}: max pooling exported as average pooling (count_include_pad=False)" for p in pools]
        + [f"{n}: soft reset exported as a hard reset to 0" for n in neurons])
    assert all(float(graph.nodes[n].v_reset.max()) == 0.0 for n in neurons)


# ---------------------------------------------------------------- the file
def test_write_nir_writes_a_graph_readers_load(all_ops, tmp_path, digits):
    plan, arch, net = all_ops
    facts = write_nir(plan, arch, net.state_dict(), tmp_path, dt=DT)
    assert facts == {"files": ["network.nir"], "dt": DT, "approximations": [], "nir_version": nir.version,
                     "timesteps": 4}
    read = nir.read(tmp_path / "network.nir")  # nir's own type check passes on the file
    graph, _ = plan_to_nir(plan, arch, net.state_dict(), dt=DT)
    assert sorted(read.edges) == sorted(graph.edges) and read.nodes.keys() == graph.nodes.keys()
    lif = read.nodes["cells.0.pre0.act"]
    assert isinstance(lif, nir.LIF)
    assert float(lif.tau.max()) == float(lif.tau.min()) == np.float32(2.0 * DT)  # tau_sj * dt, tau_sj = 2
    ref = trace_graphnet(net, digits.x_test[:64])
    module = load_reader(read, "snntorch", DT)
    other = trace_reader(module, "snntorch", digits.x_test[:64], 4, list(ref.spikes))
    assert agreement(ref, other)["predictions"] == 1.0
