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
    write_cube(tmp_path / "c.hdr", _cube())
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    from spectral.io import envi

    # the ENVI writer is Spectral Python's: its header write fails after the data file is created
    monkeypatch.setattr(envi, "write_envi_header", boom)
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
    assert cube.georef["transform"] == (30.0, 0.0, 5e5, 0.0, -30.0, 4e6)
    write_map(tmp_path / "score.tif", np.ones((5, 6), np.float32), like=cube)
    with tifffile.TiffFile(tmp_path / "score.tif") as tif:
        page = tif.pages[0]
        assert page.tags[33550].value[:2] == (30.0, 30.0)
        assert page.tags[33922].value[3:5] == (5e5, 4e6)
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


def _geotiff_cube(tmp_path):
    """A 3-band GeoTIFF with a CRS (UTM 33N), a transform and a no-data value, written by rasterio."""
    import rasterio
    from rasterio.transform import from_origin

    data = np.random.default_rng(1).normal(100, 10, (3, 8, 10)).astype(np.float32)
    data[:, 0, 0] = -9999.0
    path = tmp_path / "geo.tif"
    with rasterio.open(path, "w", driver="GTiff", width=10, height=8, count=3, dtype="float32",
                       crs="EPSG:32633", transform=from_origin(500000, 4000000, 20, 20),
                       nodata=-9999.0) as ds:
        ds.write(data)
    return path, data


def _score(cube):
    from napari_hsi_anomaly.core.scoring.rx import rx_global

    s = np.nan_to_num(rx_global(cube), nan=0.0)
    return (s / s.max()).astype(np.float32)


@pytest.mark.parametrize("suffix", [".tif", ".hdr"])
def test_geotiff_georef_survives_read_score_write(tmp_path, suffix):
    import rasterio

    from napari_hsi_anomaly.core.io import read_cube, read_map

    path, data = _geotiff_cube(tmp_path)
    cube = read_cube(path, layout="bands-first")
    assert cube.nodata == -9999.0 and not cube.valid_mask()[0, 0]
    assert cube.georef["transform"] == (20.0, 0.0, 500000.0, 0.0, -20.0, 4000000.0)
    assert rasterio.crs.CRS.from_wkt(cube.georef["crs"]).to_epsg() == 32633
    score = _score(cube)
    out = write_map(tmp_path / f"score{suffix}", score, like=cube)
    with rasterio.open(out if suffix == ".tif" else out.with_suffix(".img")) as ds:  # GDAL's view
        assert ds.crs.to_epsg() == 32633
        assert tuple(ds.transform)[:6] == pytest.approx((20, 0, 500000, 0, -20, 4000000))
        np.testing.assert_array_equal(ds.read(1), score)
    np.testing.assert_array_equal(read_map(out), score)
    from napari_hsi_anomaly.core.io.geotiff import tiff_georef

    back = tiff_georef(out)[0] if suffix == ".tif" else read_cube(out).georef  # our reader's view
    assert back["transform"] == pytest.approx(cube.georef["transform"])
    assert rasterio.crs.CRS.from_wkt(back["crs"]).to_epsg() == 32633


def test_envi_map_info_survives_read_score_write(tmp_path):
    import rasterio

    from napari_hsi_anomaly.core.io import read_cube

    data = np.random.default_rng(2).normal(50, 5, (4, 6, 7)).astype(np.float32)
    hdr = write_cube(tmp_path / "e.hdr", Cube(data))
    hdr.write_text(hdr.read_text() + "map info = {UTM, 1.5, 1.5, 600010, 5000010, 20, 20, 32, North, "
                   "WGS-84, units=Meters}\n")
    cube = read_cube(hdr)
    assert cube.georef["transform"] == (20.0, 0.0, 600000.0, 0.0, -20.0, 5000020.0)
    assert rasterio.crs.CRS.from_wkt(cube.georef["crs"]).to_epsg() == 32632
    score = _score(cube)
    for suffix in (".hdr", ".tif"):
        out = write_map(tmp_path / f"s{suffix}", score, like=cube)
        with rasterio.open(out.with_suffix(".img") if suffix == ".hdr" else out) as ds:
            assert tuple(ds.transform)[:6] == pytest.approx((20, 0, 600000, 0, -20, 5000020))
            assert ds.crs.to_epsg() == 32632
    assert read_header(tmp_path / "s.hdr")["map info"][1] == "1.5"  # the source's own keys, as written


def test_write_cube_keeps_georef_from_a_geotiff(tmp_path):
    import rasterio

    from napari_hsi_anomaly.core.io import read_cube

    path, _ = _geotiff_cube(tmp_path)
    out = write_cube(tmp_path / "copy.hdr", read_cube(path, layout="bands-first"))
    with rasterio.open(out.with_suffix(".img")) as ds:
        assert ds.crs.to_epsg() == 32633 and ds.transform.c == 500000


@pytest.mark.parametrize("suffix", [".npy", ".tif", ".hdr"])
@pytest.mark.parametrize("kind", ["scores", "mask"])
def test_every_saved_map_reads_back(tmp_path, suffix, kind):
    from napari_hsi_anomaly.core.io import read_map

    rng = np.random.default_rng(3)
    arr = rng.random((5, 6)).astype(np.float32) if kind == "scores" else rng.random((5, 6)) > 0.5
    out = write_map(tmp_path / f"{kind}{suffix}", arr)
    back = read_map(out)
    assert back.shape == (5, 6)
    np.testing.assert_array_equal(back, arr.astype(back.dtype))


def test_read_map_npz_roles_and_errors(tmp_path):
    from napari_hsi_anomaly.core.errors import HsiAnomalyError
    from napari_hsi_anomaly.core.io import read_map

    scores, gt = np.random.default_rng(4).random((4, 5)), np.eye(4, 5, dtype=np.uint8)
    np.savez(tmp_path / "r.npz", scores=scores, gt=gt, cube=np.zeros((4, 5, 3)))
    np.testing.assert_array_equal(read_map(tmp_path / "r.npz", role="scores"), scores)
    np.testing.assert_array_equal(read_map(tmp_path / "r.npz", role="gt"), gt)
    np.testing.assert_array_equal(read_map(tmp_path / "r.npz", key="gt"), gt)
    with pytest.raises(HsiAnomalyError, match="which array"):
        read_map(tmp_path / "r.npz")
    with pytest.raises(HsiAnomalyError, match="no array 'x'"):
        read_map(tmp_path / "r.npz", key="x")
    np.save(tmp_path / "cube.npy", np.zeros((4, 5, 3)))
    with pytest.raises(ShapeError, match="2-D"):
        read_map(tmp_path / "cube.npy")
    np.save(tmp_path / "one.npy", np.zeros((1, 4, 5)))
    assert read_map(tmp_path / "one.npy").shape == (4, 5)


@pytest.mark.parametrize("suffix", [".npy", ".tif", ".hdr"])
def test_saved_maps_are_read_by_cli_evaluate(tmp_path, suffix, capsys):
    from napari_hsi_anomaly.cli.main import main

    rng = np.random.default_rng(5)
    gt = np.zeros((8, 9), np.uint8)
    gt[2:4, 3:5] = 1
    scores = np.clip(rng.random((8, 9)) * 0.5 + gt * 0.5, 0, 1).astype(np.float32)
    s = write_map(tmp_path / f"scores{suffix}", scores)  # as the Detect dock's Save scores... writes
    m = write_map(tmp_path / f"mask{suffix}", gt.astype(bool))  # and Save mask...
    assert main(["evaluate", "--scores", str(s), "--gt", str(m)]) == 0
    out = capsys.readouterr().out
    assert "AUC        1.0000" in out
