"""Area opening and closing (attribute filters) of 2-D images: what is left of small objects.

``area_opening(img, area)`` lowers every bright connected structure (at any grey level, 4-connected)
of fewer than ``area`` pixels to the level of its surroundings; ``area_closing`` raises every such dark
one. Unlike an opening by a square, the structures that survive keep their shape, so a thin road or a
field edge longer than ``area`` is not taken for a small object. ``small_objects(img, area)`` is
``(img - opening) + (closing - img)``: how far each pixel stands out of a bright or dark object smaller
than ``area`` (0 elsewhere).

The filter is Meijster and Wilkinson's union-find algorithm (2002) in one numba kernel: pixels in
order of grey level, each merged with its processed neighbours' components while those are smaller
than ``area``; then every pixel takes its component's level. It equals the definition (the highest
level at which a pixel's component holds ``area`` pixels; tests/test_morphology.py checks it by brute
force, which ``skimage.morphology.area_opening`` fails on some narrow images) and runs in about 1 s on a
1830^2 image where scikit-image's max-tree takes 33 s. ``small_objects`` quantises the image to at
most 65,536 levels first and filters it in tiles with a halo of ``area`` (exact: a pixel's opening
depends on its surroundings within ``area - 1`` steps only), each sorted by counting and small enough
for the CPU cache: about 3x faster than one union-find over the whole image.

``small_objects_multi(img, areas, step)`` gives ``small_objects`` for several areas, equal bit for bit,
at about the cost of the largest alone: the union-find runs once per polarity over the whole image with
the largest area as its cap and its parent pointers kept apart from the path compression, so they form
the part of the max-tree (component tree) below that area; a pixel's opening with any smaller area is
the level of its first ancestor whose component holds that many pixels, read for all areas in one pass
from the root down. The attribute detector filters 25, 100 and 400 px this way.

The kernels are module-level functions with ``cache=True``: numba keys a cache entry on the pickled
values a function closes over, and a captured dispatcher pickles differently in every process, so a
kernel nested in a function (as ``_find`` in ``_area_filter`` once was) was compiled again by every new
process (tests/test_numba_cache.py checks that a second process compiles nothing).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

LEVELS = 65535
LADDER = (25, 100, 400)  # areas filtered (those under max_area): small and large objects both stand out
TILE = 256  # small_objects filters tiles of TILE^2 pixels (+ a halo of the area): in the CPU cache


@numba.njit(cache=True, nogil=True, inline="always")
def _find(parent, x):  # pragma: no cover - compiled
    """Root of ``x`` with path compression."""
    r = x
    while parent[r] != r:
        r = parent[r]
    while parent[x] != r:
        nx = parent[x]
        parent[x] = r
        x = nx
    return r


@numba.njit(cache=True, nogil=True, inline="always")
def _neighbour(p, k, h, w):  # pragma: no cover - compiled
    """The ``k``-th (0-3: up, down, left, right) 4-connected neighbour of flat pixel ``p`` in an
    ``h`` x ``w`` image, or -1 beyond its border."""
    r = p // w
    c = p - r * w
    if k == 0:
        return p - w if r > 0 else -1
    if k == 1:
        return p + w if r < h - 1 else -1
    if k == 2:
        return p - 1 if c > 0 else -1
    return p + 1 if c < w - 1 else -1


@numba.njit(cache=True, nogil=True)
def _area_filter(img, order, h, w, lam, out):  # pragma: no cover - compiled
    """Area opening of ``img`` (flat) given its pixels in decreasing order (closing: increasing
    order of the negated image, see ``_filter``)."""
    n = h * w
    parent = np.full(n, -1, np.int64)
    area = np.zeros(n, np.int64)
    for i in range(n):
        p = order[i]
        parent[p] = p
        area[p] = 1
        for k in range(4):
            q = _neighbour(p, k, h, w)
            if q < 0:
                continue
            if parent[q] < 0:
                continue
            r = _find(parent, q)
            if r != p:
                if img[r] == img[p] or area[r] < lam:
                    area[p] += area[r]
                    parent[r] = p
                else:
                    area[p] = lam
    for i in range(n - 1, -1, -1):
        p = order[i]
        out[p] = img[p] if parent[p] == p else out[parent[p]]
    return out


def _filter(img: np.ndarray, area: int, order: np.ndarray) -> np.ndarray:
    flat = np.ascontiguousarray(img).reshape(-1)
    out = np.empty_like(flat)
    return _area_filter(flat, order, img.shape[0], img.shape[1], int(area), out).reshape(img.shape)


def area_opening(img: np.ndarray, area: int) -> np.ndarray:
    """Bright structures of fewer than ``area`` pixels (4-connected) flattened to their surroundings."""
    img = np.asarray(img)
    order = np.argsort(-img.reshape(-1).astype(np.float64), kind="stable")
    return _filter(img, area, order)


def area_closing(img: np.ndarray, area: int) -> np.ndarray:
    """Dark structures of fewer than ``area`` pixels (4-connected) filled to their surroundings."""
    img = np.asarray(img)
    neg = -img.astype(np.float64) if img.dtype.kind == "u" else -img
    order = np.argsort(-neg.reshape(-1).astype(np.float64), kind="stable")
    return -_filter(neg, area, order)


@numba.njit(cache=True, nogil=True)
def _small_objects_tiles(q, lam, tile, halo, out):  # pragma: no cover - compiled
    """``closing - opening`` of the integer image ``q`` (levels >= 0) into ``out``, tile by tile:
    each ``tile`` x ``tile`` block is filtered with ``halo`` rows and columns of its surroundings, so
    the union-find's arrays stay in the CPU cache. Exact when ``halo >= lam - 1``: a pixel's opening is
    decided by connected sets of ``lam`` pixels through it, which lie within ``lam - 1`` steps."""
    h, w = q.shape
    for t0 in range(0, h, tile):
        for u0 in range(0, w, tile):
            r0, r1 = max(0, t0 - halo), min(h, t0 + tile + halo)
            c0, c1 = max(0, u0 - halo), min(w, u0 + tile + halo)
            th, tw = r1 - r0, c1 - c0
            n = th * tw
            sub = np.empty(n, np.int32)
            lo, hi = q[r0, c0], q[r0, c0]
            for r in range(th):
                for c in range(tw):
                    v = q[r0 + r, c0 + c]
                    sub[r * tw + c] = v
                    lo = min(lo, v)
                    hi = max(hi, v)
            start = np.zeros(hi - lo + 2, np.int64)  # counting sort: increasing level, stable
            for i in range(n):
                start[sub[i] - lo + 1] += 1
            for v in range(1, start.size):
                start[v] += start[v - 1]
            inc = np.empty(n, np.int64)
            for i in range(n):
                v = sub[i] - lo
                inc[start[v]] = i
                start[v] += 1
            opened = _area_filter(sub, inc[::-1].copy(), th, tw, lam, np.empty(n, np.int32))
            neg = (hi - sub).astype(np.int32)
            closed = _area_filter(neg, inc, th, tw, lam, np.empty(n, np.int32))
            for r in range(t0 - r0, min(t0 + tile, h) - r0):
                for c in range(u0 - c0, min(u0 + tile, w) - c0):
                    i = r * tw + c
                    out[r0 + r, c0 + c] = (hi - closed[i]) - opened[i]
    return out


@numba.njit(cache=True, nogil=True)
def _max_tree(img, order, h, w, lam, parent, zpar, area):  # pragma: no cover - compiled
    """The part of the max-tree of ``img`` (flat, pixels in decreasing ``order``) below ``lam`` pixels:
    ``_area_filter``'s merges (a component joins the pixel that reaches it while it is smaller than
    ``lam`` or at the same level), with the union-find's path compression kept in ``zpar`` so that
    ``parent`` stays the tree. ``area[p]`` is the size of the component ``p`` heads when it was merged
    (at least ``lam`` where it reached a larger one): every opening with an area up to ``lam`` reads
    off it, see ``_openings``."""
    n = h * w
    zpar[:] = -1
    for i in range(n):
        p = order[i]
        parent[p] = p
        zpar[p] = p
        area[p] = 1
        for k in range(4):
            q = _neighbour(p, k, h, w)
            if q < 0:
                continue
            if zpar[q] < 0:
                continue
            r = _find(zpar, q)
            if r != p:
                if img[r] == img[p] or area[r] < lam:
                    area[p] += area[r]
                    parent[r] = p
                    zpar[r] = p
                else:
                    area[p] = lam


@numba.njit(cache=True, nogil=True)
def _openings(img, order, parent, area, lams, sign, val, res):  # pragma: no cover - compiled
    """Add ``sign`` x the opening of every pixel with each area in ``lams`` to ``res[p, k]``, in one
    pass from the root down: a pixel's opening is its own level where its component holds ``lam``
    pixels (or it is the root), else its parent's opening (already known). ``val`` (n, m) holds the
    openings side by side per pixel, so the parent's are one read."""
    n = order.size
    m = lams.size
    for i in range(n - 1, -1, -1):
        p = order[i]
        pp = parent[p]
        a = area[p]
        lv = img[p]
        for k in range(m):
            v = lv if a >= lams[k] or pp == p else val[pp, k]
            val[p, k] = v
            res[p, k] += sign * v


@numba.njit(cache=True, nogil=True)
def _sorted_levels(q):  # pragma: no cover - compiled
    """The integer image ``q`` flat (int32), its pixels in increasing level (a stable counting sort) and
    its highest level."""
    h, w = q.shape
    n = h * w
    flat = np.empty(n, np.int32)
    lo, hi = q[0, 0], q[0, 0]
    for r in range(h):
        for c in range(w):
            v = q[r, c]
            flat[r * w + c] = v
            lo = min(lo, v)
            hi = max(hi, v)
    start = np.zeros(hi - lo + 2, np.int64)
    for i in range(n):
        start[flat[i] - lo + 1] += 1
    for v in range(1, start.size):
        start[v] += start[v - 1]
    inc = np.empty(n, np.int32)
    for i in range(n):
        v = flat[i] - lo
        inc[start[v]] = i
        start[v] += 1
    return flat, inc, hi


@numba.njit(cache=True, nogil=True)
def _polarity(flat, order, h, w, lams, res):  # pragma: no cover - compiled
    """``res[:, k] -=`` the opening of ``flat`` (pixels in decreasing ``order``) with each area in
    ``lams``: one tree (``_max_tree`` up to the largest area) and one pass over it (``_openings``)."""
    n = flat.size
    parent = np.empty(n, np.int32)
    zpar = np.empty(n, np.int32)
    area = np.empty(n, np.int32)
    val = np.empty((n, lams.size), np.int32)
    _max_tree(flat, order, h, w, lams.max(), parent, zpar, area)
    _openings(flat, order, parent, area, lams, -1, val, res)


@numba.njit(cache=True, nogil=True)
def _inverted(flat, hi):  # pragma: no cover - compiled
    out = np.empty_like(flat)
    for i in range(flat.size):
        out[i] = hi - flat[i]
    return out


def _small_objects_multi(q: np.ndarray, lams: np.ndarray, threads: int = 1) -> np.ndarray:
    """``closing - opening`` of the integer image ``q`` (levels >= 0) for each area in ``lams``, as
    ``res[:, k]`` (flat pixel index; the areas side by side): one counting sort, one tree per polarity
    and one pass over it for all areas. The closing is ``hi`` minus the opening of ``hi - q`` (pixels in
    the reverse order); with ``threads`` >= 2 the two polarities run at once (integer sums: the same
    result)."""
    h, w = q.shape
    flat, inc, hi = _sorted_levels(q)
    res = np.zeros((h * w, lams.size), np.int32)
    neg = _inverted(flat, hi)
    if threads >= 2:
        other = np.zeros_like(res)
        with ThreadPoolExecutor(2) as pool:  # the kernels release the GIL
            jobs = [pool.submit(_polarity, flat, inc[::-1].copy(), h, w, lams, res),
                    pool.submit(_polarity, neg, inc, h, w, lams, other)]
            for job in jobs:
                job.result()
        res += other
    else:
        _polarity(flat, inc[::-1].copy(), h, w, lams, res)  # opening
        _polarity(neg, inc, h, w, lams, res)  # closing
    res += hi
    return res


def _quantise(img: np.ndarray, step: float | None) -> tuple[np.ndarray, float] | None:
    """``img`` (float64) in integer multiples of ``step`` from 0 and the step used (None: a flat image)."""
    lo, hi = float(img.min()), float(img.max())
    if not hi > lo:
        return None
    step = float(step) if step is not None and step > 0 else (hi - lo) / LEVELS
    span = (hi - lo) / step
    if span > LEVELS:
        step *= 2.0 ** np.ceil(np.log2(span / LEVELS))
    q = np.rint(img / step)
    q -= q.min()
    return q.astype(np.int32), step


def small_objects_multi(img: np.ndarray, areas: Sequence[int], step: float | None = None, threads: int = 1
                        ) -> list[np.ndarray]:
    """``small_objects(img, a, step)`` for each ``a`` in ``areas``, equal to it bit for bit, at about
    the cost of one: the component trees (max-tree of the image and of its inverse) are built once over
    the whole image and every area is read off them in one linear pass; ``threads`` >= 2 builds the two
    at once (one image alone: the GLOSH peaks)."""
    img = np.asarray(img, dtype=np.float64)
    areas = [int(a) for a in areas]
    quant = _quantise(img, step)
    if quant is None:
        return [np.zeros(img.shape, np.float32) for _ in areas]
    q, step = quant
    lams = np.array([max(a, 1) for a in areas], np.int64)
    res = _small_objects_multi(q, lams, threads)
    return [res[:, k].reshape(q.shape).astype(np.float32) * np.float32(step) if a > 1
            else np.zeros(img.shape, np.float32) for k, a in enumerate(areas)]


def small_objects(img: np.ndarray, area: int, step: float | None = None) -> np.ndarray:
    """``(img - opening) + (closing - img)`` with ``area``, float32 in ``img``'s units.

    ``img`` (2-D, finite) is quantised to multiples of ``step`` (default: its own range in ``LEVELS``
    steps; doubled until the range fits ``LEVELS``), so one counting sort per tile serves both filters
    (the closing is the opening of the inverted levels, whose order is the reverse). A fixed ``step``
    gives the same result on any crop of the image up to the filter's reach (row blocks,
    ``core.scoring.blocks``)."""
    img = np.asarray(img, dtype=np.float64)
    quant = _quantise(img, step)
    if quant is None or int(area) <= 1:
        return np.zeros(img.shape, np.float32)
    q, step = quant
    tile = max(TILE, 6 * int(area))  # the halo adds at most (8/6)^2 - 1 of the work
    out = _small_objects_tiles(q, int(area), tile, int(area), np.empty(q.shape, np.int32))
    return out.astype(np.float32) * np.float32(step)


def glosh_peaks(scores: np.ndarray, level: float, step: float | None, sizes: Sequence[int] = LADDER
                ) -> np.ndarray:
    """``(rows, cols)`` float32: how far each pixel of a GLOSH score image stands above its surroundings
    as a bright object of up to 25, 100 and 400 px, weighted ``sqrt(size / largest)`` (1/4, 1/2, 1) and
    summed. The image is the square root of GLOSH's odds ``g / (1 - g)`` (GLOSH saturates near 1; the
    odds keep the top apart), held at least at ``level`` (the reference's median: a dip below the
    typical outlyingness is no anomaly); ``step``: the quantisation step (the reference's, so every
    block of a large scene is filtered on the same grid). A large target lifts GLOSH's map over its
    whole area, so, unlike the attribute filters on the spectra, it stands out at its own size; no-data
    pixels (NaN) take ``level`` before filtering and are NaN after."""
    img = peak_image(scores)
    bad = ~np.isfinite(img)
    img[bad] = level
    np.maximum(img, level, out=img)
    sizes = [int(s) for s in sizes]
    out = np.zeros(img.shape, np.float32)
    maps = small_objects_multi(img, [s + 1 for s in sizes], step, threads=filter_threads())
    for s, m in zip(sizes, maps):
        out += np.float32(np.sqrt(s / sizes[-1])) * m
    out[bad] = np.nan
    return out


def peak_image(scores: np.ndarray) -> np.ndarray:
    """The image ``glosh_peaks`` filters, before the floor: the square root of GLOSH's odds."""
    g = np.minimum(np.asarray(scores, dtype=np.float64), 1.0 - 1e-6)
    return np.sqrt(np.maximum(g, 0.0) / (1.0 - g))


def filter_threads() -> int:
    """Images filtered at once: numba's thread count (a batch worker sets it to its share) and at most
    ``OMP_NUM_THREADS`` where set (dask's single-threaded workers), as the KD-tree query."""
    from napari_hsi_anomaly.core.scoring.glosh import query_workers

    n = int(numba.get_num_threads())
    q = query_workers()
    return max(1, min(n, q) if q > 0 else min(n, os.cpu_count() or 1))
