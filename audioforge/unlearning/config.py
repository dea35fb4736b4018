"""Configuration of the unlearning experiment (``audioforge unlearn``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from audioforge.errors import ConfigError
from audioforge.run import DatasetConfig, RunConfig
from audioforge.tracking import TrackingConfig
from audioforge.training import FitConfig
from callbacks.schedule import OpConfig, PhaseConfig
from datamodules.features import FeatureSpec
from datamodules.forget import ForgetSet

SCHEMES = ("base", "all_bn", "conv_bn")


@dataclass
class DataConfig(DatasetConfig):
    """The shared data section, with the forget set and FSDD's speaker protocol fields."""

    download: bool = True               # FSDD: fetch the pinned release when absent
    # FSDD's speaker protocol (the paper's): these speakers' clips are the forget set, validation
    # and test come from the other speakers; ignored when `forget` is given
    forget_speakers: list[str] = field(default_factory=lambda: ["george"])
    # any dataset: a group (FSDD speaker, RAVDESS actor), a class or a random fraction of the
    # training clips (datamodules/forget.py); validation and test never hold a forgotten group or class
    forget: ForgetSet | None = None
    val_fraction: float = 0.09          # FSDD: of retained clips, 225 of 2500
    test_fraction: float = 0.10         # FSDD: 250 of 2500
    drop_last: bool = False             # drop each epoch's last partial batch (exact DDP = one-process runs)
    # share of the forget set no model trains on: the membership attack's same-distribution
    # non-members (0 = the paper's split: every clip of the speaker is in the forget set)
    forget_holdout: float = 0.0
    # splits no model may be scored on (a sweep's trials seal test: selection reads validation only)
    sealed_splits: list[str] = field(default_factory=list)

    def validate(self, path: str = "data") -> None:
        if self.dataset == "fsdd":
            if self.options:
                raise ConfigError(f"{path}.options: FSDD's unlearning protocol takes its settings as {path}.* keys")
        elif self.forget is None:
            raise ConfigError(f"{path}.forget: name the forget set on {self.dataset} (kind group, class or fraction; "
                              f"e.g. {path}.forget={{kind: group, values: [actor01]}})")
        if self.forget is not None:
            self.forget.validate(f"{path}.forget")
        if not 0 <= self.forget_holdout < 1:
            raise ConfigError(f"{path}.forget_holdout must be in [0, 1), got {self.forget_holdout}")
        fractions = (self.val_fraction, self.test_fraction)
        if self.dataset == "fsdd" and not (all(0 < f < 1 for f in fractions) and sum(fractions) < 1):
            raise ConfigError(f"{path}.val_fraction and {path}.test_fraction must be in (0, 1) and sum below 1, "
                              f"got {self.val_fraction} and {self.test_fraction}")

    def forget_set(self) -> ForgetSet:
        """The forget set in force: ``forget``, else FSDD's ``forget_speakers``."""
        return self.forget if self.forget is not None else ForgetSet("group", list(self.forget_speakers))


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
        if self.lr <= 0 or self.batch_size < 1:
            raise ConfigError(f"{path}: lr must be > 0 and batch_size >= 1")


@dataclass
class UnlearnConfig(RunConfig):
    name: str | None = "{dataset}-unlearning"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    data: DataConfig = field(default_factory=DataConfig)
    features: FeatureSpec = field(default_factory=FeatureSpec)
    tracking: TrackingConfig = field(default_factory=lambda: TrackingConfig(experiment="audioforge-unlearning"))
    jobs: int = 0                        # parallel worker processes for fits; 0 = one per CPU core
    membership_inference: bool = True
    probe: bool = True                   # linear probe on penultimate features for the forget speaker
    save_checkpoints: bool = True
    reuse_base_models: bool = True       # original and gold from the content-hash cache when present
    model: ModelConfig = field(default_factory=ModelConfig)
    original: FitConfig = field(default_factory=lambda: FitConfig(epochs=100))
    gold: FitConfig = field(default_factory=lambda: FitConfig(epochs=120))
    unlearning: UnlearningConfig = field(default_factory=UnlearningConfig)
    # registered methods run beside the schemes: name -> hyperparameters over the method's defaults
    methods: dict[str, dict[str, Any]] = field(default_factory=dict)

    def validate(self, path: str = "") -> None:
        from audioforge.unlearning.methods import method_params

        super().validate(path)
        if self.jobs < 0:
            raise ConfigError(f"jobs must be >= 0, got {self.jobs}")
        for name, values in self.methods.items():
            if name in self.unlearning.schemes or name in ("original", "gold"):
                raise ConfigError(f"methods.{name}: the name is taken by a scheme or a base model")
            method_params(name, values or {}, f"methods.{name}")
        if not self.unlearned:
            raise ConfigError("unlearning.schemes or methods must name at least one model to unlearn")

    @property
    def unlearned(self) -> list[str]:
        """The models each seed unlearns: the paper's schemes, then the registered methods."""
        return [*self.unlearning.schemes, *self.methods]
