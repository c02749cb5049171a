"""Nearest mutual-reachability neighbours of query rows among the fitted rows (hdbscan's
``_find_neighbor_and_lambda``, vectorised), the search behind approximate prediction.

A KD-tree up to ``KDTREE_MAX_DIMS`` features, brute-force float32 BLAS blocks refined in float64
above; queries in chunks of ``QUERY_CHUNK`` rows (bounded memory for millions of rows), or of
``GROUPED_CHUNK`` rows through the grouped search (``grouped.py``: up to ``grouped.MAX_DIMS`` features,
from ``grouped.MIN_ROWS`` rows; the same result, fused with ``_nearest_mr``) or, with more features up to
``KDTREE_MAX_DIMS``, the float32-screened one (``screened.py``; the same result).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numba
import numpy as np

from napari_hsi_anomaly.core.scoring.glosh import grouped, screened
from napari_hsi_anomaly.core.scoring.glosh.kdtree import KDTree

QUERY_CHUNK = 65_536  # rows per nearest-neighbour query chunk (bounded memory for millions of rows)
GROUPED_CHUNK = 1_048_576  # rows per chunk of the grouped search (denser chunks share more: faster per row)
KDTREE_MAX_DIMS = 16  # up to this many features a KD-tree finds neighbours; above, brute-force BLAS
BRUTE_BLOCK = 16_000_000  # float32 distances per brute-force block (64 MB)
QUERY_WORKERS = -1  # KD-tree query threads (threads, not processes): -1 = every core, unless limited


def query_workers() -> int:
    """KD-tree query threads: ``QUERY_WORKERS``, at most ``OMP_NUM_THREADS`` where that is set (dask sets
    it to 1 in single-threaded workers: two 2-thread queries on 2 cores oversubscribe them)."""
    limit = os.environ.get("OMP_NUM_THREADS", "").strip()
    if limit.isdigit() and int(limit) > 0:
        return int(limit) if QUERY_WORKERS < 0 else min(QUERY_WORKERS, int(limit))
    return QUERY_WORKERS


def _workers() -> int:
    workers = query_workers()
    return workers if workers > 0 else (os.cpu_count() or 1)


def finite_rows(x: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: rows with finite values in every column (one pass, no full-size temporary)."""
    if _fast_rows(x):
        return _finite_range(x, False)[0]
    out = np.empty(x.shape[0], dtype=bool)
    for a in range(0, x.shape[0], QUERY_CHUNK):
        out[a : a + QUERY_CHUNK] = np.isfinite(x[a : a + QUERY_CHUNK]).all(axis=1)
    return out


def column_range(x: np.ndarray, finite: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column min and max (float64) over the finite rows (inf, -inf where there is none)."""
    if _fast_rows(x):
        return _finite_range(x, True)[1:]
    lo = np.full(x.shape[1], np.inf)
    hi = np.full(x.shape[1], -np.inf)
    for a in range(0, x.shape[0], QUERY_CHUNK):
        block = x[a : a + QUERY_CHUNK][finite[a : a + QUERY_CHUNK]]
        if block.shape[0]:
            lo = np.minimum(lo, block.min(axis=0).astype(np.float64))
            hi = np.maximum(hi, block.max(axis=0).astype(np.float64))
    return lo, hi


def _fast_rows(x: np.ndarray) -> bool:
    return x.ndim == 2 and x.dtype in (np.float32, np.float64) and x.flags.c_contiguous


@numba.njit(cache=True, nogil=True)
def _finite_range(x, with_range):  # pragma: no cover - compiled
    """Rows finite in every column and (``with_range``) each column's min and max over those rows."""
    n, d = x.shape
    finite = np.empty(n, np.bool_)
    lo = np.full(d, np.inf)
    hi = np.full(d, -np.inf)
    for r in range(n):
        ok = True
        for c in range(d):
            if not np.isfinite(x[r, c]):
                ok = False
                break
        finite[r] = ok
        if ok and with_range:
            for c in range(d):
                v = np.float64(x[r, c])
                if v < lo[c]:
                    lo[c] = v
                if v > hi[c]:
                    hi[c] = v
    return finite, lo, hi


class NeighbourSearch:
    """The ``k`` nearest fitted rows of query rows, exact float64 distances in ascending order.

    Few dimensions (<= ``KDTREE_MAX_DIMS``): the numba ``kdtree.KDTree`` (threads; the same neighbours
    and distances as scipy's cKDTree, faster; with the k+1 shortcut below a KD-tree beats brute force up
    to about 16 dimensions, benchmarks/results/bench_glosh.md); from ``screened.MIN_DIMS`` features and
    ``grouped.MIN_ROWS`` query rows on, ``screened.Screened`` walks the same tree with a float32 screen
    (the same result; benchmarks/results/bench_cae_speed.md). More: brute-force float32 BLAS distances
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
            self.tree = KDTree(self.fit_x)
        d = fit_x.shape[1]
        self._screen: screened.Screened | None = None
        if not self.brute and d > grouped.MAX_DIMS and d >= screened.MIN_DIMS and (
                self.fit_x.shape[0] == 0 or np.abs(self.fit_x).max() <= screened.LIMIT):
            self._screen = screened.Screened(self.tree, workers=_workers())

    def grouped(self, n: int) -> bool:
        """Whether ``n`` query rows go through the grouped KD-tree search (``glosh.grouped``) or, with
        more features, the float32-screened one (``glosh.screened``): ``nearest_mr`` serves them."""
        if self.brute or n < grouped.MIN_ROWS:
            return False
        return self.fit_x.shape[1] <= grouped.MAX_DIMS or self._screen is not None

    def _screens(self, q: np.ndarray) -> bool:
        return self._screen is not None and (q.size == 0 or np.abs(q).max() <= screened.LIMIT)

    def nearest_mr(self, q: np.ndarray, k: int, core: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """From each row's ``k`` nearest fitted rows (grouped search): ``_nearest_mr``'s value and
        neighbour, the ``k``-th distance and the fitted row at distance 0 (-1 if none)."""
        q = np.ascontiguousarray(q, dtype=np.float64)
        n = q.shape[0]
        mr, own = np.empty(n), np.empty(n)
        nb, same = np.empty(n, np.int64), np.empty(n, np.int64)
        none = np.zeros((0, k))
        args = (q, min(k, self.tree.n), _workers(), np.asarray(core, np.float64), none,
                none.astype(np.int64), mr, nb, own, same)
        if self.fit_x.shape[1] <= grouped.MAX_DIMS:
            grouped.run(self.tree, *args)
        elif self._screens(q):
            self._screen.run(*args)  # type: ignore[union-attr]
        else:  # values too large for float32: one tree search per row
            dist, ind = self.tree.query(q, k, _workers())
            own[:] = dist[:, -1]
            mr[:], nb[:] = _nearest_mr(dist, ind, np.asarray(core, np.float64), own)
            same[:] = np.where(dist[:, 0] == 0, ind[:, 0], -1)
        return mr, nb, own, same

    def query(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if not self.brute:
            if q.shape[0] >= grouped.MIN_ROWS and self._screens(q):
                q = np.ascontiguousarray(q, dtype=np.float64)
                k = int(min(k, self.tree.n))
                dist, ind = np.empty((q.shape[0], k)), np.empty((q.shape[0], k), np.int64)
                none, nonei = np.zeros(0), np.zeros(0, np.int64)
                self._screen.run(q, k, _workers(), none, dist, ind, none, nonei, none, nonei)  # type: ignore
                return dist, ind
            return self.tree.query(q, k, _workers())
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


def mr_neighbours(search: NeighbourSearch, core: np.ndarray, k: int,
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
    if search.grouped(q.shape[0]):  # the same values, fused: no (rows, k + 1) arrays
        best, nb, own, same = search.nearest_mr(q, k1, core)
        exact = same >= 0
    else:
        dist, ind = search.query(q, k1)
        own = dist[:, k1 - 1]
        best, nb = _nearest_mr(dist, ind, core, own)
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


@numba.njit(cache=True, nogil=True)
def _nearest_mr(dist, ind, core, own):  # pragma: no cover - compiled
    """Per row: ``min_j max(core[ind_j], own)`` and its neighbour (the first minimum, as argmin)."""
    n, m = ind.shape
    best = np.empty(n)
    nb = np.empty(n, np.int64)
    for r in range(n):
        bv = np.inf
        bj = 0
        for j in range(m):
            v = max(core[ind[r, j]], own[r])
            if v < bv:
                bv = v
                bj = j
        best[r] = bv
        nb[r] = ind[r, bj]
    return best, nb


def neighbours(search: NeighbourSearch, core: np.ndarray, k: int,
               transform: Callable[[np.ndarray], np.ndarray], x: np.ndarray, rows: np.ndarray | None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``mr_neighbours`` of ``transform(x[rows])`` (all rows if None), in chunks (bounded memory)."""
    n = x.shape[0] if rows is None else rows.size
    nb, same = np.empty(n, np.int64), np.empty(n, np.int64)
    lam, exact = np.empty(n), np.empty(n, bool)
    step = GROUPED_CHUNK if search.grouped(n) else QUERY_CHUNK
    for a in range(0, n, step):
        sl = slice(a, min(n, a + step))
        q = transform(x[sl] if rows is None else x[rows[sl]])
        nb[sl], lam[sl], exact[sl], same[sl] = mr_neighbours(search, core, k, q)
    return nb, lam, exact, same
