"""Lightning training step time over a bare PyTorch loop: same model, data, batch (16), optimizer.

Alternates the two in many short rounds, one thread each, timing process CPU time (the host's
speed drifts by tens of percent between minutes, which wall time over long runs would mix into
the ratio); prints per-step times and the median of the per-round ratios (target: at most 1.15)."""

from __future__ import annotations

import statistics
import sys
import time

import torch
import torch.nn.functional as F

from benchmarks.common import data_root, quiet


def main(argv: list[str] | None = None, epochs: int = 2, rounds: int = 9) -> dict[str, float]:
    quiet()
    torch.set_num_threads(1)
    from audioforge.training import TrainerConfig, make_trainer
    from datamodules import FSDDDataModule
    from lightning_modules import ClassifierModule

    dm = FSDDDataModule(data_root(argv), download=False)
    dm.setup()
    steps = epochs * len(dm.loader("full_train"))

    def model():
        torch.manual_seed(0)
        return ClassifierModule("unlearning_cnn", dm.input_shape, dm.num_classes)

    def bare() -> float:
        m = model()
        opt = m.configure_optimizers()
        loader = dm.loader("full_train")
        m.train()
        t0 = time.process_time()
        for _ in range(epochs):
            for x, y in loader:
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(m(x), y).backward()
                opt.step()
        return time.process_time() - t0

    def lightning() -> float:
        m = model()
        trainer = make_trainer(TrainerConfig(), epochs, validate=False)
        t0 = time.process_time()
        trainer.fit(m, train_dataloaders=dm.loader("full_train"))
        return time.process_time() - t0

    bare(), lightning()  # warm-up
    ratios, b_times, l_times = [], [], []
    for _ in range(rounds):
        b, lt = bare(), lightning()
        b_times.append(b)
        l_times.append(lt)
        ratios.append(lt / b)
    out = {"bare_ms_per_step": statistics.median(b_times) / steps * 1e3,
           "lightning_ms_per_step": statistics.median(l_times) / steps * 1e3,
           "lightning_over_bare": statistics.median(ratios)}
    print(f"training step, batch 16, {steps} steps x {rounds} rounds: bare {out['bare_ms_per_step']:.2f} ms, "
          f"Lightning {out['lightning_ms_per_step']:.2f} ms, ratio {out['lightning_over_bare']:.3f} (target <= 1.15)")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
