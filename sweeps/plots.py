"""Study plots as PNG files (Optuna's matplotlib backend)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402

from sweeps.config import OBJECTIVES, SweepConfig  # noqa: E402

log = logging.getLogger(__name__)


def study_plots(study: optuna.Study, sweep: SweepConfig, folder: Path) -> list[Path]:
    import optuna.visualization.matplotlib as vis

    multi = sweep.objective.mode == "multi"
    score = (lambda t: sweep.objective.score(dict(zip(OBJECTIVES, t.values)))) if multi else None
    jobs = {
        "optimization_history.png": lambda: vis.plot_optimization_history(study, target=score, target_name="score"),
        "param_importances.png": lambda: vis.plot_param_importances(study, target=score, target_name="score"),
    }
    if multi:
        jobs["pareto_front.png"] = lambda: vis.plot_pareto_front(study, targets=lambda t: t.values[:2],
                                                                 target_names=list(OBJECTIVES[:2]))
    out = []
    for name, make in jobs.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ax = make()
            fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
            fig.savefig(folder / name, dpi=100, bbox_inches="tight")
            plt.close(fig)
            out.append(folder / name)
        except Exception as exc:  # e.g. importances need varied parameters
            log.warning("could not draw %s: %s", name, exc)
    return out
