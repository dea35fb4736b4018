"""DC (Zhao et al., ICLR 2021) and DSA, DC with differentiable siamese augmentation (Zhao and
Bilen, ICML 2021): per-class gradient matching."""

from __future__ import annotations

import dataclasses

from audioforge.distill.methods import register_learned


def gradient_matching(cfg, dm, syn_x, syn_y, augment):
    from lightning_modules.distillation import GradientMatching

    x, y = dm.tensors(dm.train_split)
    g = cfg.dc
    return GradientMatching(cfg.network, dm.input_shape, dm.num_classes, syn_x, syn_y, x, y, cfg.network_kwargs,
                            *g.loops(cfg.cpc), g.lr_img, g.lr_net, g.batch_real, augment, cfg.seed)


@register_learned("dc")
def build_dc(cfg, dm, syn_x, syn_y, buffer):
    return gradient_matching(cfg, dm, syn_x, syn_y, None)


@register_learned("dsa")
def build_dsa(cfg, dm, syn_x, syn_y, buffer):
    from lightning_modules.distillation.augment import SiameseAugment

    return gradient_matching(cfg, dm, syn_x, syn_y, SiameseAugment(**dataclasses.asdict(cfg.augment), seed=cfg.seed))
