"""Global RX: Mahalanobis distance of each pixel to the reference's mean and covariance."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors._spectral import pooled_stats, row_blocks
from napari_hsi_anomaly.core.detectors.base import Detector, Raw, Scorer, check_cubes
from napari_hsi_anomaly.core.detectors.registry import register
from napari_hsi_anomaly.core.progress import Progress


def mahalanobis(cube: Cube, mean: np.ndarray, whiten: np.ndarray) -> np.ndarray:
    """``(rows, cols)`` float32 distance ``|| (x - mean) @ whiten ||`` (NaN where invalid)."""
    out = np.empty((cube.rows, cube.cols), dtype=np.float32)
    for rs, x in row_blocks(cube):
        y = (x - mean) @ whiten
        out[rs] = np.sqrt(np.einsum("ij,ij->i", y, y)).reshape(-1, cube.cols)
    return out


class RxScorer(Scorer):
    """Reference mean and a whitening matrix ``W`` (``W W^T`` = pseudo-inverse covariance)."""

    def __init__(self, mean: np.ndarray, whiten: np.ndarray, params: dict, wavelengths=None) -> None:
        self.detector, self.params = "rx", dict(params)
        self.mean, self.whiten = np.asarray(mean, np.float64), np.asarray(whiten, np.float64)
        self.bands, self.wavelengths = int(self.mean.size), wavelengths

    def iter_raw(self, cube: Cube) -> Generator[Progress, None, Raw]:
        yield Progress(0, 1, "rx: computing")
        dist = mahalanobis(cube, self.mean, self.whiten)
        return Raw(fixed=dist, extras={"rx_distance": dist})

    def _state(self) -> tuple[dict[str, np.ndarray], dict]:
        return {"mean": self.mean, "whiten": self.whiten}, self._meta()

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict, *, model: Any = None) -> RxScorer:
        return cls(arrays["mean"], arrays["whiten"], meta["params"], meta.get("wavelengths"))


@register
class RxDetector(Detector):
    scorer_class = RxScorer
    name = "rx"
    label = "RX (global)"
    calibration_z0 = 1.8  # fitted on the development scenes (bench_scenes.py)
    summary = "global RX: Mahalanobis distance to the reference's mean and covariance"

    def _iter_fit(self, cubes: Sequence[Cube], *, model: Any = None, train_options: Any = None
                 ) -> Generator[Progress, None, RxScorer]:
        cubes = check_cubes(cubes)
        yield Progress(0, 1, "rx: background statistics")
        mean, cov, _ = pooled_stats(cubes)
        prec = np.linalg.pinv(cov, hermitian=True)  # as rx_global (the published RX numbers)
        w, v = np.linalg.eigh((prec + prec.T) / 2)
        return RxScorer(mean, v * np.sqrt(np.maximum(w, 0.0)), self.params, cubes[0].wavelengths)
