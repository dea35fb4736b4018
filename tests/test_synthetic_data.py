"""Core behaviour on a synthetic FSDD-layout tree (no data files needed): splits, the unlearn and
distill quick paths through the CLI, tracking, and the registries (a distillation method and an
unlearning operation added by one file each)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from audioforge.cli import main
from tests.commands import runs

UNLEARN_TINY = ["--preset", "quick", "--quiet", "seeds=[0]", "jobs=1", "reuse_base_models=false", "original.epochs=2",
                "gold.epochs=2", "unlearning.phases.0.epochs=1", "unlearning.phases.1.rounds=1",
                "unlearning.phases.2.epochs=1"]
DISTILL_TINY = ["--quiet", "--cpc", "2", "network_kwargs.width=16", "iterations=4", "iterations_per_epoch=2",
                "val_every=1", "validation.epochs=2", "validation.val_every=1", "eval.runs=2", "eval.epochs=2",
                "eval.val_every=1", "reconstruct=false"]


def load_file(path: Path, text: str):
    """Import ``text`` as a module from its own file (a user's new method file)."""
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fsdd_splits_on_a_synthetic_tree(synthetic_fsdd):
    from datamodules.fsdd import FSDDDataModule

    dm = FSDDDataModule(synthetic_fsdd, forget_speakers=["george"], seed=3)
    dm.setup()
    sizes = {s: dm.split_size(s) for s in ("forget", "retain_train", "val", "test", "full_train")}
    assert sizes["forget"] == 60 and sizes["retain_train"] + sizes["val"] + sizes["test"] == 300
    assert sizes["full_train"] == sizes["retain_train"] + 60
    assert set(dm.groups("forget")) == {"george"}
    for split in ("retain_train", "val", "test"):
        assert "george" not in dm.groups(split)
        assert torch.bincount(dm.tensors(split)[1], minlength=10).min() > 0  # stratified: every digit
    parts = [set(dm.splits[s].tolist()) for s in ("forget", "retain_train", "val", "test")]
    assert sum(map(len, parts)) == len(set().union(*parts)) == 360


def test_unlearn_quick_path_and_tracking_on_a_synthetic_tree(synthetic_fsdd, mlflow_store, tmp_path):
    out = tmp_path / "unlearn"
    assert main(["unlearn", *UNLEARN_TINY, "--data", str(synthetic_fsdd), "--output", str(out),
                 f"tracking.store={mlflow_store}", "tracking.experiment=synthetic-unlearn",
                 "methods={ssd: {}, neggrad_plus: {epochs: 1}}", "data.forget_holdout=0.2"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["forgetting"]["gold"]["js_to_gold"]["mean"] == 0.0
    for model in ("original", "gold", "base", "ssd", "neggrad_plus"):
        measures = report["forgetting"][model]
        assert 0 <= measures["probe_auc"]["mean"] <= 1 and 0 <= measures["attack_auc_forget_vs_held_out"]["mean"] <= 1
        assert model == "gold" or measures["js_to_gold"]["mean"] > 0
    assert list(report["table1"]) == ["base", "all_bn", "conv_bn", "ssd", "neggrad_plus"]
    assert report["split_sizes"]["excluded"] == 48  # 60 clips of the speaker, 12 held out
    assert report["timing"]["unlearn_epochs_over_gold_epochs"]["ssd"] == 0  # dampening, no training
    assert (out / "seed-0" / "ssd" / "model.ckpt").is_file()
    found = runs(mlflow_store, "synthetic-unlearn")
    assert [r.info.status for r in found] == ["FINISHED"] * (1 + 1 + 7)  # experiment, seed, base models, 3 + 2
    neggrad = next(r for r in found if r.info.run_name == "neggrad_plus")
    assert "final/excluded/f1" in neggrad.data.metrics and "unlearn/loss" in neggrad.data.metrics
    # a method's name and its hyperparameters are checked before anything runs or is recorded
    assert main(["unlearn", *UNLEARN_TINY, "--data", str(synthetic_fsdd), "--output", str(tmp_path / "bad"),
                 f"tracking.store={mlflow_store}", "tracking.experiment=synthetic-unlearn-bad",
                 "methods={scrubb: {}}"]) == 2
    assert main(["unlearn", *UNLEARN_TINY, "--data", str(synthetic_fsdd), "--output", str(tmp_path / "bad"),
                 f"tracking.store={mlflow_store}", "tracking.experiment=synthetic-unlearn-bad",
                 "methods={scrub: {temprature: 2}}"]) == 2
    assert runs(mlflow_store, "synthetic-unlearn-bad") == []


def test_distill_quick_path_on_a_synthetic_tree(synthetic_fsdd, tmp_path):
    out = tmp_path / "dm"
    assert main(["distill", "--method", "dm", "--data", str(synthetic_fsdd), *DISTILL_TINY, "--output", str(out),
                 "tracking.enabled=false"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert [it for it, _ in report["selection"]["val_history"]] == [0, 2, 4]
    assert torch.load(out / "distilled.pt", weights_only=False)["x"].shape == (20, 3, 20, 20)


def test_datm_with_the_constant_memory_gradient_and_augmented_unroll(synthetic_fsdd, tmp_path):
    """DATM (trajectory matching with a growing start window and an averaged set) through the CLI,
    its unroll augmented and differentiated step by step."""
    out = tmp_path / "datm"
    assert main(["distill", "--method", "datm", "--data", str(synthetic_fsdd), *DISTILL_TINY, "--output", str(out),
                 "tracking.enabled=false", "buffer.experts=1", "buffer.epochs=3", "mtt.syn_steps=3",
                 "mtt.expert_epochs=1", "datm.initial_max_start_epoch=1", "datm.max_start_epoch=2",
                 "datm.expansion_iterations=2", "datm.ema_decay=0.5", "mtt.gradient=constant_memory",
                 "mtt.augment=true", f"data.cache_dir={tmp_path / 'cache'}"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["method"] == "datm" and report["learned_lr"] != 0.01  # the learned learning rate moved
    assert main(["distill", "--data", str(synthetic_fsdd), *DISTILL_TINY, "mtt.gradient=implicit"]) == 2


def test_herding_trains_one_expert_for_its_embedding_and_reuses_it(synthetic_fsdd, tmp_path, monkeypatch):
    """A buffer configured for 10 experts: herding trains the first only, and a second herding
    cell on the same split uses it without training the other nine."""
    monkeypatch.setenv("AUDIOFORGE_CACHE", str(tmp_path / "cache"))
    for cpc in (1, 2):
        assert main(["distill", "--method", "herding", "--cpc", str(cpc), "--data", str(synthetic_fsdd),
                     *DISTILL_TINY[3:], "--quiet", "--output", str(tmp_path / f"h{cpc}"), "tracking.enabled=false",
                     "buffer.experts=10", "buffer.epochs=2"]) == 0
        experts = sorted((tmp_path / "cache" / "buffers").glob("*/expert_*.pt"))
        assert [p.name for p in experts] == ["expert_000.pt"], experts


def test_cli_prints_the_config_and_names_a_bad_key(synthetic_fsdd, capsys):
    assert main(["classify", "--data", str(synthetic_fsdd), "--print-config"]) == 0
    assert "dataset: fsdd" in capsys.readouterr().out
    assert main(["classify", "--data", str(synthetic_fsdd), "fit.epohcs=3"]) == 2
    assert "unknown config key fit.epohcs" in capsys.readouterr().err


TOY_METHOD = '''
import torch

from audioforge.distill.methods import register_learned
from lightning_modules.distillation.base import SyntheticSet


class TowardsClassMeans(SyntheticSet):
    """Moves every synthetic clip towards its class's mean real clip."""

    def __init__(self, syn_x, syn_y, means, seed=0):
        super().__init__(syn_x, syn_y, seed)
        self.register_buffer("means", means)

    def configure_optimizers(self):
        return torch.optim.SGD([self.syn_x], lr=0.2)

    def training_step(self, batch, batch_idx):
        loss = 0.5 * ((self.syn_x - self.means[self.syn_y]) ** 2).sum()
        optimizer = self.optimizers()
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()


@register_learned("toy_means")
def build(cfg, dm, syn_x, syn_y, buffer):
    x, y = dm.tensors(dm.train_split)
    means = torch.stack([x[y == c].mean(0) for c in range(dm.num_classes)])
    return TowardsClassMeans(syn_x, syn_y, means, cfg.seed)
'''


def test_a_distillation_method_is_one_file(synthetic_fsdd, tmp_path, capsys):
    from audioforge.config import load_config
    from audioforge.distill.methods import METHODS
    from audioforge.distill.tables import TableConfig

    assert main(["distill", "--method", "toy_means", "--data", str(synthetic_fsdd), "tracking.enabled=false"]) == 2
    assert "unknown method 'toy_means'" in capsys.readouterr().err
    load_file(tmp_path / "toy_method.py", TOY_METHOD)
    try:
        with pytest.raises(SystemExit):
            main(["distill", "--help"])
        assert "toy_means" in capsys.readouterr().out  # the CLI help reads the registry
        with pytest.raises(SystemExit):
            main(["--help"])
        assert "toy_means" in capsys.readouterr().out  # the command list as well
        assert "toy_means" in load_config(TableConfig, overrides=["methods=[toy_means,random]"]).methods
        out = tmp_path / "toy"
        assert main(["distill", "--method", "toy_means", "--data", str(synthetic_fsdd), *DISTILL_TINY,
                     "--output", str(out), "tracking.enabled=false", "val_every=1000"]) == 0, capsys.readouterr().err
        from audioforge.distill.coresets import random_coreset
        from datamodules import build_datamodule, default_features

        dm = build_datamodule("fsdd", synthetic_fsdd, features=default_features("fsdd", {"kind": "fdmfcc"}))
        dm.setup()
        dm.standardize()
        x, y = dm.tensors(dm.train_split)
        means = torch.stack([x[y == c].mean(0) for c in range(10)])
        start = random_coreset(y, 2, 10, 0)  # the starting set: 2 real clips per class (seed 0)
        last = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]["syn_x"]
        assert ((last - means[y[start]]) ** 2).mean() < 0.5 * ((x[start] - means[y[start]]) ** 2).mean()
        assert json.loads((out / "report.json").read_text())["resources"]["iterations"] == 4
    finally:
        METHODS.pop("toy_means", None)


TOY_OPERATION = '''
import torch

from callbacks.base import EpochCallback
from callbacks.layers import network_of, select
from callbacks.operations import register_operation


class ZeroLayers(EpochCallback):
    """Sets the chosen layers' parameters to zero at the start of each round."""

    def __init__(self, epochs, layers):
        super().__init__(epochs)
        self.layers = list(layers)

    def apply(self, trainer, pl_module, epoch):
        with torch.no_grad():
            for _, module in select(network_of(pl_module), self.layers):
                for p in module.parameters(recurse=False):
                    p.zero_()


@register_operation("zero")
def build(op, round_starts, phase, index, seed):
    return ZeroLayers(round_starts, op.layers)
'''


def test_an_unlearning_operation_is_one_file(synthetic_fsdd, tmp_path, capsys):
    from callbacks.operations import OPERATIONS

    args = ["unlearn", *UNLEARN_TINY, "--data", str(synthetic_fsdd), "tracking.enabled=false",
            "unlearning.schemes={zeroed: [{op: zero, layers: [classifier.5]}]}"]
    assert main([*args, "--output", str(tmp_path / "refused")]) == 2
    assert "unknown operation 'zero'" in capsys.readouterr().err
    load_file(tmp_path / "toy_operation.py", TOY_OPERATION)
    try:
        out = tmp_path / "zeroed"
        assert main([*args, "--output", str(out), "save_checkpoints=true"]) == 0, capsys.readouterr().err
        report = json.loads((out / "report.json").read_text())
        assert list(report["table1"]) == ["zeroed"]
        # the zeroed head was retrained from zero for the rest of the schedule: it moved, from zero
        weights = torch.load(out / "seed-0" / "zeroed" / "model.ckpt", weights_only=False)["state_dict"]
        assert weights["net.classifier.5.weight"].abs().max() > 0
    finally:
        OPERATIONS.pop("zero", None)
