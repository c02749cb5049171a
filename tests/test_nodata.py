"""core.nodata: border fill detection (issue 10), header no-data values, constant cubes."""

from __future__ import annotations

import numpy as np
import pytest

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.nodata import check_not_constant, detect_fill, mark_fill


def _scene(rows=60, cols=60, bands=5, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).random((bands, rows, cols)).astype(np.float32) + 0.1


def _padded(value=0.0, pad=20) -> tuple[Cube, np.ndarray]:
    inner = _scene()
    b, r, c = inner.shape
    data = np.full((b, r + 2 * pad, c + 2 * pad), value, np.float32)
    data[:, pad:pad + r, pad:pad + c] = inner
    frame = np.ones(data.shape[1:], bool)
    frame[pad:pad + r, pad:pad + c] = False
    return Cube(data), frame


@pytest.mark.parametrize("value", [0.0, -9999.0, 1.5])
def test_padded_border_is_fill(value):
    cube, frame = _padded(value)
    fill = detect_fill(cube)
    assert fill is not None
    np.testing.assert_array_equal(fill, frame)


def test_fill_with_a_different_value_per_band():
    cube, frame = _padded(0.0)
    cube.data[:, frame] = np.arange(5, dtype=np.float32)[:, None]  # same spectrum, not one value
    np.testing.assert_array_equal(detect_fill(cube), frame)


def test_rotated_flight_line_corners_are_fill():
    data = _scene(80, 80)
    yy, xx = np.mgrid[:80, :80]
    corners = (np.abs(yy - 40) + np.abs(xx - 40)) > 50  # four triangles, each touching the border
    data[:, corners] = 0
    np.testing.assert_array_equal(detect_fill(Cube(data)), corners)


def test_small_or_interior_uniform_areas_are_kept():
    data = _scene(100, 100)
    data[:, 0:3, 0:3] = 0  # 9 px at the border: below 1 % and 64 px
    data[:, 40:70, 40:70] = 0.5  # 900 px of one spectrum, not touching the border
    assert detect_fill(Cube(data)) is None


def test_uniform_area_of_other_spectra_is_not_merged():
    data = _scene(100, 100)
    data[:, :, :20] = 0  # a fill strip
    data[0, 50:60, 5:15] = 1  # one band differs inside the strip: those pixels are not fill
    fill = detect_fill(Cube(data))
    assert fill[:, :20].sum() == 100 * 20 - 100 and not fill[50:60, 5:15].any()


def test_whole_image_constant_is_not_fill_but_refused():
    cube = Cube(np.zeros((3, 40, 40), np.float32))
    assert detect_fill(cube) is None
    with pytest.raises(HsiAnomalyError, match="same spectrum"):
        check_not_constant(cube)


def test_mark_fill_makes_pixels_no_data():
    cube, frame = _padded(0.0)
    assert mark_fill(cube) == int(frame.sum())
    np.testing.assert_array_equal(cube.valid_mask(), ~frame)
    block = cube.as_float32()
    assert np.isnan(block[:, frame]).all() and np.isfinite(block[:, ~frame]).all()
    part = cube.as_float32(slice(0, 30), slice(10, 50))
    np.testing.assert_array_equal(np.isnan(part[0]), frame[0:30, 10:50])


def test_header_no_data_value_is_not_fill_again():
    cube, frame = _padded(-9999.0)
    cube.nodata = -9999.0
    assert detect_fill(cube) is None  # already no-data through the header value
    np.testing.assert_array_equal(cube.valid_mask(), ~frame)


def test_envi_data_ignore_value_honoured(tmp_path):
    from napari_hsi_anomaly.core.io import read_cube, write_cube

    cube, frame = _padded(-1.0)
    cube.nodata = -1.0
    path = write_cube(tmp_path / "c.hdr", cube)
    back = read_cube(path)
    assert back.nodata == -1.0
    np.testing.assert_array_equal(back.valid_mask(), ~frame)


def test_geotiff_nodata_honoured(tmp_path):
    import tifffile

    from napari_hsi_anomaly.core.io import read_cube

    cube, frame = _padded(-5.0)
    tifffile.imwrite(tmp_path / "c.tif", cube.data, photometric="minisblack",
                     extratags=[(42113, "s", 0, "-5", True)])
    back = read_cube(tmp_path / "c.tif")
    assert back.nodata == -5.0
    np.testing.assert_array_equal(back.valid_mask(), ~frame)


def test_constant_only_outside_fill_is_fine():
    cube, _ = _padded(0.0)
    mark_fill(cube)
    check_not_constant(cube)  # the scene inside varies


def test_constant_valid_pixels_refused_with_nan_elsewhere():
    data = np.full((3, 30, 30), 2.0, np.float32)
    data[:, :5] = np.nan
    with pytest.raises(HsiAnomalyError, match="constant cube"):
        check_not_constant(Cube(data))


def test_memory_map_is_read_band_by_band(tmp_path):
    cube, frame = _padded(0.0)
    np.save(tmp_path / "c.npy", cube.data)
    mm = np.load(tmp_path / "c.npy", mmap_mode="r")
    np.testing.assert_array_equal(detect_fill(Cube(mm)), frame)
