"""The shared shape of unlearning callbacks: act at the start of chosen epochs, optionally
restrict which layers train.

Freezing never toggles ``requires_grad`` (that desynchronises ranks once DDP has wrapped the
model).  Frozen parameters get ``grad = None`` right before each optimizer step, so Adam neither
moves them nor advances their moments, identically on every rank; frozen BatchNorm layers run in
eval mode, so their running statistics stay put too (as Keras does for non-trainable layers).
"""

from __future__ import annotations

import lightning.pytorch as pl
from torch import nn

from callbacks.layers import NORMS, network_of


class EpochCallback(pl.Callback):
    """Base: ``epochs`` (0-based, within this fit) at whose start :meth:`apply` runs."""

    def __init__(self, epochs: list[int]):
        self.epochs = sorted(set(int(e) for e in epochs))
        self._frozen: list[nn.Parameter] = []
        self._frozen_norms: list[nn.Module] = []

    def apply(self, trainer: pl.Trainer, pl_module: pl.LightningModule, epoch: int) -> None:
        """Change the model at the start of ``epoch``."""

    def trainable(self, trainer: pl.Trainer, pl_module: pl.LightningModule, epoch: int) -> set[str] | None:
        """Names of the layers allowed to train during ``epoch``; None = no restriction."""
        return None

    def on_train_epoch_start(self, trainer, pl_module):
        epoch = trainer.current_epoch
        if epoch in self.epochs:
            self.apply(trainer, pl_module, epoch)
        self._freeze_except(network_of(pl_module), self.trainable(trainer, pl_module, epoch))

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        for p in self._frozen:
            p.grad = None

    def on_train_epoch_end(self, trainer, pl_module):
        for module in self._frozen_norms:
            module.train()
        self._frozen, self._frozen_norms = [], []

    def _freeze_except(self, net: nn.Module, keep: set[str] | None) -> None:
        self._frozen, self._frozen_norms = [], []
        if keep is None:
            return
        for name, module in net.named_modules():
            if not name or any(name == k or name.startswith(k + ".") for k in keep):
                continue
            own = list(module.parameters(recurse=False))
            self._frozen.extend(own)
            if isinstance(module, NORMS):
                module.eval()
                self._frozen_norms.append(module)
