"""Training expert trajectories (``audioforge buffer``): networks trained with SGD on the real
training split, one parameter snapshot per epoch, stored in an
:class:`~lightning_modules.distillation.expert_buffer.ExpertBuffer`."""

from __future__ import annotations

import lightning.pytorch as pl
import torch

from callbacks.trajectory_recorder import TrajectoryRecorder
from lightning_modules.distillation.expert_buffer import ExpertBuffer


def train_experts(buffer: ExpertBuffer, network: str, x: torch.Tensor, y: torch.Tensor, num_classes: int,
                  experts: int, epochs: int, lr: float, batch_size: int = 256, seed: int = 0,
                  network_kwargs: dict | None = None, meta_extra: dict | None = None, trainer_cfg=None,
                  on_expert=None, augment: dict | None = None) -> list[int]:
    """Train the experts missing from ``buffer`` (SGD through :class:`ClassifierModule`); returns
    the indices trained now.  ``on_expert(index, trajectory, seconds)`` runs after each;
    ``augment`` (SiameseAugment options) augments every batch.  Processes filling one buffer at
    once split its experts (:meth:`ExpertBuffer.claim`)."""
    meta = {"network": network, "network_kwargs": network_kwargs or {}, "input_shape": list(x.shape[1:]),
            "num_classes": num_classes, "epochs": epochs, "lr": lr, "batch_size": batch_size, **(meta_extra or {})}
    buffer.start(meta)
    done, trained = set(buffer.available()), []
    todo = [index for index in range(experts) if index not in done]
    # first the experts no other process is training, then wait for the rest (and train any whose
    # holder died without writing it)
    for wait in (False, True):
        held = []
        for index in todo:
            with buffer.claim(index, wait) as mine:
                if mine is None:
                    held.append(index)
                elif mine:
                    trajectory, seconds = train_expert(buffer, index, network, x, y, num_classes, epochs, lr,
                                                       batch_size, seed, network_kwargs, trainer_cfg, augment)
                    trained.append(index)
                    if on_expert is not None:
                        on_expert(index, trajectory, seconds)
        todo = held
    return trained


def train_expert(buffer: ExpertBuffer, index: int, network: str, x: torch.Tensor, y: torch.Tensor, num_classes: int,
                 epochs: int, lr: float, batch_size: int, seed: int, network_kwargs: dict | None, trainer_cfg,
                 augment: dict | None) -> tuple[torch.Tensor, float]:
    """Train expert ``index`` and write it; its trajectory and seconds."""
    import time

    from audioforge.training import TrainerConfig, make_trainer
    from datamodules.loader import TensorBatchLoader
    from lightning_modules.classifier import ClassifierModule

    pl.seed_everything(seed * 10_007 + index, verbose=False)
    model = ClassifierModule(network, tuple(x.shape[1:]), num_classes, lr=lr, optimizer="sgd",
                             network_kwargs=network_kwargs, channels_last=False, augment=augment,
                             seed=seed * 10_007 + index)
    recorder = TrajectoryRecorder()
    trainer = make_trainer(trainer_cfg or TrainerConfig(), epochs, False, [recorder], validate=False)
    started = time.perf_counter()
    trainer.fit(model, TensorBatchLoader(x, y, batch_size, shuffle=True, seed=seed * 10_007 + index))
    trajectory = torch.stack(recorder.snapshots)
    buffer.save(index, trajectory)
    return trajectory, time.perf_counter() - started
