"""salun: random labels on the salient weights only.

Fan et al., "SalUn: Empowering Machine Unlearning via Gradient-based Weight Saliency in Both
Image Classification and Generation", ICLR 2024.  The saliency map is the magnitude of the
forget loss's gradient, summed over forget batches with the network in eval mode; the
``density`` share of weights with the largest magnitudes (ranked over the whole network, as the
reference's ``generate_mask.py`` does) form the mask, 0.5 as in the reference's runs.  Then
:mod:`random_label` training in which only masked weights move (gradients outside the mask are
zeroed; with Adam and no weight decay those weights stay exactly as they were).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from audioforge.errors import ConfigError
from audioforge.unlearning.methods import MethodInputs, Plan, TrainingParams, register_method, summed_gradients
from audioforge.unlearning.methods.random_label import random_labels_module


@dataclass
class SalUnParams(TrainingParams):
    density: float = 0.5             # share of weights that may change
    saliency_batch_size: int = 64

    def validate(self, path: str) -> None:
        super().validate(path)
        if not 0 < self.density <= 1 or self.saliency_batch_size < 1:
            raise ConfigError(f"{path}: density must be in (0, 1] and saliency_batch_size >= 1")


def saliency_mask(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, density: float,
                  batch_size: int) -> dict[str, torch.Tensor]:
    """Per parameter, 1 where ``|sum of forget-loss gradients|`` is in the top ``density`` share."""
    grads, _ = summed_gradients(net, x, y, batch_size)
    flat = torch.cat([g.abs().flatten() for g in grads.values()])
    keep = max(1, round(density * flat.numel()))
    order = torch.argsort(flat, descending=True, stable=True)
    chosen = torch.zeros(flat.numel(), dtype=torch.bool)
    chosen[order[:keep]] = True
    out, start = {}, 0
    for name, g in grads.items():
        out[name] = chosen[start:start + g.numel()].view_as(g).to(g.dtype)
        start += g.numel()
    return out


@register_method("salun", SalUnParams, search={
    "lr": {"type": "float", "low": 1e-5, "high": 1e-2, "log": True},
    "epochs": {"type": "int", "low": 1, "high": 5},
    "density": {"type": "float", "low": 0.1, "high": 0.9},
})
def build(inputs: MethodInputs, p: SalUnParams) -> Plan:
    module = random_labels_module(inputs, p)
    module.grad_mask = saliency_mask(inputs.net, *inputs.forget, p.density, p.saliency_batch_size)
    return Plan(module, "retain_train", p.epochs, p.batch_size)
