"""The Cube dock's band selection: "1-100, 110-150" (bands count from 1), defaulting to the header's
good bands (ENVI ``bbl``) without Sentinel-2's atmospheric bands B09 and B10. Published as
``state.set_bands``."""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from napari_hsi_anomaly._widgets.workers import notify_error
from napari_hsi_anomaly.core.errors import HsiAnomalyError


def selection_note(cube: Any, bands: np.ndarray | None) -> str:
    """``"using 12 of 13 bands; left out: B10 1375 nm"`` (or ``"all 12 bands"``)."""
    if cube is None:
        return ""
    if bands is None:
        return f"all {cube.bands} bands"
    out = np.setdiff1d(np.arange(cube.bands), bands)
    names = [cube.band_label(int(i)) for i in out[:3]]
    more = f" and {out.size - 3} more" if out.size > 3 else ""
    return f"using {bands.size} of {cube.bands} bands; left out: {', '.join(names)}{more}"


class BandSelect(QWidget):
    """A line edit with the selection as text, a note of what is left out, and "All"."""

    def __init__(self, state: Any) -> None:
        super().__init__()
        self.state = state
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("all bands")
        self.edit.setToolTip(
            "Bands every detector, training and profile uses, counted from 1: e.g. '1-100, 110-150'. "
            "Defaults to the header's good bands (bbl); Sentinel-2's atmospheric bands B09 (water vapour)"
            " and B10 (cirrus) are left out. "
            "Display (RGB, slider, spectra) always shows every band."
        )
        self.edit.editingFinished.connect(self.apply)
        self.all_button = QPushButton("All")
        self.all_button.setToolTip("Use every band.")
        self.all_button.clicked.connect(self.use_all)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #a0a4ab;")
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(self.all_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(row)
        layout.addWidget(self.note)
        state.bands_changed.connect(self.show_selection)  # also set elsewhere (a loaded model: all bands)

    def default_for(self, cube: Any) -> np.ndarray | None:
        from napari_hsi_anomaly.core.bands import default_band_selection

        try:
            return default_band_selection(cube)
        except HsiAnomalyError:
            return None

    def show_selection(self, bands: np.ndarray | None) -> None:
        from napari_hsi_anomaly.core.bands import format_band_spec

        cube = self.state.cube
        self.edit.setText("" if bands is None or cube is None else format_band_spec(bands))
        self.note.setText(selection_note(cube, bands))

    def apply(self) -> bool:
        """Parse the text and publish it; a bad text is one notification and the old text comes back."""
        from napari_hsi_anomaly.core.bands import parse_band_spec

        cube = self.state.cube
        if cube is None:
            return False
        text = self.edit.text().strip()
        try:
            bands = None if not text else parse_band_spec(text, cube.bands)
        except HsiAnomalyError as exc:
            notify_error(exc)
            self.show_selection(self.state.band_selection)
            return False
        self.state.set_bands(bands)
        self.show_selection(self.state.band_selection)
        return True

    def use_all(self) -> None:
        self.edit.setText("")
        self.apply()
