"""Herding (Welling, ICML 2009; as iCaRL and EEIL use it): per class, greedily the clips whose
running mean embedding stays closest to the class mean, in a network trained on the real split."""

from __future__ import annotations

from audioforge.distill.methods import register_coreset


@register_coreset("herding")
def select(cfg, dm):
    from audioforge.distill.coresets import herding_coreset
    from audioforge.distill.experiment import embedding_network

    x, y = dm.tensors(dm.train_split)
    return herding_coreset(x, y, cfg.cpc, dm.num_classes, embedding_network(cfg, dm))
