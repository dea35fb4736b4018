"""``audioforge nas``: how well cheap proxies rank the networks of a search space (DDFAD, section 5.2).

1. **Proxy sets**: each set proxy (``random``, ``herding``, ``mtt`` = DDFAD, any method of the
   distillation registry) builds ``per_class`` clips per class from the training split, once, in a
   worker (``sets/<proxy>/set.pt`` with the seconds it took; a rerun reuses it).
2. **Networks**: a stated random sample of the ConvNet search space (:mod:`.space`).  For each,
   in parallel workers: the *ground truth* (the network on the whole training split, its epoch
   chosen on validation, whose accuracy is the network's score; test scored once, after), and one
   training per set proxy (the network on the proxy set, ``proxy_train`` settings; its best
   validation accuracy is the proxy's score).  The ``early_stopping`` proxy's score is the
   ground-truth run's validation accuracy after ``early_epochs`` (the same run stopped there; the
   learning rate is constant, so its first epochs are those of a run that stops), its time the
   seconds it took to get there.  Every task writes ``networks/<network>/<task>.json``: a stopped
   command resumes with the tasks not yet written.
3. **Report**: per proxy, Spearman's correlation of its scores with the ground truth over all
   sampled networks and over the top ``top_fraction`` by ground truth; the network it would
   choose and that network's ground-truth validation and test accuracy; its time against the
   ground truth's.  Test accuracy is never used to choose anything.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audioforge.config import to_dict
from audioforge.distill.nas.config import EARLY_STOPPING, NASConfig
from audioforge.distill.nas.ranking import spearman, top
from audioforge.distill.nas.space import Candidate, sample
from audioforge.processes import WorkerPool, progress
from audioforge.run import Run
from callbacks.synthetic_validation import kept_start

GROUND_TRUTH = "ground_truth"
PAPER_CORRELATION = {"mtt": 0.73}  # DDFAD Figure 8: top-5% correlation of DDFAD on FSDD (others shown only as a plot)
_loaded: dict[str, Any] = {}       # in a worker: the datamodule, loaded once per process


def datamodule(cfg: NASConfig):
    """The (standardised) datamodule of ``cfg``, loaded once per process."""
    key = json.dumps([to_dict(cfg.data), cfg.features, cfg.seeds[0], cfg.normalize], sort_keys=True)
    if key not in _loaded:
        dm = cfg.data.load(cfg.features, cfg.seeds[0])
        if cfg.normalize:
            dm.standardize()
        _loaded.clear()
        _loaded[key] = dm
    return _loaded[key]


def build_set(cfg: NASConfig, proxy: str, folder: str) -> dict[str, Any]:
    """The ``proxy`` set (in a worker): ``per_class`` clips per class of the training split."""
    from audioforge.distill.experiment import distil
    from audioforge.logs import setup_logging
    from audioforge.training import configure_threads

    setup_logging(quiet=True)
    configure_threads(cfg.trainer)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    dcfg = dataclasses.replace(cfg.distill, method=proxy, cpc=cfg.per_class, seeds=list(cfg.seeds), normalize=False,
                               reconstruct=False, output_dir=str(out), name=f"nas-{proxy}")
    started = time.perf_counter()
    synthetic, selection = distil(dcfg, datamodule(cfg), out, False)
    seconds = time.perf_counter() - started
    torch.save({"x": synthetic["x"].detach().clone(), "y": synthetic["y"].clone()}, out / "set.pt")
    meta = {"proxy": proxy, "seconds": seconds, "size": len(synthetic["y"]),
            "selection": selection}  # with its validation history: why an iteration was chosen
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    progress()
    return meta


def train_network(cfg: NASConfig, candidate: Candidate, seed: int, task: str, set_path: str | None,
                  result_path: str) -> dict[str, Any]:
    """One training of ``candidate`` (in a worker): on the whole training split (``ground_truth``)
    or on a proxy set; writes and returns its result."""
    from audioforge.distill.evaluate import accuracy, train_student
    from audioforge.logs import setup_logging
    from audioforge.training import configure_threads

    setup_logging(quiet=True)
    configure_threads(cfg.trainer)
    dm = datamodule(cfg)
    val = dm.tensors("val")
    if task == GROUND_TRUTH:
        x, y = dm.tensors(dm.train_split)
        settings = cfg.ground_truth
    else:
        saved = torch.load(set_path)
        x, y = saved["x"], saved["y"]
        settings = cfg.proxy_train
    started = time.perf_counter()
    model, best = train_student("convnet", x, y, val, dm.num_classes, settings, seed, network_kwargs=candidate.kwargs,
                                trainer=cfg.trainer)
    result = {"network": candidate.name, "task": task, "val_acc": float(best.best_score),
              "best_epoch": best.best_epoch, "seconds": time.perf_counter() - started,
              "history": [list(h) for h in best.history]}
    if task == GROUND_TRUTH:
        result["test_acc"] = accuracy(model, *dm.tensors("test"))  # scored once, after the epoch was chosen
        if EARLY_STOPPING in cfg.proxies:
            epoch, value, seconds = next(h for h in best.history if h[0] == cfg.early_epochs - 1)
            result["early_stopping"] = {"val_acc": value, "seconds": seconds}
    path = Path(result_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    progress()
    return result


def run_nas(cfg: NASConfig, progress_bar: bool = True) -> tuple[Path, dict[str, Any]]:
    from tqdm import tqdm

    from audioforge.distill.coresets import check_cpc

    cfg.validate()
    dm = datamodule(cfg)
    set_proxies = [p for p in cfg.proxies if p != EARLY_STOPPING]
    if set_proxies:
        check_cpc(dm.tensors(dm.train_split)[1], cfg.per_class, dm.num_classes)
    space = cfg.space.candidates()
    networks = sample(space, cfg.sample, cfg.sample_seed)
    seeds = {c.name: cfg.seeds[0] * 10_000 + space.index(c) for c in networks}
    tags = {"audioforge.networks": str(len(networks))}
    with Run("nas", cfg.name, cfg.output_dir, cfg.tracking, tags, to_dict(cfg)) as run:
        out = run.out_dir
        sets, results = {}, {c.name: {} for c in networks}
        for proxy in set_proxies:
            meta = out / "sets" / proxy / "meta.json"
            if meta.is_file() and (meta.parent / "set.pt").is_file():
                sets[proxy] = json.loads(meta.read_text())
        for c in networks:
            for task in [GROUND_TRUTH, *set_proxies]:
                path = out / "networks" / c.name / f"{task}.json"
                if path.is_file():
                    results[c.name][task] = json.loads(path.read_text())
        todo_sets = [p for p in set_proxies if p not in sets]
        todo = [(c, t) for c in networks for t in [GROUND_TRUTH, *set_proxies] if t not in results[c.name]]
        # the sets first (their networks wait for them), then ground truths, widest networks first
        todo.sort(key=lambda ct: (ct[1] != GROUND_TRUTH, -_cost(ct[0])))
        with tqdm(total=len(todo_sets) + len(todo), unit="task", desc=cfg.name, disable=not progress_bar,
                  dynamic_ncols=True) as bar, WorkerPool(cfg.jobs, progress=bar.update, status=bar.set_postfix_str) as pool:
            for proxy in todo_sets:
                pool.submit(("set", proxy), build_set, cfg, proxy, str(out / "sets" / proxy))

            def submit(c: Candidate, task: str) -> None:
                set_path = None if task == GROUND_TRUTH else str(out / "sets" / task / "set.pt")
                pool.submit((c.name, task), train_network, cfg, c, seeds[c.name], task, set_path,
                            str(out / "networks" / c.name / f"{task}.json"))

            for c, task in todo:
                if task == GROUND_TRUTH or task in sets:
                    submit(c, task)
            while pool.pending:
                key, value = pool.next()
                if key[0] == "set":
                    sets[key[1]] = value
                    for c, task in todo:
                        if task == key[1]:
                            submit(c, task)
                else:
                    results[key[0]][key[1]] = value
        report = summarize(cfg, networks, sets, results)
        for c in networks:  # one nested run per network: its architecture and every score, for the UI
            with run.child(c.name, {f"audioforge.{k}": str(v) for k, v in c.kwargs.items()}) as child:
                if child:
                    run.log_metrics(report["networks"][c.name]["scores"], child)
        plot = scatter_plot(report, out / "proxy_vs_ground_truth.png")
        metrics = {f"{p}/{k}": v for p, entry in report["proxies"].items()
                   for k, v in entry.items() if k in ("spearman_all", "spearman_top", "chosen_test_acc", "time_ratio")
                   and v is not None}
        report = run.report(report, markdown(report), metrics, [plot])
    return out, report


def _cost(c: Candidate) -> float:
    """Rough relative training cost (multiply-adds of the convolutions on a 20 x 20 map)."""
    size, total, channels = 400.0, 0.0, 3
    for _ in range(c.depth):
        total += size * channels * c.width
        channels = c.width
        if c.pooling != "none":
            size /= 4
    return total


def summarize(cfg: NASConfig, networks: list[Candidate], sets: dict[str, dict],
              results: dict[str, dict[str, dict]]) -> dict[str, Any]:
    names = [c.name for c in networks]
    gt = np.array([results[n][GROUND_TRUTH]["val_acc"] for n in names])
    test = np.array([results[n][GROUND_TRUTH]["test_acc"] for n in names])
    gt_seconds = float(sum(results[n][GROUND_TRUTH]["seconds"] for n in names))
    best = top(gt, cfg.top_fraction, cfg.top_minimum)
    per_network = {n: {"architecture": c.kwargs, "scores": {"ground_truth/val_acc": float(gt[i]),
                                                             "ground_truth/test_acc": float(test[i])}}
                   for i, (n, c) in enumerate(zip(names, networks))}
    proxies: dict[str, dict[str, Any]] = {}
    for proxy in cfg.proxies:
        if proxy == EARLY_STOPPING:
            scores = np.array([results[n][GROUND_TRUTH]["early_stopping"]["val_acc"] for n in names])
            seconds = float(sum(results[n][GROUND_TRUTH]["early_stopping"]["seconds"] for n in names))
            build, selection = 0.0, None
        else:
            scores = np.array([results[n][proxy]["val_acc"] for n in names])
            build = float(sets[proxy]["seconds"])
            selection = sets[proxy].get("selection")
            seconds = float(sum(results[n][proxy]["seconds"] for n in names)) + build
        chosen = int(np.argmax(scores))  # ties: the first in space order
        for i, n in enumerate(names):
            per_network[n]["scores"][f"{proxy}/val_acc"] = float(scores[i])
        proxies[proxy] = {"spearman_all": spearman(scores, gt), "spearman_top": spearman(scores[best], gt[best]),
                          "chosen": names[chosen], "chosen_ground_truth_val_acc": float(gt[chosen]),
                          "chosen_test_acc": float(test[chosen]), "seconds": seconds, "set_seconds": build,
                          "time_ratio": seconds / gt_seconds if gt_seconds else None,
                          "paper_spearman_top": PAPER_CORRELATION.get(proxy),
                          # a learned set that selection left at iteration 0: real clips, as a Random set's
                          "kept_start": kept_start(selection)}
    oracle = int(np.argmax(gt))
    return {"name": cfg.name, "dataset": cfg.data.dataset, "space_size": len(cfg.space.candidates()),
            "sampled": len(names), "sample_seed": cfg.sample_seed, "top": [names[i] for i in best],
            "ground_truth": {"chosen": names[oracle], "val_acc": float(gt[oracle]), "test_acc": float(test[oracle]),
                             "seconds": gt_seconds, "epochs": cfg.ground_truth.epochs},
            "settings": {"per_class": cfg.per_class, "proxy_epochs": cfg.proxy_train.epochs,
                         "early_epochs": cfg.early_epochs, "top_fraction": cfg.top_fraction,
                         "top_minimum": cfg.top_minimum},
            "proxies": proxies, "networks": per_network}


def _num(v: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if v is None else fmt.format(v)


def markdown(report: dict[str, Any]) -> list[str]:
    s, g = report["settings"], report["ground_truth"]
    k = len(report["top"])
    lines = [f"# {report['name']}: architecture search proxies on {report['dataset']}", "",
             f"{report['sampled']} of the {report['space_size']} ConvNets of the search space (drawn with seed "
             f"{report['sample_seed']}). Ground truth: each network trained {g['epochs']} epochs on the whole "
             f"training split, scored by its best validation accuracy. Set proxies: {s['per_class']} clips per "
             f"class, {s['proxy_epochs']} epochs; early stopping: the first {s['early_epochs']} epochs of the "
             f"ground-truth run. Spearman's correlation with the ground truth over all sampled networks and over "
             f"the top {k} by ground truth (the best {100 * s['top_fraction']:.0f}%, at least {s['top_minimum']}).", "",
             "| proxy | Spearman (all) | Spearman (top) | paper (top 5%) | chosen network | its validation (GT) | "
             "its test | time (s) | time / GT |", "|---|---|---|---|---|---|---|---|---|"]
    for proxy, e in report["proxies"].items():
        label = f"{proxy} **(kept its starting set)**" if e.get("kept_start") else proxy
        lines.append(f"| {label} | {_num(e['spearman_all'])} | {_num(e['spearman_top'])} | "
                     f"{_num(e['paper_spearman_top'])} | {e['chosen']} | {100 * e['chosen_ground_truth_val_acc']:.2f} | "
                     f"{100 * e['chosen_test_acc']:.2f} | {e['seconds']:.0f} | {_num(e['time_ratio'], '{:.3f}')} |")
    lines.append(f"| ground truth | 1 | 1 | - | {g['chosen']} | {100 * g['val_acc']:.2f} | {100 * g['test_acc']:.2f} | "
                 f"{g['seconds']:.0f} | 1 |")
    lines += ["", "Set proxies' times include building the set (distillation, or herding's embedding network). "
              "A correlation is `-` where it is undefined (a constant score). Test accuracy is read only for "
              "this table: no choice uses it."]
    if any(e.get("kept_start") for e in report["proxies"].values()):
        lines += ["", "**Kept its starting set**: no later iteration of the distillation scored higher on the "
                     "validation split (or as high with a lower loss), so the proxy trained on the real clips "
                     "it started from: it measures a Random set, not the method."]
    lines += ["", f"Top {k} networks by ground truth: "
              + ", ".join(report["top"]) + ".", ""]
    return lines


def scatter_plot(report: dict[str, Any], path: Path) -> Path:
    from audioforge.plots import plt, save

    proxies = list(report["proxies"])
    fig, axes = plt.subplots(1, len(proxies), figsize=(3.6 * len(proxies), 3.4), squeeze=False)
    gt = [v["scores"]["ground_truth/val_acc"] for v in report["networks"].values()]
    for ax, proxy in zip(axes[0], proxies):
        xs = [v["scores"][f"{proxy}/val_acc"] for v in report["networks"].values()]
        ax.scatter(xs, gt, s=12, alpha=0.7)
        rho = report["proxies"][proxy]["spearman_all"]
        ax.set_title(f"{proxy} (rho {_num(rho)})", fontsize=10)
        ax.set_xlabel("proxy validation accuracy")
        ax.set_ylabel("ground-truth validation accuracy")
    return save(fig, path)
