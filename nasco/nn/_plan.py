"""Network plans: a genotype and its resolved space -> a flat graph of typed nodes.

The same plan is interpreted twice: by :class:`nasco.nn.GraphNet` to build the torch
module, and by :func:`nasco.nn.workload` for the cost model's layer list. One source of
truth keeps the two in step (a test checks their MAC counts agree).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nasco.dsl import ArchSpace
from nasco.dsl._vocab import OPS
from nasco.space import cell_graph

__all__ = ["Node", "Plan", "SupernetPlan", "plan_network", "plan_supernet"]


@dataclass(frozen=True)
class Node:
    """One step of the network; ``shape`` is (C, H, W) per sample per timestep."""

    name: str
    op: str  # input encode conv bn relu neuron avgpool maxpool add concat gap linear zero mix
    inputs: tuple[str, ...]
    shape: tuple[int, int, int]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    nodes: tuple[Node, ...]
    output: str
    spiking: bool
    timesteps: int
    num_classes: int
    input_shape: tuple[int, int, int]

    def by_name(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}

    def binary(self) -> dict[str, bool]:
        """Node name -> whether its output is binary spikes (neurons, rate-encoded input,
        and concatenations or max-pools of spikes)."""
        out: dict[str, bool] = {}
        for n in self.nodes:
            if n.op == "neuron":
                out[n.name] = True
            elif n.op == "encode":  # 'events': GraphNet clips event frames to {0, 1}
                out[n.name] = n.attrs["encoding"] in ("rate", "events")
            elif n.op in ("concat", "maxpool"):
                out[n.name] = all(out[i] for i in n.inputs)
            else:
                out[n.name] = False
        return out

    def static(self) -> dict[str, bool]:
        """Node name -> whether its value is the same at every timestep. A directly encoded
        input is; so is everything computed from it before the first neuron. Such layers
        run once per inference, not once per timestep."""
        out: dict[str, bool] = {}
        for n in self.nodes:
            if n.op == "input":
                out[n.name] = True
            elif n.op == "encode":
                out[n.name] = n.attrs["encoding"] == "direct"
            elif n.op == "neuron":
                out[n.name] = False
            else:
                out[n.name] = all(out[i] for i in n.inputs)
        return out


class _Builder:
    def __init__(self, space: ArchSpace) -> None:
        self.space = space
        self.nodes: list[Node] = []
        self.shapes: dict[str, tuple[int, int, int]] = {}
        self.index: dict[str, int] = {}
        self.spiking = space.neuron is not None
        placement = space.neuron.placement if self.spiking else None
        # spike_native is post_node with every value that crosses memory turned into spikes:
        # see plan_network.
        self.spike_native = placement == "spike_native"
        self.post_node = placement in ("post_node", "spike_native")
        # Supernet mode: the candidate op a node belongs to ((kind, edge, op index), see
        # plan_supernet), and one activation per value shared by every op that reads it.
        self.owner: tuple[str, int, int] | None = None
        self.owners: dict[str, tuple[str, int, int]] = {}
        self.shared_acts: dict[str, str] | None = None

    def add(self, name: str, op: str, inputs: tuple[str, ...], shape: tuple[int, int, int], **attrs) -> str:
        if name in self.shapes:  # pragma: no cover - a builder bug
            raise RuntimeError(f"duplicate node {name}")
        self.index[name] = len(self.nodes)
        self.nodes.append(Node(name, op, inputs, shape, attrs))
        self.shapes[name] = shape
        if self.owner is not None:
            self.owners[name] = self.owner
        return name

    # -------------------------------------------------------------- primitives
    def act(self, x: str, name: str) -> str:
        """The nonlinearity before a conv: ReLU (ANN) or a neuron (SNN). With neurons after
        the nodes (post_node) a value that is already spikes passes unchanged, so every conv
        of a spiking network sees binary input either way."""
        if self.post_node and self.binary(x):
            return x
        if self.shared_acts is not None:
            # In a supernet every candidate op on an edge reads the same value; its ReLU or
            # neuron is computed once (a node fires once and each op's conv reads the spikes,
            # SpikeDHS's membrane mixing, Che et al., NeurIPS 2022). Owned by no single op.
            if x not in self.shared_acts:
                owner, self.owner = self.owner, None
                self.shared_acts[x] = self.add(f"{x}.act", "neuron" if self.spiking else "relu", (x,),
                                               self.shapes[x])
                self.owner = owner
            return self.shared_acts[x]
        return self.add(name, "neuron" if self.spiking else "relu", (x,), self.shapes[x])

    def binary(self, x: str) -> bool:
        n = self.nodes[self.index[x]]
        if n.op == "neuron":
            return True
        if n.op in ("concat", "maxpool"):
            return all(self.binary(i) for i in n.inputs)
        return n.op == "encode" and n.attrs["encoding"] in ("rate", "events")

    def conv(self, x: str, name: str, c_out: int, k: int, stride: int = 1, dilation: int = 1,
             groups: int = 1, pad: int | None = None) -> str:
        c, h, w = self.shapes[x]
        pad = dilation * (k - 1) // 2 if pad is None else pad
        ho = (h + 2 * pad - dilation * (k - 1) - 1) // stride + 1
        wo = (w + 2 * pad - dilation * (k - 1) - 1) // stride + 1
        if ho < 1 or wo < 1:
            raise ValueError(f"{name}: a {k}x{k} conv does not fit a {h}x{w} input")
        return self.add(name, "conv", (x,), (c_out, ho, wo), c_in=c, kernel=k, stride=stride,
                        dilation=dilation, groups=groups, padding=pad)

    def bn(self, x: str, name: str) -> str:
        return self.add(name, "bn", (x,), self.shapes[x])

    def act_conv_bn(self, x: str, name: str, c_out: int, k: int, stride: int = 1) -> str:
        a = self.act(x, f"{name}.act")
        return self.bn(self.conv(a, f"{name}.conv", c_out, k, stride), f"{name}.bn")

    def pool(self, x: str, name: str, kind: str, k: int, stride: int, pad: int) -> str:
        c, h, w = self.shapes[x]
        ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        return self.add(name, kind, (x,), (c, ho, wo), kernel=k, stride=stride, padding=pad)

    def sum(self, xs: list[str], name: str) -> str:
        if len(xs) == 1:
            return xs[0]
        return self.add(name, "add", tuple(xs), self.shapes[xs[0]])

    def node_out(self, x: str, name: str) -> str:
        """After a cell node's sum: a neuron when neurons sit after nodes (under spike_native,
        not on a value that is spikes already, such as a single skip of spikes)."""
        if not self.post_node or (self.spike_native and self.binary(x)):
            return x
        return self.add(f"{name}.neuron", "neuron", (x,), self.shapes[x])

    def spikes(self, x: str, name: str) -> str:
        """Under spike_native, a neuron on ``x`` unless it is spikes already: what leaves an op
        or a preprocessing conv is then a spike map; other wirings leave ``x`` as it is."""
        if not self.spike_native or self.binary(x):
            return x
        return self.add(f"{name}.neuron", "neuron", (x,), self.shapes[x])

    # -------------------------------------------------------------- edge ops
    def edge(self, x: str, name: str, op: str, c_out: int, stride: int) -> str:
        """The layers of one edge op on ``x``; under spike_native they end in a neuron unless
        their output is spikes already (a skip of spikes, a max-pool of spikes without BN)."""
        return self.spikes(self._edge(x, name, op, c_out, stride), name)

    def _edge(self, x: str, name: str, op: str, c_out: int, stride: int) -> str:
        d = OPS[op]
        c, _h, _w = self.shapes[x]
        if d.kind == "skip":
            # A strided skip becomes act-conv1x1(stride 2)-BN, the shortcut NB201's residual
            # block uses, rather than DARTS's two-branch FactorizedReduce.
            return x if stride == 1 and c == c_out else self.act_conv_bn(x, name, c_out, 1, stride)
        if d.kind == "conv":
            return self.act_conv_bn(x, name, c_out, d.kernel, stride)
        if d.kind == "sep":
            # act - depthwise kxk (dilated for dil_conv) - BN - act - pointwise 1x1 - BN. DARTS
            # stacks two act-dw-pw-BN blocks for sep_conv; one block keeps CPU runs short, and
            # the act between dw and pw keeps the pointwise conv's input binary in an SNN.
            a = self.act(x, f"{name}.act")
            dw = self.bn(self.conv(a, f"{name}.dw", c, d.kernel, stride, dilation=d.dilation, groups=c),
                         f"{name}.dw_bn")
            return self.act_conv_bn(dw, f"{name}.pw", c_out, 1)
        if d.kind in ("pool_avg", "pool_max"):
            p = self.pool(x, f"{name}.pool", "avgpool" if d.kind == "pool_avg" else "maxpool", 3, stride, 1)
            if c != c_out:
                return self.act_conv_bn(p, f"{name}.proj", c_out, 1)  # ends in a BN already
            return self.bn(p, f"{name}.pool_bn") if self.space.cell.pool_bn else p
        raise ValueError(f"op {op} has no layers")  # 'none' edges never reach here

    # -------------------------------------------------------------- cells
    def darts_cell(self, s0: str, s1: str, name: str, cell: list, c: int, reduction: bool) -> str:
        spec = self.space.cell
        # After a reduction the cell two back has twice the resolution: its 1x1
        # preprocessing conv then strides (DARTS uses FactorizedReduce there).
        s0_stride = max(1, -(-self.shapes[s0][1] // self.shapes[s1][1]))  # ceil: odd sizes (17 -> 9)
        s0 = self.spikes(self.act_conv_bn(s0, f"{name}.pre0", c, 1, s0_stride), f"{name}.pre0")
        s1 = self.spikes(self.act_conv_bn(s1, f"{name}.pre1", c, 1), f"{name}.pre1")
        k = spec.edges_per_node or 2
        edges = [(2 + pos // k, j, op) for pos, (op, j) in enumerate(cell)]
        g = cell_graph(spec, edges)
        states = {0: s0, 1: s1}
        outputs = []
        for i in range(spec.nodes):
            node_id = 2 + i
            terms = []
            for src in sorted(g.predecessors(node_id)):
                op = g.edges[src, node_id]["op"]
                stride = 2 if reduction and src < 2 else 1
                terms.append(self.edge(states[src], f"{name}.n{i}.e{src}", op, c, stride))
            states[node_id] = self.node_out(self.sum(terms, f"{name}.n{i}.sum"), f"{name}.n{i}")
            outputs.append(states[node_id])
        _c, h, w = self.shapes[outputs[0]]
        return self.add(f"{name}.out", "concat", tuple(outputs), (c * len(outputs), h, w))

    def dense_cell(self, x: str, name: str, cell_edges: list[str], prune_dead: bool = True) -> str:
        spec = self.space.cell
        pairs = [(i, j) for i in range(1, spec.nodes + 1) for j in range(i)]
        edges = [(i, j, op) for (i, j), op in zip(pairs, cell_edges)]
        if prune_dead:
            g = cell_graph(spec, edges)
            ins = {i: [(j, g.edges[j, i]["op"]) for j in sorted(g.predecessors(i))] for i in g if i > 0}
        else:  # every non-'none' edge, live or not (see plan_network)
            ins = {i: [(j, op) for d, j, op in edges if d == i and op != "none"]
                   for i in range(1, spec.nodes + 1)}
        c = self.shapes[x][0]
        states = {0: x}
        last = spec.nodes

        def state(j: int) -> str:
            if j not in states:  # a node without inputs, read by an unpruned edge: zeros
                states[j] = self.add(f"{name}.n{j}.zero", "zero", (x,), self.shapes[x])
            return states[j]

        for i in range(1, spec.nodes + 1):
            if i not in ins:
                continue
            terms = [self.edge(state(j), f"{name}.n{i}.e{j}", op, c, 1) for j, op in ins[i]]
            if terms:
                states[i] = self.node_out(self.sum(terms, f"{name}.n{i}.sum"), f"{name}.n{i}")
            elif i == last:  # the output node with no live input: the cell outputs zeros
                states[i] = self.add(f"{name}.zero", "zero", (x,), self.shapes[x])
        return states[last]

    def resblock(self, x: str, name: str, c_out: int) -> str:
        # NB201's residual reduction block: act-conv3x3(s2)-BN, act-conv3x3-BN, plus a
        # 2x2 average-pool + 1x1 conv shortcut (Dong & Yang, ICLR 2020).
        a = self.act_conv_bn(x, f"{name}.a", c_out, 3, 2)
        b = self.spikes(self.act_conv_bn(a, f"{name}.b", c_out, 3, 1), f"{name}.b")
        p = self.pool(x, f"{name}.short.pool", "avgpool", 2, 2, 0)
        s = self.spikes(self.conv(p, f"{name}.short.conv", c_out, 1), f"{name}.short")
        return self.node_out(self.add(f"{name}.sum", "add", (b, s), self.shapes[b]), name)


    # -------------------------------------------------------------- supernet cells
    def mixed_edge(self, x: str, name: str, kind: str, edge: int, c_out: int, stride: int) -> str:
        """Every op of the vocabulary on one edge, summed with the weights of alpha[kind][edge]
        (a 'mix' node). Op outputs are pre-spike currents (no op ends in a neuron), so in a
        spiking net the mix happens at the membrane and the consumer fires once."""
        terms, slots = [], []
        for o, op in enumerate(self.space.cell.ops):
            if OPS[op].kind == "none":
                continue
            self.owner = (kind, edge, o)
            terms.append(self.edge(x, f"{name}.{op}", op, c_out, stride))
            self.owner = None
            slots.append(o)
        return self.add(f"{name}.mix", "mix", tuple(terms), (c_out, *self.shapes[terms[0]][1:]),
                        kind=kind, edge=edge, slots=tuple(slots))

    def darts_supercell(self, s0: str, s1: str, name: str, c: int, reduction: bool) -> str:
        spec = self.space.cell
        kind = "reduce" if reduction else "normal"
        s0_stride = max(1, -(-self.shapes[s0][1] // self.shapes[s1][1]))  # ceil: odd sizes (17 -> 9)
        s0 = self.spikes(self.act_conv_bn(s0, f"{name}.pre0", c, 1, s0_stride), f"{name}.pre0")
        s1 = self.spikes(self.act_conv_bn(s1, f"{name}.pre1", c, 1), f"{name}.pre1")
        states = [s0, s1]
        edge = 0
        for i in range(spec.nodes):
            terms = []
            for j in range(2 + i):
                stride = 2 if reduction and j < 2 else 1
                terms.append(self.mixed_edge(states[j], f"{name}.n{i}.e{j}", kind, edge, c, stride))
                edge += 1
            states.append(self.node_out(self.sum(terms, f"{name}.n{i}.sum"), f"{name}.n{i}"))
        outputs = states[2:]
        _c, h, w = self.shapes[outputs[0]]
        return self.add(f"{name}.out", "concat", tuple(outputs), (c * len(outputs), h, w))

    def dense_supercell(self, x: str, name: str) -> str:
        spec = self.space.cell
        c = self.shapes[x][0]
        states = [x]
        edge = 0
        for i in range(1, spec.nodes + 1):
            terms = []
            for j in range(i):
                terms.append(self.mixed_edge(states[j], f"{name}.n{i}.e{j}", "normal", edge, c, 1))
                edge += 1
            states.append(self.node_out(self.sum(terms, f"{name}.n{i}.sum"), f"{name}.n{i}"))
        return states[-1]


def _macro(b: _Builder, space: ArchSpace, cell_fn, input_shape: tuple[int, int, int], num_classes: int) -> Plan:
    """The macro network around the cells ``cell_fn(b, s0, s1, name, c, reduction) -> str``
    builds: stem, cells (reductions where the space says), head."""
    m = space.macro
    c = m.stem.channels
    x = b.add("input", "input", (), tuple(input_shape))
    spiking = space.neuron is not None
    timesteps = int(space.timesteps) if spiking else 1
    if spiking:
        x = b.add("encode", "encode", (x,), tuple(input_shape), encoding=space.encoding)
    stem = b.bn(b.conv(x, "stem.conv", c * m.stem.multiplier, m.stem.kernel), "stem.bn")
    stem = b.node_out(stem, "stem")
    reductions = set(m.reductions)
    s0 = s1 = stem
    out = stem
    for pos in range(m.cells):
        red = pos in reductions
        if red:
            c *= m.channel_multiplier
        out = cell_fn(b, s0, s1, f"cells.{pos}", c, red)
        s0, s1 = s1, out
    if space.cell.type == "dense":  # NB201 ends in BN-ReLU before pooling
        out = b.act(b.bn(out, "head.bn"), "head.act")
    gap = b.add("head.gap", "gap", (out,), (b.shapes[out][0], 1, 1))
    logits = b.add("head.linear", "linear", (gap,), (num_classes, 1, 1), c_in=b.shapes[out][0])
    return Plan(tuple(b.nodes), logits, spiking, timesteps, num_classes, tuple(input_shape))


def _check_resolved(space: ArchSpace) -> None:
    from nasco.dsl import Choice  # local: keeps the import surface of this module small

    open_ = (space.macro.cells, space.macro.stem.channels, space.timesteps,
             space.neuron.placement if space.neuron is not None else None)
    if any(isinstance(v, Choice) for v in open_):
        raise ValueError("a network or supernet plan needs a resolved space (see SearchSpace.resolve)")


def plan_network(space: ArchSpace, cell: dict[str, Any], input_shape: tuple[int, int, int],
                 num_classes: int, *, prune_dead: bool = True) -> Plan:
    """The plan of the network a resolved space and a cell genotype describe.

    In a spiking space ``neuron.placement`` wires the neurons: ``pre_op`` puts one before
    every conv inside each op (each op fires on the value it reads, so a node's sum and a
    preprocessing conv's output are multi-bit currents); ``post_node`` one after each cell
    node's sum and after the stem (ops read spikes of nodes, but preprocessing outputs stay
    currents that every edge fires on again); ``spike_native`` is post_node with a neuron
    after each preprocessing conv and at the end of each op whose output is not spikes
    already, so that every value a conv, linear or add reads is a spike map, the stem's
    directly encoded image, the classifier's globally pooled features and the average-pooled
    spikes of NB201's residual shortcut aside.

    ``prune_dead=False`` (dense cells only) keeps the edges that :func:`nasco.space.cell_graph`
    prunes: every non-'none' edge is computed, also when its output never reaches the cell's
    output or its input node has no input (that node then carries zeros). The network computes
    the same function; only its cost differs. HW-NAS-Bench's latencies count such edges (see
    nasco.nn._nb201_bulk).
    """
    _check_resolved(space)
    if not prune_dead and space.cell.type != "dense":
        raise ValueError(f"space '{space.name}': prune_dead=False is implemented for dense cells only, "
                         f"got cell.type '{space.cell.type}'; use prune_dead=True")

    def cell_fn(b: _Builder, s0: str, s1: str, name: str, c: int, red: bool) -> str:
        if space.cell.type == "darts":
            return b.darts_cell(s0, s1, name, cell["reduce" if red else "normal"], c, red)
        if red:  # dense cells reduce through NB201's residual block
            return b.resblock(s1, name, c)
        return b.dense_cell(s1, name, cell["edges"], prune_dead)

    return _macro(_Builder(space), space, cell_fn, input_shape, num_classes)


@dataclass(frozen=True)
class SupernetPlan:
    """A weight-sharing supernet: every edge of every cell carries all ops of the space's
    vocabulary, mixed by architecture weights ``alpha[kind]`` of shape ``(edges, ops)``.

    ``kinds`` maps each alpha kind ('normal', and 'reduce' for DARTS cells) to its edges as
    (node, input) pairs in alpha-row order; ``owners`` maps every node that belongs to one
    candidate op to (kind, edge, op index): the cost of an op is the cost of its nodes.
    """

    plan: Plan
    ops: tuple[str, ...]
    kinds: dict[str, tuple[tuple[int, int], ...]]
    owners: dict[str, tuple[str, int, int]]

    def alpha_shapes(self) -> dict[str, tuple[int, int]]:
        return {k: (len(e), len(self.ops)) for k, e in self.kinds.items()}


def plan_supernet(space: ArchSpace, input_shape: tuple[int, int, int], num_classes: int) -> SupernetPlan:
    """The supernet plan of a resolved space (macro choices fixed, the cell left open)."""
    _check_resolved(space)
    b = _Builder(space)
    b.shared_acts = {}
    nodes = space.cell.nodes
    if space.cell.type == "darts":
        edges = tuple((i, j) for i in range(nodes) for j in range(2 + i))
        kinds = {"normal": edges, "reduce": edges} if space.macro.reductions else {"normal": edges}

        def cell_fn(b: _Builder, s0: str, s1: str, name: str, c: int, red: bool) -> str:
            return b.darts_supercell(s0, s1, name, c, red)
    else:
        kinds = {"normal": tuple((i, j) for i in range(1, nodes + 1) for j in range(i))}

        def cell_fn(b: _Builder, s0: str, s1: str, name: str, c: int, red: bool) -> str:
            return b.resblock(s1, name, c) if red else b.dense_supercell(s1, name)
    plan = _macro(b, space, cell_fn, input_shape, num_classes)
    return SupernetPlan(plan, tuple(space.cell.ops), kinds, dict(b.owners))
