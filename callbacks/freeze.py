"""Freezing by phase: during chosen epochs only the selected layers train."""

from __future__ import annotations

from callbacks.base import EpochCallback
from callbacks.layers import network_of, select


class TrainableLayers(EpochCallback):
    """During each of ``epochs`` only ``layers`` train; every other layer is frozen (no optimizer
    update, BatchNorm statistics fixed).  Epochs not listed train everything (unfrozen)."""

    def __init__(self, epochs: list[int], layers: list[str]):
        super().__init__(epochs)
        self.layers = list(layers)

    def trainable(self, trainer, pl_module, epoch):
        if epoch not in self.epochs:
            return None
        return {name for name, _ in select(network_of(pl_module), self.layers)}
