"""The Detect dock's "normal from": reference layers or dates, saved profiles, and the scene table."""

from __future__ import annotations

import numpy as np
import pytest
from test_widget_detect import WORKER_TIMEOUT_MS, make_cube

pytestmark = pytest.mark.gui


def _wait_score(widget, qtbot) -> None:
    worker = widget.run_score()
    assert worker is not None
    qtbot.waitUntil(lambda: widget._worker is None, timeout=WORKER_TIMEOUT_MS)


def add_cube(viewer, cube, name):
    viewer.add_image(cube.data, name=name, metadata={"cube": cube})
    viewer.add_image(cube.rgb(), rgb=True, name=f"{name} RGB", metadata={"cube": cube})


@pytest.fixture
def two_cubes(make_napari_viewer, qtbot):
    from napari_hsi_anomaly._widgets.detect_widget import DetectWidget
    from napari_hsi_anomaly._widgets.state import get_state
    from napari_hsi_anomaly.core.cube import Cube

    viewer = make_napari_viewer()
    target, gt = make_cube()
    rng = np.random.default_rng(7)  # the same background without the square: "normal"
    normal = Cube(rng.normal(0.3, 0.02, size=target.data.shape).astype(np.float32)
                  + np.linspace(0, 0.05, target.bands, dtype=np.float32)[:, None, None],
                  wavelengths=target.wavelengths)
    add_cube(viewer, normal, "normal")
    add_cube(viewer, target, "target")
    get_state(viewer).set_cube(target, "target", "target RGB")
    widget = DetectWidget(viewer)
    qtbot.addWidget(widget)
    widget.set_method("rx")
    return viewer, widget, normal, target, gt


def test_normal_from_a_reference_layer(two_cubes, qtbot):
    from napari_hsi_anomaly.core.detectors import get_detector

    viewer, widget, normal, target, gt = two_cubes
    ref = widget.reference
    assert [ref.refs.item(i).text() for i in range(ref.refs.count())] == ["normal", "target"]
    ref.set_mode("references")
    ref.set_references(["normal"])
    _wait_score(widget, qtbot)
    expected = get_detector("rx")().fit([normal]).score(target).score_map
    np.testing.assert_allclose(widget.scores, expected, rtol=1e-5, atol=1e-6)
    assert widget.scores[gt > 0].min() > np.percentile(widget.scores[gt == 0], 99)
    assert ref.save_btn.isEnabled()  # the fit on "normal" can be saved
    assert widget.score_layer.metadata["scene"] == "target"


def test_bad_reference_choices_are_one_notification_each(two_cubes, qtbot, monkeypatch):
    import napari.utils.notifications as notifications

    viewer, widget, normal, target, gt = two_cubes
    shown: list[str] = []
    monkeypatch.setattr(notifications, "show_error", lambda msg, *a, **k: shown.append(str(msg)))
    widget.reference.set_mode("references")
    assert widget.run_score() is None  # nothing checked
    widget.reference.set_mode("profile")
    assert widget.run_score() is None  # nothing loaded
    assert len(shown) == 2 and "check at least one" in shown[0] and "Load" in shown[1]
    assert widget.scores is None


def _fitted_on_normal(two_cubes, qtbot):
    """The Detect dock scored with "normal from: reference layers" = the ``normal`` layer."""
    widget = two_cubes[1]
    ref = widget.reference
    ref.set_mode("references")
    ref.set_references(["normal"])
    _wait_score(widget, qtbot)
    return widget, ref


def test_profile_save_load_score_equals_the_fit(two_cubes, qtbot, tmp_path):
    widget, ref = _fitted_on_normal(two_cubes, qtbot)
    fitted = widget.scores.copy()
    folder = tmp_path / "profile"
    worker = ref.save(str(folder))
    with qtbot.waitSignal(ref.saved, timeout=WORKER_TIMEOUT_MS):
        pass
    assert worker is not None and (folder / "profile.json").is_file()
    assert "Saved the profile" in widget.status.text()
    ref.set_mode("cube")
    worker = ref.load(str(folder))
    qtbot.waitUntil(lambda: ref._loaded is not None, timeout=WORKER_TIMEOUT_MS)
    assert ref.mode_key == "profile" and "rx" in ref.profile_label.text()
    _wait_score(widget, qtbot)
    np.testing.assert_allclose(widget.scores, fitted, rtol=1e-5, atol=1e-6)


def test_profile_save_refuses_a_bad_folder(two_cubes, qtbot, tmp_path, monkeypatch):
    """The scene's own file, a folder of other files, a place that cannot be written: one
    notification each, no worker, nothing touched; the fit stays and saves to a good folder."""
    import napari.utils.notifications as notifications

    widget, ref = _fitted_on_normal(two_cubes, qtbot)
    shown: list[str] = []
    monkeypatch.setattr(notifications, "show_error", lambda msg, *a, **k: shown.append(str(msg)))
    src = tmp_path / "scene.npy"
    np.save(src, np.ones((2, 2)))
    widget.state.cube.source = src
    assert ref.save(str(src)) is None  # the scene's own file
    np.testing.assert_array_equal(np.load(src), np.ones((2, 2)))
    assert ref.save(str(tmp_path)) is None  # a folder of other files (the scene's)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert ref.save(str(blocker / "profile")) is None  # cannot be written: a file in the way
    assert len(shown) == 3, shown
    assert "not a folder" in shown[0] and "other files" in shown[1] and "not writable" in shown[2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "scene.npy"]
    assert ref.save_btn.isEnabled() and ref._fitted is not None  # the fit is kept
    worker = ref.save(str(tmp_path / "good"))
    assert worker is not None
    with qtbot.waitSignal(ref.saved, timeout=WORKER_TIMEOUT_MS):
        pass
    assert (tmp_path / "good" / "profile.json").is_file() and len(shown) == 3


@pytest.fixture
def stack_viewer(make_napari_viewer, qtbot):
    from napari_hsi_anomaly._reader import stack_layers
    from napari_hsi_anomaly._widgets.detect_widget import DetectWidget
    from napari_hsi_anomaly._widgets.state import get_state
    from napari_hsi_anomaly.core.stack import Stack

    rng = np.random.default_rng(3)
    dates, size, bands = 3, 40, 5
    data = rng.normal(0.3, 0.02, size=(dates, size, size, bands)).astype(np.float32)
    data[0, :, :20] += 0.2  # date 1: "haze" over half the scene
    stack = Stack(data, wavelengths=np.linspace(450, 900, bands))
    viewer = make_napari_viewer()
    for d, kw, kind in stack_layers(stack):
        getattr(viewer, f"add_{kind}")(d, **kw)
    get_state(viewer).set_cube(stack.cube(0), "stack", "stack RGB")
    widget = DetectWidget(viewer)
    qtbot.addWidget(widget)
    widget.set_method("rx")
    return viewer, widget, stack


def test_stack_normal_from_dates_fills_the_scene_table(stack_viewer, qtbot):
    from napari_hsi_anomaly._widgets.state import get_state

    viewer, widget, stack = stack_viewer
    ref = widget.reference
    names = [ref.refs.item(i).text() for i in range(ref.refs.count())]
    assert names == ["stack: date 1", "stack: date 2", "stack: date 3"]  # dates counted from 1
    ref.set_mode("references")
    ref.set_references(["stack: date 2", "stack: date 3"])
    ref.every.setChecked(True)
    widget.t_anom.setValue(0.5)
    _wait_score(widget, qtbot)
    table = widget.table
    assert table.isVisibleTo(widget) and table.rowCount() == 3
    rows = table.values()
    assert [r[0] for r in rows] == names
    assert rows[0][1] > 30 and rows[0][1] > 3 * max(rows[1][1], rows[2][1])  # the hazy date stands out
    assert widget.current == 0 and widget.layers.scene == "stack: date 1"
    # selecting a row shows that date: its heatmap, and the date slider moves there
    table.selectRow(2)
    assert widget.current == 2 and widget.layers.scene == "stack: date 3"
    np.testing.assert_array_equal(widget.scores, widget.scenes[2].detection.score_map)
    assert viewer.dims.current_step[1] == 2
    assert get_state(viewer).cube.metadata["date"] == 2
    assert "anomaly score" in viewer.layers  # the pair was not retired by our own scene switch
    # p_min and t_anom stay live on the shown scene
    widget.t_anom.setValue(0.3)
    np.testing.assert_array_equal(widget.mask_layer.data.astype(bool),
                                  widget.scenes[2].detection.score_map >= np.float32(0.3))


def test_a_heatmap_layer_per_scene(stack_viewer, qtbot):
    viewer, widget, stack = stack_viewer
    widget.reference.every.setChecked(True)
    _wait_score(widget, qtbot)  # normal from this cube: each date fitted on itself
    assert widget.per_scene_btn.isVisibleTo(widget)
    layers = widget.add_scene_layers()
    names = [f"anomaly score [stack: date {k + 1}]" for k in range(3)]
    assert [lay.name for lay in layers] == names and not any(lay.visible for lay in layers)
    for k, name in enumerate(names):
        np.testing.assert_array_equal(viewer.layers[name].data, widget.scenes[k].detection.score_map)
    assert [lay.name for lay in viewer.layers][-2:] == ["anomaly score", "anomaly mask"]
