"""Flagged regions: connected components of an anomaly mask, their scores and spectra.

No Qt here: the Inspect dock and the CLI both use these functions.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from napari_hsi_anomaly.core.cube import Cube

_EIGHT = np.ones((3, 3), dtype=bool)


class RegionInfo(NamedTuple):
    """One connected flagged region (8-connectivity); ``bbox`` is half-open ``(r0, r1, c0, c1)``."""

    label: int
    area: int
    mean_score: float
    max_score: float
    centroid: tuple[float, float]
    bbox: tuple[int, int, int, int]


def label_mask(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """``(label_image int32, n)``: connected components of a ``(rows, cols)`` mask, 8-connected."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (rows, cols); got shape {mask.shape}")
    labels, n = ndimage.label(mask, structure=_EIGHT)
    return labels.astype(np.int32, copy=False), int(n)


def flagged_regions(
    mask: np.ndarray,
    scores: np.ndarray,
    *,
    min_area: int = 1,
    label_image: np.ndarray | None = None,
) -> list[RegionInfo]:
    """Connected regions of ``mask`` with their score statistics, highest max score first.

    Ties on the max score are broken by larger area, then by label. ``label_image`` (from
    ``label_mask``) may be passed to avoid labelling twice; its labels are kept in ``RegionInfo``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if label_image is None:
        label_image, n = label_mask(mask)
    else:
        n = int(label_image.max(initial=0))
    if scores.shape != label_image.shape:
        raise ValueError(f"scores {scores.shape} and mask {label_image.shape} differ in shape")
    if n == 0:
        return []
    # only the flagged pixels are visited: cost grows with the flagged area, not the scene
    idx = np.flatnonzero(label_image)
    lab = label_image.ravel()[idx]
    val = np.nan_to_num(scores.ravel()[idx], nan=0.0)
    rr, cc = np.divmod(idx, label_image.shape[1])
    area = np.bincount(lab, minlength=n + 1)
    total = np.bincount(lab, weights=val, minlength=n + 1)
    top = np.full(n + 1, -np.inf)
    np.maximum.at(top, lab, val)
    row_sum = np.bincount(lab, weights=rr, minlength=n + 1)
    col_sum = np.bincount(lab, weights=cc, minlength=n + 1)
    big = np.iinfo(np.int64).max
    r0 = np.full(n + 1, big)
    c0 = np.full(n + 1, big)
    r1 = np.full(n + 1, -1)
    c1 = np.full(n + 1, -1)
    np.minimum.at(r0, lab, rr)
    np.minimum.at(c0, lab, cc)
    np.maximum.at(r1, lab, rr)
    np.maximum.at(c1, lab, cc)
    keep = np.flatnonzero(area >= max(1, int(min_area)))
    keep = keep[keep > 0]
    keep = keep[np.lexsort((keep, -area[keep], -top[keep]))]  # max score, then area, then label
    a = area[keep]
    cols = zip(
        keep.tolist(), a.tolist(), (total[keep] / a).tolist(), top[keep].tolist(),
        (row_sum[keep] / a).tolist(), (col_sum[keep] / a).tolist(), r0[keep].tolist(),
        (r1[keep] + 1).tolist(), c0[keep].tolist(), (c1[keep] + 1).tolist(),
    )
    return [
        RegionInfo(lab_, area_, mean_, max_, (cr, cc_), (a0, a1, b0, b1))
        for lab_, area_, mean_, max_, cr, cc_, a0, a1, b0, b1 in cols
    ]


CSV_COLUMNS = (
    "rank", "label", "area_px", "mean_score", "max_score", "centroid_row", "centroid_col",
    "row_start", "row_stop", "col_start", "col_stop",
)


MAP_COLUMNS = ("centroid_x", "centroid_y")  # added when the scene is georeferenced


def pixel_to_map(georef: dict | None, rows: np.ndarray, cols: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray] | None:
    """Map coordinates ``(x, y)`` of pixel positions (fractional rows/cols; a pixel's centre is at
    ``row + 0.5``, ``col + 0.5`` of its corner) through ``georef["transform"]`` (rasterio's affine
    ``(a, b, c, d, e, f)``: x = a*col + b*row + c, y = d*col + e*row + f); None without one."""
    t = (georef or {}).get("transform")
    if t is None or len(t) < 6:
        return None
    a, b, c, d, e, f = (float(v) for v in list(t)[:6])
    r = np.asarray(rows, np.float64) + 0.5
    q = np.asarray(cols, np.float64) + 0.5
    return a * q + b * r + c, d * q + e * r + f


def region_centres_map(regions: list[RegionInfo], georef: dict | None) -> np.ndarray | None:
    """``(n, 2)`` map coordinates ``(x, y)`` of the regions' centroids (None: not georeferenced)."""
    if not regions:
        return None if pixel_to_map(georef, np.zeros(0), np.zeros(0)) is None else np.zeros((0, 2))
    rc = np.array([r.centroid for r in regions], np.float64)
    xy = pixel_to_map(georef, rc[:, 0], rc[:, 1])
    return None if xy is None else np.column_stack(xy)


def regions_to_csv(regions: list[RegionInfo], path: str | Path, *, georef: dict | None = None) -> Path:
    """Write regions as CSV (one row per region, in list order, with a 1-based ``rank``); with a
    ``georef`` holding a transform, the centroids in map coordinates too (``MAP_COLUMNS``, the CRS's
    units)."""
    path = Path(path)
    xy = region_centres_map(regions, georef)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS + (MAP_COLUMNS if xy is not None else ()))
        for rank, r in enumerate(regions, start=1):
            extra = [] if xy is None else [f"{xy[rank - 1, 0]:.3f}", f"{xy[rank - 1, 1]:.3f}"]
            writer.writerow(
                [rank, r.label, r.area, f"{r.mean_score:.6f}", f"{r.max_score:.6f}",
                 f"{r.centroid[0]:.2f}", f"{r.centroid[1]:.2f}", *r.bbox, *extra]
            )
    return path


regions_csv = regions_to_csv  # the name used in docs/architecture.md


def region_spectrum(cube: Cube, label_image: np.ndarray, label: int) -> np.ndarray:
    """Mean spectrum (``cube.as_float32`` units, NaN-aware) of the pixels with ``label``."""
    objs = ndimage.find_objects(np.asarray(label_image) == label, max_label=1)
    if not objs or objs[0] is None:
        raise ValueError(f"no pixel has label {label}")
    rs, cs = objs[0]
    block = cube.as_float32(rs, cs)  # (bands, h, w): only the bounding box is read
    inside = np.asarray(label_image[rs, cs]) == label
    pixels = block[:, inside]  # (bands, n)
    with np.errstate(all="ignore"):
        counts = np.isfinite(pixels).sum(axis=1)
        mean = np.where(counts > 0, np.nansum(pixels, axis=1) / np.maximum(counts, 1), np.nan)
    return mean.astype(np.float32)


def region_band_ratio(per_band: np.ndarray | None, label_image: np.ndarray | None, region: RegionInfo
                      ) -> np.ndarray | None:
    """The region's mean of a per-band map ``(bands, rows, cols)`` (the reconstruction error per band)
    over the scene's per-band median (from at most ~20,000 pixels); None when the map is missing or of
    another shape."""
    if per_band is None or label_image is None or np.shape(per_band)[1:] != np.shape(label_image):
        return None
    r0, r1, c0, c1 = region.bbox
    inside = label_image[r0:r1, c0:c1] == region.label
    block = np.asarray(per_band[:, r0:r1, c0:c1], dtype=np.float64)[:, inside]
    step = max(1, int(np.sqrt(per_band[0].size / 20_000)))
    scene = np.nanmedian(np.asarray(per_band[:, ::step, ::step], dtype=np.float64), axis=(1, 2))
    return np.nanmean(block, axis=1) / np.maximum(scene, 1e-12)


def sample_pixels(cube: Cube, sample: int = 20_000, seed: int = 0) -> np.ndarray:
    """``(bands, n)`` float32 spectra of up to ``sample`` pixels on a deterministic regular grid.

    A strided grid (plus a seeded offset) reads rows in order, which stays cheap on memory maps.
    """
    rows, cols = cube.rows, cube.cols
    step = max(1, int(np.ceil(np.sqrt(rows * cols / max(1, sample)))))
    rng = np.random.default_rng(seed)
    r0, c0 = (int(rng.integers(step)), int(rng.integers(step))) if step > 1 else (0, 0)
    rs = slice(min(r0, rows - 1), None, step)
    block = cube.as_float32(rs, slice(min(c0, cols - 1), None, step))
    return block.reshape(cube.bands, -1)


def scene_spectrum_stats(
    cube: Cube, sample: int = 20_000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-band ``(median, q25, q75)`` of the scene from a bounded, deterministic pixel sample."""
    pixels = sample_pixels(cube, sample, seed)
    with warnings.catch_warnings():  # an all-NaN band gives NaN statistics, quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        q = np.nanpercentile(pixels, [50, 25, 75], axis=1)
    median, q25, q75 = (np.asarray(x, dtype=np.float32) for x in q)
    return median, q25, q75


def band_deviation(
    region_mean: np.ndarray, median: np.ndarray, iqr: np.ndarray, *, floor: float = 1e-6
) -> np.ndarray:
    """Robust z per band: ``(region_mean - median) / (IQR / 1.349)`` (IQR floored to avoid /0)."""
    sigma = np.maximum(np.asarray(iqr, dtype=np.float64) / 1.349, floor)
    return ((np.asarray(region_mean, dtype=np.float64) - median) / sigma).astype(np.float32)


def region_table_rows(regions: list[RegionInfo]) -> list[tuple]:
    """Display tuples ``(rank, area, mean, max, centroid_row, centroid_col)`` for a table."""
    return [
        (i, r.area, r.mean_score, r.max_score, r.centroid[0], r.centroid[1])
        for i, r in enumerate(regions, start=1)
    ]


__all__ = [
    "RegionInfo", "label_mask", "flagged_regions", "regions_to_csv", "regions_csv",
    "region_spectrum", "sample_pixels", "scene_spectrum_stats", "band_deviation",
    "region_table_rows", "CSV_COLUMNS", "MAP_COLUMNS", "pixel_to_map", "region_centres_map",
]
