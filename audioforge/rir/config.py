"""Configuration of the CNN-SVM hybrid (``audioforge rir``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from audioforge.errors import ConfigError
from audioforge.run import DatasetConfig, RunConfig
from audioforge.tracking import TrackingConfig


@dataclass
class SVMConfig:
    pca_components: int | float = 0.95   # int: that many components; float in (0, 1): variance kept
    C: float = 10.0
    gamma: str | float = "scale"
    noise_copies: int = 2                # noisy copies of each training example (0: no augmentation)
    noise_std: float = 0.1               # in standardised feature units

    def validate(self, path: str = "svm") -> None:
        p = self.pca_components
        if (isinstance(p, float) and not 0 < p < 1) or (isinstance(p, int) and p < 1):
            raise ConfigError(f"{path}.pca_components must be an integer >= 1 or a fraction in (0, 1), got {p}")
        if self.C <= 0 or self.noise_copies < 0 or self.noise_std < 0:
            raise ConfigError(f"{path}: C must be > 0, noise_copies and noise_std >= 0")
        if isinstance(self.gamma, str) and self.gamma not in ("scale", "auto"):
            raise ConfigError(f"{path}.gamma must be scale, auto or a positive number, got {self.gamma!r}")


@dataclass
class CNNConfig:
    width: int = 16
    latent: int = 32
    kernel: int = 7
    epochs: int = 60
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    recon_weight: float = 1.0
    noise_std: float = 0.1
    dropout: float = 0.3
    patience: int = 12                   # validations without better val/acc before stopping

    def validate(self, path: str = "cnn") -> None:
        if min(self.width, self.latent, self.kernel, self.epochs, self.batch_size, self.patience) < 1:
            raise ConfigError(f"{path}: width, latent, kernel, epochs, batch_size and patience must be >= 1")
        if self.lr <= 0 or self.recon_weight < 0 or self.noise_std < 0 or not 0 <= self.dropout < 1:
            raise ConfigError(f"{path}: lr > 0, recon_weight >= 0, noise_std >= 0, dropout in [0, 1) required")


@dataclass
class HybridConfig(RunConfig):
    name: str | None = "rir-cnn-svm"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    data: DatasetConfig = field(default_factory=lambda: DatasetConfig(dataset="rir_simulated"))
    tracking: TrackingConfig = field(default_factory=lambda: TrackingConfig(experiment="audioforge-rir"))
    svm: SVMConfig = field(default_factory=SVMConfig)
    cnn: CNNConfig = field(default_factory=CNNConfig)
    fusion_steps: int = 11               # weights 0, 0.1, ..., 1 of the SVM in the fused probabilities

    def validate(self, path: str = "") -> None:
        if self.data.dataset not in ("rir_simulated", "rir_real"):  # before the options, which are a RIR set's
            raise ConfigError(f"data.dataset must be rir_simulated or rir_real for rir, got {self.data.dataset!r} "
                              f"(audioforge classify trains on any dataset)")
        super().validate(path)
        if self.fusion_steps < 2:
            raise ConfigError(f"fusion_steps must be >= 2, got {self.fusion_steps}")
