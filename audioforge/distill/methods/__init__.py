"""Distillation methods by name, one file each.

A method is either *learned* (it optimises a synthetic set: its ``build`` returns a
:class:`~lightning_modules.distillation.base.SyntheticSet` LightningModule that ``distill`` fits,
validates and checkpoints) or a *coreset* (its ``select`` returns indices of real training clips).
Adding one is a new file here with ``@register_learned("name")`` or ``@register_coreset("name")``
on its function, plus its import at the bottom of this file; the config check, the CLI help and
the tables take the names from :data:`METHODS`.

``build(cfg, dm, syn_x, syn_y, buffer)``: the distill config, the (standardised) datamodule, the
starting synthetic features and labels, and the expert buffer when the method asked for one
(``needs_buffer=True``).  ``select(cfg, dm)``: ``cfg.cpc`` indices per class of ``dm``'s training split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from audioforge.errors import ConfigError


@dataclass(frozen=True)
class Method:
    name: str
    build: Callable | None = None        # learned methods
    select: Callable | None = None       # coresets
    needs_buffer: bool = False           # learned from expert trajectories (``audioforge buffer``)

    @property
    def learned(self) -> bool:
        return self.build is not None


METHODS: dict[str, Method] = {}


def register_learned(name: str, needs_buffer: bool = False):
    def wrap(build: Callable) -> Callable:
        METHODS[name] = Method(name, build=build, needs_buffer=needs_buffer)
        return build

    return wrap


def register_coreset(name: str):
    def wrap(select: Callable) -> Callable:
        METHODS[name] = Method(name, select=select)
        return select

    return wrap


def method(name: str) -> Method:
    if name not in METHODS:
        raise ConfigError(f"method: unknown method {name!r} (known: {', '.join(METHODS)})")
    return METHODS[name]


from audioforge.distill.methods import (datm, distribution_matching, gradient_matching, herding,  # noqa: E402,F401
                                        random_set, trajectory_matching)
