"""The Model dock: training in a real worker thread (responsive GUI), cancel, load/save, warnings."""

from __future__ import annotations

import time

import numpy as np
import pytest
from qtpy.QtCore import QTimer

from napari_hsi_anomaly._widgets import model_io, workers
from napari_hsi_anomaly._widgets import model_widget as mw
from napari_hsi_anomaly._widgets.state import get_state
from napari_hsi_anomaly.core.cube import Cube

pytestmark = pytest.mark.gui


def tiny_cube(bands: int = 4, size: int = 32, seed: int = 0) -> Cube:
    rng = np.random.default_rng(seed)
    return Cube(rng.random((bands, size, size), dtype=np.float32))


@pytest.fixture(scope="module")
def tiny_model():
    """A 4-band fast model trained for one epoch (no Qt)."""
    from napari_hsi_anomaly.core.model import PRESETS, TrainOptions, train

    config = PRESETS["fast"].__class__(**{**PRESETS["fast"].to_dict(), "window": 16})
    return train([tiny_cube()], config, TrainOptions(epochs=1, batch_size=2, threads=1))


@pytest.fixture
def shown(monkeypatch):
    from napari.utils import notifications

    out: list[str] = []
    monkeypatch.setattr(notifications, "show_error", out.append)
    monkeypatch.setattr(notifications, "show_info", lambda m: out.append("info: " + m))
    monkeypatch.delenv(workers.SYNC_ENV, raising=False)
    return out


WAIT_MS = 120_000  # generous: the suite must hold next to a CPU burner (no timing asserts)
_OPEN: list = []


@pytest.fixture(autouse=True)
def _stop_training(qtbot):
    """A test that failed mid-training must not leave a 500-epoch worker behind (teardown would wait)."""
    yield
    while _OPEN:
        w = _OPEN.pop()
        try:
            if w.training:
                w.cancel()
                qtbot.waitUntil(lambda w=w: not w.training, timeout=WAIT_MS)
        except RuntimeError:  # the widget is already gone
            pass


def make(make_napari_viewer, qtbot, cube: Cube | None = None, name: str = "tiny"):
    viewer = make_napari_viewer()
    if cube is not None:
        viewer.add_image(cube.data, name=name, metadata={"cube": cube})
        get_state(viewer).set_cube(cube, name)
    w = mw.ModelWidget(viewer)
    qtbot.addWidget(w)
    _OPEN.append(w)
    w.preset.setCurrentText("fast")
    w.window_size.setValue(16)
    w.batch.setValue(2)
    return viewer, w


def test_event_loop_runs_while_training(make_napari_viewer, qtbot, shown):
    """Timer events keep firing while the worker trains: the training is not in the GUI thread."""
    viewer, w = make(make_napari_viewer, qtbot, tiny_cube())
    w.epochs.setValue(500)
    w.batch.setValue(1)
    steps: list[str] = []
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()) if steps else None)
    timer.start(10)
    worker = w.train()  # returns at once: a blocking train() would finish before any tick
    assert worker is not None and w.training
    worker.yielded.connect(lambda p: steps.append(p.message))
    qtbot.waitUntil(lambda: len(ticks) >= 20, timeout=WAIT_MS)
    assert w.training and len(steps) >= 1  # 20 timer ticks while the training was still running
    timer.stop()
    w.cancel_button.click()
    qtbot.waitUntil(lambda: not w.training, timeout=WAIT_MS)


def test_train_one_epoch_in_a_thread(make_napari_viewer, qtbot, shown):
    viewer, w = make(make_napari_viewer, qtbot, tiny_cube())
    w.epochs.setValue(1)
    state = get_state(viewer)
    worker = w.train()
    assert worker is not None and w.training
    assert not w.train_button.isEnabled() and w.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: state.model is not None, timeout=WAIT_MS)
    model = state.model
    assert model.bands == 4 and model.window == 16 and model.summary["epochs"] == 1
    assert state.model_source == "trained"
    assert w.loss_plot.xs and w.loss_plot.losses[-1] == pytest.approx(model.summary["loss"])
    assert "Training done" in w.live_label.text()
    # the dock said beforehand what the summary says afterwards, in the same words
    assert w.plan_label.text() and w.plan_label.text() == model.summary["description"]
    assert model.summary["description"] in w.model_label.text()
    assert model.summary.get("steps_per_epoch", 2) > 1  # several optimiser steps an epoch
    qtbot.waitUntil(lambda: w.train_button.isEnabled(), timeout=5000)
    assert w.save_button.isEnabled() and not w.cancel_button.isEnabled()
    assert "fast · 4 bands · window 16 px" in w.model_label.text()
    assert shown == []


def test_cancel_stops_promptly_and_keeps_previous_model(make_napari_viewer, qtbot, shown, tiny_model):
    viewer, w = make(make_napari_viewer, qtbot, tiny_cube())
    state = get_state(viewer)
    state.set_model(tiny_model, "earlier")
    w.epochs.setValue(500)
    w.batch.setValue(1)
    steps: list[str] = []
    worker = w.train()
    worker.yielded.connect(lambda p: steps.append(p.message))
    qtbot.waitUntil(lambda: len(steps) >= 2, timeout=WAIT_MS)
    t0 = time.perf_counter()
    w.cancel_button.click()
    qtbot.waitUntil(lambda: not w.training, timeout=WAIT_MS)
    assert time.perf_counter() - t0 < 60.0  # at the next step, not after 500 epochs (load-proof bound)
    assert state.model is tiny_model and state.model_source == "earlier"
    assert w.live_label.text() == "Training cancelled — previous model kept."
    assert w.train_button.isEnabled()
    assert shown == []


def test_save_load_round_trip(make_napari_viewer, qtbot, shown, tiny_model, tmp_path, monkeypatch):
    import torch

    viewer, w = make(make_napari_viewer, qtbot, tiny_cube())
    state = get_state(viewer)
    assert not w.save_button.isEnabled()
    state.set_model(tiny_model, "trained")
    assert w.save_button.isEnabled()
    target = tmp_path / "saved_model"
    monkeypatch.setattr(model_io.QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    w.save_button.click()
    qtbot.waitUntil(lambda: (target / "config.json").is_file() and w.load_button.isEnabled(), timeout=WAIT_MS)
    assert any(m.startswith("info: Model saved") for m in shown)

    state.set_model(None)
    monkeypatch.setattr(model_io.QFileDialog, "getExistingDirectory", lambda *a, **k: str(target))
    w.load_button.click()
    qtbot.waitUntil(lambda: state.model is not None, timeout=WAIT_MS)
    loaded = state.model
    assert loaded.bands == tiny_model.bands and loaded.config == tiny_model.config
    for (k, a), (_, b) in zip(tiny_model.net.state_dict().items(), loaded.net.state_dict().items()):
        assert torch.equal(a.cpu(), b.cpu()), k
    assert state.model_source == str(target)
    assert "saved_model" in w.model_label.text()


def test_save_refuses_to_replace_a_folder_that_is_not_a_model(
    make_napari_viewer, qtbot, shown, tiny_model, tmp_path
):
    viewer, w = make(make_napari_viewer, qtbot, tiny_cube())
    get_state(viewer).set_model(tiny_model)
    (tmp_path / "precious.txt").write_text("keep me")
    assert w.save_to(tmp_path) is None
    assert (tmp_path / "precious.txt").read_text() == "keep me"
    assert "is not a saved model" in shown[-1]


def test_save_refuses_a_bad_path_before_writing(make_napari_viewer, qtbot, shown, tiny_model, tmp_path):
    """The scene's own file, a place that cannot be written: one notification each, no worker, the
    model kept (and a good folder still saves)."""
    cube = tiny_cube()
    viewer, w = make(make_napari_viewer, qtbot, cube)
    state = get_state(viewer)
    state.set_model(tiny_model, "trained")
    src = tmp_path / "scene.npy"
    np.save(src, cube.data)
    cube.source = src
    assert w.save_to(src) is None
    np.testing.assert_array_equal(np.load(src), cube.data)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert w.save_to(blocker / "model") is None  # a file where a folder should be
    assert len(shown) == 2 and "not a folder" in shown[0] and "not writable" in shown[1], shown
    assert state.model is tiny_model and w.save_button.isEnabled() and w.model_box.busy == 0
    assert w.save_to(tmp_path / "model") is not None
    qtbot.waitUntil(lambda: (tmp_path / "model" / "config.json").is_file() and w.load_button.isEnabled(),
                    timeout=WAIT_MS)


def test_load_bad_directory_notifies(make_napari_viewer, qtbot, shown, tmp_path, tiny_model):
    viewer, w = make(make_napari_viewer, qtbot, tiny_cube())
    get_state(viewer).set_model(tiny_model, "earlier")
    (tmp_path / "config.json").write_text("{not json")
    w.load_from(tmp_path)
    qtbot.waitUntil(lambda: bool(shown) and w.load_button.isEnabled(), timeout=WAIT_MS)
    assert not shown[-1].startswith("Unexpected error"), shown[-1]
    assert get_state(viewer).model is tiny_model


def test_band_count_mismatch_warning(make_napari_viewer, qtbot, shown, tiny_model):
    viewer, w = make(make_napari_viewer, qtbot, tiny_cube(bands=4))
    state = get_state(viewer)
    state.set_model(tiny_model)
    assert w.warning_label.isHidden()
    five = tiny_cube(bands=5)
    viewer.add_image(five.data, name="five", metadata={"cube": five})
    state.set_cube(five, "five")
    assert not w.warning_label.isHidden()
    assert "expects 4 bands" in w.warning_label.text() and "has 5" in w.warning_label.text()


def test_population_follows_cube_or_takes_several(make_napari_viewer, qtbot, shown):
    a, b = tiny_cube(seed=1), tiny_cube(seed=2)
    viewer, w = make(make_napari_viewer, qtbot, a, name="a")
    viewer.add_image(b.data, name="b", metadata={"cube": b})
    assert [i.text() for i in w.population.selectedItems()] == ["a"]
    assert w.population_cubes() == [a]
    get_state(viewer).set_cube(b, "b")
    assert [i.text() for i in w.population.selectedItems()] == ["b"]
    for i in range(w.population.count()):
        w.population.item(i).setSelected(True)
    assert {id(c) for c in w.population_cubes()} == {id(a), id(b)}


def test_progress_text():
    from napari_hsi_anomaly.core.progress import Progress

    p = Progress(40, 600, "", {"epoch": 2, "epochs": 5, "step": 40, "loss": 0.01234, "windows_per_s": 35.2})
    assert mw.progress_text(p) == "epoch 2/5 · step 40/120 · loss 0.0123 · 35 windows/s"


def test_sample_model_button(make_napari_viewer, qtbot, shown, tiny_model, tmp_path, monkeypatch):
    from napari_hsi_anomaly.core.model import save_model

    monkeypatch.setattr(model_io, "SAMPLE_MODEL", tmp_path / "absent")
    _, w = make(make_napari_viewer, qtbot, tiny_cube())
    assert w.sample_button.isHidden()

    save_model(tiny_model, tmp_path / "fast_model")
    monkeypatch.setattr(model_io, "SAMPLE_MODEL", tmp_path / "fast_model")
    viewer, w = make(make_napari_viewer, qtbot, tiny_cube())
    assert not w.sample_button.isHidden()
    w.sample_button.click()
    qtbot.waitUntil(lambda: get_state(viewer).model is not None, timeout=WAIT_MS)
    assert get_state(viewer).model_source == "sample model (fast)"
    assert "sample model" in w.model_label.text()


def test_loading_a_model_of_every_band_selects_every_band(
    make_napari_viewer, qtbot, shown, tiny_model, tmp_path
):
    """A 4-band model loaded while the Cube dock uses 3 of the cube's 4 bands: the selection becomes
    all bands (the Cube dock's box follows), one notification says so; a model of the selection's
    band count changes nothing."""
    from napari_hsi_anomaly._widgets.band_select import BandSelect
    from napari_hsi_anomaly.core.model import save_model

    viewer, w = make(make_napari_viewer, qtbot, tiny_cube(bands=4))
    state = get_state(viewer)
    box = BandSelect(state)
    qtbot.addWidget(box)
    state.set_bands(np.array([0, 1, 3]))
    box.show_selection(state.band_selection)
    assert box.edit.text() == "1-2, 4" and state.analysis_cube().bands == 3
    save_model(tiny_model, tmp_path / "m4")
    w.load_from(tmp_path / "m4")
    qtbot.waitUntil(lambda: state.model is not None, timeout=WAIT_MS)
    assert state.band_selection is None and state.analysis_cube().bands == tiny_model.bands == 4
    assert box.edit.text() == "" and box.note.text() == "all 4 bands"
    assert w.warning_label.isHidden()
    infos = [m for m in shown if m.startswith("info:")]
    assert len(infos) == 1 and "all 4 bands" in infos[0] and "band 3" in infos[0], shown

    five = tiny_cube(bands=5)  # 4 of 5 bands selected: the 4-band model fits the selection as it is
    viewer.add_image(five.data, name="five", metadata={"cube": five})
    state.set_cube(five, "five", bands=np.array([0, 1, 2, 3]))
    state.set_model(None)
    w.load_from(tmp_path / "m4")
    qtbot.waitUntil(lambda: state.model is not None, timeout=WAIT_MS)
    assert state.band_selection.tolist() == [0, 1, 2, 3] and len(shown) == 1


def test_sample_model_fits_the_sample_scene_out_of_the_box(make_napari_viewer, qtbot, shown):
    """The sample scene (12 bands; the default selection leaves out B10 cirrus) and the shipped sample
    model (trained on all 12): Sample model switches the selection to all bands, no warning."""
    from napari_hsi_anomaly._sample_data import sample_scene

    if not model_io.SAMPLE_MODEL.is_dir():
        pytest.skip("no sample model in this checkout")
    viewer = make_napari_viewer()
    cube_w = viewer.window.add_plugin_dock_widget("napari-hsi-anomaly", "Cube")[1]
    model_w = viewer.window.add_plugin_dock_widget("napari-hsi-anomaly", "Model")[1]
    for data, kwargs, kind in sample_scene():
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    state = get_state(viewer)
    qtbot.waitUntil(lambda: state.cube is not None, timeout=WAIT_MS)
    assert state.analysis_cube().bands == 11  # the default selection: without B10
    model_w.sample_button.click()
    qtbot.waitUntil(lambda: state.model is not None, timeout=WAIT_MS)
    assert state.model.bands == state.analysis_cube().bands == 12 and state.band_selection is None
    assert model_w.warning_label.isHidden() and cube_w.bands.edit.text() == ""
    assert len(shown) == 1 and "B10" in shown[0] and "all 12 bands" in shown[0], shown


def test_bad_window_or_no_cube_notifies(make_napari_viewer, qtbot, shown):
    _, w = make(make_napari_viewer, qtbot)
    assert w.train() is None and "Choose a cube first" in shown[-1]
    _, w = make(make_napari_viewer, qtbot, tiny_cube())
    w.window_size.setValue(30)
    assert w.train() is None and "multiple" in shown[-1]
    assert not w.training and w.train_button.isEnabled()


def test_closing_the_viewer_while_training_is_quiet(make_napari_viewer, qtbot, shown):
    viewer = make_napari_viewer()
    cube = tiny_cube()
    viewer.add_image(cube.data, name="tiny", metadata={"cube": cube})
    get_state(viewer).set_cube(cube, "tiny")
    w = mw.ModelWidget(viewer)  # owned by the viewer's dock, not by qtbot
    _OPEN.append(w)
    viewer.window.add_dock_widget(w, name="Model")
    w.window_size.setValue(16)
    w.epochs.setValue(500)
    w.batch.setValue(1)
    steps: list[object] = []
    worker = w.train()
    worker.yielded.connect(steps.append)
    qtbot.waitUntil(lambda: len(steps) >= 2, timeout=WAIT_MS)
    with qtbot.waitSignal(worker.finished, timeout=WAIT_MS):
        viewer.close()  # napari cancels its registered tasks: the worker quits at its next step
    assert get_state(viewer).model is None
    assert [m for m in shown if not m.startswith("info:")] == []


def test_loss_plot_follows_new_loss_values(qtbot):
    """The live loss curve (on the shared ``ThemedCanvas``) takes each new value; draws are throttled,
    the last one always comes."""
    from napari_hsi_anomaly._widgets.loss_plot import LossPlot
    from napari_hsi_anomaly._widgets.plots import ThemedCanvas

    plot = LossPlot(theme="dark", min_interval_s=0.0)
    qtbot.addWidget(plot)
    assert isinstance(plot, ThemedCanvas)
    plot.reset(epochs=2)
    plot.add(0.5, 0.1)
    plot.add(1.0, 0.05, val_loss=0.06)
    plot.add(1.5, float("nan"))  # not a loss: skipped
    xs, ys = plot.train_line.get_data()
    assert list(xs) == [0.5, 1.0] and list(ys) == [0.1, 0.05]
    assert list(plot.val_line.get_data()[1]) == [0.06] and plot.val_line.get_label() == "validation"
    lo, hi = plot.ax.get_ylim()
    assert lo < 0.05 and hi > 0.1 and plot.ax.get_xlim() == (0.0, 2.0)

    slow = LossPlot(theme="dark", min_interval_s=2.0)  # throttled: a burst is drawn once, later
    qtbot.addWidget(slow)
    before = slow.draws
    slow._last_draw = time.monotonic()  # as if it had just drawn
    slow.add(0.1, 0.2)
    slow.add(0.2, 0.15)
    assert slow.draws == before and slow._timer.isActive()
    qtbot.waitUntil(lambda: slow.draws == before + 1, timeout=WAIT_MS)
    assert list(slow.train_line.get_data()[1]) == [0.2, 0.15]
