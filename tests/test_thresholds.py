"""False-alarm rate, CFAR and contamination thresholds, and the p_min warning."""

from __future__ import annotations

import numpy as np
import pytest

from napari_hsi_anomaly.core.detectors import get_detector
from napari_hsi_anomaly.core.detectors.calibration import _sample_positions
from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.scene import make_scene
from napari_hsi_anomaly.core.thresholds import (
    false_alarm_rate,
    normal_scores,
    p_min_risk,
    t_for_contamination,
    t_for_far,
)


@pytest.fixture(scope="module")
def scene():
    return make_scene(96, 96, seed=1)


@pytest.mark.parametrize("method", ["rx", "glosh-spectral", "spectral-spatial"])
def test_normal_scores_are_the_scene_scores_of_the_calibration_sample(scene, method):
    """One-cube case: the normal population is the scene, so its scores are the map's at the sample."""
    cube = scene.cube
    scorer = get_detector(method)().fit(cube)
    det = scorer.score(cube)
    det.extras["scorer"] = scorer
    pos = _sample_positions([cube.valid_mask()])
    np.testing.assert_allclose(normal_scores(det), det.score_map.ravel()[pos], atol=2e-6)
    far = false_alarm_rate(det, 0.7)
    assert 0 < far < 0.2 and far == pytest.approx(np.mean(det.score_map.ravel()[pos] >= 0.7))


def test_cfar_threshold_meets_its_rate_and_is_the_lowest(scene):
    cube = scene.cube
    scorer = get_detector("rx")().fit(cube)
    normal = normal_scores(scorer)
    for far in (1e-3, 0.01, 0.05):
        t = t_for_far(scorer, far)
        assert false_alarm_rate(scorer, t) <= far
        lower = np.nextafter(np.float32(t), np.float32(0))
        assert false_alarm_rate(scorer, float(lower)) > far or t <= normal.min()
    assert t_for_far(scorer, 0.0) > normal.max()
    with pytest.raises(HsiAnomalyError):
        t_for_far(scorer, 1.5)


def test_contamination_flags_that_share():
    scores = np.linspace(0, 1, 1000, dtype=np.float32)
    t = t_for_contamination(scores, 0.05)
    assert int((scores >= t).sum()) == 50
    assert int((scores >= t_for_contamination(scores, 0.0)).sum()) == 0
    assert int((scores >= t_for_contamination(scores, 1.0)).sum()) == 1000
    valid = np.ones(1000, bool)
    valid[:500] = False
    assert int((scores[valid] >= t_for_contamination(scores, 0.1, valid=valid)).sum()) == 50


def test_p_min_risk_warns_when_flagged_pixels_cluster():
    """Planted patches of one recipe (400 px): at p_min 300 they form a cluster; at the auto p_min not."""
    sc = make_scene(128, 128, seed=0, window=64, p_anom=0.03)
    cube = sc.cube
    scorer = get_detector("glosh-spectral")().fit(cube)
    det = scorer.score(cube)
    safe = p_min_risk(det, int(det.params["p_min"]), 0.7)
    assert safe.message == "" and safe.at_risk == 0
    low = p_min_risk(det, 20, 0.7)
    assert low.groups >= 1 and low.at_risk > 0 and "keep p_min above" in low.message
    assert low.safe_p_min > low.largest
    assert p_min_risk(get_detector("rx")().fit(cube).score(cube), 20).message == ""


def test_pr_curve_matches_sklearn_and_far():
    from sklearn.metrics import average_precision_score, precision_recall_curve

    from napari_hsi_anomaly.core.scoring.metrics import average_precision, evaluate, pr_curve

    rng = np.random.default_rng(0)
    gt = rng.random(500) < 0.1
    scores = np.round(rng.random(500) + gt * 0.5, 2)  # ties included
    p, r, t = pr_curve(scores, gt)
    p2, r2, t2 = precision_recall_curve(gt, scores)
    np.testing.assert_allclose(p[::-1], p2[:-1][-len(p):])
    np.testing.assert_allclose(r[::-1], r2[:-1][-len(r):])
    assert average_precision(scores, gt) == pytest.approx(average_precision_score(gt, scores))
    m = evaluate(scores, gt, 0.9)
    assert m.far == pytest.approx(np.sum((scores >= 0.9) & ~gt) / np.sum(~gt))
    assert m.as_dict()["far"] == m.far


def test_region_centres_in_map_coordinates(tmp_path):
    import csv

    from napari_hsi_anomaly.core.regions import flagged_regions, pixel_to_map, regions_to_csv

    mask = np.zeros((10, 10), bool)
    mask[2:4, 6:8] = True
    regions = flagged_regions(mask, mask.astype(np.float32))
    georef = {"crs": "EPSG:32633", "transform": (60.0, 0.0, 500000.0, 0.0, -60.0, 4200000.0)}
    x, y = pixel_to_map(georef, np.array([0.0]), np.array([0.0]))
    assert (x[0], y[0]) == (500030.0, 4199970.0)  # the first pixel's centre
    rows = list(csv.DictReader(regions_to_csv(regions, tmp_path / "r.csv", georef=georef).open()))
    assert float(rows[0]["centroid_x"]) == pytest.approx(500000 + 60 * 7.0)  # centroid col 6.5 + 0.5
    assert float(rows[0]["centroid_y"]) == pytest.approx(4200000 - 60 * 3.0)
    plain = list(csv.DictReader(regions_to_csv(regions, tmp_path / "p.csv").open()))
    assert "centroid_x" not in plain[0] and pixel_to_map({}, np.zeros(1), np.zeros(1)) is None


def test_compare_detectors_on_user_labels():
    from napari_hsi_anomaly.core.compare import compare_detectors

    sc = make_scene(64, 64, seed=2)
    labels = (sc.gt > 0).astype(np.uint8)
    rows = compare_detectors(sc.cube, labels, 0.7, names=["rx", "glosh-spectral"])
    assert [r.detector for r in rows] == ["rx", "glosh-spectral"]
    assert all(r.auc > 0.8 and 0 <= r.precision <= 1 and r.seconds >= 0 for r in rows)
    with pytest.raises(HsiAnomalyError):
        compare_detectors(sc.cube, np.zeros_like(labels), names=["rx"])
    normal_only = labels.copy()
    normal_only[:8, :8] = 2  # marked normal: only marked pixels are evaluated
    again = compare_detectors(sc.cube, normal_only, 0.7, names=["rx"])
    assert again[0].auc == again[0].auc


def test_normal_population_follows_a_mark_normal():
    """After "Mark as normal" the normal population is scored by the refitted model (on the first fit's
    scale): the marked pixels' share above t_anom falls."""
    from test_feedback import planted_scene

    from napari_hsi_anomaly.core.detectors.calibration import _sample_positions
    from napari_hsi_anomaly.core.feedback import mark_normal

    cube, a, _ = planted_scene()
    scorer = get_detector("glosh-spectral")().fit(cube)
    det = scorer.score(cube)
    det.extras["scorer"] = scorer
    new = mark_normal(det, cube, a)
    pos = _sample_positions([cube.valid_mask()])
    np.testing.assert_allclose(normal_scores(new), new.score_map.ravel()[pos], atol=2e-6)
    assert false_alarm_rate(new, 0.7) < false_alarm_rate(det, 0.7)
