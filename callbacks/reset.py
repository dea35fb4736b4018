"""Selective layer reset: chosen layers go back to the weights they had before training."""

from __future__ import annotations

import torch

from audioforge.errors import ConfigError
from callbacks.base import EpochCallback
from callbacks.layers import forget_optimizer_state, network_of, select
from callbacks.operations import register_operation


class LayerReset(EpochCallback):
    """At the start of each of ``epochs``, copy the recorded initial weights (and buffers) back
    into the layers picked by ``layers`` (default: the fully connected layers) and forget their
    optimizer state.  The initial weights are ``pl_module.initial_state`` (a state dict of the
    network taken at construction and kept in checkpoints)."""

    def __init__(self, epochs: list[int], layers: list[str] = ("linear",)):
        super().__init__(epochs)
        self.layers = list(layers)

    def apply(self, trainer, pl_module, epoch):
        net = network_of(pl_module)
        initial = getattr(pl_module, "initial_state", None)
        if initial is None:
            raise ConfigError(f"{type(pl_module).__name__} has no initial_state to reset layers to")
        params = []
        with torch.no_grad():
            for name, module in select(net, self.layers):
                for key, tensor in list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False)):
                    tensor.copy_(initial[f"{name}.{key}"])
                params.extend(module.parameters(recurse=False))
        forget_optimizer_state(trainer, params)


@register_operation("reset")
def build(op, round_starts, phase, index, seed) -> LayerReset:
    return LayerReset(round_starts, op.layers)
