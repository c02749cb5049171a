"""GLOSH per pixel on the leading principal components of the spectra (no CAE needed)."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors._glosh import GloshReference
from napari_hsi_anomaly.core.detectors._spectral import pca_basis, pooled_stats, project
from napari_hsi_anomaly.core.detectors.base import GLOSH_PARAMS, Detector, Param, Raw, Scorer, check_cubes
from napari_hsi_anomaly.core.detectors.registry import register
from napari_hsi_anomaly.core.progress import Progress

COMPONENTS = Param("components", int, 5, "principal components of the spectra clustered by GLOSH",
                   minimum=1, maximum=64)


class SpectralGloshScorer(Scorer):
    """The reference's mean and PCA basis, and the GLOSH hierarchy of its projected pixels."""

    def __init__(self, mean: np.ndarray, basis: np.ndarray, ref: GloshReference, params: dict,
                 wavelengths=None) -> None:
        self.detector, self.params = "glosh-spectral", dict(params)
        self.mean, self.basis, self.ref = mean, basis, ref
        self.bands, self.wavelengths = int(mean.size), wavelengths

    @property
    def feature(self) -> str:
        return f"pca{self.basis.shape[1]}"

    def iter_raw(self, cube: Cube) -> Generator[Progress, None, Raw]:
        yield Progress(0, 1, f"spectral features: {self.basis.shape[1]} principal components")
        handle = self.ref.handle(cube, lambda c: project(c, self.mean, self.basis))
        return Raw(glosh=handle, reference=self.ref.scorer, feature=self.feature, n_points=self.ref.n_valid)

    def _state(self) -> tuple[dict[str, np.ndarray], dict]:
        arrays, meta = self.ref.state()
        return {"mean": self.mean, "basis": self.basis, **arrays}, {**self._meta(), **meta}

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict, *, model: Any = None
                   ) -> SpectralGloshScorer:
        ref = GloshReference.from_state(arrays, meta)
        return cls(arrays["mean"], arrays["basis"], ref, meta["params"], meta.get("wavelengths"))


@register
class GloshSpectralDetector(Detector):
    scorer_class = SpectralGloshScorer
    order = 4
    name = "glosh-spectral"
    label = "GLOSH on spectra (PCA)"
    calibration_z0 = 1.7  # fitted on the development scenes (bench_scenes.py)
    summary = "HDBSCAN/GLOSH per pixel on the leading principal components of the spectra"
    params = (COMPONENTS, *GLOSH_PARAMS)
    uses_p_min = True

    def _iter_fit(self, cubes: Sequence[Cube], *, model: Any = None, train_options: Any = None
                 ) -> Generator[Progress, None, SpectralGloshScorer]:
        cubes = check_cubes(cubes)
        k = int(self.params["components"])
        yield Progress(0, 1, f"spectral features: {k} principal components")
        mean, cov, _ = pooled_stats(cubes)
        basis = pca_basis(cov, k)
        values = [project(c, mean, basis) for c in cubes]
        n = sum(v.shape[0] for v in values)
        yield Progress(0, 1, f"GLOSH: fitting HDBSCAN on {n} x {basis.shape[1]}")
        ref = GloshReference(values, cubes, min_samples=self.params["min_samples"],
                             max_fit=self.params["max_fit"], seed=self.params["seed"],
                             shape_hint=f" on this {cubes[0].rows}x{cubes[0].cols} cube")
        return SpectralGloshScorer(mean, basis, ref, self.params, cubes[0].wavelengths)
