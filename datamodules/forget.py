"""Forget sets: which training clips an unlearning experiment asks a model to forget.

A forget set is carved out of a dataset's training split after the dataset has made its own
splits (:meth:`AudioDataModule.make_splits`):

- ``group``: every training clip of the named groups (FSDD speakers, RAVDESS actors);
- ``class``: every training clip of the named classes;
- ``fraction``: a random share of the training clips, stratified by class.

The result has the splits the unlearning protocol reads: ``forget`` (and ``forget_holdout``, a
share of the forget clips no model trains on: the membership attack's same-distribution
non-members), ``retain_train`` (training clips outside the forget set), ``full_train`` (retain
plus forget: what the original model trains on), and ``val`` and ``test`` with every clip of a
forgotten group or class removed, so neither ever holds the forget set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np
from sklearn.model_selection import train_test_split

from audioforge.errors import ConfigError, DataError

KINDS = ("group", "class", "fraction")


@dataclass
class ForgetSet:
    kind: Literal["group", "class", "fraction"] = "group"
    values: list[str] = field(default_factory=list)   # group names or class names (kinds group, class)
    fraction: float = 0.1                              # kind fraction: share of the training clips

    def validate(self, path: str = "data.forget") -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"{path}.kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.kind == "fraction":
            if self.values:
                raise ConfigError(f"{path}.values: a random fraction names no groups or classes")
            if not 0 < self.fraction < 1:
                raise ConfigError(f"{path}.fraction must be in (0, 1), got {self.fraction}")
        elif not self.values:
            raise ConfigError(f"{path}.values must name at least one {self.kind}")

    def describe(self) -> str:
        if self.kind == "fraction":
            return f"a random {self.fraction:.0%} of the training clips"
        return f"{self.kind} {', '.join(map(str, self.values))}"


def carve(groups: Sequence[str], labels: np.ndarray, class_names: Sequence[str], splits: dict[str, np.ndarray],
          forget: ForgetSet, holdout: float = 0.0, seed: int = 0, dataset: str = "data") -> dict[str, np.ndarray]:
    """The unlearning splits of ``splits`` (whose training split is ``train`` or ``retain_train``)
    with ``forget`` taken out; ``groups`` and ``labels`` are per clip."""
    forget.validate()
    if not 0 <= holdout < 1:
        raise ConfigError(f"data.forget_holdout must be in [0, 1), got {holdout}")
    train_name = "train" if "train" in splits else "retain_train"
    train = np.asarray(splits[train_name])
    groups = np.asarray(groups)
    if forget.kind == "group":
        known = sorted(set(groups.tolist()))
        unknown = [v for v in forget.values if v not in known]
        if unknown:
            raise DataError(f"data.forget: {dataset} has no group {unknown[0]!r} (groups: {', '.join(known)})")
        chosen = np.isin(groups, list(forget.values))
        absent = [v for v in forget.values if not np.any(groups[train] == v)]
        if absent:
            raise DataError(f"data.forget: group {absent[0]!r} has no clips in {dataset}'s training split "
                            "(the dataset's own split put it in validation or test): forget a training group")
    elif forget.kind == "class":
        unknown = [v for v in forget.values if v not in class_names]
        if unknown:
            raise DataError(f"data.forget: {dataset} has no class {unknown[0]!r} (classes: {', '.join(class_names)})")
        ids = [list(class_names).index(v) for v in forget.values]
        chosen = np.isin(labels, ids)
    else:
        chosen = np.zeros(len(labels), dtype=bool)
        try:
            _, picked = train_test_split(train, test_size=forget.fraction, stratify=labels[train], random_state=seed)
        except ValueError:  # too few clips per class to stratify: a plain random draw
            picked = np.random.default_rng(seed).choice(train, max(1, round(forget.fraction * len(train))), replace=False)
        chosen[picked] = True
    in_train = chosen[train]
    forget_idx, retain = train[in_train], train[~in_train]
    if len(forget_idx) == 0:
        raise DataError(f"data.forget: {forget.describe()} selects no training clip of {dataset}")
    if len(retain) == 0:
        raise DataError(f"data.forget: {forget.describe()} selects every training clip of {dataset}")
    out = {k: v for k, v in splits.items() if k not in ("train", "retain_train", "full_train", "forget")}
    for name in ("val", "test"):
        if name in out:
            out[name] = np.asarray(out[name])[~chosen[out[name]]]
    if holdout > 0:
        stratify = labels[forget_idx] if len(set(labels[forget_idx].tolist())) > 1 else None
        try:
            forget_idx, held = train_test_split(forget_idx, test_size=holdout, stratify=stratify, random_state=seed)
        except ValueError:
            forget_idx, held = train_test_split(forget_idx, test_size=holdout, random_state=seed)
        out["forget_holdout"] = np.sort(held)
    out["forget"] = np.sort(forget_idx)
    out["retain_train"] = np.sort(retain)
    out["full_train"] = np.sort(np.concatenate([retain, forget_idx]))
    return out
