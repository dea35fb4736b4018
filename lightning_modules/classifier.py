"""One LightningModule for classification with any registered network.

Adam; per-epoch train loss and accuracy (accumulated without per-step logging overhead);
validation and test accuracy with macro precision, recall and F1 from torchmetrics.  The
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
                 weight_decay: float = 0.0, network_kwargs: dict[str, Any] | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.net = build_network(network, tuple(input_shape), num_classes, **(network_kwargs or {}))
        self.initial_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
        self.val_metrics = classification_metrics(num_classes, prefix="val/")
        self.test_metrics = classification_metrics(num_classes, prefix="test/")
        self._train_sums = torch.zeros(3)  # loss * n, correct, n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        with torch.no_grad():
            self._train_sums += torch.stack([loss.detach() * len(y), (logits.argmax(1) == y).sum(),
                                             torch.tensor(float(len(y)))]).to(self._train_sums)
        return loss

    def on_train_epoch_start(self):
        self._train_sums = torch.zeros(3, device=self.device)

    def on_train_epoch_end(self):
        loss_sum, correct, n = self._train_sums
        if n > 0:
            self.log_dict({"train/loss": loss_sum / n, "train/acc": correct / n}, sync_dist=True)

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
def predict_logits(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Logits of ``model`` on ``x`` in eval mode (mode restored afterwards)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        return torch.cat([model(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])
    finally:
        model.train(was_training)
