"""ConvNet of the dataset-condensation literature (DC, DSA, MTT, DDFAD): ``depth`` blocks of
conv 3x3 (``width`` channels) -> norm -> activation -> pool 2, then one linear layer.  The
defaults are the literature's ConvNet (instance norm, ReLU, average pooling); ``norm``,
``activation`` and ``pooling`` span the search space of DC's architecture-search experiment
(:mod:`audioforge.distill.nas.space`).  The head's size follows the input (``20 x 20`` FD-MFCC:
2 x 2 after three pools; a map of 1 x 1 is pooled no further)."""

from __future__ import annotations

from torch import nn

from lightning_modules.networks import register_network
from lightning_modules.networks.norms import activation as make_activation
from lightning_modules.networks.norms import norm_layer

POOLINGS = ("avg", "max", "none")


@register_network("convnet")
class ConvNet(nn.Module):
    def __init__(self, input_shape: tuple[int, int, int] = (3, 20, 20), num_classes: int = 10, width: int = 128,
                 depth: int = 3, norm: str = "instance", activation: str = "relu", pooling: str = "avg"):
        super().__init__()
        if pooling not in POOLINGS:
            raise TypeError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        layers, c, h, w = [], input_shape[0], input_shape[1], input_shape[2]
        for _ in range(depth):
            layers += [nn.Conv2d(c, width, 3, padding=1), norm_layer(norm, width, (h, w)), make_activation(activation)]
            if pooling != "none" and h >= 2 and w >= 2:
                layers.append(nn.AvgPool2d(2) if pooling == "avg" else nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width * h * w, num_classes)

    def embed(self, x):
        return self.features(x).flatten(1)

    def forward(self, x):
        return self.classifier(self.embed(x))
