"""Exact ``k`` nearest fitted rows for many features (the CAE's 12): a float32 screen over blocks of the
``kdtree.KDTree``, then float64 distances of the few rows the screen cannot rule out.

Above ``grouped.MAX_DIMS`` features neighbouring query rows share too few candidates for the grouped
search, and ``kdtree._query`` spends its time on float64 distances to the rows of every leaf it opens.
Here the tree's largest subtrees of at most ``BLOCK`` rows are blocks: per query row the block nearest
by box goes first, then the ``NEIGHBOURS`` fitted neighbours of its nearest row (a bound close to the
true one), then every block whose box is within the bound. A block's float32
squared distances come from one vectorised pass over a float32 copy of the fitted rows (one contiguous
row per feature). ``DELTA`` bounds the float32 distance's error (relative to the rows' norms), so the
float32 ``k``-th distance plus it bounds the true one: blocks and rows beyond the bound are left out,
and the rows within it (a dozen or two) get ``kdtree._sqdist``'s float64 distance (the same bits).
Among equal distances the order is ``_query``'s walk (``grouped._first``), so the neighbours,
distances and tie order are ``_query``'s.
"""

from __future__ import annotations

import numba
import numpy as np

from napari_hsi_anomaly.core.scoring.glosh.grouped import _emit, _first
from napari_hsi_anomaly.core.scoring.glosh.kdtree import _pool, _sqdist

HEAD = 12  # features summed for every screened row (the widest); the rest where that sum is within the bound
BLOCK = 256  # rows of a node screened at once (a subtree of the KD-tree: its rows are contiguous)
MIN_DIMS = 9  # from this many features (the grouped search serves fewer)
NEIGHBOURS = 16  # fitted neighbours kept per fitted row: the first bound of a query row near it
BUFFER = 4096  # screened candidates held per query row before they are thinned to the current bound
# |float32 distance - float64 distance| <= DELTA * (|q| + max |p| + distance) (u = 2^-24): the casts
# and the subtraction move each coordinate difference by <= 2.01 u (|q_c| + |p_c|), so the distance by
# <= 2.01 u (|q| + |p|); the float32 sum of squares (in order) adds <= ((features + 1) / 2 + 1) u of
# the distance: DELTA = 67 u covers up to 120 features
DELTA = 4e-6
TINY = 1e-17  # absolute slack: float32's underflow of tiny differences and their squares
LIMIT = 1e16  # features larger than this (float32 overflow of the squares): not screened


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _screen_block(q32, f32, a, b, head, keep, acc, idx):  # pragma: no cover - compiled
    """Float32 squared distances of ``q32`` to fitted rows ``a:b`` (feature-major, widest features
    first) that can be within ``keep``: the first ``head`` features for every row, the rest only for the
    rows whose partial sum is within ``keep``. Returns how many: rows ``idx[:m]`` (positions), ``acc[:m]``."""
    d = f32.shape[0]
    m = b - a
    head = min(head, d)
    for i in range(m):
        acc[i] = np.float32(0.0)
    c = 0
    while c + 4 <= head:  # four features a pass (fewer passes over acc; any order: DELTA covers it)
        x0, x1, x2, x3 = q32[c], q32[c + 1], q32[c + 2], q32[c + 3]
        f0, f1, f2, f3 = f32[c, a:b], f32[c + 1, a:b], f32[c + 2, a:b], f32[c + 3, a:b]
        for i in range(m):
            t0 = x0 - f0[i]
            t1 = x1 - f1[i]
            t2 = x2 - f2[i]
            t3 = x3 - f3[i]
            acc[i] += (t0 * t0 + t1 * t1) + (t2 * t2 + t3 * t3)
        c += 4
    while c < head:
        x = q32[c]
        fc = f32[c, a:b]
        for i in range(m):
            t = x - fc[i]
            acc[i] += t * t
        c += 1
    n = 0
    for i in range(m):
        idx[n] = a + i
        acc[n] = acc[i]
        n += acc[i] <= keep
    for c in range(head, d):
        x = q32[c]
        fc = f32[c]
        for u in range(n):
            t = x - fc[idx[u]]
            acc[u] += t * t
    return n


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _screen_into(q32, f32, a, b, head, k, acc, idx, w32, cand, cval, m, bounds, seen, stamp
                 ):  # pragma: no cover - compiled
    """Screen fitted rows ``a:b`` (but those with ``seen == stamp``, screened already): rows within
    ``bounds[2]`` join the held candidates (``cand``, ``cval``; ``m`` held so far, returned), the
    float32 ``k`` best ``w32`` and, when it improved, the bounds (``bounds``: slack, prune, keep)
    follow."""
    keep = bounds[2]
    ns = _screen_block(q32, f32, a, b, head, np.float32(keep), acc, idx)
    changed = False
    for u in range(ns):
        if seen[idx[u]] == stamp:
            continue
        s = acc[u]
        cand[m] = idx[u]
        cval[m] = s
        m += 1
        if s < w32[k - 1]:
            j = k - 1
            while j > 0 and w32[j - 1] > s:
                w32[j] = w32[j - 1]
                j -= 1
            w32[j] = s
            changed = True
    if changed and np.isfinite(w32[k - 1]):
        # the true k-th distance is at most ub; a row within ub has a float32 distance at most kb
        slack = bounds[0]
        ub = (np.sqrt(np.float64(w32[k - 1])) + slack) / (1.0 - DELTA)
        bounds[1] = ub * ub * (1.0 + 1e-12)
        kb = ub * (1.0 + DELTA) + slack
        bounds[2] = kb * kb * (1.0 + 1e-12)
    if m > BUFFER:  # thin the held candidates to the current bound
        m2 = 0
        for u in range(m):
            if cval[u] <= bounds[2]:
                cand[m2] = cand[u]
                cval[m2] = cval[u]
                m2 += 1
        m = m2
    return m


@numba.njit(cache=True, nogil=True, error_model="numpy")
def screened_query(pts, f32, perm, start, left, right, lo, hi, leaf_of, parent, depth, pmax, dims,
                   head, bstart, bstop, blo, bhi, rows_nb, q, k, core, dist, ind, mr, nb, own, near
                   ):  # pragma: no cover - compiled
    """Per row of ``q``: its ``k`` nearest rows of ``pts`` as ``kdtree._query`` finds them, written by
    ``grouped._emit`` (``core`` of size 0: ``dist``/``ind``; else ``mr``, ``nb``, ``own``, ``near``).
    The block nearest by box (rows ``bstart:bstop``, boxes ``blo``/``bhi``, feature-major) is screened
    first, then the fitted neighbours ``rows_nb`` of its nearest row: a near bound, which leaves out most
    other blocks; those within it are screened in order."""
    n, d = q.shape
    nblk = bstart.shape[0]
    size = 0
    for i in range(nblk):
        size = max(size, bstop[i] - bstart[i])
    q32 = np.empty(d, np.float32)
    acc = np.empty(size, np.float32)
    idx = np.empty(size, np.int64)
    w32 = np.empty(k, np.float32)  # float32 k best (squared), ascending
    cand = np.empty(BUFFER + size, np.int64)
    cval = np.empty(BUFFER + size, np.float32)
    best = np.empty(k)
    bidx = np.empty(k, np.int64)
    bd = np.empty(nblk)
    seen = np.full(pts.shape[0], -1, np.int64)  # the query row that screened a fitted row on its own
    bounds = np.empty(3)
    for r in range(n):
        qn = 0.0
        for c in range(d):
            q32[c] = np.float32(q[r, dims[c]])
            qn += q[r, c] * q[r, c]
        bounds[0] = DELTA * (np.sqrt(qn) + pmax) + TINY
        bounds[1] = np.inf  # squared bound on the true k-th distance (blocks beyond it: left out)
        bounds[2] = np.inf  # squared bound on the float32 distance of a row within it
        for j in range(k):
            w32[j] = np.float32(np.inf)
        for i in range(nblk):
            bd[i] = 0.0
        for c in range(d):  # branch-free, across blocks (the sides are unpredictable)
            x = q[r, c]
            for i in range(nblk):
                g = max(blo[c, i] - x, x - bhi[c, i], 0.0)
                bd[i] += g * g
        first = 0
        for i in range(nblk):
            if bd[i] < bd[first]:
                first = i
        m = _screen_into(q32, f32, bstart[first], bstop[first], head, k, acc, idx, w32, cand, cval, 0,
                         bounds, seen, r)
        if rows_nb.shape[1]:  # the nearest row's fitted neighbours: a bound near the true one
            for u in range(1, m):
                if cval[u] < cval[0]:
                    cval[0], cval[u] = cval[u], cval[0]
                    cand[0], cand[u] = cand[u], cand[0]
            top = cand[0]
            for j in range(rows_nb.shape[1]):
                i = rows_nb[top, j]
                if i < bstart[first] or i >= bstop[first]:
                    m = _screen_into(q32, f32, i, i + 1, head, k, acc, idx, w32, cand, cval, m, bounds,
                                     seen, r)
                    seen[i] = r
        for i in range(nblk):
            if i != first and bd[i] <= bounds[1]:
                m = _screen_into(q32, f32, bstart[i], bstop[i], head, k, acc, idx, w32, cand, cval, m,
                                 bounds, seen, r)
        keep = bounds[2]
        # the k smallest float64 distances among the held rows, ties in _query's walk order
        filled = 0
        for u in range(m):
            if cval[u] > keep:
                continue
            i = cand[u]
            v = _sqdist(q, r, pts, i, d)
            if filled == k:
                if v > best[k - 1]:
                    continue
                if v == best[k - 1] and not _first(q, r, i, bidx[k - 1], leaf_of, parent, depth, left,
                                                   right, start, lo, hi):
                    continue
                j = k - 1
            else:
                j = filled
                filled += 1
            while j > 0 and (best[j - 1] > v or (best[j - 1] == v and _first(
                    q, r, i, bidx[j - 1], leaf_of, parent, depth, left, right, start, lo, hi))):
                best[j] = best[j - 1]
                bidx[j] = bidx[j - 1]
                j -= 1
            best[j] = v
            bidx[j] = i
        _emit(r, best, bidx, k, perm, core, dist, ind, mr, nb, own, near)


class Screened:
    """A ``kdtree.KDTree``'s rows in float32 (feature-major, widest features first), its blocks (the
    largest subtrees of at most ``block`` rows) and the largest row norm."""

    def __init__(self, tree, block: int | None = None, neighbours: int = NEIGHBOURS, workers: int = 1
                 ) -> None:
        self.tree = tree
        block = BLOCK if block is None else int(block)
        spread = tree.pts.std(axis=0) if tree.n else np.zeros(tree.pts.shape[1])
        self.dims = np.argsort(-spread, kind="stable").astype(np.int64)  # widest first: prunes soonest
        self.f32 = np.ascontiguousarray(tree.pts[:, self.dims].T, dtype=np.float32)
        self.pmax = float(np.sqrt((tree.pts**2).sum(axis=1)).max()) if tree.n else 0.0
        size = tree.stop - tree.start
        small = (tree.left < 0) | (size <= block)
        top = np.where(tree.parent >= 0, ~small[np.maximum(tree.parent, 0)], True)
        blocks = np.flatnonzero(small & top)
        self.bstart, self.bstop = tree.start[blocks], tree.stop[blocks]
        self.blo = np.ascontiguousarray(tree.lo[blocks].T)
        self.bhi = np.ascontiguousarray(tree.hi[blocks].T)
        self.rows_nb = np.zeros((tree.n, 0), np.int64)
        if neighbours and tree.n > neighbours:  # each fitted row's nearest fitted rows (tree positions)
            ind = np.empty((tree.n, neighbours), np.int64)
            none, nonei = np.zeros(0), np.zeros(0, np.int64)
            self.run(tree.pts, neighbours, workers, none, np.empty((tree.n, neighbours)),
                     ind, none, nonei, none, nonei)
            inv = np.empty(tree.n, np.int64)
            inv[tree.perm] = np.arange(tree.n)
            self.rows_nb = inv[ind]

    def run(self, q: np.ndarray, k: int, workers: int, core: np.ndarray, dist: np.ndarray,
            ind: np.ndarray, mr: np.ndarray, nb: np.ndarray, own: np.ndarray, near: np.ndarray) -> None:
        """``grouped.run``'s contract: rows of ``q`` (float64) split into ``workers`` threads."""
        t = self.tree
        n = q.shape[0]
        if n == 0:
            return
        core_t = core[t.perm] if core.shape[0] else core
        parts = max(1, min(int(workers), n // 2048 + 1))

        def cut(o: np.ndarray, sl: slice) -> np.ndarray:
            return o[sl] if o.shape[0] else o

        def part(i: int) -> None:
            sl = slice(n * i // parts, n * (i + 1) // parts)
            screened_query(t.pts, self.f32, t.perm, t.start, t.left, t.right, t.lo, t.hi, t.leaf_of,
                           t.parent, t.depth, self.pmax, self.dims, HEAD, self.bstart, self.bstop,
                           self.blo, self.bhi, self.rows_nb, q[sl], k, core_t, cut(dist, sl), cut(ind, sl),
                           cut(mr, sl), cut(nb, sl), cut(own, sl), cut(near, sl))

        if parts == 1:
            part(0)
        else:
            list(_pool(parts).map(part, range(parts)))
