"""npe2 reader and writers, and ``launch`` (the viewer tests need a display: run under xvfb-run)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_hsi_anomaly._reader import contrast_limits, get_reader, read_layers
from napari_hsi_anomaly._writer import write_image, write_labels
from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import CubeReadError, ShapeError

JASPER = "envi/jasperRidge2_R198.hdr"


def test_get_reader_accepts_cubes_maps_and_stacks_only(tmp_path, shared_data):
    np.save(tmp_path / "cube.npy", np.zeros((4, 5, 3), np.float32))
    np.save(tmp_path / "map.npy", np.zeros((4, 5), np.float32))
    tifffile.imwrite(tmp_path / "map.tif", np.zeros((4, 5), np.float32))
    tifffile.imwrite(tmp_path / "photo.tif", np.zeros((4, 5, 3), np.uint8), photometric="rgb")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "analyze.hdr").write_bytes(bytes(348))  # an Analyze 7.5 header, not ENVI
    (tmp_path / "other.zip").write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip, not a SAFE
    (tmp_path / "folder").mkdir()
    assert get_reader(str(shared_data / JASPER)) is read_layers
    assert get_reader(str(shared_data / "hsi-ad/san-diego.npz")) is read_layers
    assert get_reader(str(tmp_path / "cube.npy")) is read_layers
    for name in ("map.npy", "map.tif"):  # saved score maps and masks open again
        assert get_reader(str(tmp_path / name)) is read_layers, name
    for name in ("photo.tif", "notes.txt", "absent.hdr", "analyze.hdr", "other.zip", "folder"):
        assert get_reader(str(tmp_path / name)) is None, name
    assert get_reader(str(shared_data / "sentinel2/eo-learn_REFERENCE_SCENES.npy")) is read_layers  # 4-D


def test_read_layers_band_stack_and_rgb(shared_data):
    stack, rgb = read_layers(str(shared_data / JASPER))
    data, kwargs, kind = stack
    assert kind == "image" and kwargs["name"] == "jasperRidge2_R198"
    assert isinstance(data, np.memmap) and data.shape == (198, 100, 100)  # lazy, not a copy
    cube = kwargs["metadata"]["cube"]
    assert isinstance(cube, Cube) and cube.data is data
    assert kwargs["metadata"]["wavelengths"][29] == pytest.approx(664.14, abs=0.01)
    assert kwargs["axis_labels"] == ("band", "row", "col")
    lo, hi = kwargs["contrast_limits"]
    assert lo < hi
    rdata, rkw, rkind = rgb
    assert rkind == "image" and rkw["rgb"] is True and rkw["name"] == "jasperRidge2_R198 RGB"
    assert rdata.shape == (100, 100, 3) and rdata.min() >= 0 and rdata.max() <= 1
    assert rkw["metadata"]["rgb_bands"] == (31, 16, 3)


def test_labelled_npz_gets_a_ground_truth_layer(shared_data):
    layers = read_layers(str(shared_data / "hsi-ad/san-diego.npz"))
    assert [(kw["name"], kind) for _, kw, kind in layers] == [
        ("san-diego", "image"), ("san-diego RGB", "image"), ("ground truth", "labels")
    ]
    gt, kw, _ = layers[2]
    assert gt.shape == (100, 100) and gt.dtype == np.uint8 and int(gt.sum()) == 58
    assert kw["metadata"]["cube"] is layers[0][1]["metadata"]["cube"]


def test_sample_style_gt_beside_the_file(tmp_path):
    from napari_hsi_anomaly.core.io import write_cube

    data = np.random.default_rng(0).random((3, 6, 7)).astype(np.float32)
    write_cube(tmp_path / "scene_000.hdr", Cube(data))
    gt = np.zeros((6, 7), np.uint8)
    gt[2, 3] = 1
    np.save(tmp_path / "scene_000_gt.npy", gt)
    np.save(tmp_path / "other_gt.npy", np.zeros((5, 5), np.uint8))  # not this cube's
    layers = read_layers(str(tmp_path / "scene_000.hdr"))
    assert layers[-1][1]["name"] == "ground truth" and layers[-1][2] == "labels"
    np.testing.assert_array_equal(layers[-1][0], gt)
    np.save(tmp_path / "scene_000_gt.npy", np.zeros((5, 5), np.uint8))  # wrong size: ignored
    assert [kind for *_, kind in read_layers(str(tmp_path / "scene_000.hdr"))] == ["image", "image"]


@pytest.mark.parametrize("suffix", [".npy", ".tif", ".hdr"])
def test_saved_maps_open_as_2d_layers(tmp_path, suffix):
    from napari_hsi_anomaly.core.io import write_map

    score = np.random.default_rng(1).random((6, 7)).astype(np.float32)
    write_map(tmp_path / f"scores{suffix}", score)
    write_map(tmp_path / f"mask{suffix}", score > 0.5)
    (data, kw, kind), = read_layers(str(tmp_path / f"scores{suffix}"))
    assert kind == "image" and kw["contrast_limits"] == (0.0, 1.0) and kw["name"] == "scores"
    np.testing.assert_array_equal(data, score)
    (data, kw, kind), = read_layers(str(tmp_path / f"mask{suffix}"))
    assert kind == "labels" and data.dtype == np.uint8
    np.testing.assert_array_equal(data, score > 0.5)


def test_stack_of_dates_opens_with_date_and_band_axes(shared_data):
    path = shared_data / "sentinel2/eo-learn_REFERENCE_SCENES.npy"
    (data, kw, kind), (rgb, rkw, rkind) = read_layers(str(path))
    assert kind == "image" and data.shape == (13, 5, 101, 100)
    assert kw["axis_labels"] == ("band", "date", "row", "col")
    meta = kw["metadata"]
    assert meta["stack"].n_dates == 5 and meta["date_axis"] == 1 and meta["band_axis"] == 0
    assert isinstance(meta["cube"], Cube) and meta["cube"].shape == (13, 101, 100)
    raw = np.load(path, mmap_mode="r")
    np.testing.assert_array_equal(data[7, 3], raw[3, :, :, 7])  # a view of the file
    assert rkind == "image" and rkw["rgb"] and rgb.shape == (5, 101, 100, 3)
    assert rkw["metadata"]["stack"] is meta["stack"]
    np.testing.assert_allclose(rgb[2], meta["stack"].cube(2).rgb(rkw["metadata"]["rgb_bands"]))


def test_contrast_limits_ignore_nodata_and_nan():
    data = np.full((3, 40, 40), -9999.0, np.float32)
    data[:, :20] = np.linspace(0, 1, 20 * 40, dtype=np.float32).reshape(20, 40)
    data[0, 0, 0] = np.nan
    lo, hi = contrast_limits(Cube(data, nodata=-9999.0))
    assert 0 <= lo < 0.05 and 0.95 < hi <= 1


def test_reader_raises_read_error_on_bad_file(tmp_path):
    (tmp_path / "x.hdr").write_text(
        "ENVI\nsamples = 4\nlines = 3\nbands = 2\ndata type = 1\ninterleave = bsq\n"
    )
    (tmp_path / "x.img").write_bytes(bytes(5))
    reader = get_reader(str(tmp_path / "x.hdr"))
    with pytest.raises(CubeReadError, match="x.img is 5 bytes"):
        reader(str(tmp_path / "x.hdr"))


def test_writers_save_2d_layers(tmp_path):
    score = np.random.default_rng(0).random((6, 7)).astype(np.float32)
    assert write_image(str(tmp_path / "s.npy"), score, {"name": "score"}) == [str(tmp_path / "s.npy")]
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), score)
    mask = (score > 0.5).astype(np.int64)
    (out,) = write_labels(str(tmp_path / "m.tif"), mask, {"name": "mask"})
    back = tifffile.imread(out)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, mask)
    # a 3-D layer is saved as a cube (issue 21: it raised ShapeError); 4-D still cannot be
    write_image(str(tmp_path / "c.npy"), np.ones((2, 6, 7)), {"name": "stack"})
    assert np.load(tmp_path / "c.npy").shape == (6, 7, 2)
    with pytest.raises(ShapeError, match="'stack' has shape"):
        write_image(str(tmp_path / "d.npy"), np.zeros((2, 2, 6, 7)), {"name": "stack"})


def test_writer_georeferences_like_the_scene(tmp_path):
    import rasterio
    scene = Cube(np.zeros((3, 6, 7), np.float32),
                 georef={"crs": "EPSG:32633", "transform": (20.0, 0.0, 5e5, 0.0, -20.0, 4e6)})
    score = np.random.default_rng(0).random((6, 7)).astype(np.float32)
    meta = {"name": "anomaly score", "metadata": {"like": scene}}
    (out,) = write_image(str(tmp_path / "s.tif"), score, meta)
    with rasterio.open(out) as ds:
        assert ds.crs.to_epsg() == 32633 and ds.transform.c == 5e5


# --- with a viewer -----------------------------------------------------------------------------


@pytest.mark.gui
def test_viewer_opens_hdr_through_plugin(make_napari_viewer, shared_data):
    viewer = make_napari_viewer()
    viewer.open(str(shared_data / JASPER), plugin="napari-hsi-anomaly")
    assert [layer.name for layer in viewer.layers] == ["jasperRidge2_R198", "jasperRidge2_R198 RGB"]
    stack, rgb = viewer.layers
    assert stack.data.shape == (198, 100, 100) and not stack.rgb
    assert isinstance(stack.metadata["cube"], Cube)
    assert tuple(stack.axis_labels) == ("band", "row", "col")
    assert rgb.rgb and rgb.data.shape == (100, 100, 3)
    assert viewer.dims.nsteps[0] == 198  # a band slider


@pytest.mark.gui
def test_viewer_opens_stack_npz_gt_and_safe(make_napari_viewer, shared_data, tmp_path):
    from test_safe import make_safe

    viewer = make_napari_viewer()
    viewer.open(str(shared_data / "sentinel2/eo-learn_REFERENCE_SCENES.npy"), plugin="napari-hsi-anomaly")
    stack, rgb = viewer.layers
    assert stack.ndim == 4 and tuple(stack.axis_labels) == ("band", "date", "row", "col")
    assert rgb.rgb and rgb.data.shape == (5, 101, 100, 3)
    assert viewer.dims.nsteps[:2] == (13, 5)  # a band slider and a date slider
    viewer.dims.set_current_step(1, 3)  # date 3: the RGB follows the band stack's date
    assert round(rgb.world_to_data(viewer.dims.point)[0]) == 3
    assert round(stack.world_to_data(viewer.dims.point)[1]) == 3
    viewer.layers.clear()
    viewer.open(str(shared_data / "hsi-ad/abu-beach-1.npz"), plugin="napari-hsi-anomaly")
    assert viewer.layers[-1].name == "ground truth" and type(viewer.layers[-1]).__name__ == "Labels"
    viewer.layers.clear()
    safe = make_safe(tmp_path, "L1C")
    viewer.open(str(safe), plugin="napari-hsi-anomaly")
    assert viewer.layers[0].data.shape[0] == 13 and viewer.layers[0].metadata["cube"].georef["crs"]


@pytest.mark.gui
def test_launch_with_file_and_with_bad_file(make_napari_viewer, shared_data, tmp_path, monkeypatch):
    import napari

    from napari_hsi_anomaly import _launch

    viewers = []

    def fake_viewer(show=False):
        viewers.append(make_napari_viewer())
        return viewers[-1]

    monkeypatch.setattr(napari, "Viewer", fake_viewer)
    errors = []
    monkeypatch.setattr("napari.utils.notifications.show_error", errors.append)
    viewer = _launch.launch(str(shared_data / "envi/can_tmr.hdr"), show=False)
    assert [layer.name for layer in viewer.layers] == ["can_tmr", "can_tmr RGB"]
    viewer = _launch.launch(str(tmp_path / "missing.hdr"), show=False)
    assert len(viewer.layers) == 0 and "missing.hdr does not exist" in errors[0]


@pytest.mark.gui
def test_dock_widgets_in_order_and_tolerates_missing(make_napari_viewer):
    from napari_hsi_anomaly import _launch

    viewer = make_napari_viewer()
    with pytest.warns(UserWarning) if _missing_docks() else _nothing():
        docked = _launch.dock_widgets(viewer)
    expected = [n for n in _launch.DOCKS if n not in _missing_docks()]
    assert docked == expected
    if docked == list(_launch.DOCKS):  # Cube on the left; Model and Detect tabbed on the right
        from qtpy.QtCore import Qt
        from qtpy.QtWidgets import QDockWidget

        qt_window = viewer.window._qt_window
        found = qt_window.findChildren(QDockWidget)
        docks = {n: next(d for d in found if d.windowTitle().startswith(n)) for n in _launch.DOCKS}
        assert qt_window.dockWidgetArea(docks["Cube"]) == Qt.DockWidgetArea.LeftDockWidgetArea
        assert qt_window.dockWidgetArea(docks["Detect"]) == Qt.DockWidgetArea.RightDockWidgetArea
        assert docks["Model"] in qt_window.tabifiedDockWidgets(docks["Detect"])


def _missing_docks() -> list[str]:
    import importlib.util

    mods = {"Cube": "cube", "Model": "model", "Detect": "detect", "Inspect": "inspect"}
    return [
        name
        for name, mod in mods.items()
        if importlib.util.find_spec(f"napari_hsi_anomaly._widgets.{mod}_widget") is None
    ]


def _nothing():
    import contextlib

    return contextlib.nullcontext()


@pytest.mark.gui
def test_viewer_saves_score_layer_through_plugin(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    score = np.random.default_rng(3).random((6, 7)).astype(np.float32)
    viewer.add_image(score, name="score")
    viewer.add_labels((score > 0.5).astype(np.uint8), name="mask")
    viewer.layers["score"].save(str(tmp_path / "score.tif"), plugin="napari-hsi-anomaly")
    viewer.layers["mask"].save(str(tmp_path / "mask.hdr"), plugin="napari-hsi-anomaly")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "score.tif"), score)
    from napari_hsi_anomaly.core.io import read_cube

    np.testing.assert_array_equal(read_cube(tmp_path / "mask.hdr").data[0], score > 0.5)
