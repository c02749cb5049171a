"""Score maps: features' scores back to pixels, scaling to [0, 1], thresholds."""

from __future__ import annotations

import numpy as np

from napari_hsi_anomaly.core.errors import ShapeError


def to_score_map(
    values: np.ndarray, regions: np.ndarray | None, image_shape: tuple[int, int], *, fill: float = 0.0
) -> np.ndarray:
    """A ``(rows, cols)`` float32 map from per-point scores.

    ``regions`` ``(N, 4)`` rows of ``r0, r1, c0, c1``: each region gets its score, the maximum where
    regions overlap, ``fill`` where none covers a pixel. ``regions=None``: one value per pixel, row-major.
    """
    v = np.asarray(values, dtype=np.float32).reshape(-1)
    rows, cols = (int(s) for s in image_shape)
    if regions is None:
        if v.size != rows * cols:
            raise ShapeError(f"{v.size} per-pixel scores for an image of {rows}x{cols} pixels.")
        return v.reshape(rows, cols).copy()
    reg = np.asarray(regions, dtype=np.int64).reshape(-1, 4)
    if reg.shape[0] != v.size:
        raise ShapeError(f"{v.size} scores for {reg.shape[0]} regions.")
    out = np.full((rows, cols), -np.inf, dtype=np.float32)
    for s, (r0, r1, c0, c1) in zip(v, reg):
        block = out[r0:r1, c0:c1]
        np.maximum(block, s, out=block)
    out[np.isneginf(out)] = fill
    return out


def scale01(x: np.ndarray, *, percentiles: tuple[float, float] | None = None) -> np.ndarray:
    """Min-max scale to [0, 1] as float32, ignoring non-finite values (which stay NaN).

    ``percentiles=(lo, hi)``: use those percentiles as the ends and clip (robust for RX distances).
    A constant input gives zeros.
    """
    a = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(a)
    out = np.full(a.shape, np.nan, dtype=np.float32)
    if not ok.any():
        return out
    vals = a[ok]
    lo, hi = (np.percentile(vals, percentiles) if percentiles else (vals.min(), vals.max()))
    if hi <= lo:
        out[ok] = 0.0
        return out
    out[ok] = np.clip((vals - lo) / (hi - lo), 0.0, 1.0)
    return out


def rank01(x: np.ndarray) -> np.ndarray:
    """Ranks scaled to [0, 1] (ties share their mean rank); non-finite values stay NaN."""
    from scipy.stats import rankdata

    a = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(a)
    out = np.full(a.shape, np.nan, dtype=np.float32)
    n = int(ok.sum())
    if n:
        out[ok] = (rankdata(a[ok]) - 1) / max(1, n - 1)
    return out


def threshold(score_map: np.ndarray, t_anom: float) -> np.ndarray:
    """Boolean anomaly mask: ``score >= t_anom`` (NaN is never anomalous)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(score_map) >= np.float32(t_anom)
