"""gradient_ascent: raise the loss on the forget set (no retained data).

Thudi et al., "Unrolling SGD", EuroS&P 2022, and Graves et al., AAAI 2021 (amnesiac unlearning);
SalUn's ``GA``: the negated cross-entropy on forget batches.  Here Adam, lr 1e-4 (ascent
diverges fast on this small network; SalUn searches 1e-6 to 1e-3), 2 passes over the forget set.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from audioforge.unlearning.methods import MethodInputs, Plan, TrainingParams, register_method
from lightning_modules.unlearning import UnlearningModule


@dataclass
class GradientAscentParams(TrainingParams):
    epochs: int = 2
    lr: float = 1e-4


class GradientAscent(UnlearningModule):
    def loss(self, batch, other):
        x, y = batch
        return -F.cross_entropy(self(x), y)


@register_method("gradient_ascent", GradientAscentParams, search={
    "lr": {"type": "float", "low": 1e-6, "high": 1e-3, "log": True},
    "epochs": {"type": "int", "low": 1, "high": 5},
})
def build(inputs: MethodInputs, p: GradientAscentParams) -> Plan:
    module = GradientAscent(inputs.net, inputs.num_classes, p.lr, seed=inputs.seed, channels_last=inputs.channels_last)
    return Plan(module, "forget", p.epochs, p.batch_size)
