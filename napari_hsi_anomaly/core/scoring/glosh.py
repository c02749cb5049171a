"""GLOSH outlier scores from one cached HDBSCAN hierarchy: a new ``p_min`` only re-condenses.

HDBSCAN's single-linkage tree depends on ``min_samples`` only; ``min_cluster_size`` (the thesis's
``p_min``) enters at the condensing step. ``GloshScorer`` fits once and answers ``score(p_min)`` by
condensing the cached tree again (about a millisecond) instead of refitting (seconds to minutes).

Large inputs: at most ``max_fit`` rows are fitted (a deterministic random draw, exact duplicates among
them once); every other row gets hdbscan's ``approximate_predict_scores`` score, computed here in
vectorised form with the nearest mutual-reachability neighbour and its lambda cached once (a KD-tree in
few dimensions, brute-force float32 BLAS chunks refined in float64 above), so a new ``p_min`` stays cheap
there too. The same machinery scores new rows against a fitted reference (``GloshScorer.predictor``), and
the reference saves as plain arrays (``state``/``from_state``).

Speed: condensing, GLOSH and (only when ``GloshResult.labels`` is read) EOM cluster selection run in small
numba kernels that mirror hdbscan 0.8.44's ``_hdbscan_tree.pyx`` step by step (same row order, same
float32 subtree-stability sums): a new ``p_min`` takes about 0.5 ms at 20,000 fitted points against
about 180 ms with the Cython versions (benchmarks/results/bench_glosh.md). Without numba the Cython
functions are used (``_HAVE_NUMBA = False``).
"""

from __future__ import annotations

import os
import warnings
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
from hdbscan import HDBSCAN
from hdbscan._hdbscan_tree import compute_stability, condense_tree, get_clusters
from hdbscan._hdbscan_tree import outlier_scores as _outlier_scores

from napari_hsi_anomaly.core.errors import HsiAnomalyError, ShapeError

try:
    import numba
except ImportError:  # pragma: no cover - numba is a dependency; the Cython path stays as a fallback
    numba = None

QUERY_CHUNK = 65_536  # rows per nearest-neighbour query chunk (bounded memory for millions of rows)
KDTREE_MAX_DIMS = 16  # up to this many features a KD-tree finds neighbours; above, brute-force BLAS
BRUTE_BLOCK = 16_000_000  # float32 distances per brute-force block (64 MB)
QUERY_WORKERS = -1  # cKDTree query threads (threads, not processes): -1 = every core, unless limited


def query_workers() -> int:
    """cKDTree query threads: ``QUERY_WORKERS``, at most ``OMP_NUM_THREADS`` where that is set (dask sets
    it to 1 in single-threaded workers; two 2-thread queries on 2 cores made a batch 1.7x slower)."""
    limit = os.environ.get("OMP_NUM_THREADS", "").strip()
    if limit.isdigit() and int(limit) > 0:
        return int(limit) if QUERY_WORKERS < 0 else min(QUERY_WORKERS, int(limit))
    return QUERY_WORKERS
STATE_FORMAT = 1  # GloshScorer.state() layout version
_HAVE_NUMBA = numba is not None  # tests switch this off to cover hdbscan's Cython path


class GloshResult:
    """GLOSH scores ``(N,)`` float32 in [0, 1] (1 = most outlying) and HDBSCAN labels ``(N,)`` (-1 noise).

    ``labels`` may be given as a function: it is then called on first access only (the p_min slider
    needs the scores alone; the EOM cluster selection runs when someone reads the labels).
    """

    def __init__(
        self,
        scores: np.ndarray,
        labels: np.ndarray | Callable[[], np.ndarray],
        p_min: int,
        warnings: list[str] | None = None,
    ) -> None:
        self.scores = scores
        self.p_min = p_min
        self.warnings = [] if warnings is None else warnings
        self._labels: np.ndarray | None = None
        self._label_fn: Callable[[], np.ndarray] | None = None
        if callable(labels):
            self._label_fn = labels
        else:
            self._labels = labels

    @property
    def labels(self) -> np.ndarray:
        if self._labels is None:
            assert self._label_fn is not None
            self._labels = self._label_fn()
            self._label_fn = None
        return self._labels

    @labels.setter
    def labels(self, value: np.ndarray) -> None:
        self._labels, self._label_fn = value, None

    @property
    def labels_computed(self) -> bool:
        return self._labels is not None

    def __repr__(self) -> str:
        return (f"GloshResult(n={self.scores.shape[0]}, p_min={self.p_min}, "
                f"labels={'computed' if self.labels_computed else 'lazy'}, warnings={self.warnings!r})")


def minmax_scale(values: np.ndarray) -> np.ndarray:
    """Per-column min-max scaling to [0, 1] over finite values (constant columns become 0)."""
    x = np.asarray(values, dtype=np.float64)
    lo = np.nanmin(np.where(np.isfinite(x), x, np.nan), axis=0)
    hi = np.nanmax(np.where(np.isfinite(x), x, np.nan), axis=0)
    lo = np.nan_to_num(lo)
    span = np.nan_to_num(hi - lo)
    span[span <= 0] = 1.0
    out = (x - lo) / span
    out[:, np.nan_to_num(hi) - lo <= 0] = 0.0
    return out


def _njit(fn):
    """``numba.njit(cache=True)`` (plain Python without numba: the kernels are then never called)."""
    if numba is None:  # pragma: no cover
        return fn
    return numba.njit(cache=True, error_model="numpy")(fn)


@_njit
def _drop_subtree(hierarchy, start, num_points, parent_label, lam, queue, ignore,
                  res_parent, res_child, res_lambda, res_size, pos):
    """Every point under ``start`` leaves ``parent_label`` at ``lam`` (BFS order, as hdbscan)."""
    queue[0] = start
    head, tail = 0, 1
    while head < tail:
        sub = queue[head]
        head += 1
        if sub < num_points:
            res_parent[pos] = parent_label
            res_child[pos] = sub
            res_lambda[pos] = lam
            res_size[pos] = 1
            pos += 1
        else:
            row = sub - num_points
            queue[tail] = np.int64(hierarchy[row, 0])
            queue[tail + 1] = np.int64(hierarchy[row, 1])
            tail += 2
        ignore[sub] = True
    return pos


@_njit
def _nb_condense(hierarchy, min_cluster_size):
    """hdbscan's ``condense_tree``: the same rows in the same order, as four arrays."""
    root = 2 * hierarchy.shape[0]
    num_points = root // 2 + 1
    n_nodes = root + 1
    order = np.empty(n_nodes, np.int64)  # breadth-first order from the root (bfs_from_hierarchy)
    order[0] = root
    head, tail = 0, 1
    while head < tail:
        node = order[head]
        head += 1
        if node >= num_points:
            order[tail] = np.int64(hierarchy[node - num_points, 0])
            order[tail + 1] = np.int64(hierarchy[node - num_points, 1])
            tail += 2
    relabel = np.empty(n_nodes, np.int64)
    relabel[root] = num_points
    next_label = num_points + 1
    ignore = np.zeros(n_nodes, np.bool_)
    queue = np.empty(n_nodes, np.int64)
    size = 2 * num_points
    res_parent = np.empty(size, np.int64)
    res_child = np.empty(size, np.int64)
    res_lambda = np.empty(size, np.float64)
    res_size = np.empty(size, np.int64)
    pos = 0
    for i in range(n_nodes):
        node = order[i]
        if ignore[node] or node < num_points:
            continue
        row = node - num_points
        left = np.int64(hierarchy[row, 0])
        right = np.int64(hierarchy[row, 1])
        lam = 1.0 / hierarchy[row, 2] if hierarchy[row, 2] > 0.0 else np.inf
        left_count = np.int64(hierarchy[left - num_points, 3]) if left >= num_points else 1
        right_count = np.int64(hierarchy[right - num_points, 3]) if right >= num_points else 1
        label = relabel[node]
        if left_count >= min_cluster_size and right_count >= min_cluster_size:
            for side, count in ((left, left_count), (right, right_count)):
                relabel[side] = next_label
                res_parent[pos] = label
                res_child[pos] = next_label
                res_lambda[pos] = lam
                res_size[pos] = count
                pos += 1
                next_label += 1
        elif left_count < min_cluster_size and right_count < min_cluster_size:
            pos = _drop_subtree(hierarchy, left, num_points, label, lam, queue, ignore,
                                res_parent, res_child, res_lambda, res_size, pos)
            pos = _drop_subtree(hierarchy, right, num_points, label, lam, queue, ignore,
                                res_parent, res_child, res_lambda, res_size, pos)
        elif left_count < min_cluster_size:
            relabel[right] = label
            pos = _drop_subtree(hierarchy, left, num_points, label, lam, queue, ignore,
                                res_parent, res_child, res_lambda, res_size, pos)
        else:
            relabel[left] = label
            pos = _drop_subtree(hierarchy, right, num_points, label, lam, queue, ignore,
                                res_parent, res_child, res_lambda, res_size, pos)
    return res_parent[:pos].copy(), res_child[:pos].copy(), res_lambda[:pos].copy(), res_size[:pos].copy()


@_njit
def _nb_glosh(parent, child, lam, n_points):
    """hdbscan's ``outlier_scores`` (inf lambdas score 0), plus each point's cluster and exit lambda
    and the clusters' deaths (max lambda over the cluster and its descendants)."""
    n_nodes = max(parent.max(), child.max()) + 1
    deaths = np.zeros(n_nodes)
    for i in range(parent.shape[0]):
        if lam[i] > deaths[parent[i]]:
            deaths[parent[i]] = lam[i]
    for i in range(parent.shape[0] - 1, -1, -1):
        if deaths[child[i]] > deaths[parent[i]]:
            deaths[parent[i]] = deaths[child[i]]
    scores = np.zeros(n_points)
    pt_cluster = np.empty(n_points, np.int64)
    pt_lambda = np.empty(n_points)
    for i in range(parent.shape[0]):
        point = child[i]
        if point >= n_points:
            continue
        lam_max = deaths[parent[i]]
        pt_cluster[point] = parent[i]
        pt_lambda[point] = lam[i]
        if lam_max == 0.0 or not np.isfinite(lam[i]):
            scores[point] = 0.0
        else:
            scores[point] = (lam_max - lam[i]) / lam_max
    return scores, deaths, pt_cluster, pt_lambda


@_njit
def _nb_labels(parent, child, lam, size, pt_cluster):
    """hdbscan's ``compute_stability`` + ``get_clusters(..., 'eom', False, False, 0.0, 0)`` labels."""
    n_points = pt_cluster.shape[0]
    root = n_points
    n_clusters = parent.max() - root + 1
    births = np.zeros(n_clusters)
    cparent = np.full(n_clusters, -1, np.int64)
    n_children = np.zeros(n_clusters, np.int64)
    for i in range(parent.shape[0]):
        if child[i] >= root:
            births[child[i] - root] = lam[i]
            cparent[child[i] - root] = parent[i] - root
            n_children[parent[i] - root] += 1
    stability = np.zeros(n_clusters)
    for i in range(parent.shape[0]):
        c = parent[i] - root
        stability[c] += (lam[i] - births[c]) * size[i]
    start = np.zeros(n_clusters + 1, np.int64)
    for c in range(n_clusters):
        start[c + 1] = start[c] + n_children[c]
    kids = np.empty(start[n_clusters], np.int64)
    fill = start[:-1].copy()
    for i in range(parent.shape[0]):  # cluster children in row order (hdbscan's summing order)
        if child[i] >= root and size[i] > 1:
            c = parent[i] - root
            kids[fill[c]] = child[i] - root
            fill[c] += 1
    chosen = np.zeros(n_clusters, np.bool_)
    for c in range(n_clusters - 1, 0, -1):  # children before parents; the root is never chosen
        sub = np.float32(0.0)  # hdbscan sums subtree stability in a C float
        for j in range(start[c], start[c + 1]):
            sub = np.float32(np.float64(sub) + stability[kids[j]])
        if np.float64(sub) > stability[c]:
            stability[c] = np.float64(sub)
        else:
            chosen[c] = True
    # a chosen cluster unselects all its descendants; labels in ascending cluster id order
    covered = np.zeros(n_clusters, np.bool_)
    label_of = np.full(n_clusters, -1, np.int64)
    n_labels = 0
    for c in range(1, n_clusters):
        p = cparent[c]
        covered[c] = covered[p] or chosen[p]
        if chosen[c] and not covered[c]:
            label_of[c] = n_labels
            n_labels += 1
        else:
            label_of[c] = label_of[p]
    labels = np.empty(n_points, np.int64)
    for i in range(n_points):
        labels[i] = label_of[pt_cluster[i] - root]
    return labels


def _warm_up() -> None:
    """Compile (or load from numba's cache) the kernels on a 4-point tree; if that fails, fall back
    to hdbscan's Cython functions for the rest of the session."""
    global _WARM, _HAVE_NUMBA
    if _WARM or not _HAVE_NUMBA:
        return
    tree = np.array([[0, 1, 0.5, 2], [2, 3, 0.5, 2], [4, 5, 1.0, 4]], dtype=np.float64)
    try:
        parent, child, lam, size = _nb_condense(tree, np.int64(2))
        _, _, pt_cluster, _ = _nb_glosh(parent, child, lam, np.int64(4))
        _nb_labels(parent, child, lam, size, pt_cluster)
    except Exception as exc:  # pragma: no cover - a broken numba install
        warnings.warn(f"numba kernels unavailable ({exc}); using hdbscan's slower Cython path",
                      RuntimeWarning, stacklevel=3)
        _HAVE_NUMBA = False
        return
    _WARM = True


_WARM = False


class _Condensed:
    """One condensed tree (fitted ``p``): fitted points' scores, cluster deaths, point exits, labels."""

    def __init__(self, tree: np.ndarray, p: int, n_fit: int) -> None:
        if _HAVE_NUMBA:
            parent, child, lam, size = _nb_condense(tree, np.int64(p))
            self.scores, self.deaths, self.pt_cluster, self.pt_lambda = _nb_glosh(
                parent, child, lam, np.int64(n_fit))
            pt_cluster = self.pt_cluster
            self._labels = lambda: _nb_labels(parent, child, lam, size, pt_cluster)
        else:
            condensed = condense_tree(tree, p)
            self.scores = np.asarray(_outlier_scores(condensed), dtype=np.float64)
            self.deaths, self.pt_cluster, self.pt_lambda = _point_exits(condensed, n_fit)

            def labels() -> np.ndarray:
                stability = compute_stability(condensed)
                return get_clusters(condensed, stability, "eom", False, False, 0.0, 0)[0]
            self._labels = labels
        self._label_cache: np.ndarray | None = None

    def labels(self) -> np.ndarray:
        if self._label_cache is None:
            self._label_cache = np.asarray(self._labels(), dtype=np.int64)
        return self._label_cache

    def predict(self, neighbor: np.ndarray, rows: _RowCache, dense: np.ndarray) -> tuple[np.ndarray, bool]:
        """hdbscan's ``approximate_predict_scores`` from cached neighbours: float32 scores clipped to
        [0, 1] (rows equal to a ``dense`` fitted point: 0) and whether some were non-finite (set to 1).

        Per fitted point ``1 / max_lambda`` once, then one gather per row: ``1 - lambda / max_lambda``
        (a row at distance 0 from a fitted point takes that point's lambda, as hdbscan)."""
        # hdbscan scores every new point 1 when the condensed tree has no cluster (a p_min above every
        # split); here such rows are scored like the fitted ones, against the root (as before 0.8.44's
        # special case): otherwise a subsampled fit would give its predicted half 1 and its fitted half
        # real scores.
        max_l = self.deaths[self.pt_cluster]
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = np.where(max_l > 0, 1.0 / np.where(max_l > 0, max_l, 1.0), 0.0).astype(np.float32)
        out = (max_l > 0).astype(np.float32)[neighbor]
        out -= rows.lam32 * inv[neighbor]
        if rows.exact.size:
            nb = neighbor[rows.exact]
            ml = max_l[nb]
            with np.errstate(divide="ignore", invalid="ignore"):
                out[rows.exact] = np.where(ml > 0, (ml - self.pt_lambda[nb]) / ml, 0.0)
        if rows.same.size and dense.any():
            out[rows.same[dense[rows.same_fit]]] = 0.0
        bad = not np.isfinite(out).all()
        if bad:
            out[~np.isfinite(out)] = 1.0
        return np.clip(out, 0.0, 1.0, out=out), bad


class _RowCache:
    """Per predicted row, what a new ``p_min`` needs beyond the neighbour: lambda as float32, the rows
    at distance 0 from a fitted point and the rows equal to one (with that point)."""

    def __init__(self, lam: np.ndarray, exact: np.ndarray, same: np.ndarray) -> None:
        self.lam32 = np.minimum(lam, np.finfo(np.float32).max).astype(np.float32)
        self.exact = np.flatnonzero(exact)
        self.same = np.flatnonzero(same >= 0)
        self.same_fit = same[self.same]


def _point_exits(condensed: np.ndarray, n_fit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From hdbscan's condensed tree: cluster deaths (max lambda over each cluster and its
    descendants) and, per fitted point, the cluster it leaves and the lambda it leaves at."""
    parent = condensed["parent"].astype(np.int64)
    child = condensed["child"].astype(np.int64)
    lam = condensed["lambda_val"].astype(np.float64)
    n_nodes = int(max(parent.max(), child.max())) + 1
    deaths = np.zeros(n_nodes)
    np.maximum.at(deaths, parent, lam)
    for n in np.nonzero(child >= n_fit)[0][::-1]:  # propagate up, cluster rows only
        if deaths[child[n]] > deaths[parent[n]]:
            deaths[parent[n]] = deaths[child[n]]
    is_point = child < n_fit
    pt_cluster = np.empty(n_fit, dtype=np.int64)
    pt_lambda = np.empty(n_fit)
    pt_cluster[child[is_point]] = parent[is_point]
    pt_lambda[child[is_point]] = lam[is_point]
    return deaths, pt_cluster, pt_lambda


def finite_rows(x: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: rows with finite values in every column (in row chunks, no full-size temporary)."""
    out = np.empty(x.shape[0], dtype=bool)
    for a in range(0, x.shape[0], QUERY_CHUNK):
        out[a : a + QUERY_CHUNK] = np.isfinite(x[a : a + QUERY_CHUNK]).all(axis=1)
    return out


def _column_range(x: np.ndarray, finite: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column min and max (float64) over the finite rows, in row chunks."""
    lo = np.full(x.shape[1], np.inf)
    hi = np.full(x.shape[1], -np.inf)
    for a in range(0, x.shape[0], QUERY_CHUNK):
        block = x[a : a + QUERY_CHUNK][finite[a : a + QUERY_CHUNK]]
        if block.shape[0]:
            lo = np.minimum(lo, block.min(axis=0).astype(np.float64))
            hi = np.maximum(hi, block.max(axis=0).astype(np.float64))
    return lo, hi


class _NeighbourSearch:
    """The ``k`` nearest fitted rows of query rows, exact float64 distances in ascending order.

    Few dimensions (<= ``KDTREE_MAX_DIMS``): scipy's cKDTree (threads; measured faster than sklearn's
    KDTree and than a numba KD-tree here; with the k+1 shortcut below it beats brute force up to about
    16 dimensions, benchmarks/results/bench_glosh.md). More: brute-force float32 BLAS distances
    ``|f|^2 - 2 q.f`` in blocks pick ``k + 8`` candidates, whose float64 distances are then computed
    exactly and sorted (a KD-tree degenerates in 32 dimensions).
    """

    def __init__(self, fit_x: np.ndarray) -> None:
        self.fit_x = np.ascontiguousarray(fit_x, dtype=np.float64)
        self.brute = fit_x.shape[1] > KDTREE_MAX_DIMS
        if self.brute:
            self.f32 = np.ascontiguousarray(fit_x, dtype=np.float32)
            self.f_sq = (self.f32.astype(np.float64) ** 2).sum(axis=1).astype(np.float32)
        else:
            from scipy.spatial import cKDTree

            self.tree = cKDTree(self.fit_x)

    def query(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if not self.brute:
            dist, ind = self.tree.query(q, k=k, workers=query_workers())
            return dist.reshape(q.shape[0], k), ind.reshape(q.shape[0], k).astype(np.int64)
        n = self.fit_x.shape[0]
        m = min(n, k + 8)
        dist = np.empty((q.shape[0], k))
        ind = np.empty((q.shape[0], k), dtype=np.int64)
        step = max(1, BRUTE_BLOCK // n)
        for a in range(0, q.shape[0], step):
            qa = q[a : a + step]
            d2 = qa.astype(np.float32) @ self.f32.T
            d2 *= -2.0
            d2 += self.f_sq[None, :]  # |q|^2 is the same for a row: not needed to rank
            cand = _smallest(d2, m) if m < n else np.broadcast_to(np.arange(n), d2.shape)
            exact = np.sqrt(((qa[:, None, :] - self.fit_x[cand]) ** 2).sum(axis=2))
            order = np.argsort(exact, axis=1, kind="stable")[:, :k]
            dist[a : a + step] = np.take_along_axis(exact, order, axis=1)
            ind[a : a + step] = np.take_along_axis(np.asarray(cand), order, axis=1)
        return dist, ind


def _smallest(values: np.ndarray, m: int) -> np.ndarray:
    """Column indices of the ``m`` smallest values per row (any order): torch's topk where torch is
    installed (about 9x faster than ``np.argpartition`` on 20,000 columns here), else argpartition."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency of the CAE part
        return np.argpartition(values, m - 1, axis=1)[:, :m]
    idx = torch.topk(torch.from_numpy(values), m, dim=1, largest=False, sorted=False).indices
    return idx.numpy()


def _mr_neighbours(search: _NeighbourSearch, core: np.ndarray, k: int,
                   q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """hdbscan's ``_find_neighbor_and_lambda`` for query rows ``q`` (float64, scaled): nearest
    mutual-reachability fitted neighbour, its lambda, whether a fitted row is at distance 0, and
    which one (-1 if none).

    hdbscan looks at the ``2k`` nearest rows with ``own = dist[k]``; rows ``j <= k`` have
    ``mr = max(core_j, own)`` and rows ``j > k`` have ``mr >= d_j >= own``. So when some ``core_j <= own``
    (j <= k) the answer is the first such ``j``, found from ``k + 1`` neighbours; only the other rows
    (in sparser company) are queried again with ``2k`` (same result, about half the work)."""
    n_fit = core.shape[0]
    kk = min(2 * k, n_fit)
    k1 = min(k + 1, kk)
    dist, ind = search.query(q, k1)
    own = dist[:, min(k, kk - 1)]
    mr = np.maximum(core[ind], own[:, None])
    j = mr.argmin(axis=1)
    rows = np.arange(ind.shape[0])
    best, nb = mr[rows, j], ind[rows, j]
    exact = dist[:, 0] == 0
    same = np.where(exact, ind[:, 0], -1)
    again = np.flatnonzero(best > own) if kk > k1 else np.zeros(0, np.int64)
    if again.size:
        d2, i2 = search.query(q[again], kk)
        m2 = np.maximum(np.maximum(core[i2], own[again, None]), d2)
        j2 = m2.argmin(axis=1)
        r2 = np.arange(again.size)
        best[again], nb[again] = m2[r2, j2], i2[r2, j2]
    with np.errstate(divide="ignore"):
        lam = np.where(best > 0, 1.0 / np.where(best > 0, best, 1.0), np.finfo(np.float64).max)
    return nb, lam, exact, same


class GloshScorer:
    """Fit HDBSCAN once on ``values (N, D)``; ``score(p_min)`` re-condenses the cached tree.

    ``scale``: per-feature min-max scaling first (thesis), fixed by these rows (``transform``).
    Non-finite rows are left out and score 1.0. At most ``max_fit`` rows (a deterministic random draw) are
    fitted, exact duplicates among them once (duplicates make hdbscan return NaN); every other row gets
    hdbscan's ``approximate_predict_scores`` score against that hierarchy (nearest mutual-reachability
    neighbour cached once), an exact duplicate of a fitted row through distance 0. A group of identical
    rows at least ``p_min`` strong is a cluster of its own: it scores 0 (dense, not an outlier).
    ``predictor(values)`` scores new rows against this reference; ``state``/``from_state`` save it as
    plain arrays. ``n_jobs``: hdbscan's ``core_dist_n_jobs`` (1: no worker processes; measured fastest).
    """

    def __init__(
        self,
        values: np.ndarray,
        *,
        min_samples: int = 10,
        scale: bool = True,
        max_fit: int = 20000,
        seed: int = 0,
        cache_size: int = 8,
        n_jobs: int | None = 1,
    ) -> None:
        x = np.asarray(values)
        if x.ndim != 2:
            raise ShapeError(f"GLOSH needs a 2-D (points, features) array; got shape {x.shape}.")
        if min_samples is None or int(min_samples) < 1:
            raise HsiAnomalyError("min_samples must be a positive integer (None would tie it to p_min).")
        self.n_points, self.dims = int(x.shape[0]), int(x.shape[1])
        self.min_samples, self.max_fit, self.seed = int(min_samples), int(max_fit), int(seed)
        self.scale = bool(scale)
        self._cache_size = int(cache_size)
        self._init_caches()
        _warm_up()  # JIT-compile (or load) the numba kernels now, not at the first p_min move

        self.finite = finite_rows(x)
        self._lo = np.zeros(self.dims)
        self._span = np.ones(self.dims)
        self._const = np.zeros(self.dims, dtype=bool)
        if self.scale:
            lo, hi = _column_range(x, self.finite)
            lo = np.where(np.isfinite(lo), lo, 0.0)
            span = np.where(np.isfinite(hi), hi, 0.0) - lo
            self._const = span <= 0
            self._lo, self._span = lo, np.where(self._const, 1.0, span)
        fin = np.flatnonzero(self.finite)
        self.n_finite = int(fin.size)
        if fin.size > self.max_fit:
            rng = np.random.default_rng(self.seed)
            drawn = fin[np.sort(rng.choice(fin.size, self.max_fit, replace=False))]
        else:
            drawn = fin
        self.n_drawn = int(drawn.size)
        fx = self.transform(x[drawn])
        if fx.shape[0]:
            # keep first-occurrence order: without duplicates the fit sees the rows as given
            _, first, inverse = np.unique(fx, axis=0, return_index=True, return_inverse=True)
            order = np.argsort(first, kind="stable")
            rank = np.empty_like(order)
            rank[order] = np.arange(order.size)
            fit_pos, drawn_fit = first[order], rank[inverse.reshape(-1)]
        else:
            fit_pos, drawn_fit = np.zeros(0, np.int64), np.zeros(0, np.int64)
        self._fit_x = fx[fit_pos]
        self._fit_rows = drawn[fit_pos]  # row index (in values) of each fitted point
        self._drawn, self._drawn_fit = drawn, drawn_fit
        self.n_fit = int(fit_pos.size)
        self._counts = np.bincount(drawn_fit, minlength=self.n_fit).astype(np.int64)
        self._tree: np.ndarray | None = None
        self._core = np.zeros(self.n_fit)
        self._k = max(1, min(self.min_samples, self.n_fit - 1))
        self._rest = np.zeros(0, np.int64)
        self._rest_nb = np.zeros(0, np.int64)
        self._rest_lam = np.zeros(0)
        self._rest_exact = np.zeros(0, bool)
        self._rest_same = np.zeros(0, np.int64)
        self._has_rows = True
        if self.n_fit >= 2:
            # min_cluster_size does not change the single-linkage tree; any value will do here.
            clusterer = HDBSCAN(min_cluster_size=max(2, min(5, self.n_fit)), min_samples=self._k,
                                core_dist_n_jobs=max(1, int(n_jobs or 1)))
            clusterer.fit(self._fit_x)
            self._tree = np.asarray(clusterer._single_linkage_tree, dtype=np.float64)
            search = self._search()
            self._core = search.query(self._fit_x, min(self._k, self.n_fit))[0][:, -1]
            if self.n_drawn < self.n_finite:
                self._prepare_rest(x, drawn)

    def _init_caches(self) -> None:
        self._rest_rows: _RowCache | None = None
        self._cache: OrderedDict[int, GloshResult] = OrderedDict()
        self._condensed: OrderedDict[int, _Condensed] = OrderedDict()
        self._searcher: _NeighbourSearch | None = None

    def _search(self) -> _NeighbourSearch:
        if self._searcher is None:
            self._searcher = _NeighbourSearch(self._fit_x)
        return self._searcher

    def _prepare_rest(self, x: np.ndarray, drawn: np.ndarray) -> None:
        """Cache each non-fitted finite row's nearest mutual-reachability neighbour and lambda."""
        mask = self.finite.copy()
        mask[drawn] = False
        self._rest = np.flatnonzero(mask)
        self._rest_nb, self._rest_lam, self._rest_exact, self._rest_same = self._neighbours(x, self._rest)
        same = self._rest_same[self._rest_same >= 0]
        self._counts += np.bincount(same, minlength=self.n_fit)

    def _neighbours(self, x: np.ndarray, rows: np.ndarray | None):
        """``_mr_neighbours`` of ``x[rows]`` (all rows if None), in chunks (bounded memory)."""
        n = x.shape[0] if rows is None else rows.size
        nb, same = np.empty(n, np.int64), np.empty(n, np.int64)
        lam, exact = np.empty(n), np.empty(n, bool)
        search = self._search()
        for a in range(0, n, QUERY_CHUNK):
            sl = slice(a, min(n, a + QUERY_CHUNK))
            q = self.transform(x[sl] if rows is None else x[rows[sl]])
            nb[sl], lam[sl], exact[sl], same[sl] = _mr_neighbours(search, self._core, self._k, q)
        return nb, lam, exact, same

    def transform(self, values: np.ndarray) -> np.ndarray:
        """The reference's min-max scaling applied to rows ``values (n, D)``: float64 (n, D)."""
        x = np.asarray(values)
        if x.ndim != 2 or x.shape[1] != self.dims:
            raise ShapeError(f"GLOSH rows must have {self.dims} features; got shape {x.shape}.")
        out = (x.astype(np.float64) - self._lo) / self._span
        if self._const.any():
            out[:, self._const] = 0.0
        return out

    def predictor(self, values: np.ndarray) -> GloshPredictor:
        """New rows ``values (n, D)`` scored against this reference hierarchy."""
        return GloshPredictor(self, values)

    @property
    def subsampled(self) -> bool:
        return self.n_drawn < self.n_finite

    def fitted_p_min(self, p_min: int) -> int:
        """``p_min`` counts points of the whole set; on a subsample it shrinks in proportion, so a group
        of ``p_min`` pixels is a cluster whether or not the fit was subsampled."""
        if not self.subsampled:
            return int(p_min)
        return max(2, int(round(p_min * self.n_drawn / self.n_finite)))

    def condensed(self, p_min: int) -> tuple[_Condensed | None, int, list[str]]:
        """The cached condensed tree for ``p_min`` (whole-set units), the fitted p and notes."""
        if p_min < 2:
            raise HsiAnomalyError(f"p_min (minimum cluster size) must be at least 2; got {p_min}.")
        if self._tree is None:
            return None, p_min, [f"only {self.n_fit} distinct finite points: every point scored 1.0"]
        notes: list[str] = []
        p = self.fitted_p_min(p_min)
        if p > self.n_fit:
            p = self.n_fit
            notes.append(f"p_min {p_min} > {self.n_fit} fitted points: clamped to {p}")
        if p in self._condensed:
            self._condensed.move_to_end(p)
        else:
            self._condensed[p] = _Condensed(self._tree, p, self.n_fit)
            if len(self._condensed) > self._cache_size:
                self._condensed.popitem(last=False)
        return self._condensed[p], p, notes

    def dense(self, p_min: int) -> np.ndarray:
        """Fitted points standing for at least ``p_min`` identical rows (a cluster by themselves)."""
        return (self._counts >= max(2, int(p_min))) & (self._counts > 1)

    def score(self, p_min: int) -> GloshResult:
        """GLOSH scores and labels of the rows it was built with, for ``p_min`` (cached, LRU)."""
        p = int(p_min)
        if p in self._cache:
            self._cache.move_to_end(p)
            return self._cache[p]
        if not self._has_rows:
            raise HsiAnomalyError("This GLOSH scorer was restored without its rows: score new rows "
                                  "with predictor(values).score(p_min).")
        result = self._compute(p)
        self._cache[p] = result
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return result

    def _compute(self, p_min: int) -> GloshResult:
        cond, _, notes = self.condensed(p_min)
        scores = np.ones(self.n_points, dtype=np.float32)
        if cond is None:
            return GloshResult(scores, np.full(self.n_points, -1, dtype=np.int64), p_min, notes)
        dense = self.dense(p_min)
        fit_scores = np.where(dense, 0.0, cond.scores)
        if not np.isfinite(fit_scores).all():
            notes.append("non-finite GLOSH scores set to 1.0")
            fit_scores[~np.isfinite(fit_scores)] = 1.0
        scores[self._drawn] = np.clip(fit_scores, 0.0, 1.0)[self._drawn_fit]
        if self._rest.size:
            if self._rest_rows is None:
                self._rest_rows = _RowCache(self._rest_lam, self._rest_exact, self._rest_same)
            rest_scores, bad = cond.predict(self._rest_nb, self._rest_rows, dense)
            if bad and notes[-1:] != ["non-finite GLOSH scores set to 1.0"]:
                notes.append("non-finite GLOSH scores set to 1.0")
            scores[self._rest] = rest_scores

        def labels() -> np.ndarray:  # run on first access of GloshResult.labels only
            fl = cond.labels()
            out = np.full(self.n_points, -1, dtype=np.int64)
            out[self._drawn] = fl[self._drawn_fit]
            if self._rest.size:
                out[self._rest] = fl[self._rest_nb]
            return out

        return GloshResult(scores, labels, p_min, notes)

    # -- plain-array state (safetensors + JSON; no pickle) ----------------------------------------
    _ROW_ARRAYS = ("finite", "drawn", "drawn_fit", "rest", "rest_nb", "rest_lam", "rest_exact", "rest_same")

    def state(self, rows: bool = True) -> tuple[dict[str, np.ndarray], dict]:
        """Arrays (tree, fitted scaled rows, core distances, multiplicities, scaling; with ``rows`` also
        what ``score`` needs for the rows it was built with) and JSON-able meta."""
        arrays = {"fit_x": self._fit_x, "core": self._core, "counts": self._counts,
                  "lo": self._lo, "span": self._span, "const": self._const.astype(np.uint8)}
        if self._tree is not None:
            arrays["tree"] = self._tree
        if rows and self._has_rows:
            arrays.update(finite=self.finite.astype(np.uint8), drawn=self._drawn, drawn_fit=self._drawn_fit,
                          rest=self._rest, rest_nb=self._rest_nb, rest_lam=self._rest_lam,
                          rest_exact=self._rest_exact.astype(np.uint8), rest_same=self._rest_same)
        meta = {"format": STATE_FORMAT, "min_samples": self.min_samples, "k": self._k, "scale": self.scale,
                "max_fit": self.max_fit, "seed": self.seed, "n_points": self.n_points, "dims": self.dims,
                "n_finite": self.n_finite, "n_drawn": self.n_drawn, "n_fit": self.n_fit,
                "cache_size": self._cache_size, "rows": bool(rows and self._has_rows)}
        return {k: np.ascontiguousarray(v) for k, v in arrays.items()}, meta

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], meta: dict) -> GloshScorer:
        """A scorer restored from ``state()``: scores (with rows) and predicts as the original."""
        try:
            if int(meta["format"]) > STATE_FORMAT:
                raise HsiAnomalyError(f"GLOSH state format {meta['format']} is newer than this version "
                                      f"reads ({STATE_FORMAT}): update napari-hsi-anomaly.")
            self = cls.__new__(cls)
            for key in ("min_samples", "k", "max_fit", "seed", "n_points", "dims", "n_finite", "n_drawn",
                        "n_fit", "cache_size"):
                setattr(self, "_k" if key == "k" else ("_cache_size" if key == "cache_size" else key),
                        int(meta[key]))
            self.scale = bool(meta["scale"])
            self._init_caches()
            self._fit_x = np.asarray(arrays["fit_x"], dtype=np.float64)
            self._core = np.asarray(arrays["core"], dtype=np.float64)
            self._counts = np.asarray(arrays["counts"], dtype=np.int64)
            self._lo = np.asarray(arrays["lo"], dtype=np.float64)
            self._span = np.asarray(arrays["span"], dtype=np.float64)
            self._const = np.asarray(arrays["const"]).astype(bool)
            self._tree = np.asarray(arrays["tree"], dtype=np.float64) if "tree" in arrays else None
            self._has_rows = bool(meta.get("rows"))
            if self._has_rows:
                a = {k: np.asarray(arrays[k]) for k in cls._ROW_ARRAYS}
                self.finite, self._rest_exact = a["finite"].astype(bool), a["rest_exact"].astype(bool)
                self._drawn, self._drawn_fit = a["drawn"].astype(np.int64), a["drawn_fit"].astype(np.int64)
                self._rest, self._rest_nb = a["rest"].astype(np.int64), a["rest_nb"].astype(np.int64)
                self._rest_lam = a["rest_lam"].astype(np.float64)
                self._rest_same = a["rest_same"].astype(np.int64)
        except (KeyError, TypeError, ValueError) as exc:
            raise HsiAnomalyError(f"GLOSH state is incomplete or damaged ({exc}): "
                                  "fit the profile again.") from exc
        shapes_ok = (self._fit_x.shape == (self.n_fit, self.dims) and self._core.shape == (self.n_fit,)
                     and self._counts.shape == (self.n_fit,) and self._lo.shape == (self.dims,)
                     and (self._tree is None or self._tree.shape == (self.n_fit - 1, 4)))
        if not shapes_ok:
            raise HsiAnomalyError("GLOSH state arrays do not fit together: the profile is damaged; "
                                  "fit it again.")
        _warm_up()
        return self


class GloshPredictor:
    """Rows scored against a fitted ``GloshScorer`` (its reference): hdbscan's approximate prediction,
    with the nearest mutual-reachability neighbour cached once, so ``score(p_min)`` is a gather on the
    reference's cached condensed tree. Non-finite rows score 1.0; an exact copy of a dense reference
    group (``GloshScorer.dense``) scores 0."""

    def __init__(self, scorer: GloshScorer, values: np.ndarray) -> None:
        x = np.asarray(values)
        if x.ndim != 2 or x.shape[1] != scorer.dims:
            raise ShapeError(f"GLOSH rows must have {scorer.dims} features (the reference's); "
                             f"got shape {x.shape}.")
        self.scorer = scorer
        self.n_points = int(x.shape[0])
        self.finite = finite_rows(x)
        self._rows = np.flatnonzero(self.finite)
        if scorer._tree is not None:
            self._nb, lam, exact, same = scorer._neighbours(x, self._rows)
            self._fast = _RowCache(lam, exact, same)
        self._cache: OrderedDict[int, GloshResult] = OrderedDict()

    def score(self, p_min: int) -> GloshResult:
        """Scores (and lazy labels: the neighbour's cluster) of the rows for ``p_min`` (cached, LRU)."""
        p = int(p_min)
        if p in self._cache:
            self._cache.move_to_end(p)
            return self._cache[p]
        cond, _, notes = self.scorer.condensed(p)
        scores = np.ones(self.n_points, dtype=np.float32)
        if cond is None:
            result = GloshResult(scores, np.full(self.n_points, -1, dtype=np.int64), p, notes)
        else:
            s, bad = cond.predict(self._nb, self._fast, self.scorer.dense(p))
            if bad:
                notes.append("non-finite GLOSH scores set to 1.0")
            scores[self._rows] = s
            n_points, rows, nb = self.n_points, self._rows, self._nb  # not ``self``: the cached result
            # would hold its predictor in a reference cycle, and its per-pixel arrays until a GC pass

            def labels() -> np.ndarray:
                out = np.full(n_points, -1, dtype=np.int64)
                out[rows] = cond.labels()[nb]
                return out
            result = GloshResult(scores, labels, p, notes)
        self._cache[p] = result
        if len(self._cache) > self.scorer._cache_size:
            self._cache.popitem(last=False)
        return result
