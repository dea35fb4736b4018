"""Decoding audio files into mono float32 waveforms at a target sample rate."""

from __future__ import annotations

import math
import stat
from pathlib import Path

import numpy as np
import soundfile as sf

from audioforge.errors import DataError


# samples, at the lower of the file's and the target rate, read past the wanted part so that the
# resampler's filter sees what it would in the whole file: 128 already give the whole-file output
# within float rounding (5e-7) for 8-48 kHz in either direction
LOOKAHEAD = 512


def load_audio(path: str | Path, sample_rate: int, max_samples: int | None = None) -> np.ndarray:
    """Read ``path`` (any format libsndfile reads, 16/24-bit PCM and float included), mix to mono
    and resample to ``sample_rate``.  With ``max_samples``, only the first ``max_samples`` output
    samples are wanted: the file is read only as far as they (and the resampler's look-ahead)
    need, so a long recording costs what its used part does.  Raises :class:`DataError` naming
    the file when it is missing, empty or cannot be decoded."""
    path = Path(path)
    try:
        info = path.stat()
    except OSError:
        info = None
    if info is None or not stat.S_ISREG(info.st_mode):
        raise DataError(f"audio file not found: {path}")
    if info.st_size == 0:
        raise DataError(f"audio file is empty (0 bytes): {path}")
    try:
        with sf.SoundFile(str(path)) as f:
            sr, frames = f.samplerate, -1
            if max_samples is not None:
                lookahead = 0 if f.samplerate == sample_rate else LOOKAHEAD
                frames = math.ceil((max_samples + lookahead * sample_rate / min(f.samplerate, sample_rate))
                                   * f.samplerate / sample_rate)
            audio = f.read(frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise DataError(f"cannot decode audio file {path}: {exc}") from None
    if audio.shape[0] == 0:
        raise DataError(f"audio file holds no samples: {path}")
    mono = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    if not np.isfinite(mono).all():
        raise DataError(f"audio file holds NaN or infinite samples: {path}")
    if sr != sample_rate:
        import soxr

        # librosa.resample(res_type="soxr_hq") without its per-call overhead; its output is this one
        # plus, for some lengths, a trailing zero, which fit_length's zero padding makes the same
        mono = soxr.resample(mono, sr, sample_rate, quality="soxr_hq")
    return np.ascontiguousarray(mono, dtype=np.float32)


def fit_length(wave: np.ndarray, length: int) -> np.ndarray:
    """Cut ``wave`` to ``length`` samples, or pad it with trailing silence."""
    if wave.shape[0] >= length:
        return wave[:length]
    return np.pad(wave, (0, length - wave.shape[0]))
