"""RAVDESS and UrbanSound8K at full size, built from the real clips present: every clip the full
dataset lists is a link to a real clip of the same dataset on disk (RAVDESS: the 120 clips of
actors 1-2 serve all 24 actors' 1,440 names; UrbanSound8K: the clips present serve all 8,732 rows
of the official CSV, whose formats they share: 44.1/48 kHz, stereo and mono, 16-bit and float).
Cost, not accuracy, is what this measures: the features are of real audio at the real count.

Each measurement runs in a fresh process (its own peak resident memory):
- cold feature extraction (seconds, peak RSS, size of the features);
- RAVDESS: one ConvNet training epoch on actors 1-18 and scoring actors 21-24, for the network
  widths and feature resolutions compared in ``docs/benchmarks.md``, with evaluation batches
  bounded by input size (as the library does) and with the earlier fixed 1,024-clip batches;
- UrbanSound8K: the first batches of a ConvNet epoch on the default training folds and scoring
  the test fold: the training memory at the full count.

``python -m benchmarks.full_size [--data DIR] [--only ravdess|urbansound8k]``
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO, data_root, quiet

# (name, width, hop_length, frames): RAVDESS's default 64-band log-mel at hop 256 (219 frames, 3.5 s)
# and at hop 512 (110 frames), ConvNet widths 128 (the default), 64 and 32
US8K_TRAIN_BATCHES = 20   # memory is the same after a few batches; a whole CPU epoch takes long (the rate is printed)
RAVDESS_CONFIGS = [("w128-hop256", 128, 256, 219), ("w64-hop256", 64, 256, 219), ("w128-hop512", 128, 512, 110),
                   ("w64-hop512", 64, 512, 110), ("w32-hop512", 32, 512, 110)]


def ravdess_tree(shared: Path, target: Path) -> Path:
    source = sorted((shared / "ravdess" / "Audio_Speech_Actors_01-24").glob("Actor_*/*.wav"))
    by_stem = {}
    for p in source:  # 03-01-EE-II-SS-RR-AA.wav: one clip per (emotion, intensity, statement, repetition)
        by_stem.setdefault(p.name[:-7], []).append(p)
    for actor in range(1, 25):
        folder = target / "ravdess" / "Audio_Speech_Actors_01-24" / f"Actor_{actor:02d}"
        folder.mkdir(parents=True)
        for stem, clips in by_stem.items():
            os.symlink(clips[actor % len(clips)], folder / f"{stem}-{actor:02d}.wav")
    return target


def urbansound_tree(shared: Path, target: Path) -> Path:
    base = shared / "urbansound8k" / "UrbanSound8K"
    present = sorted((base / "audio").glob("fold*/*.wav"))
    out = target / "urbansound8k" / "UrbanSound8K"
    (out / "metadata").mkdir(parents=True)
    os.symlink(base / "metadata" / "UrbanSound8K.csv", out / "metadata" / "UrbanSound8K.csv")
    with open(base / "metadata" / "UrbanSound8K.csv", newline="") as fh:
        for k, row in enumerate(csv.DictReader(fh)):
            folder = out / "audio" / f"fold{row['fold']}"
            folder.mkdir(parents=True, exist_ok=True)
            os.symlink(present[k % len(present)], folder / row["slice_file_name"])
    return target


def child(task: str, root: str, cache: str, *args: str) -> None:
    import torch

    import audioforge.processes  # noqa: F401 - imports are not the work measured
    import datamodules  # noqa: F401
    from audioforge.run import DatasetConfig

    torch.set_num_threads(os.cpu_count() or 1)
    if task == "extract":
        dataset = args[0]
        imports_mb = peak_mb()
        t0 = time.perf_counter()
        dm = DatasetConfig(dataset=dataset, root=root, cache_dir=cache).load({}, seed=0)
        print(json.dumps({"clips": len(dm.items), "seconds": time.perf_counter() - t0,
                          "features_mb": dm.x.numel() * 4 / 2**20, "peak_mb": peak_mb(), "imports_mb": imports_mb}))
        return
    from audioforge.training import TrainerConfig, make_trainer
    from lightning_modules.classifier import ClassifierModule, predict_logits

    dataset, width, features, eval_batch = args[0], int(args[1]), json.loads(args[2]), args[3]
    batches = int(args[4]) if len(args) > 4 else None   # a first part of the epoch (its memory is the epoch's)
    dm = DatasetConfig(dataset=dataset, root=root, cache_dir=cache).load(features, seed=0, batch_size=32)
    base_mb = peak_mb()
    model = ClassifierModule("convnet", dm.input_shape, dm.num_classes, network_kwargs={"width": width})
    if batches:
        import lightning.pytorch as pl

        trainer = pl.Trainer(max_epochs=1, limit_train_batches=batches, limit_val_batches=0, logger=False,
                             enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    else:
        trainer = make_trainer(TrainerConfig(), 1, False, [], validate=False)
    t0 = time.perf_counter()
    trainer.fit(model, train_dataloaders=dm.train_dataloader())
    epoch = time.perf_counter() - t0
    x, _ = dm.tensors("test")
    t0 = time.perf_counter()
    predict_logits(model, x, None if eval_batch == "bounded" else int(eval_batch))
    print(json.dumps({"train_clips": dm.split_size("train"), "epoch_seconds": epoch, "batches": batches, "test_clips": len(x),
                      "test_seconds": time.perf_counter() - t0, "data_peak_mb": base_mb, "peak_mb": peak_mb()}))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_child(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.full_size", "--child", *map(str, args)], cwd=REPO,
                         capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"child {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    quiet()
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["ravdess", "urbansound8k"])
    args, _ = parser.parse_known_args(argv)
    shared = data_root(argv).resolve()  # links point at absolute paths
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.only in (None, "ravdess"):
            root = ravdess_tree(shared, tmp / "r")
            cache = tmp / "cache-r"
            ex = in_child("extract", root, cache, "ravdess")
            print(f"RAVDESS full size: {ex['clips']} clips, features cold {ex['seconds']:.1f} s, peak "
                  f"{ex['peak_mb']:.0f} MB ({ex['imports_mb']:.0f} of them the libraries') for {ex['features_mb']:.0f} MB of features", flush=True)
            results["ravdess_extract"] = ex
            for name, width, hop, frames in RAVDESS_CONFIGS:
                for batch in (["bounded", "1024"] if name == "w128-hop256" else ["bounded"]):
                    r = in_child("epoch", root, cache, "ravdess", width,
                                 json.dumps({"hop_length": hop, "frames": frames}), batch)
                    results[f"ravdess_{name}_{batch}"] = r
                    print(f"  ConvNet {name} (eval batches {batch}): epoch of {r['train_clips']} clips "
                          f"{r['epoch_seconds']:.1f} s (target 30), scoring {r['test_clips']} clips "
                          f"{r['test_seconds']:.1f} s, peak {r['peak_mb']:.0f} MB (target 2048; data alone "
                          f"{r['data_peak_mb']:.0f})", flush=True)
        if args.only in (None, "urbansound8k"):
            root = urbansound_tree(shared, tmp / "u")
            ex = in_child("extract", root, tmp / "cache-u", "urbansound8k")
            print(f"UrbanSound8K full size: {ex['clips']} clips, features cold {ex['seconds']:.1f} s, peak "
                  f"{ex['peak_mb']:.0f} MB ({ex['imports_mb']:.0f} of them the libraries') for {ex['features_mb']:.0f} MB of features (target: within 2x "
                  f"features + model, 4 GB)", flush=True)
            results["urbansound8k_extract"] = ex
            r = in_child("epoch", root, tmp / "cache-u", "urbansound8k", 128, "{}", "bounded", US8K_TRAIN_BATCHES)
            results["urbansound8k_train"] = r
            print(f"  ConvNet w128 on the default folds: {r['train_clips']} training clips, the first "
                  f"{US8K_TRAIN_BATCHES} batches of 32 in {r['epoch_seconds']:.1f} s, scoring {r['test_clips']} "
                  f"clips {r['test_seconds']:.1f} s, peak {r['peak_mb']:.0f} MB (data alone {r['data_peak_mb']:.0f})",
                  flush=True)
    return results


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        quiet()
        child(*sys.argv[2:])
    else:
        main(sys.argv[1:])
