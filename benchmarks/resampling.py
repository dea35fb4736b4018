"""Decoding cost per clip, side by side in one run: one-second 16 kHz clips (a folder set, as
``benchmarks.user_data`` writes it) decoded and resampled to 8 kHz through librosa's wrapper
(``librosa.resample(res_type="soxr_hq")``, how decoding called it before) and through
:func:`datamodules.audio_io.load_audio` (soxr called directly) on the whole file, and on the part
the features use (``max_samples``: 0.76 s and the resampler's look-ahead, as extraction reads
now), the same for five-second clips (where the used part is a sixth of the file), beside real
FSDD clips read as extraction reads them (8 kHz, no resampling); each followed by the same MFCC
extraction.  Process CPU time, not wall time, so other
work on the cores moves the figures little; median of ``--repeats`` alternating rounds.

``python -m benchmarks.resampling [--data DIR] [--clips N] [--repeats R]``"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import data_root  # noqa: E402
from benchmarks.user_data import write_tree  # noqa: E402


def through_librosa(path: str, sample_rate: int) -> np.ndarray:
    import librosa
    import soundfile as sf

    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    mono = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    return librosa.resample(mono, orig_sr=sr, target_sr=sample_rate, res_type="soxr_hq") if sr != sample_rate else mono


def cpu_ms_per_clip(decode, paths: list[str]) -> float:
    from datamodules.audio_io import fit_length
    from datamodules.features import FeatureSpec, extract

    spec = FeatureSpec()
    started = time.process_time()
    waves = [fit_length(decode(p, spec.sample_rate), spec.num_samples) for p in paths]
    extract(waves, spec, chunk=len(waves))
    return (time.process_time() - started) / len(paths) * 1000


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args, _ = parser.parse_known_args(argv)
    import torch

    from datamodules.audio_io import load_audio
    from datamodules.features import FeatureSpec

    torch.set_num_threads(1)
    fsdd = sorted(str(p) for p in (data_root(argv) / "fsdd" / "recordings").glob("*.wav"))[:args.clips]
    with tempfile.TemporaryDirectory() as tmp:
        folder = sorted(str(p) for p in write_tree(Path(tmp) / "short", args.clips).rglob("*.wav"))
        long = sorted(str(p) for p in write_tree(Path(tmp) / "long", args.clips, seconds=5.0).rglob("*.wav"))
        cpu_ms_per_clip(load_audio, folder[:50])  # imports and first-call costs out of the rounds
        def used_part(path: str, rate: int):
            return load_audio(path, rate, FeatureSpec().num_samples)

        cases = {"folder, librosa's wrapper": through_librosa, "folder, soxr direct, whole file": load_audio,
                 "folder, soxr direct, used part": used_part, "5-s folder, soxr direct, whole file": load_audio,
                 "5-s folder, soxr direct, used part": used_part, "fsdd": used_part}
        rounds: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.repeats):
            for name, decode in cases.items():
                rounds[name].append(cpu_ms_per_clip(decode, fsdd if name == "fsdd" else long if name.startswith("5-s") else folder))
    out = {name: float(np.median(v)) for name, v in rounds.items()}
    for name, ms in out.items():
        print(f"{name:36s} {ms:.3f} ms CPU per clip ({ms / out['fsdd']:.2f}x FSDD)")
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
