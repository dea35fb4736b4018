"""Matching training trajectories (MTT, Cazenavette et al. 2022) as a bilevel LightningModule.

Parameters: the synthetic features ``syn_x`` (``cpc`` per class) and a learnable synthetic
learning rate ``syn_lr``; the labels are fixed.  Each training step (manual optimization):

1. load a random expert trajectory (one file) and a random start epoch ``t < max_start_epoch``;
2. unroll a student from the expert's ``w_t`` for ``syn_steps`` SGD steps on synthetic
   minibatches, functionally (``torch.func.functional_call`` on a flat parameter vector), keeping
   the graph (``create_graph=True``);
3. loss = ||w_N - w*||^2 / ||w_t - w*||^2 with ``w* = w_{t + expert_epochs}``;
4. backpropagate through the unroll into ``syn_x`` and ``syn_lr`` and step both (SGD, momentum 0.5).

Three ways to get the gradient of that loss (``gradient``), all the same up to float rounding
(tested):

- ``unrolled``: keep the whole unroll's graph (every step's activations and its gradient graph)
  until the backward pass; memory grows linearly with ``syn_steps``.
- ``checkpointed``: keep only each step's inputs and recompute its activations during the
  backward pass (``torch.utils.checkpoint``; 31 instead of 59 MB per extra step at 50 synthetic
  examples, for 1.3-1.5x the time; ``benchmarks/mtt_memory.py``).
- ``constant_memory``: the backward pass one step at a time, as TESLA (Cui et al. 2023) computes
  trajectory matching at scale.  A forward pass without graph keeps each step's weights
  (one parameter vector per step: 1.2 MB for ConvNet on FD-MFCC), its minibatch and its
  augmentation; then, from the last step back, each step is recomputed alone and its vector-
  Jacobian products with the adjoint ``dL/dw_{i+1}`` give its share of the gradients of
  ``syn_x`` and ``syn_lr`` and, through a Hessian-vector product, ``dL/dw_i``.  Activation
  memory is one step's whatever ``syn_steps`` is; the time is about that of ``checkpointed``.

With ``augment`` (a :class:`SiameseAugment`) every student step sees its synthetic minibatch
augmented by one drawn operation, as the experts saw theirs (the reference regime augments
experts, the unroll and evaluation alike).  A non-finite loss raises
:class:`~audioforge.errors.DistillationError` naming the iteration, expert and start epoch; a
learning rate pushed to or below zero is clamped back to ``min_lr`` and counted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from audioforge.errors import DistillationError
from lightning_modules.distillation.augment import SiameseAugment
from lightning_modules.distillation.base import SyntheticSet
from lightning_modules.distillation.expert_buffer import ExpertBuffer
from lightning_modules.distillation.params import FlatParams
from lightning_modules.networks import build_network


GRADIENTS = ("unrolled", "checkpointed", "constant_memory")


class TrajectoryMatching(SyntheticSet):
    def __init__(self, network: str, input_shape: tuple[int, int, int], num_classes: int, syn_x: torch.Tensor,
                 syn_y: torch.Tensor, buffer_dir: str, network_kwargs: dict | None = None, syn_steps: int = 20,
                 expert_epochs: int = 2, max_start_epoch: int = 10, lr_img: float = 100.0, lr_lr: float = 1e-5,
                 lr_init: float = 0.01, batch_syn: int | None = None, min_lr: float = 1e-5,
                 gradient: str = "unrolled", augment: SiameseAugment | None = None, min_start_epoch: int = 0,
                 initial_max_start_epoch: int | None = None, expansion_iterations: int = 1,
                 ema_decay: float | None = None, seed: int = 0):
        super().__init__(syn_x, syn_y, seed)
        if not 0 <= min_start_epoch < (initial_max_start_epoch or max_start_epoch) <= max_start_epoch:
            raise DistillationError(f"need 0 <= min_start_epoch < initial_max_start_epoch <= max_start_epoch (got "
                                    f"{min_start_epoch}, {initial_max_start_epoch}, {max_start_epoch})")
        if expansion_iterations < 1 or (ema_decay is not None and not 0 < ema_decay < 1):
            raise DistillationError(f"need expansion_iterations >= 1 and ema_decay in (0, 1) (got "
                                    f"{expansion_iterations}, {ema_decay})")
        if ema_decay is not None:  # the set selection scores and the run returns: an average of the iterates
            self.register_buffer("syn_x_ema", syn_x.detach().clone())
        if gradient not in GRADIENTS:
            raise DistillationError(f"mtt.gradient must be one of {', '.join(GRADIENTS)}, got {gradient!r}")
        self.save_hyperparameters(ignore=["syn_x", "syn_y", "augment"])
        self.augment = augment
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

    def start_window(self) -> tuple[int, int]:
        """Start epochs drawn now: ``[min_start_epoch, upper)``, the upper bound growing linearly
        from ``initial_max_start_epoch`` to ``max_start_epoch`` over ``expansion_iterations``
        (DATM's difficulty-aligned window: early, easy parts of the trajectories first)."""
        h = self.hparams
        if h.initial_max_start_epoch is None:
            return h.min_start_epoch, h.max_start_epoch
        grown = h.initial_max_start_epoch + int((h.max_start_epoch - h.initial_max_start_epoch)
                                                * self.global_step / h.expansion_iterations)
        return h.min_start_epoch, min(grown, h.max_start_epoch)

    def draw(self) -> tuple[int, int]:
        expert = self.experts[int(torch.randint(len(self.experts), (1,), generator=self.generator))]
        low, high = self.start_window()
        start = int(torch.randint(low, high, (1,), generator=self.generator))
        return expert, start

    def distilled(self) -> dict[str, torch.Tensor]:
        out = super().distilled()
        if self.hparams.ema_decay is not None:
            out["x"] = self.syn_x_ema.detach().cpu().clone()
        return out

    @torch.no_grad()
    def restore(self, best: dict[str, torch.Tensor]) -> None:
        super().restore(best)
        if self.hparams.ema_decay is not None:
            self.syn_x_ema.copy_(best["x"].to(self.syn_x_ema.device))

    def plan(self) -> list[tuple[torch.Tensor, dict | None]]:
        """Each student step's synthetic minibatch (positions in ``syn_x``) and augmentation."""
        n = len(self.syn_x)
        batch = min(self.hparams.batch_syn or n, n)
        everything = torch.arange(n, device=self.device)
        return [(self.sample(everything, batch), self.augment.draw(self.syn_x.shape) if self.augment else None)
                for _ in range(self.hparams.syn_steps)]

    def endpoints(self, trajectory: torch.Tensor, start: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The expert's weights at ``start`` and ``expert_epochs`` later (the student's target)."""
        return trajectory[start].to(self.device), trajectory[start + self.hparams.expert_epochs].to(self.device)

    def matching_loss(self, trajectory: torch.Tensor, start: int) -> torch.Tensor:
        """The loss with the unroll's graph kept (``unrolled``) or recomputed (``checkpointed``)."""
        w0, target = self.endpoints(trajectory, start)
        w = w0.clone().requires_grad_(True)
        for idx, aug in self.plan():
            if self.hparams.gradient == "checkpointed":  # recompute each step's activations in the backward pass
                w = checkpoint(self.student_step, w, idx, aug, self.syn_lr, use_reentrant=False)
            else:
                w = self.student_step(w, idx, aug, self.syn_lr)
        return ((w - target) ** 2).sum() / ((w0 - target) ** 2).sum().clamp_min(1e-12)

    def student_gradient(self, w: torch.Tensor, idx: torch.Tensor, aug: dict | None, create_graph: bool) -> torch.Tensor:
        """The student's loss gradient at flat parameters ``w`` on one synthetic minibatch."""
        x = self.syn_x[idx]
        if aug is not None:
            x = SiameseAugment.apply(x, aug)
        ce = F.cross_entropy(self.flat.call(self.student, w, x), self.syn_y[idx])
        (grad,) = torch.autograd.grad(ce, w, create_graph=create_graph)
        return grad

    def student_step(self, w: torch.Tensor, idx: torch.Tensor, aug: dict | None, lr: torch.Tensor) -> torch.Tensor:
        """One differentiable SGD step of the student from flat parameters ``w``."""
        return w - lr * self.student_gradient(w, idx, aug, create_graph=True)

    def constant_memory_backward(self, trajectory: torch.Tensor, start: int) -> torch.Tensor:
        """The loss, with its gradients added to ``syn_x.grad`` and ``syn_lr.grad`` one step at a
        time (reverse mode through ``w_{i+1} = w_i - lr g_i(w_i, X_i)``):
        ``dL/dX_i = -lr d(a_{i+1} . g_i)/dX_i``, ``dL/dlr = -sum_i a_{i+1} . g_i`` and
        ``a_i = a_{i+1} - lr H_i a_{i+1}`` with ``a_N = dL/dw_N``."""
        w0, target = self.endpoints(trajectory, start)
        lr = self.syn_lr.detach()
        steps, weights, w = self.plan(), [], w0.clone()
        for idx, aug in steps:  # forward: weights only, no graph
            weights.append(w)
            with torch.enable_grad():
                g = self.student_gradient(w.detach().requires_grad_(True), idx, aug, create_graph=False)
            w = (w - lr * g).detach()
        scale = ((w0 - target) ** 2).sum().clamp_min(1e-12)
        loss = ((w - target) ** 2).sum() / scale
        adjoint = 2 * (w - target) / scale
        grad_x, grad_lr = torch.zeros_like(self.syn_x), torch.zeros_like(self.syn_lr)
        for (idx, aug), w_i in zip(reversed(steps), reversed(weights)):
            with torch.enable_grad():
                w_i = w_i.requires_grad_(True)
                g = self.student_gradient(w_i, idx, aug, create_graph=True)
                inner = (adjoint * g).sum()
                hvp, gx = torch.autograd.grad(inner, [w_i, self.syn_x])
            grad_x -= lr * gx
            grad_lr -= inner.detach()
            adjoint = adjoint - lr * hvp
        for p, g in ((self.syn_x, grad_x), (self.syn_lr, grad_lr)):
            p.grad = g if p.grad is None else p.grad + g
        return loss

    def training_step(self, batch, batch_idx):
        expert, start = self.draw()
        self.syn_x.grad = self.syn_lr.grad = None
        if self.hparams.gradient == "constant_memory":
            loss = self.constant_memory_backward(self.buffer.load(expert), start)
        else:
            loss = self.matching_loss(self.buffer.load(expert), start)
        if not torch.isfinite(loss):
            raise DistillationError(f"trajectory-matching loss is {loss.item()} at iteration {self.global_step} "
                                    f"(expert {expert}, start epoch {start}, syn_lr {self.syn_lr.item():.3g}); "
                                    f"lower distill.lr_img or distill.syn_steps")
        if self.hparams.gradient != "constant_memory":
            self.manual_backward(loss)
        opt_x, opt_lr = self.optimizers()
        opt_x.step()
        opt_lr.step()
        with torch.no_grad():
            if self.hparams.ema_decay is not None:
                self.syn_x_ema.mul_(self.hparams.ema_decay).add_(self.syn_x.detach(), alpha=1 - self.hparams.ema_decay)
            if self.syn_lr.item() < self.hparams.min_lr:
                self.syn_lr.fill_(self.hparams.min_lr)
                self.lr_clamps += 1
        self.log_dict({"mtt/loss": loss.detach(), "mtt/syn_lr": self.syn_lr.detach(),
                       "mtt/lr_clamps": float(self.lr_clamps)}, on_step=False, on_epoch=True, batch_size=1)
        return loss
