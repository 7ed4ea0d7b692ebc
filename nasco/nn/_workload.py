"""Plans -> workloads (the cost model's layer list) by shape inference, without torch."""
from __future__ import annotations

from nasco.hw._workload import Layer, Workload
from nasco.nn._plan import Plan

__all__ = ["plan_workload"]


def plan_workload(plan: Plan, name: str = "network") -> Workload:
    """Conv and linear layers (with SCALE-Sim's padded-ifmap convention), neuron layers,
    a pool layer per average/max pool and an add layer per element-wise sum, in plan order.

    BN (folded into the conv at inference), ReLU, concatenation (a buffer placement) and the
    global average pool of the head are not costed here.

    Spiking plans also say where a neuron can fire on its input as it is computed: a conv
    (through its BN) or an add whose only consumer is one neuron gets ``output_bits`` 1 and
    that neuron follows it directly (:func:`fused_sources`); a max-pool of spikes gets
    ``output_bits`` 1 too. An add whose operands are all spikes has ``spiking_input``.
    Spiking templates read these flags; others ignore them.
    """
    shapes = {n.name: n.shape for n in plan.nodes}
    binary = plan.binary()
    static = plan.static()
    fuse = fused_sources(plan)
    fused_neurons = set(fuse.values())
    by_name = plan.by_name()
    layers = []
    for n in plan.nodes:
        steps = 1 if static[n.name] else plan.timesteps
        if n.op == "conv":
            a = n.attrs
            c, h, w = shapes[n.inputs[0]]
            layers.append(Layer(n.name, "conv", h + 2 * a["padding"], w + 2 * a["padding"], a["kernel"],
                                a["kernel"], c, n.shape[0], a["stride"], a["groups"], a["dilation"],
                                binary[n.inputs[0]], steps, output_bits=int(n.name in fuse)))
        elif n.op == "linear":
            layers.append(Layer(n.name, "linear", 1, 1, 1, 1, n.attrs["c_in"], n.shape[0], 1,
                                spiking_input=binary[n.inputs[0]], timesteps=steps))
        elif n.op in ("avgpool", "maxpool"):
            a = n.attrs
            c, h, w = shapes[n.inputs[0]]
            layers.append(Layer(n.name, "pool", h + 2 * a["padding"], w + 2 * a["padding"], a["kernel"],
                                a["kernel"], c, c, a["stride"], spiking_input=binary[n.inputs[0]],
                                timesteps=steps, elements=c * n.shape[1] * n.shape[2],
                                output_bits=int(binary[n.name] and n.op == "maxpool")))
        elif n.op == "add":
            c, h, w = n.shape
            layers.append(Layer(n.name, "add", h, w, 1, 1, c, c, timesteps=steps, elements=c * h * w,
                                operands=len(n.inputs), output_bits=int(n.name in fuse),
                                spiking_input=all(binary[i] for i in n.inputs)))
        elif n.op == "neuron" and n.name not in fused_neurons:
            layers.append(_neuron_layer(n, plan.timesteps))
        if n.name in fuse:  # its neuron runs in the same pass: right after it
            layers.append(_neuron_layer(by_name[fuse[n.name]], plan.timesteps))
    return Workload(tuple(layers), name=name)


def _neuron_layer(n, timesteps: int) -> Layer:
    c, h, w = n.shape
    return Layer(n.name, "neuron", timesteps=timesteps, elements=c * h * w)


def fused_sources(plan: Plan) -> dict[str, str]:
    """Conv or add node -> the one neuron that consumes its output (through a BN for a conv).

    Such a neuron can be updated by the LIF units at the array edge as its input currents
    are computed, so those currents never need storing: only its spikes leave (SATA's PEs
    emit 1-bit outputs, Yin et al., TCAD 2022). A source read by anything else (a second
    neuron, an add, a concatenation, a pool) keeps its currents. Empty for ANN plans.
    """
    if not plan.spiking:
        return {}
    nodes = plan.by_name()
    users: dict[str, list[str]] = {}
    for n in plan.nodes:
        for i in n.inputs:
            users.setdefault(i, []).append(n.name)
    out = {}
    for n in plan.nodes:
        if n.op not in ("conv", "add"):
            continue
        tip = n.name
        if n.op == "conv" and len(users.get(tip, ())) == 1 and nodes[users[tip][0]].op == "bn":
            tip = users[tip][0]
        after = users.get(tip, [])
        if len(after) == 1 and nodes[after[0]].op == "neuron":
            out[n.name] = after[0]
    return out
