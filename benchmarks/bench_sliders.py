"""How fast the Detect dock's live sliders are, through the real widget code.

    xvfb-run -a python benchmarks/bench_sliders.py [--size 1830] [--moves 40] [--points 20000]

- t_anom: median time of one slider move at ``size`` x ``size`` (threshold into the preallocated
  buffer + Labels refresh + histogram line), then the same including the repaint (Qt events
  processed), and the commit after the slider rests (region count, metrics, shared mask).
- p_min: ``GloshScorer.score`` for new p_min values on ``points`` points (cached hierarchy), and
  the widget's round trip (debounced request -> worker -> heatmap and mask updated).

Writes a markdown table to ``benchmarks/results/bench_sliders.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import napari
import numpy as np
from qtpy.QtWidgets import QApplication
from scipy import ndimage

from napari_hsi_anomaly._widgets.detect_widget import DetectWidget
from napari_hsi_anomaly.core.scoring import Detection, GloshScorer

OUT = Path(__file__).resolve().parent / "results" / "bench_sliders.md"


def _events() -> None:
    QApplication.instance().processEvents()


def smooth_scores(size: int, seed: int = 0) -> np.ndarray:
    """A score map with blobs (like a real one): smoothed noise ranked to [0, 1]."""
    rng = np.random.default_rng(seed)
    x = ndimage.gaussian_filter(rng.random((size, size), dtype=np.float32), 3)
    x -= x.min()
    return (x / x.max()).astype(np.float32)


def bench_t_anom(viewer: napari.Viewer, size: int, moves: int, with_gt: bool) -> dict:
    widget = DetectWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Detect", area="right")
    scores = smooth_scores(size)
    viewer.add_image(np.stack([scores] * 3, axis=-1), rgb=True, name="RGB composite")
    if with_gt:
        viewer.add_labels((scores > 0.8).astype(np.uint8), name="gt")
    widget.show_scores(scores)
    if with_gt:
        widget.set_ground_truth("gt")
    for _ in range(5):
        _events()
    # slider positions (step 0.01) from ~20 % down to ~0.5 % flagged, back and forth: every move
    # changes the value, so every move runs the callback
    levels = np.unique(np.round(np.quantile(scores, np.linspace(0.80, 0.995, moves)), 2))
    sweep = np.r_[levels, levels[-2:0:-1]]
    ts = np.resize(sweep, moves)
    call, screen = [], []
    widget.t_anom.setValue(float(ts[-1]))
    for t in ts:
        t0 = time.perf_counter()
        widget.t_anom.setValue(float(t))
        t1 = time.perf_counter()
        _events()  # repaint: vispy canvas + matplotlib draw_idle
        t2 = time.perf_counter()
        call.append(t1 - t0)
        screen.append(t2 - t0)
        t_now = np.float32(widget.t_anom.value())
        assert np.array_equal(widget.mask_layer.data.view(bool), scores >= t_now)
    commits = []
    for _ in range(5):
        t0 = time.perf_counter()
        widget._commit()
        commits.append(time.perf_counter() - t0)
    widget._commit_debounced.cancel()
    flagged = (100.0 * np.mean(scores >= np.float32(levels[0])),
               100.0 * np.mean(scores >= np.float32(levels[-1])))
    for layer in list(viewer.layers):
        viewer.layers.remove(layer)
    viewer.window.remove_dock_widget(widget)
    return {
        "call": 1e3 * float(np.median(call)),
        "screen": 1e3 * float(np.median(screen)),
        "commit": 1e3 * float(np.median(commits)),
        "flagged": flagged,
    }


def blobs(points: int, dims: int, seed: int = 0) -> np.ndarray:
    """Gaussian clusters plus 1 % scattered outliers."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, size=(6, dims))
    x = centres[rng.integers(0, 6, points)] + rng.normal(0, 1, size=(points, dims))
    n_out = points // 100
    x[:n_out] = rng.uniform(-12, 12, size=(n_out, dims))
    return x.astype(np.float32)


def bench_p_min(viewer: napari.Viewer, points: int, dims: int, values: list[int]) -> dict:
    x = blobs(points, dims)
    t0 = time.perf_counter()
    scorer = GloshScorer(x, min_samples=10, max_fit=points)
    fit = time.perf_counter() - t0
    core = []
    for p in values:
        t0 = time.perf_counter()
        scorer.score(p)
        core.append(time.perf_counter() - t0)
    scorer._cache.clear()

    rows = 100
    shape = (rows, points // rows)

    def compose(results):  # per-pixel GLOSH: one point per pixel
        return results[0].scores[: shape[0] * shape[1]].reshape(shape).astype(np.float32)

    det = Detection(np.zeros(shape, np.float32), "glosh", "pixel", {}, {}, [scorer], compose)
    det.rescore(values[0])
    widget = DetectWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Detect", area="right")
    widget.detection = det
    widget.show_scores(det.score_map)
    trips = []
    for p in values[1:]:
        scorer._cache.clear()
        widget.p_min.setValue(p)
        t0 = time.perf_counter()
        widget._rescore_debounced.flush()  # what the 150 ms debounce timer does when it fires
        while widget._rescoring is not None or det.params.get("p_min") != p:
            _events()
            time.sleep(0.001)
        _events()
        trips.append(time.perf_counter() - t0)
        assert np.array_equal(widget.score_layer.data, det.score_map)
    viewer.window.remove_dock_widget(widget)
    return {
        "fit": fit,
        "core": 1e3 * float(np.median(core)),
        "trip": 1e3 * float(np.median(trips)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1830)
    parser.add_argument("--moves", type=int, default=40)
    parser.add_argument("--points", type=int, default=20000)
    parser.add_argument("--dims", type=int, default=16)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    plain = bench_t_anom(viewer, args.size, args.moves, with_gt=False)
    gt = bench_t_anom(viewer, args.size, args.moves, with_gt=True)
    pm = bench_p_min(viewer, args.points, args.dims, [100, 60, 150, 30, 250, 80, 200])
    viewer.close()

    s, n = args.size, args.points
    lines = [
        "# Slider benchmarks (Detect dock)",
        "",
        f"`python benchmarks/bench_sliders.py` under `xvfb-run` (software OpenGL), {platform.machine()},"
        f" {os.cpu_count()} CPU cores shared with other jobs; medians of {args.moves} slider moves"
        " (t_anom) or 6 new p_min values.",
        "",
        "| what | size | median ms |",
        "|---|---|---|",
        f"| t_anom move: threshold + Labels refresh + histogram line (callback) | {s}x{s} |"
        f" {plain['call']:.1f} |",
        f"| t_anom move incl. repaint (Qt events: vispy + matplotlib) | {s}x{s} | {plain['screen']:.1f} |",
        f"| t_anom move with ground-truth metrics (callback) | {s}x{s} | {gt['call']:.1f} |",
        f"| t_anom move with ground-truth metrics incl. repaint | {s}x{s} | {gt['screen']:.1f} |",
        f"| commit after the slider rests (regions, metrics, shared mask) | {s}x{s} |"
        f" {gt['commit']:.1f} |",
        f"| p_min: `GloshScorer.score` on the cached hierarchy | {n:,} pts x {args.dims} |"
        f" {pm['core']:.1f} |",
        f"| p_min: widget round trip (request -> worker -> layers updated) | {n:,} pts |"
        f" {pm['trip']:.1f} |",
        "",
        f"One-off HDBSCAN fit for the p_min rows: {pm['fit']:.1f} s. The t_anom moves flag"
        f" {plain['flagged'][0]:.1f} % down to {plain['flagged'][1]:.1f} % of the pixels."
        " The 150 ms debounce of p_min comes on top of the round trip. The callback rows are what"
        " the slider waits for (budget 16 ms); the repaint rows add what Qt does at the next"
        " event-loop turn: vispy on Xvfb's software OpenGL (about 20 ms alone for this canvas),"
        " the blitted histogram line and the dock's labels. The p_min round trip is now almost all"
        " display: starting the worker, the new heatmap, mask and histogram and their repaint"
        " (the rescoring itself is the row above).",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
