"""The automatic p_min rule (issue 8 item 4): glosh-spectral AUC for p_min = max(100, f * pixels) with
f in 1, 3, 5, 8, 12, 20 %, on the nine development scenes, the same scenes with 1 % and 5 % of their pixels
planted with one recipe (``plant_one_recipe``: similar 1-px targets that form a cluster of their own when
p_min is smaller than their count), and the stress set's [0, 1] scenes (3 % planted).
Run: ``python benchmarks/bench_pmin.py``; saves benchmarks/results/bench_pmin.md.
"""

from __future__ import annotations

import numpy as np
from common import git_head, save_table
from sklearn.metrics import roc_auc_score
from stress import DATA, load_scene, stress_set

from napari_hsi_anomaly.core.scoring import detect
from napari_hsi_anomaly.core.scoring.validation import plant_one_recipe

FRACTIONS = (0.01, 0.03, 0.05, 0.08, 0.12, 0.2)


def aucs(cube: np.ndarray, gt: np.ndarray) -> list[float]:
    det = detect(cube, "glosh-spectral")
    n = cube.shape[1] * cube.shape[2]
    return [roc_auc_score(gt.ravel(), det.rescore(max(100, int(np.ceil(f * n)))).ravel()) for f in FRACTIONS]


def main() -> str:
    rows = []
    for path in sorted(DATA.glob("*.npz")):
        cube, gt = load_scene(path)
        rows.append((path.stem, aucs(cube, gt)))
        for pf in (0.01, 0.05):
            c, planted = plant_one_recipe(cube, pf, seed=1, exclude=gt > 0)
            rows.append((f"{path.stem} + {pf:.0%} one recipe", aucs(c, gt.astype(bool) | planted)))
    for name, c, g in stress_set()[::2]:
        rows.append((f"stress {name}", aucs(c, g)))
    a = np.array([r for _, r in rows])
    head = "| scene | " + " | ".join(f"p_min {f:.0%}" for f in FRACTIONS) + " |"
    lines = [f"glosh-spectral AUC by the automatic p_min's fraction; commit {git_head()}.", "", head,
             "|---|" + "---|" * len(FRACTIONS)]
    lines += [f"| {n} | " + " | ".join(f"{x:.4f}" for x in r) + " |" for n, r in rows]
    lines += ["| **mean** | " + " | ".join(f"**{x:.4f}**" for x in a.mean(0)) + " |",
              "| worst | " + " | ".join(f"{x:.4f}" for x in a.min(0)) + " |"]
    text = "\n".join(lines) + "\n"
    save_table("bench_pmin", text)
    return text


if __name__ == "__main__":
    main()
