"""Normalisation layers and activations by name, as the distillation literature varies them (the
ConvNet search space of the dataset-condensation papers: five norms, three activations)."""

from __future__ import annotations

from torch import nn

NORMS = ("instance", "batch", "layer", "group", "none")
ACTIVATIONS = ("relu", "leakyrelu", "sigmoid")


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
