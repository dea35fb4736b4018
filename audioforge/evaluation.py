"""Scoring trained classifiers: metrics per split, confusion matrices, membership inference."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import multiclass_confusion_matrix

from lightning_modules.classifier import classification_metrics, predict_logits


@dataclass
class SplitScores:
    metrics: dict[str, float]       # acc, precision, recall, f1 (macro)
    confusion: np.ndarray           # (classes, classes), rows = true class
    logits: torch.Tensor
    labels: torch.Tensor

    @property
    def losses(self) -> np.ndarray:
        return F.cross_entropy(self.logits, self.labels, reduction="none").numpy()


def score_split(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> SplitScores:
    logits = predict_logits(model, x)
    metrics = classification_metrics(num_classes)(logits, y)
    confusion = multiclass_confusion_matrix(logits, y, num_classes).numpy()
    return SplitScores({k: float(v) for k, v in metrics.items()}, confusion, logits, y)


def membership_inference(members: SplitScores, non_members: SplitScores, target: SplitScores,
                         seed: int = 0) -> dict[str, float]:
    """A loss-threshold style attack: logistic regression on per-sample log-loss, trained to tell
    ``members`` (training data) from ``non_members`` (held-out data, equal numbers drawn from
    both), then applied to ``target`` (the forget set).

    Returns the attack's 5-fold accuracy on members vs non-members (0.5 = no signal) and
    ``target_member_rate``, the share of the target it calls members: an unlearned model should
    sit near the gold model's rate, the original model (which trained on the target) above it."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    rng = np.random.default_rng(seed)
    m_loss, n_loss = members.losses, non_members.losses
    n = min(len(m_loss), len(n_loss))
    m_loss = rng.choice(m_loss, n, replace=False)
    n_loss = rng.choice(n_loss, n, replace=False)
    features = np.log(np.concatenate([m_loss, n_loss]) + 1e-12)[:, None]
    labels = np.r_[np.ones(n), np.zeros(n)]
    attack = LogisticRegression()
    cv = cross_val_score(attack, features, labels, cv=5, scoring="accuracy")
    attack.fit(features, labels)
    target_features = np.log(target.losses + 1e-12)[:, None]
    return {
        "attack_accuracy": float(cv.mean()),
        "target_member_rate": float(attack.predict(target_features).mean()),
        "target_member_probability": float(attack.predict_proba(target_features)[:, 1].mean()),
    }
