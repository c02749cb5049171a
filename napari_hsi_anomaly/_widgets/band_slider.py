"""napari's band slider speaks the Cube dock's language: bands count from 1, and the band shown
(number, name, wavelength) is written on the canvas.

napari's slider labels show the 0-based step ("5 / 11" for band 6 of 12); ``BandSliderLabels``
rewrites them to "6 / 12" after napari updates them, and reads a typed number as a 1-based band.
napari rebuilds its slider rows when the number of axes changes (a 4-D stack after a 3-D cube) and
drops the old rows with ``deleteLater``: until the event loop deletes them (never, where a script only
calls ``processEvents``) they stay visible under the new rows, their 0-based digits drawn under ours.
Every update therefore relabels the live rows and hides rows napari no longer lists.
The slider widgets are napari internals: every access is guarded, and the canvas text (public API,
``viewer.text_overlay``) keeps working if they change.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

from qtpy.QtCore import QTimer


def layer_band_axis(layer: Any) -> int:
    """The band axis of a layer's data: the reader's ``band_axis`` (a stack of dates is bands, dates,
    rows, cols), else third from the right (a cube is bands, rows, cols)."""
    axis = getattr(layer, "metadata", {}).get("band_axis")
    return int(axis) if axis is not None else int(getattr(layer, "ndim", 3)) - 3


def band_axis(viewer: Any, layer: Any = None) -> int:
    """The world axis of the bands (napari aligns layers' axes from the right)."""
    if layer is None:
        return int(viewer.dims.ndim) - 3
    return int(viewer.dims.ndim) - int(layer.ndim) + layer_band_axis(layer)


def current_band(viewer: Any, layer: Any, bands: int) -> int | None:
    """0-based band that ``layer`` shows at the slider's position (None when no band axis)."""
    if layer is None or viewer.dims.ndim < 3 or getattr(layer, "ndim", 0) < 3:
        return None
    try:
        i = int(round(float(layer.world_to_data(viewer.dims.point)[layer_band_axis(layer)])))
    except (IndexError, ValueError):
        return None
    return min(max(i, 0), bands - 1)


def band_under_slider(viewer: Any, state: Any) -> int | None:
    """0-based band of the current cube at the band slider (None without a cube layer)."""
    cube, name = state.cube, state.cube_layer
    if cube is None or name not in viewer.layers:
        return None
    return current_band(viewer, viewer.layers[name], cube.bands)


def _date(cube: Any) -> str:
    meta = getattr(cube, "metadata", {}) or {}
    return f" · date {meta['date'] + 1}/{meta['n_dates']}" if "date" in meta and "n_dates" in meta else ""


def band_line(viewer: Any, state: Any, short: bool = False) -> str:
    """``"band 8/13 · B08 842 nm"`` (1-based, like the slider); the cube's name first unless ``short``."""
    i, cube = band_under_slider(viewer, state), state.cube
    if i is None:
        return ""
    text = f"band {i + 1}/{cube.bands} · {cube.band_label(i)}"
    return text if short else f"{state.scene_name}{_date(cube)} · {text}"


def canvas_line(viewer: Any, state: Any, mode: str, rgb_layer: Any) -> str:
    """What the canvas shows: the band under the slider, or the composite's three bands."""
    cube = state.cube
    if cube is None:
        return ""
    if mode == "band":
        return band_line(viewer, state)
    bands = (rgb_layer.metadata.get("rgb_bands") if rgb_layer is not None else None) or ()
    bands = [b for b in bands if 0 <= int(b) < cube.bands]  # never another scene's band numbers
    parts = " / ".join(f"{c} {cube.band_label(int(b))}" for c, b in zip("RGB", bands))
    return f"{state.scene_name}{_date(cube)}" + (f" · {parts}" if parts else "")


def text_overlay(viewer: Any) -> Any:
    """The canvas text overlay (``viewer.canvas.overlays.text`` since napari 0.9)."""
    canvas = getattr(viewer, "canvas", None)
    overlays = getattr(canvas, "overlays", None)
    return overlays.text if overlays is not None and hasattr(overlays, "text") else viewer.text_overlay


def _qt_dims(viewer: Any) -> Any:
    """napari's ``QtDims`` (the slider rows), or None (no window, headless, internals changed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            dims = viewer.window._qt_viewer.dims
            return dims if isinstance(dims.slider_widgets, list) else None
        except Exception:
            return None


def _slider_widget(viewer: Any, axis: int) -> Any:
    dims = _qt_dims(viewer)
    try:
        return dims.slider_widgets[axis] if dims is not None else None
    except IndexError:
        return None


def hide_stale_rows(qt_dims: Any) -> int:
    """Hide the slider rows napari removed but has not deleted yet (``deleteLater`` waits for the event
    loop); returns how many were hidden."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QLineEdit, QWidget

    live = list(qt_dims.slider_widgets)
    hidden = 0
    for child in qt_dims.findChildren(QWidget, "", Qt.FindChildOption.FindDirectChildrenOnly):
        if any(child is w for w in live) or child.findChild(QLineEdit, "slice_label") is None:
            continue
        if child.isVisible():
            child.hide()
            hidden += 1
    return hidden


def fit_slice_labels(qt_dims: Any) -> None:
    """Widen napari's step labels where a 1-based total needs one more digit ("10" where napari sized
    them for its "9")."""
    from qtpy.QtWidgets import QWidget

    need = 0
    for w in qt_dims.slider_widgets:
        if w.isVisible():
            for label in (w.curslice_label, w.totslice_label):
                need = max(need, label.fontMetrics().horizontalAdvance(label.text()) + 6)
    labels = [lab for w in qt_dims.slider_widgets for lab in (w.curslice_label, w.totslice_label)]
    if need and any(lab.width() < need for lab in labels):
        for lab in qt_dims.findChildren(QWidget, "slice_label"):
            lab.setFixedWidth(max(need, lab.width()))


CHAR_EM = 0.7  # average character width of the overlay font, in em (measured: ~0.68)


def fit_text(text: str, width_px: float, font_size: float) -> str:
    """``text`` broken into lines at its " · " separators so that each line fits ``width_px`` (the
    canvas width; ``font_size`` in points at 96 dpi); unchanged when it fits or the width is unknown."""
    if not text or not width_px or width_px <= 1:
        return text
    limit = max(12, int((width_px - 20) / (float(font_size) * 96 / 72 * CHAR_EM)))
    if len(text) <= limit:
        return text
    parts = text.split(" · ")
    lines = [parts[0]]
    for part in parts[1:]:
        if len(lines[-1]) + 3 + len(part) <= limit:
            lines[-1] += " · " + part
        else:
            lines.append(part)
    return "\n".join(lines)


def canvas_width(viewer: Any) -> float | None:
    """The canvas width in pixels (``viewer.canvas.size`` is (height, width) since napari 0.9)."""
    size = getattr(getattr(viewer, "canvas", None), "size", None)
    return float(size[-1]) if size is not None and len(size) >= 2 else None


class BandSliderLabels:
    """Keep napari's band-slider numbers 1-based (and the canvas text) for the current cube."""

    def __init__(self, viewer: Any, text: Any, layer: Any = None) -> None:
        """``text()`` returns the canvas line for the current position ("" hides it); ``layer()`` the
        band-stack layer (its band axis is the slider to relabel)."""
        self.viewer = viewer
        self._text = text
        self._layer = layer or (lambda: None)
        self._patched: set[int] = set()
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self.update)
        viewer.dims.events.current_step.connect(self.schedule)
        viewer.dims.events.range.connect(self.schedule)
        viewer.dims.events.ndim.connect(self.schedule)
        size_event = getattr(getattr(getattr(viewer, "canvas", None), "events", None), "size", None)
        if size_event is not None:  # a narrower canvas wraps the line (never clipped)
            size_event.connect(self.schedule)
        overlay = text_overlay(viewer)
        overlay.position = "top_left"
        overlay.font_size = 11
        overlay.color = "white"

    def schedule(self, *_: Any) -> None:
        """Update after napari's own handlers (they rewrite the labels on the same events)."""
        self._timer.start()

    def update(self) -> None:
        """The canvas line and the slider labels; an error is one notification, never a crash."""
        from napari_hsi_anomaly._widgets.workers import guarded

        guarded(self._update)

    def _update(self) -> None:
        qt_dims = _qt_dims(self.viewer)
        if qt_dims is not None:
            with contextlib.suppress(Exception):  # napari internals changed: the labels still get rewritten
                hide_stale_rows(qt_dims)
        text = self._text()
        overlay = text_overlay(self.viewer)
        overlay.text = fit_text(text, canvas_width(self.viewer) or 0, overlay.font_size)
        overlay.visible = bool(text)
        layer = self._layer()
        layer = layer if layer in self.viewer.layers else None
        bands = int(layer.data.shape[layer_band_axis(layer)]) if layer is not None else None
        self._relabel(band_axis(self.viewer, layer), bands, "Band shown (counted from 1, like the Cube dock)")
        meta = getattr(layer, "metadata", {}) or {}
        if meta.get("date_axis") is not None and meta.get("n_dates"):
            axis = int(self.viewer.dims.ndim) - int(layer.ndim) + int(meta["date_axis"])
            self._relabel(axis, int(meta["n_dates"]), "Date shown (counted from 1)")
        if qt_dims is not None:
            with contextlib.suppress(Exception):
                fit_slice_labels(qt_dims)

    def _relabel(self, axis: int, total: int | None, tip: str) -> None:
        """Slider ``axis`` shows "k / n" counted from 1 (``total``: n, else the slider's length)."""
        if axis < 0:
            return
        w = _slider_widget(self.viewer, axis)
        if w is None:
            return
        try:
            step = int(self.viewer.dims.current_step[axis])
            nsteps = total or int(self.viewer.dims.nsteps[axis])
            w.curslice_label.setText(str(step + 1))
            w.totslice_label.setText(str(nsteps))
            w.curslice_label.setToolTip(tip)
            w.update()  # repaint the whole slider row: no stale digits under the new ones
            if id(w) not in self._patched:
                w.curslice_label.editingFinished.disconnect()
                w.curslice_label.editingFinished.connect(lambda w=w, a=axis: self._typed(w, a))
                self._patched.add(id(w))
        except Exception:  # napari internals changed: the canvas text still says which band
            return

    def _typed(self, w: Any, axis: int) -> None:
        """A typed band number (1-based) moves the slider to that band."""
        try:
            value = int(w.curslice_label.text())
        except ValueError:
            self.update()
            return
        nsteps = int(self.viewer.dims.nsteps[axis])
        w.curslice_label.clearFocus()
        self.viewer.dims.set_current_step(axis, min(max(value, 1), nsteps) - 1)
        self.update()
