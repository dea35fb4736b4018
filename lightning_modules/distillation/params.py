"""A network's parameters as one flat vector, and back, for functional unrolls."""

from __future__ import annotations

import torch
from torch import nn


def flatten_params(net: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()])


class FlatParams:
    """Maps a flat vector onto ``net``'s named parameters for ``torch.func.functional_call``."""

    def __init__(self, net: nn.Module):
        self.names = [n for n, _ in net.named_parameters()]
        self.shapes = [p.shape for _, p in net.named_parameters()]
        self.sizes = [p.numel() for _, p in net.named_parameters()]
        self.size = sum(self.sizes)
        if any(True for _ in net.buffers()):
            # running statistics would be read (and written) outside the unroll's graph
            raise ValueError("functional unrolls need a network without buffers (use norm='instance')")

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        return {n: t.view(s) for n, t, s in zip(self.names, torch.split(flat, self.sizes), self.shapes)}

    def call(self, net: nn.Module, flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(net, self.unflatten(flat), (x,))
