"""Periodic validation of a synthetic set during distillation, and selection of the best one.

At the start and every ``every`` epochs (and after the last) the current synthetic set is
scored by ``score`` (the commands pass one that trains a fresh network on it and measures it on
the *validation* split); the synthetic set (and learned lr) with the best score is kept and put
back when fit ends.  ``score`` returns an accuracy, or (accuracy, loss): equal accuracies are then
told apart by the lower loss (a saturated validation, e.g. two classes that every set separates,
would otherwise always keep the starting set).  Whatever ``score`` reads, this callback holds no
data of its own."""

from __future__ import annotations

from typing import Callable

import lightning.pytorch as pl
import torch


def kept_start(selection: dict | None) -> bool | None:
    """Whether a distillation's selection (``best_iteration`` as this callback reports it) kept the
    starting set, i.e. the real clips it began from; ``None`` for a set that was not learned."""
    iteration = (selection or {}).get("best_iteration")
    return None if iteration is None else iteration == 0


class SyntheticValidation(pl.Callback):
    def __init__(self, score: Callable[[dict[str, torch.Tensor]], float], every: int = 1):
        self.score_set, self.every = score, every
        self.history: list[tuple[int, float]] = []   # (outer iteration, validation accuracy)
        self.best_acc: float | None = None
        self.best_loss: float | None = None
        self.best_iteration: int = 0
        self._best: dict[str, torch.Tensor] | None = None

    def score(self, pl_module) -> tuple[float, float | None]:
        with torch.random.fork_rng():  # scoring must not move the distillation's random stream
            value = self.score_set(pl_module.distilled())
        acc, loss = value if isinstance(value, tuple) else (value, None)
        return float(acc), None if loss is None else float(loss)

    def _better(self, acc: float, loss: float | None) -> bool:
        if self.best_acc is None or acc > self.best_acc:
            return True
        return acc == self.best_acc and loss is not None and self.best_loss is not None and loss < self.best_loss

    def check(self, iteration: int, pl_module, log: bool = True) -> None:
        acc, loss = self.score(pl_module)
        self.history.append((iteration, acc))
        if log:
            pl_module.log("val/acc", acc)
        if self._better(acc, loss):
            self.best_acc, self.best_loss, self.best_iteration = acc, loss, iteration
            self._best = {k: v.clone() for k, v in pl_module.distilled().items()}

    def on_train_start(self, trainer, pl_module):
        if not self.history:  # the starting set competes too
            self.check(0, pl_module, log=False)

    def on_train_epoch_end(self, trainer, pl_module):
        if (trainer.current_epoch + 1) % self.every == 0 or trainer.current_epoch + 1 == trainer.max_epochs:
            self.check((trainer.current_epoch + 1) * trainer.num_training_batches, pl_module)

    def on_fit_end(self, trainer, pl_module):
        if self._best is not None:
            pl_module.restore(self._best)

    def state_dict(self):
        return {"history": self.history, "best_acc": self.best_acc, "best_loss": self.best_loss,
                "best_iteration": self.best_iteration, "best": self._best}

    def load_state_dict(self, state):
        self.history, self.best_acc, self.best_loss = state["history"], state["best_acc"], state.get("best_loss")
        self.best_iteration, self._best = state["best_iteration"], state["best"]
