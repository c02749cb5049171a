"""Grouped exact k-nearest-neighbour search on ``kdtree.KDTree`` for millions of query rows: the same
neighbours, distances and tie order as one ``kdtree._query`` per row, in less than half its time (5
features; benchmarks/results/bench_knn.md).

Queries are sorted along a Morton (Z-order) curve of their quantised features and cut into groups of
consecutive rows (at most ``GROUP``, box diagonal within ``GROW`` x the last seed's ``k``-th distance).
Per group one row, the seed (nearest the box centre), is searched in the tree. Every member has the
seed's ``k`` neighbours within its largest distance to them, so the largest such distance bounds every
member's ``k``-th distance, and the fitted rows within it of the group's box are all the candidates any
member needs: gathered once (one contiguous row per feature), then each member is searched over them
alone: squared distances summed in ``kdtree._sqdist``'s order (the same values, bit for bit),
vectorised across candidates; the previous member's ``k`` neighbours bound the next one's ``k``-th
distance, which leaves a few dozen candidates, ranked branch-free.

Tie order: ``_query`` keeps, among equal distances, the row it met first in its depth-first walk (the
nearer child box first, the left one on equal box distances), so its ``k`` rows are the ``k`` smallest
by (distance, walk rank) whatever it pruned. Where distances are equal, ``_first`` says which of two
fitted rows that walk meets first, from the box distances at their lowest common node (``_query``'s
arithmetic).
"""

from __future__ import annotations

import numba
import numpy as np

from napari_hsi_anomaly.core.scoring.glosh.kdtree import _box_dists, _knn_one, _pool

GROUP = 256  # query rows per group at most
MAX_CAND = 1024  # above this many candidates a group's rows are searched one by one in the tree
MIN_ROWS = 4096  # fewer query rows: one tree search each (grouping does not pay)
MAX_DIMS = 8  # more features: one tree search each (12 CAE features: groups of ~3 rows, no gain)
GROW = 2.0  # a group's box diagonal stays within GROW x the k-th distance of the last seed
MARGIN = 1e-9  # relative widening of the squared bound (covers rounding of the triangle inequality)


@numba.njit(cache=True, nogil=True)
def morton_order(q):  # pragma: no cover - compiled
    """Row order along a Z-order curve of ``q`` quantised on its bounding box (``bits`` per feature
    for the first ``60 // bits`` features: 10 bits for up to 6 features, fewer above), by an LSD radix
    sort of (key, row) pairs on 10-bit digits (rows of equal keys keep their order)."""
    n, d = q.shape
    bits = max(1, min(10, 60 // d))
    dims = min(d, 60 // bits)
    lo = np.full(dims, np.inf)
    hi = np.full(dims, -np.inf)
    for r in range(n):
        for c in range(dims):
            v = q[r, c]
            if v < lo[c]:
                lo[c] = v
            if v > hi[c]:
                hi[c] = v
    top = (1 << bits) - 1
    scale = np.empty(dims)
    for c in range(dims):
        span = hi[c] - lo[c]
        scale[c] = top / span if span > 0 else 0.0
    keys = np.empty(n, np.int64)
    for r in range(n):
        key = 0
        for c in range(dims):
            cell = min(top, max(0, int((q[r, c] - lo[c]) * scale[c])))
            spread = 0
            for b in range(bits):  # bit b of the cell goes to bit b * dims + c of the key
                spread |= ((cell >> b) & 1) << (b * dims)
            key |= spread << c
        keys[r] = key
    order = np.arange(n)
    keys2 = np.empty(n, np.int64)
    order2 = np.empty(n, np.int64)
    count = np.empty(1025, np.int64)
    for shift in range(0, bits * dims, 10):
        count[:] = 0
        for r in range(n):
            count[((keys[r] >> shift) & 1023) + 1] += 1
        for j in range(1024):
            count[j + 1] += count[j]
        for r in range(n):
            dgt = (keys[r] >> shift) & 1023
            keys2[count[dgt]] = keys[r]
            order2[count[dgt]] = order[r]
            count[dgt] += 1
        keys, keys2 = keys2, keys
        order, order2 = order2, order
    return order


@numba.njit(cache=True, nogil=True, inline="always")
def _first(q, r, i, j, leaf_of, parent, depth, left, right, start, lo, hi):  # pragma: no cover
    """Whether ``_query`` meets fitted row ``i`` (tree position) before row ``j`` for query ``q[r]``."""
    a = leaf_of[i]
    b = leaf_of[j]
    if a == b:
        return i < j
    while depth[a] > depth[b]:
        a = parent[a]
    while depth[b] > depth[a]:
        b = parent[b]
    while parent[a] != parent[b]:
        a = parent[a]
        b = parent[b]
    node = parent[a]
    ca, cb = left[node], right[node]
    da, db = _box_dists(q, r, lo, hi, ca, cb)
    i_left = i < start[cb]
    return i_left == (da <= db)


@numba.njit(cache=True, nogil=True)
def grouped_query(pts, perm, start, stop, left, right, lo, hi, leaf_of, parent, depth, q, t0, t1,
                  group, grow, k, core, dist, ind, mr, nb, own, near):  # pragma: no cover
    """Rows ``t0:t1`` of ``q`` (sorted along the curve): their ``k`` nearest rows of ``pts`` (what
    ``kdtree._query`` gives), searched by groups of at most ``group`` consecutive rows, written by
    ``_emit`` at the same (sorted) row of the outputs."""
    n, d = q.shape
    best = np.empty(k)
    bidx = np.empty(k, np.int64)
    sbest = np.empty(k)
    sidx = np.empty(k, np.int64)
    prev = np.empty(k, np.int64)
    spos = np.empty(k, np.int64)
    bpos = np.empty(k, np.int64)
    stack = np.empty(128, np.int64)
    sdist = np.empty(128)
    cand = np.empty((d, MAX_CAND))
    cidx = np.empty(MAX_CAND, np.int64)
    acc = np.empty((4, MAX_CAND))
    s = np.empty(MAX_CAND)
    keep = np.empty(MAX_CAND, np.int64)
    sv = np.empty(MAX_CAND)
    rank = np.empty(MAX_CAND, np.int64)
    blo = np.empty(d)
    bhi = np.empty(d)
    centre = np.empty(d)
    span2 = np.inf  # largest squared box diagonal of a group: (GROW x the last seed's k-th distance)^2
    t = t0
    while t < t1:
        a = t
        r = t
        for c in range(d):
            blo[c] = q[r, c]
            bhi[c] = q[r, c]
        t += 1
        while t < t1 and t - a < group:
            r = t
            e = 0.0
            for c in range(d):
                e += (max(bhi[c], q[r, c]) - min(blo[c], q[r, c])) ** 2
            if e > span2:
                break
            for c in range(d):
                blo[c] = min(blo[c], q[r, c])
                bhi[c] = max(bhi[c], q[r, c])
            t += 1
        b = t
        for c in range(d):
            centre[c] = 0.5 * (blo[c] + bhi[c])
        seed = a
        closest = np.inf
        for u in range(a, b):
            r = u
            e = 0.0
            for c in range(d):
                e += (q[r, c] - centre[c]) ** 2
            if e < closest:
                closest = e
                seed = r
        _knn_one(pts, start, stop, left, right, lo, hi, q, seed, k, sbest, sidx, stack, sdist)
        _emit(seed, sbest, sidx, k, perm, core, dist, ind, mr, nb, own, near)
        span2 = (grow * np.sqrt(sbest[k - 1])) ** 2
        if b - a == 1:
            continue
        # every member has the seed's k neighbours within its largest distance to them: the largest
        # over the members bounds every member's k-th distance
        rad = 0.0
        for u in range(a, b):
            for j in range(k):
                i = sidx[j]
                e = 0.0
                for c in range(d):
                    e += (q[u, c] - pts[i, c]) ** 2
                rad = max(rad, e)
        r2 = rad * (1.0 + MARGIN)
        # candidates: fitted rows within the bound of the group box, in tree order (left first)
        m = 0
        top = 1
        stack[0] = 0
        while top > 0 and m <= MAX_CAND:
            top -= 1
            node = stack[top]
            e = 0.0
            for c in range(d):
                gap = max(lo[node, c] - bhi[c], blo[c] - hi[node, c], 0.0)
                e += gap * gap
            if e > r2:
                continue
            if left[node] >= 0:
                stack[top] = right[node]
                stack[top + 1] = left[node]
                top += 2
                continue
            for i in range(start[node], stop[node]):
                e = 0.0
                for c in range(d):
                    gap = max(pts[i, c] - bhi[c], blo[c] - pts[i, c], 0.0)
                    e += gap * gap
                if e <= r2:
                    if m == MAX_CAND:
                        m += 1
                        break
                    for c in range(d):
                        cand[c, m] = pts[i, c]
                    cidx[m] = i
                    m += 1
        if m <= MAX_CAND:  # where the seed's neighbours are among the candidates (both ascending)
            for j in range(k):
                prev[j] = np.searchsorted(cidx[:m], sidx[j])
                if prev[j] >= m or cidx[prev[j]] != sidx[j]:  # cannot happen (the bound holds them)
                    m = MAX_CAND + 1
                    break
            spos[:] = prev
        if m > MAX_CAND:  # too spread out: each row on its own
            for u in range(a, b):
                r = u
                if r == seed:
                    continue
                _knn_one(pts, start, stop, left, right, lo, hi, q, r, k, best, bidx, stack, sdist)
                _emit(r, best, bidx, k, perm, core, dist, ind, mr, nb, own, near)
            continue
        for u in range(a, b):
            r = u
            if r == seed:
                continue
            _cand_sqdist(q, r, cand, m, acc, s)
            # the previous row's k neighbours (the seed's for the first) bound this row's k-th
            # distance: keep what is not farther
            lim = 0.0
            for j in range(k):
                lim = max(lim, s[prev[j]])
            nk = 0
            for mm in range(m):
                keep[nk] = mm
                nk += s[mm] <= lim
            for u2 in range(nk):
                sv[u2] = s[keep[u2]]
            # each survivor's rank (how many are nearer), branch-free: the rows of rank < k are the k
            # nearest in rank order when there are k of them with ranks 0..k-1 (no equal distances
            # among them nor at the k-th); else the insertion below decides the ties
            cnt = 0
            tot = 0
            for u2 in range(nk):
                v = sv[u2]
                below = 0
                for u3 in range(nk):
                    below += sv[u3] < v
                rank[u2] = below
                cnt += below < k
                tot += below if below < k else 0
            if cnt == k and tot == k * (k - 1) // 2:
                for u2 in range(nk):
                    j = rank[u2]
                    if j < k:
                        mm = keep[u2]
                        best[j] = sv[u2]
                        bidx[j] = cidx[mm]
                        bpos[j] = mm
                prev[:] = bpos
                _emit(r, best, bidx, k, perm, core, dist, ind, mr, nb, own, near)
                continue
            # the k smallest by (distance, _query's walk rank): survivors in tree order, so among
            # equal distances the later is inserted after, unless _first says the walk meets it first
            filled = 0
            worst = np.inf
            for u2 in range(nk):
                mm = keep[u2]
                v = s[mm]
                if v > worst:
                    continue
                i = cidx[mm]
                if v == worst and not _first(q, r, i, bidx[k - 1], leaf_of, parent, depth, left, right,
                                             start, lo, hi):
                    continue
                if filled < k:
                    j = filled
                    filled += 1
                else:
                    j = k - 1
                while j > 0 and best[j - 1] > v:
                    best[j] = best[j - 1]
                    bidx[j] = bidx[j - 1]
                    bpos[j] = bpos[j - 1]
                    j -= 1
                while j > 0 and best[j - 1] == v and _first(q, r, i, bidx[j - 1], leaf_of, parent, depth,
                                                            left, right, start, lo, hi):
                    best[j] = best[j - 1]
                    bidx[j] = bidx[j - 1]
                    bpos[j] = bpos[j - 1]
                    j -= 1
                best[j] = v
                bidx[j] = i
                bpos[j] = mm
                if filled == k:
                    worst = best[k - 1]
            if filled < k:  # cannot happen (the bound keeps k rows); the tree all the same
                _knn_one(pts, start, stop, left, right, lo, hi, q, r, k, best, bidx, stack, sdist)
                bpos[:] = spos  # the next row's bound: the seed's neighbours
            prev[:] = bpos
            _emit(r, best, bidx, k, perm, core, dist, ind, mr, nb, own, near)


@numba.njit(cache=True, nogil=True, inline="always")
def _emit(r, best, bidx, k, perm, core, dist, ind, mr, nb, own, near):  # pragma: no cover - compiled
    """Row ``r``'s result from its ``k`` best (squared distances, tree positions): with ``core`` (the
    fitted rows' core distances by tree position) its nearest mutual-reachability neighbour as
    ``neighbours._nearest_mr`` finds it from ``k`` neighbours (``mr``, ``nb``; ``own`` = the ``k``-th
    distance, ``near`` = the nearest fitted row, ``ind``'s first column), else ``dist`` and ``ind``."""
    if core.shape[0] == 0:
        for j in range(k):
            dist[r, j] = np.sqrt(best[j])
            ind[r, j] = perm[bidx[j]]
        return
    o = np.sqrt(best[k - 1])
    bv = np.inf
    bj = 0
    for j in range(k):
        v = max(core[bidx[j]], o)
        if v < bv:
            bv = v
            bj = j
    mr[r] = bv
    nb[r] = perm[bidx[bj]]
    own[r] = o
    near[r] = perm[bidx[0]] if best[0] == 0 else -1


@numba.njit(cache=True, nogil=True, inline="always")
def _cand_sqdist(q, r, cand, m, acc, s):  # pragma: no cover - compiled
    """``s[:m]``: squared distances of ``q[r]`` to the candidates (one row of ``cand`` per feature),
    summed as ``kdtree._sqdist`` sums them (bit for bit), vectorised across the candidates."""
    d = cand.shape[0]
    a0, a1, a2, a3 = acc[0], acc[1], acc[2], acc[3]
    c = 0
    while c + 4 <= d:
        x0 = q[r, c]
        x1 = q[r, c + 1]
        x2 = q[r, c + 2]
        x3 = q[r, c + 3]
        p0, p1, p2, p3 = cand[c], cand[c + 1], cand[c + 2], cand[c + 3]
        if c == 0:
            for i in range(m):
                t0 = x0 - p0[i]
                t1 = x1 - p1[i]
                t2 = x2 - p2[i]
                t3 = x3 - p3[i]
                a0[i] = t0 * t0
                a1[i] = t1 * t1
                a2[i] = t2 * t2
                a3[i] = t3 * t3
        else:
            for i in range(m):
                t0 = x0 - p0[i]
                t1 = x1 - p1[i]
                t2 = x2 - p2[i]
                t3 = x3 - p3[i]
                a0[i] += t0 * t0
                a1[i] += t1 * t1
                a2[i] += t2 * t2
                a3[i] += t3 * t3
        c += 4
    if c == 0:
        for i in range(m):
            s[i] = 0.0
    else:
        for i in range(m):
            s[i] = a0[i] + a1[i] + a2[i] + a3[i]
    while c < d:
        x0 = q[r, c]
        p0 = cand[c]
        for i in range(m):
            t0 = x0 - p0[i]
            s[i] += t0 * t0
        c += 1


def run(tree, q: np.ndarray, k: int, workers: int, core: np.ndarray, dist: np.ndarray, ind: np.ndarray,
        mr: np.ndarray, nb: np.ndarray, own: np.ndarray, near: np.ndarray) -> None:
    """``grouped_query`` of every row of ``q`` (float64) on ``tree`` (a ``kdtree.KDTree``): rows sorted
    along the curve, cut into ``workers`` contiguous runs searched in threads, results put back in the
    rows' order. Outputs: ``dist``, ``ind`` (``(n, k)``) or, with ``core`` (fitted rows' core
    distances), ``mr``, ``nb``, ``own``, ``near`` (``(n,)``; the others of size 0)."""
    n = q.shape[0]
    if n == 0:
        return
    order = morton_order(q)
    qs = q[order]
    core_t = core[tree.perm] if core.shape[0] else core
    outs = (dist, ind, mr, nb, own, near)
    sorted_outs = [np.empty_like(o) for o in outs]
    parts = max(1, min(int(workers), n // 2048 + 1))

    def part(i: int) -> None:
        grouped_query(tree.pts, tree.perm, tree.start, tree.stop, tree.left, tree.right, tree.lo, tree.hi,
                      tree.leaf_of, tree.parent, tree.depth, qs, n * i // parts,
                      n * (i + 1) // parts, GROUP, GROW, k, core_t, *sorted_outs)

    if parts == 1:
        part(0)
    else:
        list(_pool(parts).map(part, range(parts)))
    for o, so in zip(outs, sorted_outs):
        if o.shape[0]:
            o[order] = so


def query(tree, q: np.ndarray, k: int, workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``tree.query(q, k, workers)`` (a ``kdtree.KDTree``) through the grouped search: the same
    neighbours, distances and tie order."""
    q = np.ascontiguousarray(q, dtype=np.float64)
    k = int(min(k, tree.n))
    dist = np.empty((q.shape[0], k))
    ind = np.empty((q.shape[0], k), np.int64)
    none, nonei = np.zeros(0), np.zeros(0, np.int64)
    run(tree, q, k, workers, none, dist, ind, none, nonei, none, nonei)
    return dist, ind
