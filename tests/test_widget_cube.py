"""The Cube dock: picks cube layers, keeps the list in sync, RGB composite, bad files."""

from __future__ import annotations

import numpy as np
import pytest

from napari_hsi_anomaly._widgets import workers
from napari_hsi_anomaly._widgets.cube_widget import CubeWidget
from napari_hsi_anomaly._widgets.state import get_state
from napari_hsi_anomaly.core.cube import Cube

pytestmark = pytest.mark.gui
WAIT_MS = 120_000  # generous: the GUI suite must hold next to a CPU burner

S2_NM = [443, 490, 560, 665, 705, 740, 783, 842, 865, 945, 1610, 2190]


def small_cube(bands: int = 12, rows: int = 24, cols: int = 20, seed: int = 0) -> Cube:
    rng = np.random.default_rng(seed)
    data = rng.random((bands, rows, cols), dtype=np.float32)
    names = [f"B{i + 1:02d}" for i in range(bands)]
    return Cube(data, wavelengths=np.array(S2_NM[:bands], float), band_names=names)


@pytest.fixture
def shown(monkeypatch):
    """Notifications shown (errors and infos), real threads."""
    from napari.utils import notifications

    out: list[str] = []
    monkeypatch.setattr(notifications, "show_error", out.append)
    monkeypatch.delenv(workers.SYNC_ENV, raising=False)
    return out


def test_plain_numpy_layer_becomes_the_cube(make_napari_viewer, qtbot, shown):
    viewer = make_napari_viewer()
    data = np.random.default_rng(1).random((5, 16, 18)).astype(np.float32)
    viewer.add_image(data, name="plain")
    w = CubeWidget(viewer)
    qtbot.addWidget(w)
    state = get_state(viewer)
    assert state.cube is not None and state.cube.shape == (5, 16, 18)
    assert state.cube_layer == "plain"
    assert "5 bands × 16 × 18" in w.info_label.text()
    assert viewer.dims.axis_labels == ("band", "row", "col")
    assert w.rgb_combos[0].count() == 5


def test_layer_with_cube_metadata_is_picked_up_and_list_stays_in_sync(make_napari_viewer, qtbot, shown):
    viewer = make_napari_viewer()
    w = CubeWidget(viewer)
    qtbot.addWidget(w)
    state = get_state(viewer)
    changed: list[object] = []
    state.cube_changed.connect(changed.append)
    viewer.add_image(np.zeros((8, 8)), name="a 2-D map")  # not a cube: not listed
    assert w.layer_combo.count() == 0 and state.cube is None

    c1, c2 = small_cube(seed=1), small_cube(seed=2)
    viewer.add_image(c1.data, name="first", metadata={"cube": c1})
    viewer.add_image(c2.data, name="second", metadata={"cube": c2})
    qtbot.waitUntil(lambda: state.cube is c2)  # a newly read cube takes over (after the insertion)
    assert state.cube_layer == "second" and changed == [c1, c2]
    assert "first" not in viewer.layers  # the other scene's layers are out of the viewer
    assert [w.layer_combo.itemText(i) for i in range(w.layer_combo.count())] == ["first", "second"]
    assert "443–2190 nm" in w.info_label.text()
    # RGB defaults by wavelength: 665 / 560 / 490 nm
    assert [c.currentText() for c in w.rgb_combos] == ["B04 665 nm", "B03 560 nm", "B02 490 nm"]

    viewer.layers["second"].name = "renamed"
    assert state.cube_layer == "renamed"
    assert "renamed" in [w.layer_combo.itemText(i) for i in range(w.layer_combo.count())]

    w.layer_combo.setCurrentText("first")
    assert state.cube is c1 and "renamed" not in viewer.layers
    w.layer_combo.setCurrentText("renamed")
    assert state.cube is c2

    viewer.layers.remove("renamed")  # deleting a scene's cube closes the scene
    qtbot.waitUntil(lambda: w.layer_combo.count() == 1)
    assert state.cube is c1 and "first" in viewer.layers


def test_band_slider_label(make_napari_viewer, qtbot, shown):
    viewer = make_napari_viewer()
    cube = small_cube()
    viewer.add_image(cube.data, name="cube", metadata={"cube": cube})
    w = CubeWidget(viewer)
    qtbot.addWidget(w)
    viewer.dims.set_current_step(0, 4)
    assert w.band_label.text() == "band 5/12 · B05 705 nm"


def test_update_rgb_changes_the_rgb_layer(make_napari_viewer, qtbot, shown):
    viewer = make_napari_viewer()
    cube = small_cube()
    viewer.add_image(cube.rgb(), name="cube RGB", rgb=True, metadata={"cube": cube})
    viewer.add_image(cube.data, name="cube", metadata={"cube": cube})
    w = CubeWidget(viewer)
    qtbot.addWidget(w)
    state = get_state(viewer)
    assert state.rgb_layer == "cube RGB"
    before = viewer.layers["cube RGB"].data.copy()

    for combo, band in zip(w.rgb_combos, (9, 8, 7)):
        combo.setCurrentIndex(band)
    w.update_rgb_button.click()
    assert not w.update_rgb_button.isEnabled()  # busy while the worker runs
    qtbot.waitUntil(lambda: w.update_rgb_button.isEnabled(), timeout=WAIT_MS)
    after = viewer.layers["cube RGB"].data
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, cube.rgb((9, 8, 7)))
    assert len(viewer.layers) == 2 and shown == []


def test_update_rgb_adds_a_layer_when_none(make_napari_viewer, qtbot, shown):
    viewer = make_napari_viewer()
    viewer.add_image(np.random.default_rng(0).random((4, 10, 12)), name="plain")
    w = CubeWidget(viewer)
    qtbot.addWidget(w)
    w.update_rgb()
    qtbot.waitUntil(lambda: "plain RGB" in viewer.layers, timeout=WAIT_MS)
    assert viewer.layers["plain RGB"].rgb
    assert get_state(viewer).rgb_layer == "plain RGB"


def test_open_file_adds_layers_and_sets_cube(make_napari_viewer, qtbot, shown, tmp_path):
    viewer = make_napari_viewer()
    w = CubeWidget(viewer)
    qtbot.addWidget(w)
    path = tmp_path / "scene.npy"
    np.save(path, np.random.default_rng(0).random((20, 22, 6)).astype(np.float32))  # rows, cols, bands
    w.open_path(path)
    qtbot.waitUntil(lambda: get_state(viewer).cube is not None, timeout=WAIT_MS)
    state = get_state(viewer)
    assert state.cube.shape == (6, 20, 22)
    assert state.cube_layer == "scene" and state.rgb_layer == "scene RGB"
    assert shown == []


def test_bad_file_notifies_and_keeps_the_cube(make_napari_viewer, qtbot, shown, tmp_path):
    viewer = make_napari_viewer()
    cube = small_cube()
    viewer.add_image(cube.data, name="cube", metadata={"cube": cube})
    w = CubeWidget(viewer)
    qtbot.addWidget(w)
    flat = tmp_path / "flat.npy"
    np.save(flat, np.zeros((10, 10), np.float32))
    junk = tmp_path / "junk.hdr"
    junk.write_text("this is not an ENVI header\n")
    short = tmp_path / "short.hdr"  # header promises 10x10x3 float32, data file has 100 bytes
    short.write_text(
        "ENVI\nsamples = 10\nlines = 10\nbands = 3\nheader offset = 0\n"
        "data type = 4\ninterleave = bsq\nbyte order = 0\n"
    )
    (tmp_path / "short.img").write_bytes(b"\0" * 100)
    for path in (flat, junk, short):
        n = len(shown)
        w.open_path(path)
        qtbot.waitUntil(lambda n=n: len(shown) > n, timeout=WAIT_MS)
        qtbot.waitUntil(w.open_button.isEnabled, timeout=WAIT_MS)
        assert path.stem in shown[-1]  # the reader's message names the file
        assert not shown[-1].startswith("Unexpected error")
    state = get_state(viewer)
    assert state.cube is cube and state.cube_layer == "cube"
    assert len(viewer.layers) == 1


def test_plugin_reader_layers_are_picked_up(make_napari_viewer, qtbot, shown, tmp_path):
    viewer = make_napari_viewer()
    w = CubeWidget(viewer)
    qtbot.addWidget(w)
    path = tmp_path / "read_me.npy"
    np.save(path, np.random.default_rng(3).random((16, 14, 5)).astype(np.float32))
    viewer.open(path, plugin="napari-hsi-anomaly")
    state = get_state(viewer)
    assert state.cube is viewer.layers["read_me"].metadata["cube"]
    assert state.cube_layer == "read_me" and state.rgb_layer == "read_me RGB"
    assert "5 bands × 16 × 14" in w.info_label.text()
    w.rgb_combos[0].setCurrentIndex(4)
    w.update_rgb()
    qtbot.waitUntil(w.update_rgb_button.isEnabled, timeout=WAIT_MS)
    np.testing.assert_allclose(viewer.layers["read_me RGB"].data[..., 0], state.cube.rgb((4, 0, 0))[..., 0])


def test_docks_come_from_the_manifest(make_napari_viewer, shown):
    from napari_hsi_anomaly._widgets.model_widget import ModelWidget

    viewer = make_napari_viewer()
    _, cube_w = viewer.window.add_plugin_dock_widget("napari-hsi-anomaly", "Cube")
    _, model_w = viewer.window.add_plugin_dock_widget("napari-hsi-anomaly", "Model")
    assert isinstance(cube_w, CubeWidget) and isinstance(model_w, ModelWidget)
    cube = small_cube(bands=4)
    viewer.add_image(cube.data, name="c", metadata={"cube": cube})
    assert get_state(viewer).cube is cube
    assert [i.text() for i in model_w.population.selectedItems()] == ["c"]
