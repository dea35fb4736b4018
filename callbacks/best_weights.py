"""Early stopping on a validation metric that also puts the best weights back at the end of fit."""

from __future__ import annotations

import copy
import time

import lightning.pytorch as pl


class BestWeights(pl.Callback):
    """Watch ``monitor`` after each validation; keep a copy of the module's weights at its best,
    stop when it has not improved for ``patience`` validations (``None``: never stop early), and
    load the best copy when fit ends.  ``best_epoch`` and ``best_score`` say what was chosen;
    ``history`` holds (epoch, value, seconds since fit started) of every validation."""

    def __init__(self, monitor: str = "val/acc", mode: str = "max", patience: int | None = 10, min_delta: float = 0.0):
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be max or min, got {mode!r}")
        self.monitor, self.mode, self.patience, self.min_delta = monitor, mode, patience, min_delta
        self.best_score: float | None = None
        self.best_epoch: int = -1
        self.best_loss: float | None = None   # val/loss at the chosen epoch, where the module logs it
        self._best_state = None
        self._stale = 0
        self.history: list[tuple[int, float, float]] = []
        self._started = time.perf_counter()

    def on_fit_start(self, trainer, pl_module):
        self._started = time.perf_counter()

    def _better(self, value: float) -> bool:
        if self.best_score is None:
            return True
        if self.mode == "max":
            return value > self.best_score + self.min_delta
        return value < self.best_score - self.min_delta

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        self.history.append((trainer.current_epoch, value, time.perf_counter() - self._started))
        if self._better(value):
            self.best_score, self.best_epoch, self._stale = value, trainer.current_epoch, 0
            loss = trainer.callback_metrics.get("val/loss")
            self.best_loss = None if loss is None else float(loss)
            self._best_state = copy.deepcopy(pl_module.state_dict())
        else:
            self._stale += 1
            if self.patience is not None and self._stale >= self.patience:
                trainer.should_stop = True

    def on_fit_end(self, trainer, pl_module):
        if self._best_state is not None:
            pl_module.load_state_dict(self._best_state)
