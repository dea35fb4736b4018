"""neggrad_plus: descend on retained data and ascend on the forget set in the same step.

Kurmanji et al., "Towards Unbounded Machine Unlearning" (SCRUB), NeurIPS 2023, section 5
(NegGrad+): ``alpha * CE(retain) - (1 - alpha) * CE(forget)``, one retain and one forget batch
per step, over the retain set.  Here alpha 0.99 (their tuned values lie in 0.95-0.9999), Adam.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from audioforge.errors import ConfigError
from audioforge.unlearning.methods import LEARNING_RATE, MethodInputs, Plan, TrainingParams, register_method
from lightning_modules.unlearning import UnlearningModule


@dataclass
class NegGradPlusParams(TrainingParams):
    alpha: float = 0.99              # weight of the retain loss; 1 - alpha on the forget ascent
    forget_batch_size: int = 16

    def validate(self, path: str) -> None:
        super().validate(path)
        if not 0 <= self.alpha <= 1 or self.forget_batch_size < 1:
            raise ConfigError(f"{path}: alpha must be in [0, 1] and forget_batch_size >= 1")


class NegGradPlus(UnlearningModule):
    def __init__(self, *args, alpha: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.alpha = alpha

    def loss(self, batch, other):
        (x, y), (xf, yf) = batch, other
        logits = self(torch.cat([x, xf]))
        retain, forget = logits[:len(x)], logits[len(x):]
        return self.alpha * F.cross_entropy(retain, y) - (1 - self.alpha) * F.cross_entropy(forget, yf)


@register_method("neggrad_plus", NegGradPlusParams, search={
    "lr": LEARNING_RATE,
    "epochs": {"type": "int", "low": 1, "high": 10},
    "alpha": {"type": "float", "low": 0.5, "high": 0.999},
})
def build(inputs: MethodInputs, p: NegGradPlusParams) -> Plan:
    module = NegGradPlus(inputs.net, inputs.num_classes, p.lr, other=inputs.forget, other_batch_size=p.forget_batch_size,
                         seed=inputs.seed, channels_last=inputs.channels_last, alpha=p.alpha)
    return Plan(module, "retain_train", p.epochs, p.batch_size)
