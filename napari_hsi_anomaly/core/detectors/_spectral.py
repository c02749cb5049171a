"""Reference statistics shared by spectral detectors: pooled mean/covariance, PCA basis, projection."""

from __future__ import annotations

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


def pooled_stats(cubes: Sequence[Cube]) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean ``(bands,)``, covariance (ddof=1) and valid pixel count over all reference cubes."""
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
    about 10x faster than centring float64 copies (1.8 s -> 0.2 s on 1830^2 x 12); the difference is
    float32 rounding of the cube's own values."""
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
