"""The Inspect dock's spectrum panel: the spectrum under a click against the scene's median and
inter-quartile band, pins, and a marker at the band the slider shows. The y axis says what a value
is (``Cube.value_label``: reflectance with its scale, radiance, DN). Hidden until there is a cube.
"Export spectra…" writes what the plot shows (pins, the selected region's mean, the scene median and
quartiles) to CSV, one row per band (``core.spectra_export``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

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


Column = tuple[str, np.ndarray]


class SpectrumPanel(QWidget):
    """Hint line, ``SpectrumPlot`` and the Pin / Clear pins / Export spectra… buttons.

    ``region`` returns the selected region's ``(name, mean spectrum)`` (None without one) for the export.
    """

    def __init__(self, theme: str, region: Callable[[], Column | None] | None = None) -> None:
        super().__init__()
        self.cube: Any = None
        self.stats: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.current_name = ""  # the shown spectrum's column name in an export (with row/col)
        self._region = region or (lambda: None)
        self.hint = QLabel("Click a pixel to see its spectrum.")
        self.hint.setWordWrap(True)
        self.spectrum = SpectrumPlot(height_px=190, theme=theme)
        self.spectrum.setMinimumHeight(180)  # readable even when the dock is short (it scrolls)
        self.spectrum.margins = (62, 10, 20, 38)  # room for a two-line value label (units, scale)
        self.pin_btn = QPushButton("Pin")
        self.pin_btn.setToolTip("Keep the current spectrum for comparison.")
        self.clear_btn = QPushButton("Clear pins")
        self.export_btn = QPushButton("Export spectra…")
        self.export_btn.setToolTip("Pinned spectra, the selected region's mean and the scene median and "
                                   "quartiles to a CSV file (one row per band, the plot's units).")
        self.pin_btn.clicked.connect(self.pin)
        self.clear_btn.clicked.connect(self.spectrum.clear_pins)
        self.export_btn.clicked.connect(self._export_dialog)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.pin_btn)
        row.addWidget(self.clear_btn)
        row.addWidget(self.export_btn)
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
        self.cube, self.stats, self.current_name = cube, None, ""
        for w in (self.spectrum, self.pin_btn, self.clear_btn, self.export_btn):
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
        self.stats = stats
        self.spectrum.set_scene(*stats)

    def show_spectrum(self, y: np.ndarray, short: str, title: str, name: str | None = None) -> None:
        """Plot ``y`` (legend ``short``); ``name`` is its column name when pinned and exported."""
        self.spectrum.set_spectrum(y, short, title=title)
        self.current_name = name or short
        self.hint.setText("Pin keeps this spectrum for comparison.")

    def pin(self) -> bool:
        """Pin the current spectrum (``SpectrumPlot.pin``), remembering its name for the export."""
        if not self.spectrum.pin():
            return False
        self.spectrum.pins[-1].set_gid(self.current_name)  # the pinned line carries its column name
        return True

    # ---------------------------------------------------------------- pins per scene
    def pins_state(self) -> list[tuple[str, str | None, np.ndarray]]:
        """The pins as (label, column name, values in band order): what a scene keeps when it leaves."""
        order = self.spectrum.order
        kept = []
        for line in self.spectrum.pins:
            y = np.empty(order.size, dtype=np.float64)
            y[order] = np.asarray(line.get_ydata(), dtype=np.float64)
            kept.append((str(line.get_label()).removeprefix("pin "), line.get_gid(), y))
        return kept

    def restore_pins(self, kept: list, bands: int) -> bool:
        """Draw ``pins_state()`` pins again; False (nothing drawn) when they are not of ``bands`` bands."""
        if any(y.size != bands for _, _, y in kept):
            return False
        self.spectrum.clear_pins()
        for short, name, y in kept:
            self.show_spectrum(y, short, title=f"pinned {short}", name=name)
            self.pin()
        return True

    # ---------------------------------------------------------------- export
    def columns(self) -> list[Column]:
        """What the plot shows, in band (file) order: pins, the selected region's mean, the scene."""
        from napari_hsi_anomaly.core.spectra_export import scene_columns

        out: list[Column] = []
        order = self.spectrum.order
        for k, line in enumerate(self.spectrum.pins, start=1):
            y = np.empty(order.size, dtype=np.float64)
            y[order] = np.asarray(line.get_ydata(), dtype=np.float64)  # the plot draws in x order
            name = line.get_gid() or str(line.get_label()).removeprefix("pin ")  # pinned by the plot
            out.append((f"pin {k}: {name}", y))
        region = self._region()
        if region is not None:
            out.append(region)
        return out + scene_columns(self.stats)

    def _export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export spectra", "spectra.csv", "CSV (*.csv)")
        if path:
            self.export_spectra(path)

    def export_spectra(self, path: str | Path) -> Path | None:
        """Write ``columns()`` to ``path`` (CSV); a bad path or nothing to export is one notification."""
        from napari_hsi_anomaly._widgets.workers import notify_error, notify_saved
        from napari_hsi_anomaly.core.errors import HsiAnomalyError
        from napari_hsi_anomaly.core.spectra_export import spectra_to_csv

        if self.cube is None:
            return None
        source = getattr(self.cube, "source", None)
        try:
            columns = self.columns()
            out = spectra_to_csv(self.cube, columns, path, inputs=[source] if source else [])
        except (HsiAnomalyError, OSError) as exc:
            notify_error(exc)
            return None
        notify_saved(f"{len(columns)} spectra (CSV)", out)
        return out
