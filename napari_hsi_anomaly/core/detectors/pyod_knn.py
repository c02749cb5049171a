"""Optional peer: PyOD's KNN detector (distance to the k-th nearest reference spectrum).

Model code only: ``pixel_model.PixelDetector`` does the rest. Listed only where ``pyod`` is installed
(``pip install napari-hsi-anomaly[pyod]``).
"""

from __future__ import annotations

from typing import Any

from napari_hsi_anomaly.core.detectors.base import SEED, Param
from napari_hsi_anomaly.core.detectors.pixel_model import PixelDetector
from napari_hsi_anomaly.core.detectors.registry import register

N_NEIGHBORS = Param("n_neighbors", int, None, "neighbours: the score is the distance to the k-th "
                    "(auto: 5 % of the fitted spectra, at least 5)", minimum=1, maximum=5000)
KNN_MAX_FIT = Param("max_fit", int, 3000, "at most this many reference spectra fitted", minimum=50,
                    maximum=50000)


def auto_k(n_fitted: int) -> int:
    """Default ``k``: 5 % of the fitted spectra (at least 5). With PyOD's k = 5 a few hundred similar
    anomalous pixels are each other's neighbours and score low (benchmarks/results/bench_scenes.md)."""
    return max(5, int(round(0.05 * n_fitted)))


@register
class KnnDetector(PixelDetector):
    order = 10
    name = "knn"
    label = "KNN (PyOD)"
    calibration_z0 = 2.1  # fitted on the development scenes (bench_scenes.py), k = 5 % of 3,000
    summary = "PyOD KNN: distance to the k-th nearest reference spectrum (optional extra 'pyod')"
    params = (N_NEIGHBORS, KNN_MAX_FIT, SEED)
    requires = ("pyod",)
    refit_on_load = True  # a profile keeps the fitted spectra

    def min_rows(self) -> int:
        return (self.params["n_neighbors"] or 5) + 2

    def estimator(self, n_rows: int) -> Any:
        from pyod.models.knn import KNN

        return KNN(n_neighbors=min(self.params["n_neighbors"] or auto_k(n_rows), n_rows - 1))
