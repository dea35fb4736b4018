"""Building Trainers from config, the same way for every command."""

from __future__ import annotations

import logging
import os
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import lightning.pytorch as pl
import torch
from threadpoolctl import threadpool_limits

from audioforge import events, signals
from audioforge.errors import ConfigError


@dataclass
class TrainerConfig:
    """Passed through to ``lightning.pytorch.Trainer``."""

    accelerator: str = "cpu"
    devices: int | str | list[int] = 1
    strategy: str = "auto"
    precision: str = "32-true"
    num_nodes: int = 1
    deterministic: bool = False
    threads: int | None = 1            # torch intra-op and BLAS threads per process (null: the libraries' defaults)
    sync_batchnorm: bool = True        # under DDP on GPUs: BatchNorm statistics over the global batch (torch has no CPU SyncBatchNorm)
    check_val_every_n_epoch: int = 1
    channels_last: bool | None = None  # network memory layout; null: channels-last on one device, default under DDP

    @property
    def use_channels_last(self) -> bool:
        """Channels-last is about 1.3x faster for these convolutions on CPU, but 2-rank DDP runs in it
        drifted from the one-process run far beyond float rounding (test logits 0.16 apart after one
        epoch), while in the default layout they agree to 1e-6; so DDP uses the default layout."""
        return self.channels_last if self.channels_last is not None else not self.distributed

    def validate(self, path: str = "trainer") -> None:
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"{path}.threads must be >= 1 or null, got {self.threads}")
        if self.num_nodes < 1 or self.check_val_every_n_epoch < 1:
            raise ConfigError(f"{path}.num_nodes and {path}.check_val_every_n_epoch must be >= 1")

    @property
    def distributed(self) -> bool:
        devices = self.devices
        many = (isinstance(devices, int) and devices > 1) or (isinstance(devices, list) and len(devices) > 1) \
            or devices == -1 or (isinstance(devices, str) and devices not in ("1", "auto"))
        return many or self.num_nodes > 1 or "ddp" in self.strategy


@dataclass
class FitConfig:
    """Plain supervised training: epochs, batch size and Adam's learning rate and weight decay."""

    epochs: int = 100
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.0

    def validate(self, path: str = "fit") -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError(f"{path}: epochs and batch_size must be >= 1, got {self.epochs} and {self.batch_size}")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ConfigError(f"{path}: lr must be > 0 and weight_decay >= 0, got {self.lr} and {self.weight_decay}")


def trainer_overrides(settings: dict[str, Any], path: str = "trainer") -> list[str]:
    """``trainer.<key>=<value>`` overrides for the runs a command launches (the cells of
    ``unlearn-bench``, the trials of ``sweep``), checked as any :class:`TrainerConfig` is (keys,
    types, values)."""
    from audioforge.config import from_dict, override

    from_dict(TrainerConfig, settings, path)
    return [override(f"trainer.{key}", value) for key, value in settings.items()]


def apply_trainer(base: TrainerConfig, settings: dict[str, Any], path: str = "trainer") -> TrainerConfig:
    """``base`` with ``settings`` (a command's ``trainer`` section) applied, checked as any
    :class:`TrainerConfig` is."""
    from audioforge.config import from_dict, to_dict

    return from_dict(TrainerConfig, {**to_dict(base), **settings}, path)


def quiet_lightning() -> None:
    """Silence Lightning's start-up banners; keep warnings that matter."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*litlogger.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not empty.*")  # resuming
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=".*but have no `val_dataloader`.*")
    # epoch-level torchmetrics values are already synchronised across ranks by compute()
    warnings.filterwarnings("ignore", message=".*when logging on epoch level in distributed setting.*")


def configure_threads(cfg: TrainerConfig) -> None:
    """``cfg.threads`` threads for torch and for the BLAS libraries NumPy and SciPy call (scikit-learn's
    probes and attacks).  Left alone, each process's BLAS starts one thread per core: with one worker
    per core that oversubscribes the cores, and the quick unlearning benchmark ran 1.09x slower
    (``benchmarks/blas_threads.py``)."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
        threadpool_limits(cfg.threads, user_api="blas")


def make_trainer(cfg: TrainerConfig, max_epochs: int, logger: Any = False, callbacks: list[pl.Callback] = (),
                 progress_bar: bool = False, validate: bool = True) -> pl.Trainer:
    """A Trainer from config; checkpointing is on only when a ``ModelCheckpoint`` is among ``callbacks``.
    Every trainer stops at the next batch after a stop signal and announces its epochs
    (:mod:`audioforge.signals`, :mod:`audioforge.events`)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    quiet_lightning()
    return pl.Trainer(
        max_epochs=max_epochs, accelerator=cfg.accelerator, devices=cfg.devices, strategy=cfg.strategy,
        precision=cfg.precision, num_nodes=cfg.num_nodes, deterministic=cfg.deterministic,
        sync_batchnorm=cfg.sync_batchnorm and cfg.distributed and cfg.accelerator != "cpu",
        logger=logger, callbacks=[*callbacks, StopOnSignal(), AnnounceEpochs(), StageEpochs()],
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        enable_progress_bar=progress_bar, enable_model_summary=False, num_sanity_val_steps=0,
        limit_val_batches=None if validate else 0, check_val_every_n_epoch=cfg.check_val_every_n_epoch,
        log_every_n_steps=10**9,
    )


def stage_bar(total: int, desc: str, unit: str):
    """A progress bar with the time left for one stage of a command (experts, distillation steps,
    evaluation runs), on stderr; off under ``--quiet``.  In a pool's worker the stage goes to the
    command's status line instead (:class:`audioforge.processes.Stage`)."""
    from tqdm import tqdm

    from audioforge import processes
    from audioforge.logs import progress_shown

    if processes.in_worker():
        return processes.Stage(total, desc, unit)
    return tqdm(total=total, desc=desc, unit=unit, disable=not progress_shown(), dynamic_ncols=True, leave=False)


class StopOnSignal(pl.Callback):
    """Re-raises a remembered stop request at the next batch or epoch boundary, and keeps the
    command's own SIGTERM handler in place during a fit.

    Lightning replaces SIGTERM's handler as each fit starts with one that, under DDP, calls
    ``torch.distributed.broadcast`` from inside the handler.  Run at an arbitrary point of rank 0
    while another rank waits in the backward all-reduce, that broadcast never completes: the launch
    hangs until the process group's timeout (30 minutes).  :func:`audioforge.signals.install` therefore goes back in
    as each stage starts (after Lightning registered its own): a SIGTERM raises
    ``KeyboardInterrupt`` as everywhere else, and Lightning's interrupt path kills the ranks it
    launched."""

    def on_train_start(self, trainer, pl_module):
        signals.install()

    def on_validation_start(self, trainer, pl_module):
        signals.install()

    def on_test_start(self, trainer, pl_module):
        signals.install()

    def on_predict_start(self, trainer, pl_module):
        signals.install()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        signals.check()

    def on_train_epoch_start(self, trainer, pl_module):
        signals.check()

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        signals.check()


class AnnounceEpochs(pl.Callback):
    """Announces ``epoch``, the module's device and the trainer's precision at the start of every
    training epoch (rank 0 only)."""

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.is_global_zero and os.environ.get(events.VARIABLE):
            events.announce("epoch", epoch=trainer.current_epoch, module=type(pl_module).__name__,
                     device=str(pl_module.device), precision=str(trainer.precision))


class StageEpochs(pl.Callback):
    """In a pool's worker, a fit that runs inside no stage shows its epochs as one
    (``training ClassifierModule 12/60 epoch``); elsewhere it does nothing."""

    def __init__(self):
        self._stage = None

    def on_fit_start(self, trainer, pl_module):
        from audioforge import processes

        if trainer.is_global_zero and processes.in_worker() and not processes.in_stage():
            self._stage = processes.Stage(trainer.max_epochs, f"training {type(pl_module).__name__}", "epoch")
            self._stage.__enter__()

    def on_train_epoch_end(self, trainer, pl_module):
        if self._stage is not None:
            self._stage.update(1)

    def teardown(self, trainer, pl_module, stage):
        if self._stage is not None:
            self._stage.__exit__(None, None, None)
            self._stage = None


class StepProgress(pl.Callback):
    """Calls ``report(1)`` after every training step (rank 0 only)."""

    def __init__(self, report: Callable[[int], None]):
        self.report = report

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.is_global_zero:
            self.report(1)


class EpochProgress(pl.Callback):
    """Calls ``report(1)`` after every training epoch (rank 0 only): drives an outer progress bar."""

    def __init__(self, report: Callable[[int], None]):
        self.report = report

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.is_global_zero:
            self.report(1)


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.seconds``."""

    def __enter__(self):
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._t0
        return False
