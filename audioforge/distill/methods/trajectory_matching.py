"""MTT: matching training trajectories (Cazenavette et al., CVPR 2022), as DDFAD uses it."""

from __future__ import annotations

from audioforge.distill.methods import register_learned


@register_learned("mtt", needs_buffer=True)
def build(cfg, dm, syn_x, syn_y, buffer):
    import dataclasses

    from lightning_modules.distillation import TrajectoryMatching
    from lightning_modules.distillation.augment import SiameseAugment

    m = cfg.mtt
    augment = SiameseAugment(**dataclasses.asdict(cfg.augment), seed=cfg.seed) if m.augment else None
    return TrajectoryMatching(cfg.network, dm.input_shape, dm.num_classes, syn_x, syn_y, str(buffer.folder),
                              cfg.network_kwargs, m.syn_steps, m.expert_epochs, m.max_start_epoch, m.lr_img, m.lr_lr,
                              m.lr_init, m.batch_syn, gradient=m.gradient, augment=augment, seed=cfg.seed)
