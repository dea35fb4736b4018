"""The fits of the unlearning protocol, one task each.

For every seed: ``original`` (the whole training split) and ``gold`` (without the forget set) train from
the same initial weights; each scheme of the paper's schedule and each registered method
(:mod:`audioforge.unlearning.methods`) then unlearns a copy of that seed's original.  A task is one
fit and one nested MLflow run (per-epoch metrics, final scores, confusion matrices, checkpoint);
tasks of different seeds, and original and gold of one seed, run in parallel processes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import lightning.pytorch as pl
import torch

from audioforge import processes
from audioforge.config import to_dict
from audioforge.distributed import barrier, is_rank_zero
from audioforge.errors import DataError
from audioforge.evaluation import (SplitScores, membership_inference, penultimate_features, probe_auc,
                                   score_split)
from audioforge.paths import data_root
from audioforge.plots import confusion_figure, save
from audioforge.tracking import Tracker, keep_tracking_env, maybe_run
from audioforge.training import EpochProgress, Stopwatch, configure_threads, make_trainer, quiet_lightning
from audioforge.unlearning.base_models import BaseModelCache, base_model_key
from audioforge.unlearning.config import FitConfig, UnlearnConfig
from audioforge.unlearning.methods import MethodInputs, Plan, method, method_params
from callbacks.rank_check import RankConsistency
from callbacks.schedule import PhaseTimer, build_callbacks, total_epochs
from datamodules import registry
from datamodules.base import AudioDataModule
from datamodules.fsdd import FSDDDataModule
from lightning_modules.classifier import ClassifierModule

# report split name -> datamodule split
EVAL_SPLITS = {"test": "test", "excluded": "forget", "val": "val", "retain_train": "retain_train"}
BASE_ROLES = ("original", "gold")


@dataclass(frozen=True)
class Task:
    seed: int
    role: str  # "original", "gold", a scheme of the paper's schedule or a registered method

    @property
    def scheme(self) -> str | None:
        return None if self.role in BASE_ROLES else self.role

    def __str__(self) -> str:  # how a pool names it: on the status line, in errors
        return f"seed {self.seed} {self.role}"


def build_datamodule(cfg: UnlearnConfig, seed: int) -> AudioDataModule:
    """The data of one seed with its forget set carved out (splits full_train, retain_train, forget,
    forget_holdout when held out, val, test)."""
    d = cfg.data
    common = dict(features=cfg.features, seed=seed, cache_dir=d.cache_dir, drop_last=d.drop_last,
                  forget=d.forget_set(), forget_holdout=d.forget_holdout, sealed=tuple(d.sealed_splits))
    if d.dataset == "fsdd":
        return FSDDDataModule(data_root(d.root), val_fraction=d.val_fraction, test_fraction=d.test_fraction,
                              download=d.download, **common)
    return registry.build_datamodule(d.dataset, data_root(d.root), d.options, base=common)


def new_model(cfg: UnlearnConfig, dm: AudioDataModule, fit: FitConfig, seed: int) -> ClassifierModule:
    """A fresh classifier; the same ``seed`` gives the same initial weights."""
    pl.seed_everything(seed, verbose=False)
    return ClassifierModule(cfg.model.network, dm.input_shape, dm.num_classes, lr=fit.lr,
                            weight_decay=fit.weight_decay, network_kwargs=cfg.model.kwargs,
                            channels_last=cfg.trainer.use_channels_last)


def unlearning_fit(cfg: UnlearnConfig) -> FitConfig:
    u = cfg.unlearning
    return FitConfig(epochs=total_epochs(u.phases), batch_size=u.batch_size, lr=u.lr)


def seed_folder(out_dir: Path, seed: int) -> Path:
    return Path(out_dir) / f"seed-{seed}"


def run_task(cfg: UnlearnConfig, task: Task, out_dir: str, tracker: Tracker | None, seed_run_id: str | None,
             callbacks: list[pl.Callback] = ()) -> dict[str, Any]:
    """Train, score and record one model; returns its entry for the report.  Runs in worker processes
    (arguments are picklable); every epoch is reported to the pool's progress bar; extra
    ``callbacks`` (e.g. an Optuna pruning callback) join the fit."""
    extra_callbacks = list(callbacks)
    configure_threads(cfg.trainer)
    quiet_lightning()
    dm = build_datamodule(cfg, task.seed)
    dm.setup()
    folder = seed_folder(Path(out_dir), task.seed) / task.role
    tags = {"audioforge.role": "unlearned" if task.scheme else task.role, "audioforge.model": task.role,
            "audioforge.seed": str(task.seed)}
    build: Callable[[], Any] | None = None  # a registered method's set-up, timed with its fit
    if task.scheme is None:
        key = base_model_key(cfg, task.role, task.seed, dm.content_key)
        cached = BaseModelCache().load(key) if cfg.reuse_base_models else None
        if cached is not None:
            return reuse_base_model(cfg, task, dm, cached, key, folder, tracker, seed_run_id, tags)
        fit = cfg.original if task.role == "original" else cfg.gold
        model = new_model(cfg, dm, fit, task.seed)
        split, callbacks, epochs, batch_size = ("full_train" if task.role == "original" else "retain_train"), [], \
            fit.epochs, fit.batch_size
    else:
        fit = unlearning_fit(cfg)
        model = original_copy(cfg, dm, fit, task.seed)
        if task.role in cfg.methods:
            build = method_build(cfg, task, dm, model)
            split, callbacks, epochs, batch_size = "retain_train", [], 0, fit.batch_size
        else:
            split, epochs, batch_size = "retain_train", fit.epochs, fit.batch_size
            callbacks = build_callbacks(cfg.unlearning.phases, cfg.unlearning.schemes[task.scheme], task.seed)

    with maybe_run(tracker, task.role, seed_run_id, tags) as run_id:
        logger = tracker.lightning_logger(run_id) if run_id else False
        checks = [RankConsistency(folder / "rank_checksums.json")] if cfg.trainer.distributed else []
        progress = [EpochProgress(processes.progress)]
        fitted, trainer = model, None
        with Stopwatch() as sw, keep_tracking_env():
            if build is not None:
                plan = build()
                fitted, split, epochs, batch_size = plan.module, plan.train_split, plan.epochs, plan.batch_size
                callbacks = list(plan.callbacks)
            if fitted is not None:
                dm.train_split, dm.batch_size = split, batch_size
                trainer = make_trainer(cfg.trainer, epochs, logger, [*callbacks, *extra_callbacks, *checks, *progress])
                pl.seed_everything(task.seed + 1, verbose=False)
                trainer.fit(fitted, datamodule=dm)
        timer = next((c for c in callbacks if isinstance(c, PhaseTimer)), None)
        entry: dict[str, Any] = {"seed": task.seed, "role": task.role, "train_split": split, "epochs": epochs,
                                 "seconds": sw.seconds, "phase_seconds": dict(timer.seconds) if timer else {},
                                 "run_id": run_id}
        ckpt = None
        if cfg.save_checkpoints:  # a collective under DDP: every rank calls it, rank 0 writes
            ckpt = folder / "model.ckpt"
            if trainer is not None:
                trainer.save_checkpoint(ckpt)
            elif is_rank_zero():
                folder.mkdir(parents=True, exist_ok=True)
                torch.save({"state_dict": {f"net.{k}": v for k, v in model.net.state_dict().items()}}, ckpt)
        if trainer.is_global_zero if trainer is not None else is_rank_zero():
            folder.mkdir(parents=True, exist_ok=True)
            scores = score_model(model, dm)
            entry["metrics"] = {name: s.metrics for name, s in scores.items()}
            entry["confusion"] = {name: scores[name].confusion.tolist() for name in ("test", "excluded")
                                  if name in scores}
            entry |= measures(cfg, model, dm, scores, folder, task.seed)
            record(cfg, task, dm, ckpt, entry, folder, tracker, run_id)
            if task.scheme is None:
                weights = {"net": model.net.state_dict(), "initial_state": model.initial_state}
                BaseModelCache().save(key, weights, {**entry, "run_id": None}, replace=not cfg.reuse_base_models)
        if task.scheme is None:  # the other ranks go on only once rank 0 has cached the model they start from
            barrier()
    return entry


def original_copy(cfg: UnlearnConfig, dm: AudioDataModule, fit: FitConfig, seed: int) -> ClassifierModule:
    """A classifier holding seed ``seed``'s trained original (from the base-model cache)."""
    model = new_model(cfg, dm, fit, seed)
    cached = load_original(cfg, seed, dm.content_key)
    if cached is None:
        raise DataError(f"no trained original model for seed {seed} with these settings in "
                        f"{BaseModelCache().directory}: train it first (task original)")
    start = cached[0]
    model.net.load_state_dict(start["net"])
    model.initial_state = start["initial_state"]
    return model


def method_build(cfg: UnlearnConfig, task: Task, dm: AudioDataModule, model: ClassifierModule) -> Callable[[], Plan]:
    """The set-up of registered method ``task.role`` on ``model``'s network (run inside the timed block)."""
    params = method_params(task.role, cfg.methods[task.role], f"methods.{task.role}")
    inputs = MethodInputs(net=model.net, original=copy.deepcopy(model.net).eval(), forget=dm.tensors("forget"),
                          retain=dm.tensors("retain_train"), num_classes=dm.num_classes, seed=task.seed,
                          channels_last=cfg.trainer.use_channels_last)
    return lambda: method(task.role).build(inputs, params)


def method_epochs(cfg: UnlearnConfig, name: str) -> int:
    """The epochs method ``name`` trains for (0 for methods that do not train)."""
    return getattr(method_params(name, cfg.methods[name], f"methods.{name}"), "epochs", 0)


def load_original(cfg: UnlearnConfig, seed: int, content_key: str):
    """The cached original of ``seed`` (under a distributed launch, rank 0 cached it before every
    rank left the original's task: :func:`run_task`'s barrier)."""
    return BaseModelCache().load(base_model_key(cfg, "original", seed, content_key))


def reuse_base_model(cfg: UnlearnConfig, task: Task, dm: AudioDataModule, cached, key: str, folder: Path,
                     tracker: Tracker | None, seed_run_id: str | None, tags: dict[str, str]) -> dict[str, Any]:
    """A base model from the cache: its recorded scores, a run saying where it came from, no training."""
    weights, entry = cached
    folder.mkdir(parents=True, exist_ok=True)
    if is_rank_zero():  # this output folder's copy of the forget logits the report compares
        entry = {**entry, "forget_logits": save_forget_logits(forget_scores(cfg, dm, task.seed, weights), folder)}
    with maybe_run(tracker, task.role, seed_run_id, {**tags, "audioforge.reused": "true"}) as run_id:
        entry = {**entry, "run_id": run_id, "reused": True, "cache_key": key}
        if run_id:
            tracker.client.log_param(run_id, "base_model_key", key)
        record(cfg, task, dm, None, entry, folder, tracker, run_id)
    processes.progress(entry["epochs"])
    return entry


def forget_scores(cfg: UnlearnConfig, dm: AudioDataModule, seed: int, weights: dict[str, Any]) -> SplitScores:
    """The scores on the forget set of a base model's cached ``weights``."""
    model = new_model(cfg, dm, cfg.original, seed)
    model.net.load_state_dict(weights["net"])
    return score_split(model, *dm.tensors("forget"), dm.num_classes)


def cached_forget_scores(cfg: UnlearnConfig, role: str, seed: int,
                         dm: AudioDataModule) -> tuple[SplitScores, dict[str, Any]]:
    """The scores on the forget set of seed ``seed``'s cached ``role`` model (original or gold), and
    the entry recorded with it."""
    cached = BaseModelCache().load(base_model_key(cfg, role, seed, dm.content_key))
    if cached is None:
        raise RuntimeError(f"{role} model for seed {seed} missing from the cache; train it first (a sweep "
                           "prepares its base models before any trial)")
    return forget_scores(cfg, dm, seed, cached[0]), cached[1]


def score_model(model: ClassifierModule, dm: AudioDataModule) -> dict[str, SplitScores]:
    splits = {**EVAL_SPLITS, **({"forget_holdout": "forget_holdout"} if "forget_holdout" in dm.splits else {})}
    return {name: score_split(model, *dm.tensors(split), dm.num_classes) for name, split in splits.items()
            if split not in dm.sealed}


def measures(cfg: UnlearnConfig, model: ClassifierModule, dm: AudioDataModule, scores: dict[str, SplitScores],
             folder: Path, seed: int) -> dict[str, Any]:
    """What a model's entry holds beyond its metrics: the membership attack (with its AUC on forget
    against same-speaker held-out clips when the split has them), the linear probe's AUC at telling
    the forget speaker's penultimate features from the other speakers', and where its forget-set
    logits are (the report compares them with the gold model's)."""
    out: dict[str, Any] = {}
    if cfg.membership_inference and "test" in scores:  # the attack's non-members are test clips
        out["membership"] = membership_inference(scores["retain_train"], scores["test"], scores["excluded"],
                                                 scores.get("forget_holdout"), seed=seed)
    if cfg.probe:
        out["probe_auc"] = probe_auc(penultimate_features(model, dm.tensors("forget")[0]),
                                     penultimate_features(model, dm.tensors("retain_train")[0]), seed=seed)
    out["forget_logits"] = save_forget_logits(scores["excluded"], folder)
    return out


def save_forget_logits(forget: SplitScores, folder: Path) -> str:
    """The model's forget-set logits and labels in ``folder`` (the report and the benchmark read them)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "forget_logits.pt"
    torch.save({"logits": forget.logits, "labels": forget.labels}, path)
    return str(path)


def record(cfg: UnlearnConfig, task: Task, dm: AudioDataModule, ckpt: Path | None, entry: dict[str, Any],
           folder: Path, tracker: Tracker | None, run_id: str | None) -> None:
    """Confusion PNGs in the report folder, and everything (with the checkpoint, when this task
    wrote one) in the model's run."""
    pngs = [save(confusion_figure(matrix, dm.class_names, f"{task.role}, seed {task.seed}: {split}"),
                 folder / f"confusion_{split}.png", tight=False) for split, matrix in entry["confusion"].items()]
    if run_id is None:
        return
    metrics = {f"final/{split}/{k}": v for split, m in entry["metrics"].items() for k, v in m.items()}
    metrics |= {f"final/membership/{k}": v for k, v in entry.get("membership", {}).items()}
    metrics |= {"final/probe_auc": entry["probe_auc"]} if "probe_auc" in entry else {}
    metrics |= {"time/fit_seconds": entry["seconds"]}
    metrics |= {f"time/phase/{k}_seconds": v for k, v in entry["phase_seconds"].items()}
    tracker.log_metrics(run_id, metrics)
    scores = {k: entry[k] for k in ("seed", "role", "train_split", "epochs", "metrics", "confusion")}
    tracker.client.log_dict(run_id, scores, "scores.json")
    if task.scheme in cfg.unlearning.schemes:
        schedule = {"phases": to_dict(cfg.unlearning.phases), "scheme_ops": to_dict(cfg.unlearning.schemes[task.scheme])}
        tracker.client.log_dict(run_id, schedule, "schedule.json")
    elif task.scheme in cfg.methods:
        params = method_params(task.scheme, cfg.methods[task.scheme], f"methods.{task.scheme}")
        tracker.client.log_dict(run_id, {"method": task.scheme, "params": to_dict(params)}, "method.json")
    for png in pngs:
        tracker.log_artifact(run_id, png, "plots")
    if ckpt is not None:
        tracker.log_artifact(run_id, ckpt, "checkpoints")
