"""GloshScorer: cached hierarchy equals fresh hdbscan fits; duplicates, NaN rows, subsampling."""

import hdbscan
import numpy as np
import pytest
from hdbscan.prediction import approximate_predict_scores

from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.scoring import GloshScorer, minmax_scale


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
def test_cached_scores_equal_fresh_fit(blobs, scale):
    scorer = GloshScorer(blobs, min_samples=10, scale=scale)
    x = minmax_scale(blobs) if scale else blobs
    for p_min in (5, 25, 100, 300):
        res = scorer.score(p_min)
        fresh = hdbscan.HDBSCAN(min_cluster_size=p_min, min_samples=10).fit(x)
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


def test_subsample_matches_hdbscan_approximate_predict(blobs, monkeypatch):
    from napari_hsi_anomaly.core.scoring import glosh

    monkeypatch.setattr(glosh, "QUERY_CHUNK", 97)  # several neighbour-query chunks
    scorer = GloshScorer(blobs, min_samples=10, scale=False, max_fit=500, seed=3)
    assert scorer.subsampled and scorer.n_fit == 500
    fit_x = blobs[scorer._fit_idx]
    rest = blobs[scorer._rest_idx]
    for p_min in (40, 160):
        p_fit = scorer.fitted_p_min(p_min)  # p_min counts all points: shrunk to the subsample
        assert p_fit == round(p_min * 500 / scorer.n_unique)
        ref = hdbscan.HDBSCAN(min_cluster_size=p_fit, min_samples=10, prediction_data=True).fit(fit_x)
        res = scorer.score(p_min)
        np.testing.assert_allclose(res.scores[scorer._fit_idx], ref.outlier_scores_, atol=1e-6)
        expected = np.clip(approximate_predict_scores(ref, rest), 0, 1)
        np.testing.assert_allclose(res.scores[scorer._rest_idx], expected, atol=1e-6)
