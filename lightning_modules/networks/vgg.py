"""VGG11 (Simonyan and Zisserman 2015, configuration A) for small time-frequency inputs.

Eight 3x3 convs: 64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M.  A max-pool ("M") halves
the map only while the result keeps at least ``min_map`` positions per side, otherwise it is
left out: on ``20 x 20`` FD-MFCC the maps are 20, 10, 5 and the last three pools go (the five
pools of the 32 x 32 version would leave 1 x 1).  Adaptive average pooling and one linear layer
follow.

``vgg11`` uses instance norm (as the distillation literature does), ``vgg11bn`` BatchNorm (DM's
evaluation pool names it VGG11BN).
"""

from __future__ import annotations

from torch import nn

from lightning_modules.networks import register_network
from lightning_modules.networks.norms import norm_layer
from lightning_modules.networks.resnet import halves

VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class VGG11Net(nn.Module):
    def __init__(self, input_shape: tuple[int, int, int] = (3, 20, 20), num_classes: int = 10,
                 norm: str = "instance", width_scale: float = 1.0, min_map: int = 5):
        super().__init__()
        if min_map < 1:
            raise TypeError(f"min_map must be >= 1, got {min_map}")
        layers, c = [], input_shape[0]
        h, w = input_shape[1], input_shape[2]
        for v in VGG11:
            if v == "M":
                if halves(h, min_map) and halves(w, min_map):
                    layers.append(nn.MaxPool2d(2, ceil_mode=True))
                    h, w = (h + 1) // 2, (w + 1) // 2
            else:
                width = max(8, int(v * width_scale))
                layers += [nn.Conv2d(c, width, 3, padding=1), norm_layer(norm, width), nn.ReLU(inplace=True)]
                c = width
        self.final_map = (h, w)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def feature_map(self, x):
        return self.features(x)

    def embed(self, x):
        return self.pool(self.features(x)).flatten(1)

    def forward(self, x):
        return self.classifier(self.embed(x))


@register_network("vgg11")
def vgg11(norm: str = "instance", **kwargs) -> VGG11Net:
    return VGG11Net(norm=norm, **kwargs)


@register_network("vgg11bn")
def vgg11bn(**kwargs) -> VGG11Net:
    return VGG11Net(norm="batch", **kwargs)
