"""Approximate prediction: GLOSH scores of rows that were not fitted (hdbscan's
``approximate_predict_scores``), from each row's cached nearest mutual-reachability neighbour, so a new
``p_min`` is one gather per row on the cached condensed tree.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np

from napari_hsi_anomaly.core.errors import ShapeError
from napari_hsi_anomaly.core.scoring.glosh.hierarchy import Condensed, GloshResult
from napari_hsi_anomaly.core.scoring.glosh.neighbours import finite_rows

if TYPE_CHECKING:
    from napari_hsi_anomaly.core.scoring.glosh.scorer import GloshScorer


class RowCache:
    """Per predicted row, what a new ``p_min`` needs beyond the neighbour: lambda as float32, the rows
    at distance 0 from a fitted point and the rows equal to one (with that point)."""

    def __init__(self, lam: np.ndarray, exact: np.ndarray, same: np.ndarray) -> None:
        self.lam32 = np.minimum(lam, np.finfo(np.float32).max).astype(np.float32)
        self.exact = np.flatnonzero(exact)
        self.same = np.flatnonzero(same >= 0)
        self.same_fit = same[self.same]


def predict_scores(cond: Condensed, neighbor: np.ndarray, rows: RowCache, dense: np.ndarray
                   ) -> tuple[np.ndarray, bool]:
    """hdbscan's ``approximate_predict_scores`` from cached neighbours: float32 scores clipped to
    [0, 1] (rows equal to a ``dense`` fitted point: 0) and whether some were non-finite (set to 1).

    Per fitted point ``1 / max_lambda`` once, then one gather per row: ``1 - lambda / max_lambda``
    (a row at distance 0 from a fitted point takes that point's lambda, as hdbscan)."""
    # hdbscan scores every new point 1 when the condensed tree has no cluster (a p_min above every
    # split); here such rows are scored like the fitted ones, against the root (as before 0.8.44's
    # special case): otherwise a subsampled fit would give its predicted half 1 and its fitted half
    # real scores.
    max_l = cond.deaths[cond.pt_cluster]
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(max_l > 0, 1.0 / np.where(max_l > 0, max_l, 1.0), 0.0).astype(np.float32)
    out = (max_l > 0).astype(np.float32)[neighbor]
    out -= rows.lam32 * inv[neighbor]
    if rows.exact.size:
        nb = neighbor[rows.exact]
        ml = max_l[nb]
        with np.errstate(divide="ignore", invalid="ignore"):
            out[rows.exact] = np.where(ml > 0, (ml - cond.pt_lambda[nb]) / ml, 0.0)
    if rows.same.size and dense.any():
        out[rows.same[dense[rows.same_fit]]] = 0.0
    bad = not np.isfinite(out).all()
    if bad:
        out[~np.isfinite(out)] = 1.0
    return np.clip(out, 0.0, 1.0, out=out), bad


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
            self._nb, lam, exact, same = scorer.neighbours(x, self._rows)
            self._fast = RowCache(lam, exact, same)
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
            s, bad = predict_scores(cond, self._nb, self._fast, self.scorer.dense(p))
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
