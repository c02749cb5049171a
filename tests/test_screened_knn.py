"""The float32-screened k-nearest-neighbour search (``glosh.screened``, 9+ features: the CAE's 12) gives
exactly what one ``kdtree._query`` per row gives: the same float64 distances (bit for bit), neighbours
and order among equal distances, so the CAE's GLOSH maps are unchanged."""


import numpy as np
import pytest
from numba_helpers import search_cache_runs

from napari_hsi_anomaly.core.scoring.glosh import neighbours, screened
from napari_hsi_anomaly.core.scoring.glosh.kdtree import KDTree


def _both(fit: np.ndarray, q: np.ndarray, k: int, leaf: int = 8, block: int = 64):
    tree = KDTree(fit, leaf=leaf)
    want = tree.query(q, k, workers=2)
    s = screened.Screened(tree, block)
    dist, ind = np.empty((len(q), k)), np.empty((len(q), k), np.int64)
    none, nonei = np.zeros(0), np.zeros(0, np.int64)
    s.run(np.ascontiguousarray(q, dtype=np.float64), k, 2, none, dist, ind, none, nonei, none, nonei)
    return want, (dist, ind)


@pytest.mark.parametrize("dims", [9, 12, 16])
def test_screened_equals_per_row_search(dims):
    rng = np.random.default_rng(dims)
    fit = np.vstack([rng.normal(0, 1, (1500, dims)), rng.uniform(-6, 6, (60, dims))])
    fit[:, -1] *= 40.0  # one wide feature (the CAE's reconstruction error)
    q = np.vstack([rng.normal(0, 1.2, (3000, dims)), rng.uniform(-9, 9, (30, dims))])
    q[:, -1] *= 40.0
    q = np.vstack([q, fit[:40]])
    for k in (1, 11, 20):
        (d0, i0), (d1, i1) = _both(fit, q, k)
        np.testing.assert_array_equal(d1, d0)
        np.testing.assert_array_equal(i1, i0)
    assert (d1[:, 0] == 0).sum() >= 40  # rows equal to a fitted row: found at distance 0


def test_screened_keeps_the_tie_order_of_the_tree_walk():
    """Integer rows: many exactly equal float64 distances (and float32 ones); the k kept and their
    order among equal distances are the per-row walk's."""
    rng = np.random.default_rng(4)
    fit = np.unique(rng.integers(0, 3, (2500, 10)), axis=0).astype(np.float64)
    rng.shuffle(fit)
    q = rng.integers(-1, 4, (3000, 10)).astype(np.float64)
    q[::3] += 0.5
    for k in (4, 11, 20):
        (d0, i0), (d1, i1) = _both(fit, q, k, leaf=4, block=32)
        assert (np.diff(d0, axis=1) == 0).any(axis=1).mean() > 0.5  # ties are the rule here
        np.testing.assert_array_equal(d1, d0)
        np.testing.assert_array_equal(i1, i0)


def test_screened_bound_holds_for_large_offsets_and_tiny_scales():
    """Far from the origin (float32 keeps ~7 digits of 1e4) and at 1e-12 the float32 screen's error
    bound still keeps every true neighbour."""
    rng = np.random.default_rng(5)
    base = rng.normal(0, 1, (1200, 12))
    q0 = rng.normal(0, 1, (2000, 12))
    for offset, scale in ((1e4, 1.0), (0.0, 1e-12), (-3e5, 50.0)):
        (d0, i0), (d1, i1) = _both(base * scale + offset, q0 * scale + offset, 11)
        np.testing.assert_array_equal(d1, d0)
        np.testing.assert_array_equal(i1, i0)


@pytest.mark.parametrize("huge", [False, True])
def test_mr_neighbours_screened_equals_per_row(huge, monkeypatch):
    """What approximate GLOSH prediction caches per row is the same through the screened search as
    through one query per row and ``_nearest_mr`` (values beyond float32: the per-row search)."""
    rng = np.random.default_rng(7)
    fit = np.vstack([rng.normal(0, 1, (2500, 12)), rng.uniform(-5, 5, (100, 12))])
    q = np.vstack([rng.normal(0, 1, (6000, 12)), fit[:50]])
    if huge:
        q[5] = 1e30
    search = neighbours.NeighbourSearch(fit)
    assert search._screen is not None
    core = search.query(fit, 10)[0][:, -1]
    assert search.grouped(len(q))
    got = neighbours.mr_neighbours(search, core, 10, q)
    monkeypatch.setattr(neighbours.grouped, "MIN_ROWS", 1 << 62)
    assert not search.grouped(len(q))
    want = neighbours.mr_neighbours(search, core, 10, q)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    assert got[2].sum() >= 50  # rows at distance 0 from a fitted row


def test_screened_kernel_loads_from_the_cache_in_a_second_process(tmp_path):
    first, second = search_cache_runs(12, "screened", tmp_path / "numba-cache")
    assert first["screened_query"][1] > 0  # compiled the first time
    assert second["screened_query"][0] >= 1 and second["screened_query"][1] == 0, second
