"""The Cube type and the thesis window grid."""

import numpy as np
import pytest

from napari_hsi_anomaly.core import Cube, ShapeError
from napari_hsi_anomaly.core.windows import section_grid, window_grid, window_starts


def test_window_starts_thesis_overlap() -> None:
    starts = window_starts(1830, 128)
    assert len(starts) == 15  # 14 full steps + one window moved back (thesis: 15 x 15 = 225)
    assert starts[:2] == [0, 128] and starts[-1] == 1830 - 128
    assert window_starts(256, 128) == [0, 128]
    assert window_starts(100, 128) == [0]


def test_window_grid_covers_image() -> None:
    grid = window_grid(300, 200, 64)
    cover = np.zeros((300, 200), int)
    for g in grid:
        assert g.r1 - g.r0 == 64 and g.c1 - g.c0 == 64
        cover[g.slices] += 1
    assert cover.min() >= 1
    assert len(window_grid(1830, 1830, 128)) == 225


def test_section_grid_splits_window_exactly() -> None:
    (w,) = window_grid(128, 128, 128)
    secs = section_grid(w, 4)
    assert len(secs) == 16
    assert {(s.r1 - s.r0, s.c1 - s.c0) for s in secs} == {(32, 32)}
    assert sum((s.r1 - s.r0) * (s.c1 - s.c0) for s in secs) == 128 * 128


def test_cube_rejects_2d_and_mismatched_wavelengths() -> None:
    with pytest.raises(ShapeError, match="3 dimensions"):
        Cube(np.zeros((4, 4)))
    with pytest.raises(ShapeError, match="wavelengths"):
        Cube(np.zeros((3, 4, 4)), wavelengths=[1, 2])


def test_cube_nodata_scale_and_valid_mask() -> None:
    data = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4) * 10
    data[1, 0, 0] = -9999
    cube = Cube(data, nodata=-9999, scale_factor=10)
    f = cube.as_float32()
    assert np.isnan(f[1, 0, 0]) and f[0, 0, 1] == pytest.approx(1.0)
    mask = cube.valid_mask()
    assert mask.shape == (3, 4) and not mask[0, 0] and mask.sum() == 11


def test_cube_nan_pixels_are_invalid_not_fatal() -> None:
    data = np.random.default_rng(0).random((3, 5, 5)).astype(np.float32)
    data[0, 2, 2] = np.nan
    data[2, 1, 1] = np.inf
    cube = Cube(data)
    assert cube.valid_mask().sum() == 23
    rgb = cube.rgb()
    assert rgb.shape == (5, 5, 3) and np.isfinite(rgb).all() and rgb.max() <= 1


def test_rgb_bands_by_wavelength_and_default_bands() -> None:
    wl = np.array([443, 490, 560, 665, 705, 842], float)
    cube = Cube(np.zeros((6, 2, 2), np.float32), wavelengths=wl)
    assert cube.rgb_bands() == (3, 2, 1)
    cube.default_bands = (5, 3, 2)
    assert cube.rgb_bands() == (5, 3, 2)
    assert Cube(np.zeros((6, 2, 2))).band_label(0) == "band 1"
