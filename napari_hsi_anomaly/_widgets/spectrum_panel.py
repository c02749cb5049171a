"""The Inspect dock's spectrum panel: the spectrum under a click against the scene's median and
inter-quartile band, pins, and a marker at the band the slider shows. The y axis says what a value
is (``Cube.value_label``: reflectance with its scale, radiance, DN). Hidden until there is a cube."""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from napari_hsi_anomaly._widgets.plots import SpectrumPlot


def x_axis(cube: Any) -> tuple[np.ndarray, str]:
    """Wavelengths (nm) when every band has one, else band numbers counted from 1."""
    wl = cube.wavelengths
    if wl is not None and np.isfinite(wl).all():
        return np.asarray(wl, dtype=float), "wavelength (nm)"
    return np.arange(1, cube.bands + 1, dtype=float), "band"


def y_label(cube: Any) -> str:
    """What the plotted values are (``as_float32`` values: scale applied)."""
    try:
        label = cube.value_label(True)
    except Exception:  # an older Cube: units only
        label = "value" + (f" ({cube.units})" if cube.units else "")
    return label.replace(" (", "\n(", 1) if len(label) > 16 else label  # fits the plot's height


class SpectrumPanel(QWidget):
    """Hint line, ``SpectrumPlot`` and the Pin / Clear pins buttons."""

    def __init__(self, theme: str) -> None:
        super().__init__()
        self.hint = QLabel("Click a pixel to see its spectrum.")
        self.hint.setWordWrap(True)
        self.spectrum = SpectrumPlot(height_px=190, theme=theme)
        self.spectrum.setMinimumHeight(180)  # readable even when the dock is short (it scrolls)
        self.spectrum.margins = (62, 10, 20, 38)  # room for a two-line value label (units, scale)
        self.pin_btn = QPushButton("Pin")
        self.pin_btn.setToolTip("Keep the current spectrum for comparison.")
        self.clear_btn = QPushButton("Clear pins")
        self.pin_btn.clicked.connect(self.spectrum.pin)
        self.clear_btn.clicked.connect(self.spectrum.clear_pins)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.pin_btn)
        row.addWidget(self.clear_btn)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.hint)
        layout.addWidget(self.spectrum)
        layout.addLayout(row)
        self.set_cube(None)

    def set_cube(self, cube: Any) -> None:
        """A new scene: its axis and units, no spectrum, no pins (the scene band comes with ``set_scene``)."""
        has = cube is not None
        for w in (self.spectrum, self.pin_btn, self.clear_btn):
            w.setVisible(has)
        if not has:
            self.hint.setText("Open a cube, then click a pixel to see its spectrum.")
            return
        self.hint.setText("Click a pixel to see its spectrum.")
        x, label = x_axis(cube)
        self.spectrum.set_axis(x, label)  # also drops pins and the current spectrum
        self.spectrum.median_line.set_data([], [])
        fill = getattr(self.spectrum, "_band_fill", None)  # the previous scene's IQR band
        if fill is not None:
            fill.remove()
            self.spectrum._band_fill = None
        self.spectrum.set_title("")
        self.spectrum.ax.set_ylabel(y_label(cube))
        self.spectrum.relayout()

    def set_scene(self, stats: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        self.spectrum.set_scene(*stats)

    def show_spectrum(self, y: np.ndarray, short: str, title: str) -> None:
        self.spectrum.set_spectrum(y, short, title=title)
        self.hint.setText("Pin keeps this spectrum for comparison.")
