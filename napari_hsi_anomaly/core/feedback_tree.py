"""The GLOSH hierarchy of a fitted sample with points added, from the old hierarchy instead of anew.

HDBSCAN's single-linkage tree is the minimum spanning tree (MST) of the mutual-reachability graph
(``w(i, j) = max(core_i, core_j, d_ij)``, ``core`` = distance to the ``k``-th other point). Adding points
only lowers weights: the new points bring new edges, and an earlier point's core distance shrinks where a
new point comes within it. ``added_points_tree`` takes the new MST from:

- the old tree's merges, as one edge per merge between representative points at the merge height (an
  earlier pair's edge that kept its weight is never lighter than the old tree's path between them, so
  it is never needed);
- the edges of each earlier point whose core distance shrank to its ``k + 1`` nearest earlier points and
  to the new points among its nearest (an earlier pair's edge gets lighter only inside the old core ball);
- the edges of each new point to its ``NEW_NEIGHBOURS`` nearest points (longer ones are left out);
- then, while the forest has several parts, each part's exact lightest edge to the rest (cut property:
  a group of new points far from everything is linked to it as a full fit would).

From an exact old MST the result has the exact MST's heights on the tested cases (tests/test_feedback.py);
hdbscan's own fit builds an approximate MST (``approx_min_span_tree``), whose merges are kept here, so
the refit differs from a fit from scratch about as much as two approximate fits differ from the exact
one (benchmarks/results/bench_feedback.md). Used by ``core.feedback``.
"""

from __future__ import annotations

import numpy as np

NEW_NEIGHBOURS = 32  # nearest points whose edges a new point brings (its group is dense: most are its own)


def _merge_edges(tree: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One edge per merge of a scipy-style linkage ``tree`` (n - 1, 4): representative points, height."""
    a, b = tree[:, 0].astype(np.int64), tree[:, 1].astype(np.int64)
    rep = np.empty(2 * n - 1, np.int64)
    rep[:n] = np.arange(n)
    for r in range(n - 1):  # a merge's representative: its left child's
        rep[n + r] = rep[a[r]]
    return rep[a], rep[b], np.asarray(tree[:, 2], np.float64)


def _msf(n: int, i: np.ndarray, j: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum spanning forest of the edges (lightest kept per pair), as edge arrays."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import minimum_spanning_tree

    lo, hi = np.minimum(i, j), np.maximum(i, j)
    keep = lo != hi
    lo, hi, w = lo[keep], hi[keep], w[keep]
    order = np.lexsort((w, hi, lo))
    lo, hi, w = lo[order], hi[order], w[order]
    first = np.r_[True, (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])]
    tiny = np.finfo(np.float64).tiny  # scipy drops zero weights
    g = coo_matrix((np.maximum(w[first], tiny), (lo[first], hi[first])), shape=(n, n)).tocsr()
    t = minimum_spanning_tree(g).tocoo()
    return t.row.astype(np.int64), t.col.astype(np.int64), t.data.astype(np.float64)


def _lightest_out(kd: object, x: np.ndarray, ct: np.ndarray, members: np.ndarray, part: np.ndarray,
                  p: int) -> tuple[int, int, float] | None:
    """The exact lightest mutual-reachability edge from part ``p`` (its ``members``) to any other part."""
    k = min(len(x), 2 * NEW_NEIGHBOURS)
    d, idx = kd.query(x[members], k)  # type: ignore[attr-defined]
    w = np.maximum(np.maximum(ct[members][:, None], ct[idx]), d)
    w[part[idx] == p] = np.inf
    best = float(w.min()) if w.size else np.inf
    pair = np.unravel_index(int(np.argmin(w)), w.shape) if np.isfinite(best) else None
    unsure = np.flatnonzero(d[:, -1] < best)  # rows whose k nearest may miss a lighter edge
    for r in unsure:
        near = np.asarray(kd.query_ball_point(x[members[r]], best), np.int64)  # type: ignore[attr-defined]
        near = near[part[near] != p]
        if near.size:
            dn = np.linalg.norm(x[near] - x[members[r]], axis=1)
            wn = np.maximum(np.maximum(ct[members[r]], ct[near]), dn)
            j = int(np.argmin(wn))
            if wn[j] < best:
                best, pair = float(wn[j]), (r, -1 - int(near[j]))
    if pair is None:
        return None
    r, c = int(pair[0]), int(pair[1])
    other = -1 - c if c < 0 else int(idx[r, c])
    return int(members[r]), other, best


def added_points_tree(old_x: np.ndarray, old_tree: np.ndarray, new_x: np.ndarray, k: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """``(tree, core)`` of the points ``old_x`` then ``new_x`` (distinct rows): the single-linkage tree
    as hdbscan's fit with ``min_samples=k`` gives it, from ``old_tree`` (that of ``old_x``), and each
    point's distance to its ``k``-th nearest (itself included; ``GloshScorer``'s core)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    from napari_hsi_anomaly.core.scoring.glosh.mst import label

    n0 = len(old_x)
    x = np.vstack([old_x, new_x])
    n = len(x)
    kd = cKDTree(x)
    k1 = min(n, k + 1)
    d_all, i_all = kd.query(x, k1, workers=-1)
    core, ct = d_all[:, min(k, n) - 1].copy(), d_all[:, k1 - 1].copy()  # glosh's, the tree's
    changed = np.flatnonzero((i_all[:n0] >= n0).any(axis=1))
    kq = min(n, max(k1, NEW_NEIGHBOURS))
    i_new = kd.query(x[n0:], kq, workers=-1)[1]
    ei, ej, ew = _merge_edges(old_tree, n0)
    src, dst = [ei], [ej]
    if changed.size:
        i_old = cKDTree(old_x).query(old_x[changed], min(n0, k + 2))[1]
        src += [np.repeat(changed, i_old.shape[1]), np.repeat(changed, k1)]
        dst += [i_old.ravel(), i_all[changed].ravel()]
    src.append(np.repeat(np.arange(n0, n), kq))
    dst.append(i_new.ravel())
    si, sj = np.concatenate(src[1:]), np.concatenate(dst[1:])
    sw = np.maximum(np.maximum(ct[si], ct[sj]), np.linalg.norm(x[si] - x[sj], axis=1))
    ti, tj, tw = _msf(n, np.r_[ei, si], np.r_[ej, sj], np.r_[ew, sw])
    while len(tw) < n - 1:
        g = coo_matrix((np.ones(len(tw)), (ti, tj)), shape=(n, n))
        parts, part = connected_components(g, directed=False)
        order = np.argsort(part, kind="stable")
        bounds = np.searchsorted(part[order], np.arange(parts + 1))
        big = int(np.argmax(np.diff(bounds)))  # the others' lightest edges reach it
        extra = [e for p in range(parts) if p != big
                 and (e := _lightest_out(kd, x, ct, order[bounds[p]:bounds[p + 1]], part, p)) is not None]
        ai, aj, aw = (np.array(v) for v in zip(*extra))
        ti, tj, tw = _msf(n, np.r_[ti, ai.astype(np.int64)], np.r_[tj, aj.astype(np.int64)], np.r_[tw, aw])
    edges = np.c_[ti, tj, tw]
    edges = edges[np.argsort(edges[:, 2], kind="stable")]
    return np.asarray(label(edges), np.float64), core
