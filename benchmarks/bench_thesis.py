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
from pathlib import Path

import numpy as np
import torch
from common import RESULTS as RESULTS_DIR
from common import git_head, save_table

from napari_hsi_anomaly.core.model import TrainOptions, train
from napari_hsi_anomaly.core.model.features import iter_window_features
from napari_hsi_anomaly.core.progress import run
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


# -- the thesis at its own scale (--thesis) ---------------------------------------------------------
FULL_SIZE, FULL_WINDOW, FULL_S_ANOM, FULL_P_MIN = 1830, 128, 20, 100


def thesis_scenes(cache: Path) -> list[Path]:
    """13 generated 1830x1830 scenes as (bands, rows, cols) .npy files (memory-mapped later)."""
    cache.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in range(N_SCENES):
        path = cache / f"scene{seed:02d}.npy"
        if not path.is_file():
            clean = seed < N_CLEAN
            clouds = 0.0 if clean else 0.10 + 0.05 * (seed - N_CLEAN)
            s = make_scene(FULL_SIZE, FULL_SIZE, seed=seed, anomalies=False, clouds=clouds,
                           haze=0.01 if clean else 0.03)
            np.save(path.with_suffix(".tmp.npy"), s.cube.as_float32())
            path.with_suffix(".tmp.npy").rename(path)
            del s
        paths.append(path)
    return paths


def thesis_full(cache: Path, epochs: int, steps: int, seed: int = 0) -> str:
    """The protocol on 13 x 1830^2 with bounded memory: one scene in memory at a time (planted copy,
    f1-f4 kept), the fast CAE trained on random windows of the memory-mapped scenes."""
    import resource

    from napari_hsi_anomaly.core.cube import Cube
    from napari_hsi_anomaly.core.scoring.glosh import GloshScorer
    from napari_hsi_anomaly.core.scoring.metrics import evaluate
    from napari_hsi_anomaly.core.scoring.validation import region_labels
    from napari_hsi_anomaly.core.synth import _as_stats, _choose, _plant, band_stats
    from napari_hsi_anomaly.core.windows import window_grid

    out = RESULTS_DIR / ("bench_thesis_full.md" if FULL_SIZE == 1830 else "bench_thesis_smoke.md")
    log: list[str] = [
        f"## Thesis protocol at full scale: {N_SCENES} scenes {FULL_SIZE}x{FULL_SIZE} (12 bands), "
        f"{FULL_WINDOW}-px windows, s_anom {FULL_S_ANOM}, p_anom 0.05, p_min = min_samples = {FULL_P_MIN}, "
        f"t_anom 0.7, `fast` CAE ({epochs} epoch(s) x {steps} steps of 8 windows), planting seed {seed}",
        "",
    ]

    def note(line: str) -> None:
        log.append(line)
        print(line, flush=True)
        out.write_text("\n".join(log) + "\n")

    t0 = time.perf_counter()
    paths = thesis_scenes(cache)
    arrays = [np.load(p, mmap_mode="r") for p in paths]
    note(f"- scenes ready ({time.perf_counter() - t0:.0f} s; cached in {cache})")
    t0 = time.perf_counter()
    stats = band_stats(arrays)
    cubes = [Cube(a) for a in arrays]
    opts = TrainOptions(epochs=epochs, batch_size=8, optimizer="adam", seed=0, val_fraction=0.0,
                        threads=torch.get_num_threads(), steps_per_epoch=steps)
    from napari_hsi_anomaly.core.model import load_model, save_model

    mdir = cache / f"model_fast_e{epochs}_s{steps}"
    if mdir.is_dir():
        model = load_model(mdir)
        note(f"- model from {mdir} (trained earlier: {model.summary.get('seconds', 0):.0f} s)")
    else:
        model = train(cubes, "fast", opts)
        save_model(model, mdir)
        note(f"- training {time.perf_counter() - t0:.0f} s, final loss {model.summary.get('loss', 0):.5f}")
    grids = [window_grid(FULL_SIZE, FULL_SIZE, FULL_WINDOW) for _ in arrays]
    offsets = np.cumsum([0] + [len(g) for g in grids])
    rng = np.random.default_rng(seed)
    chosen = _choose(int(offsets[-1]), 0.05, rng)
    feats = ("f1", "f2", "f3", "f4")
    points: dict[str, list] = {f: [] for f in feats}
    t0 = time.perf_counter()
    for i, a in enumerate(arrays):
        mine = chosen[(chosen >= offsets[i]) & (chosen < offsets[i + 1])] - offsets[i]
        pl = _plant(np.asarray(a), grids[i], mine, rng, _as_stats(stats, a.shape[0]), FULL_S_ANOM,
                    (3.0, 5.0), 4)  # always run: the rng sequence must not depend on the cache
        saved = mdir / f"features_seed{seed}_scene{i:02d}.npz"
        if saved.is_file():
            with np.load(saved) as z:
                for f in feats:
                    points[f].append((z[f"{f}_values"], z[f"{f}_labels"], z[f"{f}_valid"]))
        else:
            cube = Cube(pl.data)
            keep = {}
            sets = run(iter_window_features(model, cube, window=FULL_WINDOW))  # one encoder pass
            for f, fs in sets.items():
                values, regions, valid = fs.values, fs.regions, fs.valid
                labels = region_labels(pl.gt, regions)
                points[f].append((values, labels, valid))
                keep.update({f"{f}_values": values, f"{f}_labels": labels, f"{f}_valid": valid})
            np.savez(saved.with_suffix(".tmp.npz"), **keep)
            saved.with_suffix(".tmp.npz").rename(saved)
            del cube
        del pl
        print(f"features: scene {i + 1}/{len(arrays)} ({time.perf_counter() - t0:.0f} s)", flush=True)
    note(f"- features f1-f4 of {int(offsets[-1])} windows: {time.perf_counter() - t0:.0f} s; "
         f"{len(chosen)} windows planted")
    note("")
    note("| clustering | feature | points | anomalous | TPR | FNR | precision | F-score | AUC | GLOSH s |")
    note("|---|---|---|---|---|---|---|---|---|---|")
    groups = {"full": list(range(len(arrays))), "partial": list(range(N_CLEAN))}
    # cheapest first (windows, then the partial sections, then all sections), so that a run cut short
    # still has the most rows
    order = [("full", "f1"), ("full", "f3"), ("partial", "f1"), ("partial", "f3"), ("partial", "f4"),
             ("partial", "f2"), ("full", "f4"), ("full", "f2")]
    for name, f in order:
        idx = groups[name]
        t1 = time.perf_counter()
        x = np.vstack([points[f][i][0] for i in idx])
        y = np.concatenate([points[f][i][1] for i in idx])
        ok = np.concatenate([points[f][i][2] for i in idx])
        x, y = x[ok], y[ok]
        scores = GloshScorer(x, min_samples=FULL_P_MIN).score(FULL_P_MIN).scores
        m = evaluate(scores, y, 0.7)
        note(f"| {name} | {f} | {len(y)} | {int(y.sum())} | {m.tpr:.3f} | {m.fnr:.3f} | "
             f"{m.precision:.3f} | {m.f_score:.3f} | {m.auc:.3f} | {time.perf_counter() - t1:.0f} |")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    note("")
    gb = N_SCENES * 12 * FULL_SIZE**2 * 4 / 1e9
    note(f"Peak memory (max RSS) {peak:.2f} GB (the 13 scenes are {gb:.1f} GB as float32). "
         f"Commit {git_head()}; load {os.getloadavg()[0]:.1f} at the end.")
    note("")
    note("### Thesis (REFERENCE.md, 13 Sentinel-2 scenes 1830x1830, 128-px windows, thesis CAE)")
    note("")
    note("| clustering | feature | TPR | FNR | precision | F-score | AUC |")
    note("|---|---|---|---|---|---|---|")
    note(THESIS)
    return "\n".join(log)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--thesis", action="store_true", help="13 scenes of 1830x1830 (the thesis's scale)")
    ap.add_argument("--cache", default="/tmp/hsi_thesis_scenes", help="where the generated scenes go")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--steps", type=int, default=300, help="training steps (batches of 8) per epoch")
    ap.add_argument("--size", type=int, default=FULL_SIZE, help="scene side (smoke tests: smaller)")
    a = ap.parse_args()
    FULL_SIZE = a.size
    if a.thesis:
        torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
        print(f"load: {os.getloadavg()}", flush=True)
        thesis_full(Path(a.cache), a.epochs, a.steps)
        print(f"load: {os.getloadavg()}", flush=True)
    else:
        main()
