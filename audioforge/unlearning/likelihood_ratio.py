"""A per-example likelihood-ratio attack from many models (LiRA: Carlini et al., "Membership
Inference Attacks From First Principles", IEEE S&P 2022; its unlearning form U-LiRA: Hayes et al.,
"Inexact Unlearning Needs More Careful Evaluations to Avoid a False Sense of Privacy", 2024).

There are ``N_a`` models of one kind (trained on the forget set: the originals; or unlearned by a
method) and ``N_b`` gold models (never trained on it), and for each a scalar per forget example
(the logit margin).  The attacker sees one *target* model and asks, per example and over all
examples, "is this an ``a`` model or a gold one?".  For each target it fits, **leaving the target
out**, a Gaussian per example to each side's other models and scores the target's output by the
log likelihood ratio ``log N(x; mu_a, s) - log N(x; mu_b, s)``.

The variant implemented here:

- one standard deviation ``s`` per example, pooled over both sides (the fixed-variance LiRA that
  Carlini et al. recommend when there are few shadow models; with it the ratio is linear in ``x``),
  floored at ``1e-3`` of the example's pooled spread plus ``1e-6``;
- **per-example AUC**: every (target model, example) pair is one score; the AUC of ``a`` pairs
  against gold pairs, and the true-positive rate at 1% false positives (LiRA's headline number);
- **per-model AUC**: a target's scores summed over examples, the AUC of ``a`` targets against
  gold targets (the U-LiRA question: can an unlearned model be told from a retrained one?).

On the originals against gold, the AUCs are the attack's **power**: how well it tells a model that
trained on the forget set from one that did not.  On a method against gold, 0.5 is perfect
unlearning, and a value near the originals' means the method left the forget set's trace.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from audioforge.errors import ConfigError

MIN_MODELS = 3  # per side: the leave-one-out fit needs at least two others


def scores(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-out log likelihood ratios ``(N_a, examples)`` and ``(N_b, examples)``: every
    model's outputs scored against Gaussians fitted to the other models of both sides."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"outputs must be (models, examples) arrays over the same examples, got {a.shape} "
                         f"and {b.shape}")
    if min(len(a), len(b)) < MIN_MODELS:
        raise ConfigError(f"the likelihood-ratio attack needs at least {MIN_MODELS} models per side, got "
                          f"{len(a)} and {len(b)}")
    sum_a, sum_b = a.sum(0), b.sum(0)
    sq_a, sq_b = (a ** 2).sum(0), (b ** 2).sum(0)
    spread = np.concatenate([a, b]).std(0)

    def ratio(x: np.ndarray, own_a: bool) -> np.ndarray:
        na, nb = len(a) - own_a, len(b) - (not own_a)
        mean_a = (sum_a - x * own_a) / na
        mean_b = (sum_b - x * (not own_a)) / nb
        # pooled within-side variance of the remaining models
        ss_a = (sq_a - x ** 2 * own_a) - na * mean_a ** 2
        ss_b = (sq_b - x ** 2 * (not own_a)) - nb * mean_b ** 2
        var = np.maximum((ss_a + ss_b) / max(na + nb - 2, 1), 0.0)
        s = np.sqrt(var) + 1e-3 * spread + 1e-6
        return ((x - mean_b) ** 2 - (x - mean_a) ** 2) / (2 * s ** 2)

    return (np.stack([ratio(x, True) for x in a]), np.stack([ratio(x, False) for x in b]))


def attack(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Per-example AUC, TPR at 1% FPR and per-model AUC of telling ``a`` models from gold ``b``."""
    sa, sb = scores(a, b)
    pairs = np.concatenate([sa.ravel(), sb.ravel()])
    truth = np.concatenate([np.ones(sa.size), np.zeros(sb.size)])
    curve_fpr, curve_tpr, _ = roc_curve(truth, pairs)
    per_model = np.concatenate([sa.sum(1), sb.sum(1)])
    model_truth = np.concatenate([np.ones(len(sa)), np.zeros(len(sb))])
    return {"example_auc": float(roc_auc_score(truth, pairs)),
            "tpr_at_1pct_fpr": float(np.interp(0.01, curve_fpr, curve_tpr)),
            "model_auc": float(roc_auc_score(model_truth, per_model)),
            "models": int(min(len(a), len(b))), "examples": int(sa.shape[1])}
