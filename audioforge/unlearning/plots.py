"""The benchmark's figures: forgetting against utility, and one bar chart per measure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audioforge.plots import grouped_bars, plt, save

BARS = {"avg_gap": "average |accuracy - gold| over 4 splits", "js_to_gold": "JS divergence to gold (bits)",
        "attack_auc_forget_vs_held_out": "attack AUC, forget vs held-out", "time_over_gold": "time / gold time"}


def bench_plots(report: dict[str, Any], folder: Path) -> list[Path]:
    files = forget_set_plot(report, folder) + quality_plot(report, folder)
    if "leaderboard" not in report:
        return files
    rows = report["leaderboard"]
    models = [m for m in rows if m != "gold"]
    for key, label in BARS.items():
        have = [m for m in models if key in rows[m]]
        if have:
            series = {label: ([rows[m][key]["mean"] for m in have], [rows[m][key]["std"] for m in have])}
            files.append(save(grouped_bars(have, series, label, label), folder / f"{key}.png"))
    return files


def quality_plot(report: dict[str, Any], folder: Path) -> list[Path]:
    """Forgetting quality against test F1 on the forgetting-quality cell."""
    from audioforge.unlearning.bench import quality_rows

    if "forgetting_quality" not in report:
        return []
    fq, rows = report["forgetting_quality"]["models"], quality_rows(report)
    fig, ax = plt.subplots(figsize=(6, 4))
    for model in rows:
        if model in fq and "test_f1" in rows[model]:
            x, y = rows[model]["test_f1"]["mean"], fq[model]["forgetting_quality"]
            ax.errorbar(x, y, xerr=rows[model]["test_f1"]["std"], fmt="o")
            ax.annotate(model, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.axvline(rows["gold"]["test_f1"]["mean"], color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("test macro F1 (dashed: gold)")
    ax.set_ylabel("forgetting quality (higher: closer to retraining)")
    ax.set_title(f"forgetting against utility ({report['forgetting_quality']['cell']})", fontsize=10)
    return [save(fig, folder / "forgetting_vs_test.png")]


def forget_set_plot(report: dict[str, Any], folder: Path) -> list[Path]:
    """Average gap to gold per model, one series per kind of cell (the speakers, each forget set)."""
    tables = {f"{name} ({t['forget_set']})": t["leaderboard"] for name, t in report.get("forget_sets", {}).items()}
    if not tables:
        return []
    if "leaderboard" in report:
        tables = {"speakers": report["leaderboard"]} | tables
    models = [m for m in next(iter(tables.values())) if m != "gold"]
    series = {label: ([rows[m]["avg_gap"]["mean"] for m in models], [rows[m]["avg_gap"]["std"] for m in models])
              for label, rows in tables.items()}
    fig = grouped_bars(models, series, BARS["avg_gap"], "average gap to gold by forget set")
    fig.set_size_inches(max(6.0, 0.6 * len(models)), 3.6)
    fig.axes[0].tick_params(axis="x", labelrotation=60)
    return [save(fig, folder / "avg_gap_by_forget_set.png")]
