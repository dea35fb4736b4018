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

The speaker protocol (``test_speakers`` and ``val_speakers`` given) splits by speaker instead:
every clip of the test speakers is ``test``, of the validation speakers ``val``, and the other
speakers (less any forget speakers) train, so no speaker is in two splits: a model is scored on
voices it never heard.  ``val_fraction`` and ``test_fraction`` are then unused.
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
                 forget_holdout: float = 0.0, forget: ForgetSet | None = None,
                 test_speakers: list[str] | None = None, val_speakers: list[str] | None = None, **kwargs):
        # speakers are forgotten by FSDD's own protocol (validation and test drawn from the other
        # speakers); a class or a random fraction is carved by the base from the whole training split
        if forget is not None:
            forget_speakers, forget = (list(forget.values), None) if forget.kind == "group" else ([], forget)
        self.forget_speakers = list(forget_speakers)
        self.test_speakers = None if test_speakers is None else list(test_speakers)
        self.val_speakers = None if val_speakers is None else list(val_speakers)
        if (self.test_speakers is None) != (self.val_speakers is None):
            raise ConfigError("data.options.test_speakers and val_speakers go together (the speaker protocol)")
        if self.test_speakers is not None:
            if not self.test_speakers or not self.val_speakers:
                raise ConfigError("data.options.test_speakers and val_speakers must each name at least one speaker")
            named = [*self.test_speakers, *self.val_speakers, *self.forget_speakers]
            twice = sorted({s for s in named if named.count(s) > 1})
            if twice:
                raise ConfigError(f"speaker {twice[0]!r} is named for two splits (test_speakers, val_speakers, "
                                  "forget_speakers must be disjoint)")
        super().__init__(root, train_split=train_split, forget=forget, forget_holdout=forget_holdout, **kwargs)
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.download = download
        if not 0 < val_fraction < 1 or not 0 < test_fraction < 1 or val_fraction + test_fraction >= 1:
            raise ConfigError("data.options.val_fraction and test_fraction must be in (0, 1) and sum below 1, "
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
        if self.test_speakers is not None:
            unknown = [s for s in self.test_speakers + self.val_speakers if s not in speakers]
            if unknown:
                raise DataError(f"unknown test or validation speaker {unknown[0]!r}: the speakers in {folder} are "
                                f"{', '.join(speakers)}")
            held = set(self.test_speakers + self.val_speakers + self.forget_speakers)
            if not set(speakers) - held:
                raise DataError(f"the speaker protocol leaves no training speaker: {', '.join(speakers)} are all "
                                "test, validation or forget speakers")
        return items

    def make_splits(self, items: list[AudioItem]) -> dict[str, np.ndarray]:
        forget_set = set(self.forget_speakers)
        labels = np.array([i.label for i in items])
        is_forget = np.array([i.group in forget_set for i in items])
        forget, retained = np.flatnonzero(is_forget), np.flatnonzero(~is_forget)
        if self.test_speakers is not None:
            speaker = np.array([i.group for i in items])
            test = np.flatnonzero(np.isin(speaker, self.test_speakers))
            val = np.flatnonzero(np.isin(speaker, self.val_speakers))
            train = np.setdiff1d(retained, np.r_[test, val])
            return self.forget_splits({"retain_train": train, "val": val, "test": test}, forget, labels)
        n = len(retained)
        n_test, n_val = round(n * self.test_fraction), round(n * self.val_fraction)
        try:
            rest, test = train_test_split(retained, test_size=n_test, stratify=labels[retained], random_state=self.seed)
            train, val = train_test_split(rest, test_size=n_val, stratify=labels[rest], random_state=self.seed)
        except ValueError as exc:
            raise DataError(f"cannot split {n} retained FSDD clips into stratified train/val/test "
                            f"({self.val_fraction}/{self.test_fraction}): {exc}") from None
        train, val, test = np.sort(train), np.sort(val), np.sort(test)
        return self.forget_splits({"retain_train": train, "val": val, "test": test}, forget, labels)

    def forget_splits(self, splits: dict[str, np.ndarray], forget: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
        """``splits`` with the forget speakers' clips (``forget``), their held-out share, and ``full_train``."""
        train = splits["retain_train"]
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
