"""FSDD feature extraction: cold (decode + batched MFCC + cache write) and cached, beside
librosa's per-clip ``feature.mfcc`` on the same clips (targets: cold 10 s, cached 0.5 s)."""

from __future__ import annotations

import sys
import tempfile
import time

from benchmarks.common import data_root, quiet


def main(argv: list[str] | None = None) -> dict[str, float]:
    quiet()
    import librosa

    from datamodules import FSDDDataModule
    from datamodules.audio_io import fit_length, load_audio

    root = data_root(argv)
    with tempfile.TemporaryDirectory() as cache:
        cold = FSDDDataModule(root, download=False, cache_dir=cache)
        t0 = time.perf_counter()
        cold.setup()
        t_cold = time.perf_counter() - t0
        warm = FSDDDataModule(root, download=False, cache_dir=cache)
        t0 = time.perf_counter()
        warm.setup()
        t_warm = time.perf_counter() - t0
    spec = cold.features
    t0 = time.perf_counter()
    for item in cold.items:
        w = fit_length(load_audio(item.path, spec.sample_rate), spec.num_samples)
        librosa.feature.mfcc(y=w, sr=spec.sample_rate, n_mfcc=spec.n_mfcc, n_fft=spec.n_fft,
                             hop_length=spec.hop_length, n_mels=spec.n_mels)
    t_librosa = time.perf_counter() - t0
    n = len(cold.items)
    print(f"FSDD features, {n} clips: cold {t_cold:.2f} s (target 10), cached {t_warm:.3f} s (target 0.5), "
          f"librosa per-clip loop {t_librosa:.2f} s; cold is {t_librosa / t_cold:.1f}x faster than the loop, "
          f"cached {t_cold / t_warm:.0f}x faster than cold")
    return {"cold_seconds": t_cold, "cached_seconds": t_warm, "librosa_loop_seconds": t_librosa}


if __name__ == "__main__":
    main(sys.argv[1:])
