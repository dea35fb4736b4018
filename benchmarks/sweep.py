"""A 20-trial sweep on the quick preset with 2 workers (target: 10 minutes on 2 cores), from an
empty model cache: wall time, trials per minute, and per trial its wall time beside the time its
unlearning fits took (the rest is overhead: worker start-up, data, scoring, MLflow, Optuna). Also
the best trial's objective beside the paper-schedule baseline's, both on 3 seeds."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks.common import REPO, data_root


def main(argv: list[str] | None = None, n_trials: int = 20, workers: int = 2) -> dict[str, float]:
    import optuna

    root = data_root(argv)
    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{tmp}/studies.db"
        cmd = [sys.executable, "-m", "audioforge", "sweep", "--preset", "quick", "--data", str(root), "--quiet",
               f"n_trials={n_trials}", f"workers={workers}", f"storage={storage}", f"output_dir={tmp}/out",
               f"tracking.store={tmp}/mlruns"]
        env = {**os.environ, "AUDIOFORGE_CACHE": f"{tmp}/cache", "MLFLOW_LOGGING_LEVEL": "WARNING"}
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        study = optuna.load_study(study_name="unlearning-quick", storage=storage)
        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        durations = [(t.datetime_complete - t.datetime_start).total_seconds() for t in done]
        fits = [t.user_attrs["fit_seconds"] for t in done]
        baseline = study.user_attrs["baseline"]
        best = study.best_trial
    out = {"wall_seconds": wall, "completed": len(done), "trial_seconds": statistics.mean(durations),
           "fit_seconds": statistics.mean(fits), "overhead_seconds": statistics.mean(durations) - statistics.mean(fits),
           "best_score": best.value, "baseline_score": baseline["score"]}
    print(f"sweep, quick preset, {len(done)} trials, {workers} workers: {wall:.0f} s = {wall / 60:.1f} min "
          f"(target 10 min); per trial {out['trial_seconds']:.1f} s of which fits {out['fit_seconds']:.1f} s, "
          f"overhead {out['overhead_seconds']:.1f} s")
    print(f"objective (lower is better), 3 seeds: best trial {best.value:.4f} "
          f"(excluded_gap {best.user_attrs['excluded_gap']:.4f}, val_gap {best.user_attrs['val_gap']:.4f}, "
          f"time_ratio {best.user_attrs['time_ratio']:.3f}) vs paper schedule {baseline['score']:.4f} "
          f"(excluded_gap {baseline['excluded_gap']:.4f}, val_gap {baseline['val_gap']:.4f}, "
          f"time_ratio {baseline['time_ratio']:.3f}); best params {best.params}")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
