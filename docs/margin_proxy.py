"""Which one-model score ranks unlearning methods as forgetting quality does (docs/unlearning.md,
"Tuning on the forget margins").  Reads a finished benchmark's forgetting-quality cell: every
model's forget-set logits per seed, and the report's forgetting quality and likelihood-ratio AUC per
model.  For random single seeds (what a tuning study scores one trial on), each candidate score of
every model against the gold model of the same seed; the Spearman rank correlation of the models'
scores with their forgetting quality (negated: lower score, better forgetting) and with the
per-example LiRA AUC; mean and std over the draws.

    .venv/bin/python docs/margin_proxy.py BENCH_FOLDER [--draws 20]
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from audioforge.evaluation import js_divergence
from audioforge.unlearning.forgetting import logit_margin, margin_distance


def candidates(logits: torch.Tensor, gold: torch.Tensor, original: torch.Tensor, labels: torch.Tensor) -> dict:
    m, g, o = (logit_margin(x.numpy(), labels.numpy()) for x in (logits, gold, original))
    return {"forget accuracy gap": abs((m > 0).mean() - (g > 0).mean()),
            "JS divergence to gold": js_divergence(logits, gold),
            "per-example |margin - gold's|": float(np.abs(m - g).mean()),
            "margin distance (forget_margin)": margin_distance(m, g, o)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("bench", type=Path)
    parser.add_argument("--draws", type=int, default=20)
    args = parser.parse_args()
    fq = json.loads((args.bench / "report.json").read_text())["forgetting_quality"]
    folder = args.bench / "cells" / fq["cell"]
    models, n = list(fq["models"]), fq["models_per_side"]
    quality = [fq["models"][k]["forgetting_quality"] for k in models]
    lira = [fq["models"][k]["lira"]["example_auc"] for k in models]
    load = lambda seed, model: torch.load(folder / f"seed-{seed}" / model / "forget_logits.pt")  # noqa: E731
    rho: dict[str, tuple[list, list]] = {}
    for seed in np.random.default_rng(0).choice(n, size=min(args.draws, n), replace=False):
        gold, original = load(seed, "gold"), load(seed, "original")
        scores = [candidates(load(seed, k)["logits"], gold["logits"], original["logits"], gold["labels"]) for k in models]
        for name in scores[0]:
            values = [s[name] for s in scores]
            rho.setdefault(name, ([], []))[0].append(spearmanr([-v for v in values], quality).statistic)
            rho[name][1].append(spearmanr(values, lira).statistic)
    print(f"{len(models)} models, cell {fq['cell']}, {n} per side; one seed per draw, "
          f"{min(args.draws, n)} draws\n")
    print("| score (one model against the gold model of its seed) | Spearman with forgetting quality | "
          "Spearman with LiRA AUC |\n|---|---|---|")
    for name, (q, a) in rho.items():
        print(f"| {name} | {np.mean(q):.2f} ± {np.std(q):.2f} | {np.mean(a):.2f} ± {np.std(a):.2f} |")
    gold_pairs = [margin_distance(*(logit_margin(load(s, k)["logits"].numpy(), load(s, k)["labels"].numpy())
                                    for s, k in ((a, "gold"), (b, "gold"), (b, "original"))))
                  for a, b in zip(range(n), list(range(1, n)) + [0])]
    print(f"\nmargin distance of a gold model to another seed's gold: {np.mean(gold_pairs):.3f} ± {np.std(gold_pairs):.3f}")
    print(f"\n| model | forgetting quality | margin distance, mean ± std over its {n} seeds |\n|---|---|---|")
    for k, q in sorted(zip(models, quality), key=lambda kq: -kq[1]):
        d = [margin_distance(*(logit_margin(load(s, m)["logits"].numpy(), load(s, m)["labels"].numpy())
                               for m in (k, "gold", "original"))) for s in range(n)]
        print(f"| {k} | {q:.3f} | {np.mean(d):.3f} ± {np.std(d):.3f} |")


if __name__ == "__main__":
    main()
