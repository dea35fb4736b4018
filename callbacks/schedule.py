"""Unlearning phases as data, compiled into callbacks for one ``Trainer.fit``.

A phase runs ``rounds`` rounds of ``epochs`` epochs; its ``ops`` fire at the start of every
round; ``trainable`` (layer selectors) restricts which layers train during the phase.  A scheme
adds ops to the start of the first phase.  The paper's procedure (``configs/unlearn/paper.yaml``):

    reset:    1 round x 5 epochs, ops [reset linear]                     (scheme ops here)
    perturb:  5 rounds x 1 epoch, ops [perturb conv+linear, scale 0.08]  (only perturbed layers train)
    finetune: 1 round x 5 epochs, everything trains
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import lightning.pytorch as pl

from audioforge.errors import ConfigError
from callbacks.base import EpochCallback
from callbacks.freeze import TrainableLayers
from callbacks.operations import OPERATIONS, operation


@dataclass
class OpConfig:
    op: str                             # a registered operation (callbacks.operations): reset, perturb, bn_reset, ...
    layers: list[str] = field(default_factory=lambda: ["linear"])
    scale: float = 0.08                 # perturb: noise standard deviation
    count: int | None = None            # perturb: layers per round (null = random, 1..n)
    train_only_perturbed: bool = True   # perturb: freeze the other layers during the round
    freeze_stats: bool = False          # bn_reset: keep the reset running statistics (mean 0, var 1) to the end

    def validate(self, path: str) -> None:
        if self.op not in OPERATIONS:
            raise ConfigError(f"{path}.op: unknown operation {self.op!r} (known: {', '.join(OPERATIONS)})")
        if not self.layers:
            raise ConfigError(f"{path}.layers must name at least one layer selector")
        if self.scale < 0:
            raise ConfigError(f"{path}.scale must be >= 0, got {self.scale}")
        if self.count is not None and self.count < 1:
            raise ConfigError(f"{path}.count must be >= 1 or null, got {self.count}")
        if self.freeze_stats and self.op != "bn_reset":
            raise ConfigError(f"{path}.freeze_stats applies to op bn_reset only, not {self.op!r}")


@dataclass
class PhaseConfig:
    name: str
    epochs: int = 1
    rounds: int = 1
    ops: list[OpConfig] = field(default_factory=list)
    trainable: list[str] | None = None  # null = all layers train

    def validate(self, path: str) -> None:
        if self.epochs < 1 or self.rounds < 1:
            raise ConfigError(f"{path}: epochs and rounds must be >= 1, got {self.epochs} and {self.rounds}")

    @property
    def total_epochs(self) -> int:
        return self.epochs * self.rounds


def build_callbacks(phases: list[PhaseConfig], scheme_ops: list[OpConfig], seed: int) -> list[pl.Callback]:
    """The callbacks carrying out ``phases`` (plus ``scheme_ops`` at the start of phase 0) in one fit,
    followed by a :class:`PhaseTimer`."""
    if not phases:
        raise ConfigError("unlearning.phases must hold at least one phase")
    out: list[pl.Callback] = []
    start = 0
    for index, phase in enumerate(phases):
        round_starts = [start + r * phase.epochs for r in range(phase.rounds)]
        ops = phase.ops + (scheme_ops if index == 0 else [])
        for op in ops:
            out.append(_op_callback(op, round_starts, phase, index, seed))
        if phase.trainable is not None:
            out.append(TrainableLayers(list(range(start, start + phase.total_epochs)), phase.trainable))
        start += phase.total_epochs
    out.append(PhaseTimer(phases))
    return out


def _op_callback(op: OpConfig, round_starts: list[int], phase: PhaseConfig, index: int, seed: int) -> EpochCallback:
    return operation(op.op).factory(op, round_starts, phase, index, seed)


def check_schedule(phases: list[PhaseConfig], schemes: dict[str, list[OpConfig]], net) -> None:
    """Resolve every layer selector of ``phases`` and ``schemes`` against ``net`` now, so a bad
    schedule fails before any training or tracking starts (ConfigError naming the key)."""
    from callbacks.layers import select

    groups = [(f"unlearning.phases.{i}", p.ops, p.trainable) for i, p in enumerate(phases)]
    groups += [(f"unlearning.schemes.{name}", ops, None) for name, ops in schemes.items()]
    for where, ops, trainable in groups:
        try:
            if trainable is not None:
                select(net, trainable)
            for op in ops:
                chosen = select(net, op.layers)
                check = operation(op.op).check
                if check is not None:
                    check(op, chosen)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None


def total_epochs(phases: list[PhaseConfig]) -> int:
    return sum(p.total_epochs for p in phases)


class PhaseTimer(pl.Callback):
    """Wall time of every phase (``seconds[name]``) and the phase index logged per epoch."""

    def __init__(self, phases: list[PhaseConfig]):
        self.phase_of_epoch = [i for i, p in enumerate(phases) for _ in range(p.total_epochs)]
        self.names = [p.name for p in phases]
        self.seconds: dict[str, float] = {name: 0.0 for name in self.names}
        self._t0 = 0.0

    def on_train_epoch_start(self, trainer, pl_module):
        self._t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        epoch = trainer.current_epoch
        if epoch < len(self.phase_of_epoch):
            name = self.names[self.phase_of_epoch[epoch]]
            self.seconds[name] += time.perf_counter() - self._t0
            pl_module.log("unlearn/phase", float(self.phase_of_epoch[epoch]), on_epoch=True)
