"""HDBSCAN's single-linkage tree in numba: Prim's minimum spanning tree of the mutual-reachability
graph, then the dendrogram (hdbscan's ``mst_linkage_core_vector`` and ``label``).

The fit sample is at most ``max_fit`` rows (20,000 by default), so Prim's O(n^2) scan with each
distance computed once is cheap (no tree, no extra memory) and keeps hdbscan and scikit-learn out of a
scoring process (their import alone took longer than the fit). ``_hdbscan.single_linkage_tree`` stays
as the tests' oracle.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _prim(x, core):  # pragma: no cover - compiled
    """``(n - 1, 3)`` edges ``(source, target, mutual reachability)`` of a minimum spanning tree, in the
    order Prim's algorithm adds them from row 0 (hdbscan's ``mst_linkage_core_vector``, alpha 1: the
    nearest outside row joins next, the lowest row number among equals).

    The rows not yet in the tree are kept packed at the front of copies of ``x`` and ``core`` (a joining
    row swaps with the last), so each step scans only them, in one branch-light loop."""
    n, d = x.shape
    xs = np.ascontiguousarray(x.T)  # (d, n): the distance loop runs over contiguous rows
    sq = np.empty(n)
    cs = core.copy()
    idx = np.arange(n)
    dist = np.full(n, np.inf)
    lim = np.full(n, np.inf)
    src = np.zeros(n, np.int64)
    out = np.empty((n - 1, 3))
    cur = np.empty(d)
    # row 0 is the first in the tree: move it out of the packed range
    m = n - 1
    for c in range(d):
        cur[c] = xs[c, 0]
        xs[c, 0] = xs[c, m]
    cc = cs[0]
    current = 0
    cs[0], idx[0] = cs[m], idx[m]
    for i in range(n - 1):
        best = np.inf
        bpos = 0
        bidx = n
        sq[:m] = 0.0
        for c in range(d):  # squared distances to the current row (vectorised)
            xc = cur[c]
            row = xs[c]
            for j in range(m):
                t = xc - row[j]
                sq[j] += t * t
        for j in range(m):
            s = sq[j]
            v = dist[j]
            if s < lim[j] and cs[j] < v:  # else sqrt(s) >= v (lim: v^2 with room for rounding)
                left = max(np.sqrt(s), cc, cs[j])
                if left < v:
                    v = left
                    dist[j] = v
                    lim[j] = v * v * (1.0 + 1e-9)
                    src[j] = current
            if v < best or (v == best and idx[j] < bidx):
                best, bpos, bidx = v, j, idx[j]
        out[i, 0] = src[bpos]
        out[i, 1] = bidx
        out[i, 2] = best
        current = bidx
        cc = cs[bpos]
        for c in range(d):
            cur[c] = xs[c, bpos]
        m -= 1  # swap the joining row with the last packed one
        for c in range(d):
            xs[c, bpos] = xs[c, m]
        cs[bpos], idx[bpos], dist[bpos], src[bpos], lim[bpos] = cs[m], idx[m], dist[m], src[m], lim[m]
    return out


@numba.njit(cache=True, nogil=True)
def _label(edges):  # pragma: no cover - compiled
    """hdbscan's ``label``: edges sorted by distance merged in order into a dendrogram, rows
    ``(left, right, distance, size)`` with new clusters numbered from ``n``."""
    m = edges.shape[0]
    n = m + 1
    parent = np.full(2 * n - 1, -1, np.int64)
    size = np.zeros(2 * n - 1, np.int64)
    size[:n] = 1
    nxt = n
    out = np.empty((m, 4))
    for i in range(m):
        roots = np.empty(2, np.int64)
        for s in range(2):
            a = np.int64(edges[i, s])
            r = a
            while parent[r] != -1:
                r = parent[r]
            while a != r and parent[a] != r:  # path compression
                up = parent[a]
                parent[a] = r
                a = up
            roots[s] = r
        aa, bb = roots[0], roots[1]
        out[i, 0] = aa
        out[i, 1] = bb
        out[i, 2] = edges[i, 2]
        out[i, 3] = size[aa] + size[bb]
        size[nxt] = size[aa] + size[bb]
        parent[aa] = nxt
        parent[bb] = nxt
        nxt += 1
    return out


def label(edges: np.ndarray) -> np.ndarray:
    """hdbscan's ``label``: minimum spanning tree edges ``(n - 1, 3)`` ``(a, b, distance)``, sorted by
    distance, as a single-linkage tree ``(n - 1, 4)`` float64."""
    return _label(np.ascontiguousarray(edges, dtype=np.float64))


def single_linkage_tree(x: np.ndarray, core: np.ndarray) -> np.ndarray:
    """Single-linkage tree ``(n - 1, 4)`` float64 of rows ``x`` under mutual reachability with core
    distances ``core`` (each row's distance to its ``min_samples``-th nearest row, itself included)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    edges = _prim(x, np.ascontiguousarray(core, dtype=np.float64))
    edges = edges[np.argsort(edges[:, 2])]  # numpy's default sort, as hdbscan (the same order of equals)
    return label(edges)
