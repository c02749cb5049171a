"""ENVI through Spectral Python: files spectral writes in each interleave read back memory-mapped, ours
open in spectral, and a 1-byte header without ``byte order`` (which spectral refuses) still reads."""

from __future__ import annotations

import numpy as np
import pytest
from spectral.io import envi

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.io import read_cube, write_cube


def _data(dtype="int16"):
    return np.arange(3 * 5 * 7).reshape(3, 5, 7).astype(dtype)  # (bands, rows, cols)


@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
@pytest.mark.parametrize("byteorder", [0, 1])
def test_spectral_written_files_read_as_memmaps(tmp_path, interleave, byteorder):
    data = _data()
    meta = {"wavelength": [450.0, 550.0, 650.0], "wavelength units": "Nanometers",
            "band names": ["b", "g", "r"], "data ignore value": -9}
    envi.save_image(str(tmp_path / "x.hdr"), data.transpose(1, 2, 0), interleave=interleave,
                    byteorder=byteorder, metadata=meta, ext=".img")
    cube = read_cube(tmp_path / "x.hdr")
    assert isinstance(cube.data.base, np.memmap) or isinstance(cube.data, np.memmap)
    assert cube.interleave == interleave
    np.testing.assert_array_equal(cube.data, data)
    assert cube.band_names == ["b", "g", "r"] and cube.nodata == -9
    np.testing.assert_allclose(cube.wavelengths, [450, 550, 650])


def test_our_files_open_in_spectral(tmp_path):
    data = _data("float32")
    cube = Cube(data, wavelengths=np.array([0.45, 0.55, 0.65]) * 1000, band_names=["b", "g", "r"],
                georef={"transform": (30.0, 0.0, 5e5, 0.0, -30.0, 4e6)})
    hdr = write_cube(tmp_path / "c.hdr", cube)
    img = envi.open(str(hdr), str(tmp_path / "c.img"))
    np.testing.assert_array_equal(img.load().transpose(2, 0, 1), data)
    assert img.metadata["band names"] == ["b", "g", "r"]
    assert img.metadata["map info"][3:5] == ["500000.0", "4000000.0"]


def test_one_byte_without_byte_order_reads(tmp_path):
    data = _data("uint8")
    data.tofile(tmp_path / "u.img")
    (tmp_path / "u.hdr").write_text(
        "ENVI\nSamples = 7\nLINES = 5\nbands = 3\ndata type = 1\nInterleave = BSQ\nbbl = {1, 0, 1}\n")
    with pytest.raises(Exception):  # noqa: B017 - spectral alone refuses this header
        envi.open(str(tmp_path / "u.hdr"), str(tmp_path / "u.img"))
    cube = read_cube(tmp_path / "u.hdr")
    np.testing.assert_array_equal(cube.data, data)
    from napari_hsi_anomaly.core.bands import default_band_selection

    assert default_band_selection(cube).tolist() == [0, 2]
