"""Every detector on the nine labelled real scenes: per-scene AUC, runtime and the mean.

Run: ``python benchmarks/bench_scenes.py`` (data: ``../shared/data`` beside the repo or
``$HSI_SHARED_DATA``). One fixed configuration for all scenes (no tuning to a scene's labels).
The CAE methods train the ``fast`` preset on each scene itself once (``default_train_options``);
that training time is its own column and the CAE methods' times exclude it. AUC is
``roc_auc_score(gt, score_map)`` on all pixels. Saves benchmarks/results/bench_scenes.md.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from common import REPO, git_head, save_table
from sklearn.metrics import roc_auc_score

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.progress import run
from napari_hsi_anomaly.core.scoring import DEFAULT_METHOD, METHODS, detect
from napari_hsi_anomaly.core.scoring.detect import MODEL_METHODS, default_train_options

DATA = Path(os.environ.get("HSI_SHARED_DATA", REPO.parent / "shared" / "data")) / "hsi-ad"
README_RX = {
    "abu-airport-1": 0.8221, "abu-airport-3": 0.9288, "abu-beach-1": 0.9807, "abu-beach-2": 0.9106,
    "abu-urban-1": 0.9907, "abu-urban-3": 0.9513, "abu-urban-5": 0.9692, "san-diego": 0.8885,
    "san-diego-plane": 0.9403,
}


def main() -> str:
    from napari_hsi_anomaly.core.model import iter_train

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    head = git_head()
    methods = [m for m in METHODS if m not in sys.argv[1:]]
    files = sorted(DATA.glob("*.npz"))
    if not files:
        raise SystemExit(f"no scenes in {DATA}")
    auc = {m: [] for m in methods}
    secs = {m: [] for m in methods}
    train_s, rows = [], []
    for f in files:
        z = np.load(f, allow_pickle=False)
        cube, gt = Cube(np.moveaxis(z["cube"], -1, 0)), z["gt"].ravel()
        t = time.perf_counter()
        model = run(iter_train(cube, "fast", default_train_options()))
        train_s.append(time.perf_counter() - t)
        cells = []
        for m in methods:
            t = time.perf_counter()
            det = detect(cube, m, model=model if m in MODEL_METHODS else None)
            secs[m].append(time.perf_counter() - t)
            auc[m].append(roc_auc_score(gt, det.score_map.ravel()))
            cells.append(f"{auc[m][-1]:.4f} ({secs[m][-1]:.1f} s)")
        if "rx" in auc:
            assert round(auc["rx"][-1], 4) == README_RX[f.stem], (f.stem, auc["rx"][-1])
        rows.append(f"| {f.stem} | {cube.bands}x{cube.rows}x{cube.cols} | {train_s[-1]:.0f} s | "
                    + " | ".join(cells) + " |")
        print(rows[-1], flush=True)
    head = [f"AUC (runtime) per scene; default method: **{DEFAULT_METHOD}**. CAE: `fast` preset trained "
            f"on each scene (train column), torch threads {torch.get_num_threads()}, 2 shared CPU cores, "
            f"commit {head}.",
            "",
            "| scene | bands x rows x cols | CAE train | " + " | ".join(methods) + " |",
            "|---|---|---|" + "---|" * len(methods)]
    mean = (f"| **mean** | | {np.mean(train_s):.0f} s | "
            + " | ".join(f"**{np.mean(auc[m]):.4f}** ({np.mean(secs[m]):.1f} s)" for m in methods) + " |")
    text = "\n".join(head + rows + [mean]) + "\n"
    save_table("bench_scenes", text)
    return text


if __name__ == "__main__":
    main()
