"""The CNN-SVM hybrid experiment, per seed: fit the SVM branch and the disentangled CNN on the
training split, choose the fusion weight and the CNN's epoch on the validation split, score SVM,
CNN and the fused model on the test split.

The fused model averages class probabilities: ``w p_svm + (1 - w) p_cnn``, with ``w`` from a grid
chosen on validation accuracy (ties: lowest validation log-loss).  Since ``w = 0`` and ``w = 1`` are on the grid,
it is at least as good as the better single model on validation; on test it usually is too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch

from audioforge.config import to_dict
from audioforge.distributed import is_rank_zero
from audioforge.reporting import classification_report, confusion_table, report_figures, report_table
from audioforge.rir.config import HybridConfig
from audioforge.rir.svm import SVMBranch, choose_fusion_weight
from audioforge.run import Run, mean_std, output_folder
from audioforge.tracking import Tracker, keep_tracking_env
from audioforge.training import Stopwatch, configure_threads, make_trainer
from callbacks.best_weights import BestWeights
from datamodules import AudioDataModule
from datamodules.loader import eval_batch_size
from lightning_modules.disentangled import DisentangledHybridCNN

MODELS = ("svm", "cnn", "combined")


def datamodule(cfg: HybridConfig, seed: int) -> AudioDataModule:
    dm = cfg.data.load(cfg.features, seed, cfg.cnn.batch_size)
    for split in ("train", "val", "test"):
        if dm.split_size(split) == 0:
            from audioforge.errors import DataError

            raise DataError(f"{cfg.data.dataset}: split {split} is empty; the hybrid needs train, val and test")
    return dm


def fit_cnn(cfg: HybridConfig, dm: AudioDataModule, seed: int, logger) -> tuple[DisentangledHybridCNN, BestWeights]:
    x, _ = dm.tensors("train")
    mean = x.mean(dim=(0, 3), keepdim=True)[0]
    std = x.std(dim=(0, 3), keepdim=True)[0].clamp_min(1e-3)
    pl.seed_everything(seed, verbose=False)
    c = cfg.cnn
    model = DisentangledHybridCNN(dm.input_shape, dm.num_classes, mean, std, width=c.width, latent=c.latent,
                                  kernel=c.kernel, lr=c.lr, weight_decay=c.weight_decay, recon_weight=c.recon_weight,
                                  noise_std=c.noise_std, dropout=c.dropout)
    best = BestWeights("val/acc", "max", c.patience)
    trainer = make_trainer(cfg.trainer, c.epochs, logger, [best])
    with keep_tracking_env():
        trainer.fit(model, datamodule=dm)
    return model, best


@torch.no_grad()
def cnn_proba(model: DisentangledHybridCNN, x: torch.Tensor) -> np.ndarray:
    model.eval()
    step = eval_batch_size(x, 512)
    return torch.cat([model(x[i:i + step]).softmax(1) for i in range(0, len(x), step)]).numpy()


def run_seed(cfg: HybridConfig, seed: int, tracker: Tracker | None, run_id: str | None) -> dict[str, Any]:
    dm = datamodule(cfg, seed)
    logger = tracker.lightning_logger(run_id) if run_id else False
    with Stopwatch() as cnn_time:
        cnn, best = fit_cnn(cfg, dm, seed, logger)
    if not is_rank_zero():
        return {}
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = (dm.tensors(s) for s in ("train", "val", "test"))
    with Stopwatch() as svm_time:
        svm = SVMBranch(cfg.svm, seed).fit(x_tr.numpy(), y_tr.numpy())
    p_val = {"svm": svm.predict_proba(x_va.numpy()), "cnn": cnn_proba(cnn, x_va)}
    p_test = {"svm": svm.predict_proba(x_te.numpy()), "cnn": cnn_proba(cnn, x_te)}
    w, val_combined = choose_fusion_weight(p_val["svm"], p_val["cnn"], y_va.numpy(), cfg.fusion_steps)
    p_test["combined"] = w * p_test["svm"] + (1 - w) * p_test["cnn"]
    reports = {m: classification_report(y_te.numpy(), p_test[m].argmax(1), dm.class_names) for m in MODELS}
    val_acc = {m: float((p_val[m].argmax(1) == y_va.numpy()).mean()) for m in ("svm", "cnn")} | {"combined": val_combined}
    return {"seed": seed, "fusion_weight_svm": w, "pca_components": svm.components,
            "cnn_best_epoch": best.best_epoch, "val_acc": val_acc,
            "test_acc": {m: reports[m]["accuracy"] for m in MODELS},
            "test_f1": {m: reports[m]["macro avg"]["f1-score"] for m in MODELS},
            "seconds": {"cnn": cnn_time.seconds, "svm": svm_time.seconds}, "reports": reports,
            "class_names": dm.class_names,
            "split_sizes": {s: dm.split_size(s) for s in ("train", "val", "test")}}


def run_hybrid(cfg: HybridConfig) -> tuple[Path, dict[str, Any]]:
    configure_threads(cfg.trainer)
    if cfg.trainer.distributed and not is_rank_zero():
        for seed in cfg.seeds:
            run_seed(cfg, seed, None, None)
        return output_folder("rir", cfg.name, cfg.output_dir), {}
    datamodule(cfg, cfg.seeds[0])  # generate / read and check the data before anything is recorded
    with Run("rir", cfg.name, cfg.output_dir, cfg.tracking, config=to_dict(cfg)) as run:
        seeds = []
        for seed in cfg.seeds:
            with run.child(f"seed-{seed}", {"audioforge.seed": str(seed)}) as run_id:
                entry = run_seed(cfg, seed, run.tracker, run_id)
                pngs = [p for m in MODELS for p in report_figures(entry["reports"][m], entry["class_names"],
                                                                   f"{m}, seed {seed}", run.out_dir / f"seed-{seed}", f"{m}_")]
                if run_id:
                    run.log_metrics({f"final/test/{m}_acc": v for m, v in entry["test_acc"].items()}
                                    | {f"final/val/{m}_acc": v for m, v in entry["val_acc"].items()}
                                    | {"fusion/weight_svm": entry["fusion_weight_svm"],
                                       "svm/pca_components": entry["pca_components"]}, run_id)
                    run.tracker.client.log_dict(run_id, entry["reports"], "classification_reports.json")
                    for png in pngs:
                        run.log_artifact(png, "plots", run_id)
                seeds.append(entry)
        report = {"name": cfg.name, "dataset": cfg.data.dataset, "seeds": seeds,
                  "summary": {m: mean_std([s["test_acc"][m] for s in seeds]) for m in MODELS},
                  "split_sizes": seeds[0]["split_sizes"]}
        metrics = {f"summary/test/{m}_acc_{stat}": v for m, (mu, sd) in report["summary"].items()
                   for stat, v in (("mean", mu), ("std", sd))}
        report = run.report(report, markdown(cfg, report), metrics)
    return run.out_dir, report


def markdown(cfg: HybridConfig, report: dict[str, Any]) -> list[str]:
    names = report["seeds"][0]["class_names"]
    lines = [f"# {cfg.name}: CNN-SVM hybrid on {cfg.data.dataset}", "",
             f"Splits (rooms never shared): {report['split_sizes']}; seeds {cfg.seeds}.", "",
             "| seed | SVM | CNN | combined | SVM weight (val) | PCA components | CNN epoch (val) |", "|---|---|---|---|---|---|---|"]
    for s in report["seeds"]:
        a = s["test_acc"]
        lines.append(f"| {s['seed']} | {a['svm']:.4f} | {a['cnn']:.4f} | {a['combined']:.4f} | {s['fusion_weight_svm']:.1f} | "
                     f"{s['pca_components']} | {s['cnn_best_epoch']} |")
    lines.append("| mean ± std | " + " | ".join(f"{m:.4f} ± {sd:.4f}" for m, sd in report["summary"].values()) + " | | | |")
    first = report["seeds"][0]
    for m in MODELS:
        lines += ["", f"## {m}, seed {first['seed']} (test)", ""] + report_table(first["reports"][m], names)
        lines += [""] + confusion_table(first["reports"][m]["confusion"], names)
    return lines
