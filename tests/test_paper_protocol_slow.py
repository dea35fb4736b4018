"""The full paper protocol (3 seeds, 100/120 epochs; about 3 minutes on 2 cores). Run with `make test-slow`."""

import json

import pytest

from audioforge.cli import main

SCHEMES = ("base", "all_bn", "conv_bn")


@pytest.mark.slow
def test_paper_protocol_shows_the_papers_direction(data_root, mlflow_store, tmp_path):
    assert main(["unlearn", "--data", str(data_root), "--output", str(tmp_path), "--quiet",
                 f"tracking.store={mlflow_store}", "tracking.experiment=paper-slow"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    for scheme in SCHEMES:
        t1 = report["table1"][scheme]
        # unlearning lowers F1 on the excluded speaker far more than on the retained test set
        assert t1["excluded"]["mean"] < 2 * t1["test"]["mean"] < 0
        # and leaves the unlearned model between the gold and the original model on the excluded speaker
        m = report["metrics"]
        f1 = {k: m[k]["excluded"]["f1"]["mean"] for k in ("original", "gold", scheme)}
        assert f1["gold"] < f1[scheme] < f1["original"]
        assert report["timing"]["unlearn_over_gold"][scheme]["mean"] < 0.25
