"""``Detection.rescore`` at 1830x1830: the cost of composing a new ``p_min``'s map (issue 12 item 3).

The GLOSH part (``GloshScorer.score`` / ``GloshPredictor.score``: condense + gathers) is timed by
``bench_glosh.py``/``bench_sliders.py``; here its result is cached so the time is the composition alone:
the reference calibration at the new ``p_min`` (a 20,000-pixel sample) and one fused float32 pass over the
map with the precomposed local-RX part (``spectral-rx``'s shape). The yardstick is one numpy ``a + b`` on
two arrays of the map's size, measured in the same run. Run: ``python benchmarks/bench_rescore.py``.
"""

from __future__ import annotations

import os
import time

import numpy as np
from common import git_head, save_table

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors.base import Raw
from napari_hsi_anomaly.core.detectors.calibration import Calibration, compose
from napari_hsi_anomaly.core.scoring.glosh import GloshResult

R = C = 1830


class _CachedGlosh:
    """Stands for a GLOSH handle whose results are already cached (as after a first move)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng, self.cache = rng, {}

    def score(self, p: int) -> GloshResult:
        if p not in self.cache:
            self.cache[p] = GloshResult(self.rng.random(R * C, dtype=np.float32), lambda: None, p)
        return self.cache[p]


class _Scorer:
    detector = "spectral-rx"
    params = {"p_min": None, "min_samples": 10, "max_fit": 20000, "rx_inner": 7, "rx_outer": 25}
    calibration = None


def main() -> str:
    rng = np.random.default_rng(0)
    handle, fixed, scorer = _CachedGlosh(rng), rng.random((R, C), dtype=np.float32) * 5, _Scorer()
    pos = np.sort(rng.choice(R * C, 20000, replace=False))
    scorer.calibration = Calibration(["glosh", "fixed"], [pos, fixed.ravel()[pos]], [(0.0, 1.0), (0.0, 5.0)])
    det = compose(scorer, Cube(np.zeros((1, R, C), np.float32)), np.ones((R, C), bool),
                  [Raw(glosh=handle, reference=handle, n_points=R * C), Raw(fixed=fixed)])
    alone = _Scorer()
    alone.detector = "glosh-spectral"
    alone.calibration = Calibration(["glosh"], [pos], [(0.0, 1.0)])
    det1 = compose(alone, Cube(np.zeros((1, R, C), np.float32)), np.ones((R, C), bool),
                   [Raw(glosh=handle, reference=handle, n_points=R * C)])
    ps = (200, 300, 400)
    for p in ps:
        det.rescore(p)
        det1.rescore(p)
    times, times1, adds = [], [], []
    a, b = rng.random(R * C, dtype=np.float32), rng.random(R * C, dtype=np.float32)
    for i in range(15):
        t = time.perf_counter()
        det.rescore(ps[i % 3])
        times.append(time.perf_counter() - t)
        t = time.perf_counter()
        det1.rescore(ps[i % 3])
        times1.append(time.perf_counter() - t)
        t = time.perf_counter()
        _ = a + b
        adds.append(time.perf_counter() - t)
    load = os.getloadavg()[0]
    text = (f"Commit {git_head()}, 2 shared CPU cores, load {load:.1f}.\n\n"
            "| 1830x1830 | median ms | min ms |\n|---|---|---|\n"
            f"| `Detection.rescore` composition, spectral-rx (GLOSH part cached) | "
            f"{np.median(times) * 1e3:.1f} | {min(times) * 1e3:.1f} |\n"
            f"| `Detection.rescore` composition, glosh-spectral (GLOSH odds in the same pass) | "
            f"{np.median(times1) * 1e3:.1f} | {min(times1) * 1e3:.1f} |\n"
            f"| yardstick: one numpy `a + b` (float32, same size) | {np.median(adds) * 1e3:.1f} | "
            f"{min(adds) * 1e3:.1f} |\n")
    save_table("bench_rescore", text)
    return text


if __name__ == "__main__":
    main()
