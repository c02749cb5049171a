"""Georeferencing through the napari reader and writer (no viewer needed): layers carry pixel size and
origin, saved maps and cubes keep the CRS, a re-opened score map saved again keeps it."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS  # noqa: E402
from rasterio.transform import from_origin  # noqa: E402

from napari_hsi_anomaly._reader import layer_geometry, read_layers  # noqa: E402
from napari_hsi_anomaly._writer import write_image, write_labels  # noqa: E402
from napari_hsi_anomaly.core.io import read_cube  # noqa: E402

T = from_origin(600000.0, 5000040.0, 20.0, 20.0)


@pytest.fixture
def geotiff(tmp_path):
    data = np.random.default_rng(0).integers(1, 200, (4, 30, 40)).astype("uint16")
    path = tmp_path / "scene.tif"
    with rasterio.open(path, "w", driver="GTiff", width=40, height=30, count=4, dtype="uint16",
                       crs=CRS.from_epsg(32633), transform=T, compress="lzw") as ds:
        ds.write(data)
    return path


def _epsg(path):
    with rasterio.open(path) as ds:
        return ds.crs.to_epsg() if ds.crs else None, tuple(ds.transform)[:6]


def test_layers_get_pixel_size_and_origin(geotiff):
    layers = read_layers(str(geotiff))
    stack, rgb = layers[0], layers[1]
    assert stack[1]["scale"] == (1.0, 20.0, 20.0)
    # centre of the first pixel: x = 600010, y = 5000030 (row axis is -y)
    assert stack[1]["translate"] == (0.0, -5000030.0, 600010.0)
    assert rgb[1]["scale"] == (20.0, 20.0) and rgb[1]["translate"] == stack[1]["translate"][1:]


def test_no_geometry_without_north_up_transform():
    assert layer_geometry({}) == {}
    assert layer_geometry({"transform": (1.0, 0.5, 0, 0, -1.0, 0)}) == {}


def test_score_and_mask_round_trip_keep_crs(geotiff, tmp_path):
    stack = read_layers(str(geotiff))[0]
    cube = stack[1]["metadata"]["cube"]
    scores = np.random.default_rng(1).random((30, 40)).astype(np.float32)
    out = write_image(str(tmp_path / "scores.tif"), scores, {"name": "anomaly score",
                                                            "metadata": {"like": cube}})[0]
    assert _epsg(out) == (32633, tuple(T)[:6])
    mask = (scores > 0.5).astype(np.int32)
    m = write_labels(str(tmp_path / "mask.tif"), mask, {"name": "mask", "metadata": {"like": cube}})[0]
    assert _epsg(m)[0] == 32633
    # the score map re-opened through the reader and saved again keeps its CRS
    data, kwargs, kind = read_layers(out)[0]
    assert kind == "image" and kwargs["metadata"]["georef"]["crs"]
    again = write_image(str(tmp_path / "again.tif"), data, kwargs)[0]
    assert _epsg(again) == (32633, tuple(T)[:6])


def test_cube_layer_saves_as_a_cube(geotiff, tmp_path):
    data, kwargs, _ = read_layers(str(geotiff))[0]
    out = write_image(str(tmp_path / "cube.tif"), data, kwargs)[0]
    back = read_cube(out)
    assert back.shape == (4, 30, 40) and _epsg(out)[0] == 32633
    np.testing.assert_array_equal(np.asarray(back.data), np.asarray(data))
    rgb, rkw, _ = read_layers(str(geotiff))[1]
    out = write_image(str(tmp_path / "rgb.tif"), rgb, rkw)[0]
    assert read_cube(out).shape == (3, 30, 40)
