"""Reference statistics shared by spectral detectors: pooled mean/covariance, PCA basis, projection."""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence

import numpy as np

from napari_hsi_anomaly.core.cube import Cube

BLOCK_PIXELS = 262144


def row_blocks(cube: Cube) -> Iterator[tuple[slice, np.ndarray]]:
    """``(rows slice, (pixels, bands) float64)`` blocks, NaN rows for invalid pixels."""
    step = max(1, BLOCK_PIXELS // max(1, cube.cols))
    for r0 in range(0, cube.rows, step):
        rs = slice(r0, min(cube.rows, r0 + step))
        yield rs, cube.as_float32(rs).astype(np.float64).reshape(cube.bands, -1).T


_LAST_STATS: tuple[tuple, tuple[np.ndarray, np.ndarray, int]] | None = None


def _stats_key(cubes: Sequence[Cube]) -> tuple:
    """What ``pooled_stats`` depends on: the cubes, their data and fill arrays (weakly) and no-data value."""
    return tuple((weakref.ref(c), weakref.ref(c.data), None if c.fill is None else weakref.ref(c.fill),
                  c.nodata, c.data.shape) for c in cubes)


def _same_cubes(key: tuple, cubes: Sequence[Cube]) -> bool:
    def same(entry: tuple, c: Cube) -> bool:
        ref, data, fill, nodata, shape = entry
        return (ref() is c and data() is c.data and (c.fill is None if fill is None else fill() is c.fill)
                and nodata == c.nodata and shape == c.data.shape)
    return len(key) == len(cubes) and all(same(e, c) for e, c in zip(key, cubes))


def pooled_stats(cubes: Sequence[Cube]) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean ``(bands,)``, covariance (ddof=1) and valid pixel count over all reference cubes.

    The last result is kept (a few numbers per band) for the same cube objects with the same data: a
    combination's parts fitted on one reference each ask for it, and each would read the whole cube
    again (the package never writes into a cube's data)."""
    global _LAST_STATS
    last = _LAST_STATS
    if last is not None and _same_cubes(last[0], cubes):
        mean, cov, n = last[1]
        return mean.copy(), cov.copy(), n
    key = _stats_key(cubes)
    out = _pooled_stats(cubes)
    _LAST_STATS = (key, (out[0].copy(), out[1].copy(), out[2]))
    return out


def _pooled_stats(cubes: Sequence[Cube]) -> tuple[np.ndarray, np.ndarray, int]:
    from napari_hsi_anomaly.core.scoring.rx import background_stats

    stats = [background_stats(c) for c in cubes]
    if len(stats) == 1:
        return stats[0]
    n = sum(s[2] for s in stats)
    mean = sum(s[0] * s[2] for s in stats) / n
    cross = sum((s[2] - 1) * s[1] + s[2] * np.outer(s[0] - mean, s[0] - mean) for s in stats)
    return mean, cross / (n - 1), n


def pca_basis(cov: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` leading eigenvectors of ``cov`` as columns ``(bands, k)``."""
    _, vecs = np.linalg.eigh(cov)
    return vecs[:, ::-1][:, : int(min(k, cov.shape[0]))]


def project(cube: Cube, mean: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """``(rows * cols, k)`` float64 coordinates of every pixel (NaN rows where invalid).

    One float32 product per row block (``basis^T x - basis^T mean``), widened to float64 on output:
    much faster than centring float64 copies; the difference is float32 rounding of the cube's own
    values."""
    k = basis.shape[1]
    out = np.empty((cube.rows, cube.cols, k))
    b32 = np.ascontiguousarray(basis.T, dtype=np.float32)
    shift = (np.asarray(basis, np.float64).T @ np.asarray(mean, np.float64)).astype(np.float32)
    step = max(1, BLOCK_PIXELS // max(1, cube.cols))
    for r0 in range(0, cube.rows, step):
        rs = slice(r0, min(cube.rows, r0 + step))
        x = cube.as_float32(rs).reshape(cube.bands, -1)
        y = b32 @ x
        y -= shift[:, None]
        out[rs] = y.T.reshape(-1, cube.cols, k)
    return out.reshape(-1, k)
