"""GloshScorer: cached hierarchy equals fresh hdbscan fits; duplicates, NaN rows, subsampling."""

import json

import hdbscan
import numpy as np
import pytest
from hdbscan._hdbscan_tree import compute_stability, condense_tree, get_clusters, outlier_scores
from hdbscan.prediction import approximate_predict_scores

from napari_hsi_anomaly.core.errors import HsiAnomalyError, ShapeError
from napari_hsi_anomaly.core.scoring import GloshScorer, minmax_scale
from napari_hsi_anomaly.core.scoring.glosh import kernels, neighbours
from napari_hsi_anomaly.core.scoring.glosh import scorer as scorer_mod
from napari_hsi_anomaly.core.scoring.glosh._hdbscan import CythonCondensed
from napari_hsi_anomaly.core.scoring.glosh.hierarchy import Condensed


def _hdb(**kwargs) -> hdbscan.HDBSCAN:
    """The oracle: hdbscan with its exact minimum spanning tree (Prim's), the tree ``glosh.mst`` builds
    (hdbscan's default Boruvka accepts an approximate one)."""
    return hdbscan.HDBSCAN(algorithm="prims_kdtree", **kwargs)


def test_numba_tree_equals_hdbscan_prims_tree():
    """``mst`` gives hdbscan's Prim's single-linkage tree bit for bit (ties included), which is an
    exact minimum spanning tree (its total weight is scipy's), unlike the Boruvka default's."""
    from scipy.sparse.csgraph import minimum_spanning_tree
    from scipy.spatial.distance import cdist

    from napari_hsi_anomaly.core.scoring.glosh.neighbours import NeighbourSearch

    rng = np.random.default_rng(3)
    x = np.unique(np.vstack([rng.normal(0, 1, (500, 5)), rng.normal(4, 0.3, (300, 5)),
                             rng.integers(0, 4, (200, 5)).astype(float)]), axis=0)  # grid: ties
    for k in (1, 5, 10):
        tree, core = scorer_mod.fit_tree(NeighbourSearch(x), x, k)
        ref = np.asarray(_hdb(min_cluster_size=5, min_samples=k).fit(x)._single_linkage_tree)
        np.testing.assert_array_equal(tree, ref)
        np.testing.assert_allclose(core, NeighbourSearch(x).query(x, k)[0][:, -1])
        core1 = NeighbourSearch(x).query(x, k + 1)[0][:, -1]
        mr = np.maximum(cdist(x, x), np.maximum.outer(core1, core1))
        np.testing.assert_allclose(tree[:, 2].sum(), minimum_spanning_tree(mr).sum(), rtol=1e-12)


@pytest.fixture(params=["numba", "cython"])
def backend(request, monkeypatch) -> str:
    """Run a test on the numba kernels and on hdbscan's Cython functions as the oracle
    (``_hdbscan.CythonCondensed`` in place of ``hierarchy.Condensed``)."""
    if request.param == "cython":
        monkeypatch.setattr(scorer_mod, "Condensed", CythonCondensed)

        def fail(*args):
            raise AssertionError("numba kernel called on the Cython path")

        for name in ("condense", "glosh", "labels"):
            monkeypatch.setattr(kernels, name, fail)
    else:
        assert scorer_mod.Condensed is Condensed
    return request.param


def _datasets() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    blobs3 = np.vstack([rng.normal(0, 1, (400, 3)), rng.normal(6, 0.5, (300, 3)),
                        rng.normal((0, 8, 0), 2, (200, 3)), rng.uniform(-10, 15, (30, 3))])
    uniform = rng.uniform(0, 1, (700, 5))
    base = rng.normal(0, 1, (500, 4))
    dups = np.vstack([base, base[rng.integers(0, 500, 200)], np.repeat(base[:1], 25, axis=0)])
    return {"blobs": blobs3, "uniform": uniform, "duplicates": rng.permutation(dups)}


@pytest.fixture(scope="module")
def blobs() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.vstack([
        rng.normal(0, 1, (600, 4)),
        rng.normal(5, 1, (500, 4)),
        rng.uniform(-8, 12, (40, 4)),
    ])


def test_minmax_scale_per_feature():
    x = np.array([[0.0, 5, 1], [2, 7, 1], [4, 6, 1]])
    s = minmax_scale(x)
    np.testing.assert_allclose(s[:, 0], [0, 0.5, 1])
    np.testing.assert_allclose(s[:, 1], [0, 1, 0.5])
    assert (s[:, 2] == 0).all()


@pytest.mark.parametrize("scale", [False, True])
def test_cached_scores_equal_fresh_fit(blobs, scale, backend):
    scorer = GloshScorer(blobs, min_samples=10, scale=scale)
    x = minmax_scale(blobs) if scale else blobs
    for p_min in (5, 25, 100, 300):
        res = scorer.score(p_min)
        fresh = _hdb(min_cluster_size=p_min, min_samples=10).fit(x)
        np.testing.assert_allclose(res.scores, fresh.outlier_scores_, atol=1e-6)
        np.testing.assert_array_equal(res.labels, fresh.labels_)
        assert res.scores.dtype == np.float32


def test_cache_returns_same_object(blobs):
    scorer = GloshScorer(blobs, min_samples=5)
    assert scorer.score(50) is scorer.score(50)


def test_duplicates_and_nan_rows_give_finite_scores(blobs):
    x = np.vstack([blobs, np.repeat(blobs[:1], 30, axis=0), np.full((3, 4), np.nan)])
    x[5, 2] = np.inf
    res = GloshScorer(x, min_samples=10).score(50)
    assert np.isfinite(res.scores).all()
    assert (res.scores >= 0).all() and (res.scores <= 1).all()
    assert (res.scores[-3:] == 1.0).all() and res.scores[5] == 1.0
    assert (res.labels[-3:] == -1).all()
    dup = res.scores[len(blobs):len(blobs) + 30]
    assert (dup == res.scores[0]).all()


def test_bad_parameters_raise_clear_errors(blobs):
    with pytest.raises(HsiAnomalyError, match="min_samples"):
        GloshScorer(blobs, min_samples=0)
    with pytest.raises(HsiAnomalyError, match="at least 2"):
        GloshScorer(blobs, min_samples=5).score(1)


def test_p_min_larger_than_points_is_clamped():
    x = np.random.default_rng(1).normal(size=(40, 3))
    res = GloshScorer(x, min_samples=5).score(1000)
    assert res.warnings and "clamped" in res.warnings[0]
    assert np.isfinite(res.scores).all()


def test_outlier_scores_higher_than_inliers(blobs):
    res = GloshScorer(blobs, min_samples=10).score(50)
    assert res.scores[-40:].mean() > res.scores[:1100].mean() + 0.2


def test_subsample_matches_hdbscan_approximate_predict(blobs, monkeypatch, backend):
    monkeypatch.setattr(neighbours, "QUERY_CHUNK", 97)  # several neighbour-query chunks
    scorer = GloshScorer(blobs, min_samples=10, scale=False, max_fit=500, seed=3)
    assert scorer.subsampled and scorer.n_fit == 500
    fit_x = blobs[scorer._fit_rows]
    rest = blobs[scorer._rest]
    for p_min in (40, 160):
        p_fit = scorer.fitted_p_min(p_min)  # p_min counts all points: shrunk to the subsample
        assert p_fit == round(p_min * 500 / len(blobs))
        ref = _hdb(min_cluster_size=p_fit, min_samples=10, prediction_data=True).fit(fit_x)
        res = scorer.score(p_min)
        np.testing.assert_allclose(res.scores[scorer._fit_rows], ref.outlier_scores_, atol=1e-6)
        expected = np.clip(approximate_predict_scores(ref, rest), 0, 1)
        np.testing.assert_allclose(res.scores[scorer._rest], expected, atol=1e-6)


def _reference_rows(dims: int, n: int = 3000, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-6, 6, (4, dims))
    ref = np.vstack([centres[rng.integers(0, 4, n)] + rng.normal(0, 1, (n, dims)),
                     rng.uniform(-10, 10, (n // 50, dims))])
    new = np.vstack([centres[rng.integers(0, 4, n)] + rng.normal(0, 1.3, (n, dims)),
                     rng.uniform(-12, 12, (n // 20, dims)), ref[:25]])  # 25 exact copies of fitted rows
    return ref, new


@pytest.mark.parametrize("dims", [5, 24])  # KD-tree path and brute-force BLAS path
def test_predictor_equals_hdbscan_approximate_predict_scores(dims, monkeypatch, backend):
    monkeypatch.setattr(neighbours, "QUERY_CHUNK", 1000)
    monkeypatch.setattr(neighbours, "BRUTE_BLOCK", 300_000)  # several brute-force blocks per chunk
    ref, new = _reference_rows(dims)
    scorer = GloshScorer(ref, min_samples=10, scale=True)
    pred = scorer.predictor(new)
    x_ref, x_new = scorer.transform(ref), scorer.transform(new)
    np.testing.assert_array_equal(x_ref, minmax_scale(ref))
    for p_min in (30, 120):
        fitted = _hdb(min_cluster_size=p_min, min_samples=10, prediction_data=True).fit(x_ref)
        expected = np.clip(approximate_predict_scores(fitted, x_new), 0, 1)
        got = pred.score(p_min)
        assert got.scores.dtype == np.float32 and got.scores.shape == (len(new),)
        np.testing.assert_allclose(got.scores, expected, atol=1e-6)
        assert pred.score(p_min) is got
        assert len(scorer._condensed) >= 1  # the predictor condenses through the reference's cache


def test_predictor_non_finite_rows_and_shape(blobs):
    scorer = GloshScorer(blobs, min_samples=10)
    new = np.vstack([blobs[:5], np.full((2, 4), np.nan)])
    res = scorer.predictor(new).score(50)
    assert (res.scores[-2:] == 1.0).all() and res.labels.shape == (7,)
    np.testing.assert_allclose(res.scores[:5], scorer.score(50).scores[:5], atol=1e-6)
    with pytest.raises(ShapeError, match="4 features"):
        scorer.predictor(blobs[:, :3])


@pytest.mark.parametrize("max_fit", [20000, 700])
def test_state_round_trip_scores_and_predicts_identically(blobs, max_fit):
    x = np.vstack([blobs, np.full((3, 4), np.nan), np.repeat(blobs[:1], 40, axis=0)])
    scorer = GloshScorer(x, min_samples=10, max_fit=max_fit)
    arrays, meta = scorer.state()
    json.loads(json.dumps(meta))
    assert all(isinstance(a, np.ndarray) and a.dtype != object for a in arrays.values())
    restored = GloshScorer.from_state({k: v.copy() for k, v in arrays.items()}, meta)
    new = np.random.default_rng(5).normal(2, 3, (300, 4))
    for p_min in (20, 100):
        np.testing.assert_array_equal(restored.score(p_min).scores, scorer.score(p_min).scores)
        np.testing.assert_array_equal(restored.score(p_min).labels, scorer.score(p_min).labels)
        np.testing.assert_array_equal(restored.predictor(new).score(p_min).scores,
                                      scorer.predictor(new).score(p_min).scores)
    small, small_meta = scorer.state(rows=False)
    assert "rest_nb" not in small and not small_meta["rows"]
    bare = GloshScorer.from_state(small, small_meta)
    np.testing.assert_array_equal(bare.predictor(new).score(20).scores,
                                  scorer.predictor(new).score(20).scores)
    with pytest.raises(HsiAnomalyError, match="predictor"):
        bare.score(20)
    with pytest.raises(HsiAnomalyError, match="damaged"):
        GloshScorer.from_state({k: v for k, v in arrays.items() if k != "core"}, meta)
    with pytest.raises(HsiAnomalyError, match="newer"):
        GloshScorer.from_state(arrays, {**meta, "format": 99})


def test_p_min_above_every_split_scores_predicted_rows_like_fitted_ones(blobs):
    # hdbscan would score every predicted point 1 when the tree has no cluster left
    x = np.vstack([blobs, np.repeat(blobs[:1], 600, axis=0)])
    scorer = GloshScorer(x, min_samples=10, max_fit=500)
    res = scorer.score(1500)
    rest, fit = res.scores[scorer._rest], res.scores[scorer._fit_rows]
    assert abs(np.median(rest) - np.median(fit)) < 0.15 and np.median(rest) < 0.9
    assert (res.scores[len(blobs):] == 0).all()  # the 600 identical rows stay one dense group


def test_large_group_of_identical_rows_is_dense_not_outlier(blobs):
    # a uniform area (e.g. 90 % identical pixels) is a cluster of its own, not an outlier (issue 10)
    fill = np.repeat(np.array([[20.0, 20, 20, 20]]), 9000, axis=0)
    x = np.vstack([blobs, fill])
    for max_fit in (20000, 2000):
        res = GloshScorer(x, min_samples=10, max_fit=max_fit).score(100)
        assert (res.scores[len(blobs):] == 0).all()
        assert res.scores[len(blobs) - 40:len(blobs)].mean() > res.scores[:1100].mean() + 0.2
    # a small group of identical rows (fewer than p_min) far away stays an outlier
    small = np.vstack([blobs, np.repeat(np.array([[20.0, 20, 20, 20]]), 30, axis=0)])
    res = GloshScorer(small, min_samples=10).score(100)
    assert (res.scores[len(blobs):] > 0.5).all()


@pytest.mark.parametrize("name", ["blobs", "uniform", "duplicates"])
def test_scores_and_labels_equal_fresh_fit_on_datasets(name, backend):
    x = _datasets()[name]
    # duplicates are fitted once (first occurrence order) and share their row's score and label;
    # a row repeated at least p_min times is a cluster by itself and scores 0
    _, first, inverse, counts = np.unique(x, axis=0, return_index=True, return_inverse=True,
                                          return_counts=True)
    keep = np.sort(first)
    rank = np.empty(x.shape[0], dtype=np.int64)
    rank[keep] = np.arange(keep.size)
    row = rank[first[inverse.reshape(-1)]]
    mult = counts[inverse.reshape(-1)]
    scorer = GloshScorer(x, min_samples=8, scale=False)
    for p_min in (2, 5, 15, 60, 200):
        res = scorer.score(p_min)
        fresh = _hdb(min_cluster_size=p_min, min_samples=8).fit(x[keep])
        expected = np.nan_to_num(fresh.outlier_scores_, nan=1.0)[row]
        expected[(mult >= p_min) & (mult > 1)] = 0.0
        np.testing.assert_allclose(res.scores, expected, atol=1e-6)
        np.testing.assert_array_equal(res.labels, fresh.labels_[row])


def test_numba_kernels_equal_hdbscan_cython():
    x = _datasets()["blobs"]
    tree = np.asarray(hdbscan.HDBSCAN(min_cluster_size=5, min_samples=5).fit(x)._single_linkage_tree,
                      dtype=np.float64)
    for p_min in (2, 10, 50, 400):
        ref = condense_tree(tree, p_min)
        parent, child, lam, size = kernels.condense(tree, np.int64(p_min))
        for field, ours in (("parent", parent), ("child", child), ("lambda_val", lam), ("child_size", size)):
            np.testing.assert_array_equal(ours, ref[field])  # same rows in the same order
        scores, _, pt_cluster, _ = kernels.glosh(parent, child, lam, np.int64(len(x)))
        np.testing.assert_array_equal(scores, outlier_scores(ref))
        labels = kernels.labels(parent, child, lam, size, pt_cluster)
        expected = get_clusters(ref, compute_stability(ref), "eom", False, False, 0.0, 0)[0]
        np.testing.assert_array_equal(labels, expected)


def test_glosh_infinite_lambda_scores_zero_like_hdbscan():
    # a zero merge distance gives lambda = inf: hdbscan scores such points 0 (and its cluster's
    # death becomes inf, so finite points there get NaN, which the scorer maps to 1.0)
    tree = np.array([[0, 1, 0.0, 2], [2, 3, 0.5, 2], [4, 5, 1.0, 4], [6, 7, 2.0, 5]], dtype=np.float64)
    for p_min in (2, 3):
        ref = condense_tree(tree, p_min)
        parent, child, lam, size = kernels.condense(tree, np.int64(p_min))
        np.testing.assert_array_equal(lam, ref["lambda_val"])
        scores = kernels.glosh(parent, child, lam, np.int64(5))[0]
        np.testing.assert_array_equal(scores, outlier_scores(ref))


def test_labels_are_computed_on_first_access_only(blobs, backend):
    scorer = GloshScorer(blobs, min_samples=10, max_fit=500)  # subsampled: rest rows get labels too
    res = scorer.score(50)
    assert not res.labels_computed  # the p_min slider needs the scores only
    first = res.labels
    assert res.labels_computed and res.labels is first
    assert first.shape == (len(blobs),) and first.max() >= 1


def test_warm_up_compiles_kernels_at_construction(blobs):
    GloshScorer(blobs[:50], min_samples=5)
    assert kernels._WARM


@pytest.mark.parametrize("dims", [1, 3, 5, 12])
def test_numba_kdtree_equals_scipy_ckdtree(dims):
    from scipy.spatial import cKDTree

    from napari_hsi_anomaly.core.scoring.glosh.kdtree import KDTree

    rng = np.random.default_rng(dims)
    fit = np.vstack([rng.normal(0, 1, (1500, dims)), rng.uniform(-6, 6, (60, dims))])
    q = np.vstack([rng.normal(0, 1.5, (3000, dims)), fit[:40]])  # 40 rows at distance 0
    for k in (1, 11, 20):
        d, i = KDTree(fit, leaf=8).query(q, k, workers=2)
        d0, i0 = cKDTree(fit).query(q, k=k)
        np.testing.assert_array_equal(d, d0.reshape(len(q), k))
        np.testing.assert_array_equal(i, i0.reshape(len(q), k))
    tiny = fit[:3]
    d, i = KDTree(tiny).query(q[:5], 3)
    np.testing.assert_array_equal(i, cKDTree(tiny).query(q[:5], k=3)[1])


def test_hdbscan_tree_switch_gives_hdbscans_default_fit(blobs, monkeypatch):
    """``scorer.TREE = "hdbscan"``: the scores of hdbscan's default (Boruvka) fit, as before ``mst``."""
    monkeypatch.setattr(scorer_mod, "TREE", "hdbscan")
    res = GloshScorer(blobs, min_samples=10, scale=False).score(25)
    fresh = hdbscan.HDBSCAN(min_cluster_size=25, min_samples=10).fit(blobs)
    np.testing.assert_allclose(res.scores, fresh.outlier_scores_, atol=1e-6)


def test_label_equals_hdbscans():
    """``mst.label`` (used by the feedback refit too) equals hdbscan's on sorted edges with ties."""
    from napari_hsi_anomaly.core.scoring.glosh._hdbscan import label as hdbscan_label
    from napari_hsi_anomaly.core.scoring.glosh.mst import label

    rng = np.random.default_rng(4)
    n = 300
    parent = np.array([rng.integers(0, i) for i in range(1, n)])  # a random spanning tree
    edges = np.c_[np.arange(1, n), parent, rng.integers(0, 20, n - 1)].astype(np.float64)  # tied heights
    edges = edges[np.argsort(edges[:, 2], kind="stable")]
    np.testing.assert_array_equal(label(edges), np.asarray(hdbscan_label(edges), np.float64))
