"""A classifier for one step of class-incremental learning, trained EEIL-style.

EEIL (Castro et al., *End-to-End Incremental Learning*, ECCV 2018) fine-tunes the previous step's
network on the rehearsal memory plus the new classes' clips with a *cross-distilled* loss:
cross-entropy over the classes seen so far plus, for each earlier model kept as a teacher,
a distillation term on the logits of the classes it knew,

    L_D = - sum_c softmax(t_c / T) * log softmax(s_c / T)     over those classes c, T = 2,

so the network keeps answering the old classes the way it did before the step.  The network's
output layer holds every class of the dataset from the start; the classes not seen yet are masked
out of every forward pass (their logits are ``-inf``), so they take no part in the loss, the
prediction or the validation metrics, as if the layer grew with the classes.

The teachers are frozen copies kept outside the module's parameters (the optimizer never sees
them) and moved to the module's device when fitting starts.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lightning_modules.classifier import ClassifierModule


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """EEIL's (and LwF's) distillation term: the cross-entropy of the student's softened
    distribution against the teacher's, averaged over the batch."""
    target = F.softmax(teacher / temperature, dim=1)
    return -(target * F.log_softmax(student / temperature, dim=1)).sum(1).mean()


class IncrementalClassifier(ClassifierModule):
    def __init__(self, network: str, input_shape: tuple[int, int, int], num_classes: int, seen: list[int],
                 teachers: list[tuple[torch.nn.Module, list[int]]] = (), temperature: float = 2.0,
                 **kwargs: Any):
        """``seen``: the classes seen so far (the others are masked out); ``teachers``: frozen
        networks, each with the classes whose logits it distils; ``kwargs`` go to
        :class:`ClassifierModule`."""
        super().__init__(network, input_shape, num_classes, **kwargs)
        self.save_hyperparameters(ignore=["teachers"])  # networks are state, not hyperparameters
        if not seen or len(set(seen)) != len(seen) or not all(0 <= c < num_classes for c in seen):
            raise ValueError(f"seen must be distinct classes in 0..{num_classes - 1}, got {seen}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        mask = torch.full((num_classes,), float("-inf"))
        mask[torch.as_tensor(seen)] = 0.0
        self.register_buffer("class_mask", mask, persistent=False)
        self.teachers = []
        for net, classes in teachers:
            if not set(classes) <= set(seen):
                raise ValueError(f"a teacher distils classes {classes} outside the seen classes {seen}")
            net = net.eval().requires_grad_(False)
            self.teachers.append((net, torch.as_tensor(classes)))
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + self.class_mask

    def on_fit_start(self):
        self.teachers = [(net.to(self.device), classes.to(self.device)) for net, classes in self.teachers]

    def training_loss(self, logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(logits, y)
        for net, classes in self.teachers:
            with torch.no_grad():
                target = net(x)[:, classes]
            loss = loss + distillation_loss(logits[:, classes], target, self.temperature)
        return loss
