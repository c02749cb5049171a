"""Window and section grids (thesis: 128x128 windows, overlap at the right and bottom edges)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Region:
    """A rectangular image region ``[r0, r1) x [c0, c1)`` in cube pixel coordinates."""

    r0: int
    r1: int
    c0: int
    c1: int

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.r0, self.r1), slice(self.c0, self.c1)


def window_starts(n: int, size: int) -> list[int]:
    """Start offsets of windows of ``size`` along an axis of length ``n``.

    Windows tile the axis from 0; where ``n`` is not a multiple of ``size`` the last window is moved
    back to end at ``n`` (overlapping its neighbour), as in the thesis (1830 = 14 * 128 + 38).
    If ``n < size`` there is one window at 0 that the caller must pad (see ``pad_to``).
    """
    if size <= 0:
        raise ValueError("window size must be positive")
    if n <= size:
        return [0]
    starts = list(range(0, n - size + 1, size))
    if starts[-1] + size < n:
        starts.append(n - size)
    return starts


def window_grid(rows: int, cols: int, size: int) -> list[Region]:
    """Row-major list of ``size x size`` windows covering a ``rows x cols`` image (clipped if smaller)."""
    return [
        Region(r, min(r + size, rows), c, min(c + size, cols))
        for r in window_starts(rows, size)
        for c in window_starts(cols, size)
    ]


def section_grid(window: Region, grid: int = 4) -> list[Region]:
    """Split a window into ``grid x grid`` sections (row-major), as for features f2/f4."""
    rs = np.linspace(window.r0, window.r1, grid + 1).round().astype(int)
    cs = np.linspace(window.c0, window.c1, grid + 1).round().astype(int)
    return [
        Region(int(rs[i]), int(rs[i + 1]), int(cs[j]), int(cs[j + 1]))
        for i in range(grid)
        for j in range(grid)
    ]


def regions_array(regions: list[Region]) -> np.ndarray:
    """``(N, 4)`` int64 array of ``r0, r1, c0, c1``."""
    return np.array([[g.r0, g.r1, g.c0, g.c1] for g in regions], dtype=np.int64).reshape(-1, 4)
