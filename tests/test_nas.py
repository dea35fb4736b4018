"""Architecture-search proxies (``audioforge nas``): the search space, rank correlation on known
rankings, the command on a synthetic FSDD-layout tree (test never chooses, resume), bad input."""

from __future__ import annotations

import json
import re

import pytest
import torch

from audioforge.cli import main
from tests.commands import runs

TINY = ["--preset", "quick", "--quiet", "sample=3", "space.widths=[8]", "space.depths=[1, 2]",
        "proxies=[herding, random, early_stopping]", "per_class=3", "proxy_train.epochs=2",
        "proxy_train.val_every=1", "ground_truth.epochs=4", "ground_truth.val_every=1", "early_epochs=2",
        "distill.network_kwargs.width=8", "jobs=1"]


def test_the_search_space_has_720_distinct_networks_that_all_run_on_20x20():
    from audioforge.distill.nas.space import SpaceConfig
    from lightning_modules.networks import build_network

    candidates = SpaceConfig().candidates()
    assert len(candidates) == 720 and len({c.name for c in candidates}) == 720
    x = torch.randn(2, 3, 20, 20)
    shapes = set()
    for c in candidates:
        net = build_network("convnet", (3, 20, 20), 10, **{**c.kwargs, "width": 4})  # the widths only scale channels
        net.train()
        out = net(x)
        assert out.shape == (2, 10) and torch.isfinite(out).all(), c.name
        shapes.add(tuple(net.classifier.weight.shape))
    # pooling changes the head: 20x20 maps at every depth without it, halved per block with it
    assert (10, 4 * 20 * 20) in shapes and (10, 4 * 1 * 1) in shapes
    kinds = {type(m).__name__ for m in build_network("convnet", (3, 20, 20), 10, depth=2, norm="layer",
                                                    activation="sigmoid", pooling="max").modules()}
    assert {"LayerNorm", "Sigmoid", "MaxPool2d"} <= kinds


def test_sampling_is_fixed_by_seed_and_refuses_an_empty_or_oversized_subset():
    from audioforge.distill.nas.space import SpaceConfig, sample
    from audioforge.errors import ConfigError

    space = SpaceConfig().candidates()
    first, again, other = sample(space, 72, 0), sample(space, 72, 0), sample(space, 72, 1)
    assert first == again and first != other and len(set(first)) == 72
    assert [space.index(c) for c in first] == sorted(space.index(c) for c in first)
    with pytest.raises(ConfigError, match="empty search subset"):
        sample(space, 0, 0)
    with pytest.raises(ConfigError, match="larger than the search space"):
        sample(space, 721, 0)
    with pytest.raises(ConfigError, match="space.norms is empty"):
        SpaceConfig(norms=[]).validate()


def test_spearman_on_known_rankings():
    from scipy.stats import spearmanr

    from audioforge.distill.nas.ranking import spearman, top

    truth = [0.1, 0.5, 0.3, 0.9, 0.7]
    assert spearman(truth, truth) == pytest.approx(1.0)
    assert spearman(truth, [-v for v in truth]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4, 5], [1, 2, 3, 5, 4]) == pytest.approx(1 - 6 * 2 / (5 * 24))  # one swap: 0.9
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(40, generator=g).round(decimals=1), torch.rand(40, generator=g).round(decimals=1)  # with ties
    assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic)
    assert spearman([1, 1, 1], [1, 2, 3]) is None and spearman([1, 2], [2, 1]) is None
    assert top(truth, 0.05, 3) == [3, 4, 1] and top(truth, 0.5, 1) == [3, 4, 1]


def test_a_learned_set_left_at_its_start_is_flagged_in_the_report():
    """A DDFAD set that selection kept at iteration 0 is real clips, as a Random set: the report says
    so in its row; a set chosen later is not flagged, nor are sets that are not learned."""
    from pathlib import Path

    from audioforge.config import load_config
    from audioforge.distill.nas.config import NASConfig
    from audioforge.distill.nas.experiment import markdown, summarize

    preset = Path(__file__).resolve().parents[1] / "configs" / "nas" / "quick.yaml"
    cfg = load_config(NASConfig, [preset], ["proxies=[mtt, random, early_stopping]"])
    networks = cfg.space.candidates()[:6]
    results = {c.name: {task: {"val_acc": 0.5 + i / 20, "test_acc": 0.5, "seconds": 1.0,
                               "early_stopping": {"val_acc": 0.5 + i / 30, "seconds": 0.5}}
                        for task in ("ground_truth", "mtt", "random")} for i, c in enumerate(networks)}
    for best_iteration, flagged in ((0, True), (20, False)):
        sets = {"mtt": {"seconds": 3.0, "selection": {"best_iteration": best_iteration}},
                "random": {"seconds": 0.0, "selection": {}}}
        report = summarize(cfg, networks, sets, results)
        assert [report["proxies"][p]["kept_start"] for p in ("mtt", "random", "early_stopping")] == [flagged, None, None]
        rows = {line.split(" | ")[0]: line for line in markdown(report) if line.startswith("| ")}
        assert ("| mtt **(kept its starting set)**" in rows) is flagged
        assert ("| mtt" in rows) is not flagged and "| random" in rows
        assert ("measures a Random set, not the method" in "\n".join(markdown(report))) is flagged


def test_nas_command_on_a_synthetic_tree(synthetic_fsdd, mlflow_store, tmp_path, monkeypatch):
    out = tmp_path / "nas"
    args = ["nas", *TINY, "--data", str(synthetic_fsdd), "--output", str(out), f"tracking.store={mlflow_store}",
            "tracking.experiment=synthetic-nas"]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["sampled"] == 3 and report["space_size"] == 2 * 3 * 5 * 3
    assert list(report["proxies"]) == ["herding", "random", "early_stopping"]
    networks = report["networks"]
    for proxy, entry in report["proxies"].items():
        scores = {n: v["scores"][f"{proxy}/val_acc"] for n, v in networks.items()}
        # the chosen network is the proxy's best by validation, never by test
        assert scores[entry["chosen"]] == max(scores.values())
        assert entry["chosen_test_acc"] == networks[entry["chosen"]]["scores"]["ground_truth/test_acc"]
        assert entry["seconds"] > 0 and entry["time_ratio"] > 0
    for name in networks:
        gt = json.loads((out / "networks" / name / "ground_truth.json").read_text())
        early = next(v for e, v, _ in gt["history"] if e == 1)  # early_epochs=2: the value after epoch index 1
        assert networks[name]["scores"]["early_stopping/val_acc"] == early
    herding = torch.load(out / "sets" / "herding" / "set.pt")
    assert torch.bincount(herding["y"]).tolist() == [3] * 10
    found = runs(mlflow_store, "synthetic-nas")
    assert sorted(r.info.status for r in found) == ["FINISHED"] * 4  # the command and one run per network
    # a rerun trains nothing again
    before = {p: p.stat().st_mtime_ns for p in out.glob("networks/*/*.json")}
    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in out.glob("networks/*/*.json")} == before


def test_nas_selection_never_reads_the_test_split_before_training_ends(synthetic_fsdd, tmp_path, monkeypatch):
    """In this process (jobs=1): the test tensors are read only by the ground-truth run, after its
    training chose its epoch, and never by a proxy's training."""
    from audioforge.distill import evaluate
    from datamodules.base import AudioDataModule

    events = []
    real_tensors, real_train = AudioDataModule.tensors, evaluate.train_student

    def tensors(self, split):
        if split == "test":
            events.append("test")
        return real_tensors(self, split)

    def train(*args, **kwargs):
        events.append("train")
        result = real_train(*args, **kwargs)
        events.append("trained")
        return result

    monkeypatch.setattr(AudioDataModule, "tensors", tensors)
    monkeypatch.setattr(evaluate, "train_student", train)
    assert main(["nas", *TINY, "--data", str(synthetic_fsdd), "--output", str(tmp_path / "n"), "sample=2",
                 "tracking.enabled=false"]) == 0
    for i, e in enumerate(events):
        if e == "test":
            assert events[i - 1] == "trained", "test read while a network was training or before"
    assert events.count("test") == 2  # once per sampled network's ground truth


@pytest.mark.parametrize("extra, message", [
    (["sample=0"], "empty search subset"),
    (["space.poolings=[]"], "space.poolings is empty"),
    (["sample=100"], "larger than the search space"),
    (["per_class=500"], "cpc must be between 1 and the smallest class"),
    (["proxies=[herding, coreset]"], "unknown proxy 'coreset'"),
    (["early_epochs=9"], "early_epochs \\(9\\) must be within ground_truth.epochs"),
])
def test_bad_nas_input_fails_before_anything_is_recorded(synthetic_fsdd, mlflow_store, tmp_path, capsys, extra,
                                                         message):
    out = tmp_path / "bad"
    code = main(["nas", *TINY, "--data", str(synthetic_fsdd), "--output", str(out), f"tracking.store={mlflow_store}",
                 "tracking.experiment=synthetic-nas-bad", *extra])
    assert code == 2
    assert len(re.findall(message, capsys.readouterr().err)) == 1
    assert runs(mlflow_store, "synthetic-nas-bad") == [] and not (out / "networks").exists()
