"""Train / validation / test splits in which no group (speaker, actor, recording session) is in two
splits: by named groups, by a seeded draw of whole groups, or, when every clip is its own group,
stratified by class."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.model_selection import train_test_split

from audioforge.errors import ConfigError, DataError


def check_fractions(val_fraction: float, test_fraction: float, path: str = "data.options") -> None:
    if not 0 <= val_fraction < 1 or not 0 < test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ConfigError(f"{path}.val_fraction must be in [0, 1) and {path}.test_fraction in (0, 1), summing "
                          f"below 1; got {val_fraction} and {test_fraction}")


def named_group_split(groups: Sequence[str], val_groups: Sequence[str], test_groups: Sequence[str],
                      dataset: str) -> dict[str, np.ndarray]:
    """Test: every clip of ``test_groups``; val: of ``val_groups``; train: the rest."""
    groups = np.asarray(groups)
    known = sorted(set(groups.tolist()))
    named = [*val_groups, *test_groups]
    twice = sorted({g for g in named if named.count(g) > 1})
    if twice:
        raise ConfigError(f"group {twice[0]!r} is named in data.options.val_groups and test_groups: a group "
                          "belongs to one split")
    unknown = [g for g in named if g not in known]
    if unknown:
        raise DataError(f"{dataset} has no group {unknown[0]!r} (groups: {', '.join(known[:20])}"
                        f"{' ...' if len(known) > 20 else ''})")
    test = np.flatnonzero(np.isin(groups, list(test_groups)))
    val = np.flatnonzero(np.isin(groups, list(val_groups)))
    train = np.flatnonzero(~np.isin(groups, named))
    return {"train": train, "val": val, "test": test}


def group_split(labels: Sequence[int], groups: Sequence[str], val_fraction: float, test_fraction: float,
                seed: int, dataset: str, keep_in_train: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Whole groups drawn (seeded) into test until it holds ``test_fraction`` of the clips, then into
    validation; the rest train.  Without groups (every clip its own), a split stratified by class.
    ``keep_in_train``: groups never drawn (a group an unlearning run forgets must be trained on)."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    n = len(labels)
    names, index = np.unique(groups, return_inverse=True)
    if len(names) == n:  # no grouping: stratify by class
        return _stratified(labels, val_fraction, test_fraction, seed, dataset)
    wanted = [0] * (2 if val_fraction > 0 else 1)
    drawable = len(names) - len(set(keep_in_train) & set(names.tolist()))
    if drawable < len(wanted) + (drawable == len(names)):
        raise DataError(f"{dataset} has {len(names)} group(s) ({', '.join(names)}): a split by group needs at least "
                        f"{len(wanted) + 1} (train, {'validation, ' if val_fraction > 0 else ''}test); name them with "
                        "data.options.val_groups and test_groups, or set data.options.val_fraction=0")
    sizes = np.bincount(index, minlength=len(names))
    order = np.random.default_rng(seed).permutation(len(names))
    order = np.concatenate([order[~np.isin(names[order], list(keep_in_train))],
                            order[np.isin(names[order], list(keep_in_train))]])  # kept groups last: train
    targets = [test_fraction * n] + ([val_fraction * n] if val_fraction > 0 else [])
    chosen: list[list[int]] = [[] for _ in targets]
    position = 0
    for k, target in enumerate(targets):
        # at least one group each, and leave at least one group per later split and for training
        limit = min(drawable - (len(targets) - k - 1), len(order) - (len(targets) - k))
        while position < limit:
            g = order[position]
            if chosen[k] and sizes[chosen[k]].sum() + sizes[g] / 2 > target:
                break
            chosen[k].append(g)
            position += 1
    test = np.flatnonzero(np.isin(index, chosen[0]))
    val = np.flatnonzero(np.isin(index, chosen[1])) if val_fraction > 0 else np.array([], dtype=int)
    train = np.setdiff1d(np.arange(n), np.concatenate([test, val]))
    return {"train": train, "val": val, "test": test}


def _stratified(labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int,
                dataset: str) -> dict[str, np.ndarray]:
    everything = np.arange(len(labels))
    n_test, n_val = max(1, round(len(labels) * test_fraction)), round(len(labels) * val_fraction)
    try:
        rest, test = train_test_split(everything, test_size=n_test, stratify=labels, random_state=seed)
        if n_val:
            train, val = train_test_split(rest, test_size=n_val, stratify=labels[rest], random_state=seed)
        else:
            train, val = rest, np.array([], dtype=int)
    except ValueError as exc:
        raise DataError(f"cannot split the {len(labels)} clips of {dataset} into train / validation / test "
                        f"stratified by class ({val_fraction} / {test_fraction}): {exc}") from None
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def check_split_groups(groups: Sequence[str], splits: dict[str, np.ndarray], source: str) -> None:
    """Raise naming the first group that has clips in two splits."""
    seen: dict[str, str] = {}
    for name, idx in splits.items():
        for g in sorted({groups[i] for i in idx.tolist()}):
            if g in seen and seen[g] != name:
                raise DataError(f"{source}: group {g!r} has clips in split {seen[g]} and in split {name}; a group "
                                "(speaker, session) must stay in one split, or drop the group column")
            seen[g] = name
