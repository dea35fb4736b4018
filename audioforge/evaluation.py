"""Scoring trained classifiers: metrics per split, confusion matrices, membership inference,
output divergence and linear probes."""

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


def attack_features(scores: SplitScores) -> np.ndarray:
    """Per clip: the true class's probability, the prediction's entropy and the log of the loss
    (what black-box membership attacks read from a classifier's outputs)."""
    logp = F.log_softmax(scores.logits.double(), dim=1)
    p_true = logp.gather(1, scores.labels[:, None])[:, 0].exp()
    entropy = -(logp.exp() * logp).sum(1)
    loss = np.log(scores.losses.astype(np.float64) + 1e-12)
    return np.column_stack([p_true.numpy(), entropy.numpy(), loss])


def membership_inference(members: SplitScores, non_members: SplitScores, target: SplitScores,
                         target_non_members: SplitScores | None = None, seed: int = 0) -> dict[str, float]:
    """A membership attack: standardised logistic regression on :func:`attack_features`, trained
    to tell ``members`` (training clips) from ``non_members`` (held-out clips; equal numbers drawn
    from both), then applied to ``target`` (the forget set).

    - ``attack_accuracy``: 5-fold accuracy on members vs non-members (0.5 = no signal);
    - ``target_member_rate``: the share of ``target`` it calls members (SalUn's "MIA efficacy" is
      one minus this);
    - ``target_auc`` (with ``target_non_members``: clips of the target's distribution no model
      trained on): the attack's AUC at telling ``target`` from them.  On the original model,
      which trained on the target, an AUC above 0.5 is the attack's power; an unlearned model
      should come out where the gold model does."""
    from sklearn.metrics import roc_auc_score

    cv, attack = balanced_logistic(attack_features(members), attack_features(non_members), seed, "accuracy",
                                   fit=True)
    target_features = attack_features(target)
    out = {
        "attack_accuracy": cv,
        "target_member_rate": float(attack.predict(target_features).mean()),
        "target_member_probability": float(attack.predict_proba(target_features)[:, 1].mean()),
    }
    if target_non_members is not None:
        held = attack_features(target_non_members)
        truth = np.r_[np.ones(len(target_features)), np.zeros(len(held))]
        score = attack.predict_proba(np.concatenate([target_features, held]))[:, 1]
        out["target_auc"] = float(roc_auc_score(truth, score))
        # the plainest attack, for comparison: lower loss = member
        out["target_loss_auc"] = float(roc_auc_score(truth, -np.r_[target.losses, target_non_members.losses]))
    return out


def js_divergence(logits_p: torch.Tensor, logits_q: torch.Tensor) -> float:
    """Mean over clips of the Jensen-Shannon divergence (bits, in [0, 1]) between the softmax outputs."""
    p, q = F.softmax(logits_p.double(), dim=1), F.softmax(logits_q.double(), dim=1)
    m = (p + q) / 2

    def kl(a, b):
        return torch.where(a > 0, a * (a.clamp_min(1e-300).log2() - b.clamp_min(1e-300).log2()), 0.0).sum(1)

    return float(((kl(p, m) + kl(q, m)) / 2).mean())


@torch.no_grad()
def penultimate_features(net: torch.nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """The input of the network's last linear layer (what the classifier head separates)."""
    last = [m for m in net.modules() if isinstance(m, torch.nn.Linear)][-1]
    captured: list[torch.Tensor] = []
    handle = last.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0].detach().cpu()))
    try:
        predict_logits(net, x, batch_size)
    finally:
        handle.remove()
    return torch.cat(captured)


def probe_auc(group: torch.Tensor, others: torch.Tensor, seed: int = 0) -> float:
    """5-fold AUC of a linear probe (standardised logistic regression) telling ``group`` features
    from ``others`` (equal numbers drawn from both): how recognisable the group is."""
    return balanced_logistic(group.numpy(), others.numpy(), seed, "roc_auc")[0]


def balanced_logistic(positive: np.ndarray, negative: np.ndarray, seed: int, scoring: str, fit: bool = False):
    """A standardised logistic regression telling ``positive`` rows from ``negative`` ones, on equal
    numbers drawn from both: its mean 5-fold ``scoring``, and (with ``fit``) the model fitted on
    every drawn row, else None."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    n = min(len(positive), len(negative))
    features = np.concatenate([positive[rng.choice(len(positive), n, replace=False)],
                               negative[rng.choice(len(negative), n, replace=False)]])
    labels = np.r_[np.ones(n), np.zeros(n)]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    score = float(cross_val_score(model, features, labels, cv=5, scoring=scoring).mean())
    return score, (model.fit(features, labels) if fit else None)
