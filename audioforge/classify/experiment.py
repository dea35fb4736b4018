"""Plain classification: one fit per seed of a registered network on a datamodule's train split,
early stopping on validation accuracy (best weights restored), scored on the test split.

MLflow: a parent run (config, mean and std of the test metrics, report files) with one nested
run per seed (per-epoch train/val curves, test metrics, classification report, plots)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from audioforge.classify.config import ClassifyConfig
from audioforge.config import to_dict
from audioforge.distributed import is_rank_zero
from audioforge.reporting import (classification_report, confusion_table, mean_std, report_figures,
                                  report_table)
from audioforge.tracking import Tracker, keep_tracking_env, maybe_run
from audioforge.training import Stopwatch, configure_threads, make_trainer
from callbacks.best_weights import BestWeights
from datamodules import AudioDataModule, default_features
from lightning_modules.classifier import ClassifierModule, predict_logits


def output_folder(cfg: ClassifyConfig, command: str = "classify") -> Path:
    if cfg.output_dir:
        return Path(cfg.output_dir)
    return Path("outputs") / command / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def datamodule(cfg: ClassifyConfig, seed: int) -> AudioDataModule:
    return cfg.data.load(cfg.features, seed, cfg.fit.batch_size)


def fit_seed(cfg: ClassifyConfig, seed: int, tracker: Tracker | None, run_id: str | None) -> dict[str, Any]:
    """Train and score one model; on DDP ranks other than 0 only the (shared) fit runs."""
    dm = datamodule(cfg, seed)
    pl.seed_everything(seed, verbose=False)
    model = ClassifierModule(cfg.model.network, dm.input_shape, dm.num_classes, lr=cfg.fit.lr,
                             weight_decay=cfg.fit.weight_decay, network_kwargs=cfg.model.kwargs,
                             channels_last=cfg.trainer.use_channels_last)
    has_val = dm.split_size("val") > 0
    best = BestWeights("val/acc", "max", cfg.fit.patience)
    logger = tracker.lightning_logger(run_id) if run_id else False
    trainer = make_trainer(cfg.trainer, cfg.fit.epochs, logger, [best] if has_val else [], validate=has_val)
    with Stopwatch() as sw, keep_tracking_env():
        trainer.fit(model, datamodule=dm)
    x, y = dm.tensors("test")
    preds = predict_logits(model, x).argmax(1)
    report = classification_report(y.numpy(), preds.numpy(), dm.class_names)
    return {"seed": seed, "seconds": sw.seconds, "epochs_run": trainer.current_epoch, "world_size": trainer.world_size,
            "best_epoch": best.best_epoch if has_val else None, "best_val_acc": best.best_score if has_val else None,
            "test": {"acc": report["accuracy"], "f1": report["macro avg"]["f1-score"],
                     "precision": report["macro avg"]["precision"], "recall": report["macro avg"]["recall"]},
            "report": report, "class_names": dm.class_names,
            "split_sizes": {s: dm.split_size(s) for s in ("train", "val", "test") if s in dm.splits}
            | {dm.train_split: dm.split_size(dm.train_split)}}


def run_classify(cfg: ClassifyConfig) -> tuple[Path, dict[str, Any]]:
    configure_threads(cfg.trainer)
    out_dir = output_folder(cfg)
    if cfg.trainer.distributed and not is_rank_zero():
        for seed in cfg.seeds:
            fit_seed(cfg, seed, None, None)
        return out_dir, {}
    datamodule(cfg, cfg.seeds[0])  # bad data or options fail here, before any run is recorded
    out_dir.mkdir(parents=True, exist_ok=True)
    tracker = Tracker.open(cfg.tracking) if cfg.tracking.enabled else None
    tags = {"audioforge.command": "classify", "audioforge.dataset": cfg.data.dataset,
            "audioforge.network": cfg.model.network}
    with maybe_run(tracker, cfg.name, None, tags) as parent:
        if parent:
            tracker.log_config(parent, to_dict(cfg))
        seeds = []
        for seed in cfg.seeds:
            with maybe_run(tracker, f"seed-{seed}", parent, {**tags, "audioforge.seed": str(seed)}) as run_id:
                entry = fit_seed(cfg, seed, tracker, run_id)
                folder = out_dir / f"seed-{seed}"
                pngs = report_figures(entry["report"], entry["class_names"], f"{cfg.model.network}, seed {seed}", folder)
                if run_id:
                    tracker.log_metrics(run_id, {f"final/test/{k}": v for k, v in entry["test"].items()}
                                        | {"time/fit_seconds": entry["seconds"]})
                    tracker.client.log_dict(run_id, entry["report"], "classification_report.json")
                    for png in pngs:
                        tracker.log_artifact(run_id, png, "plots")
                seeds.append(entry)
        report = summarise(cfg, seeds)
        write_report(out_dir, cfg, report)
        if parent:
            tracker.log_metrics(parent, {f"summary/test/{k}_{stat}": v for k, (m, s) in report["summary"].items()
                                         for stat, v in (("mean", m), ("std", s))})
            tracker.log_artifact(parent, out_dir, "report")
            report["mlflow"] = {"run_id": parent, "tracking_uri": tracker.uri}
    return out_dir, report


def summarise(cfg: ClassifyConfig, seeds: list[dict[str, Any]]) -> dict[str, Any]:
    summary = {k: mean_std([s["test"][k] for s in seeds]) for k in ("acc", "f1", "precision", "recall")}
    return {"name": cfg.name, "dataset": cfg.data.dataset, "network": cfg.model.network, "seeds": seeds,
            "summary": summary, "split_sizes": seeds[0]["split_sizes"]}


def write_report(out_dir: Path, cfg: ClassifyConfig, report: dict[str, Any]) -> None:
    names = report["seeds"][0]["class_names"]
    lines = [f"# {cfg.name}: {cfg.model.network} on {cfg.data.dataset}", "",
             f"Splits: {report['split_sizes']}; seeds {cfg.seeds}; features {default_features(cfg.data.dataset, cfg.features)}.",
             "", "| seed | test acc | macro F1 | best epoch (val acc) | fit seconds |", "|---|---|---|---|---|"]
    for s in report["seeds"]:
        chosen = f"{s['best_epoch']} ({s['best_val_acc']:.3f})" if s["best_epoch"] is not None else "last (no val split)"
        lines.append(f"| {s['seed']} | {s['test']['acc']:.4f} | {s['test']['f1']:.4f} | {chosen} | {s['seconds']:.1f} |")
    (acc, acc_sd), (f1, f1_sd) = report["summary"]["acc"], report["summary"]["f1"]
    lines += ["", f"**Test accuracy {acc:.4f} ± {acc_sd:.4f}, macro F1 {f1:.4f} ± {f1_sd:.4f}** "
              f"(mean ± std over {len(cfg.seeds)} seeds).", "", f"## Seed {report['seeds'][0]['seed']}", ""]
    lines += report_table(report["seeds"][0]["report"], names) + [""]
    lines += confusion_table(report["seeds"][0]["report"]["confusion"], names)
    (out_dir / "report.md").write_text("\n".join(lines) + "\n")
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, default=float))
