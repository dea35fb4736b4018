"""Tuning a registered unlearning method on validation, for the benchmark.

Each method gets a study of the same number of trials over its own registered search space, on
the tuning speaker and the tuning seeds (disjoint from the benchmark's), with the test split
sealed: the objective reads the forget set and validation only (see :mod:`sweeps.config`).
Studies live in the benchmark's folder (``tuning/studies.db``), so a stopped benchmark resumes
its tuning too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audioforge.tracking import TrackingConfig
from audioforge.unlearning.bench import TuningConfig
from sweeps.config import ObjectiveConfig, SweepConfig
from sweeps.space import check_space
from sweeps.study import run_sweep


def tune_method(method: str, unlearn_config: Path, overrides: list[str], tuning: TuningConfig, out_dir: Path,
                tracking: TrackingConfig, parent_id: str | None, progress: bool = True,
                check_only: bool = False) -> dict[str, Any]:
    """Run (or resume) method ``method``'s study; its chosen parameters (by the method's own names;
    none when no trial beat the defaults, which were scored on the same seeds), the chosen and the
    defaults' validation objectives, and the completed trials.
    ``check_only``: build the trial config at every corner of the space and return (bad spaces
    fail before a benchmark starts anything)."""
    out_dir = Path(out_dir)
    sweep = SweepConfig(name=f"tune-{method}", unlearn_config=str(unlearn_config), unlearn_overrides=list(overrides),
                        seeds=list(tuning.seeds), method=method, n_trials=tuning.trials, workers=tuning.workers,
                        sampler_seed=tuning.sampler_seed, pruning=False,
                        storage=f"sqlite:///{(out_dir / 'studies.db').resolve()}",
                        output_dir=str(out_dir / method), tracking=tracking)
    if tuning.objective is not None:
        sweep.objective = ObjectiveConfig(weights=dict(tuning.objective))
        sweep.objective.validate("tuning.objective")
    sweep.validate()
    if check_only:
        check_space(sweep, Path.cwd())
        return {}
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = run_sweep(sweep, Path.cwd(), progress, parent_id)
    best = summary["best"]
    if best is None:
        raise RuntimeError(f"tuning {method}: no trial completed (see {out_dir / method})")
    baseline = summary["baseline"]
    # the defaults were scored on the same seeds: when no trial beat them, they are the choice
    kept = baseline["score"] <= sweep.objective.score(best["objectives"])
    objectives = {k: baseline[k] for k in best["objectives"]} if kept else best["objectives"]
    prefix = f"methods.{method}."
    return {"params": {} if kept else {k.removeprefix(prefix): v for k, v in best["params"].items()},
            "objectives": objectives, "score": sweep.objective.score(objectives), "baseline": baseline,
            "trials": summary["completed"], "kept_defaults": kept, "weights": dict(sweep.objective.weights)}
