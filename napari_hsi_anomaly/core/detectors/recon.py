"""Per-pixel reconstruction error of the CAE, each band normalised by the reference's error in it."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors.base import Detector, Raw, Scorer, check_cubes
from napari_hsi_anomaly.core.detectors.glosh_cae import PRESET, get_model, model_label
from napari_hsi_anomaly.core.detectors.registry import register
from napari_hsi_anomaly.core.errors import ModelError
from napari_hsi_anomaly.core.progress import Progress


def normalised_error(per_band: np.ndarray, band_median: np.ndarray | None) -> np.ndarray:
    """``(rows, cols)`` float32: the mean over bands of each band's squared error divided by the
    reference's median error in that band (``band_median`` None: the plain mean, profiles saved before
    the normalisation); NaN where a pixel has no data."""
    if band_median is None:
        return np.asarray(per_band, dtype=np.float32).mean(axis=0)
    w = (1.0 / np.asarray(band_median, dtype=np.float64)).astype(np.float32)
    out = np.zeros(per_band.shape[1:], np.float32)
    for b in range(per_band.shape[0]):
        out += per_band[b] * w[b]
    out /= np.float32(per_band.shape[0])
    return out


class ReconScorer(Scorer):
    """The CAE (outside the state) and the reference's median squared error per band."""

    def __init__(self, model: Any, params: dict, bands: int, wavelengths=None,
                 band_median: np.ndarray | None = None) -> None:
        self.detector, self.params, self.model = "recon", dict(params), model
        self.bands, self.wavelengths = int(bands), wavelengths
        self.band_median = band_median

    def iter_raw(self, cube: Cube) -> Generator[Progress, None, Raw]:
        from napari_hsi_anomaly.core.model import iter_reconstruction

        self.model.check_cube(cube)
        rec = yield from iter_reconstruction(self.model, cube)
        return self.raw_of(rec)

    def raw_of(self, rec: Any) -> Raw:
        """The ``Raw`` of a ``Reconstruction`` of a cube."""
        err = normalised_error(rec.per_band[: self.model.config.used_bands], self.band_median)
        return Raw(fixed=err, extras={"recon_per_pixel": rec.per_pixel, "recon_per_band": rec.per_band,
                                      "model": self.model})

    def _state(self) -> tuple[dict[str, np.ndarray], dict]:
        arrays = {} if self.band_median is None else {"band_median": self.band_median}
        return arrays, {**self._meta(), "model": model_label(self.model)}

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict, *, model: Any = None) -> ReconScorer:
        if model is None:
            raise ModelError("This normal model needs its CAE: load the profile with its model folder.")
        return cls(model, meta["params"], meta["bands"], meta.get("wavelengths"), arrays.get("band_median"))


@register
class ReconDetector(Detector):
    scorer_class = ReconScorer
    name = "recon"
    label = "CAE reconstruction error"
    calibration_z0 = 2.1  # per-band normalised error (bench_cae.py --report-detect): 8/9 dev, 8/9 stress
    summary = "per-pixel reconstruction error of the CAE, each band relative to the reference's error"
    params = (PRESET,)
    needs_model = True

    def _iter_fit(self, cubes: Sequence[Cube], *, model: Any = None, train_options: Any = None
                 ) -> Generator[Progress, None, ReconScorer]:
        from napari_hsi_anomaly.core.model import iter_reconstruction
        from napari_hsi_anomaly.core.model.features import PixelSpace

        cubes = check_cubes(cubes)
        model = yield from get_model(cubes, model, self.params["preset"], train_options)
        recs = []
        for c in cubes:
            rec = yield from iter_reconstruction(model, c)
            recs.append(rec)
        band_median = PixelSpace.band_medians([r.per_band[: model.config.used_bands] for r in recs])
        scorer = ReconScorer(model, self.params, cubes[0].bands, cubes[0].wavelengths, band_median)
        for c, rec in zip(cubes, recs, strict=True):  # the calibration reuses them (no second pass)
            scorer.remember_raw(c, scorer.raw_of(rec))
        return scorer
