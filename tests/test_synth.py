"""Thesis-recipe synthetic anomalies: what is planted is exactly what is reported."""

from __future__ import annotations

import numpy as np
import pytest

from napari_hsi_anomaly.core.errors import HsiAnomalyError, ShapeError
from napari_hsi_anomaly.core.synth import band_stats, plant_anomalies, plant_population
from napari_hsi_anomaly.core.windows import window_grid


def _cube(bands=5, rows=100, cols=90, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(0.3, 0.05, size=(bands, rows, cols)).astype(np.float32)


def test_counts_positions_and_values():
    data = _cube()
    p = plant_anomalies(data, window=32, p_anom=0.25, s_anom=6, seed=3)
    n_windows = len(window_grid(100, 90, 32))
    assert len(p.windows) == n_windows == 12  # rows 0,32,64,68 x cols 0,32,58
    assert p.n_anomalies == round(0.25 * n_windows) == 3
    means = data.reshape(5, -1).astype(np.float64).mean(1)
    stds = data.reshape(5, -1).astype(np.float64).std(1)
    np.testing.assert_allclose(p.stats[0], means, rtol=1e-6)
    mask = np.zeros((100, 90), bool)
    for r, c, s in p.anomalies:
        assert s == 6
        # fully inside one of the windows
        assert any(r0 <= r and r + s <= r1 and c0 <= c and c + s <= c1 for r0, r1, c0, c1 in p.windows)
        mask[r : r + s, c : c + s] = True
    np.testing.assert_array_equal(p.gt.astype(bool), mask)
    assert p.gt.dtype == np.uint8
    inside = p.data[:, mask]
    coef = (inside - means[:, None]) / stds[:, None]
    assert coef.min() >= 3.0 - 1e-4 and coef.max() < 5.0 + 1e-4
    assert coef.std() > 0.3  # drawn per pixel and band, not one constant
    np.testing.assert_array_equal(p.data[:, ~mask], data[:, ~mask])
    assert p.data is not data and p.data.dtype == np.float32


def test_each_anomaly_is_a_full_square_when_windows_do_not_overlap():
    data = _cube(rows=128, cols=128)
    p = plant_anomalies(data, window=32, p_anom=0.5, s_anom=8, seed=0)
    assert p.n_anomalies == 8
    assert int(p.gt.sum()) == 8 * 64


def test_labels_follow_pixel_content():
    data = _cube(rows=100, cols=100)
    p = plant_anomalies(data, window=32, p_anom=0.3, s_anom=10, seed=5)
    for (r0, r1, c0, c1), lab in zip(p.windows, p.window_labels):
        assert lab == p.gt[r0:r1, c0:c1].any()
    assert p.sections.shape == (len(p.windows) * 16, 4)
    assert p.section_labels.shape == (len(p.windows) * 16,)
    for (r0, r1, c0, c1), lab in zip(p.sections, p.section_labels):
        assert lab == p.gt[r0:r1, c0:c1].any()
    assert p.window_labels.sum() >= p.n_anomalies
    assert p.section_labels.sum() >= p.window_labels.sum()


def test_overlapping_edge_window_is_labelled_by_content():
    # 40 px with window 32: windows at 0 and 8 overlap on [8, 32)
    data = _cube(rows=40, cols=32)
    for seed in range(50):
        p = plant_anomalies(data, window=32, p_anom=0.5, s_anom=4, seed=seed)
        ((r, c, s),) = p.anomalies
        if r >= 8 and r + s <= 32:
            assert p.window_labels.tolist() == [1, 1]
            return
    pytest.fail("no anomaly fell in the overlap in 50 seeds")


def test_determinism_and_seed():
    data = _cube()
    a = plant_anomalies(data, window=32, s_anom=5, p_anom=0.3, seed=7)
    b = plant_anomalies(data, window=32, s_anom=5, p_anom=0.3, seed=7)
    c = plant_anomalies(data, window=32, s_anom=5, p_anom=0.3, seed=8)
    np.testing.assert_array_equal(a.data, b.data)
    assert a.anomalies == b.anomalies
    assert not np.array_equal(a.data, c.data)


def test_stats_argument_is_used():
    data = _cube(bands=3)
    stats = (np.array([10.0, 20.0, 30.0]), np.array([1.0, 2.0, 0.0]))
    p = plant_anomalies(data, window=50, p_anom=0.1, s_anom=5, seed=0, stats=stats)
    m = p.gt.astype(bool)
    assert ((p.data[0, m] >= 13) & (p.data[0, m] < 15)).all()
    assert ((p.data[1, m] >= 26) & (p.data[1, m] < 30)).all()
    np.testing.assert_allclose(p.data[2, m], 30.0)
    with pytest.raises(ShapeError):
        plant_anomalies(data, stats=(np.zeros(2), np.ones(2)), window=50, s_anom=5)


def test_valid_mask_and_nan_excluded_from_stats():
    data = _cube(bands=2)
    data[:, :10, :] = np.nan
    p = plant_anomalies(data, window=50, p_anom=0.1, s_anom=5, seed=0)
    assert np.isfinite(p.stats[0]).all()
    np.testing.assert_allclose(p.stats[0], np.nanmean(data.reshape(2, -1), axis=1), rtol=1e-5)
    valid = np.zeros((100, 90), bool)
    valid[50:] = True
    q = plant_anomalies(data, window=50, p_anom=0.1, s_anom=5, seed=0, valid=valid)
    np.testing.assert_allclose(q.stats[0], data[:, 50:].reshape(2, -1).mean(1), rtol=1e-5)


def test_at_least_one_and_zero():
    data = _cube(rows=64, cols=64)
    assert plant_anomalies(data, window=32, p_anom=0.01, s_anom=4).n_anomalies == 1
    p = plant_anomalies(data, window=32, p_anom=0.0, s_anom=4)
    assert p.n_anomalies == 0 and p.gt.sum() == 0
    np.testing.assert_array_equal(p.data, data)


def test_shape_errors():
    data = _cube(rows=30, cols=30)
    with pytest.raises(ShapeError, match="does not fit"):
        plant_anomalies(data, window=16, s_anom=20)
    with pytest.raises(ShapeError, match="smaller than"):
        plant_anomalies(data, window=64, s_anom=40)
    with pytest.raises(ShapeError):
        plant_anomalies(data[0], window=16, s_anom=4)
    with pytest.raises(HsiAnomalyError):
        plant_anomalies(data, window=16, s_anom=4, p_anom=1.5)
    # a cube smaller than the window but larger than the anomaly: one clipped window
    p = plant_anomalies(data, window=64, s_anom=10, p_anom=0.05)
    assert p.n_anomalies == 1 and int(p.gt.sum()) == 100


def test_population_uses_global_stats_and_global_choice():
    a = _cube(bands=3, rows=64, cols=64, seed=1)
    b = _cube(bands=3, rows=64, cols=64, seed=2) + 1.0
    out = plant_population([a, b], window=16, p_anom=0.25, s_anom=4, seed=0)
    assert len(out) == 2
    assert sum(p.n_anomalies for p in out) == round(0.25 * 32)
    means, stds = band_stats([a, b])
    both = np.concatenate([a.reshape(3, -1), b.reshape(3, -1)], axis=1).astype(np.float64)
    np.testing.assert_allclose(means, both.mean(1), rtol=1e-6)
    np.testing.assert_allclose(stds, both.std(1), rtol=1e-5)
    for p, src in zip(out, (a, b)):
        np.testing.assert_allclose(p.stats[0], means)
        m = p.gt.astype(bool)
        coef = (p.data[:, m] - means[:, None]) / stds[:, None]
        assert coef.size == 0 or (coef.min() >= 3 - 1e-4 and coef.max() < 5 + 1e-4)
        np.testing.assert_array_equal(p.data[:, ~m], src[:, ~m])
    again = plant_population([a, b], window=16, p_anom=0.25, s_anom=4, seed=0)
    assert [p.anomalies for p in again] == [p.anomalies for p in out]
