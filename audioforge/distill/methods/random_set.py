"""Random: ``cpc`` real training clips per class, drawn uniformly (the baseline every table reports)."""

from __future__ import annotations

from audioforge.distill.methods import register_coreset


@register_coreset("random")
def select(cfg, dm):
    from audioforge.distill.coresets import random_coreset

    _, y = dm.tensors(dm.train_split)
    return random_coreset(y, cfg.cpc, dm.num_classes, cfg.seed)
