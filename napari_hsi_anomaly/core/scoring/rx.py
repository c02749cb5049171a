"""RX anomaly detectors (Reed-Xiaoli): global and dual-window local Mahalanobis distance.

Both return the Mahalanobis *distance* (the square root of the RX statistic; same ranking) as a
``(rows, cols)`` float32 map. Pixels with a non-finite or no-data value in any band are left out of
the statistics and get NaN. Work is done in row blocks, so memory stays bounded on large cubes.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from napari_hsi_anomaly.core.cube import Cube, as_cube
from napari_hsi_anomaly.core.errors import ShapeError

BLOCK_PIXELS = 262144  # pixels per block (x bands x 8 bytes of float64)




def _row_blocks(cube: Cube) -> Iterator[tuple[slice, np.ndarray]]:
    """``(rows slice, (pixels, bands) float64)`` blocks, NaN rows for invalid pixels."""
    step = max(1, BLOCK_PIXELS // max(1, cube.cols))
    for r0 in range(0, cube.rows, step):
        rs = slice(r0, min(cube.rows, r0 + step))
        block = cube.as_float32(rs).astype(np.float64)  # (bands, r, cols)
        yield rs, block.reshape(cube.bands, -1).T


def background_stats(cube: Cube | np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Scene mean ``(bands,)``, sample covariance (ddof=1) ``(bands, bands)`` and the valid pixel count."""
    cube = as_cube(cube, "RX")
    b = cube.bands
    total = np.zeros(b)
    n = 0
    for _, x in _row_blocks(cube):
        ok = np.isfinite(x).all(axis=1)
        total += x[ok].sum(axis=0)
        n += int(ok.sum())
    if n < 2:
        raise ShapeError("RX needs at least two valid pixels (pixels with finite values in every band).")
    mean = total / n
    cross = np.zeros((b, b))
    for _, x in _row_blocks(cube):
        xc = x[np.isfinite(x).all(axis=1)] - mean
        cross += xc.T @ xc
    return mean, cross / (n - 1), n


def rx_global(cube_or_array: Cube | np.ndarray) -> np.ndarray:
    """Global RX: Mahalanobis distance of every pixel to the scene mean (pseudo-inverse covariance).

    ``cube_or_array``: a ``Cube`` or a ``(bands, rows, cols)`` array. Invalid pixels give NaN.
    """
    cube = as_cube(cube_or_array, "RX")
    mean, cov, _ = background_stats(cube)
    prec = np.linalg.pinv(cov, hermitian=True)
    out = np.full((cube.rows, cube.cols), np.nan, dtype=np.float32)
    for rs, x in _row_blocks(cube):
        xc = x - mean
        d2 = np.einsum("ij,jk,ik->i", xc, prec, xc, optimize=True)
        out[rs] = np.sqrt(np.maximum(d2, 0.0)).reshape(-1, cube.cols)
    return out


def pca_reduce(cube_or_array: Cube | np.ndarray, n_components: int) -> np.ndarray:
    """Project a cube on its ``n_components`` leading principal components: ``(k, rows, cols)`` float64.

    Invalid pixels stay NaN. The covariance is the scene's (ddof=1), as in ``rx_global``.
    """
    cube = as_cube(cube_or_array, "RX")
    mean, cov, _ = background_stats(cube)
    k = int(min(n_components, cube.bands))
    _, vecs = np.linalg.eigh(cov)
    basis = vecs[:, ::-1][:, :k]
    out = np.empty((k, cube.rows, cube.cols))
    for rs, x in _row_blocks(cube):
        out[:, rs] = ((x - mean) @ basis).T.reshape(k, -1, cube.cols)
    return out


def _box_sum(integral: np.ndarray, r0: np.ndarray, r1: np.ndarray, c0: np.ndarray, c1: np.ndarray):
    """Sums over boxes ``[r0, r1) x [c0, c1)`` from a zero-padded integral image ``(R+1, C+1, ...)``."""
    return (
        integral[r1[:, None], c1[None, :]]
        - integral[r0[:, None], c1[None, :]]
        - integral[r1[:, None], c0[None, :]]
        + integral[r0[:, None], c0[None, :]]
    )


def rx_local(
    cube_or_array: Cube | np.ndarray,
    inner: int = 7,
    outer: int = 25,
    *,
    n_components: int | None = 20,
    ridge: float = 1e-6,
    strip_rows: int | None = None,
) -> np.ndarray:
    """Dual-window local RX: each pixel against the mean and covariance of its ``outer x outer`` window
    minus the ``inner x inner`` guard window around it (both clipped at the image border).

    Statistics come from integral images of ``x`` and ``x x^T`` (cost independent of window size). The
    cube is first projected on ``n_components`` principal components (None: all bands), which keeps
    the ``x x^T`` images small: 205 bands -> 20 components makes 100x100 take well under a second.
    The local covariance (ddof=1) gets ``ridge * trace / dims`` on its diagonal. Invalid pixels: NaN.
    Work goes in strips of rows (``strip_rows``, default from a ~250 MB budget).
    """
    if not (0 < inner < outer) or inner % 2 == 0 or outer % 2 == 0:
        raise ValueError(f"rx_local needs odd window sizes with 0 < inner < outer; got {inner}, {outer}.")
    cube = as_cube(cube_or_array, "RX")
    if n_components is not None and n_components < cube.bands:
        x = pca_reduce(cube, n_components)
    else:
        x = cube.as_float32().astype(np.float64)
    d, rows, cols = x.shape
    valid = np.isfinite(x).all(axis=0)
    x = np.where(valid, x, 0.0).transpose(1, 2, 0)  # (rows, cols, d)
    out = np.full((rows, cols), np.nan, dtype=np.float32)
    iu = np.triu_indices(d)
    ho, hi = outer // 2, inner // 2
    # rows per strip: bound the x x^T integral (strip + halo) and the per-pixel d x d matrices
    step = strip_rows or max(4, min(32_000_000 // (cols * len(iu[0])) - 2 * ho, 8_000_000 // (cols * d * d)))
    cc = np.arange(cols)
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        a0, a1 = max(0, r0 - ho), min(rows, r1 + ho)  # rows the block's windows can reach
        xs, vs = x[a0:a1], valid[a0:a1].astype(np.float64)
        outer_prod = xs[..., iu[0]] * xs[..., iu[1]]
        integ = [
            np.pad(np.cumsum(np.cumsum(a, 0), 1), ((1, 0), (1, 0)) + ((0, 0),) * (a.ndim - 2))
            for a in (vs, xs, outer_prod)
        ]
        rr = np.arange(r0, r1)
        sums = []
        for h in (ho, hi):
            br0, br1 = np.maximum(rr - h, 0) - a0, np.minimum(rr + h + 1, rows) - a0
            bc0, bc1 = np.maximum(cc - h, 0), np.minimum(cc + h + 1, cols)
            sums.append([_box_sum(i, br0, br1, bc0, bc1) for i in integ])
        n = sums[0][0] - sums[1][0]
        s1 = sums[0][1] - sums[1][1]
        s2u = sums[0][2] - sums[1][2]
        s2 = np.empty(n.shape + (d, d))
        s2[..., iu[0], iu[1]] = s2u
        s2[..., iu[1], iu[0]] = s2u
        nn = np.maximum(n, 2.0)[..., None]
        mu = s1 / nn
        cov = (s2 - nn[..., None] * mu[..., :, None] * mu[..., None, :]) / (nn[..., None] - 1.0)
        tr = np.trace(cov, axis1=-2, axis2=-1)
        cov[..., np.arange(d), np.arange(d)] += (ridge * tr / d)[..., None] + 1e-12
        diff = x[r0:r1] - mu
        sol = np.linalg.solve(cov, diff[..., None])[..., 0]
        dist = np.sqrt(np.maximum((diff * sol).sum(-1), 0.0))
        dist[(n < 2) | ~valid[r0:r1]] = np.nan
        out[r0:r1] = dist
    return out
