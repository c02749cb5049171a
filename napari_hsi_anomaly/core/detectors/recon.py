"""CAE reconstruction error per pixel: the Mahalanobis distance of the signed residual (reconstruction
minus input, one value per band) to the reference's residuals.

Why whitened: the plain squared error, even divided per band by the reference's median error, is
dominated by the bands and pixels the CAE reconstructs worst everywhere; whitening the residual with the
reference's own residual covariance scores what the CAE gets wrong *unusually* for this scene
(benchmarks/results/bench_cae.md).

Why trimmed: when the reference holds the targets (a scene scored against itself), a large or numerous
target's residuals pull the mean and inflate the covariance in their own direction, so they whiten to
small distances. The statistics are therefore re-estimated ``TRIM_STEPS`` times on the ``TRIM_KEEP``
share of reference pixels nearest the current mean (concentration steps, as in the minimum covariance
determinant estimator).

Why spatial: a CAE trained on a scene with one large target learns to reconstruct it, so the target's
interior whitens to an ordinary distance and only its rim stands out. The raw map is therefore the
distance plus its contrast to its surroundings at up to ``CLOSE_AREA`` px (``morphology.small_objects``,
both polarities: a pit of up to 400 px enclosed by a higher rim is raised to the rim, as an area
closing does, and a bump adds its height again), plus ``PEAK_WEIGHT`` times the distance's *peaks* (how
far each pixel stands above its surroundings as a bright object of up to 25, 100 and 400 px, as
``morphology.glosh_peaks`` on GLOSH's map), each scaled by the reference's (min, 99.9th percentile)
(benchmarks/results/bench_cae.md, round 4). Both filters are local (``halo()``: 400 rows).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors._spectral import pooled_stats
from napari_hsi_anomaly.core.detectors.base import Detector, Raw, Scorer, check_cubes
from napari_hsi_anomaly.core.detectors.glosh_cae import PRESET, get_model, model_label
from napari_hsi_anomaly.core.detectors.registry import register
from napari_hsi_anomaly.core.detectors.rx import mahalanobis, whitening
from napari_hsi_anomaly.core.errors import ModelError
from napari_hsi_anomaly.core.progress import Progress
from napari_hsi_anomaly.core.scoring.morphology import LADDER, small_objects_multi

RIDGE = 1e-3  # covariance shrinkage: ridge x mean variance on the diagonal (as local RX)
TRIM_KEEP, TRIM_STEPS = 0.8, 2  # concentration steps: keep the 80 % nearest, twice (bench_cae.md)
CLOSE_AREA = LADDER[-1]  # the distance's contrast at up to this many px (bench_cae.md round 4)
PEAK_WEIGHT = 4.0  # weight of the distance's peaks (scaled) against the closed distance (scaled)
STEPS = 32768  # the filters quantise the reference's range of the distance in this many steps


def normalised_error(per_band: np.ndarray, band_median: np.ndarray | None) -> np.ndarray:
    """Profiles saved before the residual statistics: ``(rows, cols)`` float32, the mean over bands of
    each band's squared error divided by the reference's median error in it (None: the plain mean)."""
    if band_median is None:
        return np.asarray(per_band, dtype=np.float32).mean(axis=0)
    w = (1.0 / np.asarray(band_median, dtype=np.float64)).astype(np.float32)
    out = np.zeros(per_band.shape[1:], np.float32)
    for b in range(per_band.shape[0]):
        out += per_band[b] * w[b]
    out /= np.float32(per_band.shape[0])
    return out


def residual_stats(residuals: Sequence[np.ndarray], ridge: float = RIDGE, keep: float = TRIM_KEEP,
                   steps: int = TRIM_STEPS) -> tuple[np.ndarray, np.ndarray]:
    """Pooled mean ``(bands,)`` and whitening matrix (shrunk covariance, as global RX's) of the reference's
    residuals ``(bands, rows, cols)`` (NaN: no data), re-estimated ``steps`` times on the ``keep`` share
    of the pixels nearest the mean (see the module docstring)."""
    res = [np.asarray(r) for r in residuals]
    mean, cov, _ = pooled_stats([Cube(r) for r in res])
    whiten = whitening(cov, ridge)
    for _ in range(int(steps) if keep < 1 else 0):
        dist = [residual_distance(r, mean, whiten) for r in res]
        flat = np.concatenate([d.ravel() for d in dist])
        flat = flat[np.isfinite(flat)]
        if flat.size < 2:
            break
        cut = float(np.quantile(flat, keep))
        mean, cov, _ = pooled_stats([Cube(np.where(d <= cut, r, np.nan)) for r, d in zip(res, dist,
                                                                                           strict=True)])
        whiten = whitening(cov, ridge)
    return mean, whiten


def residual_distance(residual: np.ndarray, mean: np.ndarray, whiten: np.ndarray) -> np.ndarray:
    """``(rows, cols)`` float32 Mahalanobis distance of each pixel's residual; NaN without data."""
    return mahalanobis(Cube(residual), mean, whiten)


def spatial_stats(distances: Sequence[np.ndarray]) -> dict:
    """What ``spatial_map`` needs from the reference's distance maps: the median (the peaks' floor),
    the quantisation step and the (min, 99.9th percentile) of the closed map and of the peaks."""
    flat = np.concatenate([d.ravel() for d in distances])
    flat = flat[np.isfinite(flat)]
    if flat.size < 2 or not flat.max() > flat.min():
        return {}
    lo, hi, level = float(flat.min()), float(flat.max()), float(np.median(flat))
    st = {"level": level, "step": (hi - lo) / STEPS, "closed": (0.0, 1.0), "peaks": (0.0, 1.0)}
    closed, peaks = zip(*(_filtered(d, st) for d in distances), strict=True)
    for key, maps in (("closed", closed), ("peaks", peaks)):
        v = np.concatenate([m.ravel() for m in maps])
        v = v[np.isfinite(v)]
        st[key] = (float(np.percentile(v, 0.0)), float(np.percentile(v, 99.9)))
    return st


def _filtered(dist: np.ndarray, st: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(closed, peaks)`` of one distance map (float32; NaN where the distance is): ``closed`` the
    distance plus its two-sided contrast at ``CLOSE_AREA`` px (at least its area closing)."""
    img = np.asarray(dist, dtype=np.float64).copy()
    bad = ~np.isfinite(img)
    img[bad] = st["level"]
    [contrast] = small_objects_multi(-img, [CLOSE_AREA + 1], st["step"])  # (img - opening) + (closing - img)
    closed = (img + contrast).astype(np.float32)
    np.maximum(img, st["level"], out=img)
    sizes = LADDER
    maps = small_objects_multi(img, [s + 1 for s in sizes], st["step"])
    peaks = np.zeros(img.shape, np.float32)
    for s, m in zip(sizes, maps, strict=True):
        peaks += np.float32(np.sqrt(s / sizes[-1])) * m
    closed[bad] = np.nan
    peaks[bad] = np.nan
    return closed, peaks


def spatial_map(dist: np.ndarray, st: dict) -> np.ndarray:
    """``(rows, cols)`` float32: the scaled ``closed`` distance plus ``PEAK_WEIGHT`` times its scaled peaks
    (see the module docstring); ``dist`` itself where ``st`` is empty (a flat reference)."""
    if not st:
        return np.asarray(dist, dtype=np.float32)
    from napari_hsi_anomaly.core.detectors.calibration import scale_fixed

    closed, peaks = _filtered(dist, st)
    out = scale_fixed(closed, tuple(st["closed"]))
    out += np.float32(PEAK_WEIGHT) * scale_fixed(peaks, tuple(st["peaks"]))
    out[~np.isfinite(closed)] = np.nan
    return out


class ReconScorer(Scorer):
    """The CAE (outside the state) and the reference's residual mean and whitening matrix."""

    def __init__(self, model: Any, params: dict, bands: int, wavelengths=None,
                 band_median: np.ndarray | None = None, res_mean: np.ndarray | None = None,
                 res_whiten: np.ndarray | None = None, spatial: dict | None = None) -> None:
        self.detector, self.params, self.model = "recon", dict(params), model
        self.bands, self.wavelengths = int(bands), wavelengths
        self.band_median, self.res_mean, self.res_whiten = band_median, res_mean, res_whiten
        self.spatial = spatial  # spatial_stats of the reference (None: profiles saved before them)

    def halo(self) -> int:
        """The area filters read objects of up to ``LADDER[-1]`` px: as many rows (0 without them)."""
        return LADDER[-1] if self.spatial else 0

    @property
    def whitened(self) -> bool:
        return self.res_whiten is not None

    def iter_raw(self, cube: Cube) -> Generator[Progress, None, Raw]:
        from napari_hsi_anomaly.core.model import iter_reconstruction

        self.model.check_cube(cube)
        rec = yield from iter_reconstruction(self.model, cube, residual=self.whitened)
        return self.raw_of(rec)

    def raw_of(self, rec: Any) -> Raw:
        """The ``Raw`` of a ``Reconstruction`` of a cube."""
        nb = self.model.config.used_bands
        if self.whitened:
            err = residual_distance(rec.residual[:nb], self.res_mean, self.res_whiten)
            if self.spatial:
                err = spatial_map(err, self.spatial)
        else:
            err = normalised_error(rec.per_band[:nb], self.band_median)
        return Raw(fixed=err, extras={"recon_per_pixel": rec.per_pixel, "recon_per_band": rec.per_band,
                                      "model": self.model})

    def _state(self) -> tuple[dict[str, np.ndarray], dict]:
        arrays = {k: v for k, v in (("band_median", self.band_median), ("res_mean", self.res_mean),
                                    ("res_whiten", self.res_whiten)) if v is not None}
        meta = {**self._meta(), "model": model_label(self.model)}
        if self.spatial is not None:
            meta["spatial"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.spatial.items()}
        return arrays, meta

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict, *, model: Any = None) -> ReconScorer:
        if model is None:
            raise ModelError("This normal model needs its CAE: load the profile with its model folder.")
        return cls(model, meta["params"], meta["bands"], meta.get("wavelengths"), arrays.get("band_median"),
                   arrays.get("res_mean"), arrays.get("res_whiten"), meta.get("spatial"))


@register
class ReconDetector(Detector):
    scorer_class = ReconScorer
    order = 9
    name = "recon"
    label = "CAE reconstruction error"
    calibration_z0 = 3.0  # flagged/true in [0.25, 4]: 8/9 dev, 36/36 stress (bench_cae.md round 4)
    summary = ("CAE reconstruction error per pixel, whitened by the reference's residuals (Mahalanobis), "
               "plus its contrast and peaks at up to 400 px (a large learned target's rim)")
    params = (PRESET,)
    needs_model = True

    def _iter_fit(self, cubes: Sequence[Cube], *, model: Any = None, train_options: Any = None
                 ) -> Generator[Progress, None, ReconScorer]:
        from napari_hsi_anomaly.core.model import iter_reconstruction

        cubes = check_cubes(cubes)
        model = yield from get_model(cubes, model, self.params["preset"], train_options)
        recs = []
        for c in cubes:
            rec = yield from iter_reconstruction(model, c, residual=True)
            recs.append(rec)
        nb = model.config.used_bands
        mean, prec = residual_stats([r.residual[:nb] for r in recs])
        dists = [residual_distance(r.residual[:nb], mean, prec) for r in recs]
        scorer = ReconScorer(model, self.params, cubes[0].bands, cubes[0].wavelengths, None, mean, prec,
                             spatial_stats(dists))
        for c, rec in zip(cubes, recs, strict=True):  # the calibration reuses them (no second pass)
            scorer.remember_raw(c, scorer.raw_of(rec))
        return scorer
