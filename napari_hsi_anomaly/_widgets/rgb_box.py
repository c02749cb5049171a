"""The Cube dock's "RGB composite" box: three band choices and Update RGB (computed in a worker)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from qtpy.QtWidgets import QComboBox, QFormLayout, QGroupBox, QPushButton

from napari_hsi_anomaly._widgets.cube_info import band_text
from napari_hsi_anomaly._widgets.workers import Generation, start_function_worker
from napari_hsi_anomaly.core.cube import Cube


def _stack_rgb(stack: Any, bands: tuple) -> np.ndarray:
    """``(dates, rows, cols, 3)``: the composite of every date of a stack (as the reader makes it)."""
    return np.stack([stack.cube(k).rgb(bands) for k in range(stack.n_dates)])


class RgbBox(QGroupBox):
    """Red/green/blue band combos; ``update_rgb`` recomputes the composite off the GUI thread (every
    date of a stack), then updates the scene's RGB layer or adds one above the band stack and calls
    ``on_layer(layer)`` (GUI thread)."""

    def __init__(self, viewer: Any, state: Any, current: Callable[[], Any], on_layer: Callable[[Any], None],
                 busy: Any) -> None:
        super().__init__("RGB composite")
        self.viewer = viewer
        self.state = state
        self._current = current  # the scene's RGB layer now (or None)
        self._on_layer = on_layer
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
        fits = current is not None and len(current) == 3 and all(0 <= int(b) < cube.bands for b in current)
        chosen = current if fits else cube.rgb_bands()
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
        cube, name = self.state.cube, self.state.cube_layer
        if cube is None:
            return None
        bands = self.bands()
        token = self._gen.next()
        stack = next((lay.metadata.get("stack") for lay in self.viewer.layers if lay.name == name), None)

        def done(rgb: np.ndarray) -> None:
            if self._gen.is_current(token) and self.state.cube_layer == name:
                self._put(cube, name or cube.name, rgb, bands)

        self._busy_start()
        fn, arg = (_stack_rgb, stack) if stack is not None else (cube.rgb, None)
        args = (arg, bands) if arg is not None else (bands,)
        return start_function_worker(fn, *args, on_returned=done, on_finished=self._busy_end,
                                     desc="RGB composite")

    def _put(self, cube: Cube, name: str, rgb: np.ndarray, bands: tuple) -> None:
        """Update the scene's RGB layer, or add one just above the band stack."""
        layer = self._current()
        layer = layer if layer in self.viewer.layers else None
        if layer is not None and layer.data.shape == rgb.shape:
            layer.data = rgb
            layer.contrast_limits = (0.0, 1.0)
            layer.metadata["rgb_bands"] = bands
        else:
            if layer is not None:
                self.viewer.layers.remove(layer)
            layer = self.viewer.add_image(rgb, name=f"{name} RGB", rgb=True, contrast_limits=(0.0, 1.0),
                                          metadata={"cube": cube, "rgb_bands": bands})
            if name in self.viewer.layers:  # just above the band stack
                self.viewer.layers.move(self.viewer.layers.index(layer), self.viewer.layers.index(name) + 1)
        self._on_layer(layer)
