"""Aggregating seeds into the paper's tables, statistics, timing, and writing the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from audioforge.run import paired_test, summary
from audioforge.plots import grouped_bars, save

SPLITS = ("test", "excluded")
METRICS = ("acc", "precision", "recall", "f1")
# Wu and Toribio, Tables 1 and 2 (macro F1).
PAPER = {
    "table1": {"base": {"test": -0.0223, "excluded": -0.1596}, "all_bn": {"test": -0.0207, "excluded": -0.1667},
               "conv_bn": {"test": -0.0193, "excluded": -0.1793}},
    "table2": {"base": {"test": -0.04, "excluded": 0.14}, "all_bn": {"test": -0.03, "excluded": 0.13},
               "conv_bn": {"test": -0.03, "excluded": 0.12}},
}


def build_report(name: str, seeds_results: list[dict[str, Any]], schemes: list[str],
                 split_sizes: dict[str, int]) -> dict[str, Any]:
    results = sorted(seeds_results, key=lambda r: r["seed"])
    models = ["original", "gold", *schemes]

    def metric(model: str, split: str, m: str) -> list[float]:
        return [r["models"][model]["metrics"][split][m] for r in results]

    report: dict[str, Any] = {
        "experiment": name,
        "seeds": [r["seed"] for r in results],
        "split_sizes": split_sizes,
        "metrics": {model: {split: {m: summary(metric(model, split, m)) for m in METRICS}
                            for split in (*SPLITS, "val", "retain_train")} for model in models},
        "deltas": {ref: {m: {s: {split: summary(np.subtract(metric(s, split, m), metric(ref, split, m)))
                                 for split in SPLITS} for s in schemes} for m in METRICS}
                   for ref in ("original", "gold")},
    }
    report["table1"] = {s: {split: _ms(report["deltas"]["original"]["f1"][s][split]) for split in SPLITS} for s in schemes}
    report["table2"] = {s: {split: _ms(report["deltas"]["gold"]["f1"][s][split]) for split in SPLITS} for s in schemes}
    if {"base", "conv_bn"} <= set(schemes):
        report["paired_test"] = {"conv_bn_vs_base": {split: paired_test(metric("conv_bn", split, "f1"),
                                                                        metric("base", split, "f1"))
                                                     for split in SPLITS},
                                 "test": "paired t-test over seeds on macro F1, two-sided"}
    if all("membership" in r["models"]["original"] for r in results):
        report["membership"] = {model: {k: summary([r["models"][model]["membership"][k] for r in results])
                                        for k in results[0]["models"][model]["membership"]} for model in models}
    report["forgetting"] = forgetting_measures(results, models)
    gold_seconds = [r["models"]["gold"]["seconds"] for r in results]
    report["timing"] = {
        "seconds": {model: summary([r["models"][model]["seconds"] for r in results]) for model in models},
        "phase_seconds": {s: {p: summary([r["models"][s]["phase_seconds"][p] for r in results])
                              for p in results[0]["models"][s]["phase_seconds"]} for s in schemes},
        "unlearn_over_gold": {s: _ms(summary(np.divide([r["models"][s]["seconds"] for r in results], gold_seconds)))
                              for s in schemes},
        "unlearn_epochs_over_gold_epochs": {s: results[0]["models"][s]["epochs"] / results[0]["models"]["gold"]["epochs"]
                                            for s in schemes},
    }
    report["paper"] = PAPER
    return report


def forgetting_measures(results: list[dict[str, Any]], models: list[str]) -> dict[str, Any]:
    """Per model, over seeds: the Jensen-Shannon divergence of its forget-set outputs to the gold
    model's (0 = the gold model's outputs), and the linear probe's AUC at recognising the forget
    speaker from penultimate features (compare with the gold model's)."""
    import torch

    from audioforge.evaluation import js_divergence

    out: dict[str, Any] = {}
    for model in models:
        entry: dict[str, Any] = {}
        if all("forget_logits" in r["models"][m] for r in results for m in (model, "gold")):
            entry["js_to_gold"] = summary([js_divergence(torch.load(r["models"][model]["forget_logits"])["logits"],
                                                         torch.load(r["models"]["gold"]["forget_logits"])["logits"])
                                           for r in results])
        if all("probe_auc" in r["models"][model] for r in results):
            entry["probe_auc"] = summary([r["models"][model]["probe_auc"] for r in results])
        if all("target_auc" in r["models"][model].get("membership", {}) for r in results):
            entry["attack_auc_forget_vs_held_out"] = summary([r["models"][model]["membership"]["target_auc"]
                                                              for r in results])
        out[model] = entry
    return out


def _ms(entry: dict[str, Any]) -> dict[str, float]:
    return {"mean": entry["mean"], "std": entry["std"]}


def _fmt(entry: dict[str, Any], digits: int = 4) -> str:
    return f"{entry['mean']:+.{digits}f} ± {entry['std']:.{digits}f}"


def markdown(report: dict[str, Any]) -> str:
    schemes = list(report["table1"])
    n = len(report["seeds"])
    forget = report.get("forget")
    lines = [f"# {report['experiment']}", "",
             (f"Dataset {forget['dataset']}; forget set: {forget['set']} (excluded). " if forget else "")
             + f"Seeds {report['seeds']} (mean ± sample std over {n} seed{'s' * (n > 1)}). Split sizes: "
             + ", ".join(f"{k} {v}" for k, v in report["split_sizes"].items()) + ".", ""]
    for key, title in (("table1", "Table 1: macro F1 after minus before unlearning"),
                       ("table2", "Table 2: macro F1 unlearned minus gold")):
        lines += [f"## {title}", "", "| scheme or method | test | excluded | paper test | paper excluded |",
                  "|---|---|---|---|---|"]
        for s in schemes:
            paper = report["paper"][key].get(s)
            cited = f"{paper['test']:+.4f} | {paper['excluded']:+.4f}" if paper else "- | -"
            lines.append(f"| {s} | {_fmt(report[key][s]['test'])} | {_fmt(report[key][s]['excluded'])} | {cited} |")
        lines.append("")
    lines += ["## All metrics (mean ± std)", "", "| model | split | accuracy | precision | recall | macro F1 |",
              "|---|---|---|---|---|---|"]
    for model, splits in report["metrics"].items():
        for split in SPLITS:
            m = splits[split]
            lines.append(f"| {model} | {split} | " + " | ".join(f"{m[k]['mean']:.4f} ± {m[k]['std']:.4f}" for k in METRICS) + " |")
    lines += ["", "Differences for every metric are in `report.json` under `deltas`.", ""]
    if "paired_test" in report:
        lines += ["## conv_bn vs base", "", report["paired_test"]["test"] + ":", ""]
        for split in SPLITS:
            t = report["paired_test"]["conv_bn_vs_base"][split]
            p = "n/a (needs 2+ seeds with differing gaps)" if t["p_value"] is None else f"{t['p_value']:.4f}"
            lines.append(f"- {split}: mean F1 difference {t['mean_difference']:+.4f}, p = {p} (n = {t['n']})")
        lines.append("")
    if "membership" in report:
        lines += ["## Membership inference", "",
                  "Standardised logistic regression on each clip's true-class probability, entropy and log-loss, "
                  "trained on retain-train (members) vs test (non-members), applied to the forget set (excluded).", "",
                  "| model | attack accuracy (members vs non-members) | excluded called member |", "|---|---|---|"]
        for model, m in report["membership"].items():
            lines.append(f"| {model} | {m['attack_accuracy']['mean']:.3f} ± {m['attack_accuracy']['std']:.3f} | "
                         f"{m['target_member_rate']['mean']:.3f} ± {m['target_member_rate']['std']:.3f} |")
        lines.append("")
    if any(report.get("forgetting", {}).values()):
        lines += ["## Forgetting", "",
                  "Jensen-Shannon divergence (bits) of forget-set outputs to the gold model's; a linear probe's "
                  "AUC at telling the forget set's penultimate features from retain-train's (compare "
                  "with gold); the attack's AUC at telling forget clips from held-out clips of the forget set "
                  "(with `data.forget_holdout`; the original's value is the attack's power).", "",
                  "| model | JS to gold | probe AUC | attack AUC, forget vs held-out |", "|---|---|---|---|"]
        for model, f in report["forgetting"].items():
            cells = [f"{f[k]['mean']:.4f} ± {f[k]['std']:.4f}" if k in f else "-"
                     for k in ("js_to_gold", "probe_auc", "attack_auc_forget_vs_held_out")]
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
        lines.append("")
    t = report["timing"]
    lines += ["## Wall time (seconds per seed)", "", "| model | fit seconds | phases |", "|---|---|---|"]
    for model, sec in t["seconds"].items():
        phases = ", ".join(f"{p} {v['mean']:.1f}" for p, v in t["phase_seconds"].get(model, {}).items())
        lines.append(f"| {model} | {sec['mean']:.1f} ± {sec['std']:.1f} | {phases} |")
    lines += ["", "Unlearning time / gold training time: " + ", ".join(
        f"{s} {v['mean']:.3f}" for s, v in t["unlearn_over_gold"].items())
        + " (epoch ratio " + ", ".join(f"{s} {v:.3f}" for s, v in t["unlearn_epochs_over_gold_epochs"].items()) + ").", ""]
    return "\n".join(lines)


def plots(report: dict[str, Any], folder: Path) -> list[Path]:
    """The tables' bar plots (and the membership plot) in ``folder``."""
    schemes = list(report["table1"])
    files = []
    for key, title in (("table1", "macro F1 after - before unlearning"), ("table2", "macro F1 unlearned - gold")):
        series = {s: ([report[key][s][sp]["mean"] for sp in SPLITS], [report[key][s][sp]["std"] for sp in SPLITS])
                  for s in schemes}
        files.append(save(grouped_bars(list(SPLITS), series, "Δ macro F1", title), folder / f"{key}.png"))
    if "membership" in report:
        models = list(report["membership"])
        rate = [report["membership"][m]["target_member_rate"] for m in models]
        fig = grouped_bars(models, {"excluded called member": ([r["mean"] for r in rate], [r["std"] for r in rate])},
                           "share", "membership inference on the forget set")
        files.append(save(fig, folder / "membership.png"))
    return files
