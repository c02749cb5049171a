"""RX anomaly detectors (Reed-Xiaoli): global and dual-window local Mahalanobis distance.

Both return the Mahalanobis *distance* (the square root of the RX statistic; same ranking) as a
``(rows, cols)`` float32 map. Pixels with a non-finite or no-data value in any band are left out of
the statistics and get NaN. Work is done in row blocks, so memory stays bounded on large cubes
(a memory-mapped cube is read block by block, never whole).

Local RX is one fused numba kernel: running window sums of the centred moments (count, ``x``,
``x x^T``) updated row by row and column by column (a few passes over the cube, cost independent of
the window size), then a small Cholesky solve per pixel, in float64, threads over row chunks.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import numpy as np

from napari_hsi_anomaly.core.cube import Cube, as_cube
from napari_hsi_anomaly.core.errors import ShapeError
from napari_hsi_anomaly.core.progress import Progress, run

BLOCK_PIXELS = 262144  # pixels per block (x bands x 4 bytes of float32)
LOCAL_BLOCK_PIXELS = 4_000_000  # output pixels per local-RX block (plus the window halo)

try:
    import numba
except ImportError:  # pragma: no cover - numba is a dependency
    numba = None


def _row_step(cols: int, pixels: int = BLOCK_PIXELS) -> int:
    return max(1, pixels // max(1, cols))


def _row_blocks(cube: Cube) -> Iterator[tuple[slice, np.ndarray, np.ndarray | None]]:
    """``(rows slice, (pixels, bands) float32, valid (pixels,) or None if all valid)`` blocks."""
    step = _row_step(cube.cols)
    for r0 in range(0, cube.rows, step):
        rs = slice(r0, min(cube.rows, r0 + step))
        x = cube.as_float32(rs).reshape(cube.bands, -1).T  # (pixels, bands) view
        ok = np.isfinite(x).all(axis=1)
        yield rs, x, (None if ok.all() else ok)


def background_stats(cube: Cube | np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Scene mean ``(bands,)``, sample covariance (ddof=1) ``(bands, bands)`` and the valid pixel count.

    One pass in row blocks; sums in float64 around a provisional mean (the first block's), so the
    cross-product does not lose precision to a large mean.
    """
    cube = as_cube(cube, "RX")
    b = cube.bands
    total = np.zeros(b)
    cross = np.zeros((b, b))
    shift: np.ndarray | None = None
    n = 0
    for _, x, ok in _row_blocks(cube):
        xv = x if ok is None else x[ok]
        if xv.shape[0] == 0:
            continue
        xv = xv.astype(np.float64)
        if shift is None:
            shift = xv.mean(axis=0)
        xv -= shift
        total += xv.sum(axis=0)
        cross += xv.T @ xv
        n += xv.shape[0]
    if n < 2 or shift is None:
        raise ShapeError("RX needs at least two valid pixels (pixels with finite values in every band).")
    d = total / n
    return shift + d, (cross - n * np.outer(d, d)) / (n - 1), n


def rx_global(cube_or_array: Cube | np.ndarray) -> np.ndarray:
    """Global RX: Mahalanobis distance of every pixel to the scene mean (pseudo-inverse covariance).

    ``cube_or_array``: a ``Cube`` or a ``(bands, rows, cols)`` array. Invalid pixels give NaN.
    """
    cube = as_cube(cube_or_array, "RX")
    mean, cov, _ = background_stats(cube)
    prec = np.linalg.pinv(cov, hermitian=True)
    out = np.full((cube.rows, cube.cols), np.nan, dtype=np.float32)
    for rs, x, _ in _row_blocks(cube):
        xc = x.astype(np.float64) - mean
        d2 = ((xc @ prec) * xc).sum(axis=1)
        out[rs] = np.sqrt(np.maximum(d2, 0.0)).reshape(-1, cube.cols)  # NaN rows stay NaN
    return out


def pca_basis(cube: Cube | np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """Scene mean ``(bands,)`` and the ``(bands, k)`` leading principal axes (scene covariance)."""
    cube = as_cube(cube, "RX")
    mean, cov, _ = background_stats(cube)
    k = int(min(n_components, cube.bands))
    _, vecs = np.linalg.eigh(cov)
    return mean, vecs[:, ::-1][:, :k]


def pca_reduce(cube_or_array: Cube | np.ndarray, n_components: int) -> np.ndarray:
    """Project a cube on its ``n_components`` leading principal components: ``(k, rows, cols)`` float32.

    Invalid pixels stay NaN. The covariance is the scene's (ddof=1), as in ``rx_global``. Row blocks,
    float64 products stored as float32.
    """
    cube = as_cube(cube_or_array, "RX")
    mean, basis = pca_basis(cube, n_components)
    out = np.empty((basis.shape[1], cube.rows, cube.cols), dtype=np.float32)
    for rs, x, _ in _row_blocks(cube):
        out[:, rs] = ((x.astype(np.float64) - mean) @ basis).T.reshape(basis.shape[1], -1, cube.cols)
    return out


def _njit(**kw):
    if numba is None:  # pragma: no cover
        return lambda fn: fn
    return numba.njit(cache=True, error_model="numpy", **kw)


@_njit()
def _prefix(col, pre):
    """``pre[ch, c + 1] = sum(col[ch, :c + 1])``."""
    for ch in range(col.shape[0]):
        acc = 0.0
        for c in range(col.shape[1]):
            acc += col[ch, c]
            pre[ch, c + 1] = acc
    return pre


@_njit()
def _add_row(col, x, mean, valid, rr, sign, xr):
    """Add (``sign`` 1) or remove (-1) block row ``rr``'s centred moments to the column sums."""
    d, cols = x.shape[0], x.shape[2]
    for j in range(d):
        for c in range(cols):
            xr[j, c] = (np.float64(x[j, rr, c]) - mean[j]) if valid[rr, c] else 0.0
    for c in range(cols):
        if valid[rr, c]:
            col[0, c] += sign
    for j in range(d):
        for c in range(cols):
            col[1 + j, c] += sign * xr[j, c]
    idx = 1 + d
    for j in range(d):
        for k in range(j, d):
            for c in range(cols):
                col[idx, c] += sign * xr[j, c] * xr[k, c]
            idx += 1


@_njit(parallel=True)
def _rx_local_block(x, mean, valid, out_r0, out_r1, ho, hi, ridge, n_chunks, out):
    """Local RX of block rows ``[out_r0, out_r1)`` of ``x (d, R, C)`` into ``out (out_r1 - out_r0, C)``.

    Windows are clipped at the block's edges (the caller gives the image rows the windows can reach).
    """
    d, n_rows, cols = x.shape
    nch = 1 + d + d * (d + 1) // 2
    span = out_r1 - out_r0
    for chunk in numba.prange(n_chunks):
        c_r0 = out_r0 + (span * chunk) // n_chunks
        c_r1 = out_r0 + (span * (chunk + 1)) // n_chunks
        if c_r1 <= c_r0:
            continue
        col_o = np.zeros((nch, cols))
        col_i = np.zeros((nch, cols))
        pre_o = np.zeros((nch, cols + 1))
        pre_i = np.zeros((nch, cols + 1))
        xr = np.empty((d, cols))
        bg = np.empty(nch)
        cov = np.empty((d, d))
        diff = np.empty(d)
        for rr in range(max(0, c_r0 - ho), min(n_rows, c_r0 + ho + 1)):
            _add_row(col_o, x, mean, valid, rr, 1.0, xr)
        for rr in range(max(0, c_r0 - hi), min(n_rows, c_r0 + hi + 1)):
            _add_row(col_i, x, mean, valid, rr, 1.0, xr)
        for r in range(c_r0, c_r1):
            if r > c_r0:
                if r + ho < n_rows:
                    _add_row(col_o, x, mean, valid, r + ho, 1.0, xr)
                if r - ho - 1 >= 0:
                    _add_row(col_o, x, mean, valid, r - ho - 1, -1.0, xr)
                if r + hi < n_rows:
                    _add_row(col_i, x, mean, valid, r + hi, 1.0, xr)
                if r - hi - 1 >= 0:
                    _add_row(col_i, x, mean, valid, r - hi - 1, -1.0, xr)
            _prefix(col_o, pre_o)
            _prefix(col_i, pre_i)
            for c in range(cols):
                if not valid[r, c]:
                    out[r - out_r0, c] = np.nan
                    continue
                o0, o1 = max(0, c - ho), min(cols, c + ho + 1)
                i0, i1 = max(0, c - hi), min(cols, c + hi + 1)
                for ch in range(nch):
                    bg[ch] = (pre_o[ch, o1] - pre_o[ch, o0]) - (pre_i[ch, i1] - pre_i[ch, i0])
                n = bg[0]
                if n < 1.5:
                    out[r - out_r0, c] = np.nan
                    continue
                idx = 1 + d
                for j in range(d):
                    for k in range(j, d):
                        v = (bg[idx] - n * (bg[1 + j] / n) * (bg[1 + k] / n)) / (n - 1.0)
                        cov[j, k] = v
                        cov[k, j] = v
                        idx += 1
                tr = 0.0
                for j in range(d):
                    tr += cov[j, j]
                for j in range(d):
                    cov[j, j] += ridge * tr / d + 1e-12
                    diff[j] = (np.float64(x[j, r, c]) - mean[j]) - bg[1 + j] / n
                # Cholesky in place (lower triangle), then forward solve: d2 = |L^-1 diff|^2
                ok = True
                for j in range(d):
                    s = cov[j, j]
                    for k in range(j):
                        s -= cov[j, k] * cov[j, k]
                    if not s > 0.0:
                        ok = False
                        break
                    cov[j, j] = np.sqrt(s)
                    for i in range(j + 1, d):
                        s2 = cov[i, j]
                        for k in range(j):
                            s2 -= cov[i, k] * cov[j, k]
                        cov[i, j] = s2 / cov[j, j]
                if not ok:
                    out[r - out_r0, c] = np.nan
                    continue
                d2 = 0.0
                for j in range(d):
                    s = diff[j]
                    for k in range(j):
                        s -= cov[j, k] * diff[k]
                    diff[j] = s / cov[j, j]
                    d2 += diff[j] * diff[j]
                out[r - out_r0, c] = np.sqrt(d2)
    return out


def _check_windows(inner: int, outer: int) -> None:
    if not (0 < inner < outer) or inner % 2 == 0 or outer % 2 == 0:
        raise ValueError(f"rx_local needs odd window sizes with 0 < inner < outer; got {inner}, {outer}.")


def iter_rx_local(
    cube_or_array: Cube | np.ndarray,
    inner: int = 7,
    outer: int = 25,
    *,
    n_components: int | None = 20,
    ridge: float = 1e-6,
    strip_rows: int | None = None,
) -> Generator[Progress, None, np.ndarray]:
    """``rx_local`` as a generator: yields ``Progress`` per row block, returns the map."""
    _check_windows(inner, outer)
    cube = as_cube(cube_or_array, "RX")
    ho, hi = outer // 2, inner // 2
    if n_components is not None and n_components < cube.bands:
        mean, basis = pca_basis(cube, n_components)
    else:
        mean, basis = background_stats(cube)[0], None
    d = cube.bands if basis is None else basis.shape[1]
    rows, cols = cube.rows, cube.cols
    out = np.full((rows, cols), np.nan, dtype=np.float32)
    step = strip_rows or max(1, LOCAL_BLOCK_PIXELS // max(1, cols))
    n_threads = numba.get_num_threads() if numba is not None else 1
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        a0, a1 = max(0, r0 - ho), min(rows, r1 + ho)  # rows the block's windows can reach
        x = cube.as_float32(slice(a0, a1))
        if basis is not None:  # project on the principal axes (centred), NaN stays NaN
            x = ((x.reshape(cube.bands, -1).T.astype(np.float64) - mean) @ basis).T.reshape(d, a1 - a0, cols)
            centre = np.zeros(d)
        else:
            centre = np.asarray(mean, dtype=np.float64)
        valid = np.isfinite(x).all(axis=0)
        chunks = max(1, min(n_threads * 2, (r1 - r0) // 8 or 1))
        block = np.empty((r1 - r0, cols), dtype=np.float64)
        _rx_local_block(x, centre, valid, r0 - a0, r1 - a0, ho, hi, float(ridge), chunks, block)
        out[r0:r1] = block
        yield Progress(r1, rows, f"local RX: {r1} of {rows} rows")
    return out


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

    The cube is first projected on ``n_components`` principal components (None: all bands); the
    local covariance (ddof=1) gets ``ridge * trace / dims`` (+1e-12) on its diagonal. Invalid pixels
    (and pixels with fewer than two valid background pixels): NaN. One fused kernel (module doc) in
    row blocks of ``strip_rows`` (default about 4 M pixels) plus the window halo.
    """
    return run(iter_rx_local(cube_or_array, inner, outer, n_components=n_components, ridge=ridge,
                             strip_rows=strip_rows))
