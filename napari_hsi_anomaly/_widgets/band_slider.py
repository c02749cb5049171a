"""napari's band slider speaks the Cube dock's language: bands count from 1, and the band shown
(number, name, wavelength) is written on the canvas.

napari's slider labels show the 0-based step ("5 / 11" for band 6 of 12); ``BandSliderLabels``
rewrites them to "6 / 12" after napari updates them, and reads a typed number as a 1-based band.
The slider widgets are napari internals: every access is guarded, and the canvas text (public API,
``viewer.text_overlay``) keeps working if they change.
"""

from __future__ import annotations

import warnings
from typing import Any

from qtpy.QtCore import QTimer


def band_axis(viewer: Any) -> int:
    """The world axis of the bands: the third from the right (a cube is bands, rows, cols)."""
    return int(viewer.dims.ndim) - 3


def current_band(viewer: Any, layer: Any, bands: int) -> int | None:
    """0-based band that ``layer`` shows at the slider's position (None when no band axis)."""
    if layer is None or viewer.dims.ndim < 3 or getattr(layer, "ndim", 0) < 3:
        return None
    try:
        i = int(round(float(layer.world_to_data(viewer.dims.point)[-3])))
    except (IndexError, ValueError):
        return None
    return min(max(i, 0), bands - 1)


def _slider_widget(viewer: Any, axis: int) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return viewer.window._qt_viewer.dims.slider_widgets[axis]
        except Exception:  # no window, headless, or napari changed its internals
            return None


class BandSliderLabels:
    """Keep napari's band-slider numbers 1-based (and the canvas text) for the current cube."""

    def __init__(self, viewer: Any, text: Any) -> None:
        """``text()`` returns the canvas line for the current position ("" hides it)."""
        self.viewer = viewer
        self._text = text
        self._patched: set[int] = set()
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self.update)
        viewer.dims.events.current_step.connect(self.schedule)
        viewer.dims.events.range.connect(self.schedule)
        viewer.dims.events.ndim.connect(self.schedule)
        overlay = viewer.text_overlay
        overlay.position = "top_left"
        overlay.font_size = 11
        overlay.color = "white"

    def schedule(self, *_: Any) -> None:
        """Update after napari's own handlers (they rewrite the labels on the same events)."""
        self._timer.start()

    def update(self) -> None:
        text = self._text()
        overlay = self.viewer.text_overlay
        overlay.text = text
        overlay.visible = bool(text)
        axis = band_axis(self.viewer)
        if axis < 0:
            return
        w = _slider_widget(self.viewer, axis)
        if w is None:
            return
        try:
            step = int(self.viewer.dims.current_step[axis])
            nsteps = int(self.viewer.dims.nsteps[axis])
            w.curslice_label.setText(str(step + 1))
            w.totslice_label.setText(str(nsteps))
            w.curslice_label.setToolTip("Band shown (counted from 1, as in the Cube dock)")
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
