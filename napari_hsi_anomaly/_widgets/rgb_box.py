"""The Cube dock's "RGB composite" box: three band choices and Update RGB (computed in a worker)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from qtpy.QtWidgets import QComboBox, QFormLayout, QGroupBox, QPushButton

from napari_hsi_anomaly._widgets.cube_info import band_text
from napari_hsi_anomaly._widgets.workers import Generation, start_function_worker
from napari_hsi_anomaly.core.cube import Cube


class RgbBox(QGroupBox):
    """Red/green/blue band combos; ``update_rgb`` recomputes the composite off the GUI thread and
    hands it to ``on_rgb(cube, rgb, bands)`` in the GUI thread (the dock adds or updates the layer)."""

    def __init__(self, state: Any, on_rgb: Callable[[Cube, np.ndarray, tuple], None], busy: Any) -> None:
        super().__init__("RGB composite")
        self.state = state
        self._on_rgb = on_rgb
        self._busy_start, self._busy_end = busy
        self._gen = Generation()
        self.combos: list[QComboBox] = []
        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for name in ("Red", "Green", "Blue"):
            combo = QComboBox()
            combo.setToolTip(f"Band shown as {name.lower()} in the RGB composite.")
            combo.setMinimumContentsLength(8)
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            self.combos.append(combo)
            form.addRow(name, combo)
        self.button = QPushButton("Update RGB")
        self.button.setToolTip("Recompute the composite (2–98 % stretch per channel) from these bands.")
        self.button.clicked.connect(self.update_rgb)
        form.addRow(self.button)

    def show_cube(self, cube: Cube, current: tuple | None = None) -> None:
        """List the cube's bands; select ``current`` (the composite's bands) or the cube's default."""
        chosen = current if current is not None and len(current) == 3 else cube.rgb_bands()
        for combo, band in zip(self.combos, chosen):
            combo.blockSignals(True)
            combo.clear()
            combo.addItems([band_text(cube, i) for i in range(cube.bands)])
            combo.setCurrentIndex(int(band))
            combo.blockSignals(False)

    def bands(self) -> tuple[int, int, int]:
        return tuple(int(c.currentIndex()) for c in self.combos)  # type: ignore[return-value]

    def update_rgb(self) -> Any:
        """Start the composite of the chosen bands in a worker (a newer request wins)."""
        cube = self.state.cube
        if cube is None:
            return None
        bands = self.bands()
        token = self._gen.next()

        def done(rgb: np.ndarray) -> None:
            if self._gen.is_current(token) and self.state.cube is cube:
                self._on_rgb(cube, rgb, bands)

        self._busy_start()
        return start_function_worker(
            cube.rgb, bands, on_returned=done, on_finished=self._busy_end, desc="RGB composite"
        )
