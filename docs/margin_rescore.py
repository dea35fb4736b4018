"""Which trial each finished tuning study would choose with ``forget_margin`` added to its objective
(docs/unlearning.md, "Tuning on the forget margins"), from the trials it already ran: no training.
Reads a benchmark's ``tuning/studies.db`` and each trial's forget-set logits, and the tuning seed's
cached gold and original models (run with the ``AUDIOFORGE_CACHE`` the benchmark used).

    AUDIOFORGE_CACHE=DIR .venv/bin/python docs/margin_rescore.py BENCH_FOLDER [--seed 100] [--data ../shared/data]
"""

import argparse
from pathlib import Path

import optuna
import torch

from audioforge.config import load_config
from audioforge.unlearning.config import UnlearnConfig
from audioforge.unlearning.forgetting import logit_margin, margin_distance
from audioforge.unlearning.protocol import build_datamodule, cached_forget_scores


def margins(scores):
    return logit_margin(scores["logits"].numpy(), scores["labels"].numpy())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("bench", type=Path)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--config", default="configs/unlearn/paper.yaml")
    parser.add_argument("--speaker", default="george")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = load_config(UnlearnConfig, [Path(args.config)],
                      [f"data.root={args.data}", "data.forget_holdout=0.2", f"seeds=[{args.seed}]",
                       f"data.forget_speakers=[{args.speaker}]", "data.sealed_splits=[test]"])
    dm = build_datamodule(cfg, args.seed)
    dm.setup()
    ref = {role: cached_forget_scores(cfg, role, args.seed, dm)[0] for role in ("gold", "original")}
    ref = {role: logit_margin(s.logits.numpy(), s.labels.numpy()) for role, s in ref.items()}
    storage = f"sqlite:///{(args.bench / 'tuning' / 'studies.db').resolve()}"
    print("| method | chosen (its objective) | forget_margin of it | chosen with forget_margin added | "
          "forget_margin of that |\n|---|---|---|---|---|")
    for summary in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        method = summary.study_name.removeprefix("tune-")
        rows = []
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            forget = torch.load(args.bench / "tuning" / method / f"trial-{t.number}" / f"seed-{args.seed}" / method
                                / "forget_logits.pt")
            distance = margin_distance(margins(forget), ref["gold"], ref["original"])
            rows.append((t.number, t.value, distance, t.params))
        baseline = study.user_attrs.get("baseline")  # the defaults, scored on the same seed: chosen when no trial beats them
        if baseline is not None:
            forget = torch.load(args.bench / "tuning" / method / "baseline" / f"seed-{args.seed}" / method / "forget_logits.pt")
            rows.append(("defaults", baseline["score"], margin_distance(margins(forget), ref["gold"], ref["original"]), {}))
        old = min(rows, key=lambda r: r[1])
        new = min(rows, key=lambda r: r[1] + r[2])
        name = lambda r: r[0] if r[0] == "defaults" else f"trial {r[0]}"  # noqa: E731
        settings = ", ".join(f"{k.split('.')[-1]} {v:.3g}" if isinstance(v, float) else f"{k.split('.')[-1]} {v}"
                             for k, v in new[3].items())
        print(f"| {method} | {name(old)} | {old[2]:.3f} | {name(new)}"
              f"{' (the same)' if new[0] == old[0] else ': ' + settings} | {new[2]:.3f} |")


if __name__ == "__main__":
    main()
