"""RX detectors against independent formulas."""

import numpy as np
import pytest
from scipy.spatial.distance import mahalanobis
from sklearn.metrics import roc_auc_score

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.scoring import pca_reduce, rx_global, rx_local


def _cube(seed=0, bands=5, rows=12, cols=9):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(bands, bands))
    return np.einsum("ij,jrc->irc", mix, rng.normal(size=(bands, rows, cols))) + 10.0


def test_rx_global_equals_mahalanobis():
    cube = _cube()
    x = cube.reshape(cube.shape[0], -1).T
    vi = np.linalg.inv(np.cov(x, rowvar=False, ddof=1))
    mu = x.mean(axis=0)
    expected = np.array([mahalanobis(p, mu, vi) for p in x]).reshape(cube.shape[1:])
    got = rx_global(cube)
    assert got.dtype == np.float32 and got.shape == cube.shape[1:]
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_rx_global_nan_pixels_are_left_out():
    cube = _cube()
    cube[2, 3, 4] = np.nan
    got = rx_global(Cube(cube))
    assert np.isnan(got[3, 4]) and np.isfinite(np.delete(got.ravel(), 3 * 9 + 4)).all()
    ok = np.ones(cube.shape[1:], bool)
    ok[3, 4] = False
    x = cube[:, ok].T
    vi = np.linalg.inv(np.cov(x, rowvar=False))
    np.testing.assert_allclose(got[ok], [mahalanobis(p, x.mean(0), vi) for p in x], rtol=1e-5)


def test_rx_global_nodata_value():
    cube = _cube()
    cube[:, 0, 0] = -9999
    got = rx_global(Cube(cube, nodata=-9999))
    assert np.isnan(got[0, 0]) and np.isfinite(got[1:]).all()


def _local_brute(x, inner, outer, ridge):
    d, rows, cols = x.shape
    out = np.zeros((rows, cols))
    ho, hi = outer // 2, inner // 2
    for r in range(rows):
        for c in range(cols):
            bg = []
            for rr in range(max(0, r - ho), min(rows, r + ho + 1)):
                for cc in range(max(0, c - ho), min(cols, c + ho + 1)):
                    if abs(rr - r) <= hi and abs(cc - c) <= hi:
                        continue
                    bg.append(x[:, rr, cc])
            bg = np.array(bg)
            cov = np.cov(bg, rowvar=False, ddof=1)
            cov += np.eye(d) * (ridge * np.trace(cov) / d + 1e-12)
            diff = x[:, r, c] - bg.mean(0)
            out[r, c] = np.sqrt(diff @ np.linalg.solve(cov, diff))
    return out


def test_rx_local_equals_brute_force():
    cube = _cube(1, bands=3, rows=11, cols=13)
    got = rx_local(cube, 3, 7, n_components=None, ridge=1e-3)
    np.testing.assert_allclose(got, _local_brute(cube, 3, 7, 1e-3), rtol=1e-4)
    strips = rx_local(cube, 3, 7, n_components=None, ridge=1e-3, strip_rows=2)
    np.testing.assert_allclose(strips, got, rtol=1e-9)


def test_rx_local_with_pca_equals_brute_force_on_components():
    cube = _cube(2, bands=6, rows=10, cols=10)
    got = rx_local(cube, 3, 9, n_components=4, ridge=1e-6)
    np.testing.assert_allclose(got, _local_brute(pca_reduce(cube, 4), 3, 9, 1e-6), rtol=1e-5)


def test_rx_local_rejects_bad_windows():
    with pytest.raises(ValueError):
        rx_local(_cube(), 8, 7)


def test_rx_global_reproduces_published_auc(shared_data):
    z = np.load(shared_data / "hsi-ad" / "abu-airport-1.npz", allow_pickle=False)
    score = rx_global(np.moveaxis(z["cube"], -1, 0))
    assert round(roc_auc_score(z["gt"].ravel(), score.ravel()), 4) == 0.8221


def _local_brute_valid(x, inner, outer, ridge):
    """The slow formula with invalid (NaN) pixels left out of every background."""
    d, rows, cols = x.shape
    ok = np.isfinite(x).all(axis=0)
    out = np.full((rows, cols), np.nan)
    ho, hi = outer // 2, inner // 2
    for r in range(rows):
        for c in range(cols):
            if not ok[r, c]:
                continue
            win = np.zeros((rows, cols), bool)
            win[max(0, r - ho):r + ho + 1, max(0, c - ho):c + ho + 1] = True
            win[max(0, r - hi):r + hi + 1, max(0, c - hi):c + hi + 1] = False
            bg = x[:, win & ok].T
            cov = np.cov(bg, rowvar=False, ddof=1)
            cov += np.eye(d) * (ridge * np.trace(cov) / d + 1e-12)
            diff = x[:, r, c] - bg.mean(0)
            out[r, c] = np.sqrt(diff @ np.linalg.solve(cov, diff))
    return out


def test_rx_local_nan_pixels_blocks_and_progress():
    from napari_hsi_anomaly.core.progress import Progress
    from napari_hsi_anomaly.core.scoring.rx import iter_rx_local

    cube = _cube(3, bands=4, rows=14, cols=11)
    cube[1, 4, 5] = np.nan
    cube[:, 9, 2] = np.nan
    expected = _local_brute_valid(cube, 3, 7, 1e-4)
    got = rx_local(cube, 3, 7, n_components=None, ridge=1e-4)
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    assert np.isnan(got[4, 5]) and np.isnan(got[9, 2])
    gen = iter_rx_local(cube, 3, 7, n_components=None, ridge=1e-4, strip_rows=3)
    steps = []
    try:
        while True:
            steps.append(next(gen))
    except StopIteration as stop:
        blocks = stop.value
    assert len(steps) == 5 and all(isinstance(p, Progress) for p in steps)
    np.testing.assert_allclose(blocks, got, rtol=1e-9)
