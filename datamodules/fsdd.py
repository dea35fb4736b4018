"""Free Spoken Digit Dataset (``fsdd/recordings/{digit}_{speaker}_{index}.wav``) for speaker unlearning.

Splits (deterministic per seed):

- ``forget``: every clip of the forget speaker(s) (one speaker: 500 clips);
- the retained clips split, stratified by digit, into ``retain_train`` / ``val`` / ``test``
  (one speaker forgotten: 2025 / 225 / 250, the unlearning paper's sizes);
- ``full_train`` = ``retain_train`` + ``forget`` (2525), what the original model learns from;
- with ``forget_holdout > 0``, that share of the forget speakers' clips (stratified by digit)
  becomes ``forget_holdout``: clips of the forgotten speaker no model trains on, the non-members
  of the same distribution a membership attack needs to show its power (``forget`` keeps the
  rest; 0 by default, the paper's split).

``forget_speakers=[]`` (distillation, plain classification) stratifies all 3,000 clips:
``full_train`` / ``val`` / ``test`` = 2457 / 243 / 300.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from audioforge.errors import ConfigError, DataError
from datamodules.base import AudioDataModule, AudioItem, describe_files, list_audio_files
from datamodules.download import fetch_fsdd
from datamodules.forget import ForgetSet

FILENAME = re.compile(r"^(?P<digit>\d)_(?P<speaker>[A-Za-z]+)_(?P<index>\d+)\.wav$")


class FSDDDataModule(AudioDataModule):
    name = "fsdd"
    class_names = [str(d) for d in range(10)]

    def __init__(self, root: str | Path, forget_speakers: list[str] = ("george",), val_fraction: float = 0.09,
                 test_fraction: float = 0.10, download: bool = True, train_split: str = "full_train",
                 forget_holdout: float = 0.0, forget: ForgetSet | None = None, **kwargs):
        # speakers are forgotten by FSDD's own protocol (validation and test drawn from the other
        # speakers); a class or a random fraction is carved by the base from the whole training split
        if forget is not None:
            forget_speakers, forget = (list(forget.values), None) if forget.kind == "group" else ([], forget)
        self.forget_speakers = list(forget_speakers)
        super().__init__(root, train_split=train_split, forget=forget, forget_holdout=forget_holdout, **kwargs)
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.download = download
        if not 0 < val_fraction < 1 or not 0 < test_fraction < 1 or val_fraction + test_fraction >= 1:
            raise ConfigError("data.val_fraction and data.test_fraction must be in (0, 1) and sum below 1, "
                              f"got {val_fraction} and {test_fraction}")

    def locate(self) -> Path:
        folder = self.root / "fsdd" / "recordings"
        if folder.is_dir():
            return folder
        if not self.root.exists() and not self.download:
            raise DataError(f"data folder {self.root} does not exist (set data.root, --data or AUDIOFORGE_DATA "
                            "to the folder holding fsdd/recordings, or allow data.download)")
        if not self.download:
            raise DataError(f"FSDD not found: {folder} does not exist and data.download is false "
                            f"(expected {{digit}}_{{speaker}}_{{index}}.wav files there)")
        return fetch_fsdd(self.root / "fsdd")

    def discover(self, folder: Path) -> list[AudioItem]:
        audio, stray = list_audio_files(folder)
        misnamed = [p for p in audio if not FILENAME.match(p.name)]
        if stray or misnamed:
            bad = stray + misnamed
            raise DataError(f"{folder} holds {len(bad)} file(s) that are not FSDD recordings named "
                            f"{{digit}}_{{speaker}}_{{index}}.wav: {describe_files(bad)}; move them elsewhere")
        if not audio:
            raise DataError(f"FSDD folder {folder} is empty: no {{digit}}_{{speaker}}_{{index}}.wav files")
        items = []
        for p in audio:
            m = FILENAME.match(p.name)
            items.append(AudioItem(path=p, label=int(m["digit"]), group=m["speaker"]))
        speakers = sorted({i.group for i in items})
        unknown = [s for s in self.forget_speakers if s not in speakers]
        if unknown:
            raise DataError(f"unknown forget speaker {unknown[0]!r}: the speakers in {folder} are {', '.join(speakers)}")
        if set(self.forget_speakers) >= set(speakers):
            raise DataError(f"data.forget_speakers must not name every speaker ({', '.join(speakers)})")
        return items

    def make_splits(self, items: list[AudioItem]) -> dict[str, np.ndarray]:
        forget_set = set(self.forget_speakers)
        labels = np.array([i.label for i in items])
        is_forget = np.array([i.group in forget_set for i in items])
        forget, retained = np.flatnonzero(is_forget), np.flatnonzero(~is_forget)
        n = len(retained)
        n_test, n_val = round(n * self.test_fraction), round(n * self.val_fraction)
        try:
            rest, test = train_test_split(retained, test_size=n_test, stratify=labels[retained], random_state=self.seed)
            train, val = train_test_split(rest, test_size=n_val, stratify=labels[rest], random_state=self.seed)
        except ValueError as exc:
            raise DataError(f"cannot split {n} retained FSDD clips into stratified train/val/test "
                            f"({self.val_fraction}/{self.test_fraction}): {exc}") from None
        train, val, test = np.sort(train), np.sort(val), np.sort(test)
        splits = {"retain_train": train, "val": val, "test": test}
        if self.forget_holdout > 0 and self.forget is None:
            try:
                forget, held = train_test_split(forget, test_size=self.forget_holdout, stratify=labels[forget],
                                                random_state=self.seed)
            except ValueError as exc:
                raise DataError(f"cannot hold out {self.forget_holdout} of the {len(forget)} forget clips "
                                f"stratified by digit: {exc}") from None
            forget, splits["forget_holdout"] = np.sort(forget), np.sort(held)
        splits["forget"] = forget
        splits["full_train"] = np.sort(np.concatenate([train, forget]))
        return splits
