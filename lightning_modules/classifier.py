"""One LightningModule for classification with any registered network.

Adam (fused kernel on CPU and CUDA; ``optimizer="sgd"`` for SGD); the network runs channels-last (NHWC), about 1.3x faster
per step for these small convolutions on CPU.  The step uses manual optimization: one
``zero_grad / backward / step`` per batch, which is all automatic optimization would do here,
minus its closure machinery (a few percent of this network's 2 ms CPU step, see
``benchmarks/lightning_overhead.py``); callback hooks such as ``on_before_optimizer_step`` still
run, Trainer gradient clipping and accumulation do not apply.  Per-epoch train loss and accuracy, accumulated
without per-step logging overhead; validation and test accuracy with macro precision, recall and F1 from torchmetrics.  The
network's initial weights are kept (``initial_state``, saved in checkpoints) so unlearning can
reset layers to them.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torchmetrics import MetricCollection
from torchmetrics.classification import (MulticlassAccuracy, MulticlassF1Score, MulticlassPrecision,
                                         MulticlassRecall)

from lightning_modules.networks import build_network
from lightning_modules.networks.norms import memory_format

METRIC_NAMES = ("acc", "precision", "recall", "f1")


def classification_metrics(num_classes: int, prefix: str = "") -> MetricCollection:
    """Accuracy and macro precision, recall, F1 (what every report in audioforge uses)."""
    return MetricCollection({
        "acc": MulticlassAccuracy(num_classes, average="micro"),
        "precision": MulticlassPrecision(num_classes, average="macro", zero_division=0),
        "recall": MulticlassRecall(num_classes, average="macro", zero_division=0),
        "f1": MulticlassF1Score(num_classes, average="macro", zero_division=0),
    }, prefix=prefix)


class ClassifierModule(pl.LightningModule):
    def __init__(self, network: str, input_shape: tuple[int, int, int], num_classes: int, lr: float = 1e-3,
                 weight_decay: float = 0.0, network_kwargs: dict[str, Any] | None = None, channels_last: bool = True,
                 optimizer: str = "adam", momentum: float = 0.0, augment: dict[str, Any] | None = None,
                 lr_decay_at: float | None = None, seed: int = 0):
        """``augment``: options of a :class:`SiameseAugment` applied to every training batch (one
        drawn operation per batch), as the distillation literature trains experts and evaluation
        networks; ``lr_decay_at``: the fraction of the epochs after which the learning rate drops
        x0.1 (the reference evaluation decays at half)."""
        super().__init__()
        self.save_hyperparameters()
        if lr_decay_at is not None and not 0 < lr_decay_at < 1:
            raise ValueError(f"lr_decay_at must be in (0, 1), got {lr_decay_at}")
        self.augment = None
        if augment is not None:
            from lightning_modules.distillation.augment import SiameseAugment

            self.augment = SiameseAugment(**augment, seed=seed)
        self.net = build_network(network, tuple(input_shape), num_classes, **(network_kwargs or {}))
        self.memory_format = memory_format(self.net, channels_last)
        self.net.to(memory_format=self.memory_format)
        self.automatic_optimization = False
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be adam or sgd, got {optimizer!r}")
        self.initial_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
        self.val_metrics = classification_metrics(num_classes, prefix="val/")
        self.test_metrics = classification_metrics(num_classes, prefix="test/")
        self._loss_sum, self._correct, self._seen = torch.zeros(()), torch.zeros((), dtype=torch.long), 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = x.contiguous(memory_format=self.memory_format)
        return self.net(x)

    def configure_optimizers(self):
        fused = self.device.type in ("cpu", "cuda") or None  # one fused kernel per step instead of a loop
        if self.hparams.optimizer == "sgd":  # expert trajectories for distillation are SGD paths
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=self.hparams.momentum,
                                   weight_decay=self.hparams.weight_decay)
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay,
                                fused=fused)

    def training_step(self, batch, batch_idx):
        x, y = batch
        optimizer = self.optimizers()
        if self.augment is not None:
            x = self.augment.apply(x, self.augment.draw(x.shape))
        logits = self(x)
        loss = self.training_loss(logits, x, y)
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()
        # epoch sums kept on the device, no per-step logging (it costs more than this small step)
        self._loss_sum.add_(loss.detach(), alpha=len(y))
        self._correct.add_((logits.detach().argmax(1) == y).sum())
        self._seen += len(y)
        return loss

    def training_loss(self, logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The loss a training batch minimises (cross-entropy); ``x`` is the batch as the network saw it."""
        return F.cross_entropy(logits, y)

    def on_train_epoch_start(self):
        self._loss_sum = torch.zeros((), device=self.device)
        self._correct = torch.zeros((), dtype=torch.long, device=self.device)
        self._seen = 0

    def on_train_epoch_end(self):
        at = self.hparams.lr_decay_at
        if at is not None and self.current_epoch + 1 == max(1, round(at * self.trainer.max_epochs)):
            for group in self.optimizers().param_groups:
                group["lr"] *= 0.1
        if self._seen:
            self.log_dict({"train/loss": self._loss_sum / self._seen, "train/acc": self._correct.float() / self._seen},
                          sync_dist=True)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.val_metrics.update(logits, y)
        self.log("val/loss", F.cross_entropy(logits, y), on_epoch=True, sync_dist=True, batch_size=len(y))

    def on_validation_epoch_end(self):
        self.log_dict(self.val_metrics.compute(), sync_dist=False)
        self.val_metrics.reset()

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.test_metrics.update(self(x), y)

    def on_test_epoch_end(self):
        self.log_dict(self.test_metrics.compute())
        self.test_metrics.reset()

    def on_save_checkpoint(self, checkpoint):
        checkpoint["initial_state"] = self.initial_state

    def on_load_checkpoint(self, checkpoint):
        if "initial_state" in checkpoint:
            self.initial_state = checkpoint["initial_state"]


@torch.no_grad()
def predict_logits(model: torch.nn.Module, x: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """Logits of ``model`` on ``x`` in eval mode (mode restored afterwards), in batches bounded by
    the inputs' size (:func:`datamodules.loader.eval_batch_size`) unless ``batch_size`` is given."""
    from datamodules.loader import eval_batch_size

    batch_size = batch_size or eval_batch_size(x)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        return torch.cat([model(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])
    finally:
        model.train(was_training)
