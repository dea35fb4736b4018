"""finetune: train on the retained data only (catastrophic forgetting of the rest).

Golatkar et al., "Eternal Sunshine of the Spotless Net", CVPR 2020 (the fine-tuning baseline);
settings as SalUn (Fan et al., ICLR 2024) runs it: cross-entropy on the retain set, a few epochs.
Here Adam at the original training's learning rate (SalUn: SGD, momentum 0.9, lr 0.01-0.1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from audioforge.unlearning.methods import LEARNING_RATE, MethodInputs, Plan, TrainingParams, register_method
from lightning_modules.unlearning import UnlearningModule


@dataclass
class FinetuneParams(TrainingParams):
    pass


class Finetune(UnlearningModule):
    def loss(self, batch, other):
        x, y = batch
        return F.cross_entropy(self(x), y)


@register_method("finetune", FinetuneParams, search={
    "lr": LEARNING_RATE,
    "epochs": {"type": "int", "low": 1, "high": 10},
})
def build(inputs: MethodInputs, p: FinetuneParams) -> Plan:
    module = Finetune(inputs.net, inputs.num_classes, p.lr, seed=inputs.seed, channels_last=inputs.channels_last)
    return Plan(module, "retain_train", p.epochs, p.batch_size)
