"""Training-step time of each network in the default layout and in channels-last, side by side,
and the layout :func:`lightning_modules.networks.norms.memory_format` picks for it.

One SGD step (forward, cross-entropy, backward, momentum update) on a random batch of FD-MFCC
shape (the unlearning CNN: one MFCC channel), one torch thread, best of 3 rounds.
``python -m benchmarks.memory_layout [--batch 64] [--threads 1]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CASES = [("convnet", {}), ("convnet", {"norm": "batch"}), ("convnet", {"width": 64}), ("resnet18", {}),
         ("resnet18bn", {}), ("vgg11", {}), ("vgg11bn", {}), ("unlearning_cnn", {})]


def step_ms(name: str, kwargs: dict, layout, batch: int, steps: int) -> float:
    import torch
    import torch.nn.functional as F

    from lightning_modules.networks import build_network

    shape = (1, 20, 20) if name == "unlearning_cnn" else (3, 20, 20)
    torch.manual_seed(0)
    net = build_network(name, shape, 10, **kwargs).to(memory_format=layout)
    x = torch.randn(batch, *shape).contiguous(memory_format=layout)
    y = torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()

    for _ in range(2):
        step()
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, (time.perf_counter() - started) / steps * 1000)
    return best


def main(argv: list[str]) -> list[dict]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5)
    args, _ = parser.parse_known_args(argv)
    import torch

    from lightning_modules.networks import build_network
    from lightning_modules.networks.norms import memory_format

    torch.set_num_threads(args.threads)
    rows = []
    print(f"batch {args.batch}, {args.threads} thread(s), ms per training step")
    print("| network | default layout | channels-last | channels-last / default | picked |")
    print("|---|---|---|---|---|")
    for name, kwargs in CASES:
        default = step_ms(name, kwargs, torch.contiguous_format, args.batch, args.steps)
        last = step_ms(name, kwargs, torch.channels_last, args.batch, args.steps)
        shape = (1, 20, 20) if name == "unlearning_cnn" else (3, 20, 20)
        picked = memory_format(build_network(name, shape, 10, **kwargs), channels_last=True)
        label = f"{name} {json.dumps(kwargs)}" if kwargs else name
        rows.append({"network": label, "default_ms": default, "channels_last_ms": last,
                     "picked": "channels-last" if picked == torch.channels_last else "default"})
        print(f"| {label} | {default:.1f} | {last:.1f} | {last / default:.2f} | {rows[-1]['picked']} |", flush=True)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
