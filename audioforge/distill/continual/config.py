"""The ``continual`` command's config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from audioforge.distill.config import DistillConfig, share_trainer
from audioforge.distill.evaluate import EvalConfig
from audioforge.errors import ConfigError
from audioforge.run import RunConfig
from audioforge.tracking import TrackingConfig

CORESET_MEMORIES = ("random", "herding")   # chosen among real clips inside the cell


@dataclass
class MemoryConfig:
    per_class: int = 20                  # clips kept per old class (the paper: 20)
    # random | herding (EEIL's choice: the current step's network embeds the clips) | a learned
    # distillation method of the registry (mtt = DDFAD), distilled per step on that step's classes
    methods: list[str] = field(default_factory=lambda: ["mtt", "herding", "random"])

    def validate(self, path: str = "memory") -> None:
        from audioforge.distill.methods import METHODS

        if self.per_class < 1:
            raise ConfigError(f"{path}.per_class must be >= 1, got {self.per_class}")
        if not self.methods or len(set(self.methods)) != len(self.methods):
            raise ConfigError(f"{path}.methods must name at least one memory, each once, got {self.methods}")
        for name in self.methods:
            if name not in CORESET_MEMORIES and not (name in METHODS and METHODS[name].learned):
                learned = [m for m, v in METHODS.items() if v.learned]
                raise ConfigError(f"{path}.methods: unknown memory {name!r} (random, herding, or a learned "
                                  f"distillation method: {', '.join(learned)})")


@dataclass
class FinetuneConfig:
    """The ``finetune`` rule (EEIL-style): distillation temperature and the balanced stage."""
    temperature: float = 2.0             # EEIL's
    balanced_epochs: int = 30            # EEIL's balanced fine-tuning; 0 skips it
    balanced_lr_scale: float = 0.1       # its learning rate against ``train.lr`` (EEIL: 0.01 after 0.1)

    def validate(self, path: str = "finetune") -> None:
        if self.temperature <= 0 or self.balanced_epochs < 0 or self.balanced_lr_scale <= 0:
            raise ConfigError(f"{path}: temperature and balanced_lr_scale must be > 0 and balanced_epochs >= 0, got "
                              f"{self.temperature}, {self.balanced_lr_scale}, {self.balanced_epochs}")


@dataclass
class ContinualConfig(RunConfig):
    name: str = "continual"
    tracking: TrackingConfig = field(default_factory=lambda: TrackingConfig(experiment="audioforge-continual"))
    steps: int = 5                       # classes arrive in this many steps of equal size
    orders: int = 5                      # class orders drawn with ``order_seed`` ...
    order_seed: int = 0
    class_orders: list[list[int]] | None = None  # ... or these explicit orders (each a permutation of the classes)
    networks: list[str] = field(default_factory=lambda: ["convnet"])
    # arguments of every network in ``networks``, for the steps' networks and the memories distilled
    # for them alike (e.g. {width: 64}; they replace distill.network_kwargs); empty: each network's
    # defaults (ConvNet: the reference width 128)
    network_kwargs: dict[str, Any] = field(default_factory=dict)
    # scratch: at every step a fresh network trains on the memory and the new classes' clips (the
    # dataset-condensation literature's protocol); finetune: EEIL-style, the previous step's network
    # fine-tuned with a distillation loss, then a balanced stage (audioforge.distill.continual.rules)
    rule: str = "scratch"
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    # how each step's network trains: SGD, the epoch chosen on the validation clips of the classes
    # seen so far (never test), then test scored once on the classes seen so far
    train: EvalConfig = field(default_factory=lambda: EvalConfig(runs=1, epochs=30, batch_size=64, lr=0.01,
                                                                 val_every=5, use_learned_lr=False))
    # learned memories: the distillation's settings (method, cpc and network are set per memory)
    distill: DistillConfig = field(default_factory=DistillConfig)
    normalize: bool = True               # standardise with the first step's training clips (no later class's statistics)
    jobs: int = 1                        # cells (and memories) at once, each in its own process

    def validate(self, path: str = "") -> None:
        super().validate(path)
        share_trainer(self)
        if self.steps < 1 or self.orders < 1 or self.jobs < 0:
            raise ConfigError(f"steps and orders must be >= 1 and jobs >= 0, got {self.steps}, {self.orders}, {self.jobs}")
        from audioforge.distill.continual.rules import RULES

        if self.rule not in RULES:
            raise ConfigError(f"rule must be one of {', '.join(RULES)}, got {self.rule!r}")
        self.finetune.validate()
        if not self.networks:
            raise ConfigError("networks must name at least one network")
        from lightning_modules.networks import NETWORKS, build_network

        for n in self.networks:
            if n not in NETWORKS:
                raise ConfigError(f"networks: unknown network {n!r} (known: {', '.join(sorted(NETWORKS))})")
            try:  # a misspelt argument fails here, before any run is recorded
                build_network(n, (1, 20, 20), 2, **self.network_kwargs)
            except ConfigError as exc:
                raise ConfigError(f"network_kwargs: {exc}") from None
        self.memory.validate()
        self.distill.network_kwargs = dict(self.network_kwargs)  # memories are distilled for the cells' networks
        import dataclasses

        for name in self.memory.methods:  # each learned memory's distillation settings, as it will run
            if name not in CORESET_MEMORIES:
                dataclasses.replace(self.distill, method=name, cpc=self.memory.per_class, name="memory").validate(f"distill (memory {name})")
        if self.train.runs != 1:
            raise ConfigError("train.runs must be 1 (orders are the repetitions)")
