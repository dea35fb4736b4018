"""The small CNN of the unlearning paper (Wu and Toribio): conv blocks of
conv 3x3 -> BatchNorm -> ReLU -> max-pool 2 -> dropout, dropout growing with depth, then a dense
head with BatchNorm and heavier dropout.  Input ``1 x 20 x 20`` MFCC.

The paper's figure with exact widths is not in the text; the widths here (16, 32, 64 channels,
128 hidden units; 0.1/0.2/0.3 then 0.5 dropout) keep the network small, as the paper asks.
``bn_momentum`` is PyTorch's (the weight of each new batch in the running statistics, 0.1 by
default); Keras's default ``momentum=0.99`` is PyTorch's 0.01.
"""

from __future__ import annotations

from torch import nn

from lightning_modules.networks import register_network


@register_network("unlearning_cnn")
class UnlearningCNN(nn.Module):
    def __init__(self, input_shape: tuple[int, int, int] = (1, 20, 20), num_classes: int = 10,
                 channels: tuple[int, ...] = (16, 32, 64), hidden: int = 128,
                 conv_dropout: tuple[float, ...] = (0.1, 0.2, 0.3), head_dropout: float = 0.5,
                 bn_momentum: float = 0.1):
        super().__init__()
        if len(conv_dropout) != len(channels):
            raise TypeError(f"conv_dropout needs one value per conv block ({len(channels)}), got {len(conv_dropout)}")
        blocks, c_in = [], input_shape[0]
        h, w = input_shape[1:]
        for c_out, p in zip(channels, conv_dropout):
            blocks += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out, momentum=bn_momentum),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2), nn.Dropout(p)]
            c_in, h, w = c_out, h // 2, w // 2
        if h < 1 or w < 1:
            raise TypeError(f"input {tuple(input_shape)} is too small for {len(channels)} pooling blocks")
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(c_in * h * w, hidden), nn.BatchNorm1d(hidden, momentum=bn_momentum),
            nn.ReLU(inplace=True),
            nn.Dropout(head_dropout), nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))
