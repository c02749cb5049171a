"""Calibrated scores: t_anom 0.7 flags about as many pixels as are anomalous, rankings unchanged, the
reference sets the scale, a live p_min keeps the meaning, the calibration survives state()."""

import numpy as np
import pytest
from scipy.stats import spearmanr

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors import get_detector, scorer_from_state
from napari_hsi_anomaly.core.scoring import detect


def _scene(seed=0, fraction=0.015, rows=80, cols=80, bands=8):
    """A smooth background with ``fraction`` of the pixels replaced by distinct strong spectra
    (the thesis recipe per pixel: mean + std * c, c ~ U[3, 5) per band)."""
    endmembers = np.random.default_rng(99).normal(0.0, 1.0, (bands, 4))  # the same in every scene
    rng = np.random.default_rng(seed)
    base = endmembers @ rng.random((4, rows * cols))  # mixtures of 4 endmembers
    base = base.reshape(bands, rows, cols).astype(np.float32) + rng.normal(0, 0.05, (bands, rows, cols))
    flat = base.reshape(bands, -1)
    gt = np.zeros(rows * cols, bool)
    idx = rng.choice(rows * cols, int(round(fraction * rows * cols)), replace=False)
    gt[idx] = True
    mean, std = flat.mean(1, keepdims=True), flat.std(1, keepdims=True)
    flat[:, idx] = mean + std * rng.uniform(3, 5, (bands, idx.size)) * rng.choice([-1, 1], (bands, 1))
    return base.astype(np.float32), gt.reshape(rows, cols)


@pytest.mark.parametrize("method", ["rx", "rx-local", "glosh-spectral", "spectral-rx"])
def test_flagged_fraction_near_planted_fraction(method):
    """1.5 % planted (the development scenes hold 0.1-2.3 %, 1.2 % on average)."""
    data, gt = _scene()
    det = detect(data, method, rx_window=(3, 11))
    flagged = int(det.mask(0.7).sum())
    assert 0.25 * gt.sum() <= flagged <= 4 * gt.sum(), (flagged, int(gt.sum()))
    assert det.score_map[gt].mean() > 0.7 > np.median(det.score_map)


def test_calibration_keeps_the_ranking():
    data, _ = _scene(1)
    det = detect(data, "rx")
    raw = det.extras["rx_distance"].ravel()
    inside = det.score_map.ravel() > 0  # below the reference median everything is 0
    assert spearmanr(raw[inside], det.score_map.ravel()[inside]).statistic > 0.9999
    assert det.score_map.max() < 1 and det.score_map.argmax() == raw.argmax()


def test_reference_sets_the_scale():
    clean = [Cube(_scene(s, fraction=0.0)[0]) for s in (2, 3)]
    target, gt = _scene(4, fraction=0.02)
    scorer = get_detector("rx")().fit(clean)
    det = scorer.score(Cube(target))
    flagged = int(det.mask(0.7).sum())
    assert 0.25 * gt.sum() <= flagged <= 4 * gt.sum()
    # a clean scene against the same reference flags almost nothing
    assert scorer.score(Cube(_scene(5, fraction=0.0)[0])).mask(0.7).mean() < 0.01


def test_live_p_min_keeps_the_meaning():
    data, gt = _scene(6)
    det = detect(data, "glosh-spectral")
    for p in (150, 400, 1000):
        flagged = int((det.rescore(p) >= 0.7).sum())
        assert 0.25 * gt.sum() <= flagged <= 4 * gt.sum(), (p, flagged)
        assert det.extras["calibration"]["spread"] > 0


def test_calibration_survives_state():
    data, _ = _scene(7)
    scorer = get_detector("spectral-rx")(rx_inner=3, rx_outer=11).fit([Cube(data)])
    target = Cube(_scene(8)[0])
    det = scorer.score(target)
    arrays, meta = scorer.state()
    assert "calibration" in meta and any(k.startswith("calib.") for k in arrays)
    again = scorer_from_state(arrays, meta).score(target)
    np.testing.assert_allclose(again.score_map, det.score_map, atol=1e-6)


def test_local_weight_is_the_weighted_mean_of_the_parts():
    """spectral-rx ranks pixels as (GLOSH + w * scaled local RX) / (1 + w); w = 0 ranks as GLOSH alone."""
    from napari_hsi_anomaly.core.detectors.calibration import RX_SCALE_PERCENTILES, scale_fixed

    data, _ = _scene(9)
    cube = Cube(data)
    g = detect(cube, "glosh-spectral").extras["glosh_scores"].reshape(data.shape[1:])
    rxl = detect(cube, "rx-local", rx_inner=3, rx_outer=11, rx_scales=1).extras["rx_distance"]
    lo, hi = np.percentile(rxl, RX_SCALE_PERCENTILES)
    for w in (0.0, 0.67, 1.0):
        det = detect(cube, "spectral-rx", rx_inner=3, rx_outer=11, rx_scales=1, local_weight=w)
        expected = (g + w * scale_fixed(rxl, (lo, hi))) / (1 + w)
        assert spearmanr(det.score_map.ravel(), expected.ravel())[0] > 0.999, w
        assert det.extras["calibration"]["spread"] > 0
    assert {p.name: p.default for p in get_detector("spectral-rx").params}["local_weight"] == 0.67


def test_weights_survive_state_and_old_profiles_weigh_every_part_one():
    data, _ = _scene(10)
    scorer = get_detector("spectral-rx")(rx_inner=3, rx_outer=11, local_weight=0.5).fit([Cube(data)])
    arrays, meta = scorer.state()
    assert scorer_from_state(arrays, meta).calibration.weights == [1.0, 0.5]
    meta["calibration"].pop("weights")  # a profile saved before weights existed
    meta["params"].pop("local_weight")
    old = scorer_from_state(arrays, meta)
    assert old.calibration.weights == [1.0, 1.0] and old.part_weights() == [1.0, 1.0]


def test_top_of_the_scale_reaches_near_one_and_tells_a_strong_target_from_a_weak_one():
    """0.7 stays at z0 reference spreads; beyond it the score nears 1 (0.91 at 3 z0 spreads, 0.99 at 12),
    and a fixed part far beyond the reference's 99.9th percentile lifts a combination to the top alone."""
    from napari_hsi_anomaly.core.detectors.calibration import _squash, scale_fixed, score_to_z

    z = np.array([0.0, 1.0, 3.0, 12.0, 100.0], np.float32)
    s = _squash(z.copy())
    np.testing.assert_allclose(s[:2], [0.1, 0.7], atol=1e-6)
    assert 0.9 < s[2] < 0.92 and 0.99 < s[3] < s[4] < 1.0
    np.testing.assert_allclose(score_to_z(s), z, rtol=1e-4, atol=1e-6)
    assert scale_fixed(np.array([0.0, 1.0, 10.0]), (0.0, 1.0)).tolist() == [0.0, 1.0, 10.0]  # not clipped
    data, gt = _scene(11)
    weak = data.copy()
    strong = data.copy()
    strong[:, gt] = data[:, gt] * 4  # the same targets, four times as far out
    scorer = get_detector("spectral-rx")(rx_inner=3, rx_outer=11).fit([Cube(data)])
    top_weak = scorer.score(Cube(weak)).score_map.max()
    top_strong = scorer.score(Cube(strong)).score_map.max()
    assert top_strong > 0.95 and top_strong > top_weak + 0.02


def _large_target_scene(seed=12, fraction=0.05):
    """``_scene``'s background with ``fraction`` of it in 10 x 10 blocks of one spectrum (70-100 % mixed)."""
    data, _ = _scene(seed, fraction=0.0)
    rng = np.random.default_rng(seed)
    flat = data.reshape(data.shape[0], -1)
    recipe = flat.mean(1) + flat.std(1) * rng.uniform(3, 5, data.shape[0])
    gt = np.zeros(data.shape[1:], bool)
    for k in range(int(round(fraction * gt.size / 100))):
        r, c = 5 + 25 * (k // 3), 5 + 25 * (k % 3)
        gt[r:r + 10, c:c + 10] = True
    alpha = rng.uniform(0.7, 1.0, int(gt.sum()))
    data[:, gt] = alpha * recipe[:, None] + (1 - alpha) * data[:, gt]
    return data, gt


@pytest.mark.parametrize("method", ["spectral-spatial", "rx", "glosh-spectral"])
def test_large_targets_in_the_scene_itself_are_flagged(method):
    """5 % of the scene in large targets: its own 95th percentile lies among them; the floor keeps 0.7
    at the scene's 98.25th percentile at most, so at least a quarter of the true count is flagged."""
    data, gt = _large_target_scene()
    det = detect(data, method)
    flagged = int(det.mask(0.7).sum())
    assert det.extras["calibration"]["floor"]
    assert 0.25 * gt.sum() <= flagged <= 4 * gt.sum(), (flagged, int(gt.sum()))


def test_a_separate_reference_has_no_floor():
    clean = Cube(_scene(13, fraction=0.0)[0])
    scorer = get_detector("spectral-spatial")().fit([clean])
    own = scorer.score(clean)
    other = scorer.score(Cube(_scene(14, fraction=0.0)[0]))
    assert own.extras["calibration"]["floor"] and not other.extras["calibration"]["floor"]
    assert other.mask(0.7).mean() < 0.05  # a clean scene against a clean reference: the Sentinel-2 bound


def test_the_default_tops_out_near_one_and_a_target_beyond_the_reference_higher():
    """The stretch beyond 0.7 (tail_gain): the reference's top scores >= 0.95, the scale stays monotone,
    0.7 and the median keep their place; pixels beyond everything in the reference score higher still."""
    from napari_hsi_anomaly.core.detectors.calibration import score_to_z, to_score

    data, gt = _scene(15)
    det = detect(data, "spectral-spatial")
    assert det.score_map.max() >= 0.95
    r = np.array([0.0, 1.0, 2.0, 3.0, 10.0], np.float32)
    s = to_score(r.copy(), 1.0, 1.0, 1.0, gain=4.0)
    assert s[0] < s[1] < s[2] < s[3] < s[4] < 1 and s[1] == pytest.approx(0.1) and s[2] == pytest.approx(0.7)
    np.testing.assert_allclose(score_to_z(s, 4.0), r - 1.0, atol=1e-4)
    clean = Cube(_scene(16, fraction=0.0)[0])
    scorer = get_detector("spectral-spatial")().fit([clean])
    hazy = Cube(_scene(17, fraction=0.0)[0] + 0.6)  # the whole scene shifted beyond the reference
    clear = Cube(_scene(18, fraction=0.0)[0])
    assert scorer.score(hazy).score_map.max() > scorer.score(clear).score_map.max()
