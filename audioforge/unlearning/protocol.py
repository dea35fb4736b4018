"""One seed of the speaker-unlearning protocol: original, gold, then every scheme on a copy of
the original; each model a nested MLflow run with per-epoch metrics, final scores, confusion
matrices and its checkpoint."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import lightning.pytorch as pl
import torch

from audioforge.config import to_dict
from audioforge.evaluation import SplitScores, membership_inference, score_split
from audioforge.paths import data_root
from audioforge.plots import confusion_figure, save
from audioforge.tracking import Tracker
from audioforge.training import EpochProgress, Stopwatch, configure_threads, make_trainer, quiet_lightning
from audioforge.unlearning.config import FitConfig, UnlearnConfig
from callbacks.schedule import PhaseTimer, build_callbacks, total_epochs
from datamodules.fsdd import FSDDDataModule
from lightning_modules.classifier import ClassifierModule

log = logging.getLogger(__name__)

# report split name -> datamodule split
EVAL_SPLITS = {"test": "test", "excluded": "forget", "val": "val", "retain_train": "retain_train"}


def build_datamodule(cfg: UnlearnConfig, seed: int) -> FSDDDataModule:
    d = cfg.data
    return FSDDDataModule(data_root(d.root), forget_speakers=d.forget_speakers, val_fraction=d.val_fraction,
                          test_fraction=d.test_fraction, download=d.download, features=cfg.features,
                          seed=seed, cache_dir=d.cache_dir)


def new_model(cfg: UnlearnConfig, dm: FSDDDataModule, fit: FitConfig | Any, seed: int) -> ClassifierModule:
    """A fresh classifier; the same ``seed`` gives the same initial weights."""
    pl.seed_everything(seed, verbose=False)
    return ClassifierModule(cfg.model.network, dm.input_shape, dm.num_classes, lr=fit.lr,
                            weight_decay=getattr(fit, "weight_decay", 0.0), network_kwargs=cfg.model.kwargs)


class SeedRun:
    """Runs and records one seed; ``results`` is what the report aggregates."""

    def __init__(self, cfg: UnlearnConfig, seed: int, out_dir: Path, tracker: Tracker | None,
                 parent_id: str | None, report: Callable[[int], None] = lambda n: None):
        self.cfg, self.seed, self.out_dir = cfg, seed, Path(out_dir) / f"seed-{seed}"
        self.tracker, self.parent_id, self.report = tracker, parent_id, report
        self.dm = build_datamodule(cfg, seed)
        self.results: dict[str, Any] = {"seed": seed, "models": {}}

    def run(self) -> dict[str, Any]:
        configure_threads(self.cfg.trainer)
        quiet_lightning()
        self.dm.setup()
        self.results["split_sizes"] = {name: self.dm.split_size(split) for name, split in
                                       {**EVAL_SPLITS, "full_train": "full_train"}.items()}
        with self._run(f"seed {self.seed}", self.parent_id, {"audioforge.role": "seed"}) as seed_run:
            cfg = self.cfg
            original = new_model(cfg, self.dm, cfg.original, self.seed)
            self._train("original", original, "full_train", cfg.original, seed_run, [])
            gold = new_model(cfg, self.dm, cfg.gold, self.seed)
            self._train("gold", gold, "retain_train", cfg.gold, seed_run, [])
            for scheme, ops in cfg.unlearning.schemes.items():
                model = new_model(cfg, self.dm, cfg.unlearning, self.seed)
                model.net.load_state_dict(original.net.state_dict())
                model.initial_state = {k: v.clone() for k, v in original.initial_state.items()}
                fit = FitConfig(epochs=total_epochs(cfg.unlearning.phases), batch_size=cfg.unlearning.batch_size,
                                lr=cfg.unlearning.lr)
                callbacks = build_callbacks(cfg.unlearning.phases, ops, self.seed)
                self._train(scheme, model, "retain_train", fit, seed_run, callbacks, scheme=scheme)
        return self.results

    def _run(self, name: str, parent: str | None, tags: dict[str, str]):
        if self.tracker is None:
            from contextlib import nullcontext

            return nullcontext(None)
        return self.tracker.run(name, parent, {**tags, "audioforge.seed": str(self.seed)})

    def _train(self, role: str, model: ClassifierModule, split: str, fit: FitConfig, parent: str | None,
               callbacks: list[pl.Callback], scheme: str | None = None) -> None:
        tags = {"audioforge.role": "unlearned" if scheme else role, "audioforge.model": role}
        with self._run(role, parent, tags) as run_id:
            logger = self.tracker.lightning_logger(run_id) if run_id else False
            self.dm.train_split, self.dm.batch_size = split, fit.batch_size
            trainer = make_trainer(self.cfg.trainer, fit.epochs, logger, [*callbacks, EpochProgress(self.report)])
            pl.seed_everything(self.seed + 1, verbose=False)
            with Stopwatch() as sw:
                trainer.fit(model, datamodule=self.dm)
            timer = next((c for c in callbacks if isinstance(c, PhaseTimer)), None)
            entry: dict[str, Any] = {"train_split": split, "epochs": fit.epochs, "seconds": sw.seconds,
                                     "phase_seconds": dict(timer.seconds) if timer else {}, "run_id": run_id}
            if trainer.is_global_zero:
                scores = self._score(model)
                entry["metrics"] = {name: s.metrics for name, s in scores.items()}
                entry["confusion"] = {name: scores[name].confusion.tolist() for name in ("test", "excluded")}
                if self.cfg.membership_inference:
                    entry["membership"] = membership_inference(scores["retain_train"], scores["test"],
                                                               scores["excluded"], seed=self.seed)
                self._record(role, model, trainer, entry, run_id, scheme)
            self.results["models"][role] = entry

    def _score(self, model: ClassifierModule) -> dict[str, SplitScores]:
        return {name: score_split(model, *self.dm.tensors(split), self.dm.num_classes)
                for name, split in EVAL_SPLITS.items()}

    def _record(self, role: str, model: ClassifierModule, trainer: pl.Trainer, entry: dict[str, Any],
                run_id: str | None, scheme: str | None) -> None:
        folder = self.out_dir / role
        pngs = [save(confusion_figure(entry["confusion"][split], self.dm.class_names,
                                      f"{role}, seed {self.seed}: {split}"), folder / f"confusion_{split}.png")
                for split in ("test", "excluded")]
        ckpt = None
        if self.cfg.save_checkpoints:
            ckpt = folder / "model.ckpt"
            trainer.save_checkpoint(ckpt)
        if run_id is None:
            return
        tr = self.tracker
        metrics = {f"final/{split}/{k}": v for split, m in entry["metrics"].items() for k, v in m.items()}
        metrics |= {f"final/membership/{k}": v for k, v in entry.get("membership", {}).items()}
        metrics |= {"time/fit_seconds": entry["seconds"]}
        metrics |= {f"time/phase/{k}_seconds": v for k, v in entry["phase_seconds"].items()}
        tr.log_metrics(run_id, metrics)
        tr.client.log_dict(run_id, {"seed": self.seed, "scheme": scheme, **{k: entry[k] for k in
                                    ("train_split", "epochs", "confusion")}}, "scores.json")
        if scheme:
            tr.client.log_dict(run_id, to_dict(self.cfg.unlearning.phases) + [{"scheme_ops": to_dict(
                self.cfg.unlearning.schemes[scheme])}], "schedule.json")
        for png in pngs:
            tr.log_artifact(run_id, png, "plots")
        if ckpt is not None:
            tr.log_artifact(run_id, ckpt, "checkpoints")


def run_seed(cfg: UnlearnConfig, seed: int, out_dir: str, tracker: Tracker | None, parent_id: str | None,
             queue: Any = None) -> dict[str, Any]:
    """Entry point for worker processes (picklable arguments only)."""
    report = (lambda n: queue.put(n)) if queue is not None else (lambda n: None)
    torch.set_num_threads(cfg.trainer.threads or torch.get_num_threads())
    return SeedRun(cfg, seed, Path(out_dir), tracker, parent_id, report).run()
