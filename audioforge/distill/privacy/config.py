"""The ``privacy`` command's config."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from audioforge.distill.config import DistillConfig, share_trainer
from audioforge.distill.evaluate import EvalConfig
from audioforge.errors import ConfigError
from audioforge.run import RunConfig
from audioforge.tracking import TrackingConfig


@dataclass
class PrivacyConfig(RunConfig):
    name: str = "privacy"
    tracking: TrackingConfig = field(default_factory=lambda: TrackingConfig(experiment="audioforge-privacy"))
    set: str | None = None               # a distilled.pt to examine; null: distil one with ``distill`` (method, cpc)
    models: int = 3                      # networks trained per source (seeds), each attacked
    # the distilled set and the Random coreset of the same clips per class (the clips a real-init
    # distillation starts from): SGD, epoch chosen on validation
    train: EvalConfig = field(default_factory=lambda: EvalConfig(runs=1, epochs=200, batch_size=256, lr=0.01,
                                                                 val_every=25, use_learned_lr=True))
    # the whole training split: the attack's power is shown on these models
    whole: EvalConfig = field(default_factory=lambda: EvalConfig(runs=1, epochs=30, batch_size=64, lr=0.01,
                                                                 val_every=5, use_learned_lr=False))
    griffin_lim: bool = True             # also compare the Griffin-Lim audio of the sets with real recordings
    # how the set is distilled (method, cpc, ...), on this config's data, features and first seed
    distill: DistillConfig = field(default_factory=DistillConfig)
    jobs: int = 1

    def validate(self, path: str = "") -> None:
        super().validate(path)
        share_trainer(self)
        if self.models < 1 or self.jobs < 0:
            raise ConfigError(f"models must be >= 1 and jobs >= 0, got {self.models}, {self.jobs}")
        if self.train.runs != 1 or self.whole.runs != 1:
            raise ConfigError("train.runs and whole.runs must be 1 (``models`` sets how many networks)")
        if self.set is None:
            dataclasses.replace(self.distill, name="privacy", seeds=[self.seeds[0]]).validate("distill (the set to examine)")
