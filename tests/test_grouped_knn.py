"""The grouped k-nearest-neighbour search (``glosh.grouped``) gives exactly what one ``kdtree._query``
per row gives: the same distances (bit for bit), the same neighbours and the same order among equal
distances, so GLOSH's nearest mutual-reachability neighbours (and every score map) are unchanged."""

import numpy as np
import pytest
from numba_helpers import search_cache_runs

from napari_hsi_anomaly.core.scoring.glosh import grouped, neighbours
from napari_hsi_anomaly.core.scoring.glosh.kdtree import KDTree


def _both(fit: np.ndarray, q: np.ndarray, k: int, leaf: int = 8):
    tree = KDTree(fit, leaf=leaf)
    return tree.query(q, k, workers=2), grouped.query(tree, q, k, workers=2)


@pytest.mark.parametrize("dims", [1, 2, 5, 8, 12])
def test_grouped_equals_per_row_search(dims):
    rng = np.random.default_rng(dims)
    fit = np.vstack([rng.normal(0, 1, (1500, dims)), rng.uniform(-6, 6, (60, dims))])
    q = np.vstack([rng.normal(0, 1.2, (5000, dims)), fit[:40], rng.uniform(-9, 9, (30, dims))])
    for k in (1, 11, 20):
        (d0, i0), (d1, i1) = _both(fit, q, k)
        np.testing.assert_array_equal(d1, d0)
        np.testing.assert_array_equal(i1, i0)
    assert (d1[:, 0] == 0).sum() >= 40  # rows equal to a fitted row: found at distance 0


@pytest.mark.parametrize("dims", [2, 3, 5])
def test_grouped_keeps_the_tie_order_of_the_tree_walk(dims):
    """Integer rows (as the stress set's /int scenes): many exactly equal distances; the k kept and
    their order among equal distances are the per-row walk's."""
    rng = np.random.default_rng(10 + dims)
    fit = np.unique(rng.integers(0, 7, (1200, dims)), axis=0).astype(np.float64)
    rng.shuffle(fit)
    q = rng.integers(-1, 8, (6000, dims)).astype(np.float64)
    q[::3] += 0.5  # half-way rows: equal distances to both sides
    for k in (4, 11, 20):
        (d0, i0), (d1, i1) = _both(fit, q, k, leaf=4)
        assert (np.diff(d0, axis=1) == 0).any(axis=1).mean() > 0.5  # ties are the rule here
        np.testing.assert_array_equal(d1, d0)
        np.testing.assert_array_equal(i1, i0)


def test_spread_out_groups_fall_back_to_the_tree():
    """Rows far apart around a small dense fit: a group's bound takes in more than ``MAX_CAND`` fitted
    rows, so its rows are searched one by one; the result is the same."""
    rng = np.random.default_rng(3)
    fit = rng.normal(0, 1, (4 * grouped.MAX_CAND, 3))
    q = np.vstack([rng.uniform(-500, 500, (3000, 3)), rng.normal(0, 1, (3000, 3))])
    (d0, i0), (d1, i1) = _both(fit, q, 11, leaf=16)
    np.testing.assert_array_equal(d1, d0)
    np.testing.assert_array_equal(i1, i0)


def test_morton_order_is_a_permutation_grouping_near_rows():
    rng = np.random.default_rng(0)
    q = rng.uniform(0, 1, (20000, 4))
    order = grouped.morton_order(q)
    np.testing.assert_array_equal(np.sort(order), np.arange(len(q)))
    step = np.sqrt((np.diff(q[order], axis=0) ** 2).sum(axis=1))
    assert np.median(step) < 0.2 * np.median(np.sqrt((np.diff(q, axis=0) ** 2).sum(axis=1)))
    assert grouped.morton_order(np.zeros((5, 3))).tolist() == [0, 1, 2, 3, 4]  # no span: as given


@pytest.mark.parametrize("integer", [False, True])
def test_mr_neighbours_grouped_equals_per_row(integer, monkeypatch):
    """What approximate GLOSH prediction caches per row (nearest mutual-reachability neighbour, lambda,
    distance-0 flag and row) is the same through the grouped, fused search as through one query per
    row and ``_nearest_mr``."""
    rng = np.random.default_rng(7)
    if integer:
        fit = np.unique(rng.integers(0, 9, (3000, 4)), axis=0).astype(np.float64)
        q = rng.integers(0, 9, (9000, 4)).astype(np.float64)
    else:
        fit = np.vstack([rng.normal(0, 1, (2500, 5)), rng.uniform(-5, 5, (100, 5))])
        q = np.vstack([rng.normal(0, 1, (9000, 5)), fit[:50]])
    search = neighbours.NeighbourSearch(fit)
    core = search.query(fit, 10)[0][:, -1]
    assert search.grouped(len(q))
    got = neighbours.mr_neighbours(search, core, 10, q)
    monkeypatch.setattr(grouped, "MIN_ROWS", 1 << 62)
    assert not search.grouped(len(q))
    want = neighbours.mr_neighbours(search, core, 10, q)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    assert got[2].sum() >= (50 if not integer else 1)  # rows at distance 0 from a fitted row


def test_grouped_kernels_load_from_the_cache_in_a_second_process(tmp_path):
    first, second = search_cache_runs(5, "grouped", tmp_path / "numba-cache")
    assert first["grouped_query"][1] > 0 and first["morton_order"][1] > 0  # compiled the first time
    for name in ("grouped_query", "morton_order"):  # the second process loads them, compiles nothing
        assert second[name][0] >= 1 and second[name][1] == 0, second
