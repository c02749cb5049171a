"""The Cube dock's scene fit: centred on the scene and zoomed so all of it fills the canvas (napari 0.9
reads the canvas size from ``viewer.canvas.size``; before, the zoom was silently left as it was)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def test_fit_zooms_to_the_scene_not_to_every_layer(make_napari_viewer):
    from napari_hsi_anomaly._widgets.scene_view import SceneView, camera

    viewer = make_napari_viewer()
    big = viewer.add_image(np.zeros((400, 400), dtype=np.float32), name="other scene")
    small = viewer.add_image(np.zeros((40, 50), dtype=np.float32), name="this scene")
    big.visible = False
    cam = camera(viewer)
    cam.zoom = 0.01
    SceneView(viewer).fit(small)  # was left at 0.01 on napari 0.9 (no viewer._canvas_size)
    np.testing.assert_allclose(cam.center[-2:], (19.5, 24.5))
    canvas = np.asarray(viewer.canvas.size, dtype=float)  # (height, width)
    expected = float(np.min(canvas / np.array([40.0, 50.0])) * 0.95)
    assert cam.zoom == pytest.approx(expected)


def test_canvas_text_wraps_to_the_canvas_width(make_napari_viewer, qtbot):
    """The canvas line (scene · date · bands) breaks at its separators on a narrow canvas (1280-px
    windows clipped it) and stays one line on a wide one."""
    from napari_hsi_anomaly._widgets.band_slider import BandSliderLabels, fit_text, text_overlay

    line = "eo-learn_REFERENCE_SCENES · date 2/5 · R band 9 / G band 5 / B band 1"
    assert fit_text(line, 1100, 11) == line
    assert fit_text(line, 530, 11) == "eo-learn_REFERENCE_SCENES · date 2/5\nR band 9 / G band 5 / B band 1"
    assert fit_text(line, 0, 11) == line  # canvas size unknown: unchanged

    viewer = make_napari_viewer()
    labels = BandSliderLabels(viewer, lambda: line)  # noqa: F841 - kept alive for its connections
    viewer.canvas.size = (800, 1100)
    qtbot.waitUntil(lambda: text_overlay(viewer).text == line, timeout=10_000)
    viewer.canvas.size = (800, 530)  # the canvas narrows: the line is wrapped again
    qtbot.waitUntil(lambda: "\n" in text_overlay(viewer).text, timeout=10_000)
    assert text_overlay(viewer).text.replace("\n", " · ") == line
