"""The window fits a 1080-px screen with every dock open, and stays usable at 1280x1024."""

from __future__ import annotations

import pytest

from napari_hsi_anomaly._launch import DOCKS, _open, arrange, dock_widgets

pytestmark = pytest.mark.gui


@pytest.fixture
def launched(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    _open(viewer, None)  # the sample scene (with its ground truth)
    assert dock_widgets(viewer) == list(DOCKS)
    return viewer


def _canvas_width(viewer) -> int:
    return viewer.window._qt_viewer.canvas.native.width()


@pytest.mark.parametrize("size", [(1920, 1080), (1280, 1024)])
def test_window_fits_the_screen_with_every_dock(launched, qtbot, size):
    viewer = launched
    qw = viewer.window._qt_window
    qw.resize(*size)
    qtbot.waitUntil(lambda: qw.width() == size[0], timeout=10000)
    arrange(viewer)
    qtbot.wait(50)  # one turn of the event loop for the dock layout
    assert qw.minimumSizeHint().height() <= 1000, qw.minimumSizeHint()
    assert qw.minimumSizeHint().width() <= 1280, qw.minimumSizeHint()
    # half the width at 1920; at 1280 "usable": 450 px or more (the issue saw 330 px between the docks)
    least = 0.5 * size[0] if size[0] >= 1920 else 450
    assert _canvas_width(viewer) >= least, (_canvas_width(viewer), size)


def test_loss_curve_is_on_screen_while_training(launched, qtbot):
    """The Model dock's loss curve sits above the fold of its dock at 1920x1080 (no scrolling)."""
    viewer = launched
    qw = viewer.window._qt_window
    qw.resize(1920, 1080)
    qtbot.waitUntil(lambda: qw.width() == 1920, timeout=10000)
    arrange(viewer)
    model_dock = qw._hsi_docks["Model"]
    model_dock.raise_()
    model = model_dock.widget()
    model.loss_plot.show()  # as a training does
    qtbot.wait(50)
    scroll = model.findChild(__import__("qtpy.QtWidgets", fromlist=["QScrollArea"]).QScrollArea)
    bottom = model.loss_plot.mapTo(scroll.widget(), model.loss_plot.rect().bottomLeft()).y()
    assert bottom <= scroll.viewport().height(), (bottom, scroll.viewport().height())


def test_results_above_the_fold_at_1280x1024(launched, qtbot, monkeypatch):
    """Score, t_anom, the histogram and the metrics (with the TP / FP / FN legend) show without
    scrolling the Detect dock at 1280x1024, the scene table and ROC being tabs below them."""
    from qtpy.QtWidgets import QScrollArea

    from napari_hsi_anomaly._launch import follow_resizes
    from napari_hsi_anomaly._widgets import workers

    monkeypatch.setenv(workers.SYNC_ENV, "1")
    viewer = launched
    qw = viewer.window._qt_window
    follow_resizes(viewer)
    qw.resize(1280, 1024)
    qtbot.waitUntil(lambda: qw.width() == 1280, timeout=10000)
    arrange(viewer)
    detect = qw._hsi_docks["Detect"].widget()
    detect.set_method("rx")
    detect.run_score()
    qtbot.waitUntil(lambda: detect._worker is None, timeout=120_000)
    detect._commit_debounced.flush()
    qtbot.wait(50)
    assert detect.metrics_text and detect.results.legend.isVisibleTo(detect)
    scroll = detect.findChild(QScrollArea)
    height = scroll.viewport().height()
    for w in (detect.score_btn, detect.t_anom, detect.hist, detect.metrics_label, detect.results.legend):
        bottom = w.mapTo(scroll.widget(), w.rect().bottomLeft()).y()
        assert bottom <= height, (w, bottom, height)
    assert scroll.verticalScrollBar().value() == 0
