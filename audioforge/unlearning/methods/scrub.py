"""scrub: a student that moves away from the original (teacher) on the forget set and stays
close to it on the retained data.

Kurmanji et al., "Towards Unbounded Machine Unlearning", NeurIPS 2023.  Student and teacher
start as the original model; the teacher stays frozen (eval mode).  Every epoch while
``epoch < max_steps``: one *max* pass over the forget set, maximising ``KL(teacher || student)``
at temperature ``T``; then every epoch one *min* pass over the retain set minimising
``gamma * CE + alpha * KL``.  Settings of the reference's small-scale runs: T = 2, alpha = 0.5,
gamma = 1, max steps 3 of 10 epochs, Adam lr 5e-4; here 2 max steps of 5 epochs and no weight
decay (the reference uses 0.1, with its own schedule of decays).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from audioforge.errors import ConfigError
from audioforge.unlearning.methods import LEARNING_RATE, MethodInputs, Plan, TrainingParams, register_method
from lightning_modules.unlearning import UnlearningModule


@dataclass
class ScrubParams(TrainingParams):
    lr: float = 5e-4
    max_steps: int = 2          # epochs that begin with a max pass over the forget set
    temperature: float = 2.0
    alpha: float = 0.5          # weight of the KL term in the min step
    gamma: float = 1.0          # weight of the cross-entropy in the min step
    forget_batch_size: int = 16

    def validate(self, path: str) -> None:
        super().validate(path)
        if self.max_steps < 0 or self.temperature <= 0 or self.forget_batch_size < 1:
            raise ConfigError(f"{path}: max_steps must be >= 0, temperature > 0 and forget_batch_size >= 1")


def distill_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """``KL(softmax(teacher / T) || softmax(student / T)) * T^2``, mean over the batch."""
    log_p = F.log_softmax(student / temperature, dim=1)
    q = F.softmax(teacher / temperature, dim=1)
    return F.kl_div(log_p, q, reduction="batchmean") * temperature ** 2


class Scrub(UnlearningModule):
    def __init__(self, *args, teacher: torch.nn.Module, forget: tuple[torch.Tensor, torch.Tensor], p: ScrubParams,
                 **kwargs):
        super().__init__(*args, **kwargs)
        # kept out of the module tree: frozen, always in eval mode, not part of the checkpoint
        object.__setattr__(self, "teacher", teacher.requires_grad_(False).eval())
        self.forget = forget
        self.p = p
        self.max_losses: list[float] = []  # mean max-step loss per max pass (negative KL)

    def teacher_logits(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.teacher(x.contiguous(memory_format=self.memory_format))

    def loss(self, batch, other):
        x, y = batch
        logits = self(x)
        return self.p.gamma * F.cross_entropy(logits, y) + self.p.alpha * distill_kl(logits, self.teacher_logits(x),
                                                                                     self.p.temperature)

    def on_fit_start(self):
        self.teacher.to(self.device)

    def on_train_epoch_start(self):
        super().on_train_epoch_start()
        if self.current_epoch >= self.p.max_steps:
            return
        x, _ = self.forget
        order = torch.randperm(len(x), generator=self._generator)
        total, steps = 0.0, 0
        for i in range(0, len(x), self.p.forget_batch_size):
            xb = x[order[i:i + self.p.forget_batch_size]].to(self.device)
            loss = -distill_kl(self(xb), self.teacher_logits(xb), self.p.temperature)
            self.step(loss)
            total, steps = total + float(loss.detach()), steps + 1
        self.max_losses.append(total / max(1, steps))


@register_method("scrub", ScrubParams, search={
    "lr": LEARNING_RATE,
    "epochs": {"type": "int", "low": 1, "high": 10},
    "max_steps": {"type": "int", "low": 0, "high": 5},
})
def build(inputs: MethodInputs, p: ScrubParams) -> Plan:
    teacher = copy.deepcopy(inputs.original)
    module = Scrub(inputs.net, inputs.num_classes, p.lr, seed=inputs.seed, channels_last=inputs.channels_last,
                   teacher=teacher, forget=inputs.forget, p=p)
    return Plan(module, "retain_train", p.epochs, p.batch_size)
