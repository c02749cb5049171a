"""Spectra to CSV (core.spectra_export): one row per band, values in ``Cube.as_float32`` units."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.regions import scene_spectrum_stats
from napari_hsi_anomaly.core.spectra_export import (
    BAND_COLUMNS,
    pixel_label,
    pixel_spectrum,
    scene_columns,
    spectra_to_csv,
)


def scaled_cube() -> Cube:
    """Integer DN with a scale factor and a no-data value: the export must show scaled floats, NaN empty."""
    rng = np.random.default_rng(4)
    data = rng.integers(100, 10_000, size=(5, 7, 9)).astype(np.int16)
    data[3, 2, 4] = -1
    return Cube(data, wavelengths=np.array([450.0, 550.5, 650.0, 750.0, 850.0]),
                band_names=["b1", "b2", "b3", "b4", "b5"], nodata=-1, scale_factor=10_000.0)  # value / scale


def read(path):
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def test_columns_are_the_pixel_spectra_in_plot_units(tmp_path):
    cube = scaled_cube()
    stats = scene_spectrum_stats(cube)
    cols = [(pixel_label(2, 4, 1), pixel_spectrum(cube, 2, 4)),
            (pixel_label(6, 0, 2), pixel_spectrum(cube, 6, 0)), *scene_columns(stats)]
    out = spectra_to_csv(cube, cols, tmp_path / "spectra.csv")
    rows = read(out)
    assert tuple(rows[0][:3]) == BAND_COLUMNS
    assert rows[0][3:] == ["pin 1: pixel row 2 col 4", "pin 2: pixel row 6 col 0", "scene median",
                           "scene q25", "scene q75"]
    assert [r[0] for r in rows[1:]] == ["1", "2", "3", "4", "5"]  # 1-based, one row per band
    assert [r[1] for r in rows[1:]] == cube.band_names
    assert [float(r[2]) for r in rows[1:]] == list(cube.wavelengths)
    got = np.array([[float(v) if v else np.nan for v in r[3:]] for r in rows[1:]], dtype=np.float32)
    full = cube.as_float32()
    np.testing.assert_array_equal(got[:, 0], full[:, 2, 4])  # exact: float32 text reads back
    np.testing.assert_array_equal(got[:, 1], full[:, 6, 0])
    assert np.isnan(got[3, 0]) and rows[4][3] == ""  # no-data stays empty, not a number
    assert 0.01 < np.nanmax(got[:, 1]) < 1.0  # scaled (reflectance), not DN
    np.testing.assert_array_equal(got[:, 2:].T, np.stack(stats))


def test_no_wavelengths_or_names_leave_those_cells_empty(tmp_path):
    cube = Cube(np.ones((3, 2, 2), np.float32))
    rows = read(spectra_to_csv(cube, [("x", np.array([1.0, 2.5, np.nan]))], tmp_path / "s.csv"))
    assert rows[1:] == [["1", "", "", "1.0"], ["2", "", "", "2.5"], ["3", "", "", ""]]


def test_bad_paths_and_columns_are_refused_before_writing(tmp_path):
    cube = scaled_cube()
    col = [("a", pixel_spectrum(cube, 0, 0))]
    src = tmp_path / "scene.csv"
    src.write_text("keep")
    with pytest.raises(HsiAnomalyError, match="would overwrite the input"):
        spectra_to_csv(cube, col, src, inputs=[src])
    assert src.read_text() == "keep"
    with pytest.raises(HsiAnomalyError, match="unknown extension"):
        spectra_to_csv(cube, col, tmp_path / "s.txt")
    with pytest.raises(HsiAnomalyError, match="no spectrum to export"):
        spectra_to_csv(cube, [], tmp_path / "s.csv")
    with pytest.raises(HsiAnomalyError, match="4 values for 5 bands"):
        spectra_to_csv(cube, [("short", np.ones(4))], tmp_path / "s.csv")
    with pytest.raises(HsiAnomalyError, match="share a name"):
        spectra_to_csv(cube, col + col, tmp_path / "s.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.csv"]  # nothing half-written
