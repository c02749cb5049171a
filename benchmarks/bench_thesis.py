"""The thesis validation protocol on generated scenes, at a reduced scale for a 2-core CPU.

Thesis: 13 Sentinel-2 scenes of 1830x1830 (12 bands), 128-px windows (2925), the thesis CAE trained
10 epochs, anomalies p_anom 0.05 / s_anom 20 / c ~ U[3, 5), HDBSCAN p_min 100 (about 3.4 % of the
windows; hdbscan's min_samples left at its default, i.e. = p_min), t_anom 0.7.
Here: 13 ``make_scene`` scenes of 256x256 (12 Sentinel-2 bands, no built-in anomalies), 64-px windows
(16 per scene, 208 in all; 3,328 sections), s_anom 10 (20/128 of a window), the ``fast`` preset trained
``EPOCHS`` epochs on the 13 clean scenes, p_min = min_samples = 7 (3.4 % of 208 windows, as the
thesis's 100 of 2925, used for every feature as the thesis did). "Full": all 13 scenes clustered;
"partial": the 5 cloud-free scenes (seeds 0-4 have clouds=0, haze=0.01; seeds 5-12 have cloud
cover 0.10-0.45). Run: ``python benchmarks/bench_thesis.py``; saves benchmarks/results/bench_thesis.md.

A second table runs the same protocol with p_min above the number of planted anomalies (10 % of the
full set's points: 21 windows, 333 sections; min_samples 7): 5 % of the windows hold an anomaly, and
anomalies planted by one recipe resemble each other, so with p_min below their count they form a
cluster of their own and GLOSH calls them normal (the thesis: about 146 planted windows, p_min 100).
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch
from common import git_head, save_table

from napari_hsi_anomaly.core.model import TrainOptions, train
from napari_hsi_anomaly.core.scene import make_scene
from napari_hsi_anomaly.core.scoring.metrics import Metrics
from napari_hsi_anomaly.core.scoring.validation import ValidationRow, rows_markdown, validate

N_SCENES, SIZE, WINDOW, S_ANOM, P_MIN, EPOCHS = 13, 256, 64, 10, 7, 3
SEEDS = (0, 1, 2)  # planting seeds: each run has only ~10 anomalous windows, so average a few
N_CLEAN = 5

THESIS = """| full | f1 | 0.143 | 0.857 | 0.796 | 0.242 | 0.709 |
| full | f2 | 0.001 | 0.999 | 0.003 | 0.001 | 0.579 |
| full | f3 | 0.061 | 0.939 | 0.070 | 0.065 | 0.680 |
| full | f4 | 0.001 | 0.999 | 0.006 | 0.002 | 0.594 |
| partial | f1 | 0.307 | 0.693 | 0.722 | 0.431 | 0.766 |
| partial | f2 | 0.632 | 0.368 | 0.705 | 0.431 | 0.757 |
| partial | f3 | 0.275 | 0.725 | 0.722 | 0.431 | 0.755 |
| partial | f4 | 0.890 | 0.110 | 0.698 | 0.431 | 0.764 |"""


def scenes():
    out = []
    for seed in range(N_SCENES):
        clean = seed < N_CLEAN
        clouds = 0.0 if clean else 0.10 + 0.05 * (seed - N_CLEAN)
        s = make_scene(SIZE, SIZE, seed=seed, anomalies=False, clouds=clouds,
                       haze=0.01 if clean else 0.03)
        out.append(s.cube)
    return out


def mean_rows(runs):
    """Average each metric over the runs (row order is the same in every run)."""
    out = []
    for group in zip(*runs):
        first = group[0]
        m = first.metrics
        avg = {k: float(np.nanmean([getattr(r.metrics, k) for r in group]))
               for k in ("tpr", "fnr", "precision", "f_score", "auc")}
        out.append(ValidationRow(first.clustering, first.feature,
                                 Metrics(**avg, tp=m.tp, fp=m.fp, fn=m.fn, tn=m.tn),
                                 first.n_points, first.n_anomalous, first.p_min))
    return out


def auc_lists(runs):
    return [[r.metrics.auc for r in group] for group in zip(*runs)]


def main() -> str:
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    t0 = time.perf_counter()
    cubes = scenes()
    t_scenes = time.perf_counter() - t0
    opts = TrainOptions(epochs=EPOCHS, batch_size=8, optimizer="adam", seed=0, val_fraction=0.0,
                        threads=torch.get_num_threads())
    t0 = time.perf_counter()
    model = train(cubes, "fast", opts)
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    runs = [validate(cubes, model, partial=list(range(N_CLEAN)), p_min=P_MIN, min_samples=P_MIN,
                     t_anom=0.7, window=WINDOW, s_anom=S_ANOM, seed=seed) for seed in SEEDS]
    t_val = time.perf_counter() - t0
    rows = mean_rows(runs)
    n_win = sum(len(range(0, SIZE - WINDOW + 1, WINDOW)) ** 2 for _ in cubes)
    p_win, p_sec = round(0.10 * n_win), round(0.10 * n_win * 16)
    big = []
    for seed in SEEDS:
        run_rows = []
        for feats, p in ((("f1", "f3"), p_win), (("f2", "f4"), p_sec)):
            run_rows += validate(cubes, model, features=feats, partial=list(range(N_CLEAN)), p_min=p,
                                 min_samples=P_MIN, t_anom=0.7, window=WINDOW, s_anom=S_ANOM, seed=seed)
        order = {(c, f): i for i, (c, f) in enumerate((c, f) for c in ("full", "partial")
                                                         for f in ("f1", "f2", "f3", "f4"))}
        big.append(sorted(run_rows, key=lambda r: order[(r.clustering, r.feature)]))
    big_rows = mean_rows(big)
    text = "\n".join([
        f"## Thesis protocol, reduced scale ({N_SCENES} scenes {SIZE}x{SIZE}, {WINDOW}-px windows, "
        f"s_anom {S_ANOM}, p_min = min_samples = {P_MIN}, t_anom 0.7, `fast` CAE {EPOCHS} epochs)",
        "",
        f"Mean over planting seeds {list(SEEDS)} (points and anomalous counts: per run, first seed's; "
        "AUC range over seeds in the last column).",
        "",
        rows_markdown(rows, auc_range=[(min(a), max(a)) for a in auc_lists(runs)]),
        "",
        f"Times: scenes {t_scenes:.0f} s, training {t_train:.0f} s ({model.summary.get('loss', 0):.5f} "
        f"final loss), features + GLOSH {t_val:.0f} s. Commit {git_head()}.",
        "",
        f"## The same with p_min above the planted count: {p_win} windows / {p_sec} sections "
        f"(10 % of the full set), min_samples {P_MIN}",
        "",
        rows_markdown(big_rows, auc_range=[(min(a), max(a)) for a in auc_lists(big)]),
        "",
        "## Thesis (REFERENCE.md, 13 scenes 1830x1830, 128-px windows, thesis CAE)",
        "",
        "| clustering | feature | TPR | FNR | precision | F-score | AUC |",
        "|---|---|---|---|---|---|---|",
        THESIS,
    ]) + "\n"
    save_table("bench_thesis", text)
    return text


if __name__ == "__main__":
    main()
