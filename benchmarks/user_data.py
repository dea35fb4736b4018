"""Your own data at size: a folder-per-class set of 10,000 one-second clips (16 kHz, as speech
command sets come, so every clip is resampled to the features' 8 kHz), beside real FSDD in the
same run.  Measured: cold feature extraction per clip (target: no slower than FSDD's), its peak
memory (each extraction in a fresh process), and one ConvNet training epoch on it (target: under
a minute).  ``python -m benchmarks.user_data [--data DIR] [--clips N]``"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import REPO, data_root, quiet

CLASSES = 10


def write_tree(root: Path, clips: int, sample_rate: int = 16000, seconds: float = 1.0) -> Path:
    """``clips`` tones-in-noise of ``seconds`` each, one folder per class, 40 speakers (file-name
    prefix)."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    for k in range(clips):
        label, speaker = k % CLASSES, (k // CLASSES) % 40
        f0 = 200 * 2 ** (label / 6) * (1 + 0.01 * speaker)
        wave = 0.3 * np.sin(2 * np.pi * f0 * t + rng.uniform(0, 6.3)) + 0.02 * rng.standard_normal(t.size)
        folder = root / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"spk{speaker:02d}_{k:05d}.wav", wave.astype(np.float32), sample_rate, subtype="PCM_16")
    return root


def child(kind: str, root: str, cache: str) -> None:
    """In a fresh process: build the dataset's features cold, as a command does (worker pool)."""
    import audioforge.processes  # noqa: F401 - imports are not extraction
    import datamodules  # noqa: F401
    from audioforge.run import DatasetConfig

    cfg = DatasetConfig(dataset=kind, root=root, cache_dir=cache,
                        options={"group_pattern": r"^(spk\d+)_"} if kind == "folder" else {})
    t0 = time.perf_counter()
    dm = cfg.load({}, seed=0)
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"clips": len(dm.items), "seconds": seconds, "cached": dm.last_load_cached,
                      "features_mb": dm.x.numel() * 4 / 2**20, "peak_mb": peak_mb}))


def extract_in_child(kind: str, root: Path, cache: Path) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.user_data", "--child", kind, str(root), str(cache)],
                         cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def train_epoch(root: Path, cache: Path) -> float:
    """Seconds of one training epoch of the default ConvNet (batch 32) on the folder's train split."""
    from audioforge.run import DatasetConfig
    from audioforge.training import TrainerConfig, configure_threads, make_trainer
    from lightning_modules.classifier import ClassifierModule

    configure_threads(TrainerConfig())
    dm = DatasetConfig(dataset="folder", root=str(root), cache_dir=str(cache),
                       options={"group_pattern": r"^(spk\d+)_"}).load({}, seed=0, batch_size=32)
    model = ClassifierModule("convnet", dm.input_shape, dm.num_classes)
    trainer = make_trainer(TrainerConfig(), 1, False, [], validate=False)
    t0 = time.perf_counter()
    trainer.fit(model, train_dataloaders=dm.train_dataloader())
    return time.perf_counter() - t0, dm.split_size("train")


def main(argv: list[str] | None = None) -> dict:
    quiet()
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=10000)
    args, _ = parser.parse_known_args(argv)
    fsdd_root = data_root(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        tree = write_tree(tmp / "tree", args.clips)
        written = time.perf_counter() - t0
        fsdd = extract_in_child("fsdd", fsdd_root, tmp / "cache-fsdd")
        folder = extract_in_child("folder", tree, tmp / "cache-folder")
        cached = extract_in_child("folder", tree, tmp / "cache-folder")
        epoch, train_clips = train_epoch(tree, tmp / "cache-folder")
    per_fsdd, per_folder = fsdd["seconds"] / fsdd["clips"] * 1e3, folder["seconds"] / folder["clips"] * 1e3
    print(f"folder set: {folder['clips']} one-second 16 kHz clips written in {written:.1f} s")
    print(f"cold features: FSDD {fsdd['clips']} clips {fsdd['seconds']:.2f} s ({per_fsdd:.3f} ms/clip, peak "
          f"{fsdd['peak_mb']:.0f} MB); folder {folder['seconds']:.2f} s ({per_folder:.3f} ms/clip, peak "
          f"{folder['peak_mb']:.0f} MB for {folder['features_mb']:.0f} MB of features); folder/FSDD per clip "
          f"{per_folder / per_fsdd:.2f} (target at most 1)")
    print(f"cached: folder {cached['seconds']:.2f} s; one ConvNet epoch on {train_clips} training clips "
          f"{epoch:.1f} s (target 60)")
    return {"fsdd": fsdd, "folder": folder, "folder_cached": cached, "epoch_seconds": epoch,
            "per_clip_ratio": per_folder / per_fsdd}


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        quiet()
        child(*sys.argv[2:5])
    else:
        main(sys.argv[1:])
