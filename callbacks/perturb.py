"""Weight perturbation: Gaussian noise on a random subset of layers, one draw per round."""

from __future__ import annotations

import torch

from audioforge.errors import ConfigError
from callbacks.base import EpochCallback
from callbacks.layers import forget_optimizer_state, network_of, seeded_generator, select
from callbacks.operations import register_operation


class WeightPerturbation(EpochCallback):
    """Each round starts at one of ``epochs`` and lasts ``round_epochs`` epochs.  At its start,
    draw how many (``count``, or uniform in 1..n when None) and which of the candidate ``layers``
    to perturb, add ``N(0, scale^2)`` to every parameter of those layers, forget their optimizer
    state, and (``train_only_perturbed``) let only them train until the round ends.

    Draws come from a generator seeded by ``(seed, phase, round)``, so every DDP rank, and any
    rerun, perturbs the same layers by the same noise.  ``history`` records each round's layers."""

    def __init__(self, epochs: list[int], layers: list[str] = ("conv", "linear"), scale: float = 0.08,
                 count: int | None = None, seed: int = 0, phase: int | str = 0, round_epochs: int = 1,
                 train_only_perturbed: bool = True):
        super().__init__(epochs)
        if scale < 0:
            raise ConfigError(f"perturbation scale must be >= 0, got {scale}")
        if count is not None and count < 1:
            raise ConfigError(f"perturbation count must be >= 1 or null (random), got {count}")
        self.layers, self.scale, self.count = list(layers), float(scale), count
        self.seed, self.phase, self.round_epochs = seed, phase, round_epochs
        self.train_only_perturbed = train_only_perturbed
        self.history: list[list[str]] = []
        self._current: set[str] = set()
        self._round_end = -1

    def draw(self, candidates: list[str], round_index: int) -> tuple[list[str], torch.Generator]:
        gen = seeded_generator(self.seed, self.phase, round_index)
        n = len(candidates)
        if self.count is not None and self.count > n:
            raise ConfigError(f"perturbation count {self.count} exceeds the {n} candidate layers {candidates}")
        k = self.count or int(torch.randint(1, n + 1, (1,), generator=gen))
        order = torch.randperm(n, generator=gen)[:k].sort().values
        return [candidates[i] for i in order.tolist()], gen

    def apply(self, trainer, pl_module, epoch):
        chosen_layers = select(network_of(pl_module), self.layers)
        names, gen = self.draw([n for n, _ in chosen_layers], self.epochs.index(epoch))
        modules = dict(chosen_layers)
        params = []
        with torch.no_grad():
            for name in names:
                for p in modules[name].parameters(recurse=False):
                    noise = torch.randn(p.shape, generator=gen, dtype=torch.float32) * self.scale
                    p.add_(noise.to(device=p.device, dtype=p.dtype))
                    params.append(p)
        forget_optimizer_state(trainer, params)
        self.history.append(names)
        self._current, self._round_end = set(names), epoch + self.round_epochs

    def trainable(self, trainer, pl_module, epoch):
        if self.train_only_perturbed and epoch < self._round_end:
            return self._current
        return None


def check(op, chosen) -> None:
    if op.count is not None and op.count > len(chosen):
        raise ConfigError(f"perturb count {op.count} exceeds the {len(chosen)} layers {op.layers} pick")


@register_operation("perturb", check=check)
def build(op, round_starts, phase, index, seed) -> WeightPerturbation:
    return WeightPerturbation(round_starts, op.layers, op.scale, op.count, seed=seed, phase=index,
                              round_epochs=phase.epochs, train_only_perturbed=op.train_only_perturbed)
