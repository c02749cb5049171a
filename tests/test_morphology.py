"""Area opening/closing (attribute filters) and the ``attribute`` detector built on them."""

import numpy as np
import pytest
from scipy.ndimage import label

from napari_hsi_anomaly.core.scoring.morphology import area_closing, area_opening, small_objects


def _opening_by_definition(x: np.ndarray, area: int) -> np.ndarray:
    """Each pixel: the highest level t at which its 4-connected component of ``x >= t`` has at least
    ``area`` pixels (the image's minimum where there is none)."""
    out = np.full(x.shape, -np.inf)
    for t in np.unique(x):
        lab, _ = label(x >= t)
        sizes = np.bincount(lab.ravel())
        ok = (lab > 0) & (sizes[lab] >= area)
        out[ok] = np.maximum(out[ok], t)
    out[np.isinf(out)] = x.min()
    return out


@pytest.mark.parametrize("seed", range(6))
def test_area_filters_equal_their_definition(seed):
    rng = np.random.default_rng(seed)
    for _ in range(25):
        h, w = (int(v) for v in rng.integers(1, 30, 2))
        x = rng.integers(0, int(rng.integers(2, 30)), (h, w)).astype(np.float64)
        area = int(rng.integers(1, 40))
        np.testing.assert_array_equal(area_opening(x, area), _opening_by_definition(x, area))
        np.testing.assert_array_equal(area_closing(x, area), -_opening_by_definition(-x, area))


def test_small_objects_keeps_small_spots_and_drops_lines_and_large_regions():
    img = np.zeros((40, 40))
    img[5, 5] = 3.0  # bright 1-px spot
    img[10:12, 20:22] = -2.0  # dark 2x2 blob
    img[30, :] = 1.0  # a thin line, 40 px long: not a small object
    img[15:25, 5:15] = 4.0  # a 10x10 region: larger than the area
    s = small_objects(img, 25)
    assert s.dtype == np.float32 and s.shape == img.shape
    assert s[5, 5] == pytest.approx(3.0, rel=1e-3) and s[10, 20] == pytest.approx(2.0, rel=1e-3)
    assert s[30, 7] == pytest.approx(0.0, abs=1e-3) and s[20, 10] == pytest.approx(0.0, abs=1e-3)
    assert s.sum() == pytest.approx(3.0 + 4 * 2.0, rel=1e-3)
    assert not small_objects(np.ones((5, 5)), 25).any()  # a flat image has no object


def _scene(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A smooth 12-band scene with a 40-px-wide bright stripe, 1-px and 2x2 spectral targets."""
    from scipy.ndimage import gaussian_filter

    base = gaussian_filter(rng.normal(size=(3, 64, 64)), (0, 6, 6))
    mix = rng.normal(size=(12, 3))
    cube = np.einsum("bk,krc->brc", mix, base) + 0.02 * rng.normal(size=(12, 64, 64))
    cube[:, :, 10:50] += 0.5 * rng.normal(size=(12, 1, 1))  # a large region: not small
    gt = np.zeros((64, 64), bool)
    sig = rng.normal(size=12)
    for r, c, s in ((8, 8, 1), (30, 40, 2), (50, 20, 1), (20, 55, 2)):
        cube[:, r:r + s, c:c + s] += 0.6 * sig[:, None, None]
        gt[r:r + s, c:c + s] = True
    return cube.astype(np.float32), gt


def test_attribute_detector_finds_small_targets_not_large_regions():
    from sklearn.metrics import roc_auc_score

    from napari_hsi_anomaly.core.scoring import detect

    cube, gt = _scene(np.random.default_rng(0))
    det = detect(cube, "attribute")
    assert roc_auc_score(gt.ravel(), det.score_map.ravel()) > 0.99
    assert det.score_map[gt].min() > np.percentile(det.score_map[~gt], 99)
    assert det.extras["attribute_map"].shape == (64, 64)


def test_attribute_scores_a_target_against_a_reference_and_saves_its_state(tmp_path):
    from napari_hsi_anomaly.core.detectors import get_detector, scorer_from_state

    rng = np.random.default_rng(1)
    ref, _ = _scene(rng)
    target, gt = _scene(rng)
    scorer = get_detector("attribute")(max_area=9, attr_components=3).fit(ref)
    assert scorer.halo() == 9 and scorer.basis.shape == (12, 3)
    a = scorer.score(target).score_map
    arrays, meta = scorer.state()
    again = scorer_from_state(arrays, meta).score(target).score_map
    np.testing.assert_array_equal(a, again)
    assert a[gt].mean() > 0.7 > np.median(a[~gt])


def test_attribute_parameters_are_bounded_before_any_work():
    from napari_hsi_anomaly.core.detectors import get_detector
    from napari_hsi_anomaly.core.errors import HsiAnomalyError

    with pytest.raises(HsiAnomalyError, match="max_area must be at most 400"):
        get_detector("spectral-spatial")(max_area=5000)
    with pytest.raises(HsiAnomalyError, match="attr_components must be at least 1"):
        get_detector("attribute")(attr_components=0)


def test_attribute_sees_targets_of_every_size_up_to_max_area():
    """Objects of 1 to 400 px all stand out (area filters at 25, 100 and 400 px), the interior of a
    10x10 or 20x20 target too (no speckle: a single 25-px filter kept only its texture)."""
    from sklearn.metrics import roc_auc_score

    from napari_hsi_anomaly.core.detectors.attribute import area_ladder, ladder_weights
    from napari_hsi_anomaly.core.scoring import detect

    assert area_ladder(400) == [25, 100, 400] and area_ladder(25) == [25] and area_ladder(60) == [25, 60]
    assert ladder_weights([25, 100, 400]) == pytest.approx([1.0, 0.5, 0.25])
    rng = np.random.default_rng(3)
    from scipy.ndimage import gaussian_filter

    base = gaussian_filter(rng.normal(size=(3, 96, 96)), (0, 5, 5))
    cube = np.einsum("bk,krc->brc", rng.normal(size=(10, 3)), base) + 0.02 * rng.normal(size=(10, 96, 96))
    gt = np.zeros((96, 96), bool)
    sig = rng.normal(size=10)
    for r, c, s in ((6, 6, 1), (6, 40, 3), (40, 6, 10), (50, 50, 20)):
        cube[:, r:r + s, c:c + s] += 0.8 * sig[:, None, None] * rng.uniform(0.7, 1.0, (s, s))
        gt[r:r + s, c:c + s] = True
    det = detect(cube.astype(np.float32), "attribute")
    assert roc_auc_score(gt.ravel(), det.score_map.ravel()) > 0.97
    big = det.score_map[50:70, 50:70]
    assert np.median(big) > np.percentile(det.score_map[~gt], 99)  # the 20x20 target's interior stands out
    old = detect(cube.astype(np.float32), "attribute", max_area=25).score_map  # one 25-px filter
    assert np.median(old[50:70, 50:70]) < np.percentile(old[~gt], 99)


@pytest.mark.parametrize("seed", range(3))
def test_small_objects_in_tiles_equals_the_definition(seed, monkeypatch):
    """Tiles with a halo of the area (here tiles smaller than the objects) give the whole-image result."""
    from napari_hsi_anomaly.core.scoring import morphology

    rng = np.random.default_rng(seed)
    for _ in range(20):
        h, w = (int(v) for v in rng.integers(1, 45, 2))
        x = rng.integers(0, int(rng.integers(2, 30)), (h, w)).astype(np.float64)
        area = int(rng.integers(2, 12))
        monkeypatch.setattr(morphology, "TILE", int(rng.integers(1, 9)))
        expected = -_opening_by_definition(-x, area) - _opening_by_definition(x, area)
        np.testing.assert_array_equal(small_objects(x, area, step=1.0), expected.astype(np.float32))


@pytest.mark.parametrize("seed", range(4))
def test_small_objects_multi_equals_small_objects_bit_for_bit(seed):
    """One component tree per polarity read at several areas gives each area's ``small_objects`` exactly:
    integer images with plateaus, float images with and without a step, areas with ties, 0 and 1, and
    areas past the image's size."""
    from napari_hsi_anomaly.core.scoring.morphology import small_objects_multi

    rng = np.random.default_rng(seed)
    for t in range(40):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        if t % 3 == 0:
            x = rng.integers(0, int(rng.integers(2, 6)), (h, w)).astype(np.float64)  # wide plateaus
        elif t % 3 == 1:
            x = rng.normal(size=(h, w))
        else:
            x = rng.integers(0, 60, (h, w)) * 0.37
        areas = [int(a) for a in rng.integers(0, 60, 3)] + [int(rng.integers(2, 9))] * 2
        step = None if t % 2 else float(rng.uniform(0.01, 0.5))
        got = small_objects_multi(x, areas, step)
        assert len(got) == len(areas)
        for a, g in zip(areas, got):
            e = small_objects(x, a, step)
            assert g.dtype == e.dtype == np.float32
            np.testing.assert_array_equal(g, e)
    assert not any(m.any() for m in small_objects_multi(np.ones((4, 4)), [3, 9]))  # flat: no object


def test_small_objects_multi_equals_the_definition_where_tiles_are_many():
    """On an image larger than a tile (several tiles in ``small_objects``), the whole-image tree still
    equals the brute-force definition."""
    from napari_hsi_anomaly.core.scoring.morphology import small_objects_multi

    rng = np.random.default_rng(7)
    x = rng.integers(0, 12, (70, 300)).astype(np.float64)
    for a, got in zip((2, 5, 26), small_objects_multi(x, [2, 5, 26], step=1.0)):
        expected = -_opening_by_definition(-x, a) - _opening_by_definition(x, a)
        np.testing.assert_array_equal(got, expected.astype(np.float32))
        np.testing.assert_array_equal(got, small_objects(x, a, step=1.0))


def test_small_objects_multi_in_two_threads_is_the_same():
    """The two polarities built at once (the GLOSH peaks' one image) give the same maps bit for bit."""
    from napari_hsi_anomaly.core.scoring.morphology import small_objects_multi

    rng = np.random.default_rng(5)
    img = rng.normal(size=(90, 70)).cumsum(axis=1)
    one = small_objects_multi(img, [5, 26, 101], None, threads=1)
    two = small_objects_multi(img, [5, 26, 101], None, threads=2)
    assert all(np.array_equal(a, b) for a, b in zip(one, two)) and any(a.any() for a in one)


def _structured(rng: np.random.Generator) -> list[np.ndarray]:
    """Images where the component tree is deep, wide or all ties: a ramp, nested squares, a checkerboard,
    one spike on a plateau, single rows and columns, and blobs on a noisy background."""
    yy, xx = np.mgrid[:23, :31]
    blobs = rng.integers(0, 4, (30, 30)).astype(np.float64)
    for r, c, s, v in ((3, 3, 1, 9), (10, 5, 3, 7), (20, 18, 6, -5), (2, 20, 5, 12)):
        blobs[r:r + s, c:c + s] += v
    spike = np.full((17, 19), 3.0)
    spike[8, 9] = 5.0
    return [(xx + yy).astype(np.float64), np.minimum(np.minimum(yy, 22 - yy), np.minimum(xx, 30 - xx)) * 1.0,
            ((xx + yy) % 2).astype(np.float64), spike, rng.integers(0, 5, (1, 40)) * 1.0,
            rng.integers(0, 5, (37, 1)) * 1.0, blobs, np.full((6, 7), 2.0)]


@pytest.mark.parametrize("threads", [1, 2])
def test_small_objects_multi_equals_the_definition_on_structured_images(threads):
    """The rank-space trees (ties as adjacent places, a union-find by rank, the cap of the largest area)
    equal the brute-force definition on images whose trees are deep (ramps, nested squares), all ties
    (plateaus, a checkerboard) or one pixel wide, for areas below, at and past the objects' sizes."""
    from napari_hsi_anomaly.core.scoring.morphology import small_objects_multi

    rng = np.random.default_rng(11)
    for x in _structured(rng):
        areas = [2, 4, 10, 37, 200]
        for a, got in zip(areas, small_objects_multi(x, areas, step=1.0, threads=threads)):
            expected = -_opening_by_definition(-x, a) - _opening_by_definition(x, a)
            np.testing.assert_array_equal(got, expected.astype(np.float32))
    x = rng.integers(0, 40, (33, 29)).astype(np.float64)  # a cap (largest area) the components reach often
    got = small_objects_multi(x, [5, 2, 3], step=1.0, threads=threads)
    for a, g in zip((5, 2, 3), got):
        expected = -_opening_by_definition(-x, a) - _opening_by_definition(x, a)
        np.testing.assert_array_equal(g, expected.astype(np.float32))


@pytest.mark.parametrize("threads", [1, 2])
def test_weighted_small_objects_is_the_weighted_sum_bit_for_bit(threads):
    """The per-pixel weighted sum equals ``out += np.float32(w) * m`` over ``small_objects_multi``'s maps,
    in order, bit for bit (areas of 0 and 1 included), and a flat image gives zeros."""
    from napari_hsi_anomaly.core.scoring.morphology import small_objects_multi, weighted_small_objects

    rng = np.random.default_rng(2)
    for t in range(6):
        x = rng.normal(size=(int(rng.integers(1, 50)), int(rng.integers(1, 50)))).cumsum(axis=t % 2)
        areas = [26, 101, 401] if t < 3 else [int(a) for a in rng.integers(0, 40, 4)]
        weights = [float(w) for w in rng.uniform(0.1, 2.0, len(areas))]
        step = None if t % 2 else 0.01
        expected = np.zeros(x.shape, np.float32)
        for w, m in zip(weights, small_objects_multi(x, areas, step)):
            expected += np.float32(w) * m
        got = weighted_small_objects(x, areas, weights, step, threads=threads)
        assert got.dtype == np.float32 and got.shape == x.shape
        np.testing.assert_array_equal(got, expected)
    assert not weighted_small_objects(np.ones((3, 4)), [5, 9], [1.0, 0.5]).any()
    with pytest.raises(ValueError, match="one weight per area"):
        weighted_small_objects(x, [5, 9], [1.0])
