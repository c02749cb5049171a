"""The thesis method per pixel: CAE encoder features + GLOSH on the nine labelled scenes and the stress set.

Each scene trains the ``fast`` CAE on itself with ``auto_train_options`` (torch threads 1, timed), then
scores ``pixel`` features with ``GloshScorer(min_samples=10)`` at ``auto_p_min`` (the detectors' GLOSH
path, without calibration: AUC does not depend on it). Pixel representations compared on the same
trained network:

- ``before``: the former pixel feature, max over all bands of every encoder map (layer 2 up-sampled);
- ``conv1/gG``: mean of every Conv1 map over G contiguous band groups (the product uses
  ``features.PIXEL_GROUPS``).

The choice is checked leave-one-scene-out: for each held-out scene, the candidate with the best
(mean + worst) / 2 on the other eight, and its AUC on the held-out scene. The stress set is
``benchmarks/stress.py`` (every third band, 80x100 crop, 3 % planted pixels of one recipe, [0, 1] or
integer x 10,000). Saves benchmarks/results/bench_cae.md.

    nice -n 10 python benchmarks/bench_cae.py [--no-stress] [--scenes a,b]
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import torch
from common import git_head, save_table
from sklearn.metrics import roc_auc_score
from stress import DATA, load_scene, stress_set

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.model import auto_train_options, extract_features, iter_train
from napari_hsi_anomaly.core.model import features as feat
from napari_hsi_anomaly.core.model.cae import encoder_halo
from napari_hsi_anomaly.core.model.dataset import prepare, read_block
from napari_hsi_anomaly.core.progress import run
from napari_hsi_anomaly.core.scoring.detect import auto_p_min
from napari_hsi_anomaly.core.scoring.glosh import GloshScorer

GROUPS = (2, 4, 8)


def before_features(model, cube: Cube) -> np.ndarray:
    """The former pixel feature: max over bands of each encoder map, layer 2 nearest up-sampled."""
    cfg, h, f = model.config, encoder_halo(model.config), model.config.spatial_factor
    rows, cols = -(-(cube.rows + 2 * h) // f) * f, -(-(cube.cols + 2 * h) // f) * f
    x, _ = prepare(*read_block(cube, -h, rows - h, -h, cols - h), model.scaler, cfg)
    with torch.inference_mode():
        maps = model.net.encode(torch.from_numpy(x)[None, None])
    out, fr = [], 1
    for li, m in enumerate(maps):
        m2 = m[0, :, : cfg.used_bands].amax(dim=1)
        m2 = m2.repeat_interleave(fr, -1).repeat_interleave(fr, -2)
        out.append(m2[:, h : h + cube.rows, h : h + cube.cols].reshape(m2.shape[0], -1))
        fr *= cfg.pooling[li][1]
    return torch.cat(out).T.numpy()


def glosh_auc(values: np.ndarray, gt: np.ndarray) -> float:
    scores = GloshScorer(values, min_samples=10, n_jobs=1).score(auto_p_min(values.shape[0])).scores
    return float(roc_auc_score(gt.ravel(), scores))


def score_scene(cube_data: np.ndarray, gt: np.ndarray, candidates: tuple) -> tuple[dict, float, dict]:
    cube = Cube(cube_data)
    opts = auto_train_options(cube)
    opts.threads = 1
    t = time.perf_counter()
    model = run(iter_train(cube, "fast", opts))
    train_s = time.perf_counter() - t
    aucs = {}
    if "before" in candidates:
        aucs["before"] = glosh_auc(before_features(model, cube), gt)
    for g in GROUPS:
        if f"conv1/g{g}" in candidates:
            feat.PIXEL_GROUPS, keep = g, feat.PIXEL_GROUPS
            try:
                aucs[f"conv1/g{g}"] = glosh_auc(extract_features(model, cube, "pixel").values, gt)
            finally:
                feat.PIXEL_GROUPS = keep
    return aucs, train_s, model.summary


def loso(res: dict[str, dict[str, float]], cands: list[str]) -> list[str]:
    lines = ["| held-out scene | chosen on the other eight | its AUC there |", "|---|---|---|"]
    held = []
    for s in res:
        others = [o for o in res if o != s]
        merit = {c: (np.mean([res[o][c] for o in others]) + min(res[o][c] for o in others)) / 2
                 for c in cands}
        best = max(merit, key=merit.get)
        held.append(res[s][best])
        lines.append(f"| {s} | {best} | {res[s][best]:.4f} |")
    lines.append(f"| **mean / worst** | | **{np.mean(held):.4f} / {min(held):.4f}** |")
    return lines


def main() -> None:
    torch.set_num_threads(1)
    head, load0 = git_head(), subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    only = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--scenes=")), None)
    cands = ("before",) + tuple(f"conv1/g{g}" for g in GROUPS)
    chosen = f"conv1/g{feat.PIXEL_GROUPS}"
    res, train_s, what = {}, {}, {}
    for path in sorted(DATA.glob("*.npz")):
        if (only and path.stem not in only.split(",")) or "--stress-only" in sys.argv:
            continue
        data, gt = load_scene(path)
        res[path.stem], train_s[path.stem], summary = score_scene(data, gt, cands)
        what[path.stem] = summary["description"]
        print(path.stem, f"train {train_s[path.stem]:.1f} s", res[path.stem], flush=True)
    names = list(res)
    if not names:  # --stress-only
        res, train_s, what, names = {"-": {c: float("nan") for c in cands}}, {"-": 0.0}, {}, ["-"]
    lines = [
        f"CAE `glosh --feature pixel` AUC per scene (GloshScorer min_samples 10, auto p_min), commit {head}, "
        f"torch threads 1, 2 shared CPU cores; load at start: `{load0}`.",
        "",
        f"Training (auto_train_options, per scene, on the scene itself): {what.get(names[0], '')}.",
        "",
        "| scene | train s | " + " | ".join(cands) + " |",
        "|---|---|" + "---|" * len(cands),
    ]
    for s in names:
        lines.append(f"| {s} | {train_s[s]:.1f} | " + " | ".join(f"{res[s][c]:.4f}" for c in cands) + " |")
    lines.append("| **mean** | " + f"{np.mean(list(train_s.values())):.1f} | "
                 + " | ".join(f"**{np.mean([res[s][c] for s in names]):.4f}**" for c in cands) + " |")
    lines.append("| **worst** | | "
                 + " | ".join(f"**{min(res[s][c] for s in names):.4f}**" for c in cands) + " |")
    lines += ["", f"Product choice: `{chosen}`. Leave-one-scene-out over the conv1 candidates:", ""]
    if len(names) > 1:
        lines += loso(res, [c for c in cands if c != "before"])
    if "--no-stress" not in sys.argv and (len(names) > 1 or "--stress-only" in sys.argv):
        kinds = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--stress=")), "unit,int")
        lines += ["", "### Stress set (benchmarks/stress.py)", "", f"| scene | train s | before | {chosen} |",
                  "|---|---|---|---|"]
        sa = []
        for name, data, gt in stress_set():
            if name.split("/")[-1] not in kinds.split(","):
                continue
            aucs, ts, _ = score_scene(data, gt, ("before", chosen))
            sa.append(aucs)
            lines.append(f"| {name} | {ts:.1f} | {aucs['before']:.4f} | {aucs[chosen]:.4f} |")
            print(lines[-1], flush=True)
        lines.append(f"| **mean / worst** | | {np.mean([a['before'] for a in sa]):.4f} / "
                     f"{min(a['before'] for a in sa):.4f} | {np.mean([a[chosen] for a in sa]):.4f} / "
                     f"{min(a[chosen] for a in sa):.4f} |")
    load1 = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    lines += ["", f"Load at the end: `{load1}`.", ""]
    save_table("bench_cae_stress" if "--stress-only" in sys.argv else "bench_cae", "\n".join(lines))


if __name__ == "__main__":
    main()
