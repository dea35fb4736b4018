"""The forgetting-quality estimator's noise floor (docs/unlearning.md, "Measuring forgetting"):
gold outputs N(0, 1) against unlearned N(shift, 1), 400 examples, N models per side.

    .venv/bin/python docs/forgetting_floor.py
"""

import numpy as np

from audioforge.unlearning.forgetting import forgetting_quality, worst_score

SHIFTS = (0.0, 0.5, 1.0, 2.0, 4.0)

if __name__ == "__main__":
    print("| N per side | " + " | ".join(f"shift {s:g}" for s in SHIFTS) + " | worst possible |")
    for n in (8, 16, 32, 64, 128):
        rng = np.random.default_rng(1)
        gold = rng.normal(size=(n, 400))
        row = [forgetting_quality(gold, rng.normal(loc=s, size=(n, 400)))["forgetting_quality"] for s in SHIFTS]
        print(f"| {n} | " + " | ".join(f"{v:.3f}" for v in row) + f" | {worst_score(n):.4g} |")
