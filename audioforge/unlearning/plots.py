"""The benchmark's figures: forgetting against utility, and one bar chart per measure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audioforge.plots import grouped_bars, plt, save

BARS = {"avg_gap": "average |accuracy - gold| over 4 splits", "js_to_gold": "JS divergence to gold (bits)",
        "attack_auc_forget_vs_held_out": "attack AUC, forget vs held-out", "time_over_gold": "time / gold time"}


def bench_plots(report: dict[str, Any], folder: Path) -> list[Path]:
    rows = report["leaderboard"]
    models = [m for m in rows if m != "gold"]
    files = []
    fq = report.get("forgetting_quality", {}).get("models", {})
    if fq:
        fig, ax = plt.subplots(figsize=(6, 4))
        for model in models:
            if model in fq and "test_f1" in rows[model]:
                x, y = rows[model]["test_f1"]["mean"], fq[model]["forgetting_quality"]
                ax.errorbar(x, y, xerr=rows[model]["test_f1"]["std"], fmt="o")
                ax.annotate(model, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.axvline(rows["gold"]["test_f1"]["mean"], color="grey", linestyle="--", linewidth=1)
        ax.set_xlabel("test macro F1 (dashed: gold)")
        ax.set_ylabel("forgetting quality (higher: closer to retraining)")
        ax.set_title("forgetting against utility", fontsize=10)
        files.append(save(fig, folder / "forgetting_vs_test.png"))
    for key, label in BARS.items():
        have = [m for m in models if key in rows[m]]
        if have:
            series = {label: ([rows[m][key]["mean"] for m in have], [rows[m][key]["std"] for m in have])}
            files.append(save(grouped_bars(have, series, label, label), folder / f"{key}.png"))
    return files
