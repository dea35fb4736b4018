"""DATM: difficulty-aligned trajectory matching (Guo et al., ICLR 2024), with hard labels.

MTT's unroll and loss (``mtt.*``: syn_steps, expert_epochs, lr_img, gradient, ...), with two
changes from the reference: the start epoch is drawn from a window whose upper bound grows from
``datm.initial_max_start_epoch`` to ``datm.max_start_epoch`` over ``datm.expansion_iterations``
(early, easy stretches of the experts first), and the synthetic set that validation scores and
the run returns is an exponential moving average of its iterates (``datm.ema_decay``, as FTD
introduced).  DATM's learned soft labels are not used: labels stay hard, as in the other methods."""

from __future__ import annotations

import dataclasses

from audioforge.distill.methods import register_learned


@register_learned("datm", needs_buffer=True)
def build(cfg, dm, syn_x, syn_y, buffer):
    from lightning_modules.distillation import TrajectoryMatching
    from lightning_modules.distillation.augment import SiameseAugment

    m, d = cfg.mtt, cfg.datm
    augment = SiameseAugment(**dataclasses.asdict(cfg.augment), seed=cfg.seed) if m.augment else None
    return TrajectoryMatching(cfg.network, dm.input_shape, dm.num_classes, syn_x, syn_y, str(buffer.folder),
                              cfg.network_kwargs, m.syn_steps, m.expert_epochs, d.max_start_epoch, m.lr_img, m.lr_lr,
                              m.lr_init, m.batch_syn, gradient=m.gradient, augment=augment,
                              min_start_epoch=d.min_start_epoch, initial_max_start_epoch=d.initial_max_start_epoch,
                              expansion_iterations=d.expansion_iterations, ema_decay=d.ema_decay, seed=cfg.seed)
