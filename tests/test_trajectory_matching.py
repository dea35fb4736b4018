"""Expert buffers and trajectory matching on a small, fixed problem (well-separated classes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from audioforge.distill.experts import train_experts
from audioforge.errors import DataError, DistillationError
from lightning_modules.distillation import TrajectoryMatching
from lightning_modules.distillation.expert_buffer import ExpertBuffer

SHAPE = (3, 8, 8)
NET = {"width": 8, "depth": 2}


def clustered(n_per_class: int = 40, classes: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, *SHAPE, generator=g)
    x = torch.cat([centres[c] + 0.8 * torch.randn(n_per_class, *SHAPE, generator=g) for c in range(classes)])
    return x, torch.arange(classes).repeat_interleave(n_per_class)


@pytest.fixture(scope="module")
def buffer(tmp_path_factory):
    x, y = clustered()
    buf = ExpertBuffer(tmp_path_factory.mktemp("buffer"))
    trained = train_experts(buf, "convnet", x, y, 3, experts=2, epochs=4, lr=0.05, batch_size=32, network_kwargs=NET)
    assert trained == [0, 1]
    return buf


def module(buffer, **kwargs):
    x, y = clustered(seed=1)
    idx = torch.cat([torch.arange(c * 40, c * 40 + 2) for c in range(3)])  # 2 per class, from real samples
    args = dict(syn_steps=5, expert_epochs=2, max_start_epoch=2, lr_img=10.0, lr_lr=1e-4, lr_init=0.05, seed=0)
    return TrajectoryMatching("convnet", SHAPE, 3, x[idx], y[idx], str(buffer.folder), network_kwargs=NET,
                              **(args | kwargs))


def test_buffer_layout_resume_and_mismatch(buffer):
    meta = buffer.meta()
    assert meta["epochs"] == 4 and buffer.available() == [0, 1]
    traj = buffer.load(0)
    assert traj.shape[0] == 5 and torch.isfinite(traj).all()
    assert not torch.equal(traj[0], traj[-1])
    x, y = clustered()
    assert train_experts(buffer, "convnet", x, y, 3, experts=3, epochs=4, lr=0.05, batch_size=32,
                         network_kwargs=NET) == [2]  # only the missing expert
    with pytest.raises(DataError, match="made with other settings"):
        train_experts(buffer, "convnet", x, y, 3, experts=3, epochs=5, lr=0.05, batch_size=32, network_kwargs=NET)
    with pytest.raises(DataError, match="input_shape"):
        TrajectoryMatching("convnet", (3, 8, 9), 3, torch.zeros(3, 3, 8, 9), torch.arange(3), str(buffer.folder),
                           network_kwargs=NET)
    with pytest.raises(DataError, match="no expert buffer"):
        TrajectoryMatching("convnet", SHAPE, 3, torch.zeros(3, *SHAPE), torch.arange(3), str(buffer.folder / "none"),
                           network_kwargs=NET)


HOLDER = """
import fcntl, os, sys, time, torch
from lightning_modules.distillation.expert_buffer import ExpertBuffer
buffer, finish = ExpertBuffer(sys.argv[1]), sys.argv[2]
lock = open(buffer.folder / "expert_000.lock", "a")
fcntl.flock(lock, fcntl.LOCK_EX)
print("held", flush=True)
while not buffer.path(2).is_file():  # the other process has trained every expert it could take
    time.sleep(0.02)
if finish == "write":
    buffer.save(0, torch.full((5, 3), 7.0))
os._exit(0)  # dies holding the lock, which the system releases
"""


@pytest.mark.parametrize("finish", ["write", "die"])
def test_two_processes_filling_one_buffer_never_train_an_expert_twice(tmp_path, finish):
    """Another process holds expert 0: this one trains 1 and 2, then waits for 0 and takes it
    only when the holder died without writing it."""
    folder = tmp_path / "buffer"
    folder.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), finish], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[1])
    try:
        assert holder.stdout.readline().strip() == "held"
        x, y = clustered()
        buf = ExpertBuffer(folder)
        trained = train_experts(buf, "convnet", x, y, 3, experts=3, epochs=4, lr=0.05, batch_size=32, network_kwargs=NET)
    finally:
        holder.kill()
        holder.wait()
    assert buf.available() == [0, 1, 2]
    if finish == "write":
        assert trained == [1, 2] and torch.equal(buf.load(0), torch.full((5, 3), 7.0))
    else:
        assert trained == [1, 2, 0] and buf.load(0).shape == buf.load(1).shape


def test_matching_loss_goes_down_on_a_fixed_expert_and_gradients_reach_features_and_lr(buffer):
    m = module(buffer)
    trajectory = buffer.load(0)
    opt_x, opt_lr = [o for o in (torch.optim.SGD([m.syn_x], lr=10.0), torch.optim.SGD([m.syn_lr], lr=1e-4))]
    losses = []
    for step in range(12):
        torch.manual_seed(0)
        m.generator.manual_seed(0)  # the same minibatches each time: only the synthetic data changes
        loss = m.matching_loss(trajectory, start=0)
        opt_x.zero_grad()
        opt_lr.zero_grad()
        loss.backward()
        if step == 0:
            assert m.syn_x.grad is not None and m.syn_x.grad.abs().sum() > 0
            assert m.syn_lr.grad is not None and m.syn_lr.grad.abs() > 0
        opt_x.step()
        opt_lr.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses


def test_nan_in_the_unroll_is_a_clear_error(buffer):
    m = module(buffer)
    with torch.no_grad():
        m.syn_x[0, 0, 0, 0] = float("nan")
    with pytest.raises(DistillationError, match="loss is nan at iteration 0"):
        m.training_step(None, 0)


def test_start_window_must_fit_the_buffer(buffer):
    with pytest.raises(DistillationError, match="max_start_epoch"):
        module(buffer, max_start_epoch=3, expert_epochs=2)


@pytest.mark.parametrize("augmented", [False, True])
def test_the_three_gradients_agree(buffer, augmented):
    """Checkpointed and constant-memory (step-by-step reverse) gradients equal the unrolled one."""
    from lightning_modules.distillation.augment import SiameseAugment

    grads = {}
    for gradient in ("unrolled", "checkpointed", "constant_memory"):
        m = module(buffer, gradient=gradient, batch_syn=4, augment=SiameseAugment(seed=3) if augmented else None)
        m.generator.manual_seed(0)
        if gradient == "constant_memory":
            loss = m.constant_memory_backward(buffer.load(1), start=1)
        else:
            loss = m.matching_loss(buffer.load(1), start=1)
            loss.backward()
        grads[gradient] = (loss.item(), m.syn_x.grad.clone(), m.syn_lr.grad.clone())
    l0, x0, r0 = grads["unrolled"]
    assert x0.abs().sum() > 0 and r0.abs() > 0
    for gradient in ("checkpointed", "constant_memory"):
        l1, x1, r1 = grads[gradient]
        assert l0 == pytest.approx(l1, rel=1e-5), gradient
        assert torch.allclose(x0, x1, rtol=1e-4, atol=1e-6 * float(x0.abs().max())), gradient
        assert torch.allclose(r0, r1, rtol=1e-4), gradient


def test_dropping_the_hessian_terms_would_change_the_gradient(buffer):
    """The test above has power: the first-order shortcut (every step's share taken against
    dL/dw_N, the Hessian-vector products left out) gives a measurably different gradient."""
    m = module(buffer, gradient="constant_memory", batch_syn=4)
    m.generator.manual_seed(0)
    m.constant_memory_backward(buffer.load(1), start=1)
    exact = m.syn_x.grad.clone()
    m.syn_x.grad = None
    m.syn_lr.grad = None
    m.generator.manual_seed(0)
    trajectory, lr = buffer.load(1), m.syn_lr.detach()
    w0, target = m.endpoints(trajectory, 1)
    steps, w, weights = m.plan(), w0.clone(), []
    for idx, aug in steps:
        weights.append(w)
        w = (w - lr * m.student_gradient(w.clone().requires_grad_(True), idx, aug, False)).detach()
    adjoint = 2 * (w - target) / ((w0 - target) ** 2).sum()
    shortcut = torch.zeros_like(m.syn_x)
    for (idx, aug), w_i in zip(steps, weights):
        w_i = w_i.requires_grad_(True)
        g = m.student_gradient(w_i, idx, aug, True)
        shortcut -= lr * torch.autograd.grad((adjoint * g).sum(), m.syn_x)[0]
    assert (exact - shortcut).norm() > 1e-3 * exact.norm()


def test_an_unknown_gradient_is_refused(buffer):
    with pytest.raises(DistillationError, match="mtt.gradient must be one of"):
        module(buffer, gradient="implicit")


def test_datm_window_grows_and_the_set_is_an_average_of_its_iterates(buffer, monkeypatch):
    """DATM's start epochs come from [min, upper) with upper growing to max_start_epoch; with
    ema_decay the set that validation scores (``distilled``) is the moving average, and putting
    back a chosen set restores both."""
    m = module(buffer, max_start_epoch=2, min_start_epoch=0, initial_max_start_epoch=1, expansion_iterations=10,
               ema_decay=0.5)
    steps = iter([0, 0, 10, 30])
    monkeypatch.setattr(type(m), "global_step", property(lambda self: self._step))
    m._step = next(steps)
    assert m.start_window() == (0, 1) and {m.draw()[1] for _ in range(20)} == {0}
    m._step = next(steps)
    m._step = next(steps)
    assert m.start_window() == (0, 2)
    m._step = next(steps)
    assert m.start_window() == (0, 2)  # capped at max_start_epoch
    start = m.syn_x.detach().clone()
    with torch.no_grad():  # one step's update, then the average the module keeps after it
        m.syn_x.add_(1.0)
        m.syn_x_ema.mul_(0.5).add_(m.syn_x, alpha=0.5)
    assert torch.allclose(m.distilled()["x"], start + 0.5, atol=1e-6)
    assert not torch.allclose(m.distilled()["x"], m.syn_x)
    m.restore({"x": start, "lr": torch.tensor(0.02)})
    assert torch.equal(m.distilled()["x"], start) and torch.equal(m.syn_x.detach(), start)
    with pytest.raises(DistillationError, match="min_start_epoch < initial_max_start_epoch"):
        module(buffer, max_start_epoch=2, min_start_epoch=1, initial_max_start_epoch=1)


def test_datm_trains_through_lightning_and_keeps_its_average(buffer, tmp_path):
    from audioforge.training import TrainerConfig, make_trainer
    from lightning_modules.distillation import steps_loader

    m = module(buffer, max_start_epoch=2, initial_max_start_epoch=1, expansion_iterations=2, ema_decay=0.9)
    before = m.syn_x.detach().clone()
    make_trainer(TrainerConfig(), 1, False, [], validate=False).fit(m, steps_loader(4))
    ema, current = m.distilled()["x"], m.syn_x.detach()
    assert not torch.equal(current, before)
    # after 4 updates the average still weighs the start by 0.9^4 = 0.66
    assert (ema - before).norm() < (current - before).norm()
