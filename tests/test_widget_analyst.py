"""The analyst's loop in the docks: why is this flagged, mark as normal / undo, mark as anomaly and
compare detectors, false-alarm rate and the threshold set by it, PR curve."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui
WAIT_MS = 120_000


@pytest.fixture
def docks(make_napari_viewer, qtbot):
    from test_feedback import planted_scene
    from test_widget_detect import score, setup_viewer

    from napari_hsi_anomaly._widgets.detect_widget import DetectWidget
    from napari_hsi_anomaly._widgets.inspect_widget import InspectWidget

    viewer = make_napari_viewer()
    cube, a, b = planted_scene()
    setup_viewer(viewer, cube)
    detect = DetectWidget(viewer)
    inspect = InspectWidget(viewer)
    qtbot.addWidget(detect)
    qtbot.addWidget(inspect)
    score(detect, qtbot, "rx")
    detect._commit_debounced.flush()
    inspect._refresh_debounced.flush()
    return viewer, detect, inspect, cube, a, b


def test_why_then_mark_normal_and_undo(docks, qtbot):
    viewer, detect, inspect, cube, a, b = docks
    first = detect.detection
    assert detect.mask[a].mean() > 0.9 and detect.mask[b].mean() > 0.9
    index = next(i for i, r in enumerate(inspect.regions) if a[int(r.centroid[0]), int(r.centroid[1])])
    inspect.select_region(index)
    panel = inspect.analyst
    qtbot.waitUntil(lambda: panel.why.explanation is not None, timeout=WAIT_MS)
    rx = panel.why.explanation.parts[0]
    assert rx.part == "rx" and int(np.argmax(rx.bands)) in (1, 2)
    assert "Why is this flagged" in panel.why.title.text() and "d\u00b2" in panel.why.text.text()
    assert panel.selection.sum() == a.sum()

    panel.normal_btn.click()
    qtbot.waitUntil(lambda: panel._worker is None, timeout=WAIT_MS)
    assert detect.detection is not first and panel.stack.can_undo
    assert detect.mask[a].mean() < 0.1 and detect.mask[b].mean() > 0.9  # every view follows
    detect._commit_debounced.flush()
    inspect._refresh_debounced.flush()
    assert not any(a[int(r.centroid[0]), int(r.centroid[1])] for r in inspect.regions)
    assert detect.detection.extras["marked_normal"][0].pixels.shape == (int(a.sum()), 2)

    panel.undo_btn.click()
    assert detect.detection is first and detect.mask[a].mean() > 0.9 and not panel.stack.can_undo


def test_mark_anomaly_from_a_drawn_polygon_and_compare(docks, qtbot):
    from napari_hsi_anomaly._widgets.feedback_panel import LABELS_LAYER

    viewer, detect, inspect, cube, a, b = docks
    shapes = viewer.add_shapes([np.array([[59.5, 59.5], [59.5, 64.5], [64.5, 64.5], [64.5, 59.5]])],
                               shape_type="polygon", name="drawn")
    viewer.layers.selection.active = shapes
    inspect.analyst.anomaly_btn.click()
    labels = viewer.layers[LABELS_LAYER].data
    assert labels.sum() == 25 and labels[b].sum() == 25
    compare = detect.results.analyst.compare
    compare.names = ["rx", "glosh-spectral"]
    compare.btn.click()
    qtbot.waitUntil(lambda: compare._worker is None, timeout=WAIT_MS)
    assert [r.detector for r in compare.rows] == ["rx", "glosh-spectral"]
    assert compare.table.rowCount() == 2 and compare.rows[0].auc > 0.9


def test_false_alarm_rate_and_threshold_by_far(docks, qtbot):
    from napari_hsi_anomaly.core.thresholds import false_alarm_rate, t_for_far

    viewer, detect, inspect, cube, a, b = docks
    panel = detect.results.analyst
    qtbot.waitUntil(lambda: panel.normal is not None, timeout=WAIT_MS)
    assert "false-alarm rate at t_anom 0.70" in panel.far_label.text()
    panel.mode.setCurrentText("false-alarm rate")
    panel.value.setText("1e-3")
    t = panel.set_from_value()
    assert t == pytest.approx(t_for_far(detect.detection, 1e-3), abs=1e-4)
    assert detect.t_anom.value() == pytest.approx(t, abs=1e-4)
    assert false_alarm_rate(detect.detection, detect.t_anom.value()) <= 1e-3
    assert "flags" in panel.far_label.text()
    panel.mode.setCurrentText("contamination")
    panel.value.setText("0.01")
    panel.set_from_value()
    assert int(detect.mask.sum()) == pytest.approx(0.01 * a.size, abs=2)
    assert panel.check_p_min(5) is None  # RX has no p_min: nothing to warn about


def test_pr_curve_with_ground_truth(docks, qtbot):
    viewer, detect, inspect, cube, a, b = docks
    viewer.add_labels((a | b).astype(np.uint8), name="ground truth")
    detect.set_ground_truth("ground truth")
    detect.results.commit()
    pr = detect.results.analyst.pr
    qtbot.waitUntil(lambda: len(pr.curve.get_xdata()) > 2, timeout=WAIT_MS)
    assert pr.isVisibleTo(detect) and "AP" in pr.ax.get_title()
    assert "false-alarm rate" in detect.metrics_label.text() and "TP " in detect.metrics_label.text()


def test_p_min_warning_shows_under_the_p_min_slider(make_napari_viewer, qtbot):
    """On the sample scene (GLOSH), dragging p_min to 300 names the risk right under the slider, in the
    parameters form, before the re-scored map is shown; the risk is judged on the mask shown when the
    drag began (the re-scored map no longer flags the planted patches, so judged on it there would be
    no warning at 320); a safe p_min hides it again."""
    from test_widget_detect import score, setup_viewer

    from napari_hsi_anomaly._sample_data import SAMPLE_DIR, _load
    from napari_hsi_anomaly._widgets.detect_widget import DetectWidget
    from napari_hsi_anomaly.core.thresholds import p_min_risk

    cube, _, _ = _load(SAMPLE_DIR)
    viewer = make_napari_viewer()
    setup_viewer(viewer, cube)
    detect = DetectWidget(viewer)
    qtbot.addWidget(detect)
    score(detect, qtbot, "glosh-spectral")
    form, panel = detect.params, detect.results.analyst
    warn = form.p_min_warning
    assert warn is panel.pmin_warn and form.isAncestorOf(warn)  # one label, placed in the params form
    row, _ = form._p_form.getWidgetPosition(warn)
    assert row == form._p_form.getWidgetPosition(form._p_row)[0] + 1  # the row right under p_min
    assert not warn.isVisibleTo(detect)  # no risk yet: nothing shown
    shown_before = detect.results.scores >= np.float32(detect.results.t_anom.value())
    events: list[str] = []
    show_risk = panel.show_risk
    panel.show_risk = lambda risk: (events.append(f"warning p_min {risk.p_min}"), show_risk(risk))
    detect.state.detection_changed.connect(lambda d: events.append(f"result p_min {d.params['p_min']}"))

    def move(p: int) -> None:
        form.p_min.setValue(p)
        detect._rescore_debounced.flush()
        qtbot.waitUntil(lambda: detect.detection.params["p_min"] == p and detect._rescoring is None,
                        timeout=WAIT_MS)

    form.p_min.setSliderDown(True)  # the user drags the slider
    move(300)
    assert events == ["warning p_min 300", "result p_min 300"]  # the warning first
    assert warn.isVisibleTo(detect) and warn.text().startswith("p_min 300:")
    assert "flagged pixels form" in warn.text() and "keep p_min above" in warn.text()
    np.testing.assert_array_equal(panel.before, shown_before)  # judged on the map of the drag's start
    assert p_min_risk(detect.detection, 320, detect.results.t_anom.value()).message == ""  # re-scored: none
    move(320)
    assert events[-2:] == ["warning p_min 320", "result p_min 320"]
    assert warn.text().startswith("p_min 320:")
    form.p_min.setSliderDown(False)
    form.p_min.sliderReleased.emit()
    assert panel.before is None  # the drag ended on the map shown: the next move is judged on it
    move(1000)
    qtbot.waitUntil(lambda: not warn.isVisibleTo(detect), timeout=WAIT_MS)
    assert warn.text() == ""


def test_a_drawn_polygon_is_seen_through_napari_s_viewer_proxy(make_napari_viewer, qtbot):
    """A dock opened from napari's Plugins menu gets the viewer through ``PublicOnlyProxy``: the drawn
    Shapes layer must still count as the selection (``type()`` of a proxied layer is the proxy)."""
    from napari.utils._proxies import PublicOnlyProxy
    from test_feedback import planted_scene
    from test_widget_detect import setup_viewer

    from napari_hsi_anomaly._widgets.feedback_panel import FeedbackPanel
    from napari_hsi_anomaly._widgets.state import get_state

    viewer = make_napari_viewer()
    cube, _, _ = planted_scene()
    setup_viewer(viewer, cube)
    panel = FeedbackPanel(PublicOnlyProxy(viewer), get_state(viewer))
    qtbot.addWidget(panel)
    shapes = viewer.add_shapes([np.array([[9.5, 9.5], [9.5, 15.5], [15.5, 15.5], [15.5, 9.5]])],
                               shape_type="polygon", name="drawn")
    viewer.layers.selection.active = shapes
    mask, what = panel.marked()
    assert mask is not None and int(mask.sum()) == 36 and "drawn" in what
