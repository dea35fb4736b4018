"""Unlearning operations by name, one file each: what a phase's ``ops`` (and a scheme's) can do.

An operation registers a factory with ``@register_operation("name")``::

    factory(op: OpConfig, round_starts: list[int], phase: PhaseConfig, phase_index: int, seed: int) -> EpochCallback

returning the callback that carries it out at the start of each round, and optionally a
``check(op, chosen_layers)`` that refuses a schedule before anything trains (a ``ConfigError``,
e.g. a BatchNorm reset that picks convolutions).  Adding one is a new file with the decorated
factory plus its import at the bottom of this file; ``OpConfig`` validation and the CLI help take
the names from :data:`OPERATIONS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from audioforge.errors import ConfigError


@dataclass(frozen=True)
class Operation:
    name: str
    factory: Callable
    check: Callable | None = None


OPERATIONS: dict[str, Operation] = {}


def register_operation(name: str, check: Callable | None = None):
    def wrap(factory: Callable) -> Callable:
        OPERATIONS[name] = Operation(name, factory, check)
        return factory

    return wrap


def operation(name: str) -> Operation:
    if name not in OPERATIONS:
        raise ConfigError(f"unknown operation {name!r} (known: {', '.join(OPERATIONS)})")
    return OPERATIONS[name]


from callbacks import batchnorm, perturb, reset  # noqa: E402,F401  (registers)
