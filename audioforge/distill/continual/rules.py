"""How each step of class-incremental learning trains its network (the ``rule``).

- ``scratch``: a fresh network on the memory plus the new classes' clips, no weights carried
  over (the dataset-condensation literature's continual protocol, GDumb-like);
- ``finetune``: EEIL-style (Castro et al. 2018, the training DDFAD's Table 4 uses).  Step 1 trains
  from scratch; every later step starts from the previous step's network and trains on the memory
  plus the new classes' clips with cross-entropy over the seen classes plus a distillation term
  (temperature ``finetune.temperature``) that keeps the old classes' logits where the previous
  network had them (:class:`~lightning_modules.incremental.IncrementalClassifier`).  Then EEIL's
  *balanced fine-tuning*: ``finetune.balanced_epochs`` more epochs at ``balanced_lr_scale`` times
  the learning rate on a class-balanced set (the memory plus ``per_class`` clips of each new
  class, drawn at random), with a second distillation term that holds the new classes' logits
  where the first stage left them.  The balanced stage is kept only when it does not lower the
  validation accuracy (selection on validation clips, never test).

Every rule chooses its epoch on the validation clips of the classes seen so far.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import lightning.pytorch as pl
import torch

from audioforge.distill import evaluate
from callbacks.best_weights import BestWeights
from lightning_modules.classifier import ClassifierModule
from lightning_modules.networks import build_network


@dataclass
class StepData:
    """What one step trains on: the memory (old classes) and the new classes' training clips."""
    memory: tuple[torch.Tensor, torch.Tensor]
    new: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    seen: list[int]
    new_classes: list[int]
    seed: int

    @cached_property
    def train(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.cat([self.memory[0], self.new[0]]), torch.cat([self.memory[1], self.new[1]])

    @property
    def old_classes(self) -> list[int]:
        return [c for c in self.seen if c not in self.new_classes]


Rule = Callable[..., tuple[ClassifierModule, BestWeights, dict]]


def scratch(cfg, network: str, num_classes: int, data: StepData, previous: dict | None,
            augment: dict) -> tuple[ClassifierModule, BestWeights, dict]:
    model, best = evaluate.train_student(network, *data.train, data.val, num_classes, cfg.train, data.seed,
                                         network_kwargs=cfg.network_kwargs, trainer=cfg.trainer, augment=augment)
    return model, best, {}


def finetune(cfg, network: str, num_classes: int, data: StepData, previous: dict | None,
             augment: dict) -> tuple[ClassifierModule, BestWeights, dict]:
    """``previous``: the state dict of the previous step's network (None at the first step)."""
    from audioforge.distill.continual.memory import coreset

    if previous is None:
        return scratch(cfg, network, num_classes, data, previous, augment)
    old, new, ft = data.old_classes, data.new_classes, cfg.finetune
    x, y = data.train

    def carried(state: dict, teachers: list, lr: float):
        from lightning_modules.incremental import IncrementalClassifier

        model = IncrementalClassifier(network, tuple(x.shape[1:]), num_classes, data.seen, teachers, ft.temperature,
                                      network_kwargs=cfg.network_kwargs, lr=lr, optimizer="sgd", momentum=cfg.train.momentum,
                                      weight_decay=cfg.train.weight_decay, augment=augment if cfg.train.augment else None,
                                      lr_decay_at=cfg.train.lr_decay_at, seed=data.seed)
        model.net.load_state_dict(state)
        return model

    def frozen(state: dict) -> torch.nn.Module:
        net = build_network(network, tuple(x.shape[1:]), num_classes, **cfg.network_kwargs)
        net.load_state_dict(state)
        return net

    pl.seed_everything(data.seed, verbose=False)
    teacher = frozen(previous)  # the previous step's network, for both stages
    model = carried(previous, [(teacher, old)], cfg.train.lr)
    best = evaluate.fit_student(model, x, y, data.val, cfg.train, data.seed, cfg.trainer)
    info = {"finetune_val_acc": float(best.best_score)}
    if not ft.balanced_epochs:
        return model, best, info
    picked = coreset("random", *data.new, new, cfg.memory.per_class, data.seed)
    bx = torch.cat([data.memory[0], data.new[0][picked]])
    by = torch.cat([data.memory[1], data.new[1][picked]])
    first = network_state(model)
    balanced = carried(first, [(teacher, old), (frozen(first), new)], cfg.train.lr * ft.balanced_lr_scale)
    best_balanced = evaluate.fit_student(balanced, bx, by, data.val, cfg.train, data.seed + 1, cfg.trainer,
                                         ft.balanced_epochs)
    info |= {"balanced_val_acc": float(best_balanced.best_score), "balanced_size": len(by)}
    info["balanced_kept"] = bool(best_balanced.best_score >= best.best_score)
    return (balanced, best_balanced, info) if info["balanced_kept"] else (model, best, info)


RULES: dict[str, Rule] = {"scratch": scratch, "finetune": finetune}


def carries_weights(rule: str) -> bool:
    """Whether a step needs the previous step's network (saved with each step for resuming)."""
    return rule == "finetune"


def network_state(model: ClassifierModule) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.net.state_dict().items()}
