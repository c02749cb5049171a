"""Global RX: Mahalanobis distance of each pixel to the reference's mean and covariance.

The covariance gets ``rx_ridge * trace / bands`` on its diagonal (shrinkage towards a sphere). With
``rx_ridge = 0`` this is classic RX (the pseudo-inverse, as Spectral Python and ENVI). Classic RX is
numerically sound (the same AUC on a [0, 1] or integer copy of a scene) but inverted where many pixels
share one anomalous spectrum (the stress set: 3-6 % of the pixels of one recipe): that spectrum becomes
a high-variance direction of the covariance, so those pixels' squared distance is capped near
``(1 - p) / p`` (about 20-30) while a background pixel's is about the band count (69); with a reference
free of them it ranks them on top. Shrinkage (``rx_ridge = 0.01``) lowers the weight of the many
low-variance directions, so the background's distance no longer outgrows the targets'.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors._spectral import pooled_stats, row_blocks
from napari_hsi_anomaly.core.detectors.base import Detector, Param, Raw, Scorer, check_cubes
from napari_hsi_anomaly.core.detectors.registry import register
from napari_hsi_anomaly.core.progress import Progress

RX_RIDGE = Param("rx_ridge", float, 0.01, "global RX: covariance shrinkage (ridge x mean variance on the "
                 "diagonal; 0 = classic RX)", minimum=0.0, maximum=10.0)


def whitening(cov: np.ndarray, ridge: float) -> np.ndarray:
    """``W`` with ``W W^T`` = the inverse of ``cov + ridge * trace/d * I`` (pseudo-inverse at 0)."""
    d = cov.shape[0]
    c = (cov + cov.T) / 2
    if ridge > 0:
        c = c + np.eye(d) * (ridge * np.trace(c) / d)
    prec = np.linalg.pinv(c, hermitian=True)  # ridge 0: as rx_global (the published RX numbers)
    w, v = np.linalg.eigh((prec + prec.T) / 2)
    return v * np.sqrt(np.maximum(w, 0.0))


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
    order = 6
    name = "rx"
    label = "RX (global, shrunk covariance)"
    calibration_z0 = 1.8  # fitted on the development scenes (bench_scenes.py)
    summary = "global RX: Mahalanobis distance to the reference's mean and (shrunk) covariance"
    params = (RX_RIDGE,)

    def _iter_fit(self, cubes: Sequence[Cube], *, model: Any = None, train_options: Any = None
                 ) -> Generator[Progress, None, RxScorer]:
        cubes = check_cubes(cubes)
        yield Progress(0, 1, "rx: background statistics")
        mean, cov, _ = pooled_stats(cubes)
        whiten = whitening(cov, float(self.params["rx_ridge"]))
        return RxScorer(mean, whiten, self.params, cubes[0].wavelengths)
