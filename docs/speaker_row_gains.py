"""Table 1's DC/DSA/DM ConvNet row under the speaker protocol over its three rotations
(docs/distillation.md, "DC, DSA and DM under the speaker protocol"): each method's gain over
Random paired by rotation, with the table's own statistics (``paired_gain``).

The george and jackson rotations ran as one table (2026-12-07) whose cells did not survive;
their per-rotation means are the ones its report printed (rounded to 0.01, so a gain here may
differ from one computed on the cells by 0.01). The lucas rotation (2026-12-08) is read from its
report, ``docs/results/distill-speaker-table1-convnet-lucas.json``.

    .venv/bin/python docs/speaker_row_gains.py
"""

import json
import statistics
from pathlib import Path

from audioforge.distill.tables import paired_gain

METHODS = ["dc", "dsa", "dm", "random", "herding"]
# test speaker -> CPC -> method -> mean test accuracy (%) of 5 fresh ConvNets
EARLIER = {
    "george": {1: [33.32, 28.96, 26.36, 19.20, 17.80], 10: [30.08, 30.80, 44.36, 31.84, 27.12]},
    "jackson": {1: [43.04, 49.20, 49.48, 21.20, 28.88], 10: [66.20, 68.40, 69.52, 59.80, 70.08]},
}


def rotation_means() -> dict[str, dict[int, dict[str, float]]]:
    means = {s: {cpc: dict(zip(METHODS, v)) for cpc, v in row.items()} for s, row in EARLIER.items()}
    report = json.loads((Path(__file__).parent / "results/distill-speaker-table1-convnet-lucas.json").read_text())
    (rotation,) = report["rotations"]
    for cell in report["cells"].values():
        means.setdefault(rotation["test"], {}).setdefault(cell["cpc"], {})[cell["method"]] = 100 * cell["eval"]["convnet"]["mean"]
    return means


def main() -> None:
    means = rotation_means()
    speakers = list(means)
    print(f"rotations (test speakers): {', '.join(speakers)}")
    for cpc in (1, 10):
        for method in METHODS:
            values = [means[s][cpc][method] for s in speakers]
            line = f"CPC {cpc:2d} {method:8s} {statistics.mean(values):6.2f} ± {statistics.stdev(values):5.2f}"
            if method != "random":
                gains = [v - means[s][cpc]["random"] for v, s in zip(values, speakers)]
                g = paired_gain(gains)
                line += (f"   gain over Random {g['mean']:+6.2f} ± {g['std']:5.2f}, p = {g['p']:.3f}"
                         f"   ({', '.join(f'{x:+.2f}' for x in gains)})")
            print(line)


if __name__ == "__main__":
    main()
