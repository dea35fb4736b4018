"""Whole-data accuracy of the distillation tables' networks: each trained on the whole real
training split of FSDD (FD-MFCC, standardised) through the tables' own evaluation protocol
(:func:`audioforge.distill.evaluate.evaluate_set`: SGD, the epoch chosen on validation, test
scored once), under the ``paper`` protocol (random split over every speaker) or the ``speaker``
protocol (``--test-speaker`` and ``--val-speaker`` held out).  The paper (DDFAD, Table 1) reports
ConvNet 98.48%, ResNet18 98.73% and VGG11 98.44% on its split.

``python -m benchmarks.whole_data --networks resnet18 vgg11 --epochs 15 [--protocol speaker]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import data_root, quiet  # noqa: E402

PAPER = {"convnet": 0.9848, "resnet18": 0.9873, "vgg11": 0.9844}


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--networks", nargs="+", default=["convnet", "resnet18", "vgg11"])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--val-every", type=int, default=1)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--protocol", choices=["paper", "speaker"], default="paper")
    parser.add_argument("--test-speaker", default="george")
    parser.add_argument("--val-speaker", default="jackson")
    parser.add_argument("--threads", type=int, default=2)
    args, rest = parser.parse_known_args(argv)
    quiet()
    import torch

    from audioforge.distill.config import DistillConfig
    from audioforge.distill.evaluate import EvalConfig, evaluate_set
    from audioforge.distill.experiment import datamodule, real_split
    from audioforge.run import DatasetConfig

    torch.set_num_threads(args.threads)
    options = {} if args.protocol == "paper" else {"test_speakers": [args.test_speaker],
                                                    "val_speakers": [args.val_speaker]}
    cfg = DistillConfig(data=DatasetConfig(dataset="fsdd", root=str(data_root(rest)), options=options))
    dm = datamodule(cfg)
    x, y = real_split(dm, "train")
    out = {}
    for network in args.networks:
        t0 = time.perf_counter()
        res = evaluate_set(network, {"x": x, "y": y}, real_split(dm, "val"), real_split(dm, "test"), dm.num_classes,
                           EvalConfig(runs=args.runs, epochs=args.epochs, val_every=args.val_every,
                                      batch_size=args.batch_size, lr=args.lr), seed=0)
        out[network] = {"test_acc": res["mean"], "std": res["std"], "best_epoch": res["best_epoch"],
                        "val_acc": res["val_acc"], "seconds": time.perf_counter() - t0,
                        "paper": PAPER.get(network), "protocol": args.protocol, "epochs": args.epochs,
                        "batch_size": args.batch_size, "lr": args.lr,
                        "train_clips": len(y)}
        print(json.dumps({network: out[network]}, default=float), flush=True)
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
