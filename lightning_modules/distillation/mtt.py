"""Matching training trajectories (MTT, Cazenavette et al. 2022) as a bilevel LightningModule.

Parameters: the synthetic features ``syn_x`` (``cpc`` per class) and a learnable synthetic
learning rate ``syn_lr``; the labels are fixed.  Each training step (manual optimization):

1. load a random expert trajectory (one file) and a random start epoch ``t < max_start_epoch``;
2. unroll a student from the expert's ``w_t`` for ``syn_steps`` SGD steps on synthetic
   minibatches, functionally (``torch.func.functional_call`` on a flat parameter vector), keeping
   the graph (``create_graph=True``);
3. loss = ||w_N - w*||^2 / ||w_t - w*||^2 with ``w* = w_{t + expert_epochs}``;
4. backpropagate through the unroll into ``syn_x`` and ``syn_lr`` and step both (SGD, momentum 0.5).

Memory grows linearly with ``syn_steps``: every step's activations and gradient graph stay alive
until the backward pass.  ``checkpoint_steps=True`` keeps only each step's inputs and recomputes
its activations during the backward pass (``torch.utils.checkpoint``; same gradients, 31 instead
of 59 MB per extra step at 50 synthetic examples, for 1.3-1.5x the time; ``benchmarks/mtt_memory.py``).  A non-finite loss
raises :class:`~audioforge.errors.DistillationError` naming the iteration, expert and start epoch;
a learning rate pushed to or below zero is clamped back to ``min_lr`` and counted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from audioforge.errors import DistillationError
from lightning_modules.distillation.base import SyntheticSet
from lightning_modules.distillation.expert_buffer import ExpertBuffer
from lightning_modules.distillation.params import FlatParams
from lightning_modules.networks import build_network


class TrajectoryMatching(SyntheticSet):
    def __init__(self, network: str, input_shape: tuple[int, int, int], num_classes: int, syn_x: torch.Tensor,
                 syn_y: torch.Tensor, buffer_dir: str, network_kwargs: dict | None = None, syn_steps: int = 20,
                 expert_epochs: int = 2, max_start_epoch: int = 10, lr_img: float = 100.0, lr_lr: float = 1e-5,
                 lr_init: float = 0.01, batch_syn: int | None = None, min_lr: float = 1e-5,
                 checkpoint_steps: bool = False, seed: int = 0):
        super().__init__(syn_x, syn_y, seed)
        self.save_hyperparameters(ignore=["syn_x", "syn_y"])
        self.syn_lr = nn.Parameter(torch.tensor(float(lr_init)))
        self.student = build_network(network, tuple(input_shape), num_classes, **(network_kwargs or {}))
        for p in self.student.parameters():
            p.requires_grad_(False)  # only a template: its weights come from the expert each step
        self.flat = FlatParams(self.student)
        self.buffer = ExpertBuffer(buffer_dir)
        meta = self.buffer.check_compatible(network, input_shape, num_classes, self.flat.size)
        if expert_epochs < 1 or max_start_epoch < 1 or max_start_epoch + expert_epochs > meta["epochs"]:
            raise DistillationError(f"need max_start_epoch + expert_epochs <= the buffer's {meta['epochs']} epochs "
                                    f"(got {max_start_epoch} + {expert_epochs})")
        self.experts = self.buffer.available()
        self.lr_clamps = 0

    def configure_optimizers(self):
        return [torch.optim.SGD([self.syn_x], lr=self.hparams.lr_img, momentum=0.5),
                torch.optim.SGD([self.syn_lr], lr=self.hparams.lr_lr, momentum=0.5)]

    def draw(self) -> tuple[int, int]:
        expert = self.experts[int(torch.randint(len(self.experts), (1,), generator=self.generator))]
        start = int(torch.randint(self.hparams.max_start_epoch, (1,), generator=self.generator))
        return expert, start

    def matching_loss(self, trajectory: torch.Tensor, start: int) -> torch.Tensor:
        h = self.hparams
        w0 = trajectory[start].to(self.device)
        target = trajectory[start + h.expert_epochs].to(self.device)
        w = w0.clone().requires_grad_(True)
        n = len(self.syn_x)
        batch = min(h.batch_syn or n, n)
        everything = torch.arange(n, device=self.device)
        for _ in range(h.syn_steps):
            idx = self.sample(everything, batch)
            if h.checkpoint_steps:  # recompute each step's activations in the backward pass
                w = checkpoint(self.student_step, w, self.syn_x[idx], self.syn_y[idx], self.syn_lr, use_reentrant=False)
            else:
                w = self.student_step(w, self.syn_x[idx], self.syn_y[idx], self.syn_lr)
        return ((w - target) ** 2).sum() / ((w0 - target) ** 2).sum().clamp_min(1e-12)

    def student_step(self, w: torch.Tensor, x: torch.Tensor, y: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:
        """One differentiable SGD step of the student from flat parameters ``w``."""
        ce = F.cross_entropy(self.flat.call(self.student, w, x), y)
        (grad,) = torch.autograd.grad(ce, w, create_graph=True)
        return w - lr * grad

    def training_step(self, batch, batch_idx):
        expert, start = self.draw()
        loss = self.matching_loss(self.buffer.load(expert), start)
        if not torch.isfinite(loss):
            raise DistillationError(f"trajectory-matching loss is {loss.item()} at iteration {self.global_step} "
                                    f"(expert {expert}, start epoch {start}, syn_lr {self.syn_lr.item():.3g}); "
                                    f"lower distill.lr_img or distill.syn_steps")
        opt_x, opt_lr = self.optimizers()
        opt_x.zero_grad(set_to_none=True)
        opt_lr.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        opt_x.step()
        opt_lr.step()
        with torch.no_grad():
            if self.syn_lr.item() < self.hparams.min_lr:
                self.syn_lr.fill_(self.hparams.min_lr)
                self.lr_clamps += 1
        self.log_dict({"mtt/loss": loss.detach(), "mtt/syn_lr": self.syn_lr.detach(),
                       "mtt/lr_clamps": float(self.lr_clamps)}, on_step=False, on_epoch=True, batch_size=1)
        return loss
