"""``audioforge privacy``: whether a distilled set keeps the clips it came from private.

Sources, each trained ``models`` times (fresh networks, seeds 0..models-1, epoch chosen on
validation, in worker processes):

- **whole**: the whole training split.  A membership attack on these models must tell training
  clips from unseen ones, or it measures nothing: this is where its power is shown;
- **random**: the Random coreset of the set's size, the very clips a real-initialised
  distillation starts from (same CPC and seed), which a model then sees verbatim;
- **distilled**: the distilled set (``set``, or distilled here with ``distill``).

Per model: the loss attack's AUC (lower loss = member) and a logistic attack's 5-fold AUC on
confidence, entropy and loss (:func:`audioforge.evaluation.attack_features`), both telling the
training split's clips (members of the source data) from the test clips (never trained on, never
used to choose anything), and the loss attack's AUC on the set's seed clips alone.

Closeness, in the standardised feature space: each distilled example's distance to its nearest
real training clip, and whether that clip is the one it started from, against unseen real clips'
distance to the training split; then the same after Griffin-Lim (features -> audio -> features),
for distilled examples, their seed clips, and unseen clips, with the nearest / second-nearest
ratio (small: one recording stands out).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audioforge.config import to_dict
from audioforge.distill.privacy.config import PrivacyConfig
from audioforge.distill.privacy.measures import loss_auc, nearest, summary
from audioforge.errors import DataError
from audioforge.processes import WorkerPool, progress
from audioforge.run import Run, mean_std

SOURCES = ("whole", "random", "distilled")


def set_config(cfg: PrivacyConfig):
    """The distillation's config: the ``distill`` section on this config's data, features and seed."""
    return dataclasses.replace(cfg.distill, data=cfg.data, features=cfg.features, seeds=[cfg.seeds[0]],
                               name=f"{cfg.name}-set")


def _datamodule(cfg: PrivacyConfig):
    from audioforge.distill.experiment import datamodule

    return datamodule(set_config(cfg))


def given_set(cfg: PrivacyConfig, dm) -> dict[str, Any]:
    """``cfg.set``, checked against this config's data before anything is recorded."""
    from audioforge.distill.experiment import load_distilled, set_tensors

    payload = load_distilled(cfg.set)
    meta = payload["meta"]
    if meta["data_key"] != dm.content_key or not meta.get("feature_stats"):
        raise DataError(f"{cfg.set} was distilled from other data or features than this config's, or without "
                        "standardisation: examine it with the data and features it was distilled with")
    return _with_seeds(set_tensors(payload), dm, meta["cpc"], meta.get("seed"), meta.get("init"))


def distilled_here(cfg: PrivacyConfig, dm, out: Path) -> dict[str, Any]:
    """The set distilled with ``cfg.distill`` into ``out/set`` (reused when there)."""
    from audioforge.distill.experiment import distil, load_distilled, save_distilled, set_tensors

    saved = out / "set" / "distilled.pt"
    if saved.is_file():
        synthetic = set_tensors(load_distilled(saved))
    else:
        dcfg = dataclasses.replace(set_config(cfg), output_dir=str(out / "set"), reconstruct=False)
        synthetic, selection = distil(dcfg, dm, out / "set", False)
        synthetic = {k: v.detach().clone() for k, v in set_tensors(synthetic).items()}
        save_distilled(saved, synthetic, dcfg, dm, selection)
    return _with_seeds(synthetic, dm, cfg.distill.cpc, cfg.seeds[0], cfg.distill.init)


def _with_seeds(synthetic: dict[str, Any], dm, cpc: int, seed: int | None, init: str | None) -> dict[str, Any]:
    """The set with its seed clips' indices (the real clips a real-initialised distillation starts
    from; None when unknown: a noise-initialised set, or a file without its seed)."""
    from audioforge.distill.experiment import seed_clips

    labels = dm.tensors(dm.train_split)[1]
    seeds = seed_clips(labels, cpc, dm.num_classes, seed) if init == "real" and seed is not None else None
    return {**synthetic, "seeds": seeds, "cpc": cpc}


def attack_source(cfg: PrivacyConfig, source: str, x: torch.Tensor, y: torch.Tensor, lr: float | None,
                  index: int, seed_clips: list[int] | None) -> dict[str, Any]:
    """One network trained on a source (in a worker), attacked."""
    from audioforge.distill.evaluate import train_student
    from audioforge.evaluation import attack_features, balanced_logistic, score_split
    from audioforge.logs import setup_logging
    from audioforge.training import configure_threads

    setup_logging(quiet=True)
    configure_threads(cfg.trainer)
    dm = _datamodule(cfg)
    settings = cfg.whole if source == "whole" else cfg.train
    lr = lr if source == "distilled" and settings.use_learned_lr else None
    model, best = train_student(cfg.distill.network, x, y, dm.tensors("val"), dm.num_classes, settings,
                                1000 * cfg.seeds[0] + index, lr, cfg.distill.network_kwargs, trainer=cfg.trainer)
    members = score_split(model, *dm.tensors(dm.train_split), dm.num_classes)
    unseen = score_split(model, *dm.tensors("test"), dm.num_classes)  # after the epoch was chosen
    out = {"source": source, "model": index, "test_acc": unseen.metrics["acc"],
           "loss_auc": loss_auc(members.losses, unseen.losses),
           "logistic_auc": balanced_logistic(attack_features(members), attack_features(unseen), index, "roc_auc")[0],
           "best_epoch": best.best_epoch}
    if seed_clips is not None:
        out["seed_loss_auc"] = loss_auc(members.losses[seed_clips], unseen.losses)
    progress()
    return out


def closeness(cfg: PrivacyConfig, dm, synthetic: dict[str, Any]) -> dict[str, Any]:
    """Distances to the nearest real training clip, before and after Griffin-Lim."""
    train_x, _ = dm.tensors(dm.train_split)
    test_x, _ = dm.tensors("test")
    seeds = synthetic["seeds"]
    rows: dict[str, dict[str, Any]] = {}

    def row(name: str, query: torch.Tensor, own: np.ndarray | None) -> None:
        found = nearest(query, train_x)
        entry = {"distance": summary(found["distance"]), "ratio": summary(found["distance"] / found["second"]),
                 "count": len(query)}
        if own is not None:
            entry["nearest_is_own"] = float((found["index"] == own).mean())
        rows[name] = entry

    row("unseen real clips", test_x, None)
    row("distilled examples", synthetic["x"], None if seeds is None else seeds.numpy())
    if cfg.griffin_lim and dm.features.kind in ("mfcc", "fdmfcc"):
        for name, feats, own in (("Griffin-Lim of unseen real clips", test_x, None),
                                 ("Griffin-Lim of seed clips", None if seeds is None else train_x[seeds],
                                  None if seeds is None else seeds.numpy()),
                                 ("Griffin-Lim of distilled examples", synthetic["x"],
                                  None if seeds is None else seeds.numpy())):
            if feats is not None:
                row(name, regrown(feats, dm), own)
    return rows


def regrown(x: torch.Tensor, dm) -> torch.Tensor:
    """Standardised features -> audio (Griffin-Lim) -> standardised features."""
    from audioforge.distill.reconstruct import features_to_audio
    from datamodules.features import extract

    stats = dm.feature_stats
    waves = features_to_audio(x * stats["std"] + stats["mean"], dm.features)
    return (extract(list(waves), dm.features) - stats["mean"]) / stats["std"]


def run_privacy(cfg: PrivacyConfig, progress_bar: bool = True) -> tuple[Path, dict[str, Any]]:
    from tqdm import tqdm

    cfg.validate()
    dm = _datamodule(cfg)
    if not getattr(dm, "feature_stats", None):
        raise DataError("privacy compares standardised features: set distill.normalize=true")
    synthetic = given_set(cfg, dm) if cfg.set is not None else None
    if synthetic is None:
        from audioforge.distill.coresets import check_cpc

        check_cpc(dm.tensors(dm.train_split)[1], cfg.distill.cpc, dm.num_classes)
    tags = {"audioforge.method": cfg.distill.method}
    with Run("privacy", cfg.name, cfg.output_dir, cfg.tracking, tags, to_dict(cfg)) as run:
        out = run.out_dir
        if synthetic is None:
            synthetic = distilled_here(cfg, dm, out)
        train_x, train_y = dm.tensors(dm.train_split)
        seeds = synthetic["seeds"]
        coreset = seeds if seeds is not None else _random(cfg, dm, synthetic["cpc"])
        sources = {"whole": (train_x, train_y, None), "random": (train_x[coreset], train_y[coreset], None),
                   "distilled": (synthetic["x"], synthetic["y"], synthetic.get("lr"))}
        # seed clips: those the set started from (known for a real-initialised set), else the coreset's
        clips = {"whole": coreset.tolist(), "random": coreset.tolist(),
                 "distilled": None if seeds is None else seeds.tolist()}
        results: list[dict[str, Any]] = []
        with tqdm(total=len(SOURCES) * cfg.models, unit="model", desc=cfg.name, disable=not progress_bar,
                  dynamic_ncols=True) as bar, WorkerPool(cfg.jobs, progress=bar.update, status=bar.set_postfix_str) as pool:
            for source in SOURCES:
                x, y, lr = sources[source]
                for i in range(cfg.models):
                    pool.submit((source, i), attack_source, cfg, source, x, y, None if lr is None else float(lr), i,
                                clips[source])
            while pool.pending:
                results.append(pool.next()[1])
        report = summarize(cfg, synthetic, results, closeness(cfg, dm, synthetic), dm)
        metrics = {f"{s}/{k}_mean": v["mean"] for s, by in report["attack"].items() for k, v in by.items()}
        report = run.report(report, markdown(report), metrics)
    return out, report


def _random(cfg: PrivacyConfig, dm, cpc: int) -> torch.Tensor:
    from audioforge.distill.experiment import seed_clips

    return seed_clips(dm.tensors(dm.train_split)[1], cpc, dm.num_classes, cfg.seeds[0])


def summarize(cfg: PrivacyConfig, synthetic: dict, results: list[dict], close: dict, dm) -> dict[str, Any]:
    attack: dict[str, dict[str, dict[str, float]]] = {}
    for source in SOURCES:
        mine = [r for r in results if r["source"] == source]
        attack[source] = {k: dict(zip(("mean", "std"), mean_std([r[k] for r in mine])))
                          for k in ("test_acc", "loss_auc", "logistic_auc", "seed_loss_auc") if k in mine[0]}
    return {"name": cfg.name, "dataset": cfg.data.dataset, "method": cfg.distill.method if cfg.set is None
            else "from " + cfg.set, "cpc": synthetic["cpc"], "set_size": len(synthetic["y"]),
            "train_size": dm.split_size(dm.train_split), "test_size": dm.split_size("test"), "models": cfg.models,
            "seeds_known": synthetic["seeds"] is not None, "attack": attack, "closeness": close,
            "models_detail": sorted(results, key=lambda r: (SOURCES.index(r["source"]), r["model"]))}


def _pm(e: dict[str, float] | None, scale: float = 1.0, digits: int = 3) -> str:
    return "-" if e is None else f"{scale * e['mean']:.{digits}f} ± {scale * e['std']:.{digits}f}"


def markdown(report: dict[str, Any]) -> list[str]:
    lines = [f"# {report['name']}: is a distilled set private? ({report['dataset']})", "",
             f"The set: {report['method']}, {report['cpc']} per class ({report['set_size']} examples). "
             f"Members: the {report['train_size']} training clips; non-members: the {report['test_size']} test clips "
             f"(never trained on, never used to choose). {report['models']} networks per source, mean ± std. "
             "AUC 0.5 = the attack cannot tell members from non-members.", "",
             "| trained on | test accuracy (%) | loss attack AUC | logistic attack AUC | loss AUC on the seed clips |",
             "|---|---|---|---|---|"]
    names = {"whole": "whole training split", "random": "Random coreset (the seed clips, verbatim)",
             "distilled": "distilled set"}
    for source, by in report["attack"].items():
        lines.append(f"| {names[source]} | {_pm(by['test_acc'], 100, 2)} | {_pm(by['loss_auc'])} | "
                     f"{_pm(by['logistic_auc'])} | {_pm(by.get('seed_loss_auc'))} |")
    lines += ["", "Closeness to the nearest real training clip (standardised features, Euclidean): median "
              "[10%, 90%]; ratio = nearest / second nearest.", "",
              "| query | clips | distance | ratio | nearest is its own clip |", "|---|---|---|---|---|"]
    for name, e in report["closeness"].items():
        d, r = e["distance"], e["ratio"]
        own = "-" if "nearest_is_own" not in e else f"{100 * e['nearest_is_own']:.1f}%"
        lines.append(f"| {name} | {e['count']} | {d['median']:.2f} [{d['q10']:.2f}, {d['q90']:.2f}] | "
                     f"{r['median']:.3f} [{r['q10']:.3f}, {r['q90']:.3f}] | {own} |")
    if not report["seeds_known"]:
        lines += ["", "The set's seed clips are unknown (noise initialisation, or a file without its seed): the "
                  "Random coreset is drawn with the config's seed and seed-clip columns are empty."]
    return lines + [""]
