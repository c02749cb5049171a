"""Screenshots of the whole viewer as ``hsi-anomaly view`` lays it out (run under Xvfb).

    xvfb-run -a -s "-screen 0 1920x1080x24" python docs/screenshots.py [--size 1920x1080] [--out docs/images]

Stages (files ``NN_name.png``, with ``_1280`` appended for ``--size 1280x1024``):
00_launch (sample scene, RGB composite), 01_loaded (one band on the slider, B08), 02_training
(Model dock mid-training: live loss), 03_detect (default detector, t_anom 0.7, ground truth),
04_inspect (top region, pinned spectra, per-band view), 05_second_scene (a labelled AVIRIS scene
opened next: the sample's results hidden, its ground truth chosen), 06_sentinel2 (real Sentinel-2:
B10 cirrus left out of the band selection), 07_dates (the five-date Sentinel-2 stack, a hazy date).
Every stage shows the whole window.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from qtpy.QtWidgets import QApplication

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("HSI_SHARED_DATA", HERE.parents[1] / "shared" / "data"))


def settle(seconds: float = 0.6, until=None, timeout: float = 300.0) -> None:
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


class Shots:
    def __init__(self, size: tuple[int, int], out: Path) -> None:
        import napari

        from napari_hsi_anomaly._launch import _open, arrange, dock_widgets

        self.out, self.suffix = out, "" if size == (1920, 1080) else f"_{size[0]}"
        self.viewer = napari.Viewer(show=True)
        _open(self.viewer, None)
        dock_widgets(self.viewer)
        qw = self.viewer.window._qt_window
        qw.resize(*size)
        settle(1.0)
        arrange(self.viewer)
        settle(1.0)
        self.docks = qw._hsi_docks
        self.w = {name: dock.widget() for name, dock in self.docks.items()}

    def shot(self, name: str) -> None:
        settle(0.8)
        path = self.out / f"{name}{self.suffix}.png"
        self.viewer.window.screenshot(str(path), canvas_only=False)
        qw = self.viewer.window._qt_window
        print("wrote", path, "| min size", qw.minimumSizeHint().width(), "x", qw.minimumSizeHint().height())

    def fit_scene(self) -> None:
        """Fit the view to the scene on screen once the window has its size and the layers are in: the
        Cube dock's fit (``SceneView.fit``: that scene's layer only; ``viewer.reset_view`` would fit the
        hidden scenes too, and with ``layers=`` fails on an RGB layer of a 4-D stack, napari 0.9.2)."""
        settle(0.3)
        view = self.w["Cube"].scene
        view.fit(view.rgb if view.rgb is not None and view.rgb.visible else view.stack)

    def run(self, stages: list[str]) -> None:
        for stage in stages:
            getattr(self, f"stage_{stage}")()

    def stage_launch(self) -> None:
        self.shot("00_launch")

    def stage_band(self) -> None:
        self.viewer.dims.set_current_step(0, 7)  # B08 842 nm: the slider shows the band stack
        self.shot("01_loaded")
        self.w["Cube"].show_rgb.setChecked(True)

    def stage_training(self) -> None:
        """Train with the dock's defaults for the scene (worker thread); shot once most steps are in."""
        model = self.w["Model"]
        self.docks["Model"].raise_()
        model.preset.setCurrentText("fast")
        os.environ.pop("HSI_ANOMALY_SYNC_WORKERS", None)
        model.train()
        total = model.epochs.value() * (model.form.options().steps_per_epoch or 10)
        settle(until=lambda: len(model.loss_plot.xs) >= 0.6 * total or not model.training)
        model.loss_plot.redraw()
        self.shot("02_training")
        model.cancel()
        settle(until=lambda: not model.training)

    def stage_detect(self) -> None:
        from napari_hsi_anomaly._widgets.state import get_state

        detect = self.w["Detect"]
        self.docks["Detect"].raise_()
        get_state(self.viewer).set_model(None)  # the default detector needs no CAE
        os.environ["HSI_ANOMALY_SYNC_WORKERS"] = "1"
        detect.run_score()
        settle(until=lambda: detect._worker is None)
        detect.t_anom.setValue(0.7)
        detect._commit_debounced.flush()
        settle(until=lambda: bool(detect.metrics_label.text()), timeout=60)
        self.viewer.layers.selection.active = self.viewer.layers["anomaly score"]
        self.shot("03_detect")

    def stage_inspect(self) -> None:
        inspect, detect = self.w["Inspect"], self.w["Detect"]
        inspect._refresh_debounced.flush()
        settle(until=lambda: inspect.stats is not None and inspect.regions)
        top = inspect.regions[0]
        inspect.show_pixel(*(int(round(v)) for v in top.centroid))
        inspect.spectrum.pin()
        scores = detect.scores
        rr, cc = np.unravel_index(int(np.argmin(np.abs(scores - np.median(scores)))), scores.shape)
        inspect.show_pixel(int(rr), int(cc))
        inspect.spectrum.pin()
        inspect.select_region(0)
        self.shot("04_inspect")

    def stage_second(self) -> None:
        cube = self.w["Cube"]
        path = DATA / "hsi-ad" / "san-diego.npz"
        cube.open_path(path)
        settle(until=lambda: cube.state.cube_layer == "san-diego" and cube._busy == 0)
        settle(until=lambda: self.w["Inspect"].stats is not None)
        self.shot("05_second_scene")

    def stage_sentinel2(self) -> None:
        """Real Sentinel-2 (one date, wavelengths and band names): B10 cirrus left out by default."""
        cube = self.w["Cube"]
        cube.open_path(DATA / "sentinel2" / "sentinel2-eolearn-ref.npz")
        settle(until=lambda: (cube.state.cube_layer or "").startswith("sentinel2") and cube._busy == 0)
        settle(until=lambda: self.w["Inspect"].stats is not None)
        self.w["Inspect"].show_pixel(50, 50)
        self.shot("06_sentinel2")

    def stage_dates(self) -> None:
        """The five-date Sentinel-2 stack: the date slider on a hazy date, the band slider below."""
        cube = self.w["Cube"]
        cube.open_path(DATA / "sentinel2" / "eo-learn_REFERENCE_SCENES.npy")
        settle(until=lambda: (cube.state.cube_layer or "").startswith("eo-learn") and cube._busy == 0)
        layer = self.viewer.layers[cube.state.cube_layer]
        date_axis = self.viewer.dims.ndim - layer.ndim + int(layer.metadata.get("date_axis", 0))
        self.viewer.dims.set_current_step(date_axis, 1)  # date 2: haze
        settle(until=lambda: self.w["Inspect"].stats is not None)
        self.w["Inspect"].show_pixel(50, 50)
        self.fit_scene()
        self.shot("07_dates")


STAGES = ["launch", "band", "training", "detect", "inspect", "second", "sentinel2", "dates"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "images")
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--stages", default=",".join(STAGES))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    w, h = (int(v) for v in args.size.lower().split("x"))
    shots = Shots((w, h), args.out)
    shots.run([s for s in args.stages.split(",") if s])
    shots.viewer.close()


if __name__ == "__main__":
    main()
