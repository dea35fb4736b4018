"""The per-example epsilon estimator and the forgetting-quality score, on distributions with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from audioforge.errors import ConfigError
from audioforge.unlearning.likelihood_ratio import attack as lira_attack
from audioforge.unlearning.likelihood_ratio import scores as lira_scores
from audioforge.unlearning.forgetting import (example_epsilons, example_scores, forgetting_quality, logit_margin,
                                              margin_distance, max_epsilon, worst_score)


def test_identical_outputs_score_best_and_disjoint_ones_worst():
    rng = np.random.default_rng(0)
    gold = rng.normal(size=(32, 50))
    same = forgetting_quality(gold, gold.copy())
    assert same["forgetting_quality"] == 1.0 and same["epsilon_median"] == 0.0
    for shift in (100.0, -100.0):  # above gold's outputs or below them: an attacker flips its rule
        apart = forgetting_quality(gold, gold + shift)
        assert apart["separable_share"] == 1.0 and apart["epsilon_median"] == pytest.approx(max_epsilon(32))
        assert apart["forgetting_quality"] == apart["worst_possible"] == worst_score(32) == 2 / 2 ** 7


def test_the_score_falls_as_the_unlearned_distribution_moves_away():
    rng = np.random.default_rng(1)
    gold = rng.normal(size=(32, 400))
    for sign in (1, -1):
        scores = [forgetting_quality(gold, rng.normal(loc=sign * shift, size=(32, 400)))["forgetting_quality"]
                  for shift in (0.0, 0.5, 1.0, 2.0, 4.0)]
        assert all(a > b for a, b in zip(scores, scores[1:])), scores
    # two samples of one distribution: high, but below identical outputs (the estimate's own noise)
    assert 0.3 < scores[0] < 1.0


def test_one_threshold_gives_the_textbook_bound():
    """Gold all at 0, unlearned: one of 4 at 0, three at 1.  At the threshold 0.5 no gold output is
    above (FPR 0/4) and one unlearned is below (FNR 1/4); smoothed, 1/6 and 2/6.  The bound
    ``(1 - delta - FNR) / FPR`` is the largest of all thresholds."""
    gold = np.zeros((4, 1))
    unlearned = np.array([[0.0], [1.0], [1.0], [1.0]])
    eps = example_epsilons(gold, unlearned, delta=0.01)
    assert eps[0] == pytest.approx(np.log((0.99 - 2 / 6) / (1 / 6)))
    assert example_scores(eps)[0] == 2 / 2 ** (1 + np.floor(eps[0] / 0.5))


def test_scores_halve_per_half_unit_of_epsilon():
    assert example_scores(np.array([0.0, 0.49, 0.5, 1.2])).tolist() == [1.0, 1.0, 0.5, 0.25]


def test_logit_margin_is_true_class_minus_best_other():
    logits = np.array([[[2.0, 1.0, 0.5], [0.0, 3.0, 1.0]]])  # one model, two examples
    assert logit_margin(logits, np.array([0, 2])).tolist() == [[1.0, -2.0]]


def test_too_few_models_or_mismatched_examples_are_refused():
    with pytest.raises(ConfigError, match="at least 4 gold and 4 unlearned models, got 3 and 32"):
        forgetting_quality(np.zeros((3, 5)), np.zeros((32, 5)))
    with pytest.raises(ValueError, match="same examples"):
        forgetting_quality(np.zeros((8, 5)), np.zeros((8, 6)))


# --- the per-example likelihood-ratio attack (audioforge/unlearning/likelihood_ratio.py) ---

def test_likelihood_ratio_attack_is_at_chance_on_one_distribution_and_certain_on_separated_ones():
    rng = np.random.default_rng(2)
    same = lira_attack(rng.normal(size=(16, 200)), rng.normal(size=(16, 200)))
    assert abs(same["example_auc"] - 0.5) < 0.05 and 0.2 < same["model_auc"] < 0.8
    assert same["tpr_at_1pct_fpr"] < 0.05
    apart = lira_attack(rng.normal(loc=3.0, size=(16, 200)), rng.normal(size=(16, 200)))
    assert apart["example_auc"] > 0.95 and apart["model_auc"] == 1.0 and apart["tpr_at_1pct_fpr"] > 0.5


def test_likelihood_ratio_attack_gains_power_with_the_shift_and_uses_per_example_means():
    """Each example has its own mean, far apart from the others': a global threshold on the
    output could not tell the sides, the per-example fit can."""
    rng = np.random.default_rng(3)
    centres = rng.normal(scale=20.0, size=300)
    gold = centres + rng.normal(size=(12, 300))
    aucs = [lira_attack(centres + shift + rng.normal(size=(12, 300)), gold)["example_auc"]
            for shift in (0.25, 0.5, 1.0, 2.0)]
    assert all(a < b for a, b in zip(aucs, aucs[1:])), aucs
    assert aucs[-1] > 0.85


def test_likelihood_ratio_leaves_the_target_out():
    """A target fitted into its own side's Gaussian would score as that side even with no signal;
    left out, a model equal to one side's mean of the others gets no pull from itself."""
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(4, 50)), rng.normal(size=(4, 50))
    sa, sb = lira_scores(a, b)
    mean_a_rest = a[1:].mean(0)
    mean_b = b.mean(0)
    assert np.all((sa[0] > 0) == (np.abs(a[0] - mean_a_rest) < np.abs(a[0] - mean_b)))
    with pytest.raises(ConfigError, match="at least 3 models per side"):
        lira_attack(a[:2], b)


def test_margin_distance_is_0_at_gold_1_at_the_original_and_linear_between():
    rng = np.random.default_rng(0)
    gold = rng.normal(0.0, 1.0, 300)
    original = rng.normal(6.0, 2.0, 300)  # confident on the clips it trained on
    assert margin_distance(rng.permutation(gold), gold, original) == 0.0  # the order of the examples is not read
    assert margin_distance(original, gold, original) == pytest.approx(1.0)
    halfway = (np.sort(gold) + np.sort(original)) / 2  # each quantile halfway: half the transport
    assert margin_distance(halfway, gold, original) == pytest.approx(0.5)
    # margins pushed below gold's are as far from it as margins above (random labels overshoot)
    assert margin_distance(gold - 3.0, gold, original) == pytest.approx(margin_distance(gold + 3.0, gold, original))
    with pytest.raises(ValueError, match="same forget examples"):
        margin_distance(gold[:10], gold, original)

