"""The Cube dock: pick or open a cube, see what it is, choose the RGB composite bands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from napari_hsi_anomaly._widgets.state import get_state
from napari_hsi_anomaly._widgets.workers import (
    Generation,
    notify_error,
    start_function_worker,
)
from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import HsiAnomalyError

FILE_FILTER = "Cubes (*.hdr *.npy *.npz *.tif *.tiff);;All files (*)"
AXIS_LABELS = ("band", "row", "col")  # as the reader sets them


def layer_cube(layer: Any) -> Cube | None:
    """The ``Cube`` behind an Image layer: its metadata's, or the layer's 3-D data wrapped (cached)."""
    cube = layer.metadata.get("cube") if hasattr(layer, "metadata") else None
    if isinstance(cube, Cube):
        return cube
    if getattr(layer, "rgb", False) or getattr(layer, "ndim", 0) != 3:
        return None
    cube = Cube(np.asarray(layer.data))
    layer.metadata["cube"] = cube
    return cube


def is_cube_layer(layer: Any) -> bool:
    """An Image layer that is, or can be wrapped as, a ``(bands, rows, cols)`` cube."""
    from napari.layers import Image

    if not isinstance(layer, Image) or layer.rgb:
        return False
    return isinstance(layer.metadata.get("cube"), Cube) or layer.ndim == 3


def band_text(cube: Cube, i: int) -> str:
    """``"B04 665 nm"`` (or ``"band 4 · 665 nm"`` without band names)."""
    label = cube.band_label(i)
    if cube.band_names is None and cube.wavelengths is not None:
        return f"band {i + 1} · {label}"
    return label


def describe_cube(cube: Cube) -> str:
    """A few short lines about the cube for the dock."""
    lines = [f"{cube.bands} bands × {cube.rows} × {cube.cols} px · {cube.dtype}"]
    wl = cube.wavelengths
    if wl is not None and np.isfinite(wl).any():
        lines.append(f"{np.nanmin(wl):.0f}–{np.nanmax(wl):.0f} nm")
    else:
        lines.append("no wavelengths")
    extra = []
    extra.append(f"no-data {cube.nodata:g}" if cube.nodata is not None else "no no-data value")
    if cube.scale_factor not in (None, 1):
        extra.append(f"scale ÷{cube.scale_factor:g}")
    lines.append(" · ".join(extra))
    return "\n".join(lines)


def _read(path: str) -> list[tuple[Any, dict, str]]:
    """The reader's layer data (band stack, RGB composite), computed off the GUI thread."""
    from napari_hsi_anomaly._reader import cube_layers
    from napari_hsi_anomaly.core.io import read_cube

    return cube_layers(read_cube(path))


class CubeWidget(QWidget):
    """Choose the cube the other docks work on; show its bands; set the RGB composite."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.state = get_state(napari_viewer)
        self._rgb_gen = Generation()
        self._layer_obj: Any = None  # the layers behind state.cube_layer / state.rgb_layer
        self._rgb_obj: Any = None
        self._busy = 0
        self._build()
        layers = self.viewer.layers
        layers.events.inserted.connect(self._on_inserted)
        layers.events.removed.connect(self._on_removed)
        for layer in layers:
            layer.events.name.connect(self._on_renamed)
        self.viewer.dims.events.current_step.connect(self._update_band_label)
        self._refresh_layers()
        self._on_layer_chosen()

    # ---- layout
    def _build(self) -> None:
        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("The image layer (bands, rows, cols) the other docks work on.")
        self.layer_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.layer_combo.setMinimumContentsLength(10)
        self.layer_combo.currentIndexChanged.connect(self._on_layer_chosen)
        self.open_button = QPushButton("Open…")
        self.open_button.setToolTip("Read an ENVI .hdr, .npy/.npz or GeoTIFF cube (off the GUI thread).")
        self.open_button.clicked.connect(self._open_dialog)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.layer_combo, 1)
        row.addWidget(self.open_button)

        self.info_label = QLabel("No cube yet: open a file or add an image layer.")
        self.info_label.setWordWrap(True)
        self.info_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.band_label = QLabel("")
        self.band_label.setToolTip("The band shown by the layer at the band slider's position.")

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Layer", row)
        form.addRow("Cube", self.info_label)
        form.addRow("Slider", self.band_label)

        self.rgb_combos = []
        rgb_form = QFormLayout()
        rgb_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for name in ("Red", "Green", "Blue"):
            combo = QComboBox()
            combo.setToolTip(f"Band shown as {name.lower()} in the RGB composite.")
            combo.setMinimumContentsLength(8)
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            self.rgb_combos.append(combo)
            rgb_form.addRow(name, combo)
        self.update_rgb_button = QPushButton("Update RGB")
        self.update_rgb_button.setToolTip(
            "Recompute the composite (2–98 % stretch per channel) from the chosen bands."
        )
        self.update_rgb_button.clicked.connect(self.update_rgb)
        rgb_form.addRow(self.update_rgb_button)
        rgb_box = QGroupBox("RGB composite")
        rgb_box.setLayout(rgb_form)

        outer = QVBoxLayout(self)
        outer.addLayout(form)
        outer.addWidget(rgb_box)
        outer.addStretch(1)
        self.setMinimumWidth(260)
        self._set_enabled()

    def _set_enabled(self) -> None:
        idle = self._busy == 0
        has_cube = self.state.cube is not None
        self.open_button.setEnabled(idle)
        self.update_rgb_button.setEnabled(idle and has_cube)
        for combo in self.rgb_combos:
            combo.setEnabled(has_cube)

    def _begin(self) -> None:
        self._busy += 1
        self._set_enabled()

    def _end(self) -> None:
        self._busy = max(0, self._busy - 1)
        self._set_enabled()

    # ---- layer list
    def _cube_layers(self) -> list[Any]:
        return [layer for layer in self.viewer.layers if is_cube_layer(layer)]

    def _refresh_layers(self) -> None:
        names = [layer.name for layer in self._cube_layers()]
        current = self.state.cube_layer
        if current not in names:
            current = self.layer_combo.currentText()
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItems(names)
        if current in names:
            self.layer_combo.setCurrentIndex(names.index(current))
        self.layer_combo.blockSignals(False)

    def _on_inserted(self, event: Any) -> None:
        layer = event.value
        layer.events.name.connect(self._on_renamed)
        self._refresh_layers()
        if not is_cube_layer(layer):
            cube = self.state.cube
            is_rgb = getattr(layer, "rgb", False) and self._rgb_obj is None
            if is_rgb and cube is not None and layer.metadata.get("cube") is cube:
                # the reader adds the composite after the band stack
                self._rgb_obj, self.state.rgb_layer = layer, layer.name
            return
        from_reader = isinstance(layer.metadata.get("cube"), Cube)
        if from_reader or self.state.cube is None:
            self.layer_combo.setCurrentText(layer.name)
            self._on_layer_chosen()

    def _on_removed(self, event: Any) -> None:
        layer = event.value
        layer.events.name.disconnect(self._on_renamed)
        if layer is self._rgb_obj:
            self._rgb_obj, self.state.rgb_layer = None, None
        was_current = self.layer_combo.currentText() == layer.name
        self._refresh_layers()
        if was_current and self.layer_combo.count():
            self._on_layer_chosen()

    def _on_renamed(self, event: Any) -> None:
        layer = event.source
        if layer is self._layer_obj:
            self.state.cube_layer = layer.name
        elif layer is self._rgb_obj:
            self.state.rgb_layer = layer.name
        self._refresh_layers()

    def _rgb_layer_for(self, layer: Any, cube: Cube) -> Any:
        for other in self.viewer.layers:
            same = other.metadata.get("cube") is cube or other.name == f"{layer.name} RGB"
            if other is not layer and getattr(other, "rgb", False) and same:
                return other
        return None

    def _on_layer_chosen(self, *_: Any) -> None:
        name = self.layer_combo.currentText()
        if not name or name not in self.viewer.layers:
            self._show_cube(self.state.cube)
            return
        layer = self.viewer.layers[name]
        try:
            cube = layer_cube(layer)
        except HsiAnomalyError as exc:
            notify_error(exc)
            return
        if cube is None:
            return
        rgb = self._rgb_layer_for(layer, cube)
        self._layer_obj, self._rgb_obj = layer, rgb
        if cube is not self.state.cube or name != self.state.cube_layer:
            self.state.set_cube(cube, name, rgb.name if rgb is not None else None)
        self._show_cube(cube)
        if layer.ndim == 3 and layer._has_default_axis_labels():
            layer.axis_labels = AXIS_LABELS  # the viewer's dims follow the layers' labels

    def _show_cube(self, cube: Cube | None) -> None:
        self._set_enabled()
        if cube is None:
            return
        self.info_label.setText(describe_cube(cube))
        default = cube.rgb_bands()
        for combo, band in zip(self.rgb_combos, default):
            combo.blockSignals(True)
            combo.clear()
            combo.addItems([band_text(cube, i) for i in range(cube.bands)])
            combo.setCurrentIndex(int(band))
            combo.blockSignals(False)
        self._update_band_label()

    def _update_band_label(self, *_: Any) -> None:
        cube, name = self.state.cube, self.state.cube_layer
        if cube is None or name not in self.viewer.layers:
            self.band_label.setText("")
            return
        layer = self.viewer.layers[name]
        try:
            i = int(np.round(layer.world_to_data(self.viewer.dims.point)[0]))
        except (IndexError, ValueError):
            i = 0
        i = int(np.clip(i, 0, cube.bands - 1))
        self.band_label.setText(f"band {i + 1}/{cube.bands} · {cube.band_label(i)}")

    # ---- RGB
    def rgb_bands(self) -> tuple[int, int, int]:
        return tuple(int(c.currentIndex()) for c in self.rgb_combos)  # type: ignore[return-value]

    def update_rgb(self) -> Any:
        """Recompute the composite from the chosen bands in a worker; update/add the RGB layer."""
        cube, name = self.state.cube, self.state.cube_layer
        if cube is None:
            return None
        bands = self.rgb_bands()
        token = self._rgb_gen.next()

        def done(rgb: np.ndarray) -> None:
            if not self._rgb_gen.is_current(token) or self.state.cube is not cube:
                return
            self._set_rgb(cube, name or cube.name, rgb, bands)

        self._begin()
        return start_function_worker(
            cube.rgb, bands, on_returned=done, on_finished=self._end, desc="RGB composite"
        )

    def _set_rgb(self, cube: Cube, name: str, rgb: np.ndarray, bands: tuple[int, int, int]) -> None:
        layer = self._rgb_obj if self._rgb_obj in self.viewer.layers else None
        if layer is not None:
            layer.data = rgb
            layer.contrast_limits = (0.0, 1.0)
            layer.metadata["rgb_bands"] = bands
        else:
            layer = self.viewer.add_image(
                rgb,
                name=f"{name} RGB",
                rgb=True,
                contrast_limits=(0.0, 1.0),
                metadata={"cube": cube, "rgb_bands": bands},
            )
            self._rgb_obj, self.state.rgb_layer = layer, layer.name
            if name in self.viewer.layers:  # below the band stack
                self.viewer.layers.move(self.viewer.layers.index(layer), self.viewer.layers.index(name))

    # ---- open a file
    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a cube", "", FILE_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path) -> Any:
        """Read ``path`` in a worker, then add the band stack and RGB layers (GUI thread)."""
        self._begin()
        return start_function_worker(
            _read,
            str(path),
            on_returned=self._add_cube_layers,
            on_finished=self._end,
            desc=f"Reading {Path(path).name}",
        )

    def _add_cube_layers(self, layer_data: list[tuple[Any, dict, str]]) -> None:
        from napari.layers import Layer

        for data, kwargs, kind in layer_data:  # the band stack first: it becomes the cube
            self.viewer.add_layer(Layer.create(data, kwargs, kind))
