"""The viewer never stalls: no GUI-thread pause over 250 ms during Score, slider moves, layer updates
(half the 0.5 s the viewer issue allows: CPU time inflates on a machine whose cores are shared).

Measured robustly on a busy machine: a 5 ms ``QTimer`` in the GUI thread records, between two of its
ticks, the CPU time the GUI thread itself spent (``time.thread_time``), not the wall-clock gap. Work
done in the GUI thread (our callbacks, napari's layer updates, a numba compile that was not warmed)
counts; time the thread spent pre-empted by other processes or waiting for the GIL while a worker
computes does not. napari's own work is measured apart and reported, not counted: inserting a layer
(0.1-0.5 s per layer on this CPU, once per scene) and drawing the canvas (vispy on software OpenGL;
the first draw of a new layer compiles its shaders). Wall gaps are recorded too and reported, never
asserted. A negative control shows that the monitor catches a 350 ms busy callback.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from test_widget_detect import WORKER_TIMEOUT_MS, make_cube, setup_viewer

from napari_hsi_anomaly.core.detectors import DEFAULT_METHOD

pytestmark = pytest.mark.gui

LIMIT_S = 0.250


class StallMonitor:
    """GUI-thread CPU time between consecutive event-loop turns (ticks of a fast timer)."""

    def __init__(self, interval_ms: int = 5) -> None:
        from qtpy.QtCore import QTimer

        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.phase = ""
        self.gaps: list[tuple[float, float, str]] = []  # (cpu s, wall s, phase)
        self.napari_adds: list[tuple[float, str]] = []  # CPU in napari's layer insertion and drawing

    def start(self) -> None:
        from napari._vispy.canvas import VispyCanvas

        from napari_hsi_anomaly._widgets.detect_layers import ResultLayers

        self._layers = ResultLayers
        self._napari = ResultLayers.napari_add_cpu
        self._draw_cpu = 0.0
        self._orig_draw = VispyCanvas.on_draw

        def on_draw(canvas, *args, **kwargs):  # napari's canvas rendering, measured apart
            c0 = time.thread_time()
            try:
                return self._orig_draw(canvas, *args, **kwargs)
            finally:
                self._draw_cpu += time.thread_time() - c0

        VispyCanvas.on_draw = on_draw
        self._cpu, self._wall = time.thread_time(), time.perf_counter()
        self.timer.start()

    def stop(self) -> None:
        from napari._vispy.canvas import VispyCanvas

        self._tick()
        self.timer.stop()
        VispyCanvas.on_draw = self._orig_draw

    def _tick(self) -> None:
        cpu, wall = time.thread_time(), time.perf_counter()
        napari = self._layers.napari_add_cpu - self._napari  # inside napari's add_image/add_labels
        napari += self._draw_cpu  # napari's canvas draws
        self._napari, self._draw_cpu = self._layers.napari_add_cpu, 0.0
        self.gaps.append((cpu - self._cpu - napari, wall - self._wall, self.phase))
        if napari > 0:
            self.napari_adds.append((napari, self.phase))
        self._cpu, self._wall = cpu, wall

    def worst(self) -> tuple[float, float, str]:
        return max(self.gaps, default=(0.0, 0.0, ""))

    def report(self) -> str:
        top = sorted(self.gaps, reverse=True)[:5]
        cpu, wall, phase = self.worst()
        walls = max((g[1] for g in self.gaps), default=0.0)
        return (f"{len(self.gaps)} ticks; worst GUI-thread CPU between ticks {1e3 * cpu:.0f} ms "
                f"({phase}); worst wall gap {1e3 * walls:.0f} ms; top CPU gaps "
                + ", ".join(f"{1e3 * c:.0f} ms ({p})" for c, _, p in top)
                + "; napari's own layer insertion and canvas draws over 20 ms (not counted): "
                + (", ".join(f"{1e3 * c:.0f} ms ({p})" for c, p in self.napari_adds if c > 0.02)
                   or "none"))


@pytest.fixture
def monitor(qtbot):
    m = StallMonitor()
    yield m
    if m.timer.isActive():
        m.stop()


def test_monitor_catches_a_busy_callback(qtbot, monitor):
    from qtpy.QtCore import QTimer

    def busy() -> None:
        end = time.thread_time() + 0.35
        while time.thread_time() < end:
            pass

    monitor.start()
    monitor.phase = "busy"
    QTimer.singleShot(20, busy)
    qtbot.waitUntil(lambda: any(p == "busy" and c > 0.34 for c, _, p in monitor.gaps), timeout=10_000)
    monitor.stop()
    assert monitor.worst()[0] > LIMIT_S


def test_no_gui_stall_during_score_sliders_and_scene_change(make_napari_viewer, qtbot, monitor):
    from napari_hsi_anomaly._widgets import warmup
    from napari_hsi_anomaly._widgets.detect_widget import DetectWidget
    from napari_hsi_anomaly._widgets.state import get_state

    viewer = make_napari_viewer(show=True)
    cube, gt = make_cube(size=96, bands=8)
    setup_viewer(viewer, cube)
    viewer.add_labels(gt, name="ground truth")
    widget = DetectWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Detect", area="right")
    assert warmup.wait(timeout=300), "the JIT warm-up did not finish"
    qtbot.wait(50)

    monitor.start()
    # Score with the default detector (GLOSH spectra + area filters): the first mask layer appears
    monitor.phase = "score"
    widget.set_method(DEFAULT_METHOD)
    worker = widget.run_score()
    assert worker is not None
    qtbot.waitUntil(lambda: widget._worker is None, timeout=WORKER_TIMEOUT_MS)
    qtbot.waitUntil(lambda: np.isfinite(widget._auc), timeout=WORKER_TIMEOUT_MS)
    assert widget.detection is not None
    # t_anom moves, each followed by the event loop (repaint) and the rested commit
    monitor.phase = "t_anom"
    for t in (0.3, 0.5, 0.6, 0.8, 0.9):
        widget.t_anom.setValue(t)
        qtbot.wait(10)
    widget._commit_debounced.flush()
    qtbot.wait(20)
    # p_min moves: re-scored in a worker, the layers updated when the result comes back
    monitor.phase = "p_min"
    det = widget.detection
    for p in (40, 120):
        widget.p_min.setValue(p)
        widget._rescore_debounced.flush()
        qtbot.waitUntil(lambda p=p: det.params["p_min"] == p and widget._rescoring is None,
                        timeout=WORKER_TIMEOUT_MS)
        qtbot.wait(300)  # the rested histogram/ROC/regions update
    # another scene: the old results retired, the panel reset
    monitor.phase = "test adds a layer (napari, not counted)"
    other, _ = make_cube(size=96, bands=8)
    viewer.add_image(other.data, name="cube 2")
    qtbot.wait(50)
    monitor.phase = "new scene"
    get_state(viewer).set_cube(other, "cube 2", None)
    qtbot.wait(50)
    monitor.stop()
    print(monitor.report())
    ours = [g for g in monitor.gaps if "not counted" not in g[2]]
    assert max(g[0] for g in ours) < LIMIT_S, monitor.report()
