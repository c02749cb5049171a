"""The Detect dock through its real widgets: Score, live t_anom, p_min rescoring, metrics, errors."""

from __future__ import annotations

import numpy as np
import pytest

from napari_hsi_anomaly.core.cube import Cube

pytestmark = pytest.mark.gui

WORKER_TIMEOUT_MS = 60_000


def make_cube(size: int = 48, bands: int = 6) -> tuple[Cube, np.ndarray]:
    """A noisy cube with an obvious bright 6x6 square; returns it and the square's mask."""
    rng = np.random.default_rng(1)
    data = rng.normal(0.3, 0.02, size=(bands, size, size)).astype(np.float32)
    data += np.linspace(0, 0.05, bands, dtype=np.float32)[:, None, None]
    data[:, 20:26, 30:36] += np.linspace(0.3, 0.6, bands, dtype=np.float32)[:, None, None]
    gt = np.zeros((size, size), dtype=np.uint8)
    gt[20:26, 30:36] = 1
    wl = np.linspace(450.0, 900.0, bands)
    return Cube(data, wavelengths=wl), gt


def setup_viewer(viewer, cube: Cube) -> None:
    from napari_hsi_anomaly._widgets.state import get_state

    viewer.add_image(cube.data, name="cube")
    viewer.add_image(cube.rgb(), rgb=True, name="RGB composite")
    get_state(viewer).set_cube(cube, "cube", "RGB composite")


@pytest.fixture
def detect(make_napari_viewer, qtbot):
    from napari_hsi_anomaly._widgets.detect_widget import DetectWidget

    viewer = make_napari_viewer()
    cube, gt = make_cube()
    setup_viewer(viewer, cube)
    widget = DetectWidget(viewer)
    qtbot.addWidget(widget)
    return viewer, widget, cube, gt


def score(widget, qtbot, method: str = "rx", **kw) -> None:
    widget.set_method(method, kw.get("feature"))
    worker = widget.run_score()
    assert worker is not None
    qtbot.waitUntil(lambda: widget._worker is None, timeout=WORKER_TIMEOUT_MS)


def test_score_rx_layers_and_live_threshold(detect, qtbot):
    from napari_hsi_anomaly._widgets.detect_widget import MASK_LAYER, SCORE_LAYER
    from napari_hsi_anomaly._widgets.state import get_state

    viewer, widget, cube, gt = detect
    score(widget, qtbot, "rx")
    names = [layer.name for layer in viewer.layers]
    assert names == ["cube", "RGB composite", SCORE_LAYER, MASK_LAYER]  # mask on top
    heat, mask = viewer.layers[SCORE_LAYER], viewer.layers[MASK_LAYER]
    assert tuple(heat.contrast_limits) == (0.0, 1.0)
    assert "inferno" in heat.colormap.name
    assert heat.colormap.map(np.array([0.0]))[0, 3] == 0  # low scores transparent
    assert heat.colormap.map(np.array([1.0]))[0, 3] == 1
    assert mask.data.dtype == np.uint8
    scores = heat.data
    assert scores.shape == (48, 48) and scores.min() >= 0 and scores.max() <= 1
    assert scores[gt > 0].min() > np.percentile(scores[gt == 0], 99)  # the square stands out

    counts = []
    t_hi = np.floor(100 * scores[gt > 0].min()) / 100  # still flags the square
    levels = [round(float(np.quantile(scores, q)), 2) for q in (0.5, 0.9)] + [t_hi]
    for t in levels:
        widget.t_anom.setValue(t)
        np.testing.assert_array_equal(mask.data.astype(bool), scores >= np.float32(t))
        counts.append(int(mask.data.sum()))
        assert f"{counts[-1]:,} px" in widget.counts.text()
    assert counts[0] >= counts[1] >= counts[2] > 0
    assert counts[0] > counts[2]
    # contrast never autoscaled by the updates
    assert tuple(heat.contrast_limits) == (0.0, 1.0)
    # after the slider rests: regions counted, mask published to the shared state
    state = get_state(viewer)
    widget._commit_debounced.flush()
    assert "region" in widget.counts.text()
    np.testing.assert_array_equal(state.mask, scores >= np.float32(widget.t_anom.value()))
    assert state.detection is widget.detection and state.detection.method == "rx"
    # the histogram line follows the slider
    assert widget.hist.t_line.get_xdata()[0] == pytest.approx(t_hi)
    assert widget.hist.counts.sum() == scores.size


def test_rescore_keeps_layers_and_new_shape_replaces(detect, qtbot):
    viewer, widget, cube, gt = detect
    score(widget, qtbot, "rx")
    heat = widget.score_layer
    score(widget, qtbot, "rx-local")
    assert widget.score_layer is heat  # updated in place, not re-added
    assert widget.detection.method == "rx-local"
    assert len(viewer.layers) == 4


def test_ground_truth_metrics_match_evaluate(detect, qtbot):
    from napari_hsi_anomaly.core.scoring.metrics import evaluate

    viewer, widget, cube, gt = detect
    viewer.add_labels(gt, name="ground truth")
    score(widget, qtbot, "rx")
    assert widget.gt_combo.findText("ground truth") >= 0
    widget.set_ground_truth("ground truth")
    qtbot.waitUntil(lambda: np.isfinite(widget._auc), timeout=WORKER_TIMEOUT_MS)
    assert widget.roc.isVisibleTo(widget)
    for t in (0.4, 0.7):
        widget.t_anom.setValue(t)
        ref = evaluate(widget.scores, gt, t)
        m = widget.metrics
        for key in ("tpr", "fnr", "precision", "f_score", "auc"):
            assert m[key] == pytest.approx(getattr(ref, key)), key
        assert f"TPR {ref.tpr:.3f}" in widget.metrics_label.text()
    # the operating point sits on the ROC at the current FPR/TPR
    x, y = widget.roc.point.get_data()
    assert y[0] == pytest.approx(ref.tpr)
    assert x[0] == pytest.approx(ref.fp / (ref.fp + ref.tn))
    widget.set_ground_truth("(none)")
    assert not widget.roc.isVisibleTo(widget)


def test_worker_error_notifies_and_keeps_layers(detect, qtbot, monkeypatch):
    import napari.utils.notifications as notifications

    import napari_hsi_anomaly._widgets.detect_widget as dw
    from napari_hsi_anomaly.core.errors import HsiAnomalyError

    viewer, widget, cube, gt = detect
    score(widget, qtbot, "rx")
    before = widget.score_layer.data.copy()
    mask_before = widget.mask_layer.data.copy()

    def broken(*args, **kwargs):
        yield from ()
        raise HsiAnomalyError("The detector broke on purpose.")

    monkeypatch.setattr(dw, "score_job", broken)

    shown: list[str] = []
    monkeypatch.setattr(notifications, "show_error", lambda msg, *a, **k: shown.append(str(msg)))
    score(widget, qtbot, "rx-local")
    assert shown == ["The detector broke on purpose."]
    assert "failed" in widget.status.text()
    np.testing.assert_array_equal(widget.score_layer.data, before)
    np.testing.assert_array_equal(widget.mask_layer.data, mask_before)
    assert widget.detection.method == "rx"
    assert widget.score_btn.isEnabled()


def test_auto_p_min_is_shown_and_turned_off_by_the_slider(detect, qtbot):
    viewer, widget, cube, gt = detect
    assert widget.p_min_auto.isChecked()
    score(widget, qtbot, "glosh-spectral")
    det = widget.detection
    assert det.params.get("p_min_auto") and widget.p_min.value() == det.params["p_min"]
    assert widget.p_min_auto.isChecked()  # showing the chosen value did not turn auto off
    widget.p_min.setValue(det.params["p_min"] + 7)
    assert not widget.p_min_auto.isChecked()
    widget._rescore_debounced.flush()
    qtbot.waitUntil(lambda: widget._rescoring is None and det.params["p_min"] == widget.p_min.value(),
                    timeout=WORKER_TIMEOUT_MS)


def test_export_scores_and_mask(detect, qtbot, tmp_path):
    viewer, widget, cube, gt = detect
    score(widget, qtbot, "rx")
    widget.t_anom.setValue(0.6)
    out = widget.export("scores", tmp_path / "scores.npy")
    np.testing.assert_array_equal(np.load(out), widget.scores)
    out = widget.export("mask", tmp_path / "mask.npy")
    np.testing.assert_array_equal(np.load(out).astype(bool), widget.scores >= np.float32(0.6))
    src = tmp_path / "scene.npy"  # the scene's own file is never overwritten by a save
    np.save(src, np.ones((2, 2)))
    widget.state.cube.source = src
    assert widget.export("scores", src) is None
    np.testing.assert_array_equal(np.load(src), np.ones((2, 2)))


@pytest.mark.slow
def test_glosh_p_min_rescore_and_stale_results(detect, qtbot):
    viewer, widget, cube, gt = detect
    widget.p_min_auto.setChecked(False)
    widget.p_min.setValue(100)
    widget.params.set_param("min_samples", 5)
    score(widget, qtbot, "glosh", feature="pixel")  # trains a fast model first (no model loaded)
    det = widget.detection
    assert det.method == "glosh" and det.params["p_min"] == 100
    from napari_hsi_anomaly._widgets.state import get_state

    assert get_state(viewer).model is det.extras["model"]  # the trained model is kept
    assert widget.p_min.isEnabled()
    first = widget.score_layer.data.copy()

    widget.p_min.setValue(15)
    widget._rescore_debounced.flush()
    qtbot.waitUntil(lambda: det.params["p_min"] == 15 and widget._rescoring is None,
                    timeout=WORKER_TIMEOUT_MS)
    shown = widget.score_layer.data
    assert not np.array_equal(shown, first)  # p_min changed the scores
    np.testing.assert_array_equal(shown, det.rescore(15))
    np.testing.assert_array_equal(widget.mask_layer.data.astype(bool),
                                  shown >= np.float32(widget.t_anom.value()))

    # a result from an older request is dropped
    stale = widget._rescore_gen.current
    widget._rescore_gen.next()
    assert widget.apply_rescore(stale, 100, np.ones_like(shown)) is False
    np.testing.assert_array_equal(widget.score_layer.data, shown)
    assert widget.apply_rescore(widget._rescore_gen.current, 100, det.rescore(100)) is True
    np.testing.assert_array_equal(widget.score_layer.data, first)


def test_cancel_keeps_earlier_results(detect, qtbot, monkeypatch):
    import time

    import napari_hsi_anomaly._widgets.detect_widget as dw
    from napari_hsi_anomaly.core.progress import Progress

    viewer, widget, cube, gt = detect
    score(widget, qtbot, "rx")
    before = widget.score_layer.data.copy()
    steps: list[int] = []

    def slow(*args, **kwargs):
        for i in range(200):
            steps.append(i)
            yield Progress(i, 200, f"step {i}")
            time.sleep(0.02)
        raise AssertionError("not cancelled")

    monkeypatch.setattr(dw, "score_job", slow)
    widget.set_method("rx-local")
    widget.run_score()
    qtbot.waitUntil(lambda: len(steps) >= 3, timeout=WORKER_TIMEOUT_MS)
    assert widget.cancel_btn.isEnabled() and not widget.score_btn.isEnabled()
    widget.cancel_btn.click()
    qtbot.waitUntil(lambda: widget._worker is None, timeout=WORKER_TIMEOUT_MS)
    assert len(steps) < 200
    assert "Cancelled" in widget.status.text()
    np.testing.assert_array_equal(widget.score_layer.data, before)
    assert widget.detection.method == "rx" and widget.score_btn.isEnabled()


@pytest.mark.parametrize("name", ["Detect", "Inspect"])
def test_docks_open_from_the_plugin_manifest(make_napari_viewer, name):
    from napari_hsi_anomaly._widgets.detect_widget import DetectWidget
    from napari_hsi_anomaly._widgets.inspect_widget import InspectWidget

    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-hsi-anomaly", name)
    assert isinstance(widget, {"Detect": DetectWidget, "Inspect": InspectWidget}[name])
    if name == "Detect":
        from napari_hsi_anomaly.core.scoring import DEFAULT_METHOD

        assert widget.method.currentData() == DEFAULT_METHOD
        assert widget.run_score() is None and "No cube" in widget.status.text()


def test_score_and_mask_stay_above_every_image_of_the_scene(detect, qtbot):
    """Issue 11 item 1: a layer added after the first Score (a new RGB) never covers the results."""
    viewer, widget, cube, gt = detect
    score(widget, qtbot, "rx")
    viewer.add_image(cube.rgb(), rgb=True, name="RGB again")
    score(widget, qtbot, "rx-local")
    names = [layer.name for layer in viewer.layers]
    assert names[-2:] == ["anomaly score", "anomaly mask"], names
    from napari_hsi_anomaly._widgets.detect_layers import score_rgba

    # the heatmap's colour bar: a strip under the histogram with the layer's own colours
    strip = widget.hist.cbar_ax.images[0].get_array()
    assert strip.shape == (1, len(score_rgba()), 3)
    np.testing.assert_allclose(viewer.layers["anomaly score"].colormap.colors[-1, :3],
                               strip[0, -1], atol=1e-6)  # alpha 1 at the top: same colour


def test_second_cube_retires_results_and_resets_the_panel(detect, qtbot):
    from napari_hsi_anomaly._widgets.state import get_state

    viewer, widget, cube, gt = detect
    score(widget, qtbot, "rx")
    widget._commit_debounced.flush()
    assert "region" in widget.counts.text()
    other, _ = make_cube(size=48, bands=6)  # same size: the old results must not pass for its own
    viewer.add_image(other.data, name="cube 2")
    viewer.add_image(other.rgb(), rgb=True, name="cube 2 RGB")
    mgr = get_state(viewer).scenes
    qtbot.waitUntil(lambda: mgr.active is mgr.named("cube 2"))  # a new scene, on screen
    get_state(viewer).set_cube(other, "cube 2", "cube 2 RGB")  # (the Cube dock's part)
    names = [layer.name for layer in viewer.layers]
    assert "anomaly score" not in names and "anomaly mask" not in names  # left with their scene
    first = mgr.named("cube")
    kept = {lay.name: lay for lay in first.layers}
    assert {"anomaly score", "anomaly mask"} <= set(kept)
    assert widget.scores is None and widget.counts.text() == "flagged: -"
    assert not widget.hist.isVisibleTo(widget) and not widget.t_anom.isEnabled()
    assert get_state(viewer).detection is None and get_state(viewer).mask is None
    score(widget, qtbot, "rx")
    assert [lay.name for lay in viewer.layers][-2:] == ["anomaly score", "anomaly mask"]
    assert viewer.layers["anomaly score"].metadata["scene"] == "cube 2"
    assert kept["anomaly score"].data is not widget.scores


def test_ground_truth_chosen_before_score_sticks(detect, qtbot):
    viewer, widget, cube, gt = detect
    viewer.add_labels(gt, name="my labels")
    widget.set_ground_truth("my labels")
    assert "after Score" in widget.metrics_label.text()
    score(widget, qtbot, "rx")
    assert widget.gt_combo.currentText() == "my labels"
    qtbot.waitUntil(lambda: np.isfinite(widget._auc), timeout=WORKER_TIMEOUT_MS)
    assert "TPR" in widget.metrics_label.text() and widget.metrics["auc"] > 0.9


def test_a_layer_called_ground_truth_is_chosen_automatically(detect, qtbot):
    viewer, widget, cube, gt = detect
    viewer.add_labels(gt, name="ground truth")
    assert widget.gt_combo.currentText() == "ground truth"
    score(widget, qtbot, "rx")
    qtbot.waitUntil(lambda: np.isfinite(widget._auc), timeout=WORKER_TIMEOUT_MS)


def test_form_follows_the_registry_param_declarations(detect, qtbot):
    """A detector registered in a test gets its magicgui form; the values reach the detector."""
    from napari_hsi_anomaly._widgets.detect_params import ParamsForm
    from napari_hsi_anomaly.core.detectors import registry as reg
    from napari_hsi_anomaly.core.detectors.base import Param

    rx_cls = reg.get_detector("rx")
    seen: dict = {}

    class Scaled(rx_cls):  # global RX, with parameters to show
        name = "test-scaled"
        label = "Test: scaled RX"
        summary = "a detector registered by a test"
        params = (Param("gain", float, 1.0, "a gain", minimum=0.0, maximum=10.0),
                  Param("mode", str, "a", "a choice", choices=("a", "b")),
                  Param("window", int, None, "auto or a size", minimum=3))

        def __init__(self, **params):
            seen.update(params)
            super().__init__(**params)

    reg.register(Scaled)
    try:
        viewer, _, cube, gt = detect
        form = ParamsForm()
        form.set_method("test-scaled")
        assert [w.name for w in form.form()] == ["gain", "mode", "window"]
        assert form.values() == {"gain": 1.0, "mode": "a", "window": None}  # None shows "auto"
        form.set_param("mode", "b")
        form.set_param("window", 7)
        assert form.values() == {"gain": 1.0, "mode": "b", "window": 7}
        assert not form._p_row.isVisibleTo(form)  # no p_min for a non-GLOSH detector
    finally:
        reg.unregister("test-scaled")
