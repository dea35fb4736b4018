"""What the privacy report measures.

- :func:`loss_auc`: the plainest membership attack (Yeom et al., CSF 2018): a lower loss means a
  member; its ROC AUC at telling members from non-members (0.5 = no signal).
- :func:`nearest`: distances of query examples to a reference set in the (standardised) feature
  space, nearest and second nearest, and which reference is nearest.  A synthetic example much
  closer to one real clip than to any other (a small nearest / second-nearest ratio, well below
  that of unseen real clips) points at that clip.
"""

from __future__ import annotations

import numpy as np
import torch


def loss_auc(member_losses: np.ndarray, non_member_losses: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    truth = np.r_[np.ones(len(member_losses)), np.zeros(len(non_member_losses))]
    return float(roc_auc_score(truth, -np.r_[member_losses, non_member_losses]))


def nearest(query: torch.Tensor, reference: torch.Tensor, exclude_self: bool = False) -> dict[str, np.ndarray]:
    """Per query row: ``distance`` to the nearest reference row (Euclidean, flattened), ``second``
    (to the next nearest) and ``index`` of the nearest.  ``exclude_self``: query and reference are
    the same rows, and a row is not its own neighbour."""
    q, r = query.flatten(1).double(), reference.flatten(1).double()
    d = torch.cdist(q, r)
    if exclude_self:
        d.fill_diagonal_(float("inf"))
    two = d.topk(2, dim=1, largest=False)
    return {"distance": two.values[:, 0].numpy(), "second": two.values[:, 1].numpy(),
            "index": two.indices[:, 0].numpy()}


def summary(values: np.ndarray) -> dict[str, float]:
    v = np.asarray(values, dtype=float)
    return {"median": float(np.median(v)), "q10": float(np.quantile(v, 0.1)), "q90": float(np.quantile(v, 0.9))}
