"""Recording a training trajectory: the flat parameters after every epoch (expert buffers)."""

from __future__ import annotations

import lightning.pytorch as pl
import torch

from lightning_modules.distillation.params import flatten_params


class TrajectoryRecorder(pl.Callback):
    """Keeps the flat parameters of the network at fit start and after every training epoch."""

    def __init__(self):
        self.snapshots: list[torch.Tensor] = []

    def on_train_start(self, trainer, pl_module):
        self.snapshots = [flatten_params(pl_module.net).cpu()]

    def on_train_epoch_end(self, trainer, pl_module):
        self.snapshots.append(flatten_params(pl_module.net).cpu())
