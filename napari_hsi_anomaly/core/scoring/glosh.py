"""GLOSH outlier scores from one cached HDBSCAN hierarchy: a new ``p_min`` only re-condenses.

HDBSCAN's single-linkage tree depends on ``min_samples`` only; ``min_cluster_size`` (the thesis's
``p_min``) enters at the condensing step. ``GloshScorer`` fits once and answers ``score(p_min)`` by
condensing the cached tree again (tens of ms at 3k points) instead of refitting (seconds to minutes).

Large inputs: at most ``max_fit`` distinct rows are fitted (a deterministic random subsample); every
other row gets hdbscan's ``approximate_predict_scores`` score, computed here in vectorised form with the
nearest mutual-reachability neighbour and its lambda cached once, so a new ``p_min`` stays cheap there too.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
from hdbscan import HDBSCAN
from hdbscan._hdbscan_tree import compute_stability, condense_tree, get_clusters
from hdbscan._hdbscan_tree import outlier_scores as _outlier_scores
from sklearn.neighbors import KDTree

from napari_hsi_anomaly.core.errors import HsiAnomalyError, ShapeError

QUERY_CHUNK = 100_000  # non-fitted rows per nearest-neighbour query


@dataclass
class GloshResult:
    """GLOSH scores ``(N,)`` float32 in [0, 1] (1 = most outlying) and HDBSCAN labels ``(N,)`` (-1 noise)."""

    scores: np.ndarray
    labels: np.ndarray
    p_min: int
    warnings: list[str] = field(default_factory=list)


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
        labels = np.full(self.n_points, -1, dtype=np.int64)
        if p_min < 2:
            raise HsiAnomalyError(f"p_min (minimum cluster size) must be at least 2; got {p_min}.")
        if self._tree is None:
            notes.append(f"only {self.n_fit} distinct finite points: every point scored 1.0")
            return GloshResult(scores, labels, p_min, notes)
        p = self.fitted_p_min(p_min)
        if p > self.n_fit:
            p = self.n_fit
            notes.append(f"p_min {p_min} > {self.n_fit} fitted points: clamped to {p}")
        condensed = condense_tree(self._tree, p)
        fit_scores = _outlier_scores(condensed)
        stability = compute_stability(condensed)
        fit_labels = get_clusters(condensed, stability, "eom", False, False, 0.0, 0)[0]
        u_scores = np.ones(self.n_unique, dtype=np.float64)
        u_labels = np.full(self.n_unique, -1, dtype=np.int64)
        u_scores[self._fit_idx] = fit_scores
        u_labels[self._fit_idx] = fit_labels
        if self._rest_idx.size:
            rs, rl = self._score_rest(condensed, fit_labels)
            u_scores[self._rest_idx] = rs
            u_labels[self._rest_idx] = rl
        if not np.isfinite(u_scores).all():
            notes.append("non-finite GLOSH scores set to 1.0")
            u_scores = np.where(np.isfinite(u_scores), u_scores, 1.0)
        np.clip(u_scores, 0.0, 1.0, out=u_scores)
        scores[self.finite] = u_scores[self._inverse].astype(np.float32)
        labels[self.finite] = u_labels[self._inverse]
        return GloshResult(scores, labels, p_min, notes)

    def _score_rest(self, condensed: np.ndarray, fit_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """hdbscan's approximate_predict_scores for the non-fitted rows, vectorised."""
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
        row_of = np.empty(self.n_fit, dtype=np.int64)
        row_of[child[is_point]] = np.nonzero(is_point)[0]
        rows = row_of[self._rest_neighbor]
        cluster = parent[rows]
        lam_i = np.where(self._rest_exact, lam[rows], self._rest_lambda)
        max_l = deaths[cluster]
        with np.errstate(invalid="ignore", divide="ignore"):
            sc = np.where(max_l > 0, (max_l - lam_i) / max_l, 0.0)
        return sc, fit_labels[self._rest_neighbor]
