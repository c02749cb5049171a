"""The sources' CAE methods as detectors: ``iforest-cae`` (CAE pixel features + scikit-learn's
IsolationForest) and ``ssim-recon`` (per-pixel SSIM of the reconstruction): a planted target found,
profiles round-trip without pickle, the SSIM formula itself."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors import get_detector, scorer_from_state


def _scene(seed=0):
    rng = np.random.default_rng(seed)
    data = rng.normal(1.0, 0.05, (6, 40, 40)).astype(np.float32)
    data += np.linspace(0, 0.2, 40, dtype=np.float32)[None, None, :]
    gt = np.zeros((40, 40), bool)
    for r, c, s in ((5, 9, 2), (25, 25, 4)):
        data[:, r:r + s, c:c + s] += 0.8 * rng.uniform(0.7, 1.0, (6, 1, 1)).astype(np.float32)
        gt[r:r + s, c:c + s] = True
    return data, gt


@pytest.fixture(scope="module")
def model():
    from napari_hsi_anomaly.core.model import TrainOptions, train

    opts = TrainOptions(epochs=1, optimizer="adam", crop=16, steps_per_epoch=4, batch_size=2,
                        val_fraction=0.0, threads=1)
    return train(Cube(_scene(1)[0]), "fast", opts)


@pytest.mark.parametrize(("name", "floor"), [("iforest-cae", 0.95), ("ssim-recon", 0.9)])
def test_finds_planted_targets_and_round_trips(name, floor, model):
    data, gt = _scene()
    scorer = get_detector(name)().fit([Cube(data)], model=model)
    det = scorer.score(Cube(data))
    assert roc_auc_score(gt.ravel(), det.score_map.ravel()) > floor
    arrays, meta = scorer.state()
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in arrays.values())
    again = scorer_from_state(arrays, meta, model=model).score(Cube(data))
    np.testing.assert_allclose(again.score_map, det.score_map, atol=1e-5)


def test_ssim_is_one_for_identical_images_and_drops_where_structure_is_lost():
    from napari_hsi_anomaly.core.detectors.ssim_recon import ssim_dissimilarity

    rng = np.random.default_rng(0)
    x = rng.random((2, 20, 20)).astype(np.float32)
    assert np.abs(ssim_dissimilarity(x, x, 5)).max() < 1e-5
    y = x.copy()
    y[:, 8:12, 8:12] = x[:, 8:12, 8:12].mean()  # the reconstruction loses a patch's texture
    d = ssim_dissimilarity(x, y, 5)
    assert d[:, 10, 10].min() > 0.1 and d[:, 1, 1].max() < 1e-5


def test_rotated_forest_is_deterministic_and_one_rotation_is_the_plain_forest():
    from sklearn.ensemble import IsolationForest

    from napari_hsi_anomaly.core.detectors.iforest_cae import grow_forest

    rng = np.random.default_rng(0)
    pts = rng.normal(size=(400, 5))
    a, b = grow_forest(pts, 80, 3, rotations=8), grow_forest(pts, 80, 3, rotations=8)
    np.testing.assert_array_equal(a.score_samples(pts), b.score_samples(pts))
    assert all(np.allclose(q.T @ q, np.eye(5)) for q in a.rotations) and len(a.forests) == 8
    plain = IsolationForest(n_estimators=80, max_samples=256, random_state=3, n_jobs=1).fit(pts)
    np.testing.assert_allclose(grow_forest(pts, 80, 3).score_samples(pts), plain.score_samples(pts))


def test_rotations_find_a_target_off_the_axes_better():
    """Points on a thin diagonal line; the outliers sit beside it, inside the axes' ranges: cuts along
    the axes barely see them, rotated forests do."""
    from napari_hsi_anomaly.core.detectors.iforest_cae import grow_forest

    rng = np.random.default_rng(1)
    t = rng.uniform(-3, 3, 2000)
    bg = np.c_[t, t] + rng.normal(0, 0.05, (2000, 2))
    out = np.c_[rng.uniform(-2, 2, 20), rng.uniform(-2, 2, 20)]
    out[:, 1] = -out[:, 0]
    pts, y = np.vstack([bg, out]), np.r_[np.zeros(2000), np.ones(20)]
    auc = {k: roc_auc_score(y, -grow_forest(pts, 320, 0, rotations=k).score_samples(pts)) for k in (1, 8)}
    assert auc[8] > auc[1]


def test_recon_trimming_keeps_a_numerous_target_far():
    """5 % of the reference share one residual offset: with the full covariance they whiten themselves
    close; the concentration steps leave them out of the statistics."""
    from napari_hsi_anomaly.core.detectors.recon import residual_distance, residual_stats

    rng = np.random.default_rng(0)
    res = rng.normal(0, 1, (8, 40, 50))
    res[:, :10, :10] += 3.0 * rng.normal(size=8)[:, None, None]  # 100 of 2000 px
    full = residual_distance(res, *residual_stats([res], keep=1.0))
    trimmed = residual_distance(res, *residual_stats([res]))
    inside = np.zeros((40, 50), bool)
    inside[:10, :10] = True
    assert np.median(trimmed[inside]) / np.median(trimmed[~inside]) > 1.25 * (
        np.median(full[inside]) / np.median(full[~inside]))


def test_ssim_profiles_saved_before_sigma_and_k1_keep_their_scores(model):
    from napari_hsi_anomaly.core.detectors.ssim_recon import SsimScorer

    data, _ = _scene()
    scorer = get_detector("ssim-recon")().fit([Cube(data)], model=model)
    arrays, meta = scorer.state()
    old = {**meta, "params": {k: v for k, v in meta["params"].items() if k != "ssim_sigma"}}
    old.pop("ssim_k1")
    loaded = SsimScorer._from_state(arrays, old, model=model)
    assert loaded.k1 == 0.01 and loaded.params["ssim_sigma"] == 0.0
    assert scorer.k1 == 0.05 and scorer.params["ssim_sigma"] == 0.5
