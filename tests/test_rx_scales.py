"""Local RX at several window scales sees targets larger than its first guard window; classic RX is the
textbook formula, scale-invariant, and inverted only by a contaminated covariance."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors import get_detector, scorer_from_state
from napari_hsi_anomaly.core.detectors.rx_local import LADDER, window_scales
from napari_hsi_anomaly.core.scoring import detect


def _background(seed=0, bands=8, rows=60, cols=60):
    rng = np.random.default_rng(seed)
    ends = rng.normal(0.0, 1.0, (bands, 3))
    base = ends @ rng.random((3, rows * cols))
    return (base.reshape(bands, rows, cols) + rng.normal(0, 0.05, (bands, rows, cols))).astype(np.float32)


def _block_scene(side=12, seed=0):
    """One ``side`` x ``side`` square target of one spectrum (mean + 4 std per band)."""
    data = _background(seed)
    flat = data.reshape(data.shape[0], -1)
    recipe = flat.mean(1) + 4 * flat.std(1)
    gt = np.zeros(data.shape[1:], bool)
    gt[20:20 + side, 25:25 + side] = True
    data[:, gt] = recipe[:, None]
    return data, gt


def test_window_scales_follow_the_ladder_and_fit_the_reference():
    params = {"rx_inner": 7, "rx_outer": 25, "rx_scales": 4}
    assert window_scales(params, 200, 200) == [(7, 25), *LADDER]
    assert window_scales(params, 20, 200) == [(7, 25), (15, 41)]  # inner 25 and 41 do not fit 20 rows
    assert window_scales({**params, "rx_scales": 1}, 200, 200) == [(7, 25)]
    assert window_scales({**params, "rx_inner": 21, "rx_outer": 31}, 200, 200) == [(21, 31), *LADDER[1:]]


def test_a_target_larger_than_the_guard_window_stands_out_only_with_scales():
    data, gt = _block_scene(12)
    single = detect(data, "rx-local", rx_scales=1)
    multi = detect(data, "rx-local")
    assert roc_auc_score(gt.ravel(), single.score_map.ravel()) < 0.85  # 12 px > the 7 px guard window
    assert roc_auc_score(gt.ravel(), multi.score_map.ravel()) > 0.95
    assert multi.params["rx_scales"] == [[7, 25], *map(list, LADDER)]
    scale = multi.extras["rx_scale"]
    assert np.bincount(scale[gt].ravel()).argmax() > 0  # the target's pixels won at a larger scale
    # rx_distance stays the (rx_inner, rx_outer) distance (core.explain reads it)
    np.testing.assert_allclose(multi.extras["rx_distance"], single.extras["rx_distance"], rtol=1e-5)


def test_scales_and_their_normalisation_survive_state():
    data, _ = _block_scene(8, seed=1)
    scorer = get_detector("rx-local")().fit([Cube(data)])
    target = Cube(_block_scene(8, seed=2)[0])
    det = scorer.score(target)
    again = scorer_from_state(*scorer.state()).score(target)
    np.testing.assert_allclose(again.score_map, det.score_map, atol=1e-6)
    assert scorer.halo() == LADDER[-1][1] // 2


def test_classic_rx_is_the_same_on_a_rescaled_copy():
    """Numerically sound: the textbook RX ranks a [0, 1] copy and a uint16 copy as the original."""
    data, gt = _block_scene(3)
    data = data * 1000 + 500
    unit = (data - data.min()) / (data.max() - data.min())
    aucs = [roc_auc_score(gt.ravel(), detect(x, "rx-classic").score_map.ravel())
            for x in (data, unit, np.round(unit * 10000).astype(np.uint16))]
    assert aucs[0] > 0.95 and aucs == pytest.approx([aucs[0]] * 3, abs=2e-3)


def test_classic_rx_is_inverted_by_many_similar_targets_not_by_its_numerics():
    """5 % of the pixels of one spectrum enter the covariance: their direction gets a large variance, so
    their squared distance is capped near (1 - p) / p while a background pixel's is about the band count
    (the stress set's cause; rx.py). The same formula with a reference free of them ranks them on top."""
    rng = np.random.default_rng(3)
    bands, n = 40, 4000
    x = rng.normal(size=(n, bands)) * np.linspace(1.0, 0.02, bands)  # many low-variance directions
    clean = x.T.reshape(bands, 50, 80).astype(np.float32).copy()
    gt = np.zeros(n, bool)
    gt[rng.choice(n, int(0.05 * n), replace=False)] = True
    alpha = rng.uniform(0.7, 1.0, (int(gt.sum()), 1))
    x[gt] = alpha * (x.mean(0) + 4 * x.std(0)) + (1 - alpha) * x[gt]  # one recipe, mixed at 70-100 %
    data = x.T.reshape(bands, 50, 80).astype(np.float32)
    gt = gt.reshape(50, 80)
    own = roc_auc_score(gt.ravel(), detect(data, "rx-classic").score_map.ravel())
    scorer = get_detector("rx-classic")().fit([Cube(clean)])
    clean_ref = roc_auc_score(gt.ravel(), scorer.score(Cube(data)).score_map.ravel())
    assert own < 0.5 and clean_ref > 0.99
