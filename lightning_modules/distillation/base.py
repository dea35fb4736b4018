"""What every distillation module shares: the synthetic set as parameters, manual optimization,
a loader that only counts outer iterations, and the distilled result."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn


def steps_loader(iterations: int) -> list[int]:
    """Lightning's ``train_dataloaders`` for a distillation epoch: ``iterations`` outer steps
    (the modules draw their own real and synthetic batches)."""
    return list(range(iterations))


class SyntheticSet(pl.LightningModule):
    """``syn_x`` (learnable) and ``syn_y`` (fixed) with ``cpc`` examples per class; subclasses
    implement ``training_step``.  ``syn_lr`` is None unless a subclass learns one."""

    def __init__(self, syn_x: torch.Tensor, syn_y: torch.Tensor, seed: int = 0):
        super().__init__()
        self.automatic_optimization = False
        self.syn_x = nn.Parameter(syn_x.detach().clone())
        self.register_buffer("syn_y", syn_y.detach().clone())
        self.syn_lr: nn.Parameter | None = None
        self.generator = torch.Generator().manual_seed(seed)

    def class_indices(self, labels: torch.Tensor, c: int) -> torch.Tensor:
        return torch.nonzero(labels == c).flatten()

    def sample(self, pool: torch.Tensor, n: int) -> torch.Tensor:
        """``n`` positions of ``pool`` drawn without replacement from this module's generator."""
        return pool[torch.randperm(len(pool), generator=self.generator)[:n].to(pool.device)]

    def distilled(self) -> dict[str, torch.Tensor]:
        """The distilled set: features, labels and (when learned) the learning rate."""
        out = {"x": self.syn_x.detach().cpu().clone(), "y": self.syn_y.cpu().clone()}
        if self.syn_lr is not None:
            out["lr"] = self.syn_lr.detach().cpu().clone()
        return out

    @torch.no_grad()
    def restore(self, best: dict[str, torch.Tensor]) -> None:
        """Put back a set :meth:`distilled` returned (selection's choice, when fit ends)."""
        self.syn_x.copy_(best["x"].to(self.syn_x.device))
        if self.syn_lr is not None and "lr" in best:
            self.syn_lr.copy_(best["lr"].to(self.syn_lr.device))

    def on_save_checkpoint(self, checkpoint):
        checkpoint["generator_state"] = self.generator.get_state()

    def on_load_checkpoint(self, checkpoint):
        if "generator_state" in checkpoint:
            self.generator.set_state(checkpoint["generator_state"])
