"""The ConvNet search space of the dataset-condensation papers' architecture-search experiment (DC,
Zhao et al., ICLR 2021, section 4.4; DDFAD follows it): depth 1-4, width 32/64/128/256, activation
sigmoid/ReLU/leaky ReLU, normalisation none/batch/layer/instance/group, pooling none/max/average,
4 x 4 x 3 x 5 x 3 = 720 networks, each a ``convnet`` of :mod:`lightning_modules.networks`."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from audioforge.errors import ConfigError

DEPTHS = (1, 2, 3, 4)
WIDTHS = (32, 64, 128, 256)
ACTIVATIONS = ("sigmoid", "relu", "leakyrelu")
NORMS = ("none", "batch", "layer", "instance", "group")
POOLINGS = ("none", "max", "avg")


@dataclass(frozen=True)
class Candidate:
    depth: int
    width: int
    activation: str
    norm: str
    pooling: str

    @property
    def name(self) -> str:
        return f"d{self.depth}-w{self.width}-{self.activation}-{self.norm}-{self.pooling}"

    @property
    def kwargs(self) -> dict:
        """The ``convnet`` arguments of this candidate."""
        return {"depth": self.depth, "width": self.width, "activation": self.activation, "norm": self.norm,
                "pooling": self.pooling}


@dataclass
class SpaceConfig:
    depths: list[int] = field(default_factory=lambda: list(DEPTHS))
    widths: list[int] = field(default_factory=lambda: list(WIDTHS))
    activations: list[str] = field(default_factory=lambda: list(ACTIVATIONS))
    norms: list[str] = field(default_factory=lambda: list(NORMS))
    poolings: list[str] = field(default_factory=lambda: list(POOLINGS))

    def validate(self, path: str = "space") -> None:
        for key, allowed in (("activations", ACTIVATIONS), ("norms", NORMS), ("poolings", POOLINGS)):
            values = getattr(self, key)
            bad = [v for v in values if v not in allowed]
            if bad:
                raise ConfigError(f"{path}.{key}: unknown {bad[0]!r} (known: {', '.join(allowed)})")
        for key in ("depths", "widths"):
            if any(int(v) < 1 for v in getattr(self, key)):
                raise ConfigError(f"{path}.{key} must be positive, got {getattr(self, key)}")
        for key in ("depths", "widths", "activations", "norms", "poolings"):
            values = getattr(self, key)
            if not values:
                raise ConfigError(f"{path}.{key} is empty: the search subset would hold no network")
            if len(set(values)) != len(values):
                raise ConfigError(f"{path}.{key} names a value twice: {values}")

    def candidates(self) -> list[Candidate]:
        """Every network of the space, in a fixed order."""
        return [Candidate(*c) for c in itertools.product(self.depths, self.widths, self.activations, self.norms,
                                                          self.poolings)]


def sample(candidates: list[Candidate], size: int | None, seed: int) -> list[Candidate]:
    """``size`` networks drawn without replacement with ``seed`` (``None``: all), in space order."""
    if size is None:
        return list(candidates)
    if size < 1:
        raise ConfigError(f"sample must be >= 1 (or null for the whole space), got {size}: an empty search subset")
    if size > len(candidates):
        raise ConfigError(f"sample {size} is larger than the search space ({len(candidates)} networks)")
    picked = np.random.default_rng(seed).choice(len(candidates), size=size, replace=False)
    return [candidates[i] for i in sorted(picked.tolist())]
