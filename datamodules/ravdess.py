"""RAVDESS speech: ``Audio_Speech_Actors_01-24/Actor_XX/03-01-EE-II-SS-RR-AA.wav``.

Labels are the emotions parsed from the names (EE: 01 neutral, 02 calm, 03 happy, 04 sad,
05 angry, 06 fearful, 07 disgust, 08 surprised).  The distillation paper speaks of seven
classes without saying which; ``merge_calm=True`` gives seven by merging calm into neutral (the
two differ only in arousal), the default keeps RAVDESS's eight.  Splits are by actor, so no actor
is in two splits; stereo clips are mixed to mono and 48 kHz is resampled to the features' rate.
``download=True`` fetches the official speech archive (Zenodo, MD5-checked, 208 MB) when absent.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from audioforge.errors import ConfigError, DataError
from datamodules.base import AudioDataModule, AudioItem, describe_files, list_audio_files
from datamodules.download import RAVDESS_SPEECH, fetch_archive
from datamodules.features import FeatureSpec

FILENAME = re.compile(r"^03-01-(?P<emotion>\d\d)-(?P<intensity>0[12])-(?P<statement>0[12])-(?P<rep>0[12])-"
                      r"(?P<actor>\d\d)\.wav$")
EMOTIONS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
# 16 kHz log-mel, 64 bands, hop 256: 219 frames = 3.5 s (RAVDESS sentences last about 3-4 s).
DEFAULT_FEATURES = FeatureSpec(kind="logmel", sample_rate=16000, n_fft=1024, hop_length=256, n_mels=64, frames=219)


class RAVDESSDataModule(AudioDataModule):
    name = "ravdess"

    def __init__(self, root: str | Path, val_actors: list[int] = (19, 20), test_actors: list[int] = (21, 22, 23, 24),
                 merge_calm: bool = False, download: bool = False, features: FeatureSpec | None = None, **kwargs):
        super().__init__(root, features=features or DEFAULT_FEATURES, **kwargs)
        self.val_actors, self.test_actors = list(val_actors), list(test_actors)
        if set(self.val_actors) & set(self.test_actors):
            raise ConfigError(f"data.options.val_actors and test_actors overlap: {sorted(set(val_actors) & set(test_actors))}")
        self.merge_calm = merge_calm
        self.download = download
        self.class_names = [e for e in EMOTIONS if not (merge_calm and e == "calm")]

    def label(self, emotion: int) -> int:
        name = EMOTIONS[emotion - 1]
        if self.merge_calm and name == "calm":
            name = "neutral"
        return self.class_names.index(name)

    def locate(self) -> Path:
        folder = self.root / "ravdess" / "Audio_Speech_Actors_01-24"
        if not folder.is_dir() and self.download:
            fetch_archive(RAVDESS_SPEECH, folder)
        if not folder.is_dir():
            raise DataError(f"RAVDESS not found: {folder} does not exist (expected Actor_XX folders of "
                            f"03-01-EE-II-SS-RR-AA.wav files; data.download=true fetches the official speech archive)")
        return folder

    def discover(self, folder: Path) -> list[AudioItem]:
        items = []
        actors = sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith("Actor_"))
        if not actors:
            raise DataError(f"{folder} holds no Actor_XX folders")
        for actor_dir in actors:
            audio, stray = list_audio_files(actor_dir)
            bad = stray + [p for p in audio if not FILENAME.match(p.name)]
            if bad:
                raise DataError(f"{actor_dir} holds {len(bad)} file(s) not named 03-01-EE-II-SS-RR-AA.wav: "
                                f"{describe_files(bad)}")
            for p in audio:
                m = FILENAME.match(p.name)
                emotion, actor = int(m["emotion"]), int(m["actor"])
                if not 1 <= emotion <= 8:
                    raise DataError(f"{p}: unknown emotion id {emotion:02d} (01..08)")
                if actor_dir.name != f"Actor_{actor:02d}":
                    raise DataError(f"{p}: actor {actor:02d} in the name but the file is in {actor_dir.name}")
                items.append(AudioItem(path=p, label=self.label(emotion), group=f"actor{actor:02d}"))
        return items

    def make_splits(self, items: list[AudioItem]) -> dict[str, np.ndarray]:
        actors = np.array([int(i.group[5:]) for i in items])
        held_out = set(self.val_actors) | set(self.test_actors)
        splits = {"train": np.flatnonzero(~np.isin(actors, list(held_out))),
                  "val": np.flatnonzero(np.isin(actors, self.val_actors)),
                  "test": np.flatnonzero(np.isin(actors, self.test_actors))}
        present = sorted(set(actors.tolist()))
        for name in ("train", "test"):
            if len(splits[name]) == 0:
                raise DataError(f"RAVDESS split {name} has no clips: actors present are {present}; set "
                                f"data.options.val_actors / test_actors to actors present")
        return splits
