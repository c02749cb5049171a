"""Synthetic anomalies by the thesis recipe: bright squares of ``mean + std * c`` in chosen windows.

A fraction ``p_anom`` of the ``window x window`` tiles (``core.windows.window_grid``) get one square of
``s_anom x s_anom`` pixels at a random position fully inside the tile. Each planted value is
``mean_b + std_b * c`` with ``c ~ U[c_lo, c_hi)`` drawn per pixel and per band, where ``mean_b`` and
``std_b`` are band statistics over the data set (this cube by default, or a whole population).
Labels (per window, per section) follow pixel content: an overlapping edge window that contains a
neighbour's anomaly is labelled anomalous too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from napari_hsi_anomaly.core.errors import HsiAnomalyError, ShapeError
from napari_hsi_anomaly.core.windows import Region, regions_array, section_grid, window_grid

Stats = tuple[np.ndarray, np.ndarray]


@dataclass
class Planted:
    """A cube with planted anomalies and its ground truth at pixel, window and section level."""

    data: np.ndarray
    gt: np.ndarray
    windows: np.ndarray
    window_labels: np.ndarray
    sections: np.ndarray
    section_labels: np.ndarray
    anomalies: list[tuple[int, int, int]] = field(default_factory=list)
    stats: Stats | None = None

    @property
    def n_anomalies(self) -> int:
        return len(self.anomalies)


def valid_pixels(data: np.ndarray) -> np.ndarray:
    """``(rows, cols)`` bool: True where every band is finite."""
    return np.all(np.isfinite(data), axis=0)


def band_stats(arrays: Sequence[np.ndarray], valid: Sequence[np.ndarray | None] | None = None) -> Stats:
    """Per-band mean and standard deviation over the valid pixels of one or more cubes (float64)."""
    if not arrays:
        raise ShapeError("No cubes given to compute band statistics.")
    bands = arrays[0].shape[0]
    total = np.zeros(bands)
    total_sq = np.zeros(bands)
    count = 0
    for i, data in enumerate(arrays):
        _check_cube(data)
        if data.shape[0] != bands:
            raise ShapeError(f"Cube {i} has {data.shape[0]} bands; the first has {bands}.")
        mask = valid[i] if valid is not None and valid[i] is not None else valid_pixels(data)
        for b in range(bands):  # band by band: bounded memory
            v = np.asarray(data[b], dtype=np.float64)[mask]
            total[b] += v.sum()
            total_sq[b] += np.square(v).sum()
        count += int(mask.sum())
    if count == 0:
        raise ShapeError("No valid pixels to compute band statistics from.")
    means = total / count
    stds = np.sqrt(np.maximum(total_sq / count - means**2, 0.0))
    return means, stds


def plant_anomalies(
    data: np.ndarray,
    *,
    window: int = 128,
    p_anom: float = 0.05,
    s_anom: int = 20,
    c_range: tuple[float, float] = (3.0, 5.0),
    seed: int | np.random.Generator = 0,
    stats: Stats | None = None,
    grid: int = 4,
    valid: np.ndarray | None = None,
) -> Planted:
    """Plant square anomalies in a copy of ``data`` ``(bands, rows, cols)`` (thesis recipe).

    Exactly ``round(p_anom * n_windows)`` windows (at least one when ``p_anom > 0``) are chosen with
    ``numpy.random.default_rng(seed)``. ``stats=(means, stds)`` overrides the band statistics (default:
    over this cube's ``valid`` pixels, all-finite pixels when ``valid`` is None).
    """
    _check_cube(data)
    _check_params(data.shape, window, p_anom, s_anom, c_range, grid)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if stats is None:
        stats = band_stats([data], [valid])
    regions = window_grid(data.shape[1], data.shape[2], window)
    chosen = _choose(len(regions), p_anom, rng)
    return _plant(data, regions, chosen, rng, _as_stats(stats, data.shape[0]), s_anom, c_range, grid)


def plant_population(
    arrays: Sequence[np.ndarray],
    *,
    window: int = 128,
    p_anom: float = 0.05,
    s_anom: int = 20,
    c_range: tuple[float, float] = (3.0, 5.0),
    seed: int = 0,
    stats: Stats | None = None,
    grid: int = 4,
    valid: Sequence[np.ndarray | None] | None = None,
) -> list[Planted]:
    """Plant anomalies in several cubes with one set of global band statistics.

    As in the thesis the windows are chosen over the whole population: ``round(p_anom * N)`` of all
    ``N`` windows of all cubes (at least one when ``p_anom > 0``), so a cube may receive none.
    """
    if not arrays:
        raise ShapeError("No cubes given to plant anomalies in.")
    for data in arrays:
        _check_cube(data)
        _check_params(data.shape, window, p_anom, s_anom, c_range, grid)
    bands = arrays[0].shape[0]
    stats = _as_stats(stats if stats is not None else band_stats(arrays, valid), bands)
    rng = np.random.default_rng(seed)
    grids = [window_grid(a.shape[1], a.shape[2], window) for a in arrays]
    offsets = np.cumsum([0] + [len(g) for g in grids])
    chosen = _choose(int(offsets[-1]), p_anom, rng)
    out = []
    for i, (data, regions) in enumerate(zip(arrays, grids)):
        if data.shape[0] != bands:
            raise ShapeError(f"Cube {i} has {data.shape[0]} bands; the first has {bands}.")
        mine = chosen[(chosen >= offsets[i]) & (chosen < offsets[i + 1])] - offsets[i]
        out.append(_plant(data, regions, mine, rng, stats, s_anom, c_range, grid))
    return out


def _check_cube(data: np.ndarray) -> None:
    if np.ndim(data) != 3:
        raise ShapeError(
            f"Anomalies are planted in a (bands, rows, cols) cube; got shape {np.shape(data)}."
        )


def _check_params(
    shape: tuple[int, ...],
    window: int,
    p_anom: float,
    s_anom: int,
    c_range: tuple[float, float],
    grid: int,
) -> None:
    _, rows, cols = shape
    if window < 1 or s_anom < 1 or grid < 1:
        raise ShapeError(f"window ({window}), s_anom ({s_anom}) and grid ({grid}) must be positive.")
    if s_anom > window:
        raise ShapeError(f"An anomaly of {s_anom} px does not fit in a window of {window} px.")
    if rows < s_anom or cols < s_anom:
        raise ShapeError(f"A cube of {rows}x{cols} px is smaller than an anomaly of {s_anom} px.")
    if not 0.0 <= p_anom <= 1.0:
        raise HsiAnomalyError(f"p_anom must be between 0 and 1; got {p_anom}.")
    if not c_range[0] <= c_range[1]:
        raise HsiAnomalyError(f"c_range must be (low, high) with low <= high; got {c_range}.")


def _as_stats(stats: Stats, bands: int) -> Stats:
    means = np.asarray(stats[0], dtype=np.float64).reshape(-1)
    stds = np.asarray(stats[1], dtype=np.float64).reshape(-1)
    if means.shape != (bands,) or stds.shape != (bands,):
        raise ShapeError(
            f"Band statistics for {means.size}/{stds.size} bands given for a cube of {bands} bands."
        )
    return means, stds


def _choose(n_windows: int, p_anom: float, rng: np.random.Generator) -> np.ndarray:
    n = int(round(p_anom * n_windows))
    if p_anom > 0:
        n = max(n, 1)
    n = min(n, n_windows)
    return np.sort(rng.choice(n_windows, size=n, replace=False)).astype(np.int64)


def _plant(
    data: np.ndarray,
    regions: list[Region],
    chosen: np.ndarray,
    rng: np.random.Generator,
    stats: Stats,
    s_anom: int,
    c_range: tuple[float, float],
    grid: int,
) -> Planted:
    means, stds = stats
    varies = (stds > 0) & (stds > 1e-6 * np.abs(means))  # not float rounding of a constant band
    if len(chosen) and not (np.isfinite(means).all() and np.isfinite(stds).all() and varies.any()):
        raise HsiAnomalyError(
            "Cannot plant anomalies: every band is constant (standard deviation 0) or not finite, so a "
            "square of mean + std * c would equal its surroundings; use a cube with real variation.")
    dtype = data.dtype if np.dtype(data.dtype).kind == "f" else np.float32
    out = np.array(data, dtype=dtype, copy=True)
    bands, rows, cols = out.shape
    gt = np.zeros((rows, cols), dtype=np.uint8)
    anomalies = []
    for k in chosen:
        w = regions[int(k)]
        r = int(rng.integers(w.r0, w.r1 - s_anom + 1))
        c = int(rng.integers(w.c0, w.c1 - s_anom + 1))
        coef = rng.uniform(c_range[0], c_range[1], size=(bands, s_anom, s_anom))
        values = means[:, None, None] + stds[:, None, None] * coef
        out[:, r : r + s_anom, c : c + s_anom] = values.astype(dtype)
        gt[r : r + s_anom, c : c + s_anom] = 1
        anomalies.append((r, c, s_anom))
    sections = [s for w in regions for s in section_grid(w, grid)]
    return Planted(
        data=out,
        gt=gt,
        windows=regions_array(regions),
        window_labels=_labels(gt, regions),
        sections=regions_array(sections),
        section_labels=_labels(gt, sections),
        anomalies=anomalies,
        stats=(means, stds),
    )


def _labels(gt: np.ndarray, regions: list[Region]) -> np.ndarray:
    """1 where a region contains any anomalous pixel (pixel content, not the choice of windows)."""
    return np.array([gt[g.slices].any() for g in regions], dtype=np.uint8)
