"""The GPU path against the CPU, side by side in one run: ``audioforge classify`` on the whole of
FSDD (3,000 clips, 20x20 MFCC, batch 32) for each network, on the CPU (``--threads`` torch
threads, 2 by default: this project's reference machine) and on CUDA in fp32, bf16-mixed and
16-mixed, and one MTT distillation (FD-MFCC, CPC 10, ConvNet) on each device.

Epoch time is read from the epochs the command announces (``$AUDIOFORGE_EVENTS``): the median
gap between consecutive epoch starts, so the first epoch's start-up (cuDNN autotuning, workers)
is left out.  ``python -m benchmarks.gpu [--data DIR] [--epochs 4] [--cpu-epochs 2] [--out F]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import data_root, quiet  # noqa: E402

SETTINGS = [("cpu", "32-true"), ("gpu", "32-true"), ("gpu", "bf16-mixed"), ("gpu", "16-mixed")]


def timed(args: list[str], events: Path) -> tuple[float, list[float], float]:
    """Run ``audioforge *args`` in this process: wall seconds, gaps between epoch starts, peak GPU MB."""
    import torch

    from audioforge.cli import main

    events.unlink(missing_ok=True)
    os.environ["AUDIOFORGE_EVENTS"] = str(events)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    code = main(args)
    wall = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"audioforge {' '.join(args)} exited {code}")
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    starts = [e["time"] for e in lines if e["event"] == "epoch" and e["module"] == "ClassifierModule"]
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0
    return wall, gaps, peak


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--networks", nargs="*", default=["convnet", "resnet18", "vgg11"])
    parser.add_argument("--epochs", type=int, default=4, help="epochs per CUDA fit")
    parser.add_argument("--cpu-epochs", type=int, default=2, help="epochs per CPU fit (at least 2)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the CPU runs")
    parser.add_argument("--cpu-networks", nargs="*", default=["convnet"], help="networks also timed on the CPU")
    parser.add_argument("--distill-iterations", type=int, default=40, help="MTT iterations per device (0: skip)")
    parser.add_argument("--experts", type=int, default=2, help="MTT experts (trained once, on the GPU)")
    parser.add_argument("--out", help="write the results as JSON here")
    args, _ = parser.parse_known_args(argv)
    root = data_root(argv)
    quiet()
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("benchmarks.gpu needs a CUDA device")
    work = Path(tempfile.mkdtemp(prefix="audioforge-gpu-bench-"))
    common = ["--data", str(root), "--seeds", "0", "--quiet", "tracking.enabled=false"]
    rows = []
    for network in args.networks:
        for accelerator, precision in SETTINGS:
            if accelerator == "cpu" and network not in args.cpu_networks:
                continue
            epochs = args.cpu_epochs if accelerator == "cpu" else args.epochs
            wall, gaps, peak = timed(["classify", *common, "--arch", network, "--accelerator", accelerator,
                                      "--precision", precision, "--output", str(work / f"{network}-{accelerator}-{precision}"),
                                      f"fit.epochs={epochs}", "fit.patience=1000",
                                      f"trainer.threads={args.threads if accelerator == 'cpu' else 'null'}"],
                                     work / "events.jsonl")
            report = json.loads((work / f"{network}-{accelerator}-{precision}" / "report.json").read_text())
            rows.append({"network": network, "accelerator": accelerator, "precision": precision, "epochs": epochs,
                         "epoch_seconds": statistics.median(gaps), "wall_seconds": wall, "peak_gpu_mb": peak,
                         "test_acc": report["seeds"][0]["test"]["acc"]})
            print(json.dumps(rows[-1]), flush=True)
    distill = []
    for accelerator in (("gpu", "cpu") if args.distill_iterations else ()):  # the CPU run reuses the experts
        folder = work / f"mtt-{accelerator}"
        wall, _, peak = timed(["distill", "--data", str(root), "--method", "mtt", "--cpc", "10", "--quiet",
                               "--accelerator", accelerator, "--output", str(folder), "tracking.enabled=false",
                               f"iterations={args.distill_iterations}", "reconstruct=false", "eval.runs=1",
                               f"buffer.experts={args.experts}",
                               f"trainer.threads={args.threads if accelerator == 'cpu' else 'null'}"],
                              work / "events.jsonl")
        resources = json.loads((folder / "report.json").read_text())["resources"]
        distill.append({"accelerator": accelerator, "iterations": args.distill_iterations,
                        "distill_seconds": resources["distill_seconds"], "wall_seconds": wall,
                        "device": resources.get("device"), "peak_gpu_mb": peak})
        print(json.dumps(distill[-1]), flush=True)
    by = {(r["network"], r["accelerator"], r["precision"]): r for r in rows}
    print(f"\n{torch.cuda.get_device_name(0)}, {os.cpu_count()} CPUs; CPU runs on {args.threads} threads")
    print("| network | CPU s/epoch | CUDA fp32 s/epoch | bf16-mixed | 16-mixed | CPU / CUDA fp32 | test acc (CUDA fp32) |")
    print("|---|---|---|---|---|---|---|")
    for network in args.networks:
        cpu, fp32 = by.get((network, "cpu", "32-true")), by[(network, "gpu", "32-true")]
        bf16, fp16 = by[(network, "gpu", "bf16-mixed")], by[(network, "gpu", "16-mixed")]
        cpu_text, ratio = (f"{cpu['epoch_seconds']:.2f}", f"{cpu['epoch_seconds'] / fp32['epoch_seconds']:.1f}x") \
            if cpu else ("-", "-")
        print(f"| {network} | {cpu_text} | {fp32['epoch_seconds']:.2f} | {bf16['epoch_seconds']:.2f} "
              f"| {fp16['epoch_seconds']:.2f} | {ratio} | {fp32['test_acc']:.4f} |")
    result = {"device": torch.cuda.get_device_name(0), "cpus": os.cpu_count(), "threads": args.threads,
              "classify": rows, "distill": distill}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
