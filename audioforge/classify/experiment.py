"""Plain classification: one fit per seed of a registered network on a datamodule's train split,
early stopping on validation accuracy (best weights restored), scored on the test split.

MLflow: a parent run (config, mean and std of the test metrics, report files) with one nested
run per seed (per-epoch train/val curves, test metrics, classification report, plots)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import lightning.pytorch as pl

from audioforge.classify.config import ClassifyConfig
from audioforge.config import to_dict
from audioforge.distributed import is_rank_zero
from audioforge.reporting import classification_report, confusion_table, report_figures, report_table
from audioforge.run import Run, mean_std, output_folder
from audioforge.tracking import Tracker, keep_tracking_env
from audioforge.training import EpochProgress, Stopwatch, configure_threads, make_trainer
from callbacks.best_weights import BestWeights
from datamodules import AudioDataModule, default_features
from lightning_modules.classifier import ClassifierModule, predict_logits


def datamodule(cfg: ClassifyConfig, seed: int) -> AudioDataModule:
    return cfg.data.load(cfg.features, seed, cfg.fit.batch_size)


def fit_seed(cfg: ClassifyConfig, seed: int, tracker: Tracker | None, run_id: str | None,
             on_epoch: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Train and score one model; on DDP ranks other than 0 only the (shared) fit runs.
    ``on_epoch(1)`` after every training epoch (a progress bar)."""
    dm = datamodule(cfg, seed)
    pl.seed_everything(seed, verbose=False)
    model = ClassifierModule(cfg.model.network, dm.input_shape, dm.num_classes, lr=cfg.fit.lr,
                             weight_decay=cfg.fit.weight_decay, network_kwargs=cfg.model.kwargs,
                             channels_last=cfg.trainer.use_channels_last)
    has_val = dm.split_size("val") > 0
    best = BestWeights("val/acc", "max", cfg.fit.patience)
    logger = tracker.lightning_logger(run_id) if run_id else False
    callbacks = ([best] if has_val else []) + ([EpochProgress(on_epoch)] if on_epoch else [])
    trainer = make_trainer(cfg.trainer, cfg.fit.epochs, logger, callbacks, validate=has_val)
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


def run_classify(cfg: ClassifyConfig, progress: bool = True) -> tuple[Path, dict[str, Any]]:
    """``progress``: a bar over every seed's epochs with the time left (stderr)."""
    from tqdm import tqdm

    configure_threads(cfg.trainer)
    if cfg.trainer.distributed and not is_rank_zero():
        for seed in cfg.seeds:
            fit_seed(cfg, seed, None, None)
        return output_folder("classify", cfg.name, cfg.output_dir), {}
    datamodule(cfg, cfg.seeds[0])  # bad data or options fail here, before any run is recorded
    tags = {"audioforge.network": cfg.model.network}
    with Run("classify", cfg.name, cfg.output_dir, cfg.tracking, tags, to_dict(cfg)) as run, \
            tqdm(total=len(cfg.seeds) * cfg.fit.epochs, unit="epoch", desc=cfg.name, disable=not progress,
                 dynamic_ncols=True) as bar:
        seeds = []
        for seed in cfg.seeds:
            with run.child(f"seed-{seed}", {"audioforge.seed": str(seed)}) as run_id:
                entry = fit_seed(cfg, seed, run.tracker, run_id, bar.update)
                bar.update(max(0, cfg.fit.epochs - entry["epochs_run"]))  # epochs early stopping skipped
                pngs = report_figures(entry["report"], entry["class_names"], f"{cfg.model.network}, seed {seed}",
                                      run.out_dir / f"seed-{seed}")
                if run_id:
                    run.log_metrics({f"final/test/{k}": v for k, v in entry["test"].items()}
                                    | {"time/fit_seconds": entry["seconds"]}, run_id)
                    run.tracker.client.log_dict(run_id, entry["report"], "classification_report.json")
                    for png in pngs:
                        run.log_artifact(png, "plots", run_id)
                seeds.append(entry)
        report = summarise(cfg, seeds)
        metrics = {f"summary/test/{k}_{stat}": v for k, (m, s) in report["summary"].items()
                   for stat, v in (("mean", m), ("std", s))}
        report = run.report(report, markdown(cfg, report), metrics)
    return run.out_dir, report


def summarise(cfg: ClassifyConfig, seeds: list[dict[str, Any]]) -> dict[str, Any]:
    summary = {k: mean_std([s["test"][k] for s in seeds]) for k in ("acc", "f1", "precision", "recall")}
    return {"name": cfg.name, "dataset": cfg.data.dataset, "network": cfg.model.network, "seeds": seeds,
            "summary": summary, "split_sizes": seeds[0]["split_sizes"]}


def markdown(cfg: ClassifyConfig, report: dict[str, Any]) -> list[str]:
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
    return lines
