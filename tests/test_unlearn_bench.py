"""``audioforge unlearn-bench`` on the synthetic FSDD tree: cells per speaker nested under one run,
forgetting quality from several models, a leaderboard, resumption, and bad input refused."""

from __future__ import annotations

import json

import pytest

from audioforge.cli import main
from audioforge.tracking import PARENT_TAG
from tests.commands import runs

TINY = ["--preset", "quick", "--quiet", "speakers=[george,jackson]", "seeds=[0]", "jobs=2",
        "forgetting_quality.models=4", "methods={ssd: {}}",
        "unlearn_overrides=[original.epochs=2, gold.epochs=2, 'unlearning.schemes={base: []}', "
        "unlearning.phases.0.epochs=1, unlearning.phases.1.rounds=1, unlearning.phases.2.epochs=1]"]


def test_bench_tunes_on_validation_runs_every_cell_reports_a_leaderboard_and_resumes(synthetic_fsdd, mlflow_store,
                                                                                     tmp_path):
    out = tmp_path / "bench"
    args = ["unlearn-bench", *TINY, "--data", str(synthetic_fsdd), "--output", str(out),
            f"tracking.store={mlflow_store}", "tracking.experiment=bench", "tuning.trials=2", "tuning.seeds=[100]",
            "tuning.objective={excluded_gap: 1, val_gap: 1, forget_margin: 1}",
            "forget_sets=[{kind: class, values: ['3']}]"]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["speakers"] == ["george", "jackson"]
    rows = report["leaderboard"]
    assert set(rows) == {"original", "gold", "base", "ssd", "ssd-tuned"}
    assert rows["gold"]["avg_gap"]["mean"] == 0 and rows["base"]["avg_gap"]["n"] == 2  # 2 speakers x 1 seed
    # a forget set beyond speakers: a cell of its own, in its own table, never in the speakers' rows
    sets = report["forget_sets"]
    assert list(sets) == ["class-3"] and sets["class-3"]["forget_set"] == "class 3"
    assert set(sets["class-3"]["leaderboard"]) == set(rows) and sets["class-3"]["leaderboard"]["base"]["avg_gap"]["n"] == 1
    cell = json.loads((out / "cells" / "class-3" / "report.json").read_text())
    assert cell["metrics"]["gold"]["excluded"]["acc"]["values"] == [0.0]  # gold never saw a class 3 label
    assert sets["class-3"]["leaderboard"]["gold"]["forget_acc"]["mean"] == 0.0
    assert "## Forgetting class 3 (cell class-3)" in (out / "report.md").read_text()
    assert (out / "avg_gap_by_forget_set.png").is_file()
    tuning = report["tuning"]
    chosen = tuning["methods"]["ssd"]
    assert tuning["speaker"] == "george" and chosen["trials"] == 2
    # the chosen trial's settings, or none when no trial beat the defaults on the tuning seeds
    assert set(chosen["params"]) == (set() if chosen["kept_defaults"] else {"alpha", "dampening"})
    assert chosen["score"] <= chosen["baseline"]["score"]
    # chosen by the configured weights, the forget set's margins among them
    objectives = chosen["objectives"]
    assert objectives["forget_margin"] >= 0
    assert chosen["score"] == pytest.approx(objectives["excluded_gap"] + objectives["val_gap"] + objectives["forget_margin"])
    assert "Objective: |forget F1 - gold's| + |validation F1 - gold's| + the forget margins'" in (out / "report.md").read_text()
    assert chosen["other_speakers"]["speakers"] == ["jackson"]  # default against tuned where it was not tuned
    george = json.loads((out / "cells" / "speaker-george" / "report.json").read_text())
    assert {"ssd", "ssd-tuned"} <= set(george["metrics"])
    found = runs(mlflow_store, "bench")
    trials = [r for r in found if r.data.tags.get("audioforge.role") == "trial"]
    assert len(trials) == 2 and not any(k.startswith("final/test") for r in trials for k in r.data.metrics)
    fq = report["forgetting_quality"]
    assert fq["models_per_side"] == 4 and set(fq["models"]) == {"original", "base", "ssd", "ssd-tuned"}
    assert all(0 < m["forgetting_quality"] <= 1 for m in fq["models"].values())
    assert all(0 <= m["lira"]["example_auc"] <= 1 and m["lira"]["models"] == 4 for m in fq["models"].values())
    assert "## Likelihood-ratio attack from many models" in (out / "report.md").read_text()
    assert george["seeds"] == [0, 1, 2, 3]  # the forgetting-quality speaker runs 4 models per side
    assert json.loads((out / "cells" / "speaker-jackson" / "report.json").read_text())["seeds"] == [0]
    assert (out / "forgetting_vs_test.png").is_file() and (out / "avg_gap.png").is_file()
    bench_run = next(r for r in found if r.data.tags.get("audioforge.command") == "unlearn-bench")
    cells = [r for r in found if r.data.tags.get(PARENT_TAG) == bench_run.info.run_id]
    assert sorted(r.info.run_name for r in cells) == ["class-3", "speaker-george", "speaker-jackson", "tune-ssd"]
    assert "class-3/base/avg_gap" in bench_run.data.metrics and "base/avg_gap" in bench_run.data.metrics
    assert {r.info.status for r in found} == {"FINISHED"}
    # a second call reuses both cells: one new run (the benchmark's), the same leaderboard
    assert main(args) == 0
    assert len(runs(mlflow_store, "bench")) == len(found) + 1
    assert json.loads((out / "report.json").read_text())["leaderboard"] == rows


def test_bench_bad_input_is_refused_before_anything_is_recorded(synthetic_fsdd, mlflow_store, tmp_path, capsys):
    common = ["unlearn-bench", *TINY, "--data", str(synthetic_fsdd), "--output", str(tmp_path / "b"),
              f"tracking.store={mlflow_store}", "tracking.experiment=bench-bad"]
    assert main([*common, "forgetting_quality.cell=theo"]) == 2
    assert "forgetting_quality.cell 'theo' is not among the benchmark's cells (speaker-george, speaker-jackson" in capsys.readouterr().err
    assert main([*common, "forgetting_quality.models=3"]) == 2
    assert "forgetting_quality.models must be >= 4" in capsys.readouterr().err
    assert main([*common, "speakers=[george, bob]"]) == 2
    assert "speakers: unknown speaker 'bob'" in capsys.readouterr().err
    assert main([*common, "methods={salun: {densty: 1}}"]) == 2
    assert "unknown config key methods.salun.densty" in capsys.readouterr().err
    assert main([*common, "tuning.trials=2", "tuning.seeds=[0]"]) == 2
    assert "tuning.seeds: seed 0 is also a benchmark seed" in capsys.readouterr().err
    assert main([*common, "tuning.trials=2", "tuning.methods=[salun]"]) == 2
    assert "tuning.methods: 'salun' is not a benchmarked method" in capsys.readouterr().err
    assert main([*common, "speakers=[]", "forgetting_quality.cell=null"]) == 2
    assert "speakers and forget_sets are both empty" in capsys.readouterr().err
    assert main([*common, "forget_sets=[{kind: class, values: ['3']}, {kind: class, values: ['3']}]"]) == 2
    assert "forget_sets: cell 'class-3' is named twice" in capsys.readouterr().err
    assert main([*common, "forget_sets=[{kind: fraction, fraction: 1.5}]"]) == 2
    assert "forget_sets.0.fraction must be in (0, 1)" in capsys.readouterr().err
    assert main([*common, "forget_sets=[{kind: class, values: ['3']}, {kind: class, values: [eleven]}]"]) == 3
    assert "has no class 'eleven'" in capsys.readouterr().err
    assert main([*common, "speakers=[]", "forget_sets=[{kind: class, values: ['3']}]", "tuning.trials=2",
                 "forgetting_quality.cell=null"]) == 2
    assert "tuning.trials: the studies tune on an FSDD speaker and the benchmark has none" in capsys.readouterr().err
    assert main([*common, "tuning.trials=2", "tuning.seeds=[100]", "tuning.objective={test_gap: 1}"]) == 2
    assert "tuning.objective.weights: objective 'test_gap' would select on the test split" in capsys.readouterr().err
    assert main([*common, "tuning.trials=2", "tuning.seeds=[100]", "tuning.objective={forget_margn: 1}"]) == 2
    assert "tuning.objective.weights: unknown objective 'forget_margn'" in capsys.readouterr().err
    assert runs(mlflow_store, "bench-bad") == []
    assert not (tmp_path / "b").exists()

