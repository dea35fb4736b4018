"""Configuration of dataset distillation (``audioforge buffer``, ``distill``, ``distill-eval``,
``distill-table``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from audioforge.distill.evaluate import EvalConfig
from audioforge.errors import ConfigError
from audioforge.run import RunConfig
from audioforge.tracking import TrackingConfig


def share_trainer(cfg: RunConfig, path: str = "distill") -> None:
    """The distillation inside a command (``continual``'s memories, ``nas``'s proxy sets,
    ``privacy``'s set) runs on the command's own trainer, so ``--accelerator gpu`` moves all of it;
    a ``distill.trainer`` of its own is refused rather than silently replaced."""
    from audioforge.training import TrainerConfig

    nested = cfg.distill.trainer
    if nested != TrainerConfig() and nested != cfg.trainer:
        raise ConfigError(f"{path}.trainer: the distillation inside this command runs on the command's trainer; "
                          "set trainer.* (or --accelerator, --precision) instead")
    cfg.distill.trainer = cfg.trainer


@dataclass
class BufferConfig:
    dir: str | None = None               # null: a folder in the cache named by data, features, network and these settings
    experts: int = 10
    epochs: int = 30
    lr: float = 0.01                     # SGD, no momentum (the expert trajectories MTT matches)
    batch_size: int = 256                # reference: enough SGD steps per epoch that expert_epochs spans far more than syn_steps
    augment: bool = False                # siamese augmentation (``augment``) of the experts' batches, as the reference trains them

    def validate(self, path: str = "buffer") -> None:
        if min(self.experts, self.epochs, self.batch_size) < 1 or self.lr <= 0:
            raise ConfigError(f"{path}: experts, epochs, batch_size must be >= 1 and lr > 0")


@dataclass
class MTTConfig:
    syn_steps: int = 20
    expert_epochs: int = 2
    max_start_epoch: int = 10
    lr_img: float = 100.0
    lr_lr: float = 1e-5
    lr_init: float = 0.01
    batch_syn: int | None = 50           # synthetic examples per student step (null: the whole set)
    gradient: str = "unrolled"           # unrolled | checkpointed | constant_memory (same gradient, less memory)
    augment: bool = False                # siamese augmentation (``augment``) of every student step's minibatch

    def validate(self, path: str = "mtt") -> None:
        from lightning_modules.distillation.mtt import GRADIENTS

        if self.gradient not in GRADIENTS:
            raise ConfigError(f"{path}.gradient must be one of {', '.join(GRADIENTS)}, got {self.gradient!r}")
        if min(self.syn_steps, self.expert_epochs, self.max_start_epoch) < 1:
            raise ConfigError(f"{path}: syn_steps, expert_epochs and max_start_epoch must be >= 1")
        if self.lr_img <= 0 or self.lr_lr < 0 or self.lr_init <= 0:
            raise ConfigError(f"{path}: lr_img and lr_init must be > 0, lr_lr >= 0")


@dataclass
class DATMConfig:
    """DATM (Guo et al., ICLR 2024) with hard labels: MTT (``mtt.*``) whose start epochs come from a
    window growing from ``initial_max_start_epoch`` to ``max_start_epoch`` over
    ``expansion_iterations``, and the set returned (and selected) as an exponential moving average
    of its iterates; its soft labels are left out.  The reference's CIFAR-10 IPC-10 values (window
    10 -> 20 grown over 1,000 of its 10,000 iterations, decay 0.9995: an average over about 2,000)
    are scaled to the default 250 iterations in the same proportions: grown over a tenth, averaged
    over a fifth (1 / (1 - 0.98) = 50).  ``configs/distill/reference.yaml`` sets the reference's."""
    min_start_epoch: int = 0
    initial_max_start_epoch: int = 10
    max_start_epoch: int = 20
    expansion_iterations: int = 25
    ema_decay: float = 0.98

    def validate(self, path: str = "datm") -> None:
        if not 0 <= self.min_start_epoch < self.initial_max_start_epoch <= self.max_start_epoch:
            raise ConfigError(f"{path}: need 0 <= min_start_epoch < initial_max_start_epoch <= max_start_epoch")
        if self.expansion_iterations < 1 or not 0 < self.ema_decay < 1:
            raise ConfigError(f"{path}: expansion_iterations must be >= 1 and ema_decay in (0, 1)")


# DC/DSA's outer x inner loops by clips per class, as the reference sets them (get_loops)
LOOPS_BY_CPC = {1: (1, 1), 10: (10, 50), 50: (50, 10)}


@dataclass
class GradientMatchingConfig:
    outer_loop: int | None = None        # null: by CPC (LOOPS_BY_CPC; the nearest listed CPC at or below)
    inner_loop: int | None = None
    lr_img: float = 0.1
    lr_net: float = 0.01
    batch_real: int = 256

    def loops(self, cpc: int) -> tuple[int, int]:
        listed = max(c for c in LOOPS_BY_CPC if c <= max(cpc, 1))
        outer, inner = LOOPS_BY_CPC[listed]
        return self.outer_loop or outer, self.inner_loop or inner

    def validate(self, path: str = "dc") -> None:
        if any(v is not None and v < 1 for v in (self.outer_loop, self.inner_loop)):
            raise ConfigError(f"{path}: outer_loop and inner_loop must be >= 1 (or null: by CPC)")


@dataclass
class DMConfig:
    lr_img: float = 1.0
    batch_real: int = 256


@dataclass
class AugmentConfig:
    ops: list[str] = field(default_factory=lambda: ["shift", "scale", "freq_mask", "time_mask"])
    shift: float = 0.125
    scale: float = 0.2
    mask: float = 0.2


TEMPLATE = "distill"  # the path of a DistillConfig nested in a table's or continual's config

# The FD-MFCC map distilled per dataset, under the user's features.*: DDFAD distils small maps
# (FSDD's 3 x 20 x 20).  The long clips of RAVDESS (3.5 s) and UrbanSound8K (4 s) keep their
# classification features' span with coarser frames, 3 x 20 x 55 and 3 x 20 x 44 instead of
# 3 x 20 x 219 and 3 x 20 x 173: a quarter of the cost per step (docs/distillation.md).
DISTILL_MAPS: dict[str, dict[str, Any]] = {
    "ravdess": {"n_fft": 1024, "hop_length": 1024, "frames": 55},       # 16 kHz: 64 ms frames, 3.5 s
    "urbansound8k": {"n_fft": 2048, "hop_length": 2048, "frames": 44},  # 22.05 kHz: 93 ms frames, 4.0 s
}


@dataclass
class DistillConfig(RunConfig):
    # name null: <dataset>-<method>-<network>-<feature>-cpc<cpc>; seeds: the one seed of the distillation
    features: dict[str, Any] = field(default_factory=lambda: {"kind": "fdmfcc"})
    tracking: TrackingConfig = field(default_factory=lambda: TrackingConfig(experiment="audioforge-distill"))
    method: str = "mtt"                  # a registered method: mtt, dc, dsa, dm, random, herding, ...
    cpc: int = 10                        # clips per class
    network: str = "convnet"
    network_kwargs: dict[str, Any] = field(default_factory=dict)
    init: str = "real"                   # real: start from randomly chosen real clips; noise: Gaussian
    iterations: int = 250                # outer iterations (ignored by random and herding)
    iterations_per_epoch: int = 25
    val_every: int = 2                   # epochs between validation checks of the synthetic set
    resume: bool = True                  # continue from output_dir/checkpoints/last.ckpt when present
    reconstruct: bool = True             # Griffin-Lim audio of the distilled FD-MFCC/MFCC
    normalize: bool = True               # standardise features per (channel, coefficient) with training statistics
    normalize_by: str = "coefficient"    # coefficient | channel | global (one std: keeps FD-MFCC's relative channel scale)
    buffer: BufferConfig = field(default_factory=BufferConfig)
    mtt: MTTConfig = field(default_factory=MTTConfig)
    datm: DATMConfig = field(default_factory=DATMConfig)
    dc: GradientMatchingConfig = field(default_factory=GradientMatchingConfig)
    dm: DMConfig = field(default_factory=DMConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    validation: EvalConfig = field(default_factory=lambda: EvalConfig(runs=1, epochs=150, val_every=25))
    eval: EvalConfig = field(default_factory=EvalConfig)

    @property
    def seed(self) -> int:
        return self.seeds[0]

    def validate(self, path: str = "") -> None:
        super().validate(path)
        if self.features.get("kind") == "fdmfcc":
            self.features = {**DISTILL_MAPS.get(self.data.dataset, {}), **self.features}
        if len(self.seeds) != 1:
            raise ConfigError(f"seeds: a distillation runs with one seed, got {self.seeds} (distill-table runs cells)")
        from lightning_modules.networks import NETWORKS

        from audioforge.distill.methods import method

        method(self.method)
        for name in [self.network, *(self.eval.archs or [])]:
            if name not in NETWORKS:
                raise ConfigError(f"unknown architecture {name!r} (known: {', '.join(sorted(NETWORKS))})")
        from datamodules.base import STANDARDIZE_BY

        if self.normalize_by not in STANDARDIZE_BY:
            raise ConfigError(f"normalize_by must be one of {', '.join(STANDARDIZE_BY)}, got {self.normalize_by!r}")
        if self.init not in ("real", "noise"):
            raise ConfigError(f"init must be real or noise, got {self.init!r}")
        if self.cpc < 1:
            raise ConfigError(f"cpc must be >= 1, got {self.cpc}")
        # a table's or continual's ``distill`` section is a template whose method is set per cell;
        # each cell's own config checks what depends on its method
        if path != TEMPLATE:
            self._check_trajectory_method(f"{path}: " if path else "")
        if self.trainer.distributed:
            raise ConfigError("trainer: distillation runs in one process on one device (trainer.devices=1, "
                              "strategy auto); run cells side by side with distill-table's `jobs`, or one "
                              "distill per GPU with CUDA_VISIBLE_DEVICES")
        if min(self.iterations, self.iterations_per_epoch, self.val_every) < 1:
            raise ConfigError("iterations, iterations_per_epoch and val_every must be >= 1")
        if self.eval.runs < 1 or self.eval.epochs < 1 or self.validation.epochs < 1:
            raise ConfigError("eval.runs, eval.epochs and validation.epochs must be >= 1")
        for name, ev in (("eval", self.eval), ("validation", self.validation)):
            if ev.lr_decay_at is not None and not 0 < ev.lr_decay_at < 1:
                raise ConfigError(f"{name}.lr_decay_at must be in (0, 1) (the fraction of the epochs after which "
                                  f"the learning rate drops x0.1), got {ev.lr_decay_at}")
        if self.name is None:
            kind = self.features.get("kind", "default")
            self.name = f"{self.data.dataset}-{self.method}-{self.network}-{kind}-cpc{self.cpc}"

    def _check_trajectory_method(self, where: str) -> None:
        """MTT's and DATM's settings against the buffer and the run's length, before any expert trains."""
        window = {"mtt": self.mtt, "datm": self.datm}.get(self.method)
        if window is None:
            return
        if self.buffer.dir is None and window.max_start_epoch + self.mtt.expert_epochs > self.buffer.epochs:
            raise ConfigError(f"{where}{self.method}.max_start_epoch + mtt.expert_epochs ({window.max_start_epoch} + "
                              f"{self.mtt.expert_epochs}) must be <= buffer.epochs ({self.buffer.epochs}): the "
                              "student's target lies that far along an expert's trajectory")
        if self.method == "datm" and self.datm.ema_decay ** self.iterations > 0.5:
            fifth = f"; a fifth of the run, as the reference, is {1 - 5 / self.iterations:.4g}" if self.iterations > 10 else ""
            raise ConfigError(f"{where}datm.ema_decay {self.datm.ema_decay} over {self.iterations} iterations leaves "
                              f"{self.datm.ema_decay ** self.iterations:.0%} of the returned set to the starting "
                              "clips (ema_decay ** iterations): the run would return mostly its starting set. Set "
                              f"datm.ema_decay to at most {0.5 ** (1 / self.iterations):.4g} (the reference averages "
                              f"over a fifth of its run, 0.9995 over 10,000 iterations{fifth})")
