"""ResNet18 (He et al. 2016) for small time-frequency inputs.

The CIFAR stem (3x3 conv, stride 1, no max-pool), then four stages of two basic blocks (64, 128,
256, 512 channels).  A stage halves the map only while the result keeps at least ``min_map``
positions per side: on ``20 x 20`` FD-MFCC the maps are 20, 10, 5, 5 (the CIFAR strides would
give 20, 10, 5, 3, where instance norm normalises each channel over 9 positions and the last
stage sees almost nothing of the coefficient axis).  On ``32 x 32`` the same rule gives 32, 16,
8, 8.  Adaptive average pooling and one linear layer follow.

``resnet18`` uses instance norm (as the distillation literature does: no running statistics, so
functional unrolls need no buffers); ``resnet18bn`` is the BatchNorm original (DM's evaluation
pool names it ResNet18BN).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from lightning_modules.networks import register_network
from lightning_modules.networks.norms import norm_layer


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, norm: str):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.norm1 = norm_layer(norm, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.norm2 = norm_layer(norm, c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), norm_layer(norm, c_out))

    def forward(self, x):
        out = F.relu(self.norm1(self.conv1(x)))
        return F.relu(self.norm2(self.conv2(out)) + self.shortcut(x))


def halves(size: int, min_map: int) -> bool:
    """Whether a stride-2 stage on a map of ``size`` keeps at least ``min_map`` positions."""
    return (size + 1) // 2 >= min_map


class ResNet18(nn.Module):
    def __init__(self, input_shape: tuple[int, int, int] = (3, 20, 20), num_classes: int = 10,
                 widths: tuple[int, ...] = (64, 128, 256, 512), norm: str = "instance", min_map: int = 5):
        super().__init__()
        if min_map < 1:
            raise TypeError(f"min_map must be >= 1, got {min_map}")
        self.stem = nn.Sequential(nn.Conv2d(input_shape[0], widths[0], 3, 1, 1, bias=False),
                                  norm_layer(norm, widths[0]), nn.ReLU(inplace=True))
        blocks, c = [], widths[0]
        h, w = input_shape[1], input_shape[2]
        for i, width in enumerate(widths):
            stride = 2 if i > 0 and halves(h, min_map) and halves(w, min_map) else 1
            if stride == 2:
                h, w = (h + 1) // 2, (w + 1) // 2
            blocks += [BasicBlock(c, width, stride, norm), BasicBlock(width, width, 1, norm)]
            c = width
        self.final_map = (h, w)
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def feature_map(self, x):
        return self.blocks(self.stem(x))

    def embed(self, x):
        return self.pool(self.feature_map(x)).flatten(1)

    def forward(self, x):
        return self.classifier(self.embed(x))


@register_network("resnet18")
def resnet18(norm: str = "instance", **kwargs) -> ResNet18:
    return ResNet18(norm=norm, **kwargs)


@register_network("resnet18bn")
def resnet18bn(**kwargs) -> ResNet18:
    return ResNet18(norm="batch", **kwargs)
