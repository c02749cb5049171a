"""core.regions: connected flagged regions, CSV, spectra and robust band deviation."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.regions import (
    band_deviation,
    flagged_regions,
    label_mask,
    region_band_ratio,
    region_spectrum,
    regions_to_csv,
    scene_spectrum_stats,
)


def _two_blobs() -> tuple[np.ndarray, np.ndarray]:
    mask = np.zeros((20, 30), dtype=bool)
    scores = np.zeros((20, 30), dtype=np.float32)
    mask[2:5, 3:7] = True  # 12 px, max 0.8
    scores[2:5, 3:7] = 0.8
    mask[10:16, 20:24] = True  # 24 px, max 0.95 at one pixel
    scores[10:16, 20:24] = 0.75
    scores[12, 21] = 0.95
    mask[18, 0] = True  # 1 px, max 0.8 (same max as the first blob, smaller)
    scores[18, 0] = 0.8
    return mask, scores


def test_areas_centroids_bbox_and_sorting():
    mask, scores = _two_blobs()
    regions = flagged_regions(mask, scores)
    assert [r.area for r in regions] == [24, 12, 1]
    big, mid, dot = regions
    assert big.max_score == pytest.approx(0.95)
    assert big.mean_score == pytest.approx((23 * 0.75 + 0.95) / 24)
    assert big.centroid == pytest.approx((12.5, 21.5))
    assert big.bbox == (10, 16, 20, 24)
    assert mid.centroid == pytest.approx((3.0, 4.5))
    assert mid.bbox == (2, 5, 3, 7)
    assert dot.centroid == (18.0, 0.0)
    # ties on max score: larger area first
    assert mid.max_score == dot.max_score


def test_eight_connectivity_and_min_area():
    mask = np.zeros((6, 6), dtype=bool)
    mask[1, 1] = mask[2, 2] = mask[3, 3] = True  # diagonal chain: one region with 8-connectivity
    mask[5, 0] = True
    labels, n = label_mask(mask)
    assert n == 2
    regions = flagged_regions(mask, mask.astype(float), min_area=2)
    assert len(regions) == 1 and regions[0].area == 3
    assert labels[1, 1] == labels[3, 3] == regions[0].label


def test_empty_mask_and_shape_mismatch():
    assert flagged_regions(np.zeros((4, 4), bool), np.zeros((4, 4))) == []
    with pytest.raises(ValueError):
        flagged_regions(np.ones((4, 4), bool), np.zeros((4, 5)))


def test_csv_roundtrip(tmp_path):
    mask, scores = _two_blobs()
    regions = flagged_regions(mask, scores)
    path = regions_to_csv(regions, tmp_path / "regions.csv")
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3
    assert rows[0]["rank"] == "1" and int(rows[0]["area_px"]) == 24
    assert float(rows[0]["max_score"]) == pytest.approx(0.95)
    assert float(rows[1]["centroid_col"]) == pytest.approx(4.5)
    assert [int(rows[0][k]) for k in ("row_start", "row_stop", "col_start", "col_stop")] == [
        10, 16, 20, 24
    ]


def test_region_spectrum_and_deviation():
    rng = np.random.default_rng(0)
    data = rng.normal(1.0, 0.1, size=(5, 40, 40)).astype(np.float32)
    data[3, 10:14, 10:14] += 5.0  # the region stands out in band 3 only
    cube = Cube(data)
    mask = np.zeros((40, 40), bool)
    mask[10:14, 10:14] = True
    labels, _ = label_mask(mask)
    spec = region_spectrum(cube, labels, int(labels[10, 10]))
    np.testing.assert_allclose(spec, data[:, 10:14, 10:14].mean(axis=(1, 2)), rtol=1e-6)
    median, q25, q75 = scene_spectrum_stats(cube, sample=400)
    assert median.shape == (5,) and np.all(q25 <= median) and np.all(median <= q75)
    np.testing.assert_allclose(median, 1.0, atol=0.05)
    dev = band_deviation(spec, median, q75 - q25)
    assert int(np.argmax(np.abs(dev))) == 3 and dev[3] > 20
    assert np.all(np.abs(np.delete(dev, 3)) < 3)
    with pytest.raises(ValueError):
        region_spectrum(cube, labels, 99)


def test_scene_stats_bounded_deterministic_and_nan_aware():
    data = np.arange(3 * 300 * 300, dtype=np.float32).reshape(3, 300, 300)
    data[1] = np.nan
    cube = Cube(data)
    a = scene_spectrum_stats(cube, sample=1000)
    b = scene_spectrum_stats(cube, sample=1000)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert np.isnan(a[0][1]) and np.isfinite(a[0][0])
    # the sample is spread over the whole scene: the median is near the band's middle value
    mid = data[0].mean()
    assert abs(a[0][0] - mid) < 0.05 * data[0].max()


def test_region_band_ratio_is_the_region_over_the_scene_median():
    per_band = np.ones((4, 40, 50), dtype=np.float32)
    per_band[2, 10:14, 20:25] = 6.0  # the region's error in band 3 is 6x the scene's
    mask = np.zeros((40, 50), dtype=bool)
    mask[10:14, 20:25] = True
    labels, _ = label_mask(mask)
    region = flagged_regions(mask, mask.astype(np.float32), label_image=labels)[0]
    ratio = region_band_ratio(per_band, labels, region)
    np.testing.assert_allclose(ratio, [1.0, 1.0, 6.0, 1.0])
    assert region_band_ratio(per_band[:, :20], labels, region) is None  # another shape: not this scene's
    assert region_band_ratio(None, labels, region) is None
