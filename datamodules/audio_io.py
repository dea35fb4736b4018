"""Decoding audio files into mono float32 waveforms at a target sample rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from audioforge.errors import DataError


def load_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Read ``path`` (any format libsndfile reads, 16/24-bit PCM and float included), mix to mono
    and resample to ``sample_rate``.  Raises :class:`DataError` naming the file when it is missing,
    empty or cannot be decoded."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"audio file not found: {path}")
    if path.stat().st_size == 0:
        raise DataError(f"audio file is empty (0 bytes): {path}")
    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise DataError(f"cannot decode audio file {path}: {exc}") from None
    if audio.shape[0] == 0:
        raise DataError(f"audio file holds no samples: {path}")
    mono = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    if not np.isfinite(mono).all():
        raise DataError(f"audio file holds NaN or infinite samples: {path}")
    if sr != sample_rate:
        import librosa

        mono = librosa.resample(mono, orig_sr=sr, target_sr=sample_rate, res_type="soxr_hq")
    return np.ascontiguousarray(mono, dtype=np.float32)


def fit_length(wave: np.ndarray, length: int) -> np.ndarray:
    """Cut ``wave`` to ``length`` samples, or pad it with trailing silence."""
    if wave.shape[0] >= length:
        return wave[:length]
    return np.pad(wave, (0, length - wave.shape[0]))
