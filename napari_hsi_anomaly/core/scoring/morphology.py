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
force, which ``skimage.morphology.area_opening`` fails on some narrow images). ``small_objects``
quantises the image to at most 65,536 levels first and filters it in tiles with a halo of ``area``
(exact: a pixel's opening depends on its surroundings within ``area - 1`` steps only), each sorted by
counting and small enough for the CPU cache.

``small_objects_multi(img, areas, step)`` gives ``small_objects`` for several areas, equal bit for bit,
at about the cost of the largest alone: one union-find per polarity over the whole image with the
largest area as its cap builds the part of the max-tree (component tree) below that area; a pixel's
opening with any smaller area is the level of its first ancestor whose component holds that many pixels,
read for all areas in one pass from the root down. The attribute detector filters 25, 100 and 400 px
this way. Its pixels are visited in grey-level order, i.e. at random in the image, so the work is in
memory rather than arithmetic, and the tree is built in rank space: the pixels renumbered by their place
in the sorted order (one stable counting sort serves both polarities: the closing visits the places in
reverse), with a table of each place's 4 neighbours' places. A pixel's own records (level, neighbours,
parent, area) are then read and written in sequence and a neighbour is processed iff its place comes
before; only the neighbours' union-find records are random, and they are asked for (a prefetch hint) a
few pixels ahead. The union-find is by rank, its roots holding their component's current tree node and
size, so a large component's root stays where it is (and in the cache) instead of moving to every new
pixel; ties (a component at the current level joins whatever its size) are a comparison of places, as
the places of one level are adjacent. The openings go back to the pixels in one gather, as float32
times the step; ``weighted_small_objects`` sums the areas' maps with weights there, per pixel, in the
order and float32 arithmetic of adding the maps one by one.

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
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

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


@intrinsic
def _prefetch(typingctx, arr, idx):
    """Ask the CPU to bring row ``idx`` of the C-contiguous array ``arr`` into its cache (a hint: no
    fault on any index, no effect on the result), so the random reads of the union-find overlap."""
    if not isinstance(arr, types.Array) or not isinstance(idx, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        aryty, idxty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        base = builder.ptrtoint(ary.data, ir.IntType(64))
        offset = builder.mul(context.cast(builder, args[1], idxty, types.int64),
                             builder.extract_value(ary.strides, 0))
        ptr = builder.inttoptr(builder.add(base, offset), ir.PointerType())
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [ir.PointerType(), i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])  # read
        return context.get_dummy_value()

    return types.void(arr, idx), codegen


@numba.njit(cache=True, nogil=True)
def _rank_space(q):  # pragma: no cover - compiled
    """The integer image ``q`` in rank space: ``rank[p]``, flat pixel ``p``'s place in increasing level
    (a stable counting sort: ties in raster order), ``levs[j]`` the level at place ``j`` and ``nb[j]``
    the places of its 4 neighbours (up, down, left, right; -1 beyond the border)."""
    h, w = q.shape
    n = h * w
    lo, hi = q[0, 0], q[0, 0]
    for r in range(h):
        for c in range(w):
            lo = min(lo, q[r, c])
            hi = max(hi, q[r, c])
    start = np.zeros(hi - lo + 2, np.int64)
    for r in range(h):
        for c in range(w):
            start[q[r, c] - lo + 1] += 1
    for v in range(1, start.size):
        start[v] += start[v - 1]
    levs = np.empty(n, np.int32)
    for v in range(start.size - 1):
        for j in range(start[v], start[v + 1]):
            levs[j] = v + lo
    rank = np.empty(n, np.int32)
    for r in range(h):
        for c in range(w):
            v = q[r, c] - lo
            rank[r * w + c] = start[v]
            start[v] += 1
    nb = np.empty((n, 4), np.int32)
    for r in range(h):
        for c in range(w):
            p = r * w + c
            j = rank[p]
            nb[j, 0] = rank[p - w] if r > 0 else -1
            nb[j, 1] = rank[p + w] if r < h - 1 else -1
            nb[j, 2] = rank[p - 1] if c > 0 else -1
            nb[j, 3] = rank[p + 1] if c < w - 1 else -1
    return rank, levs, nb


@numba.njit(cache=True, nogil=True, inline="always")
def _set_root(uf, x):  # pragma: no cover - compiled
    """Root of ``x``'s set in the union-find ``uf[:, 0]``, with path compression."""
    r = x
    while uf[r, 0] != r:
        r = uf[r, 0]
    while uf[x, 0] != r:
        nx = uf[x, 0]
        uf[x, 0] = r
        x = nx
    return r


PREFETCH = 8  # the union-find asks for the neighbours' records this many pixels ahead


@numba.njit(cache=True, nogil=True)
def _component_tree(levs, nb, lams, d, uf, parent, area):  # pragma: no cover - compiled
    """Each pixel's opening (in rank space, ``levs``/``nb`` from ``_rank_space``) with every area in
    ``lams`` into ``uf[j, k]``: with ``d = -1`` of the image (places in decreasing order), with ``d = 1``
    of its inverse (increasing: the closing, in the image's levels).

    First the max-tree below ``max(lams)`` pixels: each place ``i`` in turn becomes a node whose
    children are the components of its processed neighbours that are smaller than that or at its
    own level (``parent``; ``area[i]`` the size of the component it heads, at least ``max(lams)`` where
    it met a larger one). The components are a union-find (``uf[:, 0]``, union by rank in ``uf[:, 3]``)
    whose roots keep their current node (``uf[:, 1]``) and size (``uf[:, 2]``): a large component's root
    stays put and in the cache. A place's level equals a component's iff its node is in the current
    level's run of places (ties are adjacent). Then from the root down, the openings: a place's own
    level where its component holds ``lam`` pixels (or it is the root), else its parent's (written over
    ``uf``)."""
    n = levs.size
    m = lams.size
    lam = lams.max()
    prev = 0
    run = 0  # the current level's first place
    for t in range(n):
        i = t if d > 0 else n - 1 - t
        if t + PREFETCH < n:
            f = i + d * PREFETCH
            for k in range(4):
                if nb[f, k] >= 0:
                    _prefetch(uf, nb[f, k])
        lv = levs[i]
        if t == 0 or lv != prev:
            run = i
            prev = lv
        parent[i] = i
        ri = i
        uf[i, 0] = i
        uf[i, 3] = 0
        a = 1
        for k in range(4):
            q = nb[i, k]
            if q < 0 or d * (q - i) >= 0:  # beyond the border or not processed yet
                continue
            r = _set_root(uf, q)
            if r != ri:
                node = uf[r, 1]
                ra = uf[r, 2]
                if d * (node - run) >= 0 or ra < lam:
                    a += ra
                    parent[node] = i
                    if uf[r, 3] < uf[ri, 3]:
                        uf[r, 0] = ri
                    elif uf[r, 3] > uf[ri, 3]:
                        uf[ri, 0] = r
                        ri = r
                    else:
                        uf[r, 0] = ri
                        uf[ri, 3] += 1
                else:
                    a = lam
        uf[ri, 1] = i
        uf[ri, 2] = a
        area[i] = a
    for t in range(n - 1, -1, -1):
        i = t if d > 0 else n - 1 - t
        if t >= PREFETCH:
            _prefetch(uf, parent[i - d * PREFETCH])
        pp = parent[i]
        a = area[i]
        lv = levs[i]
        for k in range(m):
            uf[i, k] = lv if a >= lams[k] or pp == i else uf[pp, k]


@numba.njit(cache=True, nogil=True)
def _polarity(levs, nb, lams, d, uf):  # pragma: no cover - compiled
    """``_component_tree`` with its own tree arrays."""
    n = levs.size
    _component_tree(levs, nb, lams, d, uf, np.empty(n, np.int32), np.empty(n, np.int32))


@numba.njit(cache=True, nogil=True)
def _scaled_difference(rank, closing, opening, step, weights, out):  # pragma: no cover - compiled
    """``out[k, p] = (closing - opening)`` of flat pixel ``p`` with the ``k``-th area as float32 times
    ``step`` (as numpy's ``astype(np.float32) * np.float32(step)``); with ``out`` 1-D instead, their sum
    weighted by ``weights`` (float32, added in order from 0: as ``out += np.float32(w) * m`` per area)."""
    m = weights.size
    s = np.float32(step)
    n = rank.size
    for p in range(n):
        if p + PREFETCH < n:
            _prefetch(closing, rank[p + PREFETCH])
            _prefetch(opening, rank[p + PREFETCH])
        j = rank[p]
        if out.ndim == 2:
            for k in range(m):
                out[k, p] = np.float32(closing[j, k] - opening[j, k]) * s
        else:
            acc = np.float32(0.0)
            for k in range(m):
                acc += weights[k] * (np.float32(closing[j, k] - opening[j, k]) * s)
            out[p] = acc
    return out


def _small_objects_multi(q: np.ndarray, lams: np.ndarray, step: float, threads: int = 1,
                         weights: np.ndarray | None = None) -> np.ndarray:
    """``(closing - opening) * step`` (float32) of the integer image ``q`` for each area in ``lams``, as
    ``out[k]`` (flat pixel index), or with ``weights`` their weighted sum ``out`` (flat): one counting
    sort into rank space, one tree per polarity and one pass over it for all areas. With ``threads``
    >= 2 the two polarities run at once."""
    rank, levs, nb = _rank_space(q)
    n, width = levs.size, max(4, lams.size)
    opening, closing = np.empty((n, width), np.int32), np.empty((n, width), np.int32)
    if threads >= 2:
        with ThreadPoolExecutor(2) as pool:  # the kernels release the GIL
            jobs = [pool.submit(_polarity, levs, nb, lams, -1, opening),
                    pool.submit(_polarity, levs, nb, lams, 1, closing)]
            for job in jobs:
                job.result()
    else:
        _polarity(levs, nb, lams, -1, opening)
        _polarity(levs, nb, lams, 1, closing)
    if weights is None:
        out = np.empty((lams.size, n), np.float32)
        weights = np.ones(lams.size, np.float32)
    else:
        out = np.empty(n, np.float32)
    return _scaled_difference(rank, closing, opening, float(step), weights, out)


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
    res = _small_objects_multi(q, lams, step, threads)
    return [res[k].reshape(q.shape) if a > 1 else np.zeros(img.shape, np.float32)
            for k, a in enumerate(areas)]


def weighted_small_objects(img: np.ndarray, areas: Sequence[int], weights: Sequence[float],
                           step: float | None = None, threads: int = 1) -> np.ndarray:
    """``sum(np.float32(w) * m for w, m in zip(weights, small_objects_multi(img, areas, step)))``
    (float32, summed in order from zeros), equal to it bit for bit, without the maps of each area: the
    sum is made per pixel as the openings go back to the image (the attribute detector's ladder, the
    GLOSH peaks)."""
    img = np.asarray(img, dtype=np.float64)
    areas = [int(a) for a in areas]
    if len(weights) != len(areas):
        raise ValueError("one weight per area")
    quant = _quantise(img, step)
    if quant is None:
        return np.zeros(img.shape, np.float32)
    q, step = quant
    lams = np.array([max(a, 1) for a in areas], np.int64)  # area 1: closing - opening is 0, adds +0
    wts = np.array([np.float32(w) for w in weights], np.float32)
    return _small_objects_multi(q, lams, step, threads, wts).reshape(q.shape)


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
    out = weighted_small_objects(img, [s + 1 for s in sizes], [np.sqrt(s / sizes[-1]) for s in sizes], step,
                                 threads=filter_threads())
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
