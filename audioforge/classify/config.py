"""Configuration of plain classification (``audioforge classify``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from audioforge.errors import ConfigError
from audioforge.run import RunConfig
from audioforge.tracking import TrackingConfig
from audioforge.training import FitConfig


@dataclass
class NetworkConfig:
    network: str = "convnet"
    kwargs: dict[str, Any] = field(default_factory=dict)

    def validate(self, path: str = "model") -> None:
        from lightning_modules.networks import NETWORKS

        if self.network not in NETWORKS:
            raise ConfigError(f"{path}.network: unknown network {self.network!r} (known: {', '.join(sorted(NETWORKS))})")


@dataclass
class TrainConfig(FitConfig):
    epochs: int = 60
    batch_size: int = 32
    patience: int | None = 10            # validations without improvement of val/acc before stopping

    def validate(self, path: str = "fit") -> None:
        super().validate(path)
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"{path}.patience must be >= 1 or null, got {self.patience}")


@dataclass
class ClassifyConfig(RunConfig):
    name: str | None = "{dataset}-{arch}"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    tracking: TrackingConfig = field(default_factory=lambda: TrackingConfig(experiment="audioforge-classify"))
    model: NetworkConfig = field(default_factory=NetworkConfig)
    fit: TrainConfig = field(default_factory=TrainConfig)

    def name_fields(self) -> dict[str, str]:
        return {**super().name_fields(), "arch": self.model.network}
