"""GLOSH: a p_min change from the cached hierarchy vs a full HDBSCAN refit; the t_anom mask update.

Run: ``python benchmarks/bench_glosh.py [--full-100k]``. Data: Gaussian blobs plus 2 % uniform
outliers in 16 dimensions (the size of per-pixel CAE features of the ``fast`` preset: 16 + 16 maps
would be 32; 16 keeps the refits affordable on 2 shared cores). Above ``max_fit`` = 20,000 points the
scorer fits a deterministic 20,000-point subsample and scores the rest with hdbscan's approximate
GLOSH (vectorised here, neighbours cached, so a p_min change stays a re-condense plus a gather).
A full refit at 100,000 points is only run with ``--full-100k`` (REFERENCE: 100k x 16 took 55 s).
``score(p_min)`` returns the scores; the labels (EOM cluster selection) are computed when
``GloshResult.labels`` is first read, timed in its own column. The last column is hdbscan's Cython
path (``glosh._hdbscan.CythonCondensed``: condense_tree, outlier_scores, compute_stability, get_clusters)
for the same new p_min, scores and labels.
Prints a markdown table and saves it to benchmarks/results/bench_glosh.md; ``--neighbours`` runs only
the last section (neighbour search for non-fitted rows, CPU seconds) and replaces it in that file.
``--knn SCENE`` (a cube from ``hsi-anomaly sample --rows 1830 --cols 1830``): GLOSH prediction's
neighbour search alone on what the CLI's searches get (default detector, CAE per pixel), one query per
row vs grouped (``glosh.grouped``), saved as benchmarks/results/bench_knn.md.
"""

from __future__ import annotations

import sys
import time

import hdbscan
import numpy as np
from common import REPO, git_head, save_table
from hdbscan.prediction import approximate_predict_scores

from napari_hsi_anomaly.core.scoring import GloshScorer, glosh, threshold
from napari_hsi_anomaly.core.scoring.glosh._hdbscan import CythonCondensed
from napari_hsi_anomaly.core.scoring.glosh.hierarchy import Condensed

DIMS = 16
NEW_P_MIN = (150, 160, 170, 180, 190)  # "new p_min": median over these (the first is compared to a refit)


def blobs(n: int, dims: int = DIMS, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    k = 6
    centres = rng.uniform(-10, 10, (k, dims))
    n_out = n // 50
    x = centres[rng.integers(0, k, n - n_out)] + rng.normal(0, 1.0, (n - n_out, dims))
    return np.vstack([x, rng.uniform(-15, 15, (n_out, dims))])


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def main() -> str:
    full_100k = "--full-100k" in sys.argv
    lines = [
        f"## p_min change: cached hierarchy vs full refit ({DIMS} dims, min_samples=10, max_fit=20000)",
        "",
        "| points | fitted | scorer build (fit) | first score(100) | new p_min score (median of 5) "
        "| + its labels (lazy) | cached score(100) | full refit p_min=150 | refit / new p_min "
        "| max abs diff vs refit | Cython path score(150) + labels |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n in (3000, 20000, 100000):
        x = blobs(n)
        scorer, t_build = timed(GloshScorer, x, min_samples=10, scale=False, max_fit=20000)
        _, t_first = timed(scorer.score, 100)
        news, label_times = [], []
        for p_new in NEW_P_MIN:  # distinct values: each one is a re-condense, none is cached
            r, t_r = timed(scorer.score, p_new)
            news.append(t_r)
            label_times.append(timed(lambda r=r: r.labels)[1])
        res, t_new, t_labels = scorer.score(150), float(np.median(news)), float(np.median(label_times))
        labels = res.labels
        _, t_cached = timed(scorer.score, 100)
        scorer._cache.clear()
        scorer._condensed.clear()
        glosh.scorer.Condensed = CythonCondensed  # hdbscan's Cython functions (the tests' oracle)
        try:
            t = time.perf_counter()
            cy = scorer.score(150)
            cy_labels = cy.labels
            t_cython = time.perf_counter() - t
        finally:
            glosh.scorer.Condensed = Condensed
            scorer._condensed.clear()
        assert np.array_equal(cy.scores, res.scores) and np.array_equal(cy_labels, labels)
        if n <= 20000 or full_100k:
            fitted, t_refit = timed(hdbscan.HDBSCAN(min_cluster_size=150, min_samples=10).fit, x)
            ref = fitted.outlier_scores_
            refit = f"{t_refit:.2f} s"
            speedup = f"{t_refit / t_new:,.0f}x"
            diff = f"{np.abs(res.scores - ref).max():.1e}" if not scorer.subsampled else "(subsampled)"
        else:
            refit, diff, speedup = "not run (REFERENCE: 55 s at 100k x 16)", "-", "-"
        lines.append(f"| {n:,} | {scorer.n_fit:,} | {t_build:.2f} s | {t_first * 1e3:.1f} ms | "
                     f"{t_new * 1e3:.1f} ms | {t_labels * 1e3:.1f} ms | {t_cached * 1e6:.0f} us | {refit} | "
                     f"{speedup} | {diff} | {t_cython * 1e3:.0f} ms |")
        if scorer.subsampled:
            fit_x = x[scorer._fit_rows]
            c, t_pfit = timed(
                hdbscan.HDBSCAN(min_cluster_size=scorer.fitted_p_min(150), min_samples=10,
                                prediction_data=True).fit, fit_x)
            rest = x[scorer._rest]
            ap, t_ap = timed(approximate_predict_scores, c, rest)
            gap = np.abs(res.scores[scorer._rest] - np.clip(ap, 0, 1)).max()
            sub_note = (f"At {n:,} points: hdbscan's own route for a new p_min = refit the 20,000-point "
                        f"subsample with prediction data (p_min 150 of {n:,} points = min_cluster_size "
                        f"{scorer.fitted_p_min(150)} on the subsample; {t_pfit:.2f} s) + "
                        f"approximate_predict_scores "
                        f"for the other {len(rest):,} points ({t_ap:.2f} s, {len(rest) / t_ap:,.0f} "
                        f"points/s); the cached scorer gives the same scores (max abs diff {gap:.1e}) in "
                        f"{t_new * 1e3:.1f} ms (scores; labels on first access: {t_labels * 1e3:.1f} ms).")
    lines += ["", sub_note, ""]
    score_map = np.random.default_rng(0).random((1830, 1830), dtype=np.float32)
    reps = 20
    t = time.perf_counter()
    for i in range(reps):
        threshold(score_map, 0.5 + i / 100)
    t_mask = (time.perf_counter() - t) / reps
    lines += ["## t_anom mask update", "",
              "| map | threshold (score >= t_anom) |", "|---|---|",
              f"| 1830 x 1830 float32 | {t_mask * 1e3:.1f} ms |"]
    text = "\n".join(lines) + "\n"
    save_table("bench_glosh", text)
    return text


def neighbours() -> str:
    """Nearest mutual-reachability neighbours of 50,000 rows against a 20,000-row fit, CPU seconds
    (``time.process_time``: all threads; the machine is shared): the old sklearn KDTree (2k neighbours),
    the numba KD-tree (glosh.kdtree) with the k+1 shortcut, and brute-force float32 BLAS + torch.topk."""
    from sklearn.neighbors import KDTree

    lines = ["## Neighbours of non-fitted rows: 50,000 queries, 20,000 fitted rows, k = 10 (CPU s)", "",
             "| dims | sklearn KDTree, 2k (before) | numba KD-tree, k+1 shortcut | brute float32 + topk "
             "| used |",
             "|---|---|---|---|---|"]
    for dims in (5, 8, 16, 24, 32):
        x = blobs(70000, dims=dims)
        x = (x - x.min(0)) / (x.max(0) - x.min(0))
        fit, q = x[:20000], x[20000:]
        c = time.process_time()
        KDTree(fit).query(q, k=20)
        t_old = time.process_time() - c
        times = {}
        for brute in (False, True):
            search = glosh.neighbours.NeighbourSearch(fit)
            search.brute = brute
            if brute:
                search.f32 = fit.astype(np.float32)
                search.f_sq = (fit ** 2).sum(axis=1).astype(np.float32)
            else:
                search.tree = glosh.kdtree.KDTree(fit)
            core = search.query(fit, 10)[0][:, -1]
            c = time.process_time()
            glosh.neighbours.mr_neighbours(search, core, 10, q)
            times[brute] = time.process_time() - c
        used = "brute" if dims > glosh.KDTREE_MAX_DIMS else "KD-tree"
        lines.append(f"| {dims} | {t_old:.2f} | {times[False]:.2f} | {times[True]:.2f} | {used} |")
    return "\n".join(lines) + "\n"


class _Captured(Exception):
    pass


def capture(argv: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Run ``hsi-anomaly score ARGV`` in this process until its GLOSH prediction starts; return what the
    neighbour search gets there: query rows (scaled), fitted rows, core distances, min_samples."""
    import napari_hsi_anomaly.core.scoring.glosh.scorer as scorer_mod
    from napari_hsi_anomaly.cli.main import main as cli

    got = {}

    def spy(search, core, k, transform, x, rows):
        got["q"] = transform(x if rows is None else x[rows])
        got.update(fit=search.fit_x, core=core, k=k)
        raise _Captured

    real = scorer_mod.neighbours
    scorer_mod.neighbours = spy
    try:
        cli(argv)
    except _Captured:
        pass
    finally:
        scorer_mod.neighbours = real
    return got["q"], got["fit"], got["core"], got["k"]


def knn(scene: str, rows_12d: int = 200_000) -> str:
    """The neighbour search of GLOSH's prediction alone, one query per row (before) vs grouped (after),
    on what the CLI's searches get for ``scene``: the default detector (5 features) and the CAE per pixel
    (12 features, the sample model; ``rows_12d`` rows). CPU and wall seconds in this process (query
    threads as configured), and whether every output is equal."""
    from napari_hsi_anomaly.core.scoring.glosh import grouped

    lines = [f"## GLOSH prediction's neighbour search alone ({scene}; commit {git_head()})", "",
             "| features | rows | fitted | per row: CPU s (wall s) | grouped: CPU s (wall s) | CPU ratio "
             "| outputs equal |", "|---|---|---|---|---|---|---|"]
    cases = [("default (PCA)", ["score", scene, "--out", "/tmp/_bench_knn.npy"], None),
             ("CAE per pixel", ["score", scene, "--method", "glosh", "--model", str(REPO / "sample_data"
              / "fast_model"), "--feature", "pixel", "--out", "/tmp/_bench_knn.npy"], rows_12d)]
    for name, argv, keep in cases:
        q, fit, core, k = capture(argv)
        if keep is not None:
            q = q[np.random.default_rng(0).choice(len(q), min(keep, len(q)), replace=False)]
        search = glosh.neighbours.NeighbourSearch(fit)
        glosh.neighbours.mr_neighbours(search, core, k, q[:5000])  # compiled / loaded from the cache
        out, times = {}, {}
        real = grouped.MIN_ROWS
        for label, min_rows in (("per row", 1 << 62), ("grouped", real)):
            grouped.MIN_ROWS = min_rows
            try:
                c, w = time.process_time(), time.perf_counter()
                out[label] = glosh.neighbours.neighbours(search, core, k, lambda v: v, q, None)
                times[label] = (time.process_time() - c, time.perf_counter() - w)
            finally:
                grouped.MIN_ROWS = real
        equal = all(np.array_equal(a, b) for a, b in zip(out["per row"], out["grouped"]))
        (c0, w0), (c1, w1) = times["per row"], times["grouped"]
        used = "" if search.grouped(len(q)) else " (not grouped: above MAX_DIMS)"
        lines.append(f"| {fit.shape[1]}: {name} | {len(q):,} | {len(fit):,} | {c0:.2f} ({w0:.2f}) | "
                     f"{c1:.2f} ({w1:.2f}){used} | {c0 / c1:.2f}x | {equal} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    from common import RESULTS

    if "--knn" in sys.argv:  # --knn SCENE: the neighbour search alone, before/after (bench_knn.md)
        text = knn(sys.argv[sys.argv.index("--knn") + 1])
        print(text)
        (RESULTS / "bench_knn.md").write_text(text)
        sys.exit(0)
    if "--neighbours" not in sys.argv:  # --neighbours: only this section, replaced in the saved table
        main()
    text = neighbours()
    print(text)
    old = (RESULTS / "bench_glosh.md").read_text().split("## Neighbours of non-fitted rows")[0]
    (RESULTS / "bench_glosh.md").write_text(old.rstrip() + "\n\n" + text)
