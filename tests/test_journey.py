"""A working session in a real window (issue 22): sample scene -> Sentinel-2 stack -> jasperRidge (198
bands) -> can_tmr (6 bands) -> back to the sample -> back to the stack, scoring on the way.

Checks at every step: no exception (nothing logged as an error, no notification of one), napari's axes
are the active scene's only, the canvas is not blank, and results come back as they were (same score
array, same t_anom) without a new Score.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from napari_hsi_anomaly._widgets import workers

pytestmark = pytest.mark.gui
WAIT_MS = 120_000


@pytest.fixture
def session(make_napari_viewer, qtbot, monkeypatch, shared_data):
    from napari_hsi_anomaly._launch import _open, dock_widgets

    monkeypatch.setenv(workers.SYNC_ENV, "1")  # one thread: every step is done when its call returns
    viewer = make_napari_viewer(show=True)
    _open(viewer, None)
    dock_widgets(viewer)
    qw = viewer.window._qt_window
    qw.resize(1280, 1024)
    qtbot.waitUntil(lambda: qw.width() == 1280, timeout=10_000)
    docks = {name: d.widget() for name, d in qw._hsi_docks.items()}
    return viewer, docks, shared_data


def find(widget, cls):
    return widget if isinstance(widget, cls) else widget.findChild(cls)


def active_axes(viewer) -> tuple[tuple, tuple]:
    return tuple(viewer.dims.axis_labels), tuple(int(n) for n in viewer.dims.nsteps)


def canvas_varies(viewer, qtbot) -> bool:
    qtbot.wait(100)
    shot = np.asarray(viewer.screenshot(canvas_only=True, flash=False))
    return float(shot[..., :3].std()) > 2.0


def score_rx(detect, qtbot) -> None:
    detect.set_method("rx")
    detect.run_score()
    qtbot.waitUntil(lambda: detect._worker is None, timeout=WAIT_MS)
    detect._commit_debounced.flush()


def test_a_days_work_switches_freely(session, qtbot, caplog):
    from napari_hsi_anomaly._widgets.cube_widget import CubeWidget
    from napari_hsi_anomaly._widgets.detect_widget import DetectWidget
    from napari_hsi_anomaly._widgets.state import get_state

    caplog.set_level(logging.ERROR)
    viewer, docks, data = session
    cube_w, detect = find(docks["Cube"], CubeWidget), find(docks["Detect"], DetectWidget)
    state, mgr = get_state(viewer), get_state(viewer).scenes

    # 1. the sample scene, scored
    sample = mgr.active
    assert sample is not None and state.cube.bands == 12
    score_rx(detect, qtbot)
    sample_scores, t_sample = detect.scores, 0.55
    detect.t_anom.setValue(t_sample)
    detect._commit_debounced.flush()
    assert canvas_varies(viewer, qtbot)

    # 2. the Sentinel-2 stack: axes "date" and "band" of the stack only (5 dates, 13 bands)
    cube_w.open_path(data / "sentinel2" / "eo-learn_REFERENCE_SCENES.npy")
    stack = mgr.active
    assert stack is not sample and stack.is_stack
    labels, nsteps = active_axes(viewer)
    assert labels[:2] == ("band", "date") and nsteps[:2] == (13, 5), (labels, nsteps)
    assert all(mgr.owner(lay) is stack for lay in viewer.layers)  # the sample's layers are out
    assert detect.scores is None  # its own (no) results, not the sample's
    score_rx(detect, qtbot)
    stack_scores = detect.scores
    assert stack_scores.shape == (101, 100)
    assert canvas_varies(viewer, qtbot)

    # 3. jasperRidge (198 bands), then can_tmr (6 bands): no leak of 198 positions, no caption crash
    cube_w.open_path(data / "envi" / "jasperRidge2_R198.hdr")
    assert active_axes(viewer)[1][0] == 198 and len(viewer.dims.nsteps) == 3
    score_rx(detect, qtbot)
    cube_w.open_path(data / "envi" / "can_tmr.hdr")
    labels, nsteps = active_axes(viewer)
    assert nsteps[0] == 6 and len(nsteps) == 3 and labels[0] == "band", (labels, nsteps)
    cube_w.slider_labels.update()  # the caption reads the 6-band cube's composite
    assert "can_tmr" in viewer.text_overlay.text
    assert canvas_varies(viewer, qtbot)
    assert [s.name for s in mgr.scenes][:2] == [sample.name, stack.name] and len(mgr.scenes) == 4

    # 4. back to the sample (the Cube dock's list): its results as they were, no Score
    cube_w.layer_combo.setCurrentText(sample.name)
    assert mgr.active is sample and state.cube.bands == 12
    assert detect.scores is sample_scores
    assert detect.t_anom.value() == pytest.approx(t_sample)
    assert viewer.layers["anomaly score"].data is sample_scores
    assert viewer.layers["anomaly score"].visible
    assert active_axes(viewer)[1][0] == 12 and len(viewer.dims.nsteps) == 3
    assert sample.name in viewer.text_overlay.text or cube_w.canvas_text().startswith(sample.name)
    assert canvas_varies(viewer, qtbot)

    # 5. back to the stack: its axes and its results
    cube_w.layer_combo.setCurrentText(stack.name)
    assert mgr.active is stack
    assert active_axes(viewer)[1][:2] == (13, 5)
    assert detect.scores is stack_scores
    assert canvas_varies(viewer, qtbot)

    # 6. close the stack: the next scene comes on screen
    cube_w.close_scene()
    assert stack not in mgr.scenes and mgr.active is not None and len(mgr.scenes) == 3
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
