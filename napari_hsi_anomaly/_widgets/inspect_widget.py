"""The Inspect dock: the spectrum under a click (with pins) and the table of flagged regions.

A click (not a drag) on the canvas plots that pixel's spectrum against the scene median and
inter-quartile band; selecting a region row centres the view on it and shows which bands make it
stand out (robust deviation per band, or per-band reconstruction error when the detector has it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import qdebounced

from napari_hsi_anomaly._widgets.detect_widget import SCORE_LAYER, find_layer
from napari_hsi_anomaly._widgets.plots import BandBars, SpectrumPlot
from napari_hsi_anomaly._widgets.state import get_state
from napari_hsi_anomaly._widgets.workers import notify_error
from napari_hsi_anomaly.core.regions import (
    RegionInfo,
    band_deviation,
    flagged_regions,
    label_mask,
    region_spectrum,
    regions_to_csv,
    scene_spectrum_stats,
)

MAX_TABLE_ROWS = 500
SELECTION_LAYER = "selected region"
COLUMNS = ("#", "area px", "mean", "max", "row", "col")
_REGION_ROLE = Qt.ItemDataRole.UserRole
_SORT_ROLE = Qt.ItemDataRole.UserRole + 1


class _NumItem(QTableWidgetItem):
    """A table item that shows formatted text but sorts by its number."""

    def __lt__(self, other: QTableWidgetItem) -> bool:
        mine, theirs = self.data(_SORT_ROLE), other.data(_SORT_ROLE)
        if mine is None or theirs is None:
            return super().__lt__(other)
        return float(mine) < float(theirs)


def _num_item(value: float, fmt: str) -> QTableWidgetItem:
    """A table item that sorts numerically and shows ``value`` formatted."""
    item = _NumItem(format(value, fmt))
    item.setData(_SORT_ROLE, float(value))
    item.setTextAlignment(int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter))
    item.setFlags(Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled)
    return item


class InspectWidget(QWidget):
    """Spectrum at a click (pins, scene median/IQR, band marker) and the flagged-regions table."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.state = get_state(napari_viewer)
        self.cube: Any = None
        self.stats: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.regions: list[RegionInfo] = []
        self.label_image: np.ndarray | None = None
        self.picked: tuple[int, int] | None = None
        self._build()
        self._refresh_debounced = qdebounced(self.refresh_regions, timeout=200)
        self.state.cube_changed.connect(self._on_cube_changed)
        self.state.mask_changed.connect(self._on_mask_changed)
        self.state.detection_changed.connect(self._on_mask_changed)
        self.viewer.mouse_drag_callbacks.append(self._on_mouse)
        self.viewer.dims.events.current_step.connect(self._on_dims)
        self._on_cube_changed(self.state.cube)
        if self.state.mask is not None:
            self.refresh_regions()

    # ---------------------------------------------------------------- layout
    def _build(self) -> None:
        theme = str(getattr(self.viewer, "theme", "dark"))
        self.hint = QLabel("Click a pixel to see its spectrum.")
        self.hint.setWordWrap(True)
        self.spectrum = SpectrumPlot(theme=theme)
        self.pin_btn = QPushButton("Pin")
        self.pin_btn.setToolTip("keep the current spectrum for comparison")
        self.clear_btn = QPushButton("Clear pins")
        row = QHBoxLayout()
        row.addWidget(self.pin_btn)
        row.addWidget(self.clear_btn)

        self.table_label = QLabel("Flagged regions: score first.")
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setDefaultSectionSize(20)
        self.table.setMinimumHeight(110)
        self.table.setMaximumHeight(200)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.csv_btn = QPushButton("Export table (CSV)…")
        self.bars = BandBars(theme=theme)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        layout.addWidget(self.hint)
        layout.addWidget(self.spectrum)
        layout.addLayout(row)
        layout.addWidget(self.table_label)
        layout.addWidget(self.table)
        layout.addWidget(self.csv_btn)
        layout.addWidget(self.bars)
        layout.addStretch(1)

        self.pin_btn.clicked.connect(self.spectrum.pin)
        self.clear_btn.clicked.connect(self.spectrum.clear_pins)
        self.table.itemSelectionChanged.connect(self._on_row_selected)
        self.csv_btn.clicked.connect(self._export_dialog)

    # ---------------------------------------------------------------- cube
    def _on_cube_changed(self, cube: Any) -> None:
        self.cube = cube
        self.stats = None
        self.picked = None
        if cube is None:
            return
        if cube.wavelengths is not None and np.isfinite(cube.wavelengths).all():
            self.spectrum.set_axis(cube.wavelengths, "wavelength (nm)")
        else:
            self.spectrum.set_axis(np.arange(cube.bands, dtype=float), "band")
        self.stats = scene_spectrum_stats(cube)
        self.spectrum.set_scene(*self.stats)
        self.bars.clear()
        self._refresh_debounced()  # the table belongs to the previous cube until re-scored
        unit = f" ({cube.units})" if cube.units else ""
        self.spectrum.ax.set_ylabel("value" + unit)
        self._on_dims()

    def _band_labels(self) -> list[str]:
        cube = self.cube
        if cube.wavelengths is not None and np.isfinite(cube.wavelengths).all():
            return [f"{w:.0f}" for w in cube.wavelengths]
        return [str(i) for i in range(cube.bands)]

    def _on_dims(self, *_: Any) -> None:
        """Mark the band the viewer shows when the band stack is displayed."""
        layer = find_layer(self.viewer, self.state.cube_layer or "")
        dims = self.viewer.dims
        if self.cube is None or layer is None or layer.ndim != 3 or 0 in dims.displayed:
            self.spectrum.set_band(None)
            return
        band = int(round(layer.world_to_data(np.asarray(dims.point)[-3:])[0]))
        self.spectrum.set_band(band if 0 <= band < self.cube.bands else None)

    # ---------------------------------------------------------------- clicks
    def _reference_layer(self) -> Any:
        for name in (self.state.cube_layer, self.state.rgb_layer, SCORE_LAYER):
            layer = find_layer(self.viewer, name or "")
            if layer is not None:
                return layer
        return None

    def world_to_pixel(self, position: Any) -> tuple[int, int] | None:
        """(row, col) of the cube pixel under a world ``position``, or None outside the cube."""
        if self.cube is None:
            return None
        layer = self._reference_layer()
        pos = np.asarray(position, dtype=float)
        if layer is not None:
            nd = layer.ndim
            pos = pos[-nd:] if pos.size >= nd else np.r_[np.zeros(nd - pos.size), pos]
            data = np.asarray(layer.world_to_data(pos), dtype=float)
        else:
            data = pos
        r, c = (int(np.floor(v + 0.5)) for v in data[-2:])
        if 0 <= r < self.cube.rows and 0 <= c < self.cube.cols:
            return r, c
        return None

    def _on_mouse(self, viewer: Any, event: Any):
        """Mouse-drag callback: a left click without a drag picks a pixel."""
        if getattr(event, "button", 1) != 1 or event.type != "mouse_press":
            return
        position = tuple(event.position)
        dragged = False
        yield
        while event.type == "mouse_move":
            dragged = True
            yield
        if not dragged:
            pixel = self.world_to_pixel(position)
            if pixel is not None:
                self.show_pixel(*pixel)

    def current_scores(self) -> np.ndarray | None:
        """The score map shown in the viewer (after p_min moves), else the detection's."""
        layer = find_layer(self.viewer, SCORE_LAYER)
        if layer is not None and self.cube is not None and layer.data.shape == (self.cube.rows,
                                                                                   self.cube.cols):
            return layer.data
        det = self.state.detection
        return None if det is None else det.score_map

    def show_pixel(self, row: int, col: int) -> np.ndarray:
        """Plot the spectrum of pixel (row, col) in ``cube.as_float32`` units; returns it."""
        spec = self.cube.as_float32(slice(row, row + 1), slice(col, col + 1))[:, 0, 0]
        scores = self.current_scores()
        score = ""
        if scores is not None and scores.shape == (self.cube.rows, self.cube.cols):
            score = f", score {float(scores[row, col]):.2f}"
        label = f"({row}, {col}){score}"
        short = f"({row}, {col})" + (f" {float(scores[row, col]):.2f}" if score else "")
        self.picked = (row, col)
        self.spectrum.set_spectrum(spec, short, title=f"pixel {label}")
        self.hint.setText("Pin keeps this spectrum for comparison.")
        return spec

    # ---------------------------------------------------------------- regions
    def _on_mask_changed(self, *_: Any) -> None:
        self._refresh_debounced()

    def refresh_regions(self) -> None:
        """Rebuild the table from the shared mask and the current scores."""
        mask, scores = self.state.mask, self.current_scores()
        self.table.setSortingEnabled(False)
        self.table.clearContents()
        self.table.setRowCount(0)
        shape = None if self.cube is None else (self.cube.rows, self.cube.cols)
        if mask is None or scores is None or not np.shape(mask) == np.shape(scores) == shape:
            self.regions, self.label_image = [], None
            self.table_label.setText("Flagged regions: score first.")
            self.table.setSortingEnabled(True)
            return
        labels = self.state.mask_labels
        if labels is None or np.shape(labels) != np.shape(mask):  # not labelled by the Detect dock
            labels, _ = label_mask(mask)
        self.label_image = labels
        self.regions = flagged_regions(mask, scores, label_image=self.label_image)
        shown = self.regions[:MAX_TABLE_ROWS]
        self.table.setRowCount(len(shown))
        for i, r in enumerate(shown):
            items = (
                _num_item(i + 1, "d"), _num_item(r.area, ",d"), _num_item(r.mean_score, ".3f"),
                _num_item(r.max_score, ".3f"), _num_item(r.centroid[0], ".1f"),
                _num_item(r.centroid[1], ".1f"),
            )
            for j, item in enumerate(items):
                item.setData(_REGION_ROLE, i)
                self.table.setItem(i, j, item)
        self.table.setSortingEnabled(True)
        n = len(self.regions)
        more = f" (top {len(shown)} by max score shown)" if n > len(shown) else ""
        self.table_label.setText(f"Flagged regions: {n:,}{more}. Select one to go there.")

    def selected_region(self) -> RegionInfo | None:
        items = self.table.selectedItems()
        if not items:
            return None
        return self.regions[int(items[0].data(_REGION_ROLE))]

    def select_region(self, index: int) -> None:
        """Select the region at ``index`` of ``self.regions`` (its table row)."""
        for row in range(self.table.rowCount()):
            if int(self.table.item(row, 0).data(_REGION_ROLE)) == index:
                self.table.selectRow(row)
                return
        raise IndexError(f"region {index} is not in the table")

    def _on_row_selected(self) -> None:
        region = self.selected_region()
        if region is None:
            return
        self.go_to(region)
        self.highlight(region)
        self.show_region(region)

    def highlight(self, region: RegionInfo) -> Any:
        """Outline the region's bounding box (one yellow rectangle in a Shapes layer)."""
        r0, r1, c0, c1 = region.bbox
        pad = 1.0
        rect = np.array([[r0 - 0.5 - pad, c0 - 0.5 - pad], [r1 - 0.5 + pad, c1 - 0.5 + pad]])
        width = max(0.4, max(r1 - r0, c1 - c0) / 25)
        layer = find_layer(self.viewer, SELECTION_LAYER)
        if layer is None:
            ref = self._reference_layer()
            kw = ({"scale": tuple(ref.scale)[-2:], "translate": tuple(ref.translate)[-2:]}
                  if ref is not None else {})
            selected = set(self.viewer.layers.selection)
            layer = self.viewer.add_shapes(
                [rect], shape_type="rectangle", edge_color="yellow", face_color="transparent",
                edge_width=width, name=SELECTION_LAYER, **kw,
            )
            if selected:
                self.viewer.layers.selection = selected
        else:
            layer.data = [rect]
            layer.shape_type = ["rectangle"]
            layer.edge_width = [width]
            layer.edge_color = "yellow"
            layer.face_color = "transparent"
        return layer

    def go_to(self, region: RegionInfo) -> None:
        """Centre the view on the region's centroid and zoom to a few times its bounding box."""
        layer = self._reference_layer()
        row, col = region.centroid
        r0, r1, c0, c1 = region.bbox
        if layer is not None:
            lead = [0.0] * (layer.ndim - 2)
            centre = np.asarray(layer.data_to_world([*lead, row, col]))[-2:]
            scale = np.abs(np.asarray(layer.scale)[-2:])
        else:
            centre, scale = np.array([row, col]), np.ones(2)
        self.viewer.camera.center = tuple(float(v) for v in centre)
        extent = max((r1 - r0) * scale[0], (c1 - c0) * scale[1], 16 * float(scale.min())) * 4
        size = getattr(self.viewer, "_canvas_size", None) or (600, 800)
        whole = min(size[0] / (self.cube.rows * scale[0]), size[1] / (self.cube.cols * scale[1]))
        self.viewer.camera.zoom = float(np.clip(min(size) / extent, whole, max(whole, 16.0)))

    def show_region(self, region: RegionInfo) -> np.ndarray:
        """Plot the region's mean spectrum and which bands make it stand out; returns the mean."""
        mean = region_spectrum(self.cube, self.label_image, region.label)
        rank = self.regions.index(region) + 1
        label = f"region #{rank} mean ({region.area:,} px)"
        self.spectrum.set_spectrum(mean, f"region #{rank}",
                                   title=f"{label}, max {region.max_score:.2f}")
        recon = self._recon_per_band(region)
        if recon is not None:
            self.bars.set_values(recon, self._band_labels(), "error / scene",
                                 title=f"region #{rank}: recon. error per band",
                                 highlight=2.0)
        else:
            median, q25, q75 = self.stats
            dev = band_deviation(mean, median, q75 - q25)
            self.bars.set_values(dev, self._band_labels(), "robust z",
                                 title=f"region #{rank} vs scene, per band")
        return mean

    def _recon_per_band(self, region: RegionInfo) -> np.ndarray | None:
        """Region's mean per-band reconstruction error over the scene's median, when available."""
        det = self.state.detection
        per_band = None if det is None else getattr(det, "extras", {}).get("recon_per_band")
        if per_band is None or np.shape(per_band)[1:] != self.label_image.shape:
            return None
        r0, r1, c0, c1 = region.bbox
        inside = self.label_image[r0:r1, c0:c1] == region.label
        block = np.asarray(per_band[:, r0:r1, c0:c1], dtype=np.float64)[:, inside]
        step = max(1, int(np.sqrt(per_band[0].size / 20_000)))
        scene = np.nanmedian(np.asarray(per_band[:, ::step, ::step], dtype=np.float64), axis=(1, 2))
        return np.nanmean(block, axis=1) / np.maximum(scene, 1e-12)

    # ---------------------------------------------------------------- export
    def _export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export regions", "flagged_regions.csv",
                                              "CSV (*.csv)")
        if path:
            self.export_csv(path)

    def export_csv(self, path: str | Path) -> Path | None:
        """Write every flagged region (not only the rows shown) to CSV."""
        try:
            out = regions_to_csv(self.regions, path)
        except OSError as exc:
            notify_error(exc)
            return None
        self.table_label.setText(f"Saved {len(self.regions):,} regions to {out}.")
        return out

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        if self._on_mouse in self.viewer.mouse_drag_callbacks:
            self.viewer.mouse_drag_callbacks.remove(self._on_mouse)
        super().closeEvent(event)
