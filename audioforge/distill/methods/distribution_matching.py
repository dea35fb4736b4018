"""DM: distribution matching of mean embeddings of random networks (Zhao and Bilen, WACV 2023),
with siamese augmentation."""

from __future__ import annotations

import dataclasses

from audioforge.distill.methods import register_learned


@register_learned("dm")
def build(cfg, dm, syn_x, syn_y, buffer):
    from lightning_modules.distillation import DistributionMatching
    from lightning_modules.distillation.augment import SiameseAugment

    x, y = dm.tensors(dm.train_split)
    augment = SiameseAugment(**dataclasses.asdict(cfg.augment), seed=cfg.seed)
    return DistributionMatching(cfg.network, dm.input_shape, dm.num_classes, syn_x, syn_y, x, y, cfg.network_kwargs,
                                cfg.dm.lr_img, cfg.dm.batch_real, augment, cfg.seed)
