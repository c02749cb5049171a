"""iter_detect / Detection: methods, rescoring from the cache, masks, score-map helpers."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import HsiAnomalyError, ShapeError
from napari_hsi_anomaly.core.progress import run
from napari_hsi_anomaly.core.scoring import (
    Detection,
    detect,
    iter_detect,
    rank01,
    scale01,
    threshold,
    to_score_map,
)


def _cube(rows=24, cols=28, bands=6, seed=0):
    rng = np.random.default_rng(seed)
    data = rng.normal(1.0, 0.05, (bands, rows, cols)).astype(np.float32)
    data[:, 5:8, 9:12] += 1.0  # a bright target
    return data


def test_to_score_map_max_where_regions_overlap():
    regions = np.array([[0, 4, 0, 4], [2, 6, 2, 6], [0, 2, 5, 7]])
    m = to_score_map(np.array([0.2, 0.5, 0.9]), regions, (6, 7))
    assert m.dtype == np.float32 and m.shape == (6, 7)
    assert m[0, 0] == pytest.approx(0.2) and m[3, 3] == pytest.approx(0.5)
    assert m[5, 5] == pytest.approx(0.5) and m[1, 6] == pytest.approx(0.9) and m[5, 0] == 0.0


def test_to_score_map_per_pixel():
    v = np.arange(6, dtype=np.float32)
    np.testing.assert_array_equal(to_score_map(v, None, (2, 3)), v.reshape(2, 3))


def test_scale01_threshold_rank01():
    x = np.array([[2.0, 4.0], [np.nan, 6.0]])
    s = scale01(x)
    np.testing.assert_allclose(s[[0, 0, 1], [0, 1, 1]], [0, 0.5, 1])
    assert np.isnan(s[1, 0])
    assert threshold(s, 0.5).tolist() == [[False, True], [False, True]]
    clipped = scale01(np.arange(101.0), percentiles=(0, 50))
    assert clipped[50] == 1.0 and clipped[100] == 1.0
    np.testing.assert_allclose(rank01(np.array([3.0, 1.0, 2.0])), [1, 0, 0.5])


@pytest.mark.parametrize("method", ["rx", "rx-local"])
def test_rx_methods(method):
    data = _cube()
    det = detect(data, method, rx_window=(5, 15))
    assert isinstance(det, Detection) and det.method == method
    assert det.score_map.dtype == np.float32 and det.score_map.shape == data.shape[1:]
    assert det.score_map.min() >= 0 and det.score_map.max() <= 1
    assert det.score_map[5:8, 9:12].mean() > 0.5 > det.score_map.mean()
    assert det.mask(0.5)[6, 10] and "rx_distance" in det.extras
    with pytest.raises(HsiAnomalyError):
        det.rescore(50)


def test_nodata_pixels_score_zero():
    data = _cube()
    data[:, 0, 0] = np.nan
    det = detect(Cube(data), "rx")
    assert det.score_map[0, 0] == 0 and not det.extras["valid"][0, 0]


def test_progress_and_errors():
    steps = []
    det = run(iter_detect(_cube(), "rx"), steps.append)
    assert steps and det.params["method"] == "rx"
    with pytest.raises(HsiAnomalyError, match="Unknown method"):
        detect(_cube(), "nope")
    with pytest.raises(HsiAnomalyError, match="no valid pixel"):
        detect(np.full((3, 4, 4), np.nan, np.float32), "rx")


@pytest.fixture(scope="module")
def tiny_model():
    from napari_hsi_anomaly.core.model import TrainOptions, train

    opts = TrainOptions(epochs=1, optimizer="adam", crop=16, steps_per_epoch=2, batch_size=2,
                        val_fraction=0.0, threads=1)
    return train(Cube(_cube(32, 32)), "fast", opts)


@pytest.mark.parametrize("method", ["glosh", "glosh-rx", "ensemble"])
def test_rescore_equals_fresh_detection(tiny_model, method):
    data = _cube(32, 32)
    det = detect(data, method, model=tiny_model, p_min=20, min_samples=5, rx_window=(3, 9))
    assert det.can_rescore and det.params["p_min"] == 20
    first = det.score_map.copy()
    new = det.rescore(60)
    fresh = detect(data, method, model=tiny_model, p_min=60, min_samples=5, rx_window=(3, 9))
    np.testing.assert_allclose(new, fresh.score_map, atol=1e-6)
    assert det.params["p_min"] == 60 and det.score_map is new
    np.testing.assert_allclose(det.rescore(20), first, atol=1e-6)
    assert new.dtype == np.float32 and new.min() >= 0 and new.max() <= 1


def test_glosh_window_features_map_back(tiny_model):
    det = detect(_cube(100, 100), "glosh", model=tiny_model, feature="f1", p_min=2, min_samples=1)
    regions = det.extras["regions"]
    assert regions.shape[1] == 4 and len(regions) >= 4 and det.feature == "f1"
    from napari_hsi_anomaly.core.detectors.calibration import stretch, to_score

    cal = det.extras["calibration"]
    calibrated = to_score(stretch(det.extras["glosh_scores"]), cal["median"], cal["spread"], cal["z0"])
    expected = to_score_map(calibrated, regions, (100, 100))
    np.testing.assert_allclose(det.score_map, expected)


def test_recon_method(tiny_model):
    det = detect(_cube(32, 32), "recon", model=tiny_model)
    assert det.score_map.shape == (32, 32) and det.extras["recon_per_band"].shape[0] == 6
    assert det.score_map.max() > 0.7 and det.score_map.dtype == np.float32


@pytest.mark.parametrize("method", ["glosh-spectral", "spectral-rx"])
def test_spectral_glosh_methods_need_no_model(method):
    data = _cube(30, 30)
    det = detect(data, method, p_min=30, min_samples=5, rx_window=(5, 15))
    assert det.feature.startswith("pca") and det.can_rescore and "model" not in det.extras
    assert det.score_map[5:8, 9:12].mean() > det.score_map.mean()
    new = det.rescore(80)
    fresh = detect(data, method, p_min=80, min_samples=5, rx_window=(5, 15))
    np.testing.assert_allclose(new, fresh.score_map, atol=1e-6)


def test_region_labels():
    from napari_hsi_anomaly.core.scoring.validation import region_labels

    gt = np.zeros((8, 8), np.uint8)
    gt[1, 6] = 1
    regions = np.array([[0, 4, 0, 4], [0, 4, 4, 8], [4, 8, 0, 8]])
    assert region_labels(gt, regions).tolist() == [0, 1, 0]


def test_validation_protocol_runs_on_tiny_population(tiny_model):
    from napari_hsi_anomaly.core.scoring.validation import rows_markdown, validate

    cubes = [_cube(32, 32, seed=s) for s in range(3)]
    rows = validate(cubes, tiny_model, partial=[0, 1], p_min=3, min_samples=3, window=16, s_anom=4,
                    p_anom=0.25, seed=0)
    assert [(r.clustering, r.feature) for r in rows][:2] == [("full", "f1"), ("full", "f2")]
    assert len(rows) == 8
    full_f1, full_f2 = rows[0], rows[1]
    assert full_f1.n_points == 3 * 4 and full_f1.n_anomalous == 3  # 25 % of 12 windows
    assert full_f2.n_points == 3 * 4 * 16 and 3 <= full_f2.n_anomalous <= 12
    assert rows[4].n_points == 2 * 4
    assert "| full | f1 |" in rows_markdown(rows)


def test_auto_p_min_scales_with_the_scene() -> None:
    from napari_hsi_anomaly.core.scoring.detect import auto_p_min

    assert auto_p_min(1_000) == 100  # at least the thesis's 100
    assert auto_p_min(10_000) == 800  # 8 % of the 100x100 real scenes
    assert auto_p_min(65_536) == 5243  # 8 % of a 256x256 scene
    assert auto_p_min(2925, per_pixel=False) == 100  # thesis: 100 of 2925 windows
    assert auto_p_min(100, per_pixel=False) == 5


@pytest.mark.parametrize("fraction", [0.01, 0.03, 0.05])
def test_auto_p_min_keeps_many_similar_targets_outliers(fraction) -> None:
    """1-5 % of the pixels planted with one recipe: the automatic p_min (8 %) keeps them outliers,
    the old 1 % rule (100 here) lets them form a cluster of their own."""
    from napari_hsi_anomaly.core.scoring.validation import plant_one_recipe

    base = np.random.default_rng(1).normal(1.0, 0.05, (6, 80, 80)).astype(np.float32)
    data, planted = plant_one_recipe(base, fraction, seed=2)
    det = detect(data, "glosh-spectral")
    assert det.params["p_min"] == 512 and det.params.get("p_min_auto")
    assert roc_auc_score(planted.ravel(), det.score_map.ravel()) > 0.99
    if fraction >= 0.03:  # 192 or 320 similar pixels >= 100: a cluster of their own under the old rule
        assert roc_auc_score(planted.ravel(), det.rescore(100).ravel()) < 0.7


def test_window_features_on_a_cube_smaller_than_the_window() -> None:
    """f1 on a cube smaller than the model's window still gives a valid map (windows fit the scene)."""
    from napari_hsi_anomaly.core.model import PRESETS, TrainOptions, train

    cube = Cube(np.random.default_rng(0).random((4, 20, 20), dtype=np.float32))
    config = PRESETS["fast"].__class__(**{**PRESETS["fast"].to_dict(), "window": 32})
    model = train([cube], config, TrainOptions(epochs=1, batch_size=1, threads=1))
    try:
        det = detect(cube, "glosh", model=model, feature="f1", min_samples=2)
    except ShapeError as exc:  # too few windows to cluster: one clear message
        assert "valid windows" in str(exc)
        return
    assert det.score_map.dtype == np.float32 and 0 <= det.score_map.min() <= det.score_map.max() <= 1
