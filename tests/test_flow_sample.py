"""The whole flow on the sample scene through the four docks, as a user would go through it."""

from __future__ import annotations

import numpy as np
import pytest
from test_widget_inspect import click

from napari_hsi_anomaly._sample_data import sample_scene
from napari_hsi_anomaly._widgets.state import get_state

pytestmark = [pytest.mark.gui, pytest.mark.slow]
WAIT_MS = 600_000  # generous: per-pixel CAE GLOSH on 256x256 must finish next to a CPU burner


def score(widget, qtbot, method: str, feature: str | None = None) -> None:
    """Score and wait on the worker (no timing assert: a busy machine only makes it slower)."""
    widget.set_method(method, feature)
    assert widget.run_score() is not None
    qtbot.waitUntil(lambda: widget._worker is None, timeout=WAIT_MS)


def test_train_score_sliders_click_and_region_on_the_sample(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    docks = {
        name: viewer.window.add_plugin_dock_widget("napari-hsi-anomaly", name)[1]
        for name in ("Cube", "Model", "Detect", "Inspect")
    }
    for data, kwargs, kind in sample_scene():
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    state = get_state(viewer)
    qtbot.waitUntil(lambda: state.cube is not None, timeout=WAIT_MS)
    cube = state.cube
    assert cube.shape == (12, 256, 256)

    # Model dock: one epoch of the fast preset in its worker thread
    model_w = docks["Model"]
    model_w.preset.setCurrentText("fast")
    model_w.epochs.setValue(1)
    assert model_w.train() is not None
    qtbot.waitUntil(lambda: state.model is not None and not model_w.training, timeout=WAIT_MS)
    # trained on the Cube dock's band selection: the sample's 12 Sentinel-2 bands without B10 cirrus
    assert state.analysis_cube().bands == 11 and state.band_selection.tolist() == [*range(9), 10, 11]
    assert state.model.bands == 11 and state.model.summary["epochs"] == 1

    # Detect dock: CAE features per pixel + GLOSH with that model (no second training)
    detect_w = docks["Detect"]
    score(detect_w, qtbot, "glosh", feature="pixel")
    det = detect_w.detection
    assert det.extras["model"] is state.model
    assert det.params["p_min"] >= 100  # the detector's automatic rule (core's business, not the dock's)
    mask_layer = viewer.layers["anomaly mask"]

    # t_anom: the mask is exactly score >= t; a higher threshold flags a subset
    detect_w.t_anom.setValue(0.5)
    low = mask_layer.data.astype(bool).copy()
    np.testing.assert_array_equal(low, detect_w.scores >= np.float32(0.5))
    detect_w.t_anom.setValue(0.8)
    high = mask_layer.data.astype(bool).copy()
    np.testing.assert_array_equal(high, detect_w.scores >= np.float32(0.8))
    assert high.sum() < low.sum() and not (high & ~low).any()

    # p_min: re-scored from the cached hierarchy, equal to Detection.rescore
    before = detect_w.scores.copy()
    detect_w.p_min.setValue(200)
    detect_w._rescore_debounced.flush()
    qtbot.waitUntil(lambda: det.params["p_min"] == 200 and detect_w._rescoring is None,
                    timeout=WAIT_MS)
    assert not np.array_equal(detect_w.scores, before)
    np.testing.assert_array_equal(detect_w.scores, det.rescore(200))
    np.testing.assert_array_equal(mask_layer.data.astype(bool), detect_w.scores >= np.float32(0.8))

    # Inspect dock: a click plots the pixel's spectrum in the cube's (scaled) units
    inspect_w = docks["Inspect"]
    click(inspect_w, viewer, (3.0, 45.2, 109.7))
    assert inspect_w.picked == (45, 110)
    x, y = inspect_w.spectrum.line.get_data()
    np.testing.assert_allclose(x, cube.wavelengths)
    np.testing.assert_allclose(y, cube.as_float32(slice(45, 46), slice(110, 111)).ravel())

    # the region table follows the mask; selecting a region centres the view on it
    detect_w._commit_debounced.flush()
    inspect_w._refresh_debounced.flush()
    assert inspect_w.regions, "nothing flagged at t_anom 0.8"
    inspect_w.select_region(0)
    region = inspect_w.regions[0]
    np.testing.assert_allclose(viewer.camera.center[-2:], region.centroid, atol=0.5)
