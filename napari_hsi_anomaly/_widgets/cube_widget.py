"""The Cube dock: open, switch and close scenes (one on screen at a time: ``scenes.SceneManager``), see
what the cube is, choose the bands analysis uses, show the RGB composite or one band, and choose the
composite's bands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QSizePolicy,
    QWidget,
)

from napari_hsi_anomaly._widgets.band_select import BandSelect
from napari_hsi_anomaly._widgets.band_slider import (
    BandSliderLabels,
    band_line,
    band_under_slider,
    canvas_line,
)
from napari_hsi_anomaly._widgets.cube_info import (  # noqa: F401 (re-exported for the other docks)
    band_text,
    date_cube,
    describe_cube,
    is_cube_layer,
    layer_cube,
    read_layers,
)
from napari_hsi_anomaly._widgets.rgb_box import RgbBox
from napari_hsi_anomaly._widgets.scene_view import (
    SceneView,
    adopt_ground_truth,
    camera,
    is_new_ground_truth,
    rgb_layer_for,
    scene_ground_truth,
    scene_key,
    scene_of,
)
from napari_hsi_anomaly._widgets.scroll import scroll_dock
from napari_hsi_anomaly._widgets.state import get_state
from napari_hsi_anomaly._widgets.workers import connect_alive, guarded, notify_error, start_function_worker
from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import HsiAnomalyError

FILE_FILTER = "Cubes (*.hdr *.npy *.npz *.tif *.tiff *.zip *.SAFE);;All files (*)"
AXIS_LABELS = ("band", "row", "col")  # as the reader sets them
DEFAULT_AXIS_LABELS = ("-3", "-2", "-1")  # napari's labels for a layer that has none


class CubeWidget(QWidget):
    """Choose the cube the other docks work on; show its bands; set the RGB composite."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.state = get_state(napari_viewer)
        self._layer_obj: Any = None  # the layers behind state.cube_layer / state.rgb_layer
        self._rgb_obj: Any = None
        self._busy = 0
        self._publishing = False
        self.scene = SceneView(napari_viewer, on_mode=self._show_mode)
        self._build()
        self.mgr = self.state.scenes
        layers = self.viewer.layers
        layers.events.inserted.connect(self._on_inserted)
        layers.events.removed.connect(self._on_removed)
        for layer in layers:
            layer.events.name.connect(self._on_renamed)
        self.slider_labels = BandSliderLabels(napari_viewer, self.canvas_text, lambda: self._layer_obj)
        self.viewer.dims.events.current_step.connect(self._on_dims)
        self.state.cube_changed.connect(self._follow)
        connect_alive(self, self.mgr.changed, self._refresh_layers)
        connect_alive(self, self.mgr.leaving, self._on_leaving)
        connect_alive(self, self.mgr.activated, lambda s: guarded(self._on_activated, s))
        self._refresh_layers()
        if self.mgr.active is not None:
            self._on_activated(self.mgr.active)
        self.slider_labels.schedule()

    # ---- layout
    def _build(self) -> None:
        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("The scene on screen (a cube or a stack of dates): choosing another "
                                    "brings its layers and results back as they were.")
        self.layer_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.layer_combo.setMinimumContentsLength(10)
        self.layer_combo.currentIndexChanged.connect(self._on_layer_chosen)
        self.open_button = QPushButton("Open…")
        self.open_button.setToolTip("Read an ENVI .hdr, .npy/.npz, GeoTIFF or Sentinel-2 SAFE (in a worker).")
        self.open_button.clicked.connect(self._open_dialog)
        self.close_button = QPushButton("Close")
        self.close_button.setToolTip("Close this scene: its layers and results leave the viewer.")
        self.close_button.clicked.connect(self.close_scene)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.layer_combo, 1)
        row.addWidget(self.open_button)
        row.addWidget(self.close_button)

        self.info_label = QLabel("No cube yet: open a file or add an image layer.")
        self.info_label.setWordWrap(True)
        self.info_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.bands = BandSelect(self.state)

        self.show_rgb = QRadioButton("RGB composite")
        self.show_band = QRadioButton("one band")
        self.show_band.setToolTip("The band stack; the band slider under the canvas moves it.")
        self._mode_group = QButtonGroup(self)
        for b in (self.show_rgb, self.show_band):
            self._mode_group.addButton(b)
        self.show_rgb.setChecked(True)
        self.show_rgb.toggled.connect(lambda on: self.scene.set_mode("rgb" if on else "band"))
        mode_row = QHBoxLayout()
        mode_row.setContentsMargins(0, 0, 0, 0)
        mode_row.addWidget(self.show_rgb)
        mode_row.addWidget(self.show_band)
        self.band_label = QLabel("")
        self.band_label.setToolTip("The band the band slider is on (counted from 1, like the slider).")

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Layer", row)
        form.addRow("Cube", self.info_label)
        form.addRow("Bands", self.bands)
        form.addRow("Show", mode_row)
        form.addRow("Slider", self.band_label)
        top = QWidget()
        top.setLayout(form)
        form.setContentsMargins(0, 0, 0, 0)

        self.rgb_box = RgbBox(self.viewer, self.state, lambda: self._rgb_obj, self._rgb_ready,
                              (self._begin, self._end))
        self.rgb_combos, self.update_rgb_button = self.rgb_box.combos, self.rgb_box.button
        self.rgb_bands, self.update_rgb = self.rgb_box.bands, self.rgb_box.update_rgb

        scroll_dock(self, [top, self.rgb_box], margins=4)
        self.setMinimumWidth(260)
        self._set_enabled()

    def _set_enabled(self) -> None:
        idle = self._busy == 0
        has_cube = self.state.cube is not None
        self.open_button.setEnabled(idle)
        self.update_rgb_button.setEnabled(idle and has_cube)
        for w in (*self.rgb_combos, self.bands, self.show_rgb, self.show_band):
            w.setEnabled(has_cube)

    def _begin(self) -> None:
        self._busy += 1
        self._set_enabled()

    def _end(self) -> None:
        self._busy = max(0, self._busy - 1)
        self._set_enabled()

    # ---- the scene list (one entry per opened file or cube layer)
    def _refresh_layers(self, *_: Any) -> None:
        names = [s.name for s in self.mgr.scenes]
        active = self.mgr.active
        current = active.name if active is not None else self.layer_combo.currentText()
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItems(names)
        if current in names:
            self.layer_combo.setCurrentIndex(names.index(current))
        self.layer_combo.blockSignals(False)
        self.close_button.setEnabled(bool(names))

    def _on_inserted(self, event: Any) -> None:
        layer = event.value
        layer.events.name.connect(self._on_renamed)
        cube = self.state.cube
        if self.mgr.moving or cube is None or is_cube_layer(layer):
            return
        mine = self.mgr.owner(layer) is self.mgr.active and self.mgr.pending is None
        if getattr(layer, "rgb", False) and self._rgb_obj is None and mine and (
                scene_of(layer) is cube or scene_key(layer) is scene_key(self._layer_obj)):
            self._rgb_obj, self.state.rgb_layer = layer, layer.name  # the reader's composite
            self.scene.activate(cube, self._layer_obj, layer, fit=False)
        elif mine and is_new_ground_truth(layer, cube):
            adopt_ground_truth(layer, cube, self.state)
            QTimer.singleShot(0, self.scene.reselect)  # napari selects the layer just added

    def _on_removed(self, event: Any) -> None:
        layer = event.value
        layer.events.name.disconnect(self._on_renamed)
        if self.mgr.moving:
            return
        if layer is self._rgb_obj:
            self._rgb_obj, self.state.rgb_layer = None, None
        if layer.name == self.state.ground_truth:
            self.state.set_ground_truth(None)

    def _on_renamed(self, event: Any) -> None:
        layer = event.source
        if layer is self._layer_obj:
            self.state.cube_layer = layer.name
            scene = self.mgr.owner(layer)
            if scene is not None:
                scene.name = layer.name
        elif layer is self._rgb_obj:
            self.state.rgb_layer = layer.name
        self._refresh_layers()

    def _on_layer_chosen(self, *_: Any) -> None:
        scene = self.mgr.named(self.layer_combo.currentText())
        if scene is None or scene is self.mgr.active:
            return
        guarded(self.mgr.activate, scene)

    def close_scene(self) -> None:
        """Close the scene on screen (its layers and results go); a neighbour comes on screen."""
        if self.mgr.active is not None:
            guarded(self.mgr.close, self.mgr.active)
        if self.mgr.active is None:
            self._layer_obj = self._rgb_obj = None
            self.state.set_cube(None)
            self.info_label.setText("No cube yet: open a file or add an image layer.")
        self._refresh_layers()

    def _on_leaving(self, scene: Any) -> None:
        scene.band_selection, scene.bands_chosen = self.state.band_selection, True
        scene.mode = self.scene.preferred

    def _on_activated(self, scene: Any) -> None:
        """A scene is on screen (its layers are the viewer's): publish its cube, show it as it was."""
        self._refresh_layers()
        layer = self.mgr.band_stack(scene)
        if layer is None:
            return
        try:
            cube = date_cube(self.viewer, layer) or layer_cube(layer)
        except HsiAnomalyError as exc:
            notify_error(exc)
            return
        if layer.ndim == 3 and tuple(layer.axis_labels) == DEFAULT_AXIS_LABELS:
            layer.axis_labels = AXIS_LABELS  # the viewer's dims follow the layers' labels
        rgb = rgb_layer_for(self.viewer, layer, cube)
        bands = scene.band_selection if scene.bands_chosen else self.bands.default_for(cube)
        self.scene.preferred = scene.mode
        self._layer_obj = None  # a new layer for _follow: fit the view unless the scene has one
        self._publishing = True
        try:
            self.state.set_cube(cube, layer.name, rgb.name if rgb is not None else None, bands)
        finally:
            self._publishing = False
        self._follow(cube, fit=scene.camera is None)
        QTimer.singleShot(50, self.slider_labels.update)  # after napari rebuilt its sliders
        if scene.camera is not None:
            self._restore_camera(scene.camera)
            QTimer.singleShot(0, lambda c=scene.camera: self._restore_camera(c))

    def refit(self) -> None:
        """Fit the view to the scene on screen (after a window resize)."""
        self.scene.fit(self.scene.rgb if self.scene.mode == "rgb" else self.scene.stack)

    def _restore_camera(self, view: tuple) -> None:
        cam = camera(self.viewer)
        if len(view[0]) >= 2:
            cam.center, cam.zoom = view[0], view[1]

    def _follow(self, cube: Any, *_: Any, fit: bool | None = None) -> None:
        """The shared cube changed (here, or in another dock): show its scene, its ground truth."""
        if self._publishing or cube is None:
            return
        name = self.state.cube_layer
        if name not in self.viewer.layers:
            return
        layer = self.viewer.layers[name]
        new_layer = layer is not self._layer_obj
        rgb = rgb_layer_for(self.viewer, layer, cube)
        self._layer_obj, self._rgb_obj = layer, rgb
        self.scene.activate(cube, layer, rgb, fit=new_layer if fit is None else fit)
        gt = scene_ground_truth(self.viewer, cube, self.state)
        self.state.set_ground_truth(gt.name if gt is not None else None)
        self._show_cube(cube)

    def _on_dims(self, *_: Any) -> None:
        """The band label; on a stack of dates, the date slider chooses the cube (one scene a date)."""
        self._update_band_label()
        layer = self._layer_obj
        if layer is None or layer not in self.viewer.layers or layer.metadata.get("stack") is None:
            return
        cube = date_cube(self.viewer, layer)
        if cube is not None and cube is not self.state.cube and layer.name == self.state.cube_layer:
            self.state.set_cube(cube, layer.name, self.state.rgb_layer, self.state.band_selection)

    def _show_cube(self, cube: Cube | None) -> None:
        self._set_enabled()
        if cube is None:
            return
        self.info_label.setText(describe_cube(cube))
        self.bands.show_selection(self.state.band_selection)
        current = self._rgb_obj.metadata.get("rgb_bands") if self._rgb_obj is not None else None
        self.rgb_box.show_cube(cube, current)
        self._update_band_label()

    def _show_mode(self, mode: str) -> None:
        for b in (self.show_rgb, self.show_band):
            b.blockSignals(True)
        (self.show_rgb if mode == "rgb" else self.show_band).setChecked(True)
        for b in (self.show_rgb, self.show_band):
            b.blockSignals(False)
        self.slider_labels.schedule()

    # ---- the band under the slider
    def current_band(self) -> int | None:
        return band_under_slider(self.viewer, self.state)

    def _update_band_label(self, *_: Any) -> None:
        self.band_label.setText(band_line(self.viewer, self.state, short=True))

    def canvas_text(self) -> str:
        """The line written on the canvas: the band shown, or the composite's bands."""
        return canvas_line(self.viewer, self.state, self.scene.mode, self._rgb_obj)

    # ---- RGB
    def _rgb_ready(self, layer: Any) -> None:
        """A new composite is on screen: it is the scene's RGB layer; show it."""
        self._rgb_obj, self.state.rgb_layer = layer, layer.name
        self.scene.activate(self.state.cube, self._layer_obj, layer, fit=False)
        self.scene.set_mode("rgb")
        self.slider_labels.schedule()

    # ---- open a file
    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a cube", "", FILE_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path) -> Any:
        """Read ``path`` in a worker, then add its layers (GUI thread); the new cube becomes current."""
        self._begin()
        return start_function_worker(
            read_layers, str(path), on_returned=self._add_cube_layers, on_finished=self._end,
            desc=f"Reading {Path(path).name}",
        )

    def _add_cube_layers(self, layer_data: list[tuple[Any, dict, str]]) -> None:
        from napari.layers import Layer

        for i, (data, kwargs, kind) in enumerate(layer_data):  # the band stack first: it becomes the cube
            self.viewer.add_layer(Layer.create(data, kwargs, kind))
            if i == 0:  # on screen now: its RGB and ground truth join it (no "ground truth [1]")
                guarded(self.mgr.activate_pending)
        guarded(self.mgr.activate_pending)
