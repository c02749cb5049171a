"""``GloshScorer``: fit HDBSCAN once, answer ``score(p_min)`` by condensing the cached tree again.

HDBSCAN's single-linkage tree depends on ``min_samples`` only; ``min_cluster_size`` (the thesis's
``p_min``) enters at the condensing step, so a new ``p_min`` takes about a millisecond instead of a refit.
Large inputs: at most ``max_fit`` rows are fitted (a deterministic random draw, exact duplicates among
them once); every other row is predicted (``prediction``) from its nearest mutual-reachability neighbour,
found once (``neighbours``).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from napari_hsi_anomaly.core.errors import HsiAnomalyError, ShapeError
from napari_hsi_anomaly.core.scoring.glosh import kernels
from napari_hsi_anomaly.core.scoring.glosh.hierarchy import Condensed, GloshResult
from napari_hsi_anomaly.core.scoring.glosh.mst import single_linkage_tree
from napari_hsi_anomaly.core.scoring.glosh.neighbours import (
    NeighbourSearch,
    column_range,
    finite_rows,
    neighbours,
)
from napari_hsi_anomaly.core.scoring.glosh.prediction import GloshPredictor, RowCache, predict_scores
from napari_hsi_anomaly.core.scoring.glosh.state import restore_scorer, scorer_state


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


# "numba": the exact minimum spanning tree (``mst``; no hdbscan import). "hdbscan": hdbscan's default fit
# (Boruvka with approx_min_span_tree; the maps of versions before ``mst``), 1.6 s of imports more.
TREE = "numba"


def fit_tree(search: NeighbourSearch, fit_x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """HDBSCAN's single-linkage tree of distinct rows ``fit_x`` for ``min_samples=k`` (the exact minimum
    spanning tree of the mutual reachability with core distances to the ``k + 1``-th nearest row, itself
    included, as hdbscan's fit) and each row's prediction core distance (to its ``k``-th nearest, as
    hdbscan's prediction data): one ``k + 1`` neighbour query serves both."""
    n = fit_x.shape[0]
    dist = search.query(fit_x, min(k + 1, n))[0]
    if TREE == "hdbscan":
        from napari_hsi_anomaly.core.scoring.glosh._hdbscan import single_linkage_tree as hdbscan_tree

        tree = hdbscan_tree(fit_x, k, algorithm="best")
    else:
        tree = single_linkage_tree(fit_x, dist[:, -1])
    return tree, dist[:, min(k, n) - 1].copy()


class GloshScorer:
    """Fit HDBSCAN once on ``values (N, D)``; ``score(p_min)`` re-condenses the cached tree.

    ``scale``: per-feature min-max scaling first (thesis), fixed by these rows (``transform``).
    Non-finite rows are left out and score 1.0. At most ``max_fit`` rows (a deterministic random draw) are
    fitted, exact duplicates among them once (duplicates make hdbscan return NaN); every other row gets
    hdbscan's ``approximate_predict_scores`` score against that hierarchy (nearest mutual-reachability
    neighbour cached once), an exact duplicate of a fitted row through distance 0. A group of identical
    rows at least ``p_min`` strong is a cluster of its own: it scores 0 (dense, not an outlier).
    ``predictor(values)`` scores new rows against this reference; ``state``/``from_state`` save it as
    plain arrays. ``n_jobs``: unused (the tree is built in numba, ``mst``; kept for callers).
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
        kernels.warm_up()  # JIT-compile (or load) the numba kernels now, not at the first p_min move

        self.finite = finite_rows(x)
        self._lo = np.zeros(self.dims)
        self._span = np.ones(self.dims)
        self._const = np.zeros(self.dims, dtype=bool)
        if self.scale:
            lo, hi = column_range(x, self.finite)
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
            self._tree, self._core = fit_tree(self._search(), self._fit_x, self._k)
            if self.n_drawn < self.n_finite:
                self._prepare_rest(x, drawn)

    def _init_caches(self) -> None:
        self._rest_rows: RowCache | None = None
        self._cache: OrderedDict[int, GloshResult] = OrderedDict()
        self._condensed: OrderedDict[int, Condensed] = OrderedDict()
        self._searcher: NeighbourSearch | None = None

    def _search(self) -> NeighbourSearch:
        if self._searcher is None:
            self._searcher = NeighbourSearch(self._fit_x)
        return self._searcher

    def _prepare_rest(self, x: np.ndarray, drawn: np.ndarray) -> None:
        """Cache each non-fitted finite row's nearest mutual-reachability neighbour and lambda."""
        mask = self.finite.copy()
        mask[drawn] = False
        self._rest = np.flatnonzero(mask)
        self._rest_nb, self._rest_lam, self._rest_exact, self._rest_same = self.neighbours(x, self._rest)
        same = self._rest_same[self._rest_same >= 0]
        self._counts += np.bincount(same, minlength=self.n_fit)

    def neighbours(self, x: np.ndarray, rows: np.ndarray | None):
        """Nearest mutual-reachability fitted neighbour, its lambda, distance-0 flag and equal fitted
        row (-1 none) of ``x[rows]`` (all rows if None; unscaled rows, as given to the scorer)."""
        return neighbours(self._search(), self._core, self._k, self.transform, x, rows)

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

    def condensed(self, p_min: int) -> tuple[Condensed | None, int, list[str]]:
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
            self._condensed[p] = Condensed(self._tree, p, self.n_fit)
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
                self._rest_rows = RowCache(self._rest_lam, self._rest_exact, self._rest_same)
            rest_scores, bad = predict_scores(cond, self._rest_nb, self._rest_rows, dense)
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

    def state(self, rows: bool = True) -> tuple[dict[str, np.ndarray], dict]:
        """Arrays (tree, fitted scaled rows, core distances, multiplicities, scaling; with ``rows`` also
        what ``score`` needs for the rows it was built with) and JSON-able meta (``glosh.state``)."""
        return scorer_state(self, rows)

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], meta: dict) -> GloshScorer:
        """A scorer restored from ``state()``: scores (with rows) and predicts as the original."""
        self = restore_scorer(cls.__new__(cls), arrays, meta)
        kernels.warm_up()
        return self

