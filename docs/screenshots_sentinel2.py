"""The Sentinel-2 demo screenshot: normal from the clear dates 3 and 4, every date scored.

    xvfb-run -a python docs/screenshots_sentinel2.py [--out docs/images] [--method rx] [--t-anom 0.7]

Opens ``../shared/data/sentinel2/sentinel2-eolearn-ref.npz`` (five dates of one area, dates 0 and 1
hazy, 2-4 clear) as the reader's stack layers with the four docks as ``hsi-anomaly view`` arranges them
(1920x1080), chooses "normal from: reference layers / dates" with dates 3 and 4 checked, scores
every date into the scene table and shows
date 0 (hazy). Writes ``05_sentinel2.png`` (date 0 selected) and ``05b_sentinel2_clear.png`` (date 2)
and prints the table (date, flagged %, median score).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HSI_ANOMALY_SYNC_WORKERS", "1")  # deterministic: workers run in line

import napari  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from screenshots import settle  # noqa: E402  (docs/screenshots.py)

DATA = Path(os.environ.get("HSI_SHARED_DATA", HERE.parents[1] / "shared" / "data")) / "sentinel2"
NORMAL = (3, 4)


def main() -> None:
    from napari_hsi_anomaly._launch import _select_composite, dock_widgets
    from napari_hsi_anomaly._reader import stack_layers
    from napari_hsi_anomaly._widgets import warmup
    from napari_hsi_anomaly._widgets.detect_widget import DetectWidget
    from napari_hsi_anomaly.core.stack import read_stack

    try:
        from napari_hsi_anomaly._launch import arrange
    except ImportError:  # pragma: no cover - older launch module
        arrange = None
    from napari_hsi_anomaly.core.detectors import DEFAULT_METHOD

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE / "images")
    ap.add_argument("--method", default=DEFAULT_METHOD)
    ap.add_argument("--t-anom", type=float, default=0.7)
    ap.add_argument("--data", type=Path, default=DATA / "sentinel2-eolearn-ref.npz")
    a = ap.parse_args()

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1920, 1080)
    # the reader's layers for a stack of dates (the .npz also holds date 2 alone as "cube", which
    # File > Open prefers; the 4-D .npy beside it opens as this stack, without band names)
    for data, kwargs, kind in stack_layers(read_stack(a.data)):
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    _select_composite(viewer)
    dock_widgets(viewer)
    if arrange is not None:
        arrange(viewer)
    settle(0.5)
    warmup.wait()
    detect = viewer.window._qt_window.findChildren(DetectWidget)[0]
    stack = next(layer.name for layer in viewer.layers if "stack" in layer.metadata and not layer.rgb)
    detect.set_method(a.method)
    ref = detect.reference
    ref.set_mode("references")
    ref.set_references([f"{stack}: date {k}" for k in NORMAL])
    ref.every.setChecked(True)
    detect.t_anom.setValue(a.t_anom)
    detect.run_score()
    settle(until=lambda: detect._worker is None)
    detect._commit_debounced.flush()
    for line in detect.table.values():
        print(f"{line[0]}: flagged {line[1]:.1f} %, median score {line[2]:.2f}")
    print(detect.status.text())
    try:  # show the RGB composite of the date under the heatmap (the Cube dock's radio button)
        from napari_hsi_anomaly._widgets.cube_widget import CubeWidget

        viewer.window._qt_window.findChildren(CubeWidget)[0].show_rgb.click()
    except (ImportError, IndexError, AttributeError):
        pass
    for row, name in ((0, "05_sentinel2.png"), (2, "05b_sentinel2_clear.png")):
        detect.table.selectRow(row)
        detect._commit_debounced.flush()
        detect.mask_layer.visible = False  # the heatmap over the date's RGB reads better here
        viewer.layers.selection.active = detect.score_layer
        viewer.reset_view()
        settle(1.0)
        path = a.out / name
        viewer.screenshot(str(path), canvas_only=False)
        print("wrote", path, "|", detect.counts.text())
    viewer.close()


if __name__ == "__main__":
    main()
