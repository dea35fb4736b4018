"""The LightningModule every trained unlearning method builds on.

One network, manual optimisation (a step may mix a batch of the split the Trainer iterates with a
batch of the other set: forget batches beside retain batches, or the reverse).  A method
subclasses :class:`UnlearningModule` and writes :meth:`UnlearningModule.loss`; the base draws the
other set's batches (reshuffled every pass, seeded), applies an optional gradient mask (weights
outside it never move), and logs the epoch's mean loss as ``unlearn/loss`` and, when the Trainer
has a validation loader, ``val/loss`` and ``val/acc``.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn

from lightning_modules.networks.norms import memory_format


class UnlearningModule(pl.LightningModule):
    def __init__(self, net: nn.Module, num_classes: int, lr: float, optimizer: str = "adam", momentum: float = 0.0,
                 weight_decay: float = 0.0, other: tuple[torch.Tensor, torch.Tensor] | None = None,
                 other_batch_size: int = 0, seed: int = 0, channels_last: bool = True):
        super().__init__()
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be adam or sgd, got {optimizer!r}")
        if other is not None and other_batch_size < 1:
            raise ValueError("other_batch_size must be >= 1 when an other set is given")
        self.net = net
        self.num_classes = num_classes
        self.lr, self.optimizer_name, self.momentum, self.weight_decay = lr, optimizer, momentum, weight_decay
        self.memory_format = memory_format(self.net, channels_last)
        self.net.to(memory_format=self.memory_format)
        self.automatic_optimization = False
        self.grad_mask: dict[str, torch.Tensor] | None = None  # parameter name -> 0/1 mask
        self._other = other
        self._other_batch = other_batch_size
        self._generator = torch.Generator().manual_seed(seed)
        self._order = torch.empty(0, dtype=torch.long)
        self._position = 0
        self._loss_sum, self._steps = torch.zeros(()), 0

    # --- what a method writes ------------------------------------------------------------------
    def loss(self, batch: tuple[torch.Tensor, torch.Tensor],
             other: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        """The loss of one step: ``batch`` from the Trainer's split, ``other`` from the other set."""
        raise NotImplementedError

    # --- machinery -----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = x.contiguous(memory_format=self.memory_format)
        return self.net(x)

    def configure_optimizers(self):
        params = [p for p in self.net.parameters() if p.requires_grad]
        if self.optimizer_name == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        fused = self.device.type in ("cpu", "cuda") or None
        return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay, fused=fused)

    def other_batch(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The next batch of the other set (``None`` when the method has none)."""
        if self._other is None:
            return None
        x, y = self._other
        parts, need = [], self._other_batch
        while need > 0:
            if self._position >= len(self._order):
                self._order = torch.randperm(len(x), generator=self._generator)
                self._position = 0
            take = self._order[self._position:self._position + need]
            self._position += len(take)
            parts.append(take)
            need -= len(take)
        index = torch.cat(parts)
        return x[index].to(self.device), y[index].to(self.device)

    def step(self, loss: torch.Tensor) -> None:
        """Backward, mask, optimiser step (one method may call it more than once per batch)."""
        optimizer = self.optimizers()
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if self.grad_mask is not None:
            for name, p in self.net.named_parameters():
                if p.grad is not None:
                    p.grad.mul_(self.grad_mask[name].to(p.grad.device))
        optimizer.step()
        self._loss_sum.add_(loss.detach())
        self._steps += 1

    def training_step(self, batch, batch_idx):
        loss = self.loss(batch, self.other_batch())
        self.step(loss)
        return loss

    def on_train_epoch_start(self):
        self._loss_sum, self._steps = torch.zeros((), device=self.device), 0

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val/loss", F.cross_entropy(logits, y), on_epoch=True, sync_dist=True, batch_size=len(y))
        self.log("val/acc", (logits.argmax(1) == y).float().mean(), on_epoch=True, sync_dist=True, batch_size=len(y))

    def on_train_epoch_end(self):
        if self._steps:
            self.log("unlearn/loss", self._loss_sum / self._steps, sync_dist=True)
