"""Where one MTT iteration's time goes on the CPU, and what changes it, side by side in one run.

One iteration as :class:`lightning_modules.distillation.mtt.MTTModule` runs it with the continual
preset's settings: ``syn_steps`` differentiable SGD steps of the ConvNet student (flat parameters
through ``torch.func.functional_call``) on the whole synthetic set, then the backward pass of the
trajectory-matching loss through the unroll.  Cases: the reference ConvNet (width 128, instance
norm as GroupNorm, default layout); the same in channels-last; the same with instance norm written
as elementwise operations (a different double-backward path); width 64.  Also the share of the
first case's time spent in convolution kernels (forward, backward and double backward), from
``torch.profiler``.  One torch thread, best of ``--rounds``.

``python -m benchmarks.mtt_unroll [--clips 40] [--syn-steps 10] [--threads 1]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def instance_norm_from_elementwise_ops(net):
    """``net`` with every GroupNorm of one group per channel replaced by the same normalisation
    written as mean, variance and elementwise operations."""
    import torch
    from torch import nn

    class ElementwiseInstanceNorm(nn.Module):
        def __init__(self, norm: nn.GroupNorm):
            super().__init__()
            self.weight, self.bias, self.eps = norm.weight, norm.bias, norm.eps

        def forward(self, x):
            mean = x.mean((2, 3), keepdim=True)
            var = x.var((2, 3), keepdim=True, unbiased=False)
            return (x - mean) * torch.rsqrt(var + self.eps) * self.weight[:, None, None] + self.bias[:, None, None]

    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.GroupNorm) and child.num_groups == child.num_channels:
                setattr(module, name, ElementwiseInstanceNorm(child))
    return net


def unroll(width: int, clips: int, syn_steps: int, layout, elementwise_norm: bool):
    """A callable running one iteration (unroll and backward), for ``width``."""
    import torch
    import torch.nn.functional as F

    from lightning_modules.distillation.params import FlatParams, flatten_params
    from lightning_modules.networks import build_network

    torch.manual_seed(0)
    net = build_network("convnet", (3, 20, 20), 10, width=width)
    if elementwise_norm:
        net = instance_norm_from_elementwise_ops(net)
    flat = FlatParams(net)
    start = flatten_params(net)
    target = start + 0.01 * torch.randn_like(start)
    x = torch.randn(clips, 3, 20, 20).contiguous(memory_format=layout).requires_grad_(True)
    y = torch.arange(clips) % 2
    lr = torch.tensor(0.01, requires_grad=True)

    def iteration():
        w = start.clone().requires_grad_(True)
        for _ in range(syn_steps):
            (g,) = torch.autograd.grad(F.cross_entropy(flat.call(net, w, x), y), w, create_graph=True)
            w = w - lr * g
        (((w - target) ** 2).sum() / ((start - target) ** 2).sum()).backward()

    return iteration


def seconds(run, rounds: int) -> float:
    run()
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def convolution_share(run) -> float:
    from torch.profiler import profile

    with profile() as prof:
        run()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    return sum(e.self_cpu_time_total for e in events if "convolution" in e.key) / total


def main(argv: list[str]) -> list[dict]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=40, help="synthetic set size (continual: 20 per class x 2)")
    parser.add_argument("--syn-steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    args, _ = parser.parse_known_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    cases = [("ConvNet width 128 (reference), default layout", 128, torch.contiguous_format, False),
             ("width 128, channels-last", 128, torch.channels_last, False),
             ("width 128, instance norm as elementwise ops", 128, torch.contiguous_format, True),
             ("width 64, default layout", 64, torch.contiguous_format, False)]
    print(f"one MTT iteration: {args.syn_steps} student steps on {args.clips} clips and the backward pass, "
          f"{args.threads} thread(s), best of {args.rounds}")
    print("| case | s per iteration | against the reference |")
    print("|---|---|---|")
    rows = []
    for label, width, layout, elementwise in cases:
        s = seconds(unroll(width, args.clips, args.syn_steps, layout, elementwise), args.rounds)
        rows.append({"case": label, "seconds": s, "ratio": s / rows[0]["seconds"] if rows else 1.0})
        print(f"| {label} | {s:.2f} | {rows[-1]['ratio']:.2f} |", flush=True)
    share = convolution_share(unroll(128, args.clips, args.syn_steps, torch.contiguous_format, False))
    print(f"reference case: {100 * share:.0f}% of operator time in convolution kernels")
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
