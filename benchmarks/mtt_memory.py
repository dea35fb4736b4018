"""Memory and time of one MTT outer iteration against ``syn_steps``, plain unroll beside the
checkpointed one (``mtt.checkpoint_steps``), each measured in a fresh process (peak RSS) on the
FD-MFCC shape (3 x 20 x 20), ConvNet, 10 classes, 50 synthetic examples per student step."""

from __future__ import annotations

import multiprocessing as mp
import resource
import sys
import tempfile
import time


def one(syn_steps: int, checkpointed: bool, batch: int, folder: str) -> tuple[float, float, float]:
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
                           checkpoint_steps=checkpointed)
    t0 = time.perf_counter()
    loss = m.matching_loss(buffer.load(0), 0)
    loss.backward()
    seconds = time.perf_counter() - t0
    return seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, base_rss


def measure(syn_steps: int, checkpointed: bool, batch: int = 50) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as folder, mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(one, (syn_steps, checkpointed, batch, folder))


def main(argv: list[str] | None = None) -> dict:
    out = {}
    print("syn_steps | plain: s, peak MB | checkpointed: s, peak MB | memory ratio | time ratio")
    for steps in (5, 10, 20, 40):
        (tp, mp_, base), (tc, mc, _) = measure(steps, False), measure(steps, True)
        out[steps] = {"plain": {"seconds": tp, "peak_mb": mp_}, "checkpointed": {"seconds": tc, "peak_mb": mc},
                      "baseline_mb": base}
        print(f"{steps:9d} | {tp:5.2f} s, {mp_:6.0f} MB | {tc:5.2f} s, {mc:6.0f} MB | {mc / mp_:.2f} | {tc / tp:.2f}")
    s = sorted(out)
    slope_p = (out[s[-1]]["plain"]["peak_mb"] - out[s[0]]["plain"]["peak_mb"]) / (s[-1] - s[0])
    slope_c = (out[s[-1]]["checkpointed"]["peak_mb"] - out[s[0]]["checkpointed"]["peak_mb"]) / (s[-1] - s[0])
    print(f"memory per extra step: plain {slope_p:.0f} MB, checkpointed {slope_c:.0f} MB")
    out["slope_mb_per_step"] = {"plain": slope_p, "checkpointed": slope_c}
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    main(sys.argv[1:])
