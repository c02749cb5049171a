"""The first Score in a new viewer process against a warm one, as a user meets it.

    xvfb-run -a python benchmarks/bench_first_score.py [--file CUBE] [--rounds 3] [--method M]

Each round is a fresh process: the viewer opens ``--file`` (default: a generated 600^2 x 12 scene saved
as .npy) through the launcher's own code with its docks, and Score runs with the default detector
(``--method``), either at once (the warm-up that the Detect dock starts still running beside it) or
after the warm-up has finished (a user who takes a few seconds to click); then Score again in the same
process (warm). Times are from the click to the result layers shown (the dock's worker finished and
Qt's events processed). Writes ``benchmarks/results/bench_first_score.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import git_head, save_table


def child(path: str, method: str, wait_warmup: bool) -> dict:
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_hsi_anomaly._launch import _open, dock_widgets
    from napari_hsi_anomaly._widgets import warmup
    from napari_hsi_anomaly._widgets.detect_widget import DetectWidget

    t_start = time.perf_counter()
    viewer = napari.Viewer(show=True)
    _open(viewer, path)
    dock_widgets(viewer)
    app = QApplication.instance()
    qw = viewer.window._qt_window
    detect = next(d.widget() for n, d in qw._hsi_docks.items() if n == "Detect")
    detect = detect if isinstance(detect, DetectWidget) else detect.findChild(DetectWidget)
    app.processEvents()
    t_open = time.perf_counter() - t_start
    if wait_warmup:
        warmup.wait()
    detect.set_method(method)

    def one() -> float:
        t0 = time.perf_counter()
        assert detect.run_score() is not None
        while detect._worker is not None:
            app.processEvents()
            time.sleep(0.002)
        app.processEvents()
        if detect.scores is None:
            raise RuntimeError(detect.status.text())
        return time.perf_counter() - t0

    first = one()
    warmup.wait()
    second = one()
    viewer.close()
    return {"open": t_open, "first": first, "second": second, "warmup": dict(warmup.timings)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--file")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--method", default="spectral-spatial")
    ap.add_argument("--size", type=int, default=600)
    ap.add_argument("--child", choices=("now", "warm"))
    a = ap.parse_args()
    if a.child:
        print("RESULT " + json.dumps(child(a.file, a.method, a.child == "warm")))
        return
    tmp = None
    if a.file is None:
        from napari_hsi_anomaly.core.scene import make_scene

        tmp = tempfile.TemporaryDirectory()
        a.file = str(Path(tmp.name) / f"scene_{a.size}.npy")
        import numpy as np

        np.save(a.file, np.asarray(make_scene(a.size, a.size, seed=0).cube.data))
    load = os.getloadavg()
    rows = []
    for mode in ("now", "warm"):
        for _ in range(a.rounds):
            out = subprocess.run([sys.executable, __file__, "--child", mode, "--file", a.file, "--method",
                                  a.method], capture_output=True, text=True, check=True)
            res = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))[7:])
            rows.append((mode, res))
    lines = [f"# First Score in a new viewer process vs a warm one ({a.method})", "",
             f"Commit {git_head()}; file `{Path(a.file).name}`; {a.rounds} fresh processes per mode; load "
             f"average before {load[0]:.2f}, after {os.getloadavg()[0]:.2f}.", "",
             "`now`: Score clicked as soon as the docks are up (the warm-up runs beside it); `warm`: after "
             "the warm-up finished. Seconds from the click to the layers shown.", "",
             "| mode | open viewer + file s | first Score s | second Score s | first / second |",
             "|---|---|---|---|---|"]
    for mode, r in rows:
        lines.append(f"| {mode} | {r['open']:.2f} | {r['first']:.2f} | {r['second']:.2f} | "
                     f"{r['first'] / r['second']:.2f} |")
    for mode in ("now", "warm"):
        ratios = [r["first"] / r["second"] for m, r in rows if m == mode]
        lines.append(f"| **{mode}: median ratio** | | | | **{statistics.median(ratios):.2f}** |")
    steps = rows[-1][1]["warmup"]
    lines += ["", "Warm-up steps (last process, s): " + ", ".join(f"{k} {v:.2f}" for k, v in steps.items())]
    save_table("bench_first_score", "\n".join(lines) + "\n")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
