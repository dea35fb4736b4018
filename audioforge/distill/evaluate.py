"""The evaluation protocol: fresh networks trained on a (distilled) set, scored on real data.

Each run trains a new network of the given architecture on the set with SGD (momentum 0.9,
weight decay 5e-4, the set's learned learning rate when it has one), checks validation accuracy
every ``val_every`` epochs and keeps the best weights (:class:`BestWeights`); only then is the
test split scored, once.  Selection never sees test data: the test tensors are not even handed
to the training function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import lightning.pytorch as pl
import numpy as np
import torch

from audioforge.training import TrainerConfig, make_trainer
from callbacks.best_weights import BestWeights
from datamodules.loader import TensorBatchLoader, eval_batch_size
from lightning_modules.classifier import ClassifierModule, predict_logits


@dataclass
class EvalConfig:
    runs: int = 5                         # fresh networks per (set, architecture)
    epochs: int = 300
    batch_size: int = 256
    lr: float = 0.01                      # when the set has no learned learning rate
    use_learned_lr: bool = True
    momentum: float = 0.9
    weight_decay: float = 5e-4
    val_every: int = 25
    archs: list[str] | None = None        # null: the architecture the set was distilled with
    augment: bool = False                 # siamese augmentation (the distill config's ``augment``) of every batch
    lr_decay_at: float | None = None      # fraction of the epochs after which the lr drops x0.1 (reference: 0.5)


def train_student(network: str, x: torch.Tensor, y: torch.Tensor, val: tuple[torch.Tensor, torch.Tensor],
                  num_classes: int, cfg: EvalConfig, seed: int, lr: float | None = None,
                  network_kwargs: dict | None = None, trainer: TrainerConfig | None = None,
                  augment: dict | None = None) -> tuple[ClassifierModule, BestWeights]:
    """A fresh ``network`` trained on (x, y), its weights at the best validation accuracy;
    ``augment`` (SiameseAugment options) is used when ``cfg.augment``."""
    pl.seed_everything(seed, verbose=False)
    model = ClassifierModule(network, tuple(x.shape[1:]), num_classes, lr=lr or cfg.lr, optimizer="sgd",
                             momentum=cfg.momentum, weight_decay=cfg.weight_decay, network_kwargs=network_kwargs,
                             augment=(augment or {}) if cfg.augment else None, lr_decay_at=cfg.lr_decay_at, seed=seed)
    return model, fit_student(model, x, y, val, cfg, seed, trainer)


def fit_student(model: ClassifierModule, x: torch.Tensor, y: torch.Tensor, val: tuple[torch.Tensor, torch.Tensor],
                cfg: EvalConfig, seed: int, trainer: TrainerConfig | None = None,
                epochs: int | None = None) -> BestWeights:
    """Train ``model`` on (x, y) for ``epochs`` (default ``cfg.epochs``) with validation every
    ``cfg.val_every`` epochs (at least once: every ``epochs`` when fewer); it ends with the weights
    of its best validation accuracy."""
    best = BestWeights("val/acc", "max", patience=None)
    epochs = epochs or cfg.epochs
    tcfg = TrainerConfig(**{**(trainer.__dict__ if trainer else {}), "check_val_every_n_epoch": min(cfg.val_every, epochs)})
    fit = make_trainer(tcfg, epochs, False, [best])
    fit.fit(model, TensorBatchLoader(x, y, cfg.batch_size, shuffle=True, seed=seed),
            TensorBatchLoader(*val, eval_batch_size(val[0])))
    return best


def validation_score(synthetic: dict[str, torch.Tensor], network: str, val: tuple[torch.Tensor, torch.Tensor],
                     num_classes: int, cfg: EvalConfig, seed: int, network_kwargs: dict | None = None,
                     augment: dict | None = None, trainer: TrainerConfig | None = None) -> tuple[float, float | None]:
    """Best validation accuracy of a fresh ``network`` trained on ``synthetic``, and the validation
    loss at that epoch (the tie-breaker): how distillation chooses among its synthetic sets
    (``SyntheticValidation``'s score).  No test data here."""
    lr = float(synthetic["lr"]) if "lr" in synthetic and cfg.use_learned_lr else None
    _, best = train_student(network, synthetic["x"], synthetic["y"], val, num_classes, cfg, seed, lr, network_kwargs,
                            trainer, augment)
    return float(best.best_score), best.best_loss


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((predict_logits(model, x).argmax(1) == y).float().mean())


def evaluate_set(network: str, synthetic: dict[str, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor],
                 test: tuple[torch.Tensor, torch.Tensor], num_classes: int, cfg: EvalConfig, seed: int = 0,
                 network_kwargs: dict | None = None, trainer: TrainerConfig | None = None,
                 augment: dict | None = None, on_run: Callable[[], None] | None = None) -> dict:
    """``cfg.runs`` fresh networks on ``synthetic`` (``x``, ``y``, optional ``lr``): test accuracy
    of each at its best validation epoch, with mean and std; ``on_run()`` after each."""
    lr = float(synthetic["lr"]) if cfg.use_learned_lr and "lr" in synthetic else cfg.lr
    accs, chosen, val_accs = [], [], []
    for run in range(cfg.runs):
        model, best = train_student(network, synthetic["x"], synthetic["y"], val, num_classes, cfg,
                                    seed * 1000 + run, lr, network_kwargs, trainer, augment)
        val_accs.append(best.best_score)
        chosen.append(best.best_epoch)
        accs.append(accuracy(model, *test))  # scored once, after selection
        if on_run:
            on_run()
    return {"network": network, "lr": lr, "test_acc": accs, "mean": float(np.mean(accs)),
            "std": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0, "val_acc": val_accs, "best_epoch": chosen}
