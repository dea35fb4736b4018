"""One trial: unlearn with the suggested settings on every sweep seed, score against gold."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from optuna.trial import TrialState

from audioforge import events, processes, signals
from audioforge.tracking import Tracker, maybe_run, owner_tags
from audioforge.unlearning.base_models import base_model_key
from audioforge.unlearning.forgetting import logit_margin, margin_distance
from audioforge.unlearning.protocol import Task, build_datamodule, cached_forget_scores, run_task
from sweeps.config import OBJECTIVES, SweepConfig
from sweeps.space import suggest, trial_config

PRUNE_MONITOR = "val/loss"


def surplus(trial: optuna.Trial, n_trials: int) -> bool:
    """Whether ``n_trials`` trials numbered before ``trial`` are complete or running.  Workers check
    the count between trials, so two finishing at once may both start one more; the storage numbers
    trials atomically, so the later of the two sees the earlier and steps aside, and the study never
    runs more than ``n_trials`` whatever the timing."""
    ahead = trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
    return sum(t.number < trial.number for t in ahead) >= n_trials


class UnlearningObjective:
    """Picklable: workers build it from the sweep config, the folder the sweep file is in, the
    tracker and the study's MLflow run."""

    def __init__(self, sweep: SweepConfig, base_dir: Path, out_dir: Path, tracker: Tracker | None,
                 parent_run_id: str | None):
        self.sweep, self.base_dir, self.out_dir = sweep, Path(base_dir), Path(out_dir)
        self.tracker, self.parent_run_id = tracker, parent_run_id
        self._references: dict[tuple[str, str], tuple[dict[str, Any], dict[str, np.ndarray]]] = {}

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        trial.set_user_attr("owner", owner_tags())  # first: a stop fails an owned trial at once
        signals.resume()  # a stop that came since the trial was asked for ends it now, owned
        trial.set_user_attr("worker_pid", os.getpid())
        if surplus(trial, self.sweep.n_trials):
            trial.set_user_attr("surplus", True)
            trial.study.stop()
            raise optuna.TrialPruned(f"the study already has its {self.sweep.n_trials} trials complete or running")
        events.announce("trial", number=trial.number)
        values = suggest(trial, self.sweep.params)
        cfg, scheme = trial_config(self.sweep, values, self.base_dir)
        tags = {"audioforge.role": "trial", "optuna.trial": str(trial.number)}
        with maybe_run(self.tracker, f"trial {trial.number}", self.parent_run_id, tags) as run_id:
            if run_id:
                trial.set_user_attr("mlflow_run_id", run_id)
                self.tracker.log_config(run_id, {"params": values, "scheme": scheme, "trial": trial.number})
            try:
                objectives = self.evaluate(trial, cfg, scheme, run_id)
            except SystemExit as stop:  # Lightning's exit(1) after an interrupt: Optuna fails the trial
                raise KeyboardInterrupt(str(stop)) from None
            if run_id:
                self.tracker.log_metrics(run_id, {f"objective/{k}": v for k, v in objectives.items()}
                                         | {"objective/score": self.sweep.objective.score(objectives)})
        for k, v in objectives.items():
            trial.set_user_attr(k, v)
        if self.sweep.objective.mode == "multi":
            return tuple(objectives[k] for k in OBJECTIVES)
        return self.sweep.objective.score(objectives)

    def evaluate(self, trial: optuna.Trial | None, cfg, scheme: str, run_id: str | None) -> dict[str, float]:
        """Objective values of ``cfg`` with ``scheme``; ``trial`` None scores a config outside the study
        (the baseline), without pruning."""
        gaps: dict[str, list[float]] = {k: [] for k in OBJECTIVES}
        fit_seconds = 0.0
        prune = trial is not None and self.sweep.pruning and self.sweep.objective.mode == "single" \
            and self.sweep.method is None  # a method's val/loss need not fall (ascent): no pruning
        folder = self.out_dir / (f"trial-{trial.number}" if trial is not None else "baseline")
        for i, seed in enumerate(cfg.seeds):
            gold, margins = self.reference(cfg, seed)
            callbacks = []
            if prune and i == 0:
                from optuna_integration import PyTorchLightningPruningCallback

                callbacks.append(PyTorchLightningPruningCallback(trial, monitor=PRUNE_MONITOR))
            with processes.muted():  # the sweep's bar counts trials, not a trial's epochs
                entry = run_task(cfg, Task(seed, scheme), str(folder), self.tracker, run_id, callbacks=callbacks)
            f1 = {split: entry["metrics"][split]["f1"] for split in ("excluded", "val")}
            gold_f1 = {split: gold["metrics"][split]["f1"] for split in ("excluded", "val")}
            gaps["excluded_gap"].append(abs(f1["excluded"] - gold_f1["excluded"]))
            gaps["val_gap"].append(abs(f1["val"] - gold_f1["val"]))
            gaps["time_ratio"].append(entry["seconds"] / gold["seconds"])
            forget = torch.load(entry["forget_logits"])
            forget_margins = logit_margin(forget["logits"].numpy(), forget["labels"].numpy())
            gaps["forget_margin"].append(margin_distance(forget_margins, margins["gold"], margins["original"]))
            fit_seconds += entry["seconds"]
        if trial is not None:
            trial.set_user_attr("fit_seconds", fit_seconds)
        return {k: float(np.mean(v)) for k, v in gaps.items()}

    def reference(self, cfg, seed: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Seed ``seed``'s gold entry and the gold's and original's forget-set margins (each pair of
        base models read once a process)."""
        dm = build_datamodule(cfg, seed)
        dm.setup()
        roles = ("gold", "original")
        keys = tuple(base_model_key(cfg, role, seed, dm.content_key) for role in roles)
        if keys not in self._references:
            scored = {role: cached_forget_scores(cfg, role, seed, dm) for role in roles}
            margins = {role: logit_margin(s.logits.numpy(), s.labels.numpy()) for role, (s, _) in scored.items()}
            self._references[keys] = (scored["gold"][1], margins)
        return self._references[keys]
