"""Distillation pipeline: coresets, baselines, validation-only selection, resume, reconstruction,
and the CLI's errors, on a small real FSDD tree."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from audioforge.cli import main
from audioforge.distill.coresets import herding_coreset, herding_order, random_coreset
from audioforge.errors import ConfigError

from tests.commands import REPO

TINY = ["network_kwargs.width=16", "buffer.experts=1", "buffer.epochs=3", "buffer.batch_size=64",
        "mtt.syn_steps=2", "mtt.max_start_epoch=1", "mtt.expert_epochs=1", "mtt.batch_syn=10",
        "validation.epochs=4", "validation.val_every=2", "eval.runs=2", "eval.epochs=4", "eval.val_every=2",
        "iterations_per_epoch=2", "val_every=1"]


def test_herding_follows_the_running_class_mean():
    e = torch.tensor([[0.0], [10.0], [-9.0], [1.0], [4.0]])  # mean 1.2
    order = herding_order(e, 3)
    assert order[0] == 3                     # 1.0 is nearest the mean
    # then the point that keeps (1 + e_i) / 2 nearest 1.2: e_i = 1.4 wanted, 0.0 (idx 0) beats 4.0
    assert order[1] == 0
    # then (1 + 0 + e_i) / 3 nearest 1.2: e_i = 2.6 wanted -> 4.0
    assert order[2] == 4
    x = torch.cat([e, e + 100]).view(10, 1, 1, 1)
    y = torch.tensor([0] * 5 + [1] * 5)
    assert herding_coreset(x, y, 1, 2).tolist() == [3, 8]


def test_random_coresets_are_class_balanced_and_checked():
    y = torch.tensor([0] * 30 + [1] * 12 + [2] * 7)
    idx = random_coreset(y, 5, 3, seed=1)
    assert torch.bincount(y[idx]).tolist() == [5, 5, 5] and len(set(idx.tolist())) == 15
    assert not torch.equal(idx, random_coreset(y, 5, 3, seed=2))
    with pytest.raises(ConfigError, match="smallest class's size \\(7 clips of class 2"):
        random_coreset(y, 8, 3, seed=0)


def test_siamese_augmentation_shares_parameters_and_is_differentiable():
    from lightning_modules.distillation.augment import SiameseAugment

    aug = SiameseAugment(seed=0)
    a = torch.randn(4, 3, 20, 20, requires_grad=True)
    for _ in range(8):
        out_a, out_b = aug(a, a.detach().clone())
        assert torch.allclose(out_a, out_b)  # same op, same parameters on both batches
    out_a.sum().backward()
    assert a.grad is not None


@pytest.mark.parametrize("method", ["dc", "dsa", "dm"])
def test_matching_baselines_move_the_synthetic_set(method):
    from lightning_modules.distillation import DistributionMatching, GradientMatching
    from lightning_modules.distillation.augment import SiameseAugment

    g = torch.Generator().manual_seed(0)
    real_x, real_y = torch.randn(60, 3, 8, 8, generator=g), torch.arange(3).repeat_interleave(20)
    syn_x, syn_y = real_x[[0, 20, 40]].clone(), torch.arange(3)
    aug = SiameseAugment(seed=0) if method != "dc" else None
    kwargs = {"width": 8, "depth": 2}
    if method == "dm":
        m = DistributionMatching("convnet", (3, 8, 8), 3, syn_x, syn_y, real_x, real_y, kwargs, augment=aug)
    else:
        m = GradientMatching("convnet", (3, 8, 8), 3, syn_x, syn_y, real_x, real_y, kwargs, outer_loop=2,
                             inner_loop=2, augment=aug)
    from audioforge.training import TrainerConfig, make_trainer
    from lightning_modules.distillation import steps_loader

    make_trainer(TrainerConfig(), 1, validate=False).fit(m, steps_loader(2))
    assert not torch.allclose(m.syn_x.detach(), syn_x)
    assert torch.isfinite(m.syn_x).all()


def test_reconstruction_gives_finite_audio_of_the_expected_length(small_fsdd):
    from audioforge.distill.reconstruct import features_to_audio, noisy_features, write_audio
    from datamodules import build_datamodule, default_features

    dm = build_datamodule("fsdd", small_fsdd, features=default_features("fsdd", {"kind": "fdmfcc"}))
    dm.setup()
    x, y = dm.tensors("val")
    waves = features_to_audio(x[:3], dm.features, n_iter=8)
    assert waves.shape == (3, dm.features.num_samples) and np.isfinite(waves).all() and np.abs(waves).max() > 0
    files = write_audio(waves, y[:3], dm.class_names, dm.features, small_fsdd / "audio")
    wav = next(f for f in files if f.suffix == ".wav")
    data, sr = sf.read(wav)
    assert sr == 8000 and len(data) == dm.features.num_samples
    assert noisy_features(waves, 0.01, dm.features).shape == (3, 3, 20, 20)


def test_evaluation_scores_test_only_after_selection(monkeypatch):
    from audioforge.distill import evaluate

    calls = []
    real_train = evaluate.train_student

    def spy(*args, **kwargs):
        result = real_train(*args, **kwargs)
        calls.append("trained")
        return result

    class TestSplit:
        def __init__(self, x, y):
            self.x, self.y = x, y

        def __iter__(self):  # the test tensors are reachable only by unpacking
            assert calls and calls[-1] == "trained", "test split read before the run's selection finished"
            calls.append("tested")
            return iter((self.x, self.y))

    monkeypatch.setattr(evaluate, "train_student", spy)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(30, 3, 8, 8, generator=g), torch.arange(3).repeat(10)
    cfg = evaluate.EvalConfig(runs=2, epochs=4, val_every=2)
    res = evaluate.evaluate_set("convnet", {"x": x, "y": y}, (x, y), TestSplit(x, y), 3, cfg,
                                network_kwargs={"width": 8, "depth": 2})
    assert calls == ["trained", "tested", "trained", "tested"]
    assert len(res["test_acc"]) == 2 and res["best_epoch"][0] in (1, 3)


def test_mtt_distill_runs_and_resumes_where_it_stopped(small_fsdd, mlflow_store, tmp_path, capsys):
    out = tmp_path / "mtt"
    args = ["distill", "--data", str(small_fsdd), "--cpc", "2", "--quiet", "--output", str(out),
            f"tracking.store={mlflow_store}", "tracking.experiment=distill-test", *TINY]
    assert main([*args, "iterations=4"]) == 0, capsys.readouterr().err
    first = json.loads((out / "report.json").read_text())
    assert first["selection"]["resumed_from"] is None and (out / "checkpoints" / "last.ckpt").is_file()
    assert [it for it, _ in first["selection"]["val_history"]] == [0, 2, 4]
    assert main([*args, "iterations=8"]) == 0, capsys.readouterr().err
    second = json.loads((out / "report.json").read_text())
    assert second["selection"]["resumed_from"].endswith("last.ckpt")
    assert [it for it, _ in second["selection"]["val_history"]] == [0, 2, 4, 6, 8]  # continued, not restarted
    saved = torch.load(out / "distilled.pt", weights_only=False)
    assert saved["x"].shape == (20, 3, 20, 20) and saved["lr"] > 0 and saved["meta"]["method"] == "mtt"
    assert len(list((out / "audio").glob("*.wav"))) == 20
    assert main(["distill-eval", "--data", str(small_fsdd), "--set", str(out / "distilled.pt"), "--archs",
                 "convnet", "--quiet", "--output", str(tmp_path / "ev"), "tracking.enabled=false", *TINY]) == 0
    assert "| mtt | 2 | convnet |" in (tmp_path / "ev" / "report.md").read_text()
    assert (tmp_path / "ev" / "distill_eval.png").stat().st_size > 0


@pytest.mark.parametrize("extra, code, message", [
    (["--cpc", "40"], 2, "smallest class's size"),
    (["--method", "kmeans"], 2, "unknown method 'kmeans'"),
    (["--arch", "alexnet"], 2, "unknown architecture 'alexnet'"),
    (["buffer.dir=/nonexistent/buffer"], 3, "expert buffer /nonexistent/buffer does not exist"),
    (["--devices", "2", "--strategy", "ddp"], 2, "distillation runs in one process on one device"),
])
def test_distill_bad_input(small_fsdd, capsys, extra, code, message):
    assert main(["distill", "--data", str(small_fsdd), "--quiet", "tracking.enabled=false", "--output",
                 str(small_fsdd / "out"), *TINY, *extra]) == code
    assert message in capsys.readouterr().err


def test_distill_eval_refuses_a_set_from_other_features(small_fsdd, tmp_path, capsys):
    out = tmp_path / "rand"
    assert main(["distill", "--data", str(small_fsdd), "--method", "random", "--cpc", "2", "--quiet",
                 "--output", str(out), "tracking.enabled=false", "reconstruct=false", *TINY]) == 0
    assert main(["distill-eval", "--data", str(small_fsdd), "--feature", "mfcc", "--set", str(out / "distilled.pt"),
                 "tracking.enabled=false", "--output", str(tmp_path / "e"), *TINY]) == 3
    assert "distilled from other data or features" in capsys.readouterr().err
    for other in (["normalize_by=global"], ["data.options={test_speakers: [george], val_speakers: [jackson]}"]):
        assert main(["distill-eval", "--data", str(small_fsdd), "--set", str(out / "distilled.pt"),
                     "tracking.enabled=false", "--output", str(tmp_path / "e"), *TINY, *other]) == 3
        assert "standardised with other statistics" in capsys.readouterr().err


def test_tables_run_cells_in_processes_resume_and_report(small_fsdd, mlflow_store, tmp_path, capfd):
    out = tmp_path / "table"
    args = ["distill-table", "--data", str(small_fsdd), "--quiet", "--output", str(out),
            "methods=[random,herding]", "cpcs=[1,2]", "protocol=paper", "whole_runs=1", "whole_epochs=4",
            "distill.network_kwargs.width=16", "distill.eval.runs=2",
            "distill.eval.epochs=4", "distill.eval.val_every=2", "distill.buffer.experts=1", "distill.buffer.epochs=2",
            "distill.reconstruct=false", f"distill.tracking.store={mlflow_store}",
            "distill.tracking.experiment=table-test"]
    assert main(args) == 0, capfd.readouterr().err
    assert "Traceback" not in capfd.readouterr().err  # the cell processes ended cleanly
    md = (out / "report.md").read_text()
    assert "| convnet | 2 |" in md and "whole dataset" in md and "peak memory" in md
    report = json.loads((out / "report.json").read_text())
    assert set(report["cells"]) == {f"{m}-cpc{c}-convnet-fdmfcc" for m in ("random", "herding") for c in (1, 2)}
    assert (out / "table1.png").is_file()
    done = [out / "cells" / "random-cpc1-convnet-fdmfcc" / "report.json", out / "whole" / "convnet-fdmfcc.json"]
    stamps = [p.stat().st_mtime_ns for p in done]
    assert main(args) == 0  # resumed: finished cells and whole-data entries are read back, not rerun
    assert [p.stat().st_mtime_ns for p in done] == stamps
    assert json.loads((out / "report.json").read_text())["whole_dataset"]["convnet-fdmfcc"]["mean"] > 0
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{mlflow_store / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("table-test").experiment_id])
    parents = [r for r in runs if r.data.tags.get("audioforge.command") == "distill-table"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[-1].info.run_id]
    assert len(children) == 0 or all(r.info.status == "FINISHED" for r in children)
    assert {r.info.status for r in runs} == {"FINISHED"} and len(runs) == 2 + 4


@pytest.mark.slow  # Griffin-Lim and retraining per noise level
def test_robustness_table_rebuilds_audio_and_adds_noise(small_fsdd, tmp_path, capsys):
    out = tmp_path / "rob"
    assert main(["distill-table", "--preset", "robustness", "--data", str(small_fsdd), "--quiet", "--output", str(out),
                 "methods=[random]", "cpcs=[2]", "protocol=paper", "noise_sigmas=[0.0,0.01]", "distill.network_kwargs.width=16",
                 "distill.eval.runs=2", "distill.eval.epochs=4", "distill.eval.val_every=2",
                 "distill.tracking.enabled=false"]) == 0, capsys.readouterr().err
    rob = json.loads((out / "report.json").read_text())["robustness"]["random-cpc2-convnet-fdmfcc"]
    assert set(rob) == {"0.0", "0.01"} and all(0 <= v["mean"] <= 1 for v in rob.values())
    assert (out / "robustness.png").is_file()


def test_standardised_features_map_back_for_audio(small_fsdd):
    from audioforge.distill.experiment import raw_features
    from datamodules import build_datamodule, default_features

    dm = build_datamodule("fsdd", small_fsdd, features=default_features("fsdd", {"kind": "fdmfcc"}))
    dm.setup()
    raw = dm.x.clone()
    stats = dm.standardize()
    x, _ = dm.tensors(dm.train_split)
    assert torch.allclose(x.mean(dim=(0, 3)), torch.zeros(3, 20), atol=1e-4)
    assert torch.allclose(x.std(dim=(0, 3)), torch.ones(3, 20), atol=1e-3)
    meta = {"feature_stats": {k: v.tolist() for k, v in stats.items()}}
    assert torch.allclose(raw_features(dm.x, meta), raw, atol=1e-3)


@pytest.mark.slow  # a second table run; resume is in the default suite
def test_table_assembles_only_finished_cells_when_asked(small_fsdd, tmp_path, capsys):
    out = tmp_path / "partial"
    common = ["distill-table", "--data", str(small_fsdd), "--quiet", "--output", str(out), "cpcs=[1]", "protocol=paper",
              "whole_dataset=false", "distill.network_kwargs.width=16", "distill.eval.runs=2", "distill.eval.epochs=4",
              "distill.eval.val_every=2", "distill.reconstruct=false", "distill.tracking.enabled=false"]
    assert main([*common, "methods=[random]"]) == 0, capsys.readouterr().err
    assert main([*common, "methods=[random,herding]", "run_missing=false"]) == 0
    md = (out / "report.md").read_text()
    assert "| convnet | 1 |" in md and "not run" in md
    assert not (out / "cells" / "herding-cpc1-convnet-fdmfcc").exists()


@pytest.mark.slow  # the pool's own test stops a worker by SIGTERM (error naming the task) in the default suite
def test_a_cell_stopped_by_sigterm_fails_the_table_instead_of_hanging(synthetic_fsdd, mlflow_store, tmp_path):
    """A cell's worker (not the table) gets SIGTERM: the table ends with the cell named, the cell's
    run KILLED and the table's run FAILED."""
    import os
    import signal

    from tests.commands import Command, runs
    from tests.test_stopping import LONG, table_args

    cmd = Command(table_args(synthetic_fsdd, mlflow_store, tmp_path / "table", "table-sigterm", LONG), tmp_path)
    event = cmd.wait_for("epoch", in_worker=True, module="TrajectoryMatching")
    os.kill(event["pid"], signal.SIGTERM)
    assert cmd.finish() == 130
    assert "task mtt-cpc2-convnet-fdmfcc was stopped by a signal" in cmd.stderr(), cmd.stderr()
    assert sorted((r.data.tags["audioforge.command"], r.info.status) for r in runs(mlflow_store, "table-sigterm")) == [
        ("distill", "KILLED"), ("distill-table", "FAILED")]


def test_speaker_protocol_table_rotates_disjoint_speakers_and_flags_a_kept_start(synthetic_fsdd, tmp_path, capsys):
    """Two rotations (test george / val jackson, test jackson / val lucas): no speaker in two splits
    of a cell, accuracy over rotations, gains over Random paired by rotation, and a learned method
    whose set cannot move (DM at lr 0) flagged in its cell as having kept its starting set."""
    out = tmp_path / "speakers"
    assert main(["distill-table", "--data", str(synthetic_fsdd), "--quiet", "--output", str(out), "methods=[random,dm]",
                 "cpcs=[2]", "speakers=[george,jackson]", "whole_runs=1", "whole_epochs=2", "jobs=2",
                 "distill.network_kwargs.width=16", "distill.eval.runs=2", "distill.eval.epochs=2",
                 "distill.eval.val_every=1", "distill.reconstruct=false", "distill.tracking.enabled=false",
                 "distill.validation.epochs=2", "distill.validation.val_every=1",
                 "overrides={dm: {iterations: 2, iterations_per_epoch: 1, val_every: 1, dm: {lr_img: 0.0}}}"]) == 0, \
        capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["protocol"] == "speaker"
    assert report["rotations"] == [{"test": "george", "val": "jackson"}, {"test": "jackson", "val": "lucas"}]
    assert set(report["cells"]) == {f"{m}-cpc2-convnet-fdmfcc-{s}" for m in ("random", "dm") for s in ("george", "jackson")}
    for speaker in ("george", "jackson"):  # one speaker of 60 clips tests, one validates, four train
        sizes = report["cells"][f"random-cpc2-convnet-fdmfcc-{speaker}"]["split_sizes"]
        assert (sizes["test"], sizes["val"], sizes["full_train"]) == (60, 60, 240), sizes
    dm, rnd = report["summary"]["dm-cpc2-convnet-fdmfcc"], report["summary"]["random-cpc2-convnet-fdmfcc"]
    assert dm["kept_start"] == 2 and rnd["kept_start"] is None
    per = [report["cells"][f"random-cpc2-convnet-fdmfcc-{s}"]["eval"]["convnet"]["mean"] for s in ("george", "jackson")]
    assert rnd["eval"]["convnet"]["mean"] == pytest.approx(sum(per) / 2) and rnd["eval"]["convnet"]["n"] == 2
    assert dm["gain_over_random"]["n"] == 2
    assert set(report["whole_dataset"]) == {"convnet-fdmfcc-george", "convnet-fdmfcc-jackson", "convnet-fdmfcc-paper"}
    md = (out / "report.md").read_text()
    assert "**kept start 2/2**" in md and "test george / val jackson" in md and "of whole" in md
    assert "Whole-data accuracy on the paper's split" in md
    # one rotation assembled alone: its spread is over runs (a gain's text: the test above)
    assert main(["distill-table", "--config", str(out / "table.yaml"), "--quiet", "speakers=[george]",
                 "run_missing=false"]) == 0
    md = (out / "report.md").read_text()
    assert "mean ± std over 2 runs with one test speaker (speaker protocol: test george / val jackson;" in md


def test_a_gain_over_random_carries_its_paired_t_test():
    """Three rotations gaining 1, 2 and 3 points: t = 2 / (1 / sqrt 3) with 2 degrees of freedom,
    whose two-sided p has the closed form 1 - t / sqrt(2 + t^2) = 0.0742; no p where it is undefined."""
    from audioforge.distill.tables import paired_gain, relative_text

    g = paired_gain([0.01, 0.02, 0.03])
    t = 0.02 / (0.01 / 3 ** 0.5)
    assert g["mean"] == pytest.approx(0.02) and g["std"] == pytest.approx(0.01) and g["n"] == 3
    assert g["p"] == pytest.approx(1 - t / (2 + t * t) ** 0.5) == pytest.approx(0.0742, abs=1e-4)
    assert paired_gain([-0.01, -0.02, -0.03])["p"] == pytest.approx(g["p"])  # two-sided
    assert paired_gain([0.05, 0.05])["p"] is None and paired_gain([0.1])["p"] is None
    assert relative_text({"runs": 3, "gain_over_random": g}) == "+2.00 ± 1.00 (p = 0.07)"
    assert relative_text({"runs": 1, "gain_over_random": paired_gain([0.1])}) == "+10.00 (one rotation)"


@pytest.mark.parametrize("extra, message", [
    (["speakers=[nobody]"], "speakers: unknown speaker 'nobody'"),
    (["protocol=random"], "protocol must be one of paper, speaker"),
    (["distill.data.dataset=urbansound8k"], "protocol speaker splits FSDD by speaker"),
    (["cpcs=[30]", "speakers=[george]"], "cpcs with test speaker george: cpc must be between 1 and the smallest"),
])
def test_bad_table_protocol_input(synthetic_fsdd, tmp_path, capsys, extra, message):
    assert main(["distill-table", "--data", str(synthetic_fsdd), "--quiet", "--output", str(tmp_path / "bad"),
                 "methods=[random]", "cpcs=[1]", "distill.tracking.enabled=false", *extra]) == 2
    assert message in capsys.readouterr().err


def test_speaker_protocol_needs_three_speakers(tmp_path, capsys):
    from tests.synthetic import write_fsdd

    root = write_fsdd(tmp_path / "two", speakers=("george", "jackson"), takes=6)
    assert main(["distill-table", "--data", str(root), "--quiet", "--output", str(tmp_path / "t"), "methods=[random]",
                 "cpcs=[1]", "distill.tracking.enabled=false"]) == 3
    assert "protocol speaker needs at least 3 speakers" in capsys.readouterr().err


def test_reference_regime_loops_by_cpc_step_decay_and_augmented_training():
    import lightning.pytorch as pl

    from audioforge.distill.config import GradientMatchingConfig
    from audioforge.training import TrainerConfig, make_trainer
    from datamodules.loader import TensorBatchLoader
    from lightning_modules.classifier import ClassifierModule

    g = GradientMatchingConfig()
    assert [g.loops(c) for c in (1, 10, 20, 50)] == [(1, 1), (10, 50), (10, 50), (50, 10)]
    assert GradientMatchingConfig(outer_loop=3).loops(10) == (3, 50)

    class Rates(pl.Callback):
        def __init__(self):
            self.rates, self.batches = [], []

        def on_train_epoch_start(self, trainer, module):
            self.rates.append(module.optimizers().param_groups[0]["lr"])

    x, y = torch.randn(32, 3, 8, 8), torch.arange(4).repeat(8)
    seen = []
    for augment in (None, {"ops": ["scale"], "scale": 0.5}):
        rates = Rates()
        model = ClassifierModule("convnet", (3, 8, 8), 4, lr=0.1, optimizer="sgd", network_kwargs={"width": 8, "depth": 1},
                                 augment=augment, lr_decay_at=0.5)
        original = model.net.forward
        model.net.forward = lambda batch, f=original: (seen.append(batch.detach().clone()), f(batch))[1]
        make_trainer(TrainerConfig(), 4, False, [rates], validate=False).fit(model, TensorBatchLoader(x, y, 32, shuffle=False))
        assert rates.rates == pytest.approx([0.1, 0.1, 0.01, 0.01])
    plain, augmented = seen[0], seen[4]  # the first batch of each fit
    assert torch.equal(plain, x) and not torch.equal(augmented, x)
    ratio = augmented / x  # a level change: one factor in [0.5, 1.5] for the whole batch
    assert torch.allclose(ratio, ratio.flatten()[0].expand_as(ratio), atol=1e-5) and 0.5 <= float(ratio.flatten()[0]) <= 1.5
    with pytest.raises(ValueError, match="lr_decay_at must be in"):
        ClassifierModule("convnet", (3, 8, 8), 4, lr_decay_at=1.0)


@pytest.mark.parametrize("extra, message", [
    (["eval.lr_decay_at=1.5"], "eval.lr_decay_at must be in (0, 1)"),
    (["dc.outer_loop=0"], "dc: outer_loop and inner_loop must be >= 1"),
    (["mtt.gradient=exact"], "mtt.gradient must be one of unrolled, checkpointed, constant_memory"),
    (["datm.initial_max_start_epoch=30"], "datm: need 0 <= min_start_epoch < initial_max_start_epoch <= max_start_epoch"),
    (["--method", "datm", "buffer.epochs=20"], "datm.max_start_epoch + mtt.expert_epochs (20 + 2) must be <= buffer.epochs (20)"),
    # the reference's decay over this run's 250 iterations: the returned set would be mostly the starting clips
    (["--method", "datm", "datm.ema_decay=0.9995"], "datm.ema_decay 0.9995 over 250 iterations leaves 88% of the returned "
                                                    "set to the starting clips"),
])
def test_bad_regime_values(synthetic_fsdd, capsys, extra, message):
    assert main(["distill", "--data", str(synthetic_fsdd), "--quiet", "tracking.enabled=false", *extra]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("preset", ["default", "quick", "reference"])
def test_every_distill_preset_accepts_every_method(preset, synthetic_fsdd):
    """A preset's shared settings fit every registered method (e.g. DATM's start window fits the
    preset's expert epochs, and its average spans less than the preset's iterations)."""
    from audioforge.config import load_config
    from audioforge.distill.config import DistillConfig
    from audioforge.distill.methods import METHODS

    for name in METHODS:
        cfg = load_config(DistillConfig, [REPO / "configs" / "distill" / f"{preset}.yaml"],
                          [f"method={name}", f"data.root={synthetic_fsdd}"])
        assert cfg.method == name
        if name == "datm":
            assert cfg.datm.ema_decay ** cfg.iterations < 0.5
            assert cfg.datm.max_start_epoch + cfg.mtt.expert_epochs <= cfg.buffer.epochs


@pytest.mark.parametrize("by", ["coefficient", "channel", "global"])
def test_standardisation_modes_map_back_and_keep_what_they_promise(synthetic_fsdd, by):
    from audioforge.distill.config import DistillConfig
    from audioforge.distill.experiment import datamodule, raw_features, real_split
    from audioforge.run import DatasetConfig

    cfg = DistillConfig(data=DatasetConfig(root=str(synthetic_fsdd)), normalize_by=by)
    raw = datamodule(DistillConfig(data=DatasetConfig(root=str(synthetic_fsdd)), normalize=False))
    dm = datamodule(cfg)
    x, _ = real_split(dm, "train")
    x_raw, _ = real_split(raw, "train")
    meta = {"feature_stats": {k: v.tolist() for k, v in dm.feature_stats.items()}}
    assert torch.allclose(raw_features(x, meta), x_raw, atol=1e-3 * float(x_raw.abs().max()))
    channel_std = x.std(dim=(0, 2, 3))
    if by == "channel":
        assert torch.allclose(channel_std, torch.ones(3), atol=1e-3)
    if by == "global":  # the differences keep their smaller scale relative to the coefficients
        centred = x_raw - x_raw.mean(dim=(0, 3), keepdim=True)
        raw_ratio = centred[:, 2].std() / centred[:, 0].std()
        assert float(x.std()) == pytest.approx(1.0, abs=1e-3)
        assert float(x[:, 2].std() / x[:, 0].std()) == pytest.approx(float(raw_ratio), rel=1e-3) and raw_ratio < 0.9
    if by == "coefficient":
        assert torch.allclose(x.std(dim=(0, 3)), torch.ones(3, 20), atol=1e-3)


def test_table2_summary_when_the_distilling_network_is_not_evaluated():
    """A cross-architecture table may evaluate sets only on other networks: its summary still holds
    each evaluated architecture, averaged over rotations, and no gain it cannot pair."""
    from audioforge.distill.tables import Rotation, TableConfig, summarize

    cfg = TableConfig(kind="table2", methods=["mtt", "random"], cpcs=[50], networks=["convnet"],
                      eval_archs=["resnet18"], protocol="speaker", speakers=["george", "jackson"])
    rots = [Rotation("george", "jackson"), Rotation("jackson", "lucas")]
    results = {f"{m}-cpc50-convnet-fdmfcc-{r.test}": {"eval": {"resnet18": {"mean": acc, "std": 0.01}},
                                                      "selection": {"best_iteration": 0 if m == "mtt" else None}}
               for m, accs in (("mtt", (0.5, 0.7)), ("random", (0.4, 0.4))) for r, acc in zip(rots, accs)}
    summary = summarize(cfg, rots, results, {})
    mtt = summary["mtt-cpc50-convnet-fdmfcc"]
    assert mtt["eval"]["resnet18"]["mean"] == pytest.approx(0.6) and mtt["eval"]["resnet18"]["n"] == 2
    assert mtt["kept_start"] == 2 and "gain_over_random" not in mtt and "fraction_of_whole" not in mtt


def test_synthetic_validation_breaks_accuracy_ties_by_validation_loss():
    """A saturated validation (every set scores 100%) must not always keep the starting set: equal
    accuracies go to the lower validation loss; a higher accuracy still wins over a lower loss."""
    from callbacks.synthetic_validation import SyntheticValidation

    class SetHolder:  # what the callback needs of a SyntheticSet module
        def __init__(self):
            self.x = torch.zeros(1)

        def distilled(self):
            return {"x": self.x}

        def restore(self, state):
            self.x = state["x"]

        def log(self, *args, **kwargs):
            pass

    scores = {0: (1.0, 0.30), 1: (1.0, 0.10), 2: (1.0, 0.20), 3: (0.9, 0.01)}
    holder = SetHolder()
    validation = SyntheticValidation(lambda s: scores[int(s["x"])])
    for step in range(4):
        holder.x = torch.tensor(float(step))
        validation.check(step, holder)
    validation.on_fit_end(None, holder)
    assert validation.best_iteration == 1 and validation.best_loss == 0.10 and float(holder.x) == 1.0
    accuracy_only = SyntheticValidation(lambda s: scores[int(s["x"])][0])  # a plain accuracy keeps the first best
    for step in range(4):
        holder.x = torch.tensor(float(step))
        accuracy_only.check(step, holder)
    assert accuracy_only.best_iteration == 0


def test_a_student_trained_for_fewer_epochs_than_val_every_is_still_validated():
    """``val_every`` above the epochs validates at the last epoch (a run used to end with no score)."""
    from audioforge.distill.evaluate import EvalConfig, train_student

    x, y = torch.randn(20, 1, 20, 20), torch.arange(20) % 2
    _, best = train_student("convnet", x, y, (x[:6], y[:6]), 2, EvalConfig(epochs=2, val_every=25, batch_size=10), 0,
                            network_kwargs={"width": 8, "depth": 2})
    assert best.best_score is not None and best.best_epoch == 1
