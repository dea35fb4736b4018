"""Normalisation layers and activations by name, as the distillation literature varies them (the
ConvNet search space of the dataset-condensation papers: five norms, three activations)."""

from __future__ import annotations

import torch
from torch import nn

NORMS = ("instance", "batch", "layer", "group", "none")
ACTIVATIONS = ("relu", "leakyrelu", "sigmoid")


def memory_format(net: nn.Module, channels_last: bool) -> torch.memory_format:
    """The layout ``net`` trains in when channels-last is asked for: channels-last speeds up the
    convolutions (about 1.2x on CPU), but not a network with GroupNorm (our instance norm), whose
    CPU kernels in channels-last took 6x as long as in the default layout (59 against 10 ms forward
    and backward at 64 x 128 x 20 x 20), so that the whole ConvNet step took 1.45x as long."""
    if channels_last and not any(isinstance(m, nn.GroupNorm) for m in net.modules()):
        return torch.channels_last
    return torch.contiguous_format


def norm_layer(kind: str, channels: int, size: tuple[int, int] | None = None) -> nn.Module:
    """``instance``: GroupNorm with one group per channel (instance norm with affine weights, the
    ConvNet of the dataset-condensation papers; no running statistics, so functional unrolls need
    no buffers); ``batch``: BatchNorm2d; ``layer``: LayerNorm over channels and the ``size`` (h, w)
    of the map; ``group``: GroupNorm with 4 groups; ``none``: identity."""
    if kind == "instance":
        return nn.GroupNorm(channels, channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        if size is None:
            raise TypeError("norm 'layer' needs the size of the feature map")
        return nn.LayerNorm([channels, *size], elementwise_affine=True)
    if kind == "group":
        return nn.GroupNorm(4, channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise TypeError(f"norm must be one of {', '.join(NORMS)}, got {kind!r}")


def activation(kind: str) -> nn.Module:
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "leakyrelu":
        return nn.LeakyReLU(0.01, inplace=True)
    if kind == "sigmoid":
        return nn.Sigmoid()
    raise TypeError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {kind!r}")
