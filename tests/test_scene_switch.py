"""Two cubes opened in a row through the Cube dock: one scene, one set of results (issue 11 item 1)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_hsi_anomaly._widgets import workers

pytestmark = pytest.mark.gui
WAIT_MS = 120_000  # generous: the suite must hold next to a CPU burner


def write_scene(path, seed: int, size: int = 40, bands: int = 8) -> np.ndarray:
    """An .npz the reader opens with its ground truth: cube (rows, cols, bands) + gt."""
    rng = np.random.default_rng(seed)
    cube = rng.normal(0.3, 0.02, size=(size, size, bands)).astype(np.float32)
    gt = np.zeros((size, size), dtype=np.uint8)
    r = 5 + 10 * seed
    gt[r : r + 5, 8:13] = 1
    cube[gt == 1] += np.linspace(0.3, 0.6, bands, dtype=np.float32)
    np.savez(path, cube=cube, gt=gt, wavelengths=np.linspace(450.0, 900.0, bands))
    return gt


@pytest.fixture
def docks(make_napari_viewer, qtbot, monkeypatch):
    from napari_hsi_anomaly._widgets.cube_widget import CubeWidget
    from napari_hsi_anomaly._widgets.detect_widget import DetectWidget
    from napari_hsi_anomaly._widgets.inspect_widget import InspectWidget

    monkeypatch.delenv(workers.SYNC_ENV, raising=False)  # real threads
    viewer = make_napari_viewer()
    cube_w, detect_w, inspect_w = CubeWidget(viewer), DetectWidget(viewer), InspectWidget(viewer)
    for w in (cube_w, detect_w, inspect_w):
        qtbot.addWidget(w)
    return viewer, cube_w, detect_w, inspect_w


def open_cube(cube_w, qtbot, path) -> None:
    with qtbot.waitSignal(cube_w.state.cube_changed, timeout=WAIT_MS):
        cube_w.open_path(path)
    qtbot.waitUntil(lambda: cube_w._busy == 0, timeout=WAIT_MS)


def score(detect_w, qtbot) -> None:
    detect_w.set_method("rx")
    assert detect_w.run_score() is not None
    qtbot.waitUntil(lambda: detect_w._worker is None, timeout=WAIT_MS)
    detect_w._commit_debounced.flush()


def test_two_cubes_in_a_row(docks, qtbot, tmp_path):
    from napari_hsi_anomaly._widgets.state import get_state

    viewer, cube_w, detect_w, inspect_w = docks
    state = get_state(viewer)
    write_scene(tmp_path / "first.npz", 0)
    write_scene(tmp_path / "second.npz", 1)  # same size: old results must not pass for its own

    open_cube(cube_w, qtbot, tmp_path / "first.npz")
    assert state.cube_layer == "first" and state.ground_truth == "ground truth"
    score(detect_w, qtbot)
    inspect_w._refresh_debounced.flush()
    assert inspect_w.regions and "region" in detect_w.counts.text()

    open_cube(cube_w, qtbot, tmp_path / "second.npz")
    layers = viewer.layers
    assert state.cube_layer == "second" and state.scene >= 2
    # the first scene's images, ground truth and results are out of the viewer (kept in its Scene);
    # the second's are shown
    mgr = state.scenes
    first = mgr.named("first")
    assert "first" not in layers and first is not None and mgr.active is mgr.named("second")
    assert {"first", "first RGB", "ground truth", "anomaly score", "anomaly mask"} <= {
        lay.name for lay in first.layers}
    assert all(mgr.owner(lay) is mgr.active for lay in layers)
    assert layers["second RGB"].visible and not layers["second"].visible  # composite mode
    assert "anomaly score" not in layers
    # Detect and Inspect start afresh; the new ground truth is the second file's
    assert detect_w.scores is None and detect_w.counts.text() == "flagged: -"
    assert inspect_w.regions == [] and inspect_w.table.rowCount() == 0 and inspect_w.picked is None
    gt_second = [lay for lay in layers
                 if lay.metadata.get("cube") is state.cube and lay.name.startswith("ground")]
    assert len(gt_second) == 1 and state.ground_truth == gt_second[0].name
    assert detect_w.results.gt_combo.currentText() == gt_second[0].name  # Detect follows the scene
    # the view fits the new cube
    np.testing.assert_allclose(viewer.camera.center[-2:], (19.5, 19.5), atol=1.0)

    score(detect_w, qtbot)
    names = [lay.name for lay in layers]  # above every image of the scene (TP / FP / FN: a truth)
    assert names[-3:] == ["anomaly score", "anomaly mask", "TP / FP / FN"], names
    assert not layers["anomaly mask"].visible and layers["TP / FP / FN"].visible  # the truth is never hidden
    inspect_w._refresh_debounced.flush()
    assert inspect_w.regions and inspect_w.regions[0].bbox[0] >= 14  # the second scene's target

    # the band slider and the Cube dock count bands alike, from 1, and name the wavelength
    viewer.dims.set_current_step(0, 4)
    qtbot.waitUntil(lambda: "band 5/8" in viewer.text_overlay.text, timeout=WAIT_MS)
    assert cube_w.band_label.text().startswith("band 5/8 · ")
    assert "nm" in viewer.text_overlay.text
    assert layers["second"].visible and not layers["second RGB"].visible  # the slider shows the band
    assert cube_w.show_band.isChecked()
    slider = viewer.window._qt_viewer.dims.slider_widgets[0]
    assert slider.curslice_label.text() == "5" and slider.totslice_label.text() == "8"


def test_a_cube_without_ground_truth_clears_detects_choice(docks, qtbot, tmp_path):
    from napari_hsi_anomaly._widgets.detect_results import NO_GT

    viewer, cube_w, detect_w, inspect_w = docks
    write_scene(tmp_path / "labelled.npz", 0)
    open_cube(cube_w, qtbot, tmp_path / "labelled.npz")
    assert detect_w.results.gt_combo.currentText() == "ground truth"
    np.save(tmp_path / "plain.npy", np.random.default_rng(3).random((40, 40, 8)).astype(np.float32))
    open_cube(cube_w, qtbot, tmp_path / "plain.npy")
    assert cube_w.state.ground_truth is None
    assert detect_w.results.gt_combo.currentText() == NO_GT  # the other scene's labels never apply


def test_choosing_the_other_cube_switches_the_scene(docks, qtbot, tmp_path):
    viewer, cube_w, detect_w, inspect_w = docks
    write_scene(tmp_path / "a.npz", 0)
    write_scene(tmp_path / "b.npz", 1, size=30)
    open_cube(cube_w, qtbot, tmp_path / "a.npz")
    open_cube(cube_w, qtbot, tmp_path / "b.npz")
    with qtbot.waitSignal(cube_w.state.cube_changed, timeout=WAIT_MS):
        cube_w.layer_combo.setCurrentText("a")
    assert viewer.layers["a RGB"].visible and "b RGB" not in viewer.layers
    assert cube_w.state.ground_truth is not None
    assert viewer.layers[cube_w.state.ground_truth].metadata["cube"] is cube_w.state.cube


def test_band_selection_box(docks, qtbot, tmp_path):
    from napari.utils import notifications

    viewer, cube_w, detect_w, inspect_w = docks
    write_scene(tmp_path / "a.npz", 0)
    open_cube(cube_w, qtbot, tmp_path / "a.npz")
    state = cube_w.state
    assert state.band_selection is None and "all 8 bands" in cube_w.bands.note.text()
    with qtbot.waitSignal(state.bands_changed, timeout=WAIT_MS):
        cube_w.bands.edit.setText("1-3, 6-8")
        cube_w.bands.apply()
    assert state.band_selection.tolist() == [0, 1, 2, 5, 6, 7]
    assert state.analysis_cube().bands == 6 and state.cube.bands == 8
    shown: list[str] = []
    notifications_show = notifications.show_error
    try:
        notifications.show_error = shown.append
        cube_w.bands.edit.setText("0-99")
        assert not cube_w.bands.apply()
    finally:
        notifications.show_error = notifications_show
    assert len(shown) == 1 and "outside 1-8" in shown[0]
    assert cube_w.bands.edit.text() == "1-3, 6-8"  # the previous selection stays


def test_a_stack_of_dates_is_one_scene_per_date(docks, qtbot, tmp_path):
    viewer, cube_w, detect_w, inspect_w = docks
    rng = np.random.default_rng(3)
    np.save(tmp_path / "dates.npy", rng.random((3, 20, 22, 5), dtype=np.float32))  # dates, rows, cols, bands
    open_cube(cube_w, qtbot, tmp_path / "dates.npy")
    state = cube_w.state
    assert state.cube.shape == (5, 20, 22) and state.cube_layer == "dates"
    assert viewer.layers["dates RGB"].visible
    layer = viewer.layers["dates"]
    date_axis = viewer.dims.ndim - layer.ndim + layer.metadata["date_axis"]
    with qtbot.waitSignal(state.cube_changed, timeout=WAIT_MS):
        viewer.dims.set_current_step(date_axis, 2)
    assert state.cube.metadata["date"] == 2 and state.cube_layer == "dates"
    assert viewer.layers["dates RGB"].visible  # the same scene's layers stay on screen
    on_disk = np.load(tmp_path / "dates.npy")
    np.testing.assert_array_equal(np.asarray(state.cube.data)[:, 3, 4], on_disk[2, 3, 4])
    qtbot.waitUntil(lambda: "date 3/3" in viewer.text_overlay.text, timeout=WAIT_MS)
    date_slider = viewer.window._qt_viewer.dims.slider_widgets[date_axis]
    qtbot.waitUntil(lambda: date_slider.curslice_label.text() == "3", timeout=WAIT_MS)
    assert date_slider.totslice_label.text() == "3"  # dates counted from 1, out of the stack's dates
    before = state.cube
    with qtbot.waitSignal(state.cube_changed, timeout=WAIT_MS):
        viewer.dims.set_current_step(date_axis, 0)
    with qtbot.waitSignal(state.cube_changed, timeout=WAIT_MS):
        viewer.dims.set_current_step(date_axis, 2)
    assert state.cube is before  # one Cube per date: Detect's scene table recognises it
    # the band slider (not the date slider) is the one counted from 1 and named on the canvas
    band_axis = viewer.dims.ndim - layer.ndim + layer.metadata["band_axis"]
    viewer.dims.set_current_step(band_axis, 3)
    qtbot.waitUntil(lambda: "band 4/5" in viewer.text_overlay.text, timeout=WAIT_MS)
    assert cube_w.band_label.text().startswith("band 4/5")
    slider = viewer.window._qt_viewer.dims.slider_widgets[band_axis]
    assert slider.curslice_label.text() == "4" and slider.totslice_label.text() == "5"


def test_a_new_scene_shows_its_own_automatic_p_min(docks, qtbot, tmp_path):
    """With "auto" checked, the p_min slider shows the new scene's automatic value at once, not the
    previous scene's (5243 of a 256^2 sample stayed on a 100^2 scene until Score)."""
    from napari_hsi_anomaly.core.detectors.calibration import auto_p_min

    viewer, cube_w, detect_w, inspect_w = docks
    write_scene(tmp_path / "first.npz", 0)
    write_scene(tmp_path / "second.npz", 1)
    open_cube(cube_w, qtbot, tmp_path / "first.npz")
    detect_w.params.show_p_min(5243)  # what a larger scene's Score left on the slider
    assert detect_w.params.p_min_auto.isChecked()
    open_cube(cube_w, qtbot, tmp_path / "second.npz")
    assert detect_w.params.p_min.value() == auto_p_min(40 * 40)


def test_pins_come_back_with_their_scene(docks, qtbot, tmp_path):
    """Inspect's pins belong to their scene: gone on another scene, drawn again on return."""
    from test_widget_inspect import click

    viewer, cube_w, detect_w, inspect_w = docks
    write_scene(tmp_path / "a.npz", 0)
    write_scene(tmp_path / "b.npz", 1, size=30, bands=6)
    open_cube(cube_w, qtbot, tmp_path / "a.npz")
    cube_a = cube_w.state.cube
    click(inspect_w, viewer, (0, 7, 9))
    assert inspect_w.panel.pin()
    click(inspect_w, viewer, (0, 30, 3))
    assert inspect_w.panel.pin()
    pinned = [np.array(line.get_ydata()) for line in inspect_w.spectrum.pins]
    open_cube(cube_w, qtbot, tmp_path / "b.npz")
    assert inspect_w.spectrum.pins == []  # b has no pins (and 6 bands)
    with qtbot.waitSignal(cube_w.state.cube_changed, timeout=WAIT_MS):
        cube_w.layer_combo.setCurrentText("a")
    assert cube_w.state.cube is cube_a
    back = [np.array(line.get_ydata()) for line in inspect_w.spectrum.pins]
    assert len(back) == 2
    for y0, y1 in zip(pinned, back):
        np.testing.assert_array_equal(y0, y1)
    np.testing.assert_allclose(back[0], np.asarray(cube_a.as_float32()[:, 7, 9]), rtol=1e-6)
