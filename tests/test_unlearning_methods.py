"""Each registered unlearning method changes a model the way it claims, on a tiny synthetic task."""

from __future__ import annotations

import copy

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F

from audioforge.errors import ConfigError
from audioforge.unlearning.methods import METHODS, MethodInputs, method, method_params
from datamodules.loader import TensorBatchLoader
from lightning_modules.networks import build_network

CLASSES = 4


def task(seed: int = 0):
    """Clips of 4 classes (class means apart, noise on top); the last 40 are the forget set."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(200) % CLASSES
    means = torch.randn(CLASSES, 1, 8, 8, generator=g)
    x = means[y] + 0.8 * torch.randn(200, 1, 8, 8, generator=g)
    return (x[:160], y[:160]), (x[160:], y[160:])


@pytest.fixture(scope="module")
def original():
    """A small CNN trained on retain and forget alike (it fits the forget clips)."""
    torch.manual_seed(0)
    (xr, yr), (xf, yf) = task()
    net = build_network("unlearning_cnn", (1, 8, 8), CLASSES, channels=(8, 16), conv_dropout=(0.0, 0.0),
                        hidden=32, head_dropout=0.0)
    x, y = torch.cat([xr, xf]), torch.cat([yr, yf])
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(25):
        for i in range(0, len(x), 20):
            opt.zero_grad()
            F.cross_entropy(net(x[i:i + 20]), y[i:i + 20]).backward()
            opt.step()
    net.eval()
    return net


def run(name: str, original, **params):
    """Apply method ``name`` to a copy of ``original``; returns (unlearned net, plan)."""
    retain, forget = task()
    net = copy.deepcopy(original).train()
    inputs = MethodInputs(net, copy.deepcopy(original), forget, retain, CLASSES, seed=0, channels_last=False)
    plan = method(name).build(inputs, method_params(name, params, f"methods.{name}"))
    if plan.module is not None:
        x, y = retain if plan.train_split == "retain_train" else forget
        pl.seed_everything(1, verbose=False)
        trainer = pl.Trainer(max_epochs=plan.epochs, accelerator="cpu", devices=1, logger=False,
                             enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
        trainer.fit(plan.module, TensorBatchLoader(x, y, plan.batch_size, shuffle=True, seed=0))
    return net.eval(), plan


@torch.no_grad()
def loss_acc(net, xy):
    logits = net(xy[0])
    return float(F.cross_entropy(logits, xy[1])), float((logits.argmax(1) == xy[1]).float().mean())


def test_the_original_fits_the_forget_set(original):
    assert loss_acc(original, task()[1])[1] > 0.9


def test_gradient_ascent_raises_the_forget_loss(original):
    net, plan = run("gradient_ascent", original, lr=5e-3, epochs=10)
    assert plan.train_split == "forget"
    assert loss_acc(net, task()[1])[0] > loss_acc(original, task()[1])[0] + 0.5


def test_random_labels_move_forget_predictions_off_the_true_labels(original):
    net, _ = run("random_label", original, epochs=10)
    retain, forget = task()
    assert loss_acc(net, forget)[1] < loss_acc(original, forget)[1] - 0.3
    assert loss_acc(net, retain)[1] > 0.8  # the retained clips stay learned


def test_neggrad_plus_raises_forget_loss_more_than_retain_loss(original):
    net, _ = run("neggrad_plus", original, alpha=0.5, epochs=3)
    retain, forget = task()
    forget_rise = loss_acc(net, forget)[0] - loss_acc(original, forget)[0]
    retain_rise = loss_acc(net, retain)[0] - loss_acc(original, retain)[0]
    assert forget_rise > 0.2 and forget_rise > 5 * max(retain_rise, 0.01)


def test_l1_sparse_shrinks_the_weights_more_than_finetuning(original):
    def l1(net):
        return float(sum(p.abs().sum() for p in net.parameters()))

    sparse, _ = run("l1_sparse", original, alpha=0.01)
    plain, _ = run("finetune", original)
    assert l1(sparse) < 0.9 * l1(plain)


def test_salun_mask_has_its_density_and_only_masked_weights_move(original):
    net, plan = run("salun", original, density=0.25)
    mask = plan.module.grad_mask
    total = sum(m.numel() for m in mask.values())
    assert abs(sum(float(m.sum()) for m in mask.values()) / total - 0.25) < 1 / total + 1e-9
    before = dict(original.named_parameters())
    moved = 0
    for name, p in net.named_parameters():
        outside = mask[name] == 0
        assert torch.equal(p[outside], before[name][outside]), name
        moved += int((p[~outside] != before[name][~outside]).sum())
    assert moved > 0.5 * total * 0.25


def test_ssd_changes_only_parameters_with_high_forget_importance(original):
    from audioforge.unlearning.methods.ssd import importances

    retain, forget = task()
    full = (torch.cat([retain[0], forget[0]]), torch.cat([retain[1], forget[1]]))
    f_imp = importances(copy.deepcopy(original), *forget, 64)
    d_imp = importances(copy.deepcopy(original), *full, 64)
    net, plan = run("ssd", original, alpha=2.0)
    assert plan.module is None
    changed = 0
    for name, p in net.named_parameters():
        selected = f_imp[name] > 2.0 * d_imp[name]
        before = dict(original.named_parameters())[name]
        assert torch.equal(p[~selected], before[~selected]), name
        assert torch.all(p[selected].abs() <= before[selected].abs()), name  # dampened, never grown
        changed += int((p != before).sum())
    assert changed > 0


def test_scrub_student_leaves_the_teacher_on_forget_and_stays_close_on_retain(original):
    from audioforge.unlearning.methods.scrub import distill_kl

    net, plan = run("scrub", original, epochs=3, max_steps=2, lr=1e-3)
    retain, forget = task()
    with torch.no_grad():
        kl_forget = float(distill_kl(net(forget[0]), original(forget[0]), 2.0))
        kl_retain = float(distill_kl(net(retain[0]), original(retain[0]), 2.0))
    assert len(plan.module.max_losses) == 2
    assert kl_forget > 3 * kl_retain and kl_forget > 0.02


def test_every_registered_method_builds_with_its_defaults(original):
    for name in METHODS:
        net, _ = run(name, original, **({} if name == "ssd" else {"epochs": 1}))
        assert all(torch.isfinite(p).all() for p in net.parameters()), name


def test_bad_method_names_and_params_are_refused():
    with pytest.raises(ConfigError, match="unknown unlearning method 'forgetall'"):
        method("forgetall")
    with pytest.raises(ConfigError, match="unknown config key methods.salun.densty"):
        method_params("salun", {"densty": 0.5}, "methods.salun")
    with pytest.raises(ConfigError, match="density must be in"):
        method_params("salun", {"density": 1.5}, "methods.salun")


def test_the_unlearning_cnn_takes_the_batchnorm_momentum():
    """Keras's momentum 0.99 is PyTorch's 0.01: the BatchNorm experiment sets it per model."""
    net = build_network("unlearning_cnn", (1, 20, 20), 10, bn_momentum=0.01)
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert len(norms) == 4 and {m.momentum for m in norms} == {0.01}
