"""What the two bring-your-own-data modules (:mod:`datamodules.folder`, :mod:`datamodules.manifest`)
share: where the data is (``path``, relative to the data root), the class list, groups from a
regular expression on file names, and the group-aware split.

Groups (speakers, sessions, recording days) keep related clips in one split; they are what
``unlearn`` forgets with ``data.forget={kind: group, values: [...]}``.  A clip's group is, in
order: the manifest's group column; the regular expression ``group_pattern`` searched in the file
name (its group named ``group``, else its first group, else the whole match), every file
having to match; else the clip itself (no grouping: the split is stratified by class).
Splits: ``val_groups`` and ``test_groups`` when named, else whole groups drawn with ``split_seed``
(not the run's seeds: every seed of a run sees one split) until test and validation hold
``test_fraction`` and ``val_fraction`` of the clips; groups an unlearning run forgets are never
drawn.  A manifest's split column, when present, decides instead.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np

from audioforge.errors import ConfigError, DataError
from datamodules.base import AudioDataModule, AudioItem
from datamodules.features import FeatureSpec
from datamodules.splits import check_fractions, group_split, named_group_split

# the spoken-digit default (FSDD's 20 x 20 MFCC of 8 kHz audio, 0.76 s); override with features.*
DEFAULT_FEATURES = FeatureSpec()


class UserAudioDataModule(AudioDataModule):
    """Base of the folder and manifest modules; subclasses implement :meth:`discover`."""

    default_path = "."

    def __init__(self, root: str | Path, path: str | None = None, classes: Sequence[str] | None = None,
                 group_pattern: str | None = None, val_groups: Sequence[str] | None = None,
                 test_groups: Sequence[str] | None = None, val_fraction: float = 0.1, test_fraction: float = 0.1,
                 split_seed: int = 0, features: FeatureSpec | None = None, **kwargs):
        super().__init__(root, features=features or DEFAULT_FEATURES, **kwargs)
        self.path = path or self.default_path
        self.chosen_classes = None if classes is None else [str(c) for c in classes]
        if self.chosen_classes is not None and (not self.chosen_classes
                                                or len(set(self.chosen_classes)) != len(self.chosen_classes)):
            raise ConfigError(f"data.options.classes must name distinct classes, got {classes}")
        try:
            self.group_pattern = re.compile(group_pattern) if group_pattern else None
        except re.error as exc:
            raise ConfigError(f"data.options.group_pattern: not a regular expression ({exc}): {group_pattern!r}") from None
        if (val_groups is None) != (test_groups is None):
            raise ConfigError("data.options.val_groups and test_groups go together (name both; val_groups may be [])")
        self.val_groups = None if val_groups is None else [str(g) for g in val_groups]
        self.test_groups = None if test_groups is None else [str(g) for g in test_groups]
        if self.test_groups is not None and not self.test_groups:
            raise ConfigError("data.options.test_groups must name at least one group")
        check_fractions(val_fraction, test_fraction)
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        # one split for every seed of a run (seeds vary training, not which clips are tested)
        self.split_seed = split_seed
        self.class_names = list(self.chosen_classes or [])

    def locate(self) -> Path:
        where = Path(self.path).expanduser()
        return where if where.is_absolute() else self.root / where

    def set_classes(self, found: Sequence[str], source: str) -> dict[str, int]:
        """Class indices: ``classes`` when given (each must exist in ``found``), else ``found`` sorted."""
        if self.chosen_classes is None:
            self.class_names = sorted(found)
        else:
            missing = [c for c in self.chosen_classes if c not in found]
            if missing:
                raise DataError(f"{source} has no class {missing[0]!r} (classes: {', '.join(sorted(found))})")
            self.class_names = list(self.chosen_classes)
        if len(self.class_names) < 2:
            raise DataError(f"{source} holds {len(self.class_names)} class(es) ({', '.join(self.class_names)}): "
                            "classification needs at least 2")
        return {c: i for i, c in enumerate(self.class_names)}

    def group_of(self, path: Path, fallback: str) -> str:
        """The clip's group from ``group_pattern`` (``fallback``, the clip itself, without one)."""
        if self.group_pattern is None:
            return fallback
        m = self.group_pattern.search(path.name)
        if m is None:
            raise DataError(f"data.options.group_pattern '{self.group_pattern.pattern}' does not match the file name "
                            f"of {path}: every file needs a group (or drop group_pattern)")
        if "group" in self.group_pattern.groupindex:
            return m["group"]
        return m[1] if self.group_pattern.groups else m[0]

    def make_splits(self, items: list[AudioItem]) -> dict[str, np.ndarray]:
        labels, groups = [i.label for i in items], [i.group for i in items]
        if self.test_groups is not None:
            splits = named_group_split(groups, self.val_groups, self.test_groups, self.name)
        else:
            forgotten = self.forget.values if self.forget is not None and self.forget.kind == "group" else ()
            splits = group_split(labels, groups, self.val_fraction, self.test_fraction, self.split_seed, self.name,
                                 keep_in_train=forgotten)
        for name in ("train", "test"):
            if len(splits[name]) == 0:
                raise DataError(f"{self.name} split {name} has no clips; name groups with data.options.val_groups "
                                "and test_groups, or change data.options.val_fraction / test_fraction")
        return splits
