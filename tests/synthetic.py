"""Small synthetic audio trees in each dataset's own layout, so the suite says something on a
checkout without ``../shared/data``.

The FSDD tree holds real WAV files named as FSDD names them (``{digit}_{speaker}_{take}.wav``,
8 kHz mono).  A clip is a tone whose pitch and harmonic both depend on the digit, so the classes are
learnable from MFCC; each speaker has its own pitch offset, loudness and noise, and each take its
own length and phase, so speakers are distinguishable and no two clips are equal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")


def fsdd_clip(digit: int, speaker: int, take: int, sr: int = 8000) -> np.ndarray:
    rng = np.random.default_rng([digit, speaker, take])
    seconds = 0.35 + 0.25 * rng.random()
    t = np.arange(int(seconds * sr)) / sr
    f0 = 220.0 * 2 ** (digit / 5) * (1 + 0.03 * speaker)
    wave = np.sin(2 * np.pi * f0 * t + rng.uniform(0, 2 * np.pi))
    wave += 0.5 * np.sin(2 * np.pi * f0 * (2 + digit % 3) * t)
    envelope = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.03)
    wave = (0.2 + 0.05 * speaker) * envelope * wave + 0.01 * (1 + speaker) * rng.standard_normal(len(t))
    return (0.5 * wave / np.abs(wave).max()).astype(np.float32)


def write_fsdd(root: Path, speakers: tuple[str, ...] = SPEAKERS, takes: int = 6) -> Path:
    """``root/fsdd/recordings`` with ``len(speakers) x 10 x takes`` clips; returns ``root``."""
    folder = Path(root) / "fsdd" / "recordings"
    folder.mkdir(parents=True, exist_ok=True)
    for s, speaker in enumerate(speakers):
        for digit in range(10):
            for take in range(takes):
                sf.write(folder / f"{digit}_{speaker}_{take}.wav", fsdd_clip(digit, s, take), 8000, subtype="PCM_16")
    return Path(root)
