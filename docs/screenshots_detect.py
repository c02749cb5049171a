"""Screenshots of the Detect and Inspect docks on the sample scene (run under ``xvfb-run -a``).

    xvfb-run -a python docs/screenshots_detect.py [--out docs/images] [--method spectral-rx] [--t-anom 0.7]

Writes ``03_detect.png`` (heatmap + mask + sliders + histogram + metrics) and ``04_inspect.png``
(a pinned spectrum against the scene, the flagged-regions table and the per-band view).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HSI_ANOMALY_SYNC_WORKERS", "1")  # deterministic: workers run in line

import napari  # noqa: E402
import numpy as np  # noqa: E402
from screenshots import settle  # noqa: E402  (docs/screenshots.py: the Cube and Model stages)

from napari_hsi_anomaly.core.scoring import DEFAULT_METHOD  # noqa: E402

HERE = Path(__file__).resolve().parent



def open_scene(viewer: napari.Viewer) -> None:
    """Sample scene layers; the Cube dock (if present) publishes the cube to the shared state."""
    from napari_hsi_anomaly._sample_data import sample_scene
    from napari_hsi_anomaly._widgets.state import get_state

    try:
        from napari_hsi_anomaly._widgets.cube_widget import CubeWidget

        viewer.window.add_dock_widget(CubeWidget(viewer), name="Cube", area="left")
    except ImportError:  # pragma: no cover - the Cube dock is someone else's and may be absent
        pass
    for data, kwargs, kind in sample_scene():
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    state = get_state(viewer)
    if state.cube is None:  # no Cube dock: publish the reader's cube ourselves
        cube_layer = next(lay for lay in viewer.layers if lay.ndim == 3 and not lay.rgb)
        rgb = next((lay for lay in viewer.layers if getattr(lay, "rgb", False)), None)
        state.set_cube(cube_layer.metadata["cube"], cube_layer.name, rgb.name if rgb else None)
    viewer.layers["ground truth"].visible = False
    if "land cover" in viewer.layers:
        viewer.layers["land cover"].visible = False


def detect_stage(viewer: napari.Viewer, out: Path, method: str, t_anom: float) -> object:
    """Score with ``method``, set t_anom, choose the ground truth; save 03_detect.png."""
    from napari_hsi_anomaly._widgets.detect_widget import DetectWidget

    widget = DetectWidget(viewer)
    dock = viewer.window.add_dock_widget(widget, name="Detect", area="right")
    widget.set_method(method)
    widget.run_score()
    widget.t_anom.setValue(t_anom)
    widget.set_ground_truth("ground truth")
    widget._commit_debounced.flush()
    viewer.layers.selection.active = viewer.layers["anomaly score"]  # its controls: opacity, colormap
    viewer.reset_view()
    settle()
    path = out / "03_detect.png"
    viewer.screenshot(str(path), canvas_only=False)
    print("wrote", path, "|", widget.counts.text(), "|", widget.metrics_text.replace("\n", " "))
    dock.hide()
    return widget


def inspect_stage(viewer: napari.Viewer, out: Path, detect: object) -> None:
    """Pin an anomalous pixel's spectrum, pick a normal one, select the top region; 04_inspect.png."""
    from napari_hsi_anomaly._widgets.inspect_widget import InspectWidget

    widget = InspectWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Inspect", area="right")
    widget._refresh_debounced.flush()
    scores = detect.scores  # type: ignore[attr-defined]
    widget.select_region(0)
    top = widget.regions[0]
    r, c = (int(round(v)) for v in top.centroid)
    widget.show_pixel(r, c)
    widget.spectrum.pin()
    rr, cc = np.unravel_index(int(np.argmin(np.abs(scores - np.median(scores)))), scores.shape)
    widget.show_pixel(int(rr), int(cc))
    widget.spectrum.pin()
    widget.table.clearSelection()
    widget.select_region(0)
    settle()
    path = out / "04_inspect.png"
    viewer.screenshot(str(path), canvas_only=False)
    print("wrote", path, "|", widget.table_label.text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "images")
    parser.add_argument("--method", default=DEFAULT_METHOD)
    parser.add_argument("--t-anom", type=float, default=0.7)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1500, 980)
    open_scene(viewer)
    detect = detect_stage(viewer, args.out, args.method, args.t_anom)
    inspect_stage(viewer, args.out, detect)
    viewer.close()


if __name__ == "__main__":
    main()
