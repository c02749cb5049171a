"""GeoTIFFs as GDAL/rasterio write them: every compression, tiled, BigTIFF, COG; round trips of CRS,
transform, nodata and band descriptions."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS  # noqa: E402
from rasterio.transform import from_origin  # noqa: E402

from napari_hsi_anomaly.core.cube import Cube  # noqa: E402
from napari_hsi_anomaly.core.io import describe, read_cube, write_cube, write_map  # noqa: E402
from napari_hsi_anomaly.core.io.raster import RasterBands  # noqa: E402

TRANSFORM = from_origin(600000.0, 5000040.0, 20.0, 20.0)
CRS_UTM = CRS.from_epsg(32633)
NAMES = ["B02", "B03", "B04", "B08"]


def _data(dtype="uint16", bands=4, rows=70, cols=90):
    rng = np.random.default_rng(1)
    return rng.integers(1, 250, (bands, rows, cols)).astype(dtype)


def _write(path, data, **opts):
    profile = dict(driver=opts.pop("driver", "GTiff"), width=data.shape[2], height=data.shape[1],
                   count=data.shape[0], dtype=data.dtype.name, crs=CRS_UTM, transform=TRANSFORM,
                   nodata=0, **opts)
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
        for b in range(data.shape[0]):
            ds.set_band_description(b + 1, NAMES[b])
    return path


CASES = {
    "lzw": dict(compress="lzw"),
    "deflate": dict(compress="deflate", predictor=2),
    "zstd": dict(compress="zstd"),
    "lerc": dict(compress="lerc"),
    "packbits": dict(compress="packbits"),
    "tiled-lzw": dict(compress="lzw", tiled=True, blockxsize=32, blockysize=32),
    "bigtiff-deflate": dict(compress="deflate", BIGTIFF="YES"),
    "pixel-interleaved-zstd": dict(compress="zstd", interleave="pixel"),
    "cog": dict(driver="COG", compress="deflate", blocksize=32),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_compressed_geotiffs_read_lazily_with_names_and_georef(tmp_path, case):
    data = _data()
    path = _write(tmp_path / f"{case}.tif", data, **CASES[case])
    cube = read_cube(path)
    assert isinstance(cube.data, RasterBands)  # decoded on access, not on opening
    assert cube.shape == data.shape
    assert cube.band_names == NAMES
    assert cube.nodata == 0
    assert CRS.from_wkt(cube.georef["crs"]).to_epsg() == 32633
    assert cube.georef["transform"] == tuple(TRANSFORM)[:6]
    np.testing.assert_array_equal(np.asarray(cube.data), data)
    np.testing.assert_array_equal(cube.data[2, 5:17, 30:41], data[2, 5:17, 30:41])
    np.testing.assert_array_equal(cube.data[:, 3, ::7], data[:, 3, ::7])
    sub = cube.select_bands([0, 3])
    np.testing.assert_array_equal(np.asarray(sub.data), data[[0, 3]])
    assert sub.band_names == ["B02", "B08"]


def test_jpeg_geotiff_reads(tmp_path):
    data = _data("uint8", bands=3)
    path = _write(tmp_path / "j.tif", data, compress="jpeg")
    cube = read_cube(path)
    assert cube.shape == data.shape
    assert np.abs(np.asarray(cube.data, dtype=np.int32) - data).mean() < 40  # lossy


def test_uncompressed_geotiff_stays_memory_mapped(tmp_path):
    data = _data()
    cube = read_cube(_write(tmp_path / "raw.tif", data))
    assert isinstance(cube.data, np.memmap) or isinstance(getattr(cube.data, "base", None), np.memmap)
    assert cube.band_names == NAMES
    np.testing.assert_array_equal(cube.data, data)


def test_reads_are_budget_checked(tmp_path, monkeypatch):
    from napari_hsi_anomaly.core.guards import MemoryBudgetError

    cube = read_cube(_write(tmp_path / "c.tif", _data(), compress="lzw"))
    monkeypatch.setenv("HSI_ANOMALY_MEMORY_BUDGET", "10000")
    with pytest.raises(MemoryBudgetError):
        np.asarray(cube.data)
    assert cube.data[0, :10, :10].shape == (10, 10)  # a small window still fits


def test_info_reads_headers_only(tmp_path, monkeypatch):
    path = _write(tmp_path / "c.tif", _data(), compress="zstd", tiled=True, blockxsize=32, blockysize=32)
    cube = read_cube(path)

    def boom(*a, **k):
        raise AssertionError("pixels decoded")

    monkeypatch.setattr(RasterBands, "_read", boom)
    text = describe(cube)
    assert "B02, B03, B04, B08" in text
    assert "zstd" in text and "tiled" in text
    assert "not counted" in text


def _cube(tmp_path):
    return read_cube(_write(tmp_path / "src.tif", _data(), compress="lzw"))


@pytest.mark.parametrize("fmt", [None, "cog"])
def test_score_map_round_trip_keeps_georef_nodata_description(tmp_path, fmt):
    cube = _cube(tmp_path)
    scores = np.linspace(0, 1, cube.rows * cube.cols, dtype=np.float32).reshape(cube.rows, cube.cols)
    scores[0, 0] = np.nan
    out = write_map(tmp_path / "scores.tif", scores, like=cube, fmt=fmt)
    with rasterio.open(out) as ds:
        assert ds.crs.to_epsg() == 32633
        assert tuple(ds.transform)[:6] == tuple(TRANSFORM)[:6]
        assert np.isnan(ds.nodata)
        assert ds.descriptions == ("anomaly score",)
        assert ds.compression is not None
        if fmt == "cog":
            assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        np.testing.assert_array_equal(ds.read(1), scores)
    back = read_cube(out)
    assert back.band_names == ["anomaly score"]
    assert back.georef["transform"] == cube.georef["transform"]


def test_mask_map_is_uint8_without_nodata(tmp_path):
    cube = _cube(tmp_path)
    mask = np.zeros((cube.rows, cube.cols), np.uint8)
    mask[3:5, 4:9] = 1
    out = write_map(tmp_path / "mask.tif", mask, like=cube)
    with rasterio.open(out) as ds:
        assert ds.nodata is None and ds.dtypes[0] == "uint8" and ds.descriptions == ("mask",)
        np.testing.assert_array_equal(ds.read(1), mask)


@pytest.mark.parametrize("fmt", ["tif", "cog"])
def test_cube_round_trip_as_geotiff(tmp_path, fmt):
    cube = _cube(tmp_path)
    out = write_cube(tmp_path / "cube.tif", cube, fmt=fmt)
    back = read_cube(out)
    assert back.band_names == NAMES
    assert back.nodata == 0
    assert CRS.from_wkt(back.georef["crs"]) == CRS.from_wkt(cube.georef["crs"])
    assert back.georef["transform"] == cube.georef["transform"]
    np.testing.assert_array_equal(np.asarray(back.data), np.asarray(cube.data))


def test_big_map_is_tiled(tmp_path):
    arr = np.zeros((300, 280), np.float32)
    out = write_map(tmp_path / "big.tif", arr, like=Cube(data=np.zeros((1, 300, 280), np.float32),
                                                           georef={"transform": tuple(TRANSFORM)[:6]}))
    with rasterio.open(out) as ds:
        assert ds.profile.get("tiled") and ds.block_shapes[0] == (256, 256)
        assert tuple(ds.transform)[:6] == tuple(TRANSFORM)[:6]


def test_unknown_format_refused(tmp_path):
    from napari_hsi_anomaly.core.io import WriteError

    with pytest.raises(WriteError, match="format"):
        write_map(tmp_path / "x.tif", np.zeros((2, 2), np.float32), fmt="png")
    with pytest.raises(WriteError, match="COG"):
        write_map(tmp_path / "x.npy", np.zeros((2, 2), np.float32), fmt="cog")
