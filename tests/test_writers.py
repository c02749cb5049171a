"""Writers: maps and cubes to .npy, .tif, ENVI; atomic replace; errors."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import ShapeError
from napari_hsi_anomaly.core.io import WriteError, write_cube, write_map
from napari_hsi_anomaly.core.io.envi_header import read_header


def _cube() -> Cube:
    data = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)
    return Cube(
        data,
        wavelengths=[500.0, 600.5],
        band_names=["B1, blue", "B2"],
        default_bands=(1, 0, 0),
        nodata=-1,
        scale_factor=10000.0,
    )


def test_write_cube_envi_layout_and_header(tmp_path):
    hdr = write_cube(tmp_path / "c.hdr", _cube())
    assert hdr == tmp_path / "c.hdr"
    raw = np.fromfile(tmp_path / "c.img", dtype="<i2").reshape(2, 3, 4)  # BSQ
    np.testing.assert_array_equal(raw, _cube().data)
    h = read_header(hdr)
    assert (h["samples"], h["lines"], h["bands"], h["interleave"]) == ("4", "3", "2", "bsq")
    assert h["wavelength units"] == "Nanometers"
    assert [float(w) for w in h["wavelength"]] == [500.0, 600.5]
    assert h["band names"] == ["B1; blue", "B2"]
    assert h["default bands"] == ["2", "1", "1"]  # 1-based in ENVI
    assert float(h["data ignore value"]) == -1.0
    assert float(h["reflectance scale factor"]) == 10000.0


def test_write_cube_npy_is_rows_cols_bands(tmp_path):
    write_cube(tmp_path / "c.npy", _cube())
    arr = np.load(tmp_path / "c.npy")
    assert arr.shape == (3, 4, 2)
    np.testing.assert_array_equal(arr[..., 1], _cube().data[1])


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
@pytest.mark.parametrize("suffix", [".npy", ".tif", ".tiff", ".hdr"])
def test_write_map_formats(tmp_path, suffix, dtype):
    arr = (np.arange(12).reshape(3, 4) % 2).astype(dtype)
    out = write_map(tmp_path / f"m{suffix}", arr)
    if suffix == ".npy":
        back = np.load(out)
    elif suffix == ".hdr":
        back = np.fromfile(tmp_path / "m.img", dtype=np.dtype(dtype).newbyteorder("<"))
        back = back.reshape(3, 4)
    else:
        back = tifffile.imread(out)
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, arr)


@pytest.mark.parametrize("suffix", [".npy", ".tif", ".hdr"])
def test_write_map_bool_mask_becomes_uint8(tmp_path, suffix):
    from napari_hsi_anomaly.core.io import read_cube

    mask = np.eye(3, 4, dtype=bool)
    out = write_map(tmp_path / f"m{suffix}", mask)
    back = {".npy": np.load, ".tif": tifffile.imread}.get(suffix, lambda p: read_cube(p).data[0])(out)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, mask)


def test_write_map_rejects_non_2d_and_unknown_suffix(tmp_path):
    with pytest.raises(ShapeError, match="2-D"):
        write_map(tmp_path / "m.npy", np.zeros((2, 3, 4)))
    with pytest.raises(WriteError, match="unknown extension"):
        write_map(tmp_path / "m.png", np.zeros((3, 4)))


def test_failed_write_keeps_existing_files(tmp_path, monkeypatch):
    from napari_hsi_anomaly.core.io import writers

    write_cube(tmp_path / "c.hdr", _cube())
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def boom(fields):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writers, "format_header", boom)  # fails after the data file is written
    bigger = Cube(np.zeros((3, 5, 6), dtype=np.float32))
    with pytest.raises(WriteError, match="c.img.*No space left"):
        write_cube(tmp_path / "c.hdr", bigger)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no temp files left


def test_write_map_unsupported_dtype_is_clear(tmp_path):
    with pytest.raises(WriteError, match="ENVI cannot store"):
        write_map(tmp_path / "m.hdr", np.zeros((3, 4), dtype="U1"))
    assert list(tmp_path.iterdir()) == []


# --- round trips through read_cube -------------------------------------------------------------


def test_cube_round_trip_envi(tmp_path):
    from napari_hsi_anomaly.core.io import read_cube

    back = read_cube(write_cube(tmp_path / "c.hdr", _cube()))
    src = _cube()
    np.testing.assert_array_equal(back.data, src.data)
    assert back.dtype == src.dtype
    np.testing.assert_array_equal(back.wavelengths, src.wavelengths)
    assert back.band_names == ["B1; blue", "B2"]  # commas cannot live in an ENVI list
    assert back.default_bands == src.default_bands
    assert (back.nodata, back.scale_factor) == (src.nodata, src.scale_factor)


def test_cube_round_trip_npy(tmp_path):
    from napari_hsi_anomaly.core.io import read_cube

    back = read_cube(write_cube(tmp_path / "c.npy", _cube()))
    np.testing.assert_array_equal(back.data, _cube().data)


def test_real_bil_cube_round_trip_keeps_wavelength_order(shared_data, tmp_path):
    from napari_hsi_anomaly.core.io import read_cube

    src = read_cube(shared_data / "envi" / "jasperRidge2_R198.hdr")
    back = read_cube(write_cube(tmp_path / "j.hdr", src))
    assert back.interleave == "bsq" and src.interleave == "bil"
    np.testing.assert_array_equal(back.data, src.data)
    np.testing.assert_allclose(back.wavelengths, src.wavelengths)
    assert (back.scale_factor, back.default_bands) == (10000.0, (31, 16, 3))


@pytest.mark.parametrize("suffix", [".npy", ".tif", ".hdr"])
def test_map_round_trip(tmp_path, suffix):
    from napari_hsi_anomaly.core.io import read_cube

    score = np.random.default_rng(0).random((7, 9)).astype(np.float32)
    out = write_map(tmp_path / f"s{suffix}", score)
    if suffix == ".hdr":
        back = read_cube(out).data[0]
    elif suffix == ".npy":
        back = np.load(out)
    else:
        back = tifffile.imread(out)
    np.testing.assert_array_equal(back, score)


def test_map_like_geotiff_keeps_georeferencing(tmp_path):
    from napari_hsi_anomaly.core.io import read_cube

    tags = [
        (33550, "d", 3, (30.0, 30.0, 0.0), True),
        (33922, "d", 6, (0.0, 0.0, 0.0, 5e5, 4e6, 0.0), True),
        (34735, "H", 8, (1, 1, 0, 1, 1024, 0, 1, 1), True),
    ]
    tifffile.imwrite(
        tmp_path / "g.tif",
        np.zeros((5, 6, 3), np.uint16),
        photometric="minisblack",
        planarconfig="contig",
        extratags=tags,
    )
    cube = read_cube(tmp_path / "g.tif")
    write_map(tmp_path / "score.tif", np.ones((5, 6), np.float32), like=cube)
    with tifffile.TiffFile(tmp_path / "score.tif") as tif:
        page = tif.pages[0]
        assert page.tags[33550].value == (30.0, 30.0, 0.0)
        assert page.tags[33922].value[3:5] == (5e5, 4e6)
        assert tuple(page.tags[34735].value) == (1, 1, 0, 1, 1024, 0, 1, 1)
    # a map of another size does not get the cube's georeferencing
    write_map(tmp_path / "other.tif", np.ones((2, 2), np.float32), like=cube)
    with tifffile.TiffFile(tmp_path / "other.tif") as tif:
        assert 33550 not in tif.pages[0].tags


def test_map_like_envi_copies_map_info(tmp_path):
    from napari_hsi_anomaly.core.io import read_cube

    write_cube(tmp_path / "c.hdr", _cube())
    hdr = tmp_path / "c.hdr"
    hdr.write_text(hdr.read_text() + "map info = {UTM, 1, 1, 500000, 4000000, 30, 30, 13, North}\n")
    cube = read_cube(hdr)
    out = write_map(tmp_path / "m.hdr", np.zeros((3, 4), np.float32), like=cube)
    assert read_header(out)["map info"][0] == "UTM"
    assert read_header(out)["map info"][3] == "500000"
