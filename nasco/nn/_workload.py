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
    """
    shapes = {n.name: n.shape for n in plan.nodes}
    binary = plan.binary()
    static = plan.static()
    layers = []
    for n in plan.nodes:
        steps = 1 if static[n.name] else plan.timesteps
        if n.op == "conv":
            a = n.attrs
            c, h, w = shapes[n.inputs[0]]
            layers.append(Layer(n.name, "conv", h + 2 * a["padding"], w + 2 * a["padding"], a["kernel"],
                                a["kernel"], c, n.shape[0], a["stride"], a["groups"], a["dilation"],
                                binary[n.inputs[0]], steps))
        elif n.op == "linear":
            layers.append(Layer(n.name, "linear", 1, 1, 1, 1, n.attrs["c_in"], n.shape[0], 1,
                                spiking_input=binary[n.inputs[0]], timesteps=steps))
        elif n.op in ("avgpool", "maxpool"):
            a = n.attrs
            c, h, w = shapes[n.inputs[0]]
            layers.append(Layer(n.name, "pool", h + 2 * a["padding"], w + 2 * a["padding"], a["kernel"],
                                a["kernel"], c, c, a["stride"], spiking_input=binary[n.inputs[0]],
                                timesteps=steps, elements=c * n.shape[1] * n.shape[2]))
        elif n.op == "add":
            c, h, w = n.shape
            layers.append(Layer(n.name, "add", h, w, 1, 1, c, c, timesteps=steps, elements=c * h * w,
                                operands=len(n.inputs)))
        elif n.op == "neuron":
            c, h, w = n.shape
            layers.append(Layer(n.name, "neuron", timesteps=plan.timesteps, elements=c * h * w))
    return Workload(tuple(layers), name=name)
