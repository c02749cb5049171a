"""CAE reconstruction scored by structural similarity (SSIM) per pixel, as the method's sources measure it
beside the squared error.

For each band the SSIM (Wang et al., 2004) between the model's scaled input and its reconstruction is
computed over a ``ssim_window`` x ``ssim_window`` neighbourhood of every pixel with Gaussian weights of
``ssim_sigma`` px (Wang et al. weight the window the same way; a narrow one keeps a 1-px target's loss of
structure from being diluted by its neighbours); the dissimilarity ``(1 - SSIM) / 2`` of each band is
divided by the reference's median dissimilarity in that band (bands the CAE reconstructs poorly everywhere
do not dominate) and averaged over the bands. A pixel scores high where the reconstruction loses the local
structure (luminance, contrast, correlation) more than it does on the reference.

The luminance constant is ``(K1 L)^2`` with K1 = 0.05 rather than the paper's 0.01 (L = 1, the model's
scaling): with 0.01 the luminance term forgives an error in proportion to the pixel's brightness (Weber's
law, right for a viewer), so a bright target the CAE reconstructs at 80 % of its value scores as normal;
the choice was made leave-one-scene-out (benchmarks/results/bench_cae.md).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors.base import Detector, Param, Raw, Scorer, check_cubes
from napari_hsi_anomaly.core.detectors.glosh_cae import PRESET, get_model, model_label
from napari_hsi_anomaly.core.detectors.registry import register
from napari_hsi_anomaly.core.errors import ModelError
from napari_hsi_anomaly.core.progress import Progress

# 3 px and a narrow Gaussian: a wider window dilutes a small target's loss of structure (bench_cae.md)
SSIM_WINDOW = Param("ssim_window", int, 3, "SSIM: side of the square neighbourhood (pixels)", minimum=3,
                    maximum=15)
SSIM_SIGMA = Param("ssim_sigma", float, 0.5, "SSIM: standard deviation of the window's Gaussian weights "
                   "(pixels; 0: uniform weights)", minimum=0.0, maximum=10.0)
K1, K2 = 0.05, 0.03  # luminance / contrast constants x the dynamic range 1 (the model's scaling); see above


def ssim_dissimilarity(x: np.ndarray, y: np.ndarray, window: int, sigma: float = 0.0,
                       k1: float = K1, k2: float = K2) -> np.ndarray:
    """``(bands, rows, cols)`` float32: ``(1 - SSIM) / 2`` of ``x`` and ``y`` per band over a ``window``
    square, Gaussian-weighted with ``sigma`` px (0: uniform), constants ``(k1)^2`` and ``(k2)^2`` (NaN in
    ``x`` or ``y``: taken as 0 there, NaN in the result)."""
    from scipy.ndimage import gaussian_filter, uniform_filter

    bad = ~(np.isfinite(x) & np.isfinite(y))
    x = np.where(bad, 0.0, x).astype(np.float32)
    y = np.where(bad, 0.0, y).astype(np.float32)
    radius = int(window) // 2
    c1, c2 = float(k1) ** 2, float(k2) ** 2

    def mean(a: np.ndarray) -> np.ndarray:
        if sigma > 0:  # the Gaussian cut at the window's edge (radius px), renormalised by scipy
            return gaussian_filter(a, sigma=(0.0, sigma, sigma), mode="reflect",
                                   truncate=radius / sigma + 1e-6)
        return uniform_filter(a, size=(1, int(window), int(window)), mode="reflect")

    mx, my = mean(x), mean(y)
    vx = np.maximum(mean(x * x) - mx * mx, 0.0)
    vy = np.maximum(mean(y * y) - my * my, 0.0)
    cxy = mean(x * y) - mx * my
    ssim = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    out = ((1.0 - ssim) * 0.5).astype(np.float32)
    out[bad] = np.nan
    return out


def band_weighted_mean(d: np.ndarray, band_median: np.ndarray) -> np.ndarray:
    """``(rows, cols)`` float32: the mean over bands of ``d`` divided by each band's reference median."""
    w = (1.0 / np.maximum(np.asarray(band_median, np.float64), 1e-12)).astype(np.float32)
    return np.tensordot(w, d, axes=(0, 0)).astype(np.float32) / np.float32(d.shape[0])


class SsimScorer(Scorer):
    """The CAE (outside the state) and the reference's median dissimilarity per band."""

    def __init__(self, model: Any, params: dict, bands: int, band_median: np.ndarray,
                 wavelengths=None, k1: float = K1) -> None:
        self.detector, self.params, self.model = "ssim-recon", dict(params), model
        self.bands, self.wavelengths, self.band_median = int(bands), wavelengths, band_median
        self.k1 = float(k1)

    def halo(self) -> int:
        return int(self.params["ssim_window"]) // 2

    def iter_raw(self, cube: Cube) -> Generator[Progress, None, Raw]:
        d = yield from dissimilarity(self.model, cube, int(self.params["ssim_window"]),
                                     float(self.params["ssim_sigma"]), self.k1)
        return self.raw_of(d)

    def raw_of(self, d: np.ndarray) -> Raw:
        return Raw(fixed=band_weighted_mean(d, self.band_median), extras={"model": self.model})

    def _state(self) -> tuple[dict[str, np.ndarray], dict]:
        return {"band_median": self.band_median}, {**self._meta(), "model": model_label(self.model),
                                                    "ssim_k1": self.k1}

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict, *, model: Any = None) -> SsimScorer:
        if model is None:
            raise ModelError("This normal model needs its CAE: load the profile with its model folder.")
        # profiles saved before ssim_sigma / K1 = 0.05: uniform weights and Wang's 0.01, as they were fitted
        return cls(model, {"ssim_sigma": 0.0, **meta["params"]}, meta["bands"], arrays["band_median"],
                   meta.get("wavelengths"), float(meta.get("ssim_k1", 0.01)))


def dissimilarity(model: Any, cube: Cube, window: int, sigma: float = 0.0, k1: float = K1
                  ) -> Generator[Progress, None, np.ndarray]:
    """``(used bands, rows, cols)``: ``ssim_dissimilarity`` of the scaled cube and its reconstruction."""
    from napari_hsi_anomaly.core.model import iter_reconstruction

    model.check_cube(cube)
    rec = yield from iter_reconstruction(model, cube, residual=True)
    nb = model.config.used_bands
    x = model.scaler.transform(cube.as_float32())[:nb]
    return ssim_dissimilarity(x, x + rec.residual[:nb], window, sigma, k1)


@register
class SsimReconDetector(Detector):
    scorer_class = SsimScorer
    order = 9.5
    name = "ssim-recon"
    label = "CAE reconstruction SSIM"
    calibration_z0 = 1.3  # pick_z0 at ssim_window 5 (bench_cae.py --report-detect, 9 dev scenes); provisional
    summary = "CAE reconstruction scored by structural similarity (SSIM) per pixel and band"
    params = (PRESET, SSIM_WINDOW, SSIM_SIGMA)
    needs_model = True

    def _iter_fit(self, cubes: Sequence[Cube], *, model: Any = None, train_options: Any = None
                 ) -> Generator[Progress, None, SsimScorer]:
        cubes = check_cubes(cubes)
        model = yield from get_model(cubes, model, self.params["preset"], train_options)
        window, sigma = int(self.params["ssim_window"]), float(self.params["ssim_sigma"])
        ds = []
        for c in cubes:
            d = yield from dissimilarity(model, c, window, sigma)
            ds.append(d)
        med = np.nanmedian(np.concatenate([d.reshape(d.shape[0], -1) for d in ds], axis=1), axis=1)
        med = np.nan_to_num(med, nan=1.0)
        scorer = SsimScorer(model, self.params, cubes[0].bands, med, cubes[0].wavelengths)
        for c, d in zip(cubes, ds, strict=True):  # the calibration reuses them (no second pass)
            scorer.remember_raw(c, scorer.raw_of(d))
        return scorer
