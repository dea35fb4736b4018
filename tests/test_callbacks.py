"""The unlearning callbacks, each inside a real Trainer.fit on a small model."""

from __future__ import annotations

import copy

import lightning.pytorch as pl
import pytest
import torch

from audioforge.errors import ConfigError
from audioforge.training import TrainerConfig, make_trainer
from callbacks import (BatchNormReset, LayerReset, OpConfig, PhaseConfig, PhaseTimer, TrainableLayers,
                       WeightPerturbation, build_callbacks)
from callbacks.layers import select
from datamodules.loader import TensorBatchLoader
from lightning_modules.classifier import ClassifierModule


def make_model(seed: int = 0) -> ClassifierModule:
    torch.manual_seed(seed)
    return ClassifierModule("unlearning_cnn", (1, 20, 20), 10, lr=1e-2)


def loader(n: int = 96, seed: int = 0) -> TensorBatchLoader:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 20, 20, generator=gen)
    y = torch.randint(0, 10, (n,), generator=gen)
    return TensorBatchLoader(x, y, 16, shuffle=True, seed=seed)


class Probe(pl.Callback):
    """Snapshots the network at every epoch start (after earlier callbacks acted) and end."""

    def __init__(self):
        self.start, self.end = {}, {}

    def on_train_epoch_start(self, trainer, pl_module):
        self.start[trainer.current_epoch] = copy.deepcopy(pl_module.net.state_dict())

    def on_train_epoch_end(self, trainer, pl_module):
        self.end[trainer.current_epoch] = copy.deepcopy(pl_module.net.state_dict())


def fit(model, callbacks, epochs):
    probe = Probe()
    trainer = make_trainer(TrainerConfig(), epochs, callbacks=[*callbacks, probe], validate=False)
    trainer.fit(model, train_dataloaders=loader())
    return probe, trainer


def keys_of(net, selectors):
    return {f"{name}.{k}" for name, m in select(net, selectors)
            for k, _ in list(m.named_parameters(recurse=False)) + list(m.named_buffers(recurse=False))}


def test_selectors_name_layer_groups():
    net = make_model().net
    assert [n for n, _ in select(net, ["linear"])] == ["classifier.1", "classifier.5"]
    assert [n for n, _ in select(net, ["conv"])] == ["features.0", "features.5", "features.10"]
    assert [n for n, _ in select(net, ["conv_bn"])] == ["features.1", "features.6", "features.11"]
    assert [n for n, _ in select(net, ["linear_bn"])] == ["classifier.2"]
    assert len(select(net, ["batchnorm"])) == 4
    assert [n for n, _ in select(net, ["classifier.*"])] == ["classifier.1", "classifier.2", "classifier.5"]
    with pytest.raises(ConfigError, match="'lstm' matches no layer"):
        select(net, ["lstm"])


def test_layer_reset_restores_recorded_initial_weights_exactly():
    model = make_model()
    initial = copy.deepcopy(model.initial_state)
    reset = LayerReset(epochs=[2], layers=["linear"])
    probe, trainer = fit(model, [reset], epochs=3)
    linear = keys_of(model.net, ["linear"])
    trained = probe.end[1]
    assert any(not torch.equal(trained[k], initial[k]) for k in linear)
    for k in linear:
        assert torch.equal(probe.start[2][k], initial[k]), k
    for k in set(trained) - linear:  # the rest is as training left it
        assert torch.equal(probe.start[2][k], trained[k]), k


def test_reset_forgets_optimizer_state_of_reset_parameters():
    model = make_model()
    trainer = make_trainer(TrainerConfig(), 1, validate=False)
    trainer.fit(model, train_dataloaders=loader())
    opt = trainer.optimizers[0]
    linear_params = [p for _, m in select(model.net, ["linear"]) for p in m.parameters(recurse=False)]
    assert all(p in opt.state for p in linear_params)
    LayerReset([0], ["linear"]).apply(trainer, model, 0)
    assert not any(p in opt.state for p in linear_params)
    conv_params = [p for _, m in select(model.net, ["conv"]) for p in m.parameters(recurse=False)]
    assert all(p in opt.state for p in conv_params)


def test_perturbation_touches_only_chosen_layers_at_the_set_scale():
    model = make_model()
    scale = 0.08
    perturb = WeightPerturbation(epochs=[1], layers=["conv", "linear"], scale=scale, count=2, seed=7,
                                 train_only_perturbed=True)
    probe, _ = fit(model, [perturb], epochs=2)
    (chosen,) = perturb.history
    assert len(chosen) == 2
    before, after = probe.end[0], probe.start[1]
    chosen_keys = {f"{n}.{k}" for n in chosen for k in ("weight", "bias")}
    for key in before:
        diff = after[key].float() - before[key].float()
        if key in chosen_keys:
            assert diff.abs().max() > 0, key
            if diff.numel() >= 1000:
                assert abs(diff.std().item() - scale) < 0.1 * scale, (key, diff.std())
        else:
            assert torch.equal(diff, torch.zeros_like(diff)), key
    # during the round only the perturbed layers trained: everything else, BN statistics included, stayed
    for key in before:
        if key not in chosen_keys:
            assert torch.equal(probe.end[1][key], after[key]), key


def test_same_seed_same_perturbation_other_round_other_draw():
    def draw(seed, round_epochs):
        model = make_model()
        cb = WeightPerturbation(epochs=round_epochs, layers=["conv", "linear"], scale=0.08, seed=seed, phase=1)
        net = model.net
        before = copy.deepcopy(net.state_dict())
        cb.apply(type("T", (), {"optimizers": []})(), model, round_epochs[0])
        return cb.history[0], {k: net.state_dict()[k] - before[k] for k in before if before[k].is_floating_point()}

    names_a, delta_a = draw(3, [0, 1])
    names_b, delta_b = draw(3, [0, 1])
    assert names_a == names_b
    assert all(torch.equal(delta_a[k], delta_b[k]) for k in delta_a)
    cb = WeightPerturbation(epochs=list(range(8)), layers=["conv", "linear"], seed=3, phase=1)
    draws = {tuple(cb.draw([f"l{i}" for i in range(5)], r)[0]) for r in range(8)}
    assert len(draws) > 1  # count and choice vary between rounds
    assert {len(d) for d in draws} != {5}


def test_batchnorm_reset_restores_initial_statistics():
    model = make_model()
    initial = copy.deepcopy(model.initial_state)
    probe, _ = fit(model, [BatchNormReset(epochs=[1], layers=["conv_bn"])], epochs=2)
    trained, reset = probe.end[0], probe.start[1]
    conv_bn = keys_of(model.net, ["conv_bn"])
    assert any(not torch.equal(trained[k], initial[k]) for k in conv_bn if "running_mean" in k)
    for key in conv_bn:
        assert torch.equal(reset[key], initial[key]), key
    for key in keys_of(model.net, ["linear_bn"]):  # the head's BatchNorm is not in conv_bn scope
        assert torch.equal(reset[key], trained[key]), key


def test_frozen_statistics_stay_at_their_reset_values_while_the_affine_parameters_train():
    model = make_model()
    initial = copy.deepcopy(model.initial_state)
    probe, _ = fit(model, [BatchNormReset(epochs=[1], layers=["conv_bn"], freeze_stats=True)], epochs=3)
    conv_bn = keys_of(model.net, ["conv_bn"])
    for key in conv_bn:
        if "running" in key:  # two epochs of batches after the reset have not moved them
            assert torch.equal(probe.end[2][key], initial[key]), key
    assert any(not torch.equal(probe.end[2][k], initial[k]) for k in conv_bn if k.endswith("weight"))
    moved = [k for k in keys_of(model.net, ["linear_bn"]) if "running_mean" in k]  # outside the scope: re-estimated
    assert moved and all(not torch.equal(probe.end[2][k], probe.start[1][k]) for k in moved)
    with pytest.raises(ConfigError, match="freeze_stats applies to op bn_reset only"):
        OpConfig("reset", ["linear"], freeze_stats=True).validate("op")


def test_all_bn_reset_covers_every_batchnorm():
    model = make_model()
    initial = copy.deepcopy(model.initial_state)
    probe, _ = fit(model, [BatchNormReset(epochs=[1], layers=["batchnorm"])], epochs=2)
    for key in keys_of(model.net, ["batchnorm"]):
        assert torch.equal(probe.start[1][key], initial[key]), key


def test_bn_reset_refuses_non_batchnorm_layers():
    model = make_model()
    with pytest.raises(ConfigError, match="non-BatchNorm"):
        BatchNormReset([0], ["linear"]).apply(type("T", (), {"optimizers": []})(), model, 0)


def test_frozen_layers_unchanged_after_a_phase():
    model = make_model()
    probe, _ = fit(model, [TrainableLayers(epochs=[1, 2], layers=["linear"])], epochs=4)
    linear = keys_of(model.net, ["linear"])
    start, end = probe.start[1], probe.end[2]
    for key in start:
        if key in linear:
            assert not torch.equal(start[key], end[key]), key
        else:  # conv, BN affine and BN running statistics all frozen
            assert torch.equal(start[key], end[key]), key
    # unfrozen again afterwards
    assert any(not torch.equal(probe.start[3][k], probe.end[3][k]) for k in keys_of(model.net, ["conv"]))


def test_schedule_compiles_phases_into_callbacks_and_times_them():
    phases = [PhaseConfig("reset", epochs=2, ops=[OpConfig("reset", ["linear"])]),
              PhaseConfig("perturb", epochs=1, rounds=3, ops=[OpConfig("perturb", ["conv", "linear"], scale=0.05)]),
              PhaseConfig("finetune", epochs=1)]
    callbacks = build_callbacks(phases, [OpConfig("bn_reset", ["conv_bn"])], seed=0)
    kinds = [type(c).__name__ for c in callbacks]
    assert kinds == ["LayerReset", "BatchNormReset", "WeightPerturbation", "PhaseTimer"]
    assert callbacks[0].epochs == [0] and callbacks[1].epochs == [0] and callbacks[2].epochs == [2, 3, 4]
    model = make_model()
    fit(model, callbacks, epochs=6)
    timer = callbacks[-1]
    assert isinstance(timer, PhaseTimer) and all(v > 0 for v in timer.seconds.values())
    assert len(callbacks[2].history) == 3
