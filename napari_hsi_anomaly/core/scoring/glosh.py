"""GLOSH outlier scores from one cached HDBSCAN hierarchy: a new ``p_min`` only re-condenses.

HDBSCAN's single-linkage tree depends on ``min_samples`` only; ``min_cluster_size`` (the thesis's
``p_min``) enters at the condensing step. ``GloshScorer`` fits once and answers ``score(p_min)`` by
condensing the cached tree again (about a millisecond) instead of refitting (seconds to minutes).

Large inputs: at most ``max_fit`` distinct rows are fitted (a deterministic random subsample); every
other row gets hdbscan's ``approximate_predict_scores`` score, computed here in vectorised form with the
nearest mutual-reachability neighbour and its lambda cached once, so a new ``p_min`` stays cheap there too.

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
from sklearn.neighbors import KDTree

from napari_hsi_anomaly.core.errors import HsiAnomalyError, ShapeError

try:
    import numba
except ImportError:  # pragma: no cover - numba is a dependency; the Cython path stays as a fallback
    numba = None

QUERY_CHUNK = 100_000  # non-fitted rows per nearest-neighbour query
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


class GloshScorer:
    """Fit HDBSCAN once on ``values (N, D)``; ``score(p_min)`` re-condenses the cached tree.

    ``scale``: per-feature min-max scaling first (thesis). Non-finite rows are left out and score 1.0;
    exact duplicate rows are fitted once and share a score (duplicates make hdbscan return NaN).
    ``n_jobs``: hdbscan's ``core_dist_n_jobs`` (default: up to 4, at most the CPU count).
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
        n_jobs: int | None = None,
    ) -> None:
        x = np.asarray(values)
        if x.ndim != 2:
            raise ShapeError(f"GLOSH needs a 2-D (points, features) array; got shape {x.shape}.")
        if min_samples is None or int(min_samples) < 1:
            raise HsiAnomalyError("min_samples must be a positive integer (None would tie it to p_min).")
        self.n_points = int(x.shape[0])
        self.min_samples = int(min_samples)
        self.max_fit = int(max_fit)
        self.seed = int(seed)
        self._cache: OrderedDict[int, GloshResult] = OrderedDict()
        self._cache_size = int(cache_size)
        _warm_up()  # JIT-compile (or load) the numba kernels now, not at the first p_min move

        self.finite = np.isfinite(x).all(axis=1)
        xf = minmax_scale(x[self.finite]) if scale else np.asarray(x[self.finite], dtype=np.float64)
        if xf.shape[0] == 0:
            uniq, inverse = xf, np.zeros(0, dtype=np.int64)
        else:
            # keep first-occurrence order: without duplicates the fit sees the rows as given
            _, first, inverse = np.unique(xf, axis=0, return_index=True, return_inverse=True)
            order = np.argsort(first, kind="stable")
            rank = np.empty_like(order)
            rank[order] = np.arange(order.size)
            uniq, inverse = xf[first[order]], rank[inverse.reshape(-1)]
        self._inverse = inverse.reshape(-1)
        self.n_unique = int(uniq.shape[0])

        n_u = self.n_unique
        if n_u > self.max_fit:
            rng = np.random.default_rng(self.seed)
            fit_idx = np.sort(rng.choice(n_u, self.max_fit, replace=False))
        else:
            fit_idx = np.arange(n_u)
        self.n_fit = int(fit_idx.size)
        self._fit_idx = fit_idx
        self._tree: np.ndarray | None = None
        self._rest_idx = np.zeros(0, dtype=np.int64)
        if self.n_fit >= 2:
            fit_x = uniq[fit_idx]
            k = max(1, min(self.min_samples, self.n_fit - 1))
            self._k = k
            # min_cluster_size does not change the single-linkage tree; any value will do here.
            jobs = n_jobs or max(1, min(4, os.cpu_count() or 1))
            clusterer = HDBSCAN(min_cluster_size=max(2, min(5, self.n_fit)), min_samples=k,
                                core_dist_n_jobs=jobs)
            clusterer.fit(fit_x)
            self._tree = np.asarray(clusterer._single_linkage_tree, dtype=np.float64)
            if self.n_fit < n_u:
                self._prepare_rest(uniq, fit_x, fit_idx, k)

    def _prepare_rest(self, uniq: np.ndarray, fit_x: np.ndarray, fit_idx: np.ndarray, k: int) -> None:
        """Cache each non-fitted row's nearest mutual-reachability neighbour and lambda."""
        rest = np.setdiff1d(np.arange(uniq.shape[0]), fit_idx)
        tree = KDTree(fit_x)
        core = tree.query(fit_x, k=min(k, self.n_fit))[0][:, -1]
        kk = min(2 * k, self.n_fit)
        neighbor = np.empty(rest.size, dtype=np.int64)
        lam = np.empty(rest.size)
        exact = np.empty(rest.size, dtype=bool)
        for a in range(0, rest.size, QUERY_CHUNK):  # bounded memory for millions of pixels
            dist, ind = tree.query(uniq[rest[a : a + QUERY_CHUNK]], k=kk)
            own_core = dist[:, min(k, kk - 1)][:, None]
            mr = np.maximum(np.maximum(core[ind], own_core), dist)
            j = mr.argmin(axis=1)
            rows = np.arange(ind.shape[0])
            best = mr[rows, j]
            with np.errstate(divide="ignore"):
                lam[a : a + QUERY_CHUNK] = np.where(best > 0, 1.0 / best, np.finfo(np.float64).max)
            neighbor[a : a + QUERY_CHUNK] = ind[rows, j]
            exact[a : a + QUERY_CHUNK] = dist.min(axis=1) == 0
        self._rest_idx = rest
        self._rest_neighbor = neighbor
        self._rest_lambda = lam
        self._rest_exact = exact

    @property
    def subsampled(self) -> bool:
        return self.n_fit < self.n_unique

    def fitted_p_min(self, p_min: int) -> int:
        """``p_min`` counts points of the whole set; on a subsample it shrinks in proportion, so a group
        of ``p_min`` pixels is a cluster whether or not the fit was subsampled."""
        if not self.subsampled:
            return int(p_min)
        return max(2, int(round(p_min * self.n_fit / self.n_unique)))

    def score(self, p_min: int) -> GloshResult:
        """GLOSH scores and labels for minimum cluster size ``p_min`` (cached, LRU)."""
        p = int(p_min)
        if p in self._cache:
            self._cache.move_to_end(p)
            return self._cache[p]
        result = self._compute(p)
        self._cache[p] = result
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return result

    def _compute(self, p_min: int) -> GloshResult:
        notes: list[str] = []
        scores = np.ones(self.n_points, dtype=np.float32)
        if p_min < 2:
            raise HsiAnomalyError(f"p_min (minimum cluster size) must be at least 2; got {p_min}.")
        if self._tree is None:
            notes.append(f"only {self.n_fit} distinct finite points: every point scored 1.0")
            return GloshResult(scores, np.full(self.n_points, -1, dtype=np.int64), p_min, notes)
        p = self.fitted_p_min(p_min)
        if p > self.n_fit:
            p = self.n_fit
            notes.append(f"p_min {p_min} > {self.n_fit} fitted points: clamped to {p}")
        fit_labels: Callable[[], np.ndarray]
        if _HAVE_NUMBA:
            parent, child, lam, size = _nb_condense(self._tree, np.int64(p))
            fit_scores, deaths, pt_cluster, pt_lambda = _nb_glosh(parent, child, lam, np.int64(self.n_fit))

            def fit_labels() -> np.ndarray:
                return _nb_labels(parent, child, lam, size, pt_cluster)
        else:
            condensed = condense_tree(self._tree, p)
            fit_scores = _outlier_scores(condensed)
            deaths, pt_cluster, pt_lambda = self._point_exits(condensed)

            def fit_labels() -> np.ndarray:
                stability = compute_stability(condensed)
                return get_clusters(condensed, stability, "eom", False, False, 0.0, 0)[0]
        u_scores = np.ones(self.n_unique, dtype=np.float64)
        u_scores[self._fit_idx] = fit_scores
        if self._rest_idx.size:
            u_scores[self._rest_idx] = self._score_rest(deaths, pt_cluster, pt_lambda)
        if not np.isfinite(u_scores).all():
            notes.append("non-finite GLOSH scores set to 1.0")
            u_scores = np.where(np.isfinite(u_scores), u_scores, 1.0)
        np.clip(u_scores, 0.0, 1.0, out=u_scores)
        scores[self.finite] = u_scores[self._inverse].astype(np.float32)

        def labels() -> np.ndarray:  # run on first access of GloshResult.labels only
            fl = np.asarray(fit_labels(), dtype=np.int64)
            u_labels = np.full(self.n_unique, -1, dtype=np.int64)
            u_labels[self._fit_idx] = fl
            if self._rest_idx.size:
                u_labels[self._rest_idx] = fl[self._rest_neighbor]
            out = np.full(self.n_points, -1, dtype=np.int64)
            out[self.finite] = u_labels[self._inverse]
            return out

        return GloshResult(scores, labels, p_min, notes)

    def _point_exits(self, condensed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """From hdbscan's condensed tree: cluster deaths (max lambda over each cluster and its
        descendants) and, per fitted point, the cluster it leaves and the lambda it leaves at."""
        parent = condensed["parent"].astype(np.int64)
        child = condensed["child"].astype(np.int64)
        lam = condensed["lambda_val"].astype(np.float64)
        n_nodes = int(max(parent.max(), child.max())) + 1
        deaths = np.zeros(n_nodes)
        np.maximum.at(deaths, parent, lam)
        for n in np.nonzero(child >= self.n_fit)[0][::-1]:  # propagate up, cluster rows only
            if deaths[child[n]] > deaths[parent[n]]:
                deaths[parent[n]] = deaths[child[n]]
        is_point = child < self.n_fit
        pt_cluster = np.empty(self.n_fit, dtype=np.int64)
        pt_lambda = np.empty(self.n_fit)
        pt_cluster[child[is_point]] = parent[is_point]
        pt_lambda[child[is_point]] = lam[is_point]
        return deaths, pt_cluster, pt_lambda

    def _score_rest(self, deaths: np.ndarray, pt_cluster: np.ndarray, pt_lambda: np.ndarray) -> np.ndarray:
        """hdbscan's approximate_predict_scores for the non-fitted rows, vectorised."""
        nb = self._rest_neighbor
        lam_i = np.where(self._rest_exact, pt_lambda[nb], self._rest_lambda)
        max_l = deaths[pt_cluster[nb]]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(max_l > 0, (max_l - lam_i) / max_l, 0.0)
