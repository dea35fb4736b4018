"""The ``nas`` command's config."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from audioforge.distill.config import DistillConfig, share_trainer
from audioforge.distill.evaluate import EvalConfig
from audioforge.distill.nas.space import SpaceConfig
from audioforge.errors import ConfigError
from audioforge.run import RunConfig
from audioforge.tracking import TrackingConfig

EARLY_STOPPING = "early_stopping"


@dataclass
class NASConfig(RunConfig):
    name: str = "nas"
    tracking: TrackingConfig = field(default_factory=lambda: TrackingConfig(experiment="audioforge-nas"))
    space: SpaceConfig = field(default_factory=SpaceConfig)
    sample: int | None = 72              # networks drawn from the space with sample_seed (null: all of it)
    sample_seed: int = 0
    # proxies: a distillation method's set of per_class clips per class (random, herding, or a
    # learned one: mtt is DDFAD) that every network trains on, or early_stopping (the first
    # early_epochs of the ground-truth run on the whole training split)
    proxies: list[str] = field(default_factory=lambda: ["mtt", "herding", "random", EARLY_STOPPING])
    per_class: int = 20                  # the paper: 20 clips per class
    proxy_train: EvalConfig = field(default_factory=lambda: EvalConfig(runs=1, epochs=100, batch_size=64, lr=0.01,
                                                                       val_every=10, use_learned_lr=False))
    # ground truth: each network on the whole training split, scored by its best validation
    # accuracy (the epoch chosen on validation; test is scored once, after)
    ground_truth: EvalConfig = field(default_factory=lambda: EvalConfig(runs=1, epochs=30, batch_size=64, lr=0.01,
                                                                        val_every=1, use_learned_lr=False))
    early_epochs: int = 10               # the paper: 10 epochs on the whole training split
    top_fraction: float = 0.05           # the paper's correlation is over the top 5% of networks ...
    top_minimum: int = 5                 # ... here at least this many (a sample's 5% may be 3 networks)
    distill: DistillConfig = field(default_factory=DistillConfig)  # how the learned proxy sets are distilled
    normalize: bool = True               # standardise with the training split's statistics
    jobs: int = 1                        # networks trained at once, each task in a worker process

    def validate(self, path: str = "") -> None:
        super().validate(path)
        share_trainer(self)
        from audioforge.distill.methods import METHODS

        if not self.proxies or len(set(self.proxies)) != len(self.proxies):
            raise ConfigError(f"proxies must name at least one proxy, each once, got {self.proxies}")
        for name in self.proxies:
            if name != EARLY_STOPPING and name not in METHODS:
                raise ConfigError(f"proxies: unknown proxy {name!r} ({EARLY_STOPPING} or a distillation method: "
                                  f"{', '.join(METHODS)})")
            if name in METHODS:
                dataclasses.replace(self.distill, method=name, cpc=self.per_class,
                                    name="proxy").validate(f"distill (proxy {name})")
        if self.per_class < 1 or self.jobs < 0:
            raise ConfigError(f"per_class must be >= 1 and jobs >= 0, got {self.per_class}, {self.jobs}")
        gt = self.ground_truth
        if gt.runs != 1 or self.proxy_train.runs != 1:
            raise ConfigError("ground_truth.runs and proxy_train.runs must be 1 (one training per network and proxy)")
        if EARLY_STOPPING in self.proxies:
            if not 1 <= self.early_epochs <= gt.epochs or self.early_epochs % gt.val_every:
                raise ConfigError(f"early_epochs ({self.early_epochs}) must be within ground_truth.epochs "
                                  f"({gt.epochs}) and a multiple of ground_truth.val_every ({gt.val_every}): "
                                  "early stopping reads the ground-truth run's validation after that epoch")
            if gt.lr_decay_at is not None:
                raise ConfigError("ground_truth.lr_decay_at must be null with the early_stopping proxy (its first "
                                  "epochs must be those of a run that stops there)")
        if not 0 < self.top_fraction <= 1 or self.top_minimum < 3:
            raise ConfigError(f"top_fraction must be in (0, 1] and top_minimum >= 3, got {self.top_fraction}, "
                              f"{self.top_minimum}")
        from audioforge.distill.nas.space import sample

        sample(self.space.candidates(), self.sample, self.sample_seed)  # an empty or oversized subset fails here
