"""spectral-spatial's rule beyond the weighted mean (``calibration.Fusion``): the GLOSH peaks see targets of
every size up to 400 px, the spectral floor keeps a regional anomaly that only GLOSH sees, and the rule
survives a live p_min, a saved profile, an old profile and the false-alarm rate's normal population."""

import numpy as np
import pytest

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors import get_detector, scorer_from_state
from napari_hsi_anomaly.core.detectors.calibration import _sample_positions
from napari_hsi_anomaly.core.scoring import detect
from napari_hsi_anomaly.core.scoring.morphology import glosh_peaks
from napari_hsi_anomaly.core.thresholds import normal_scores


def _background(seed: int, rows: int = 72, cols: int = 72, bands: int = 8) -> np.ndarray:
    endmembers = np.random.default_rng(99).normal(0.0, 1.0, (bands, 4))
    rng = np.random.default_rng(seed)
    base = endmembers @ rng.random((4, rows * cols))
    return (base.reshape(bands, rows, cols) + rng.normal(0, 0.05, (bands, rows, cols))).astype(np.float32)


def _with_blocks(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two 1-px targets, a 4x4 and a 14x14 block, all of one strong spectrum."""
    data = _background(seed)
    flat = data.reshape(data.shape[0], -1)
    target = flat.mean(1) + 4 * flat.std(1) * np.sign(np.random.default_rng(7).normal(size=data.shape[0]))
    gt = np.zeros(data.shape[1:], bool)
    gt[5, 5] = gt[60, 12] = True
    gt[20:24, 40:44] = True
    gt[45:59, 45:59] = True
    data[:, gt] = target[:, None]
    return data, gt


def test_glosh_peaks_lift_bright_objects_of_every_size_and_ignore_dips():
    g = np.full((60, 60), 0.3, np.float32)
    g[5, 5] = 0.99  # a pixel
    g[30:50, 30:50] = 0.95  # a 20x20 block (400 px)
    g[10:13, 40:43] = 0.01  # a dip below the typical level
    level = float(np.sqrt(0.3 / 0.7))
    p = glosh_peaks(g, level, None)
    assert p[5, 5] > 0 and p[40, 40] > 0 and p[31, 31] > 0  # the block's interior and edge
    assert p[11, 41] == 0 and p[0, 59] == 0  # no dip, no background
    assert p[5, 5] > p[40, 40]  # the block counts at its size's weight (1) only, the pixel at every size
    g[np.isnan(g)] = 0
    g[0, 0] = np.nan
    assert np.isnan(glosh_peaks(g, level, None)[0, 0])


def test_default_ranks_large_blocks_and_single_pixels():
    data, gt = _with_blocks()
    det = detect(data, "spectral-spatial")
    s = det.score_map
    assert s[gt].min() > np.percentile(s[~gt], 99)  # every target pixel above the background's top 1 %
    assert det.extras["calibration"]["fusion"]["peak_weight"] == 1.6


def test_spectral_floor_keeps_a_regional_anomaly_the_spatial_parts_do_not_see():
    """A clear reference, then a target whose lower half is shifted (haze): the spatial parts see no small
    object there, the floor (spectral_max) keeps what GLOSH alone says."""
    ref = _background(1)
    target = _background(2)
    flat = ref.reshape(ref.shape[0], -1)
    target[:, 36:, :] += (3 * flat.std(1))[:, None, None]
    flagged = {}
    for c in (2.0, 0.0):
        scorer = get_detector("spectral-spatial")(spectral_max=c).fit(Cube(ref))
        flagged[c] = scorer.score(Cube(target)).mask(0.7)
    assert flagged[2.0][36:].mean() > 0.9 and flagged[2.0][:36].mean() < 0.1
    assert flagged[0.0][36:].mean() < flagged[2.0][36:].mean()


def test_live_p_min_equals_a_fresh_detection():
    data, _ = _with_blocks(3)
    det = detect(data, "spectral-spatial", min_samples=5)
    det.rescore(150)
    fresh = detect(data, "spectral-spatial", min_samples=5, p_min=150)
    np.testing.assert_allclose(det.score_map, fresh.score_map, atol=1e-5)


def test_fusion_survives_state_and_old_profiles_score_by_the_mean():
    data, _ = _with_blocks(4)
    ref, target = Cube(data), Cube(_with_blocks(5)[0])
    scorer = get_detector("spectral-spatial")().fit(ref)
    arrays, meta = scorer.state()
    assert meta["calibration"]["fusion"] == {"peak_weight": 1.6, "spectral_max": 2.0}
    assert meta["calibration"]["shapes"] == [[72, 72]]
    again = scorer_from_state(arrays, meta)
    np.testing.assert_allclose(again.score(target).score_map, scorer.score(target).score_map, atol=1e-5)
    # a profile saved before the rule: no fusion in its calibration or params -> the weighted mean
    old = {**meta, "params": {k: v for k, v in meta["params"].items()
                              if k not in ("peak_weight", "spectral_max")}}
    old["calibration"] = {k: v for k, v in meta["calibration"].items() if k not in ("fusion", "shapes")}
    det = scorer_from_state(arrays, old).score(target)
    assert "fusion" not in det.extras["calibration"]


@pytest.mark.parametrize("params", [{}, {"peak_weight": 0.0}, {"spectral_max": 0.0}])
def test_normal_population_is_the_detection_at_the_sampled_pixels(params):
    """The false-alarm rate reads the reference sample through the same rule as the detection."""
    data, _ = _with_blocks(6)
    cube = Cube(data)
    scorer = get_detector("spectral-spatial")(**params).fit(cube)
    det = scorer.score(cube)
    det.extras["scorer"] = scorer
    pos = _sample_positions([cube.valid_mask()])
    np.testing.assert_allclose(normal_scores(det), det.score_map.ravel()[pos], atol=1e-5)
    det.rescore(int(det.params["p_min"]) + 40)  # a p_min move: the same rule as the moved map
    np.testing.assert_allclose(normal_scores(det), det.score_map.ravel()[pos], atol=1e-5)


def test_a_p_min_move_keeps_the_peaks_and_filters_nothing_again(monkeypatch):
    """The GLOSH peaks are those of the automatic p_min: a p_min move recomposes with them (no area
    filter of the whole map per move, so the slider stays live) and moving back gives the first map."""
    from napari_hsi_anomaly.core.scoring import morphology

    data, _ = _with_blocks()
    cube = Cube(data)
    scorer = get_detector("spectral-spatial")(min_samples=5).fit(cube)
    det = scorer.score(Cube(data.copy()))  # not the reference object: its own peaks are filtered
    first, p0 = det.score_map.copy(), int(det.params["p_min"])
    calls = []
    real = morphology.glosh_peaks
    monkeypatch.setattr(morphology, "glosh_peaks", lambda *a, **k: calls.append(1) or real(*a, **k))
    moved = det.rescore(p0 + 40)
    assert calls == [] and not np.array_equal(moved, first)
    np.testing.assert_array_equal(det.rescore(p0), first)
