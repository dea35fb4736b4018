"""Per-class classification reports (precision, recall, F1, support; macro and weighted) and
their tables and figures, shared by every classification command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from audioforge.plots import confusion_figure, save

AVERAGES = ("macro avg", "weighted avg")


def classification_report(y_true, y_pred, class_names: list[str]) -> dict[str, Any]:
    """scikit-learn's report as a dict, plus the confusion matrix (rows = true class)."""
    from sklearn.metrics import classification_report as sk_report
    from sklearn.metrics import confusion_matrix

    labels = list(range(len(class_names)))
    report = sk_report(y_true, y_pred, labels=labels, target_names=class_names, output_dict=True, zero_division=0)
    report["confusion"] = confusion_matrix(y_true, y_pred, labels=labels).tolist()
    return report


def report_table(report: dict[str, Any], class_names: list[str]) -> list[str]:
    """Markdown lines: one row per class, the averages, and accuracy."""
    lines = ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for name in [*class_names, *AVERAGES]:
        r = report[name]
        lines.append(f"| {name} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1-score']:.3f} | {int(r['support'])} |")
    lines.append(f"| accuracy | | | {report['accuracy']:.3f} | {int(report['macro avg']['support'])} |")
    return lines


def confusion_table(confusion: list[list[int]], class_names: list[str]) -> list[str]:
    lines = ["| true \\ predicted | " + " | ".join(class_names) + " |", "|---" * (len(class_names) + 1) + "|"]
    for name, row in zip(class_names, confusion):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    return lines


def report_figures(report: dict[str, Any], class_names: list[str], title: str, folder: Path,
                   prefix: str = "") -> list[Path]:
    """Confusion heatmap, precision and recall bars, F1 bars per class."""
    import matplotlib.pyplot as plt

    x = np.arange(len(class_names))
    paths = [save(confusion_figure(report["confusion"], class_names, f"{title}: confusion"),
                  folder / f"{prefix}confusion.png")]
    fig, ax = plt.subplots(figsize=(max(4.5, 0.7 * len(class_names) + 2), 3.4))
    ax.bar(x - 0.2, [report[c]["precision"] for c in class_names], 0.4, label="precision")
    ax.bar(x + 0.2, [report[c]["recall"] for c in class_names], 0.4, label="recall")
    ax.set_xticks(x, class_names, rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{title}: precision and recall", fontsize=10)
    ax.legend(fontsize=8)
    paths.append(save(fig, folder / f"{prefix}precision_recall.png"))
    fig, ax = plt.subplots(figsize=(max(4.5, 0.7 * len(class_names) + 2), 3.4))
    ax.bar(x, [report[c]["f1-score"] for c in class_names], 0.6, color="tab:green")
    ax.set_xticks(x, class_names, rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{title}: F1", fontsize=10)
    paths.append(save(fig, folder / f"{prefix}f1.png"))
    return paths
