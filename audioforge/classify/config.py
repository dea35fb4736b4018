"""Configuration of plain classification (``audioforge classify``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from audioforge.errors import ConfigError
from audioforge.tracking import TrackingConfig
from audioforge.training import FitConfig, TrainerConfig


@dataclass
class DatasetConfig:
    dataset: str = "fsdd"                # fsdd, urbansound8k, ravdess, rir_simulated, rir_real
    root: str | None = None              # null: $AUDIOFORGE_DATA, else ./data
    cache_dir: str | None = None         # null: $AUDIOFORGE_CACHE or ~/.cache/audioforge
    options: dict[str, Any] = field(default_factory=dict)  # the datamodule's own arguments

    def load(self, features: dict[str, Any], seed: int, batch_size: int = 16):
        """The datamodule, with ``features`` overriding the dataset's defaults, prepared and set up
        (bad data or options fail here, before any run is recorded)."""
        from audioforge.config import from_dict
        from audioforge.paths import data_root
        from audioforge.processes import WorkerPool
        from datamodules import build_datamodule, default_features
        from datamodules.registry import DATACLASS_OPTIONS

        options = {k: from_dict(DATACLASS_OPTIONS[k], v, f"data.options.{k}")
                   if k in DATACLASS_OPTIONS and isinstance(v, dict) else v for k, v in self.options.items()}
        dm = build_datamodule(self.dataset, data_root(self.root), options,
                              default_features(self.dataset, features), seed=seed, cache_dir=self.cache_dir,
                              batch_size=batch_size, worker_pool=WorkerPool)
        dm.prepare_data()
        dm.setup()
        return dm


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
class ClassifyConfig:
    name: str = "classify"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    output_dir: str | None = None        # null: outputs/classify/<name>-<timestamp>
    data: DatasetConfig = field(default_factory=DatasetConfig)
    features: dict[str, Any] = field(default_factory=dict)  # overrides of the dataset's default FeatureSpec
    model: NetworkConfig = field(default_factory=NetworkConfig)
    fit: TrainConfig = field(default_factory=TrainConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    tracking: TrackingConfig = field(default_factory=lambda: TrackingConfig(experiment="audioforge-classify"))

    def validate(self, path: str = "") -> None:
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds must hold distinct seeds, got {self.seeds}")
        from datamodules.registry import check_dataset

        check_dataset(self.data.dataset)
