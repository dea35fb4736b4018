"""Running a study: storage, base models, worker processes, resume, plots, the best config.

- Storage: ``sqlite:///sweeps/studies.db`` by default (an RDB storage with heartbeats), any
  SQLAlchemy URL (PostgreSQL for several machines) via ``storage``.
- Workers: ``workers`` processes share the study.  ``n_trials`` counts COMPLETE trials across all
  of them; a worker stops once completed plus running trials reach it, so the study ends at
  exactly ``n_trials`` unless a trial fails.  Two workers that finish at the same instant may
  both start one more: the later-numbered of those steps aside at once (PRUNED, user attribute
  ``surplus``; :func:`sweeps.objective.surplus`).
- Stop: a worker that does not end its trial within the pool's grace period is killed, and the
  command then fails that trial itself.  A stop that reaches a worker between creating a trial and
  recording itself as its owner waits until the owner is recorded (:func:`audioforge.signals.defer`),
  so every trial a stop ends has an owner; only ``SIGKILL`` in that instant leaves one without an
  owner, which the next command fails once it has seen it stay so for ``2 x heartbeat_seconds``.
- Resume: run the same command again.  A trial whose process died (no heartbeat for
  ``2 x heartbeat_seconds``) is marked FAIL, completed trials are kept, and the study goes on
  until ``n_trials`` are complete.  The study keeps one MLflow parent run across resumes.
- Original and gold models come from the content-hash cache, trained once before any trial.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import TrialState
from tqdm import tqdm

from audioforge import processes, signals
from audioforge.config import to_dict
from audioforge.errors import ConfigError
from audioforge.processes import WorkerPool
from audioforge.run import Run
from audioforge.tracking import OWNER_HOST, Tracker, maybe_run, owner_alive
from audioforge.unlearning.protocol import Task, run_task
from sweeps.config import OBJECTIVES, SweepConfig
from sweeps.objective import UnlearningObjective
from sweeps.space import check_space, decode, trial_config

log = logging.getLogger(__name__)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
MLFLOW_ATTR = "mlflow_run_id"
WEIGHTS_ATTR = "objective_weights"
OWNER_ATTR = "owner"  # a trial's worker process: owner tags as on MLflow runs


def storage_url(sweep: SweepConfig) -> str:
    if sweep.storage:
        return sweep.storage
    Path("sweeps").mkdir(exist_ok=True)
    return f"sqlite:///{Path('sweeps').resolve() / 'studies.db'}"


def grace_seconds(sweep: SweepConfig) -> float:
    """How long a trial's worker may stay silent (no heartbeat, no owner) before it counts as dead."""
    return 2 * sweep.heartbeat_seconds


def open_storage(sweep: SweepConfig) -> optuna.storages.RDBStorage:
    url = storage_url(sweep)
    try:
        return optuna.storages.RDBStorage(url, heartbeat_interval=sweep.heartbeat_seconds,
                                          grace_period=grace_seconds(sweep))
    except Exception as exc:  # unreachable server, bad URL, missing driver
        raise ConfigError(f"cannot open Optuna storage {url}: {type(exc).__name__}: {exc}".splitlines()[0]) from None


def make_sampler(sweep: SweepConfig, worker: int = 0) -> optuna.samplers.BaseSampler:
    """Each worker gets its own seed (``sampler_seed + worker``): equal seeds would make the workers'
    random start-up trials identical."""
    seed = None if sweep.sampler_seed is None else sweep.sampler_seed + worker
    if sweep.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, multivariate=True)


def load_study(sweep: SweepConfig, storage, worker: int = 0) -> optuna.Study:
    directions = ["minimize"] * (len(OBJECTIVES) if sweep.objective.mode == "multi" else 1)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1) if sweep.pruning \
        else optuna.pruners.NopPruner()
    study = optuna.create_study(storage=storage, study_name=sweep.name, directions=directions,
                                sampler=make_sampler(sweep, worker), pruner=pruner, load_if_exists=True)
    if [d.name.lower() for d in study.directions] != directions:
        raise ConfigError(f"study {sweep.name!r} in {storage_url(sweep)} was created with other objectives "
                          f"({len(study.directions)}); use another name")
    # trial values are scores under these weights: a study resumed under others would compare unlike values
    weights = {k: float(v) for k, v in sorted(sweep.objective.weights.items()) if v}
    recorded = study.user_attrs.get(WEIGHTS_ATTR)
    if recorded is None:  # a study from before weights were recorded: its trials must hold every weighted value
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            missing = [k for k in weights if k not in trial.user_attrs]
            if missing:
                raise ConfigError(f"objective.weights: trial {trial.number} of study {sweep.name!r} in "
                                  f"{storage_url(sweep)} has no {missing[0]!r} (scored before it existed); resume "
                                  f"it without that weight or use another name")
        if worker == 0:
            study.set_user_attr(WEIGHTS_ATTR, weights)
    elif recorded != weights:
        raise ConfigError(f"objective.weights: study {sweep.name!r} in {storage_url(sweep)} scored its trials with "
                          f"{recorded}, not {weights}; resume it with those weights or use another name")
    return study


def completed(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def run_sweep(sweep: SweepConfig, base_dir: Path, progress: bool = True, parent_id: str | None = None) -> dict[str, Any]:
    """Run (or resume) the study; ``parent_id`` nests its MLflow run (a benchmark's tuning)."""
    optuna.logging.set_verbosity(optuna.logging.INFO if progress else optuna.logging.WARNING)
    check_space(sweep, base_dir)
    storage = open_storage(sweep)
    study = load_study(sweep, storage)
    fail_orphaned_trials(study, grace_seconds(sweep))
    optuna.storages.fail_stale_trials(study)
    out_dir = sweep.output_dir or Path("outputs") / "sweep" / sweep.name  # one folder per study: it resumes
    tags = {"audioforge.role": "study", "optuna.study": sweep.name}
    with Run("sweep", sweep.name, out_dir, sweep.tracking, tags, to_dict(sweep), parent_id=parent_id,
             resume_id=study.user_attrs.get(MLFLOW_ATTR)) as run:
        if run.id and MLFLOW_ATTR not in study.user_attrs:
            study.set_user_attr(MLFLOW_ATTR, run.id)
        if completed(study) < sweep.n_trials or "baseline" not in study.user_attrs:  # else nothing left to fit
            base_cfg, _ = trial_config(sweep, {}, base_dir)
            prepare_base_models(base_cfg, run.out_dir, run.tracker, run.id, sweep.workers)
        objective = UnlearningObjective(sweep, base_dir, run.out_dir, run.tracker, run.id)
        baseline = score_baseline(sweep, objective, study, base_dir, run.tracker, run.id)
        try:
            run_workers(sweep, objective, study, progress)
        finally:  # a stop kills a worker that has not ended its trial within the grace period: end it here
            fail_orphaned_trials(study, grace_seconds(sweep))
        summary = finish(sweep, study, base_dir, run.out_dir, run.tracker, run.id)
        summary["baseline"] = baseline
        run.report(summary, markdown(summary))
        if run.id:
            run.tracker.fail_running_children(run.id)  # trials whose worker died
        if summary["completed"] < sweep.n_trials:
            run.outcome = "FAILED"
    return summary


def markdown(summary: dict[str, Any]) -> list[str]:
    lines = [f"# Study {summary['study']}", "", f"Storage `{summary['storage']}`; trials by state: "
             + ", ".join(f"{k.lower()} {v}" for k, v in summary["states"].items() if v) + ".", ""]
    best = summary["best"]
    if best is None:
        return lines + ["No trial has completed yet."]
    lines += [f"Best trial {best['number']} (objectives as configured; see docs/sweeps.md):",
              "", "| objective | best | baseline |", "|---|---|---|"]
    lines += [f"| {k} | {v:.4f} | {summary['baseline'].get(k, float('nan')):.4f} |"
              for k, v in best["objectives"].items() if v is not None]
    lines += ["", "| parameter | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in best["params"].items()]
    return lines


def prepare_base_models(cfg, out_dir: Path, tracker: Tracker | None, parent: str | None, workers: int = 1) -> None:
    """Train (or find in the cache) every seed's original and gold model before any trial, in up to
    ``workers`` processes."""
    tasks = [Task(seed, role) for seed in cfg.seeds for role in ("original", "gold")]
    with WorkerPool(min(workers, len(tasks))) as pool:
        for task in tasks:
            pool.submit(task, run_task, cfg, task, str(out_dir / "base-models"), tracker, parent)
        while pool.pending:
            pool.next()


def score_baseline(sweep: SweepConfig, objective: UnlearningObjective, study: optuna.Study, base_dir: Path,
                   tracker: Tracker | None, parent: str | None) -> dict[str, float]:
    """The objective of the unlearn config plus ``baseline_overrides`` (scheme ``sweep.scheme``), once
    per study: the reference the best trial has to beat."""
    if "baseline" in study.user_attrs:
        return study.user_attrs["baseline"]
    reference = dataclasses.replace(sweep, unlearn_overrides=[*sweep.unlearn_overrides, *sweep.baseline_overrides])
    cfg, scheme = trial_config(reference, {}, base_dir)
    with maybe_run(tracker, "baseline", parent, {"audioforge.role": "baseline"}) as run_id:
        values = objective.evaluate(None, cfg, scheme, run_id)
        if run_id:
            tracker.log_metrics(run_id, {f"objective/{k}": v for k, v in values.items()}
                                | {"objective/score": sweep.objective.score(values)})
    values = {**values, "score": sweep.objective.score(values)}
    study.set_user_attr("baseline", values)
    return values


def run_workers(sweep: SweepConfig, objective: UnlearningObjective, study: optuna.Study, verbose: bool = True) -> None:
    """``workers`` processes on the study (inline when one); a worker that dies fails the command."""
    remaining = sweep.n_trials - completed(study)
    if remaining <= 0:
        return
    workers = min(sweep.workers, remaining)
    bar = tqdm(total=remaining, unit="trial", desc=sweep.name, disable=not verbose, dynamic_ncols=True)
    with bar, WorkerPool(workers, progress=bar.update, status=bar.set_postfix_str) as pool:
        for i in range(workers):
            pool.submit(f"sweep worker {i}", optimize, sweep, objective, i, verbose)
        while pool.pending:
            pool.next()


def fail_orphaned_trials(study: optuna.Study, grace: float) -> list[int]:
    """Fail the RUNNING trials whose worker is gone, at once rather than after the heartbeat's
    grace period: those whose owner (a process on this host) has ended, and those without an owner
    that still have none ``grace`` seconds later.  A worker records itself as a trial's owner first
    thing, so a trial that has none by then lost its worker between creating it and recording
    itself (SIGKILL in that instant); the heartbeat would never fail it if the worker died before
    its first beat.  Waits (up to ``grace`` seconds) only when a trial without an owner exists."""
    host = socket.gethostname()

    def running() -> list[optuna.trial.FrozenTrial]:
        return study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))

    def unowned(trials: list[optuna.trial.FrozenTrial]) -> set[int]:
        return {t.number for t in trials if not t.user_attrs.get(OWNER_ATTR)}

    suspects = unowned(running())
    deadline = time.monotonic() + grace  # this process's clock: another host's may differ from it
    while suspects and time.monotonic() < deadline:
        time.sleep(0.1)  # a live worker records its owner within this; a dead one never will
        suspects &= unowned(running())
    failed = []
    for trial in running():
        owner = trial.user_attrs.get(OWNER_ATTR)
        owner_gone = bool(owner) and owner.get(OWNER_HOST) == host and not owner_alive(owner)
        if owner_gone or (not owner and trial.number in suspects):
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            failed.append(trial.number)
    if failed:
        log.warning("failed trial(s) %s of study %s: their worker process is gone", failed, study.study_name)
    return failed


def optimize(sweep: SweepConfig, objective: UnlearningObjective, worker: int = 0, verbose: bool = True) -> None:
    """One worker: trials until ``n_trials`` are complete (counting those running elsewhere)."""
    from audioforge.training import quiet_lightning

    quiet_lightning()
    optuna.logging.set_verbosity(optuna.logging.INFO if verbose else optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    study = load_study(sweep, open_storage(sweep), worker)
    stop = optuna.study.MaxTrialsCallback(sweep.n_trials, states=(TrialState.COMPLETE, TrialState.RUNNING))
    if completed(study) + len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))) >= sweep.n_trials:
        return
    # from asking for a trial until its owner is recorded (first thing in the objective), a stop waits
    signals.defer()
    try:
        study.optimize(objective, callbacks=[stop, count_completed, defer_stops], gc_after_trial=True)
    finally:
        signals.resume()


def defer_stops(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """After a trial, until the next one records its owner, a stop waits."""
    signals.defer()


def count_completed(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """A completed trial advances the command's trial bar."""
    if trial.state == TrialState.COMPLETE:
        processes.progress(1)


def best_trial(sweep: SweepConfig, study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        return None
    if sweep.objective.mode == "single":
        return study.best_trial
    front = study.best_trials  # Pareto front: pick by the weighted score
    return min(front, key=lambda t: sweep.objective.score(dict(zip(OBJECTIVES, t.values))))


def best_config(sweep: SweepConfig, study: optuna.Study, base_dir: Path) -> dict[str, Any] | None:
    trial = best_trial(sweep, study)
    if trial is None:
        return None
    cfg, _ = trial_config(sweep, decode(trial.params, sweep.params), base_dir)
    cfg.name = f"{sweep.name}-best"
    cfg.output_dir = None
    cfg.data.sealed_splits = []  # the exported experiment reports on test, as any run does
    cfg.membership_inference = cfg.probe = True
    return to_dict(cfg)


def finish(sweep: SweepConfig, study: optuna.Study, base_dir: Path, out_dir: Path, tracker: Tracker | None,
           parent: str | None) -> dict[str, Any]:
    from sweeps.plots import study_plots

    out_dir.mkdir(parents=True, exist_ok=True)
    states = {s.name: len(study.get_trials(deepcopy=False, states=(s,))) for s in TrialState}
    best = best_trial(sweep, study)
    summary: dict[str, Any] = {"study": sweep.name, "storage": storage_url(sweep), "completed": states["COMPLETE"],
                               "states": states, "best": None}
    if best is not None:
        summary["best"] = {"number": best.number, "params": decode(best.params, sweep.params), "values": best.values,
                           "objectives": {k: best.user_attrs.get(k) for k in OBJECTIVES}}
        cfg = best_config(sweep, study, base_dir)
        (out_dir / "best.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    (out_dir / "summary.yaml").write_text(yaml.safe_dump(summary, sort_keys=False))
    plots = study_plots(study, sweep, out_dir) if states["COMPLETE"] >= 2 else []
    if tracker is not None and parent:
        if best is not None:
            tracker.log_metrics(parent, {f"best/{k}": v for k, v in summary["best"]["objectives"].items()
                                         if v is not None} | {"completed_trials": states["COMPLETE"]})
        for f in [out_dir / "summary.yaml", *([out_dir / "best.yaml"] if best else []), *plots]:
            tracker.log_artifact(parent, f, "study")
    return summary
