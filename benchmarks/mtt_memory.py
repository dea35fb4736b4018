"""Memory and time of one MTT outer iteration against ``syn_steps`` for the three gradients
(``mtt.gradient``: unrolled, checkpointed, constant_memory), each measured in a fresh process
(peak RSS) on the FD-MFCC shape (3 x 20 x 20), ConvNet, 10 classes, 50 synthetic examples per
student step (``--batch``).  ``python benchmarks/mtt_memory.py [--steps 5 10 20 40 80] [--batch 100]``"""

from __future__ import annotations

import multiprocessing as mp
import resource
import sys
import tempfile
import time


def one(syn_steps: int, gradient: str, batch: int, folder: str) -> tuple[float, float, float]:
    import torch

    from lightning_modules.distillation.expert_buffer import ExpertBuffer
    from lightning_modules.distillation import TrajectoryMatching
    from lightning_modules.networks import build_network

    torch.set_num_threads(1)
    torch.manual_seed(0)
    shape = (3, 20, 20)
    net = build_network("convnet", shape, 10)
    size = sum(p.numel() for p in net.parameters())
    buffer = ExpertBuffer(folder)
    buffer.start({"network": "convnet", "network_kwargs": {}, "input_shape": list(shape), "num_classes": 10,
                  "epochs": 3, "lr": 0.01, "batch_size": 256})
    base = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    buffer.save(0, torch.stack([base + 0.01 * k * torch.randn(size) for k in range(4)]))
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    m = TrajectoryMatching("convnet", shape, 10, torch.randn(100, *shape), torch.arange(10).repeat(10), folder,
                           syn_steps=syn_steps, expert_epochs=1, max_start_epoch=2, batch_syn=batch,
                           gradient=gradient)
    t0 = time.perf_counter()
    if gradient == "constant_memory":
        m.constant_memory_backward(buffer.load(0), 0)
    else:
        m.matching_loss(buffer.load(0), 0).backward()
    seconds = time.perf_counter() - t0
    return seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, base_rss


GRADIENTS = ("unrolled", "checkpointed", "constant_memory")


def measure(syn_steps: int, gradient: str, batch: int = 50) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as folder, mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(one, (syn_steps, gradient, batch, folder))


def main(argv: list[str] | None = None) -> dict:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, nargs="+", default=[5, 10, 20, 40])
    parser.add_argument("--batch", type=int, default=50, help="synthetic examples per student step")
    args, _ = parser.parse_known_args(argv)
    out = {}
    print("syn_steps | " + " | ".join(f"{g}: s, peak MB" for g in GRADIENTS))
    for steps in args.steps:
        out[steps] = {}
        for g in GRADIENTS:
            seconds, peak, base = measure(steps, g, args.batch)
            out[steps][g] = {"seconds": seconds, "peak_mb": peak, "baseline_mb": base}
        print(f"{steps:9d} | " + " | ".join(f"{out[steps][g]['seconds']:5.2f} s, {out[steps][g]['peak_mb']:6.0f} MB"
                                          for g in GRADIENTS), flush=True)
    s = sorted(out)
    if len(s) < 2:
        return out
    slopes = {g: (out[s[-1]][g]["peak_mb"] - out[s[0]][g]["peak_mb"]) / (s[-1] - s[0]) for g in GRADIENTS}
    print("memory per extra step: " + ", ".join(f"{g} {v:.1f} MB" for g, v in slopes.items()))
    out["slope_mb_per_step"] = slopes
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    main(sys.argv[1:])
