"""Training-step speed of the DSL-built spiking supernet against a hand-written spikingjelly
network of the same mixed ops, measured in the same run (interleaved, median of repeats).

The hand-written network is what one would write without nasco: spikingjelly multi-step
LIF neurons, one per cell state (every op on an edge reads the same spikes), ops as
Conv-BN modules, a softmax-weighted sum per edge (mixing at the membrane), the DARTS cell
wiring, the stem computed once per input (direct encoding) and repeated over T.

    python experiments/bench_supernet.py                       # CPU, digits-sized input
    python experiments/bench_supernet.py --device cuda --batch 128 --size 32 --channels 3
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from nasco.dsl import load_spec, resolve  # noqa: E402
from nasco.evaluate._train import reset_states  # noqa: E402
from nasco.nn import SuperNet, plan_supernet  # noqa: E402
from nasco.nn._torch import make_neuron  # noqa: E402
from nasco.space import SearchSpace  # noqa: E402

OPS = ("skip_connect", "conv_1x1", "conv_3x3", "sep_conv_3x3", "dil_conv_3x3", "avg_pool_3x3", "max_pool_3x3")


def conv_bn(c_in: int, c_out: int, k: int, stride: int = 1, dilation: int = 1, groups: int = 1) -> nn.Sequential:
    pad = dilation * (k - 1) // 2
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, pad, dilation, groups, bias=False), nn.BatchNorm2d(c_out))


class Sep(nn.Module):
    """depthwise k x k - BN - LIF - pointwise - BN (its input spikes come from outside)."""

    def __init__(self, c: int, stride: int, dilation: int, space, T: int) -> None:
        super().__init__()
        self.dw = conv_bn(c, c, 3, stride, dilation, groups=c)
        self.lif = make_neuron(space)
        self.pw = conv_bn(c, c, 1)
        self.T = T

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        y = self.dw(s)
        y = self.lif(y.reshape(self.T, -1, *y.shape[1:])).flatten(0, 1)
        return self.pw(y)


class MixedEdge(nn.Module):
    def __init__(self, c: int, stride: int, space, T: int) -> None:
        super().__init__()
        self.stride = stride
        self.skip = conv_bn(c, c, 1, stride) if stride == 2 else None
        self.c1, self.c3 = conv_bn(c, c, 1, stride), conv_bn(c, c, 3, stride)
        self.sep, self.dil = Sep(c, stride, 1, space, T), Sep(c, stride, 2, space, T)
        self.avg = nn.AvgPool2d(3, stride, 1, count_include_pad=False)
        self.max = nn.MaxPool2d(3, stride, 1)

    def forward(self, x: torch.Tensor, spikes: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        outs = [self.skip(spikes) if self.skip is not None else x, self.c1(spikes), self.c3(spikes),
                self.sep(spikes), self.dil(spikes), self.avg(x), self.max(x)]
        return (w.view(-1, 1, 1, 1, 1) * torch.stack(outs)).sum(0)


class Cell(nn.Module):
    """A DARTS cell of mixed edges: the inputs arrive as spikes; each node's sum (a current)
    fires once, and every edge leaving it reads those spikes."""

    def __init__(self, c_pp: int, c_p: int, c: int, reduction: bool, s0_stride: int, space, T: int) -> None:
        super().__init__()
        self.T = T
        self.pre0, self.pre1 = conv_bn(c_pp, c, 1, s0_stride), conv_bn(c_p, c, 1)
        self.lifs = nn.ModuleList(make_neuron(space) for _ in range(5))  # pre0, pre1, nodes 0..2
        self.edges = nn.ModuleList(MixedEdge(c, 2 if reduction and j < 2 else 1, space, T)
                                   for i in range(4) for j in range(2 + i))

    def fire(self, lif: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return lif(x.reshape(self.T, -1, *x.shape[1:])).flatten(0, 1)

    def forward(self, spikes0: torch.Tensor, spikes1: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        states = [self.pre0(spikes0), self.pre1(spikes1)]
        spikes = [self.fire(self.lifs[0], states[0]), self.fire(self.lifs[1], states[1])]
        e = 0
        for i in range(4):
            terms = [self.edges[e + j](states[j], spikes[j], w[e + j]) for j in range(2 + i)]
            e += 2 + i
            states.append(torch.stack(terms).sum(0))
            if i < 3:
                spikes.append(self.fire(self.lifs[2 + i], states[-1]))
        return torch.cat(states[2:], dim=1)


class HandNet(nn.Module):
    def __init__(self, space, c_in: int, size: int, classes: int) -> None:
        super().__init__()
        m = space.macro
        T = self.T = int(space.timesteps)
        c = m.stem.channels
        self.stem = conv_bn(c_in, c, 3)
        self.cells = nn.ModuleList()
        self.out_lifs = nn.ModuleList([make_neuron(space)])  # the stem's, then each cell output's
        c_pp = c_p = c
        h_pp = h_p = size
        self.red = set(m.reductions)
        for pos in range(m.cells):
            r = pos in self.red
            if r:
                c *= m.channel_multiplier
            self.cells.append(Cell(c_pp, c_p, c, r, max(1, -(-h_pp // h_p)), space, T))
            self.out_lifs.append(make_neuron(space))
            h_pp, h_p = h_p, (h_p + 1) // 2 if r else h_p
            c_pp, c_p = c_p, 4 * c
        self.out_lifs = self.out_lifs[:-1]  # the last cell's output goes to the head, unfired
        self.head = nn.Linear(c_p, classes)
        self.alphas = nn.ParameterDict({k: nn.Parameter(1e-3 * torch.randn(14, len(OPS)))
                                        for k in ("normal", "reduce")})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        stem = self.stem(x).repeat(self.T, 1, 1, 1)  # direct encoding: computed once, fed every step
        w = {k: torch.softmax(a, -1) for k, a in self.alphas.items()}
        fire = self.cells[0].fire
        sp0 = sp1 = fire(self.out_lifs[0], stem)  # each value fires once, whoever reads it
        out = stem
        for pos, cell in enumerate(self.cells):
            out = cell(sp0, sp1, w["reduce" if pos in self.red else "normal"])
            if pos + 1 < len(self.cells):
                sp0, sp1 = sp1, fire(self.out_lifs[pos + 1], out)
        logits = self.head(out.mean(dim=(2, 3)))
        return logits.reshape(self.T, b, -1).mean(0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=8, help="input side (8: digits; 32: CIFAR)")
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--timesteps", type=int, default=4)
    p.add_argument("--repeats", type=int, default=12)
    p.add_argument("--amp", action="store_true", help="bf16 autocast (cuda)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    dev = torch.device(args.device)
    spec = load_spec("darts_snn", overrides={("timesteps",): {"choice": [args.timesteps], "default": args.timesteps}})
    space = SearchSpace(spec)
    arch = resolve(spec, {k: c.default for k, c in space.arch_dims.items()})
    torch.manual_seed(0)
    sp = plan_supernet(arch, (args.channels, args.size, args.size), 10)
    dsl = SuperNet(sp, arch).to(dev)
    hand = HandNet(arch, args.channels, args.size, 10).to(dev)
    n_dsl = sum(q.numel() for q in dsl.parameters())
    n_hand = sum(q.numel() for q in hand.parameters())
    x = torch.randn(args.batch, args.channels, args.size, args.size, device=dev)
    y = torch.randint(0, 10, (args.batch,), device=dev)
    nets = {"dsl": dsl, "hand": hand}
    opts = {k: torch.optim.SGD(n.parameters(), lr=0.01, momentum=0.9) for k, n in nets.items()}
    ctx = (torch.autocast("cuda", dtype=torch.bfloat16) if args.amp and dev.type == "cuda"
           else torch.autocast("cpu", enabled=False))

    def step(k: str) -> float:
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with ctx:
            out = nets[k](x)
        loss = F.cross_entropy(out.float(), y)
        opts[k].zero_grad(set_to_none=True)
        loss.backward()
        opts[k].step()
        reset_states(nets[k])
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    for k in nets:  # warm-up (allocator, cudnn autotune)
        step(k), step(k)
    times = {k: [] for k in nets}
    for _ in range(args.repeats):
        for k in nets:
            times[k].append(step(k))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"device {dev}, batch {args.batch}, input {args.channels}x{args.size}x{args.size}, T={args.timesteps}, "
          f"amp {args.amp}; params dsl {n_dsl} hand {n_hand}")
    for k in nets:
        print(f"{k}: median step {med[k] * 1e3:.1f} ms, {args.batch / med[k]:.1f} samples/s")
    print(f"ratio dsl / hand: {med['dsl'] / med['hand']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
