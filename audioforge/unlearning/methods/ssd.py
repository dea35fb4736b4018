"""ssd: selective synaptic dampening, no training.

Foster et al., "Fast Machine Unlearning Without Retraining Through Selective Synaptic
Dampening", AAAI 2024.  Importances are diagonal Fisher estimates: the squared gradient of the
cross-entropy per batch, averaged over batches, on the forget set (``I_f``) and on the whole
training set, forget included (``I_d``).  Parameters with ``I_f > alpha * I_d`` are multiplied by
``min(lambda * I_d / I_f, 1)``; the others stay.  The reference's settings: alpha (selection
weighting) 10, lambda (dampening constant) 1, exponent 1, bound 1.  Batches of 64 here (the
reference uses its training batch size).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from audioforge.errors import ConfigError
from audioforge.unlearning.methods import MethodInputs, Plan, register_method, summed_gradients


@dataclass
class SSDParams:
    alpha: float = 10.0         # selection weighting
    dampening: float = 1.0      # lambda
    batch_size: int = 64

    def validate(self, path: str) -> None:
        if self.alpha <= 0 or self.dampening <= 0 or self.batch_size < 1:
            raise ConfigError(f"{path}: alpha and dampening must be > 0 and batch_size >= 1")


def importances(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> dict[str, torch.Tensor]:
    """Mean over batches of each parameter's squared batch gradient (network in eval mode)."""
    sums, batches = summed_gradients(net, x, y, batch_size, transform=lambda g: g.pow(2))
    return {name: v / max(1, batches) for name, v in sums.items()}


@torch.no_grad()
def dampen(net: torch.nn.Module, forget_importance: dict[str, torch.Tensor], data_importance: dict[str, torch.Tensor],
           alpha: float, dampening: float) -> dict[str, int]:
    """Scale the selected parameters in place; returns how many were changed per parameter."""
    changed = {}
    for name, p in net.named_parameters():
        f, d = forget_importance[name], data_importance[name]
        selected = f > alpha * d
        factor = (dampening * d / f.clamp_min(torch.finfo(f.dtype).tiny)).clamp(max=1.0)
        p[selected] = p[selected] * factor[selected]
        changed[name] = int(selected.sum())
    return changed


@register_method("ssd", SSDParams, search={
    "alpha": {"type": "float", "low": 1.0, "high": 100.0, "log": True},
    "dampening": {"type": "float", "low": 0.1, "high": 5.0, "log": True},
})
def build(inputs: MethodInputs, p: SSDParams) -> Plan:
    xf, yf = inputs.forget
    xd, yd = torch.cat([inputs.retain[0], xf]), torch.cat([inputs.retain[1], yf])
    dampen(inputs.net, importances(inputs.net, xf, yf, p.batch_size), importances(inputs.net, xd, yd, p.batch_size),
           p.alpha, p.dampening)
    return Plan(None)
