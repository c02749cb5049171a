"""Screenshots of the Cube and Model docks on the sample scene (run under ``xvfb-run -a``).

    xvfb-run -a python docs/screenshots.py [--out docs/images]

Writes ``01_loaded.png`` (sample scene, Cube dock with band info and RGB bands, Model dock idle)
and ``02_training.png`` (training in its worker thread: progress text and live loss curve).
One function per stage; ``docs/screenshots_detect.py`` has the Detect and Inspect stages.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import napari
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QApplication

HERE = Path(__file__).resolve().parent
DOCK_WIDTH = 350  # the docks must read well at this width


def settle(seconds: float = 0.6, until=None, timeout: float = 120.0) -> None:
    """Run the Qt event loop for ``seconds``, or until ``until()`` is true (at most ``timeout``)."""
    app = QApplication.instance()
    end = time.perf_counter() + (timeout if until else seconds)
    while time.perf_counter() < end:
        app.processEvents()
        if until is not None and until():
            return
        time.sleep(0.02)
    if until is not None:
        raise TimeoutError("screenshot stage did not reach its state in time")


def shot(viewer: napari.Viewer, path: Path) -> None:
    settle(0.5)
    viewer.screenshot(str(path), canvas_only=False)
    print("wrote", path)


def loaded_stage(viewer: napari.Viewer, out: Path) -> tuple[object, object]:
    """Sample scene + Cube dock (left) + Model dock (right); band slider on band 4. 01_loaded.png."""
    from napari_hsi_anomaly._sample_data import sample_scene
    from napari_hsi_anomaly._widgets.cube_widget import CubeWidget
    from napari_hsi_anomaly._widgets.model_widget import ModelWidget
    from napari_hsi_anomaly._widgets.state import get_state

    cube_w = CubeWidget(viewer)
    viewer.window.add_dock_widget(cube_w, name="Cube", area="left")
    model_w = ModelWidget(viewer)
    dock = viewer.window.add_dock_widget(model_w, name="Model", area="right")
    viewer.window._qt_window.resizeDocks([dock], [DOCK_WIDTH], Qt.Orientation.Horizontal)
    for data, kwargs, kind in sample_scene():
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    for name in ("ground truth", "land cover"):
        if name in viewer.layers:
            viewer.layers[name].visible = False
    viewer.layers.selection.active = viewer.layers[get_state(viewer).rgb_layer]
    viewer.dims.set_current_step(0, 3)
    settle(0.5)
    viewer.reset_view()
    shot(viewer, out / "01_loaded.png")
    return cube_w, model_w


def training_stage(viewer: napari.Viewer, out: Path, model_w, epochs: int = 12, at_epoch: int = 6) -> None:
    """Train the fast preset in its worker thread; grab 02_training.png mid-run, then cancel."""
    model_w.preset.setCurrentText("fast")
    model_w.epochs.setValue(epochs)
    model_w.window_size.setValue(32)
    worker = model_w.train()
    if worker is None:
        raise RuntimeError("training did not start (no cube?)")
    settle(until=lambda: len(model_w.loss_plot.val_xs) >= at_epoch or not model_w.training)
    model_w.loss_plot.redraw()
    shot(viewer, out / "02_training.png")
    model_w.cancel()
    settle(until=lambda: not model_w.training)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "images")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1500, 980)
    _, model_w = loaded_stage(viewer, args.out)
    training_stage(viewer, args.out, model_w)
    viewer.close()


if __name__ == "__main__":
    main()
