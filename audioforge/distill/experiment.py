"""The distillation commands: ``buffer`` (expert trajectories), ``distill`` (one method, CPC and
architecture: distil, evaluate, reconstruct audio, report) and ``distill-eval`` (evaluate saved
distilled sets on any architectures).

A distilled set is saved as ``distilled.pt``: ``{"x", "y", "lr" (MTT only), "meta"}`` where meta
holds the method, CPC, network, feature spec, class names and the validation-chosen iteration."""

from __future__ import annotations

import dataclasses
import functools
import resource
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from audioforge.config import to_dict
from audioforge.distill.config import DistillConfig
from audioforge.distill.coresets import check_cpc, random_coreset
from audioforge.distill.evaluate import evaluate_set, validation_score
from audioforge.distill.experts import train_experts
from audioforge.distill.methods import method
from audioforge.errors import DataError
from audioforge.run import Run
from audioforge.tracking import Tracker, keep_tracking_env
from audioforge.training import StepProgress, Stopwatch, configure_threads, make_trainer, stage_bar
from datamodules import AudioDataModule
from datamodules.cache import cache_key, default_cache_dir
from lightning_modules.distillation.expert_buffer import ExpertBuffer


def check_validation(dm: AudioDataModule) -> None:
    """Distillation chooses its set and every evaluation its epoch on validation clips: refuse a
    split without them (test is never read for a choice)."""
    if dm.split_size("val") == 0:
        raise DataError(f"{dm.name} has no validation clips, and distillation selects its set and its evaluation "
                        "epochs on them (never on test): give the dataset a validation split (e.g. "
                        "data.options.val_folds, val_actors, val_groups or val_fraction)")


def datamodule(cfg: DistillConfig) -> AudioDataModule:
    dm = cfg.data.load(cfg.features, cfg.seed)
    if cfg.normalize:
        dm.standardize(by=cfg.normalize_by)
    return dm


def raw_features(x: torch.Tensor, meta: dict[str, Any]) -> torch.Tensor:
    """Features of a distilled set mapped back from the standardised space (for audio)."""
    stats = meta.get("feature_stats")
    if not stats:
        return x
    return x * torch.tensor(stats["std"]) + torch.tensor(stats["mean"])


def real_split(dm: AudioDataModule, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    return dm.tensors(dm.train_split if split == "train" else split)


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def device_used(cfg: DistillConfig) -> dict[str, Any]:
    """Which device the cell ran on, and its peak GPU memory when that was a GPU."""
    if cfg.trainer.accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return {"device": torch.cuda.get_device_name(0), "peak_gpu_memory_mb": torch.cuda.max_memory_allocated() / 2**20}
    return {"device": "cpu"}


# --- expert buffer ---------------------------------------------------------------------------
def buffer_folder(cfg: DistillConfig, dm: AudioDataModule) -> Path:
    if cfg.buffer.dir:
        return Path(cfg.buffer.dir)
    b = dataclasses.asdict(cfg.buffer)
    b.pop("dir")
    b.pop("experts")  # more experts extend the same buffer
    key = cache_key(data=dm.content_key, split=dm.split_key(dm.train_split), network=cfg.network, kwargs=cfg.network_kwargs,
                    buffer=b, seed=cfg.seed, normalize=cfg.normalize and cfg.normalize_by,
                    augment=dataclasses.asdict(cfg.augment) if cfg.buffer.augment else None)
    return default_cache_dir() / "buffers" / f"{cfg.data.dataset}-{cfg.network}-{key}"


def ensure_buffer(cfg: DistillConfig, dm: AudioDataModule, tracker: Tracker | None = None,
                  run_id: str | None = None) -> ExpertBuffer:
    """The buffer, with every expert trained.  An explicit ``buffer.dir`` must already hold one."""
    buffer = ExpertBuffer(buffer_folder(cfg, dm))
    if cfg.buffer.dir and not buffer.meta_path.is_file():
        raise DataError(f"expert buffer {buffer.folder} does not exist: run `audioforge buffer buffer.dir={buffer.folder}` "
                        f"first, or leave buffer.dir unset to use (and build) the cached one")
    x, y = real_split(dm, "train")
    val = real_split(dm, "val")

    def report(index, trajectory, seconds):
        if run_id:
            from lightning_modules.networks import build_network
            from lightning_modules.distillation.params import FlatParams
            from audioforge.distill.evaluate import accuracy

            net = build_network(cfg.network, tuple(x.shape[1:]), dm.num_classes, **cfg.network_kwargs)
            net.load_state_dict(FlatParams(net).unflatten(trajectory[-1]), strict=False)
            tracker.log_metrics(run_id, {"expert/val_acc": accuracy(net, *val), "expert/seconds": seconds}, step=index)

    missing = cfg.buffer.experts - len([i for i in buffer.available() if i < cfg.buffer.experts])
    with stage_bar(missing, "expert buffer", "expert") as bar:
        train_experts(buffer, cfg.network, x, y, dm.num_classes, cfg.buffer.experts, cfg.buffer.epochs, cfg.buffer.lr,
                      cfg.buffer.batch_size, cfg.seed, cfg.network_kwargs,
                      meta_extra={"data_key": dm.content_key, "features": dataclasses.asdict(dm.features),
                                  "normalize": cfg.normalize and cfg.normalize_by,
                                  "split_key": dm.split_key(dm.train_split),
                                  "augment": dataclasses.asdict(cfg.augment) if cfg.buffer.augment else None},
                      trainer_cfg=cfg.trainer, on_expert=lambda *done: (bar.update(1), report(*done)),
                      augment=dataclasses.asdict(cfg.augment) if cfg.buffer.augment else None)
    return buffer


def run_buffer(cfg: DistillConfig) -> tuple[Path, dict[str, Any]]:
    configure_threads(cfg.trainer)
    dm = datamodule(cfg)
    with Run("buffer", f"buffer-{cfg.network}", cfg.output_dir, cfg.tracking, config=to_dict(cfg)) as run:
        with Stopwatch() as sw:
            buffer = ensure_buffer(cfg, dm, run.tracker, run.id)
        summary = {"folder": str(buffer.folder), "experts": buffer.available(), "seconds": sw.seconds,
                   "meta": buffer.meta()}
        if run.id:
            run.tracker.client.log_dict(run.id, summary, "buffer.json")
    return buffer.folder, summary


# --- distillation ----------------------------------------------------------------------------
def seed_clips(labels: torch.Tensor, cpc: int, num_classes: int, seed: int) -> torch.Tensor:
    """Indices of the training clips a set of ``cpc`` per class starts from (with ``init: real``,
    its starting examples are these clips)."""
    return random_coreset(labels, cpc, num_classes, seed)


def initial_set(cfg: DistillConfig, dm: AudioDataModule) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = real_split(dm, "train")
    idx = seed_clips(y, cfg.cpc, dm.num_classes, cfg.seed)
    if cfg.init == "real":
        return x[idx].clone(), y[idx].clone()
    g = torch.Generator().manual_seed(cfg.seed)
    return x.mean() + x.std() * torch.randn(x[idx].shape, generator=g), y[idx].clone()


def embedding_network(cfg: DistillConfig, dm: AudioDataModule):
    """Herding's embedding: a network of ``cfg.network`` trained on the real training split (the
    last epoch of the first expert in the buffer, built if needed)."""
    from lightning_modules.distillation.params import FlatParams
    from lightning_modules.networks import build_network

    buffer = ExpertBuffer(buffer_folder(cfg, dm))
    if not buffer.available():  # one expert is all herding needs: never train the buffer's others for it
        buffer = ensure_buffer(dataclasses.replace(cfg, buffer=dataclasses.replace(cfg.buffer, experts=1)), dm)
    net = build_network(cfg.network, dm.input_shape, dm.num_classes, **cfg.network_kwargs)
    net.load_state_dict(FlatParams(net).unflatten(buffer.load(buffer.available()[0])[-1]), strict=False)
    net.eval()
    return net.embed


def distil(cfg: DistillConfig, dm: AudioDataModule, out_dir: Path, logger) -> tuple[dict[str, torch.Tensor], dict]:
    """Run the method; returns the distilled set and what selection chose."""
    x, y = real_split(dm, "train")
    check_cpc(y, cfg.cpc, dm.num_classes)
    chosen = method(cfg.method)
    if not chosen.learned:
        idx = chosen.select(cfg, dm)
        return {"x": x[idx].clone(), "y": y[idx].clone(), "indices": idx}, {}
    from callbacks.synthetic_validation import SyntheticValidation
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning_modules.distillation import steps_loader

    buffer = ensure_buffer(cfg, dm) if chosen.needs_buffer else None
    syn_x, syn_y = initial_set(cfg, dm)
    pl.seed_everything(cfg.seed, verbose=False)
    module = chosen.build(cfg, dm, syn_x, syn_y, buffer)
    score = functools.partial(validation_score, network=cfg.network, val=real_split(dm, "val"),
                              num_classes=dm.num_classes, cfg=cfg.validation, seed=cfg.seed,
                              network_kwargs=cfg.network_kwargs, augment=dataclasses.asdict(cfg.augment),
                              trainer=cfg.trainer)
    validation = SyntheticValidation(score, cfg.val_every)
    ckpt_dir = out_dir / "checkpoints"
    # one file, overwritten after every epoch (save_top_k=0 would only write it when fit ends)
    checkpoint = ModelCheckpoint(dirpath=ckpt_dir, filename="last", save_top_k=1, every_n_epochs=1,
                                 enable_version_counter=False)
    epochs = -(-cfg.iterations // cfg.iterations_per_epoch)
    resume = ckpt_dir / "last.ckpt" if cfg.resume and (ckpt_dir / "last.ckpt").is_file() else None
    with keep_tracking_env(), stage_bar(epochs * cfg.iterations_per_epoch, f"{cfg.method} distillation",
                                        "iteration") as bar:
        trainer = make_trainer(cfg.trainer, epochs, logger, [validation, checkpoint, StepProgress(bar.update)],
                               validate=False)
        trainer.fit(module, steps_loader(cfg.iterations_per_epoch), ckpt_path=resume)
    return module.distilled(), {"val_history": validation.history, "best_val_acc": validation.best_acc,
                                "best_val_loss": validation.best_loss,
                                "best_iteration": validation.best_iteration, "resumed_from": str(resume) if resume else None,
                                "lr_clamps": getattr(module, "lr_clamps", 0)}


def save_distilled(path: Path, synthetic: dict[str, torch.Tensor], cfg: DistillConfig, dm: AudioDataModule,
                   selection: dict) -> tuple[Path, dict[str, Any]]:
    """Write ``distilled.pt``; returns its path and meta."""
    meta = {"method": cfg.method, "cpc": cfg.cpc, "network": cfg.network, "network_kwargs": cfg.network_kwargs,
            "seed": cfg.seed, "init": cfg.init, "dataset": cfg.data.dataset, "features": dataclasses.asdict(dm.features), "class_names": dm.class_names,
            "data_key": dm.content_key, "selection": {k: v for k, v in selection.items() if k != "val_history"},
            "feature_stats": {k: v.tolist() for k, v in getattr(dm, "feature_stats", {}).items()}}
    payload = {k: v for k, v in synthetic.items() if k in ("x", "y", "lr", "indices")} | {"meta": meta}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    return path, meta


def set_tensors(payload: dict[str, Any]) -> dict[str, Any]:
    """What training on a distilled set reads of it: ``x``, ``y`` and, when learned, ``lr``."""
    return {k: payload[k] for k in ("x", "y", "lr") if k in payload}


def load_distilled(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"distilled set not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise DataError(f"cannot read distilled set {path}: {exc}") from None
    if not isinstance(payload, dict) or not {"x", "y", "meta"} <= set(payload):
        raise DataError(f"{path} is not a distilled set (needs x, y and meta)")
    return payload


def evaluate_archs(cfg: DistillConfig, dm: AudioDataModule, synthetic: dict[str, torch.Tensor]) -> dict[str, dict]:
    archs = cfg.eval.archs or [cfg.network]
    val, test = real_split(dm, "val"), real_split(dm, "test")
    with stage_bar(len(archs) * cfg.eval.runs, "evaluation", "network") as bar:
        return {arch: evaluate_set(arch, synthetic, val, test, dm.num_classes, cfg.eval, cfg.seed,
                                   cfg.network_kwargs if arch == cfg.network else None, cfg.trainer,
                                   dataclasses.asdict(cfg.augment), on_run=lambda: bar.update(1)) for arch in archs}


def run_distill(cfg: DistillConfig, parent_id: str | None = None) -> tuple[Path, dict[str, Any]]:
    """Distil, save, evaluate, reconstruct, report; one MLflow run (FAILED if anything raises),
    nested under ``parent_id`` when given (a table's run)."""
    configure_threads(cfg.trainer)
    dm = datamodule(cfg)
    check_cpc(real_split(dm, "train")[1], cfg.cpc, dm.num_classes)  # before anything is recorded
    check_validation(dm)
    tags = {"audioforge.method": cfg.method, "audioforge.cpc": str(cfg.cpc), "audioforge.network": cfg.network,
            "audioforge.features": dm.features.kind}
    with Run("distill", cfg.name, cfg.output_dir, cfg.tracking, tags, to_dict(cfg), parent_id) as run:
        out_dir = run.out_dir
        logger = run.tracker.lightning_logger(run.id) if run.id else False
        with Stopwatch() as sw:
            synthetic, selection = distil(cfg, dm, out_dir, logger)
        distill_seconds, distill_peak = sw.seconds, peak_memory_mb()
        path, meta = save_distilled(out_dir / "distilled.pt", synthetic, cfg, dm, selection)
        with Stopwatch() as ev:
            results = evaluate_archs(cfg, dm, synthetic)
        report = {"name": cfg.name, "method": cfg.method, "cpc": cfg.cpc, "network": cfg.network,
                  "features": dm.features.kind, "dataset": cfg.data.dataset, "seed": cfg.seed,
                  "split_sizes": {s: dm.split_size(s) for s in (dm.train_split, "val", "test")},
                  "distilled": str(path), "learned_lr": float(synthetic["lr"]) if "lr" in synthetic else None,
                  "selection": selection, "eval": results,
                  "resources": {"distill_seconds": distill_seconds, "peak_memory_mb": distill_peak,
                                "eval_seconds": ev.seconds, "iterations": cfg.iterations
                                if method(cfg.method).learned else 0, **device_used(cfg)}}
        if cfg.reconstruct and dm.features.kind in ("mfcc", "fdmfcc"):
            from audioforge.distill.reconstruct import features_to_audio, write_audio

            waves = features_to_audio(raw_features(synthetic["x"], meta), dm.features)
            files = write_audio(waves, synthetic["y"], dm.class_names, dm.features, out_dir / "audio")
            report["audio"] = {"files": len([f for f in files if f.suffix == ".wav"]), "folder": str(out_dir / "audio")}
        lines = markdown(report, synthetic, dm, out_dir)
        metrics = {f"eval/{arch}/test_acc_mean": r["mean"] for arch, r in results.items()}
        metrics |= {f"eval/{arch}/test_acc_std": r["std"] for arch, r in results.items()}
        metrics |= {"time/distill_seconds": distill_seconds, "memory/peak_mb": distill_peak}
        if selection.get("best_val_acc") is not None:
            metrics["selection/best_val_acc"] = selection["best_val_acc"]
        # the set, its plots, its audio and the checkpoint travel with the run
        extra = [p for p in sorted(out_dir.iterdir()) if p.name not in ("report.md", "report.json")]
        report = run.report(report, lines, metrics, extra)
    return out_dir, report


def markdown(report: dict[str, Any], synthetic: dict[str, torch.Tensor], dm: AudioDataModule, out_dir: Path) -> list[str]:
    """The report's lines; the validation history and the distilled features as plots in ``out_dir``."""
    from audioforge.plots import plt, save

    lines = [f"# {report['name']}: {report['method']} at {report['cpc']} clips per class", "",
             f"Dataset {report['dataset']} ({report['split_sizes']}), features {report['features']} "
             f"{tuple(dm.input_shape)}, distilled with {report['network']}, seed {report['seed']}.", ""]
    sel = report["selection"]
    if sel.get("best_val_acc") is not None:
        lines.append(f"Synthetic set chosen on validation: iteration {sel['best_iteration']} "
                     f"(validation accuracy {sel['best_val_acc']:.4f}).")
    if report["learned_lr"] is not None:
        lines.append(f"Learned learning rate: {report['learned_lr']:.5f}.")
    r = report["resources"]
    lines += [f"Distillation: {r['distill_seconds']:.0f} s, peak memory {r['peak_memory_mb']:.0f} MB "
              f"(whole process).", "", "| evaluated on | test accuracy (mean ± std) | runs |", "|---|---|---|"]
    for arch, res in report["eval"].items():
        lines.append(f"| {arch} | {100 * res['mean']:.2f} ± {100 * res['std']:.2f} % | {len(res['test_acc'])} |")
    if "audio" in report:
        lines += ["", f"Reconstructed audio: {report['audio']['files']} WAV files in `audio/` (Griffin-Lim)."]
    history = sel.get("val_history") or []
    if history:
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.plot(*zip(*history), marker="o")
        ax.set_xlabel("outer iteration")
        ax.set_ylabel("validation accuracy")
        ax.set_title(f"{report['method']}, CPC {report['cpc']}", fontsize=10)
        save(fig, out_dir / "validation.png")
    x, y = synthetic["x"], synthetic["y"]
    classes = dm.num_classes
    fig, axes = plt.subplots(x.shape[1], classes, figsize=(1.3 * classes, 1.3 * x.shape[1]), squeeze=False)
    for c in range(classes):
        first = int(torch.nonzero(y == c)[0])
        for ch in range(x.shape[1]):
            axes[ch][c].imshow(x[first, ch].numpy(), origin="lower", aspect="auto")
            axes[ch][c].set_xticks([])
            axes[ch][c].set_yticks([])
        axes[0][c].set_title(dm.class_names[c], fontsize=8)
    save(fig, out_dir / "distilled.png")
    return lines


def run_distill_eval(cfg: DistillConfig, sets: list[str]) -> tuple[Path, dict[str, Any]]:
    """Evaluate saved distilled sets on ``eval.archs``; the real splits come from ``cfg``'s data."""
    configure_threads(cfg.trainer)
    payloads = [load_distilled(s) for s in sets]
    dm = datamodule(cfg)
    stats = {k: v.tolist() for k, v in getattr(dm, "feature_stats", {}).items()}
    for s, p in zip(sets, payloads):
        if p["meta"]["data_key"] != dm.content_key or bool(p["meta"].get("feature_stats")) != cfg.normalize:
            raise DataError(f"{s} was distilled from other data or features than data/features in this config "
                            f"({p['meta']['dataset']}, {p['meta']['features']['kind']})")
        theirs = p["meta"].get("feature_stats") or {}
        if stats and not all(torch.allclose(torch.tensor(theirs[k]), torch.tensor(stats[k])) for k in stats):
            raise DataError(f"{s} was standardised with other statistics than this config's training split gives "
                            "(another split, protocol or normalize_by): evaluate it with the data options it was "
                            "distilled with")
    rows = []
    with Run("distill-eval", "distill-eval", cfg.output_dir, cfg.tracking, config=to_dict(cfg)) as run:
        for s, p in zip(sets, payloads):
            synthetic = set_tensors(p)
            res = evaluate_archs(cfg, dm, synthetic)
            rows.append({"set": s, "method": p["meta"]["method"], "cpc": p["meta"]["cpc"],
                         "distilled_with": p["meta"]["network"], "eval": res})
        report = {"rows": rows}
        lines = ["| set | method | CPC | distilled with | " + " | ".join(cfg.eval.archs or ["(own)"]) + " |",
                 "|---" * (4 + len(cfg.eval.archs or [1])) + "|"]
        for r in rows:
            cells = " | ".join(f"{100 * v['mean']:.2f} ± {100 * v['std']:.2f}" for v in r["eval"].values())
            lines.append(f"| {r['set']} | {r['method']} | {r['cpc']} | {r['distilled_with']} | {cells} |")
        plot = eval_plot(rows, run.out_dir / "distill_eval.png")
        report = run.report(report, lines, files=[plot])
    return run.out_dir, report


def eval_plot(rows: list[dict[str, Any]], path: Path) -> Path:
    """Test accuracy per set (groups) and evaluation architecture (bars)."""
    from audioforge.plots import grouped_bars, save

    archs = list(rows[0]["eval"])
    groups = [f"{r['method']} CPC {r['cpc']} ({r['distilled_with']})" for r in rows]
    series = {a: ([100 * r["eval"][a]["mean"] for r in rows], [100 * r["eval"][a]["std"] for r in rows]) for a in archs}
    return save(grouped_bars(groups, series, "test accuracy (%)", "distilled sets on fresh networks"), path)
