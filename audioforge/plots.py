"""Figures for reports (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save(fig, path: Path, tight: bool = True) -> Path:
    """Write ``fig`` as PNG and close it; ``tight`` trims the margins (a second draw: figures laid
    out by hand, such as :func:`confusion_figure`, pass False and save in about half the time)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return path


def confusion_figure(matrix: np.ndarray, class_names: list[str], title: str):
    """The matrix with its class names; long names (``children_playing``) stand
    upright and the margins grow with the longest name, so no label overlaps another or is cut."""
    matrix = np.asarray(matrix)
    longest = max((len(str(c)) for c in class_names), default=1)
    rotate = longest > 3 and len(class_names) > 4
    margin = 0.075 * longest if rotate else 0.0   # inches an upright 8-point label needs (about 0.075 per character)
    side = max(4.2, 0.42 * len(class_names))
    width, height = side + 0.6 + (0.08 * longest if longest > 3 else 0.2), side + margin
    fig, ax = plt.subplots(figsize=(width, height))
    fig.subplots_adjust(left=(0.5 + (0.08 * longest if longest > 3 else 0.2)) / width, right=1 - 0.15 / width,
                        bottom=(0.5 + margin) / height, top=1 - 0.35 / height)  # save(tight=False) fits
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names, rotation=90 if rotate else 0, ha="right" if rotate else "center",
                  va="center" if rotate else "top", rotation_mode="anchor", fontsize=8)
    ax.set_yticks(range(len(class_names)), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    peak = matrix.max() if matrix.size else 0
    for (i, j), v in np.ndenumerate(matrix):
        if v:
            ax.text(j, i, int(v), ha="center", va="center", fontsize=7, color="white" if v > peak / 2 else "black")
    return fig


def grouped_bars(groups: list[str], series: dict[str, tuple[list[float], list[float]]], ylabel: str, title: str):
    """Bars with error bars: ``series[name] = (means per group, stds per group)``."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(groups))
    for k, (name, (means, stds)) in enumerate(series.items()):
        ax.bar(x + (k - (len(series) - 1) / 2) * width, means, width, yerr=stds, capsize=3, label=name)
    ax.axhline(0, color="black", linewidth=0.7)
    ax.set_xticks(x, groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return fig
