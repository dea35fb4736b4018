"""The measures of forgetting show their power on cases with known answers before they are trusted."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from audioforge.evaluation import js_divergence, membership_inference, penultimate_features, probe_auc, score_split
from lightning_modules.networks import build_network


def test_the_attack_has_power_on_an_overfit_model_and_none_on_unseen_clips():
    """A network memorises random labels of 120 clips: the attack, trained on 60 members against 60
    non-members, tells the other 60 members from 60 further non-members (AUC near 1); on clips
    no model trained on, split at random into two halves, it finds nothing (AUC near 0.5)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(360, 1, 8, 8, generator=g)
    y = torch.randint(0, 4, (360,), generator=g)
    torch.manual_seed(0)
    net = build_network("unlearning_cnn", (1, 8, 8), 4, channels=(8, 16), conv_dropout=(0.0, 0.0), hidden=64,
                        head_dropout=0.0)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(150):
        for i in range(0, 120, 30):
            opt.zero_grad()
            F.cross_entropy(net(x[i:i + 30]), y[i:i + 30]).backward()
            opt.step()

    def scores(a, b):
        return score_split(net, x[a:b], y[a:b], 4)

    members, target = scores(0, 60), scores(60, 120)
    non_members, held_out = scores(120, 180), scores(180, 240)
    strong = membership_inference(members, non_members, target, held_out, seed=0)
    assert strong["target_auc"] > 0.9 and strong["target_member_rate"] > 0.8
    blind = membership_inference(members, non_members, scores(240, 300), scores(300, 360), seed=0)
    assert 0.3 < blind["target_auc"] < 0.7


def test_js_divergence_is_zero_for_equal_outputs_and_one_bit_for_disjoint_certainty():
    logits = torch.randn(50, 10)
    assert js_divergence(logits, logits.clone()) == 0.0
    a = torch.full((5, 2), -1e4)
    a[:, 0] = 1e4
    assert abs(js_divergence(a, a.flip(1)) - 1.0) < 1e-9


def test_probe_finds_a_separable_group_and_not_a_random_one():
    g = torch.Generator().manual_seed(0)
    others = torch.randn(200, 16, generator=g)
    shifted = torch.randn(100, 16, generator=g) + 1.0
    same = torch.randn(100, 16, generator=g)
    assert probe_auc(shifted, others) > 0.95
    assert 0.35 < probe_auc(same, others) < 0.65


def test_penultimate_features_are_the_last_linear_layers_input():
    net = build_network("unlearning_cnn", (1, 8, 8), 4, channels=(8, 16), conv_dropout=(0.0, 0.0), hidden=32,
                        head_dropout=0.0).eval()
    x = torch.randn(7, 1, 8, 8)
    feats = penultimate_features(net, x)
    assert feats.shape == (7, 32)
    last = net.classifier[-1]
    assert torch.allclose(last(feats), net(x), atol=1e-5)
