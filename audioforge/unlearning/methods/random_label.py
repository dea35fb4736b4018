"""random_label: train on the forget set with random wrong labels, beside the retained data.

Golatkar et al., CVPR 2020, and SalUn's ``RL`` (Fan et al., ICLR 2024): the forget clips,
relabelled at random, are trained together with the correctly labelled retain set.  Every step
takes one retain batch and a forget batch in proportion to the two sets' sizes (one pass over each
per epoch, as SalUn's concatenated dataset gives).  Labels: a wrong class drawn uniformly per
step (SalUn draws any class once per epoch, the true one included).  Adam, lr 1e-3, 5 epochs
(SalUn: SGD, momentum 0.9, lr 0.013, 10 epochs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from audioforge.unlearning.methods import MethodInputs, Plan, TrainingParams, register_method
from lightning_modules.unlearning import UnlearningModule


@dataclass
class RandomLabelParams(TrainingParams):
    pass


def wrong_labels(y: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """A label other than ``y``, uniform over the other classes, for every element."""
    shift = torch.randint(1, num_classes, y.shape, generator=generator).to(y.device)
    return (y + shift) % num_classes


class RandomLabels(UnlearningModule):
    def loss(self, batch, other):
        (x, y), (xf, yf) = batch, other
        labels = torch.cat([y, wrong_labels(yf, self.num_classes, self._generator)])
        return F.cross_entropy(self(torch.cat([x, xf])), labels)


def forget_batch_size(inputs: MethodInputs, batch_size: int) -> int:
    return max(1, math.ceil(batch_size * len(inputs.forget[1]) / max(1, len(inputs.retain[1]))))


def random_labels_module(inputs: MethodInputs, p: TrainingParams) -> RandomLabels:
    return RandomLabels(inputs.net, inputs.num_classes, p.lr, other=inputs.forget,
                        other_batch_size=forget_batch_size(inputs, p.batch_size), seed=inputs.seed,
                        channels_last=inputs.channels_last)


@register_method("random_label", RandomLabelParams, search={
    "lr": {"type": "float", "low": 1e-5, "high": 1e-2, "log": True},
    "epochs": {"type": "int", "low": 1, "high": 5},
})
def build(inputs: MethodInputs, p: RandomLabelParams) -> Plan:
    return Plan(random_labels_module(inputs, p), "retain_train", p.epochs, p.batch_size)
