"""The NIR round trip: a graph loaded by another framework's reader (snnTorch, Norse) and run
beside nasco's GraphNet on the same inputs, timestep by timestep.

What each reader needs to follow NIR's LIF at the export ``dt`` (snnTorch 1.0.0, Norse 1.1.0):

* snnTorch's ``import_from_nir`` fixes dt = 1e-4 (nasco's default export dt): beta = 1 - dt/tau
  and, since r dt / tau = 1/tau_sj is not 1, it divides the threshold by it instead of scaling
  the input (the same spikes; its membrane is tau_sj times spikingjelly's). It resets to zero
  whatever v_reset says and refuses v_leak != 0, so it reads networks with v_reset = 0 only.
* Norse's ``from_nir`` defaults to dt = 1e-3: pass the export dt. Its ``from_nir`` runs the graph
  with nirtorch's deprecated ``load``, whose executor orders nodes depth-first from the input:
  a node with inputs from two branches runs before the second branch and reads that branch's
  value from the previous timestep (a cell's sum), so the output is wrong. Here Norse's own node
  mapping (``_import_norse_module``, with dt) is run by ``nirtorch.nir_to_torch``, the executor
  snnTorch uses, which runs nodes in topological order. Norse ignores r (it must be 1, as the
  export writes it) and v_reset (it resets to 0).

Neither reader loads NIR's Scale, SumPool2d with padding, or grouped convs; the export uses
none of them.
"""
from __future__ import annotations

import contextlib
import copy
import io
import logging
from dataclasses import dataclass
from functools import partial

import nir
import torch

from nasco.nn import GraphNet

__all__ = ["LOGIT_ATOL", "READERS", "Trace", "agreement", "load_reader", "trace_graphnet", "trace_reader"]

READERS = ("snntorch", "norse")

# Logits that agree: within this of nasco's. Where every spike agrees they differ by float32
# rounding only (BN folded into conv weights sums in another order): 2e-6 on digits networks.
LOGIT_ATOL = 1e-4


@dataclass(frozen=True)
class Trace:
    """One run over T timesteps: the logits of every timestep [T, B, classes] and each spiking
    layer's spikes [T, B, C, H, W], by plan node name."""

    logits: torch.Tensor
    spikes: dict[str, torch.Tensor]

    def predictions(self) -> torch.Tensor:
        return self.logits.mean(0).argmax(1)


def load_reader(graph: nir.NIRGraph, reader: str, dt: float) -> torch.nn.Module:
    """``graph`` loaded by ``reader`` ('snntorch' or 'norse') as a torch module that runs one
    timestep per call (see the module docstring for the settings each needs)."""
    graph = copy.deepcopy(graph)  # snnTorch's reader edits the graph's edges in place
    if reader == "snntorch":
        from snntorch.import_nir import import_from_nir

        if abs(dt - 1e-4) > 1e-12:
            raise ValueError(f"snnTorch's NIR reader assumes dt = 1e-4, got dt = {dt}; export with dt=1e-4")
        with contextlib.redirect_stdout(io.StringIO()):  # it prints its weight-scaling choice
            return import_from_nir(graph)
    if reader == "norse":
        import nirtorch
        from norse.torch.utils.import_nir import _import_norse_module

        load = partial(_import_norse_module, dt=dt)
        kinds = (nir.LIF, nir.Conv2d, nir.Affine, nir.Flatten)
        return nirtorch.nir_to_torch(graph, {kind: load for kind in kinds})
    raise ValueError(f"unknown NIR reader {reader!r}; known: {', '.join(READERS)}")


def _spike_hooks(module: torch.nn.Module, names: list[str], store: dict[str, list[torch.Tensor]]) -> list:
    """Forward hooks recording the output spikes of the submodules the torch readers name after
    NIR nodes ('.' becomes '_')."""
    subs = dict(module.named_modules())
    handles = []
    for name in names:
        def hook(_m, _args, out, name=name):
            store.setdefault(name, []).append((out[0] if isinstance(out, tuple) else out).detach())
        handles.append(subs[name.replace(".", "_")].register_forward_hook(hook))
    return handles


def trace_reader(module: torch.nn.Module, reader: str, x: torch.Tensor, timesteps: int,
                 neurons: list[str]) -> Trace:
    """Run a loaded graph on ``x`` (the same input at every timestep) from a fresh state."""
    if reader == "snntorch":
        import snntorch

        for m in module.modules():  # its neurons keep their membranes between calls
            if isinstance(m, snntorch.SpikingNeuron) and hasattr(m, "reset_mem"):
                m.reset_mem()
    store: dict[str, list[torch.Tensor]] = {}
    handles = _spike_hooks(module, neurons, store)
    logits, state = [], None
    try:
        with torch.no_grad(), _quiet():
            for _ in range(timesteps):
                out = module(x) if reader == "snntorch" else module(x, state)
                if isinstance(out, tuple):
                    out, state = out
                logits.append(out)
    finally:
        for h in handles:
            h.remove()
    return Trace(torch.stack(logits), {k: torch.stack(v) for k, v in store.items()})


@contextlib.contextmanager
def _quiet():
    """Norse logs a warning per neuron layer when r differs from 1 and nirtorch warns about
    deprecations; neither applies to a round trip that has been checked."""
    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)
    try:
        yield
    finally:
        logging.getLogger().setLevel(level)


def trace_graphnet(net: GraphNet, x: torch.Tensor) -> Trace:
    """nasco's own run of ``x``: the output layer's logits per timestep and every neuron's spikes."""
    from spikingjelly.activation_based.functional import reset_net

    plan = net.plan
    spikes: dict[str, torch.Tensor] = {}
    logits: list[torch.Tensor] = []
    handles = [net.module_of(n.name).register_forward_hook(
        lambda _m, _a, out, name=n.name: spikes.__setitem__(name, out.detach()))
        for n in plan.nodes if n.op == "neuron"]
    handles.append(net.module_of(plan.output).register_forward_hook(
        lambda _m, _a, out: logits.append(out.detach())))
    net.eval()
    reset_net(net)
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
        reset_net(net)
    return Trace(logits[0].reshape(plan.timesteps, x.shape[0], -1), spikes)


def agreement(ref: Trace, other: Trace) -> dict[str, float]:
    """How far ``other`` follows ``ref``: the share of equal predictions, of equal spikes over every
    (neuron, timestep) pair of every layer and of the last spiking layer, of logits per (input,
    timestep, class) within :data:`LOGIT_ATOL`, and the largest logit difference."""
    last = list(ref.spikes)[-1]
    equal = sum(int((other.spikes[k] == v).sum()) for k, v in ref.spikes.items())
    total = sum(v.numel() for v in ref.spikes.values())
    return {
        "predictions": float((ref.predictions() == other.predictions()).double().mean()),
        "spikes": equal / total,
        "last_layer_spikes": float((other.spikes[last] == ref.spikes[last]).double().mean()),
        "logits": float(((ref.logits - other.logits).abs() <= LOGIT_ATOL).double().mean()),
        "max_logit_diff": float((ref.logits - other.logits).abs().max()),
    }
