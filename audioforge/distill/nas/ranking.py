"""How well a proxy's scores rank networks as the ground truth does."""

from __future__ import annotations

import math

import numpy as np


def spearman(a, b) -> float | None:
    """Spearman's rank correlation (ties get their average rank); ``None`` where it is undefined
    (fewer than 3 networks, or either side constant)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) != len(b):
        raise ValueError(f"spearman needs two equally long score lists, got {len(a)} and {len(b)}")
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    ra, rb = _ranks(a), _ranks(b)
    return float(np.corrcoef(ra, rb)[0, 1])


def _ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="stable")
    ranks = np.empty(len(v))
    ranks[order] = np.arange(len(v), dtype=float)
    for value in np.unique(v):  # ties: their average rank
        tied = v == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def top(scores, fraction: float, minimum: int) -> list[int]:
    """Indices of the best ``fraction`` of ``scores`` (at least ``minimum``, at most all), best first."""
    k = min(len(scores), max(minimum, math.ceil(fraction * len(scores))))
    return [int(i) for i in np.argsort(-np.asarray(scores, dtype=float), kind="stable")[:k]]
