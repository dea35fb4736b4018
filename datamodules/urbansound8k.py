"""UrbanSound8K on its official layout: ``UrbanSound8K/audio/fold1..fold10/*.wav`` and
``UrbanSound8K/metadata/UrbanSound8K.csv`` (8,732 rows).

Only the official folds are used, never a random split: by default train folds 1-8, validation
9, test 10; ``cv_fold=k`` gives the 10-fold cross-validation split k (test fold k, validation
fold k+1, train the other eight).  Clips come in mixed sample rates, bit depths and channel
counts; each is decoded, mixed to mono, resampled to ``features.sample_rate`` and cut or padded
to the feature length (4 s with the default features).  ``val_folds=[]`` leaves no validation
split (training then runs a fixed number of epochs).  When the CSV lists clips that are not on
disk the module says how many and in which folds, and refuses unless ``allow_partial``.
``download=True`` fetches the official archive (Zenodo, MD5-checked, about 6 GB) when the
folder is absent.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from pathlib import Path

import numpy as np

from audioforge.errors import ConfigError, DataError
from datamodules.base import AudioDataModule, AudioItem
from datamodules.download import URBANSOUND8K, fetch_archive
from datamodules.features import FeatureSpec

log = logging.getLogger(__name__)

COLUMNS = ("slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class")
CLASSES = ["air_conditioner", "car_horn", "children_playing", "dog_bark", "drilling", "engine_idling",
           "gun_shot", "jackhammer", "siren", "street_music"]
# 22.05 kHz log-mel, 64 bands, 1024-point FFT, hop 512: 173 frames = 4.0 s.
DEFAULT_FEATURES = FeatureSpec(kind="logmel", sample_rate=22050, n_fft=1024, hop_length=512, n_mels=64,
                               n_mfcc=20, frames=173)


def cv_split(fold: int) -> tuple[list[int], list[int], list[int]]:
    """(train, val, test) folds of cross-validation split ``fold`` (1..10)."""
    if not 1 <= fold <= 10:
        raise ConfigError(f"data.options.cv_fold must be in 1..10, got {fold}")
    val = fold % 10 + 1
    return [f for f in range(1, 11) if f not in (fold, val)], [val], [fold]


class UrbanSound8KDataModule(AudioDataModule):
    name = "urbansound8k"
    class_names = CLASSES

    def __init__(self, root: str | Path, train_folds: list[int] = tuple(range(1, 9)), val_folds: list[int] = (9,),
                 test_folds: list[int] = (10,), cv_fold: int | None = None, allow_partial: bool = False,
                 download: bool = False, features: FeatureSpec | None = None, **kwargs):
        super().__init__(root, features=features or DEFAULT_FEATURES, **kwargs)
        if cv_fold is not None:
            train_folds, val_folds, test_folds = cv_split(cv_fold)
        self.folds = {"train": list(train_folds), "val": list(val_folds), "test": list(test_folds)}
        used = [f for fs in self.folds.values() for f in fs]
        if not self.folds["train"] or not self.folds["test"]:
            raise ConfigError("data.options.train_folds and test_folds must name at least one fold each")
        if len(used) != len(set(used)) or not all(1 <= f <= 10 for f in used):
            raise ConfigError(f"data folds must be distinct values in 1..10, got {self.folds}")
        self.allow_partial = allow_partial
        self.download = download

    @property
    def folder(self) -> Path:
        return self.root / "urbansound8k" / "UrbanSound8K"

    def locate(self) -> Path:
        csv_path = self.folder / "metadata" / "UrbanSound8K.csv"
        if not csv_path.is_file() and self.download and not self.folder.exists():
            fetch_archive(URBANSOUND8K, self.folder)  # about 6 GB, so only when asked
        if not csv_path.is_file():
            raise DataError(f"UrbanSound8K metadata not found: {csv_path} (expected the official layout "
                            f"UrbanSound8K/metadata/UrbanSound8K.csv and UrbanSound8K/audio/fold1..fold10; "
                            f"data.download=true fetches the official archive)")
        return self.folder

    def discover(self, folder: Path) -> list[AudioItem]:
        csv_path = folder / "metadata" / "UrbanSound8K.csv"
        wanted = {f for fs in self.folds.values() for f in fs}
        items, missing = [], Counter()
        with open(csv_path, newline="") as fh:
            reader = csv.DictReader(fh)
            if tuple(reader.fieldnames or ()) != COLUMNS:
                raise DataError(f"{csv_path}: header must be {','.join(COLUMNS)}, got {','.join(reader.fieldnames or [])}")
            for line, row in enumerate(reader, start=2):
                try:
                    fold, class_id = int(row["fold"]), int(row["classID"])
                except (TypeError, ValueError):
                    raise DataError(f"{csv_path}, line {line}: fold and classID must be integers, got "
                                    f"{row['fold']!r} and {row['classID']!r}") from None
                if not 1 <= fold <= 10:
                    raise DataError(f"{csv_path}, line {line}: unknown fold {fold} (folds are 1..10)")
                if not 0 <= class_id < len(CLASSES):
                    raise DataError(f"{csv_path}, line {line}: unknown classID {class_id} (0..{len(CLASSES) - 1})")
                if fold not in wanted:
                    continue
                path = folder / "audio" / f"fold{fold}" / row["slice_file_name"]
                if not path.is_file():
                    missing[fold] += 1
                    continue
                items.append(AudioItem(path=path, label=class_id, group=f"fold{fold}"))
        if missing:
            total = sum(missing.values())
            where = ", ".join(f"fold{f}: {n}" for f, n in sorted(missing.items()))
            message = (f"{total} of the {total + len(items)} clips that {csv_path} lists in the folds used are not on "
                       f"disk ({where})")
            if not self.allow_partial:
                raise DataError(message + "; set data.options.allow_partial=true to train on the clips present "
                                "(and choose folds that are present with data.options.train_folds, val_folds and "
                                "test_folds)")
            log.warning("%s; using the %d present (allow_partial)", message, len(items))
        return items

    def make_splits(self, items: list[AudioItem]) -> dict[str, np.ndarray]:
        folds = np.array([int(i.group[4:]) for i in items])
        splits = {}
        for name, wanted in self.folds.items():
            idx = np.flatnonzero(np.isin(folds, wanted))
            if len(idx) == 0 and (wanted or name != "val"):
                present = sorted(set(folds.tolist()))
                raise DataError(f"UrbanSound8K split {name} (folds {wanted}) has no clips on disk; folds present: "
                                f"{present}: set data.options.{name}_folds=[...] to some of them (each fold in one "
                                f"split only)")
            splits[name] = idx
        return splits
