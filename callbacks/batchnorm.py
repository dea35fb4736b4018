"""BatchNorm re-initialisation: running statistics and affine parameters back to their defaults."""

from __future__ import annotations

from audioforge.errors import ConfigError
from callbacks.base import EpochCallback
from callbacks.layers import NORMS, forget_optimizer_state, network_of, select
from callbacks.operations import register_operation


class BatchNormReset(EpochCallback):
    """At the start of each of ``epochs``, reset the BatchNorm layers picked by ``layers``:
    ``["batchnorm"]`` for all of them (scheme ``all_bn``), ``["conv_bn"]`` for those after
    convolutions (scheme ``conv_bn``).  Running mean 0, variance 1, counter 0, weight 1, bias 0,
    and their optimizer state forgotten.  ``freeze_stats`` then sets the layers' momentum to 0, so
    the running statistics stay at their reset values for the rest of the fit (and at evaluation):
    the reset's effect without the re-estimation that normally follows it."""

    def __init__(self, epochs: list[int], layers: list[str] = ("batchnorm",), freeze_stats: bool = False):
        super().__init__(epochs)
        self.layers = list(layers)
        self.freeze_stats = freeze_stats

    def apply(self, trainer, pl_module, epoch):
        chosen = select(network_of(pl_module), self.layers)
        not_bn = [name for name, m in chosen if not isinstance(m, NORMS)]
        if not_bn:
            raise ConfigError(f"bn_reset layers {self.layers} pick non-BatchNorm layers: {', '.join(not_bn)}")
        for _, module in chosen:
            module.reset_parameters()  # running stats and affine parameters
            if self.freeze_stats:
                module.momentum = 0.0  # running = (1 - 0) * running + 0 * batch: never moves again
            forget_optimizer_state(trainer, list(module.parameters(recurse=False)))


def check(op, chosen) -> None:
    if not all(isinstance(m, NORMS) for _, m in chosen):
        raise ConfigError(f"bn_reset layers {op.layers} pick non-BatchNorm layers")


@register_operation("bn_reset", check=check)
def build(op, round_starts, phase, index, seed) -> BatchNormReset:
    return BatchNormReset(round_starts, op.layers, op.freeze_stats)
