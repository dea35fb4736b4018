"""Class orders and the steps they arrive in."""

from __future__ import annotations

import numpy as np

from audioforge.errors import ConfigError


def class_orders(num_classes: int, orders: int, seed: int, explicit: list[list[int]] | None = None) -> list[list[int]]:
    """``explicit`` orders, checked to be permutations of the classes; else ``orders`` random
    permutations drawn with ``seed`` (distinct while there are that many)."""
    if explicit is not None:
        for i, order in enumerate(explicit):
            if sorted(order) != list(range(num_classes)):
                raise ConfigError(f"class_orders[{i}] must be a permutation of the classes 0..{num_classes - 1}, "
                                  f"got {order}")
        return [list(map(int, o)) for o in explicit]
    rng = np.random.default_rng(seed)
    out: list[list[int]] = []
    while len(out) < orders:
        order = [int(c) for c in rng.permutation(num_classes)]
        if order not in out or len(out) >= _factorial_cap(num_classes):
            out.append(order)
    return out


def _factorial_cap(n: int) -> int:
    import math

    return math.factorial(min(n, 10))


def split_steps(order: list[int], steps: int) -> list[list[int]]:
    """The classes of each step: ``order`` cut into ``steps`` equal parts."""
    if steps < 1 or len(order) % steps:
        raise ConfigError(f"steps must divide the {len(order)} classes into equal steps, got steps={steps}")
    size = len(order) // steps
    return [order[i * size:(i + 1) * size] for i in range(steps)]
