"""``launch``: a napari viewer with a cube (or the sample scene) and the four docks."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

PLUGIN = "napari-hsi-anomaly"
DOCKS = ("Cube", "Model", "Detect", "Inspect")


def _add_layers(viewer: Any, layer_data: list) -> None:
    """Add napari layer-data tuples ``(data[, kwargs[, kind]])``."""
    for item in layer_data:
        kwargs = item[1] if len(item) > 1 else {}
        kind = item[2] if len(item) > 2 else "image"
        getattr(viewer, f"add_{kind}")(item[0], **(kwargs or {}))


def _open(viewer: Any, path: str | None, layout: str | None = None, key: str = "cube") -> None:
    """Add the file's layers (or the sample scene); errors become notifications."""
    from napari.utils.notifications import show_error, show_warning

    from napari_hsi_anomaly.core.errors import HsiAnomalyError

    if path is None:
        try:
            from napari_hsi_anomaly._sample_data import sample_scene
        except ImportError:
            show_warning("The sample scene is not available in this install; open a cube file.")
            return
        try:
            _add_layers(viewer, sample_scene())
        except HsiAnomalyError as exc:
            show_error(str(exc))
        return
    from napari_hsi_anomaly._reader import cube_layers, read_layers
    from napari_hsi_anomaly.core.io import read_cube

    try:
        if layout is None and key == "cube":  # as napari's reader: ground truth, stacks, SAFE, maps
            _add_layers(viewer, read_layers(str(Path(path).expanduser())))
        else:
            _add_layers(viewer, cube_layers(read_cube(Path(path).expanduser(), layout=layout, key=key)))
    except HsiAnomalyError as exc:
        show_error(str(exc))


def dock_widgets(viewer: Any) -> list[str]:
    """Dock Cube (left, under the layer list), then Model and Detect tabbed on the right with Detect in
    front, and Inspect below them; returns the names that were docked, in that order.

    Every dock scrolls inside itself, so the window's minimum height stays under 1000 px;
    ``arrange`` sizes the columns for the window (call it once the window has its size)."""
    from qtpy.QtCore import Qt

    docked, docks = [], {}
    for name in DOCKS:
        try:
            dock, _ = viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=name == "Detect")
        except Exception as exc:  # a missing or broken dock must not stop the viewer
            warnings.warn(f"Could not add the {name} dock: {exc}", stacklevel=2)
        else:
            docked.append(name)
            docks[name] = dock
    if "Cube" in docks:
        viewer.window._qt_window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, docks["Cube"])
    if "Detect" in docks:
        docks["Detect"].raise_()
    viewer.window._qt_window._hsi_docks = docks
    return docked


def arrange(viewer: Any) -> None:
    """Column widths and the Detect/Inspect split for the window's current size: the canvas keeps at
    least half the width at 1920 px, the right column ~70 % Detect (with Model) and ~30 % Inspect."""
    from qtpy.QtCore import Qt

    qw = viewer.window._qt_window
    docks = getattr(qw, "_hsi_docks", {})
    width, height = qw.width(), qw.height()
    left, right = (300, 450) if width >= 1600 else (260, 400)
    pairs = [(docks.get("Cube"), left), (docks.get("Detect"), right)]
    pairs = [(d, w) for d, w in pairs if d is not None]
    if pairs:
        qw.resizeDocks([d for d, _ in pairs], [w for _, w in pairs], Qt.Orientation.Horizontal)
    qt_viewer = viewer.window._qt_viewer
    controls, layer_list = qt_viewer.dockLayerControls, qt_viewer.dockLayerList
    if "Cube" in docks:  # layer controls, a short layer list, then the Cube dock
        cube_h = min(420, max(300, height - 640))
        qw.resizeDocks([controls, layer_list, docks["Cube"]], [360, height - 360 - cube_h, cube_h],
                       Qt.Orientation.Vertical)
    if "Detect" in docks and "Inspect" in docks:  # Score ... metrics above the fold at 1024 px
        top = int(height * 0.7)
        qw.resizeDocks([docks["Detect"], docks["Inspect"]], [top, height - top], Qt.Orientation.Vertical)


def refit(viewer: Any) -> None:
    """Fit the view to the scene on screen again (the Cube dock's fit: its composite or band stack)."""
    from napari_hsi_anomaly._widgets.cube_widget import CubeWidget

    docks = getattr(viewer.window._qt_window, "_hsi_docks", {})
    cube = docks.get("Cube")
    widget = cube.widget() if cube is not None else None
    widget = widget if isinstance(widget, CubeWidget) else (widget.findChild(CubeWidget) if widget else None)
    if widget is not None:
        widget.refit()
    else:
        viewer.reset_view()


def follow_resizes(viewer: Any) -> Any:
    """Re-arrange the docks and re-fit the view whenever the window is resized (debounced)."""
    from qtpy.QtCore import QEvent, QObject, QTimer

    qw = viewer.window._qt_window
    timer = QTimer(qw)
    timer.setSingleShot(True)
    timer.setInterval(150)
    timer.timeout.connect(lambda: (arrange(viewer), refit(viewer)))

    class _Resized(QObject):
        def eventFilter(self, obj: Any, event: Any) -> bool:  # noqa: N802 - Qt API
            if event.type() == QEvent.Type.Resize:
                timer.start()
            return False

    watcher = _Resized(qw)
    qw.installEventFilter(watcher)
    qw._hsi_resize_watcher = watcher
    return watcher


def fill_screen(viewer: Any) -> None:
    """The window takes the screen's available area (a maximised window) on first launch."""
    qw = viewer.window._qt_window
    screen = qw.screen() if hasattr(qw, "screen") else None
    if screen is not None:
        qw.setGeometry(screen.availableGeometry())
    qw.showMaximized()


def _select_composite(viewer: Any) -> None:
    """Make the RGB composite the active layer (not the last-added, hidden land-cover labels)."""
    rgb = next((layer for layer in viewer.layers if getattr(layer, "rgb", False)), None)
    if rgb is not None:
        viewer.layers.selection.active = rgb


def launch(
    path: str | None = None, *, show: bool = True, layout: str | None = None, key: str = "cube"
) -> Any:
    """A viewer with ``path`` opened (None: the sample scene) and the plugin's docks.

    ``layout`` and ``key`` are passed to ``read_cube``; a read error is shown as a notification.
    With ``show`` the viewer is shown and ``napari.run()`` blocks until it is closed.
    """
    import napari

    viewer = napari.Viewer(show=show)
    _open(viewer, path, layout, key)
    _select_composite(viewer)
    dock_widgets(viewer)
    if show:
        from qtpy.QtCore import QTimer

        fill_screen(viewer)
        follow_resizes(viewer)
        QTimer.singleShot(0, lambda: (arrange(viewer), refit(viewer)))
        napari.run()
    return viewer
