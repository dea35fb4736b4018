"""Configuration of the speaker-unlearning experiment (``audioforge unlearn``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from audioforge.errors import ConfigError
from audioforge.tracking import TrackingConfig
from audioforge.training import FitConfig, TrainerConfig
from callbacks.schedule import OpConfig, PhaseConfig
from datamodules.features import FeatureSpec

SCHEMES = ("base", "all_bn", "conv_bn")


@dataclass
class DataConfig:
    dataset: Literal["fsdd"] = "fsdd"
    root: str | None = None             # null: $AUDIOFORGE_DATA, else ./data
    download: bool = True               # fetch the pinned FSDD release when absent
    forget_speakers: list[str] = field(default_factory=lambda: ["george"])
    val_fraction: float = 0.09          # of retained clips: 225 of 2500
    test_fraction: float = 0.10         # 250 of 2500
    drop_last: bool = False             # drop each epoch's last partial batch (exact DDP = one-process runs)
    cache_dir: str | None = None        # null: $AUDIOFORGE_CACHE or ~/.cache/audioforge


@dataclass
class ModelConfig:
    network: str = "unlearning_cnn"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class UnlearningConfig:
    batch_size: int = 16
    lr: float = 1e-3
    phases: list[PhaseConfig] = field(default_factory=list)
    schemes: dict[str, list[OpConfig]] = field(default_factory=dict)

    def validate(self, path: str) -> None:
        if not self.phases:
            raise ConfigError(f"{path}.phases must hold at least one phase")
        if not self.schemes:
            raise ConfigError(f"{path}.schemes must name at least one scheme")
        if self.lr <= 0 or self.batch_size < 1:
            raise ConfigError(f"{path}: lr must be > 0 and batch_size >= 1")


@dataclass
class UnlearnConfig:
    name: str = "fsdd-speaker-unlearning"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    jobs: int = 0                        # parallel worker processes for fits; 0 = one per CPU core
    output_dir: str | None = None        # null: outputs/unlearn/<name>-<timestamp>
    membership_inference: bool = True
    save_checkpoints: bool = True
    reuse_base_models: bool = True       # original and gold from the content-hash cache when present
    data: DataConfig = field(default_factory=DataConfig)
    features: FeatureSpec = field(default_factory=FeatureSpec)
    model: ModelConfig = field(default_factory=ModelConfig)
    original: FitConfig = field(default_factory=lambda: FitConfig(epochs=100))
    gold: FitConfig = field(default_factory=lambda: FitConfig(epochs=120))
    unlearning: UnlearningConfig = field(default_factory=UnlearningConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    tracking: TrackingConfig = field(default_factory=lambda: TrackingConfig(experiment="audioforge-unlearning"))

    def validate(self, path: str = "") -> None:
        if not self.seeds:
            raise ConfigError("seeds must hold at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds must be distinct, got {self.seeds}")
        if self.jobs < 0:
            raise ConfigError(f"jobs must be >= 0, got {self.jobs}")
