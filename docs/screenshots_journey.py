"""Screenshots of a day's work in the viewer (issue 22), whole window, run under Xvfb:

    xvfb-run -a -s "-screen 0 1920x1080x24" python docs/screenshots_journey.py --size 1920x1080 \
        [--stages journey,thesis]

- ``journey``: sample scene (scored) -> Sentinel-2 stack (scored) -> jasperRidge (198 bands) -> can_tmr
  (6 bands) -> back to the sample (``journey_sample_<W>.png``: its heatmap, TP / FP / FN and t_anom as
  they were) -> back to the stack (``journey_stack_<W>.png``: date and band sliders of the stack only).
- ``thesis``: ``hsi-anomaly sample --scenes 3 --clouds 0`` and ``--scenes 3`` (cloudy) opened together,
  normal learnt from the three clear scenes, every scene scored (``thesis_table.png``: the scene table
  and a cloudy scene's heatmap; ``thesis_clear.png``: a clear scene's).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from screenshots import DATA, settle

HERE = Path(__file__).resolve().parent


class Journey:
    def __init__(self, size: tuple[int, int], out: Path) -> None:
        import napari

        from napari_hsi_anomaly._launch import _open, arrange, dock_widgets, follow_resizes

        os.environ["HSI_ANOMALY_SYNC_WORKERS"] = "1"
        self.out, self.width = out, size[0]
        self.viewer = napari.Viewer(show=True)
        _open(self.viewer, None)
        dock_widgets(self.viewer)
        qw = self.viewer.window._qt_window
        qw.resize(*size)
        follow_resizes(self.viewer)
        settle(1.0)
        arrange(self.viewer)
        settle(0.5)
        self.docks = qw._hsi_docks
        self.cube, self.detect = self.docks["Cube"].widget(), self.docks["Detect"].widget()
        self.docks["Detect"].raise_()

    def shot(self, name: str) -> None:
        settle(0.8)
        path = self.out / f"{name}.png"
        self.viewer.window.screenshot(str(path), canvas_only=False)
        print("wrote", path)

    def open(self, path: Path) -> None:
        self.cube.open_path(path)
        settle(until=lambda: self.cube._busy == 0)

    def score(self, method: str = "rx", t_anom: float | None = None) -> None:
        self.detect.set_method(method)
        self.detect.run_score()
        settle(until=lambda: self.detect._worker is None)
        if t_anom is not None:
            self.detect.t_anom.setValue(t_anom)
        self.detect._commit_debounced.flush()

    def switch(self, name: str) -> None:
        self.cube.layer_combo.setCurrentText(name)
        settle(0.5)

    def stage_journey(self) -> None:
        sample = self.cube.mgr.active.name
        self.score("rx", 0.6)
        self.open(DATA / "sentinel2" / "eo-learn_REFERENCE_SCENES.npy")
        stack = self.cube.mgr.active.name
        self.score("rx")
        self.open(DATA / "envi" / "jasperRidge2_R198.hdr")
        self.score("rx")
        self.open(DATA / "envi" / "can_tmr.hdr")
        self.switch(sample)
        self.shot(f"journey_sample_{self.width}")
        self.switch(stack)
        self.shot(f"journey_stack_{self.width}")

    def stage_thesis(self) -> None:
        from napari_hsi_anomaly.cli.main import main as cli

        folder = Path(tempfile.mkdtemp(prefix="hsi-thesis-"))
        common = ["--out", str(folder), "--rows", "192", "--cols", "192"]
        cli(["sample", *common, "--scenes", "3", "--seed", "0", "--clouds", "0", "--name", "clear"])
        cli(["sample", *common, "--scenes", "3", "--seed", "3", "--clouds", "0.2", "--name", "cloudy"])
        for path in sorted(folder.glob("*.hdr")):
            self.open(path)
        ref = self.detect.reference
        ref.set_mode("references")
        ref.set_references([t.name for t in ref._candidates if t.name.startswith("clear")])
        ref.every.setChecked(True)
        self.score("glosh-spectral", 0.7)
        rows = self.detect.table.values()
        print("scene table:", rows)
        cloudy = next(i for i, r in enumerate(rows) if r[0].startswith("cloudy"))
        self.detect.table.selectRow(cloudy)
        settle(0.5)
        from qtpy.QtWidgets import QScrollArea

        self.detect.tabs.setCurrentIndex(0)
        self.detect.findChild(QScrollArea).ensureWidgetVisible(self.detect.table)  # the table in view
        self.shot("thesis_table")
        clear = next(i for i, r in enumerate(rows) if r[0].startswith("clear"))
        self.detect.table.selectRow(clear)
        self.shot("thesis_clear")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "images")
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--stages", default="journey")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    w, h = (int(v) for v in args.size.lower().split("x"))
    run = Journey((w, h), args.out)
    for stage in args.stages.split(","):
        getattr(run, f"stage_{stage}")()
    run.viewer.close()


if __name__ == "__main__":
    main()
