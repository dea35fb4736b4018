"""l1_sparse: fine-tune on the retained data with an l1 penalty on the weights.

Jia et al., "Model Sparsity Can Simplify Machine Unlearning", NeurIPS 2023: cross-entropy on the
retain set plus ``alpha * ||theta||_1``, alpha decaying linearly to 0 over the epochs (their
``FT_l1`` schedule).  Here Adam; alpha 5e-4 per weight sum (their search range 1e-4 to 1e-3).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from audioforge.errors import ConfigError
from audioforge.unlearning.methods import LEARNING_RATE, MethodInputs, Plan, TrainingParams, register_method
from lightning_modules.unlearning import UnlearningModule


@dataclass
class L1SparseParams(TrainingParams):
    alpha: float = 5e-4

    def validate(self, path: str) -> None:
        super().validate(path)
        if self.alpha < 0:
            raise ConfigError(f"{path}.alpha must be >= 0, got {self.alpha}")


class L1Sparse(UnlearningModule):
    def __init__(self, *args, alpha: float, epochs: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.alpha, self.epochs = alpha, epochs

    def loss(self, batch, other):
        x, y = batch
        weight = self.alpha * (1 - self.current_epoch / self.epochs)
        l1 = torch.stack([p.abs().sum() for p in self.net.parameters()]).sum()
        return F.cross_entropy(self(x), y) + weight * l1


@register_method("l1_sparse", L1SparseParams, search={
    "lr": LEARNING_RATE,
    "epochs": {"type": "int", "low": 1, "high": 10},
    "alpha": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
})
def build(inputs: MethodInputs, p: L1SparseParams) -> Plan:
    module = L1Sparse(inputs.net, inputs.num_classes, p.lr, seed=inputs.seed, channels_last=inputs.channels_last,
                      alpha=p.alpha, epochs=p.epochs)
    return Plan(module, "retain_train", p.epochs, p.batch_size)
