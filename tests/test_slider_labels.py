"""napari's band and date sliders stay 1-based ("6 / 13") after every scene switch and every order of
opens (issue 22): sample scene -> Sentinel-2 stack (4-D) -> 6-band cube (3-D) -> back to the stack.

napari rebuilds its slider widgets when the number of axes changes and rewrites their text on range
and step changes; the labels are read from napari's own Qt dims widgets after each step: every label
drawn under the canvas (a removed row that Qt has not deleted yet included), not only the live rows.
The event loop is pumped with ``processEvents`` only, as the screenshot scripts do: removed rows then
stay alive (``deleteLater`` waits for a running event loop) and must not show.
"""

from __future__ import annotations

import time

import pytest

from napari_hsi_anomaly._widgets import workers

pytestmark = pytest.mark.gui
WAIT_MS = 60_000


@pytest.fixture
def session(make_napari_viewer, qtbot, monkeypatch, shared_data):
    from napari_hsi_anomaly._launch import _open, dock_widgets
    from napari_hsi_anomaly._widgets.cube_widget import CubeWidget

    monkeypatch.setenv(workers.SYNC_ENV, "1")  # one thread: every open is done when its call returns
    viewer = make_napari_viewer(show=True)
    _open(viewer, None)
    dock_widgets(viewer)
    dock = viewer.window._qt_window._hsi_docks["Cube"].widget()
    cube_w = dock if isinstance(dock, CubeWidget) else dock.findChild(CubeWidget)
    return viewer, cube_w, shared_data


def labels(viewer) -> dict[str, tuple[str, str]]:
    """(current, total) of every slider row drawn under the canvas, by its axis name."""
    from qtpy.QtWidgets import QLabel, QLineEdit, QWidget

    shown: dict[str, tuple[str, str]] = {}
    for row in viewer.window._qt_viewer.dims.findChildren(QWidget):
        cur, tot = row.findChild(QLineEdit, "slice_label"), row.findChild(QLabel, "slice_label")
        name = row.findChild(QLineEdit, "axis_label")
        if cur is None or tot is None or name is None or cur.parent() is not row or not row.isVisible():
            continue
        key = name.text()
        shown[key if key not in shown else f"{key} (again)"] = (cur.text(), tot.text())
    return shown


def expected(viewer) -> dict[str, tuple[str, str]]:
    """1-based current step and number of steps of every axis with a slider."""
    dims = viewer.dims
    return {
        str(dims.axis_labels[i]): (str(int(dims.current_step[i]) + 1), str(int(dims.nsteps[i])))
        for i in range(dims.ndim)
        if i not in dims.displayed and dims.nsteps[i] > 1
    }


def pump(until=None, seconds: float = 5.0) -> None:
    """Run the Qt event loop by ``processEvents`` (no nested loop) until ``until()`` or ``seconds``."""
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + seconds
    while time.monotonic() < end and not (until is not None and until()):
        QApplication.processEvents()
        time.sleep(0.01)


def settled(viewer, want: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """The labels once they read ``want`` (they are rewritten after napari's own handlers), after a
    further short pump: nothing late (a timer, a rebuild) puts napari's 0-based text back."""
    pump(lambda: labels(viewer) == want)
    pump(seconds=0.3)
    return labels(viewer)


def test_slider_labels_count_from_one_after_every_switch(session, qtbot):
    from napari_hsi_anomaly._widgets.state import get_state

    viewer, cube_w, data = session
    mgr = get_state(viewer).scenes

    # 1. the sample scene (12 bands, 3-D): one band slider
    want = expected(viewer)
    assert list(want) == ["band"] and want["band"][1] == "12"
    assert settled(viewer, want) == want

    # 2. the Sentinel-2 stack (5 dates, 13 bands, 4-D): date and band sliders, both 1-based
    cube_w.open_path(data / "sentinel2" / "eo-learn_REFERENCE_SCENES.npy")
    stack = mgr.active
    assert stack.is_stack
    want = expected(viewer)
    assert {k: v[1] for k, v in want.items()} == {"date": "5", "band": "13"}
    assert settled(viewer, want) == want
    band = list(want).index("band")
    viewer.dims.set_current_step(band, 5)  # band 6 of 13
    want = expected(viewer)
    assert want["band"] == ("6", "13")
    assert settled(viewer, want) == want

    # 3. a 6-band cube after the stack (3-D after 4-D): one band slider "k / 6"
    cube_w.open_path(data / "envi" / "can_tmr.hdr")
    want = expected(viewer)
    assert {k: v[1] for k, v in want.items()} == {"band": "6"}
    assert settled(viewer, want) == want

    # 4. back to the stack (4-D after 3-D): both sliders 1-based again
    cube_w.layer_combo.setCurrentText(stack.name)  # as a user switches, in the Cube dock
    assert mgr.active is stack
    want = expected(viewer)
    assert {k: v[1] for k, v in want.items()} == {"date": "5", "band": "13"}
    assert settled(viewer, want) == want
