"""Privacy of distilled sets (``audioforge privacy``): the attack has power on a memorising model,
closeness on known points, and the command on a synthetic FSDD-layout tree."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from audioforge.cli import main
from tests.commands import runs

TINY = ["--quiet", "models=1", "train.epochs=4", "train.val_every=2", "whole.epochs=3", "whole.val_every=1",
        "distill.cpc=3", "distill.network_kwargs.width=8", "distill.iterations=2", "distill.iterations_per_epoch=1",
        "distill.val_every=1", "distill.validation.epochs=2", "distill.validation.val_every=1",
        "distill.buffer.experts=1", "distill.buffer.epochs=2", "distill.mtt.expert_epochs=1",
        "distill.mtt.max_start_epoch=1", "distill.mtt.syn_steps=2", "jobs=1"]


def test_the_loss_attack_has_power_on_a_memorising_model():
    """Random labels on random inputs can only be memorised: the members' losses fall, unseen
    clips' do not, and the attack must see it (and see nothing on two unseen sets)."""
    from audioforge.distill.evaluate import EvalConfig, train_student
    from audioforge.distill.privacy.measures import loss_auc
    from audioforge.evaluation import score_split

    g = torch.Generator().manual_seed(0)
    members = torch.randn(60, 3, 8, 8, generator=g), torch.randint(0, 4, (60,), generator=g)
    unseen = torch.randn(60, 3, 8, 8, generator=g), torch.randint(0, 4, (60,), generator=g)
    other = torch.randn(60, 3, 8, 8, generator=g), torch.randint(0, 4, (60,), generator=g)
    cfg = EvalConfig(runs=1, epochs=60, batch_size=20, lr=0.05, val_every=60, use_learned_lr=False)
    model, _ = train_student("convnet", *members, members, 4, cfg, seed=0, network_kwargs={"width": 16, "depth": 2})
    scores = {k: score_split(model, *v, 4) for k, v in (("members", members), ("unseen", unseen), ("other", other))}
    assert scores["members"].metrics["acc"] > 0.9  # memorised
    assert loss_auc(scores["members"].losses, scores["unseen"].losses) > 0.9
    assert abs(loss_auc(scores["other"].losses, scores["unseen"].losses) - 0.5) < 0.2


def test_closeness_on_known_points():
    from audioforge.distill.privacy.measures import loss_auc, nearest

    reference = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    query = torch.tensor([[1.0, 0.0], [5.0, 0.0]])
    found = nearest(query, reference)
    assert found["index"].tolist() == [0, 0] and np.allclose(found["distance"], [1.0, 5.0])
    assert np.allclose(found["second"], [9.0, 5.0])  # a tie at 5: the ratio is 1, no clip stands out
    itself = nearest(reference, reference, exclude_self=True)
    assert np.allclose(itself["distance"], [10.0, 10.0, 10.0])
    assert loss_auc(np.array([0.1, 0.2]), np.array([1.0, 2.0])) == 1.0
    assert loss_auc(np.array([1.0, 2.0]), np.array([0.1, 0.2])) == 0.0


def test_privacy_command_on_a_synthetic_tree(synthetic_fsdd, mlflow_store, tmp_path):
    out = tmp_path / "privacy"
    args = ["privacy", *TINY, "--data", str(synthetic_fsdd), "--output", str(out), f"tracking.store={mlflow_store}",
            "tracking.experiment=synthetic-privacy"]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert list(report["attack"]) == ["whole", "random", "distilled"] and report["set_size"] == 30
    for source, by in report["attack"].items():
        assert 0 <= by["loss_auc"]["mean"] <= 1 and 0 <= by["logistic_auc"]["mean"] <= 1
        assert "seed_loss_auc" in by  # the distilled set started from real clips (init real): known
    close = report["closeness"]
    assert close["unseen real clips"]["count"] == report["test_size"]
    assert 0 <= close["distilled examples"]["nearest_is_own"] <= 1
    assert set(close) >= {"Griffin-Lim of seed clips", "Griffin-Lim of distilled examples"}
    assert (out / "set" / "distilled.pt").is_file()
    assert [r.info.status for r in runs(mlflow_store, "synthetic-privacy")] == ["FINISHED"]
    # an existing set from other data is refused, naming the file, before anything is recorded
    other = tmp_path / "other.pt"
    payload = torch.load(out / "set" / "distilled.pt", weights_only=False)
    payload["meta"]["data_key"] = "elsewhere"
    torch.save(payload, other)
    assert main([*args[:1], *TINY, "--data", str(synthetic_fsdd), "--output", str(tmp_path / "p2"), "--set", str(other),
                 f"tracking.store={mlflow_store}", "tracking.experiment=synthetic-privacy-bad"]) == 3
    assert runs(mlflow_store, "synthetic-privacy-bad") == []


@pytest.mark.parametrize("extra, message", [(["models=0"], "models must be >= 1"),
                                            (["distill.cpc=500"], "cpc must be between 1")])
def test_bad_privacy_input(synthetic_fsdd, tmp_path, capsys, extra, message):
    assert main(["privacy", *TINY, "--data", str(synthetic_fsdd), "--output", str(tmp_path / "b"),
                 "tracking.enabled=false", *extra]) in (2, 3)
    assert message in capsys.readouterr().err
