"""Spiking plans -> NIR graphs (the Neuromorphic Intermediate Representation, nir 1.0).

The graph is built from the plan, node by node, with the trained weights; every layer maps to
NIR nodes that compute the same function up to float rounding, or the export refuses (an
:class:`ExportError` naming the layer) unless ``approximate=True`` maps it approximately and
says so. A plan value becomes the set of NIR nodes whose outputs sum to it: NIR sums all
edges into a node, which is how ``add`` is expressed, and ``zero`` is the empty set.

The graph runs one timestep per call: the input node takes the image at every timestep (direct
encoding), and the output node gives the logits of that timestep; nasco's prediction is their
mean over the plan's ``timesteps``.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, Mapping

import nir
import numpy as np
import torch

from nasco.dsl import ArchSpace
from nasco.export._errors import ExportError
from nasco.nn import GraphNet, Node, Plan

__all__ = ["NIR_FILE", "lif_parameters", "plan_to_nir", "write_nir"]

NIR_FILE = "network.nir"


def lif_parameters(tau_sj: float, v_threshold: float, v_reset: float, dt: float) -> dict[str, float]:
    """NIR LIF parameters that reproduce spikingjelly's discrete LIF (decay_input=True, hard
    reset) at the time step ``dt``.

    NIR's LIF (nir/ir/neuron.py, NIR paper: Pedersen et al., Nat. Commun. 15, 8122, 2024):
        tau dv/dt = (v_leak - v) + r I,  z = [v > v_threshold],  v <- v_reset where z.
    One forward-Euler step of length dt (the scheme snnTorch's and Norse's readers use):
        v' = v + (dt / tau) (v_leak - v) + (dt / tau) r I.
    spikingjelly's LIFNode with decay_input=True charges
        H = V + (X - (V - V_reset)) / tau_sj = V + (V_reset - V) / tau_sj + X / tau_sj,
    fires H >= V_th and hard-resets to V_reset. Term by term: dt / tau = 1 / tau_sj, so
    tau = dt * tau_sj; v_leak = V_reset; (dt / tau) r = 1 / tau_sj, so r = 1. Threshold and
    reset carry over. The two firing rules differ only where H equals V_th exactly.
    """
    return {"tau": dt * tau_sj, "r": 1.0, "v_leak": v_reset, "v_threshold": v_threshold, "v_reset": v_reset}


@dataclass
class _Graph:
    """The NIR graph under construction: nodes, edges, and each plan value as the NIR nodes whose
    outputs sum to it."""

    nodes: dict[str, nir.NIRNode] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    terms: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, node: nir.NIRNode, sources: list[str], where: str) -> str:
        if not sources:
            raise ExportError(where, "this layer reads only zeros (every input edge is 'zero')",
                              "remove the dead layer from the cell, or export to onnx or torch")
        self.nodes[name] = node
        self.edges.extend((s, name) for s in sources)
        return name


def _conv(weight: np.ndarray, in_chw: tuple[int, int, int], *, stride=1, padding=0, dilation=1, groups=1,
          bias: np.ndarray | None = None) -> nir.Conv2d:
    """A NIR Conv2d. A grouped conv is written as the dense conv with block-diagonal weights (the
    same function): snnTorch 1.0 and Norse 1.1 build torch's Conv2d with in_channels =
    weight.shape[1] and cannot load groups > 1, and nir 1.0.8's type inference reads the input
    channels the same way. The types are set here because nir infers a kernel as square."""
    w = np.asarray(weight, dtype=np.float64)
    if groups > 1:
        c_out, c_in_g = w.shape[:2]
        dense = np.zeros((c_out, c_in_g * groups, *w.shape[2:]))
        per_group = c_out // groups
        for o in range(c_out):
            g = o // per_group
            dense[o, g * c_in_g:(g + 1) * c_in_g] = w[o]
        w = dense
    b = np.zeros(w.shape[0]) if bias is None else np.asarray(bias, dtype=np.float64)
    c, h, wd = in_chw
    conv = nir.Conv2d(input_shape=(h, wd), weight=w.astype(np.float32), stride=stride, padding=padding,
                      dilation=dilation, groups=1, bias=b.astype(np.float32))
    out = [(n + 2 * p - d * (k - 1) - 1) // s + 1
           for n, p, d, k, s in zip((h, wd), conv.padding, conv.dilation, w.shape[2:], conv.stride)]
    conv.output_type = {"output": np.array([w.shape[0], *out])}
    return conv


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


class _Exporter:
    """Maps one plan, node by node, onto a :class:`_Graph`."""

    def __init__(self, plan: Plan, space: ArchSpace, net: GraphNet, dt: float, approximate: bool) -> None:
        self.plan, self.space, self.net, self.dt, self.approximate = plan, space, net, dt, approximate
        self.g = _Graph()
        self.notes: list[str] = []
        self.by_name = plan.by_name()
        self.readers = Counter(i for n in plan.nodes for i in n.inputs)

    def refuse_or_note(self, where: str, reason: str, hint: str, note: str) -> None:
        if not self.approximate:
            raise ExportError(where, reason, hint)
        self.notes.append(f"{where}: {note}")

    def sources(self, node: Node, value: str | None = None) -> list[str]:
        """The NIR nodes that feed ``node`` from its (first) input ``value``: that value's terms;
        a term that appears k times (a value added to itself) passes a x k depthwise 1x1 conv."""
        value = node.inputs[0] if value is None else value
        out = []
        for term, k in Counter(self.g.terms[value]).items():
            if k > 1:
                name = f"{term}.x{k}"
                if name not in self.g.nodes:
                    c, h, w = self.by_name[value].shape
                    self.g.add(name, _conv(np.full((c, 1, 1, 1), k), (c, h, w), groups=c), [term], node.name)
                term = name
            out.append(term)
        return out

    def run(self) -> nir.NIRGraph:
        for node in self.plan.nodes:
            handler = getattr(self, f"op_{node.op}", None)
            if handler is None:
                raise ExportError(node.name, f"NIR has no exact form of the op '{node.op}'",
                                  "export to onnx or torch")
            handler(node)
        out = self.plan.output
        self.g.add("output", nir.Output(output_type={"output": np.array([self.plan.num_classes])}),
                   self.g.terms[out], out)
        names = [n.replace(".", "_") for n in self.g.nodes]
        if len(set(names)) != len(names):  # pragma: no cover - a naming bug here
            raise RuntimeError("two NIR node names collide once '.' becomes '_' in torch readers")
        graph = nir.NIRGraph(nodes=self.g.nodes, edges=self.g.edges, type_check=False)
        graph.check_types()  # the types set by _conv and the plan's shapes agree along every edge
        return graph

    # ------------------------------------------------------------------ ops
    def op_input(self, node: Node) -> None:
        self.g.nodes["input"] = nir.Input(input_type={"input": np.array(node.shape)})
        self.g.terms[node.name] = ["input"]

    def op_encode(self, node: Node) -> None:
        enc = node.attrs["encoding"]
        if enc == "rate":
            self.refuse_or_note(node.name, "rate encoding draws random spikes, which NIR cannot express",
                                "retrain with encoding 'direct', or pass --approximate to export the network "
                                "after the encoder (its input is then the spike trains)",
                                "the Bernoulli rate encoder is left out: the graph's input is the spike "
                                "train of the image, one frame per timestep")
        # 'direct': the image at every timestep; 'events': one binary event frame per timestep.
        self.g.terms[node.name] = list(self.g.terms[node.inputs[0]])

    def op_conv(self, node: Node) -> None:
        a = node.attrs
        weight = _numpy(self.net.module_of(node.name).weight)
        conv = _conv(weight, self.by_name[node.inputs[0]].shape, stride=a["stride"], padding=a["padding"],
                     dilation=a["dilation"], groups=a["groups"])
        self.g.terms[node.name] = [self.g.add(node.name, conv, self.sources(node), node.name)]

    def op_bn(self, node: Node) -> None:
        bn = self.net.module_of(node.name)
        scale = _numpy(bn.weight) / np.sqrt(_numpy(bn.running_var) + bn.eps)
        shift = _numpy(bn.bias) - _numpy(bn.running_mean) * scale
        src = self.by_name[node.inputs[0]]
        if src.op in ("conv", "avgpool", "maxpool") and self.readers[src.name] == 1:
            # Fold into the convs that make the input (exact up to float rounding): y = s * sum_t t + b
            # = sum_t (s * t) + b, the shift added to one of them.
            for i, term in enumerate(self.g.terms[src.name]):
                conv = self.g.nodes[term]
                conv.weight = (conv.weight * scale[:, None, None, None]).astype(np.float32)
                conv.bias = (conv.bias * scale + (shift if i == 0 else 0.0)).astype(np.float32)
            self.g.terms[node.name] = list(self.g.terms[src.name])
            return
        c, h, w = node.shape  # a per-channel affine: a depthwise 1x1 conv with bias
        conv = _conv(scale.reshape(c, 1, 1, 1), (c, h, w), groups=c, bias=shift)
        self.g.terms[node.name] = [self.g.add(node.name, conv, self.sources(node), node.name)]

    def op_neuron(self, node: Node) -> None:
        n = self.space.neuron
        module = self.net.module_of(node.name)
        if n.type == "plif":  # spikingjelly's PLIF: 1 / tau = sigmoid(w)
            tau_sj = 1.0 / float(torch.sigmoid(module.w.detach().double()))
        else:
            tau_sj = float(n.tau)
        v_reset = n.v_reset
        if v_reset is None:
            self.refuse_or_note(node.name, "soft reset (subtract the threshold) has no NIR form: NIR's LIF "
                                "resets to v_reset", "retrain with a hard reset (neuron.v_reset: 0.0), or "
                                "pass --approximate to export a hard reset to 0", "soft reset exported as a "
                                "hard reset to 0")
            v_reset = 0.0
        p = lif_parameters(tau_sj, float(n.v_threshold), float(v_reset), self.dt)
        lif = nir.LIF(**{k: np.full(node.shape, v, dtype=np.float32) for k, v in p.items()})
        self.g.terms[node.name] = [self.g.add(node.name, lif, self.sources(node), node.name)]

    def op_maxpool(self, node: Node) -> None:
        self.refuse_or_note(node.name, "max pooling has no NIR node", "use a space without max_pool_3x3, "
                            "or pass --approximate to export it as average pooling",
                            "max pooling exported as average pooling (count_include_pad=False)")
        self.op_avgpool(node)

    def op_avgpool(self, node: Node) -> None:
        in_shape = self.by_name[node.inputs[0]].shape
        self.g.terms[node.name] = _avgpool(self.g, node, in_shape, self.sources(node))

    def op_mix(self, node: Node) -> None:
        raise ExportError(node.name, "a supernet's mixed op (every candidate op weighted by alpha) is no "
                          "single network", "derive the discrete cell first and export the trained network")

    def op_add(self, node: Node) -> None:
        self.g.terms[node.name] = [t for i in node.inputs for t in self.g.terms[i]]

    def op_zero(self, node: Node) -> None:
        self.g.terms[node.name] = []

    def op_concat(self, node: Node) -> None:
        # One 1x1 conv per input that copies its channels into their slice of the output; the
        # consumer sums the slices.
        c_out, h, w = node.shape
        offset, terms = 0, []
        for k, name in enumerate(node.inputs):
            c = self.by_name[name].shape[0]
            weight = np.zeros((c_out, c, 1, 1))
            weight[offset + np.arange(c), np.arange(c), 0, 0] = 1.0
            offset += c
            terms.append(self.g.add(f"{node.name}.slice{k}", _conv(weight, (c, h, w)),
                                    self.sources(node, name), node.name))
        self.g.terms[node.name] = terms

    def op_gap(self, node: Node) -> None:
        c, h, w = self.by_name[node.inputs[0]].shape
        mean = _conv(np.full((c, 1, h, w), 1.0 / (h * w)), (c, h, w), groups=c)
        pool = self.g.add(f"{node.name}.pool", mean, self.sources(node), node.name)
        # Negative dims: NIR shapes are per sample, torch readers add a batch dim in front.
        flat = nir.Flatten(input_type={"input": np.array([c, 1, 1])}, start_dim=-3, end_dim=-1)
        self.g.terms[node.name] = [self.g.add(node.name, flat, [pool], node.name)]

    def op_linear(self, node: Node) -> None:
        lin = self.net.module_of(node.name)
        affine = nir.Affine(weight=_numpy(lin.weight).astype(np.float32),
                            bias=_numpy(lin.bias).astype(np.float32))
        self.g.terms[node.name] = [self.g.add(node.name, affine, self.sources(node), node.name)]


def _pool_operator(h: int, w: int, k: int, s: int, p: int, include_pad: bool) -> np.ndarray:
    """The k x k, stride s, padding p average pool of one channel as a (Ho, Wo, H, W) array:
    each output divides its window's sum by k*k (include_pad) or by the window's in-map cells."""
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    op = np.zeros((ho, wo, h, w))
    for i in range(ho):
        rows = [r for r in range(i * s - p, i * s - p + k) if 0 <= r < h]
        for j in range(wo):
            cols = [c for c in range(j * s - p, j * s - p + k) if 0 <= c < w]
            op[i, j, rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] = 1.0 / (k * k if include_pad else
                                                                           len(rows) * len(cols))
    return op


def _avgpool(g: _Graph, node: Node, in_shape: tuple[int, int, int], sources: list[str]) -> list[str]:
    """nasco's average pool (count_include_pad=False) as NIR convs, exactly.

    A depthwise k x k conv of weight 1/k^2 is the pool wherever the window lies inside the map;
    windows over the padding divide by fewer cells. That difference D (nonzero only on the R
    border outputs) is added by two more depthwise convs: 'gather', an H x W kernel per border
    output (D's row) that reduces the map to R values, and 'place', an Ho x Wo kernel with
    padding (Ho-1, Wo-1) that writes each value to its output position (a 1 at the mirrored
    kernel position). The pool is the sum of the first conv and 'place'."""
    a = node.attrs
    k, s, p = a["kernel"], a["stride"], a["padding"]
    c, h, w = in_shape
    _c, ho, wo = node.shape
    window = _conv(np.full((c, 1, k, k), 1.0 / (k * k)), in_shape, stride=s, padding=p, groups=c)
    terms = [g.add(node.name, window, sources, node.name)]
    diff = (_pool_operator(h, w, k, s, p, False) - _pool_operator(h, w, k, s, p, True)).reshape(ho * wo, h, w)
    border = [int(o) for o in np.flatnonzero(np.abs(diff).reshape(ho * wo, -1).max(axis=1) > 0)]
    if not border:
        return terms
    r = len(border)
    gather = np.tile(diff[border][:, None], (c, 1, 1, 1))  # (c * r, 1, h, w), r rows per channel
    place = np.zeros((c, r, ho, wo))
    for j, o in enumerate(border):
        place[:, j, ho - 1 - o // wo, wo - 1 - o % wo] = 1.0
    gathered = g.add(f"{node.name}.gather", _conv(gather, in_shape, groups=c), sources, node.name)
    terms.append(g.add(f"{node.name}.place", _conv(place, (c * r, 1, 1), padding=(ho - 1, wo - 1), groups=c),
                       [gathered], node.name))
    return terms


def plan_to_nir(plan: Plan, space: ArchSpace, state: Mapping[str, torch.Tensor], *, dt: float = 1e-4,
                approximate: bool = False) -> tuple[nir.NIRGraph, list[str]]:
    """The NIR graph of a spiking network (its plan, resolved space and GraphNet state dict) at
    the time step ``dt`` (seconds), and one line per approximation made.

    Raises :class:`ExportError` (the layer, the reason, the fix) for what NIR cannot express
    exactly: an ANN, max pooling, soft reset, rate encoding, a supernet's mixed ops. With
    ``approximate=True`` max pooling becomes average pooling, soft reset a hard reset to 0 and
    rate encoding is left outside the graph, each recorded in the returned list.
    """
    if not plan.spiking:
        raise ExportError(plan.output, "NIR holds spiking networks and this one has no neurons",
                          "export it to onnx")
    if not dt > 0:
        raise ExportError("dt", f"the time step must be positive, got {dt}", "pass dt > 0, e.g. 1e-4")
    net = GraphNet(plan, space)
    net.load_state_dict(dict(state))
    exporter = _Exporter(plan, space, net.eval(), float(dt), approximate)
    return exporter.run(), exporter.notes


def write_nir(plan: Plan, space: ArchSpace, state: Mapping[str, torch.Tensor], out_dir: str | Path, *,
              dt: float = 1e-4, approximate: bool = False) -> dict[str, Any]:
    """Write ``out_dir/network.nir`` (see :func:`plan_to_nir`) and return the sidecar's facts:
    the files written, ``dt``, the approximations, the nir package version, and the timesteps
    over which the per-timestep logits are averaged."""
    graph, notes = plan_to_nir(plan, space, state, dt=dt, approximate=approximate)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    nir.write(out / NIR_FILE, graph)
    return {"files": [NIR_FILE], "dt": float(dt), "approximations": notes, "nir_version": version("nir"),
            "timesteps": int(plan.timesteps)}
