"""Screenshots of the analyst's loop (issue 23) on the sample scene, the whole window at 1920x1080:

analyst_mark_normal_before / _after (a flagged speckle region that is no planted target, chosen in the
Inspect table, then "Mark as normal"), analyst_why (why a planted target is flagged: per-part bands),
analyst_far (t_anom set by a false-alarm rate of 1e-3 in the Detect dock), analyst_why_cae (the same
target scored by the CAE + GLOSH detector: the encoder maps' band groups and the residual per band).

    xvfb-run -a -s "-screen 0 1920x1080x24" python docs/screenshots_analyst.py [--out docs/images]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from qtpy.QtWidgets import QScrollArea
from screenshots import HERE, Shots, settle


def show_in_dock(dock_widget, part) -> None:
    """Scroll the dock's scroll area so that ``part`` is in view."""
    for area in dock_widget.findChildren(QScrollArea):
        if area.widget() is not None and area.widget().isAncestorOf(part):
            area.ensureWidgetVisible(part, 0, 0)


class AnalystShots(Shots):
    def stage_score(self) -> None:
        self.stage_detect_quiet()

    def stage_detect_quiet(self) -> None:
        from napari_hsi_anomaly._widgets.state import get_state

        detect = self.w["Detect"]
        get_state(self.viewer).set_model(None)
        os.environ["HSI_ANOMALY_SYNC_WORKERS"] = "1"
        detect.run_score()
        settle(until=lambda: detect._worker is None)
        detect.t_anom.setValue(0.7)
        detect._commit_debounced.flush()
        settle(until=lambda: bool(detect.metrics_label.text()), timeout=60)

    def gt(self) -> np.ndarray:
        return np.asarray(self.viewer.layers["ground truth"].data) > 0

    def stage_mark_normal(self) -> None:
        inspect, detect = self.w["Inspect"], self.w["Detect"]
        self.docks["Inspect"].raise_()
        inspect._refresh_debounced.flush()
        settle(until=lambda: inspect.stats is not None and inspect.regions)
        gt = self.gt()
        speckle = [i for i, r in enumerate(inspect.regions)
                   if not gt[r.bbox[0]:r.bbox[1], r.bbox[2]:r.bbox[3]].any()]
        pick = max(speckle, key=lambda i: inspect.regions[i].area)
        inspect.select_region(pick)
        panel = inspect.analyst
        settle(until=lambda: panel.why.explanation is not None)
        show_in_dock(inspect, panel)
        self.shot("analyst_mark_normal_before")
        panel.normal_btn.click()
        settle(until=lambda: panel._worker is None)
        detect._commit_debounced.flush()
        inspect._refresh_debounced.flush()
        settle(until=lambda: "416 of" not in detect.results.analyst.far_label.text(), timeout=60)
        settle(1.0)
        show_in_dock(inspect, panel)
        self.shot("analyst_mark_normal_after")

    def stage_mark_cloud(self) -> None:
        """The snow and cloud bank with the most false alarms drawn as a box (a Shapes layer, no planted
        target inside) and marked as normal: its speckle goes, the targets stay."""
        from scipy import ndimage

        inspect, detect = self.w["Inspect"], self.w["Detect"]
        self.docks["Inspect"].raise_()
        cover, gt = np.asarray(self.viewer.layers["land cover"].data), self.gt()
        lab, n = ndimage.label((cover == 5) | (cover == 6))  # CLASS_NAMES: 5 snow, 6 cloud
        false = detect.mask & ~gt
        best, box = -1, None
        for k, sl in enumerate(ndimage.find_objects(lab), 1):
            if gt[sl].any():
                continue
            hits = int((false[sl] & (lab[sl] == k)).sum())
            if hits > best:
                best, box = hits, sl
        r0, r1, c0, c1 = box[0].start - 0.5, box[0].stop - 0.5, box[1].start - 0.5, box[1].stop - 0.5
        inside = np.zeros_like(gt)
        inside[box] = True
        counts = lambda: (int((detect.mask & inside).sum()), int((detect.mask & gt).sum()))  # noqa: E731
        before = counts()
        shapes = self.viewer.add_shapes([np.array([[r0, c0], [r0, c1], [r1, c1], [r1, c0]])],
                                        shape_type="polygon", name="snow and cloud (drawn)",
                                        edge_color="cyan", face_color="transparent", edge_width=1.5)
        self.viewer.layers.selection.active = shapes
        self.viewer.camera.center = ((r0 + r1) / 2, (c0 + c1) / 2)
        self.viewer.camera.zoom = 700 / (3 * max(r1 - r0, c1 - c0, 20))  # the box a third of the canvas
        panel = inspect.analyst
        show_in_dock(inspect, panel)
        self.shot("analyst_mark_cloud_before")
        panel.normal_btn.click()
        settle(until=lambda: panel._worker is None)
        detect._commit_debounced.flush()
        inspect._refresh_debounced.flush()
        settle(1.0)
        print(f"flagged in the box / on the targets: {before} before, {counts()} after")
        show_in_dock(inspect, panel)
        self.shot("analyst_mark_cloud_after")

    def stage_why(self) -> None:
        inspect = self.w["Inspect"]
        self.docks["Inspect"].raise_()
        inspect._refresh_debounced.flush()
        gt = self.gt()
        planted = [i for i, r in enumerate(inspect.regions) if gt[int(r.centroid[0]), int(r.centroid[1])]]
        inspect.select_region(planted[0])
        panel = inspect.analyst
        settle(until=lambda: panel.why.explanation is not None and "region" in panel.why.title.text())
        show_in_dock(inspect, panel.why)
        settle(2.0)  # the bars' canvas draws on its own event-loop turn
        self.shot("analyst_why")

    def stage_far(self) -> None:
        detect = self.w["Detect"]
        self.docks["Detect"].raise_()
        panel = detect.results.analyst
        settle(until=lambda: panel.normal is not None)
        panel.mode.setCurrentText("false-alarm rate")
        panel.value.setText("1e-3")
        panel.set_from_value()
        detect._commit_debounced.flush()
        settle(1.0)
        show_in_dock(detect, panel)
        self.shot("analyst_far")


    def stage_why_cae(self) -> None:
        from napari_hsi_anomaly._widgets.state import get_state

        detect, inspect = self.w["Detect"], self.w["Inspect"]
        self.docks["Detect"].raise_()
        get_state(self.viewer).set_model(None)  # Score trains the fast preset on the scene
        os.environ["HSI_ANOMALY_SYNC_WORKERS"] = "1"
        detect.set_method("glosh")
        detect.run_score()
        settle(until=lambda: detect._worker is None, timeout=900)
        detect.t_anom.setValue(0.7)
        detect._commit_debounced.flush()
        self.docks["Inspect"].raise_()
        inspect._refresh_debounced.flush()
        settle(until=lambda: inspect.stats is not None and inspect.regions)
        gt = self.gt()
        planted = [i for i, r in enumerate(inspect.regions) if gt[int(r.centroid[0]), int(r.centroid[1])]]
        inspect.select_region(planted[0])
        panel = inspect.analyst
        settle(until=lambda: panel.why.explanation is not None and "region" in panel.why.title.text()
               and any(p.part.endswith(": encoder") for p in panel.why.explanation.parts), timeout=300)
        from qtpy.QtCore import Qt

        qw = self.viewer.window._qt_window  # room for the whole section: the Inspect dock taller
        qw.resizeDocks([self.docks["Inspect"]], [620], Qt.Orientation.Vertical)
        settle(0.5)
        show_in_dock(inspect, panel.why)
        settle(2.0)
        self.shot("analyst_why_cae")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "images")
    parser.add_argument("--stages", default="score,mark_cloud,why,far")
    args = parser.parse_args()
    shots = AnalystShots((1920, 1080), args.out)
    shots.run([s for s in args.stages.split(",") if s])
    shots.viewer.close()


if __name__ == "__main__":
    main()
