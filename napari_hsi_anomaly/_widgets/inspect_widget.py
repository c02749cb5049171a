"""The Inspect dock: the spectrum under a click (with pins) and the table of flagged regions.

A click (not a drag) on the canvas plots that pixel's spectrum against the scene median and
inter-quartile band; selecting a region row centres the view on it and shows which bands make it
stand out (robust deviation per band, or per-band reconstruction error when the detector has it).
Parts: ``spectrum_panel.SpectrumPanel``, ``region_table.RegionTable``, ``plots.BandBars``. Another
scene empties everything at once; the scene statistics are computed in a worker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtWidgets import QFileDialog, QWidget
from superqt.utils import qdebounced

from napari_hsi_anomaly._widgets.band_slider import band_axis, current_band
from napari_hsi_anomaly._widgets.detect_layers import SCORE_LAYER, find_layer
from napari_hsi_anomaly._widgets.plots import BandBars
from napari_hsi_anomaly._widgets.region_table import MAX_TABLE_ROWS, RegionTable  # noqa: F401
from napari_hsi_anomaly._widgets.region_view import SELECTION_LAYER, go_to_region, highlight_region
from napari_hsi_anomaly._widgets.scroll import scroll_dock
from napari_hsi_anomaly._widgets.spectrum_panel import SpectrumPanel
from napari_hsi_anomaly._widgets.state import get_state
from napari_hsi_anomaly._widgets.workers import Generation, notify_error, notify_saved, start_function_worker
from napari_hsi_anomaly.core.regions import (
    RegionInfo,
    band_deviation,
    flagged_regions,
    label_mask,
    region_band_ratio,
    region_spectrum,
    regions_to_csv,
    scene_spectrum_stats,
)
from napari_hsi_anomaly.core.spectra_export import pixel_label


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
        self._stats_gen = Generation()
        self._refresh_debounced = qdebounced(self.refresh_regions, timeout=200)
        self._build()
        self.state.cube_changed.connect(self._on_cube_changed)
        self.state.mask_changed.connect(self._on_mask_changed)
        self.state.detection_changed.connect(self._on_mask_changed)
        self.viewer.mouse_drag_callbacks.append(self._on_mouse)
        self.viewer.dims.events.current_step.connect(self._on_dims)
        self._pins_back: list | None = None  # the pins of the scene coming back on screen
        if self.state.scenes is not None:
            from napari_hsi_anomaly._widgets.workers import connect_alive

            connect_alive(self, self.state.scenes.leaving, self._keep_pins)
            connect_alive(self, self.state.scenes.activated, self._bring_pins)
        self._on_cube_changed(self.state.cube)
        if self.state.mask is not None:
            self.refresh_regions()

    def _build(self) -> None:
        theme = str(getattr(self.viewer, "theme", "dark"))
        self.panel = SpectrumPanel(theme, region=self._region_column)
        self.hint, self.spectrum = self.panel.hint, self.panel.spectrum
        self.pin_btn, self.clear_btn = self.panel.pin_btn, self.panel.clear_btn
        self.spectra_btn, self.export_spectra = self.panel.export_btn, self.panel.export_spectra
        self.regions_view = RegionTable(self._on_region_selected, self._export_dialog)
        self.table, self.table_label, self.csv_btn = (
            self.regions_view.table, self.regions_view.label, self.regions_view.csv_btn)
        self.bars = BandBars(height_px=150, theme=theme)
        self.bars.hide()  # until a region is chosen
        from napari_hsi_anomaly._widgets.feedback_panel import FeedbackPanel

        self.analyst = FeedbackPanel(self.viewer, self.state, theme)  # mark normal/anomaly, why (issue 23)
        scroll_dock(self, [self.panel, self.regions_view, self.analyst, self.bars], margins=4)

    # ---------------------------------------------------------------- cube
    def _on_cube_changed(self, cube: Any) -> None:
        """Another scene: empty the plots, pins, table and selection now; scene statistics in a worker."""
        self.cube, self.stats, self.picked = cube, None, None
        self.regions, self.label_image = [], None
        self._refresh_debounced.cancel()
        self.regions_view.clear("Flagged regions: score first.")
        self.bars.clear()
        self.bars.hide()
        layer = find_layer(self.viewer, SELECTION_LAYER)
        if layer is not None:
            self.viewer.layers.remove(layer)
        self.panel.set_cube(cube)
        if cube is None:
            return
        self._restore_pins()
        token = self._stats_gen.next()

        def done(stats: tuple) -> None:
            if self._stats_gen.is_current(token) and self.cube is cube:
                self.stats = stats
                self.panel.set_scene(stats)

        start_function_worker(scene_spectrum_stats, cube, on_returned=done, desc="Scene spectrum")
        self._on_dims()

    # ---------------------------------------------------------------- pins per scene
    def _keep_pins(self, scene: Any) -> None:
        scene.extra["inspect_pins"] = self.panel.pins_state()

    def _bring_pins(self, scene: Any) -> None:
        """A scene comes back: its pins are drawn again (now, or when its cube is published)."""
        self._pins_back = list(scene.extra.get("inspect_pins") or [])
        self._restore_pins()

    def _restore_pins(self) -> None:
        if self._pins_back and self.cube is not None and self.panel.restore_pins(self._pins_back,
                                                                                  self.cube.bands):
            self._pins_back = None

    def _band_labels(self) -> list[str]:
        cube = self.cube
        if cube.wavelengths is not None and np.isfinite(cube.wavelengths).all():
            return [f"{w:.0f}" for w in cube.wavelengths]
        return [str(i + 1) for i in range(cube.bands)]

    def _on_dims(self, *_: Any) -> None:
        """Mark the band the viewer shows when the band stack is displayed."""
        layer = find_layer(self.viewer, self.state.cube_layer or "")
        if self.cube is None or layer is None or band_axis(self.viewer, layer) in self.viewer.dims.displayed:
            self.spectrum.set_band(None)
            return
        self.spectrum.set_band(current_band(self.viewer, layer, self.cube.bands))

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
        shape = None if self.cube is None else (self.cube.rows, self.cube.cols)
        if layer is not None and layer.data.shape == shape:
            return layer.data
        det = self.state.detection
        return None if det is None else det.score_map

    def show_pixel(self, row: int, col: int) -> np.ndarray:
        """Plot the spectrum of pixel (row, col) in ``cube.as_float32`` units; returns it."""
        spec = self.cube.as_float32(slice(row, row + 1), slice(col, col + 1))[:, 0, 0]
        scores = self.current_scores()
        has = scores is not None and scores.shape == (self.cube.rows, self.cube.cols)
        score = f", score {float(scores[row, col]):.2f}" if has else ""
        short = f"({row}, {col})" + (f" {float(scores[row, col]):.2f}" if has else "")
        self.picked = (row, col)
        self.panel.show_spectrum(spec, short, f"pixel ({row}, {col}){score}", pixel_label(row, col))
        self.analyst.select_pixel(row, col, self.label_image)
        return spec

    # ---------------------------------------------------------------- regions
    def _on_mask_changed(self, *_: Any) -> None:
        self._refresh_debounced()

    def refresh_regions(self) -> None:
        """Rebuild the table from the shared mask and the current scores."""
        mask, scores = self.state.mask, self.current_scores()
        shape = None if self.cube is None else (self.cube.rows, self.cube.cols)
        if mask is None or scores is None or not np.shape(mask) == np.shape(scores) == shape:
            self.regions, self.label_image = [], None
            self.regions_view.clear("Flagged regions: score first.")
            return
        labels = self.state.mask_labels
        if labels is None or np.shape(labels) != np.shape(mask):  # not labelled by the Detect dock
            labels, _ = label_mask(mask)
        self.label_image = labels
        self.regions = flagged_regions(mask, scores, label_image=self.label_image)
        self.regions_view.set_regions(self.regions)

    def selected_region(self) -> RegionInfo | None:
        index = self.regions_view.selected_index()
        return None if index is None else self.regions[index]

    def select_region(self, index: int) -> None:
        """Select the region at ``index`` of ``self.regions`` (its table row)."""
        self.regions_view.select_index(index)

    def _on_region_selected(self, index: int) -> None:
        region = self.regions[index]
        self.go_to(region)
        self.highlight(region)
        self.show_region(region)
        self.analyst.select_region(region.label, self.label_image, index + 1)

    def _region_name(self, region: RegionInfo) -> str:
        r, c = region.centroid
        return f"region #{self.regions.index(region) + 1} mean of {region.area} px at row {r:.1f} col {c:.1f}"

    def _region_column(self) -> tuple[str, np.ndarray] | None:
        """The selected region's (name, mean spectrum) for "Export spectra…"; None without one."""
        region = self.selected_region()
        if region is None or self.label_image is None:
            return None
        return self._region_name(region), region_spectrum(self.cube, self.label_image, region.label)

    def highlight(self, region: RegionInfo) -> Any:
        """Outline the region's bounding box (one yellow rectangle in a Shapes layer)."""
        return highlight_region(self.viewer, region, self._reference_layer())

    def go_to(self, region: RegionInfo) -> None:
        """Centre the view on the region's centroid and zoom to a few times its bounding box."""
        go_to_region(self.viewer, region, self._reference_layer(), (self.cube.rows, self.cube.cols))

    def show_region(self, region: RegionInfo) -> np.ndarray:
        """Plot the region's mean spectrum and which bands make it stand out; returns the mean."""
        mean = region_spectrum(self.cube, self.label_image, region.label)
        rank = self.regions.index(region) + 1
        label = f"region #{rank} mean ({region.area:,} px)"
        self.panel.show_spectrum(mean, f"region #{rank}", f"{label}, max {region.max_score:.2f}",
                                 self._region_name(region))
        recon = self._recon_per_band(region)
        if recon is not None:
            self.bars.set_values(recon, self._band_labels(), "error / scene",
                                 title=f"region #{rank}: recon. error per band", highlight=2.0)
        elif self.stats is not None:
            median, q25, q75 = self.stats
            dev = band_deviation(mean, median, q75 - q25)
            self.bars.set_values(dev, self._band_labels(), "robust z",
                                 title=f"region #{rank} vs scene, per band")
        self.bars.setVisible(recon is not None or self.stats is not None)
        return mean

    def _recon_per_band(self, region: RegionInfo) -> np.ndarray | None:
        """Region's mean per-band reconstruction error over the scene's median, when available."""
        det = self.state.detection
        per_band = None if det is None else getattr(det, "extras", {}).get("recon_per_band")
        return region_band_ratio(per_band, self.label_image, region)

    # ---------------------------------------------------------------- export
    def _export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export regions", "flagged_regions.csv", "CSV (*.csv)")
        if path:
            self.export_csv(path)

    def export_csv(self, path: str | Path) -> Path | None:
        """Write every flagged region (not only the rows shown) to CSV. A bad path (the scene's own
        file, not ``.csv``, a folder missing or not writable) is one notification before anything is
        written; the table stays as it is."""
        from napari_hsi_anomaly.core.errors import HsiAnomalyError
        from napari_hsi_anomaly.core.guards import check_output_path

        source = getattr(self.cube, "source", None)
        try:
            check_output_path(path, inputs=[source] if source else [], exts=(".csv",), what="Export CSV")
            out = regions_to_csv(self.regions, path, georef=getattr(self.cube, "georef", None))
        except (HsiAnomalyError, OSError) as exc:
            notify_error(exc)
            return None
        self.table_label.setText(f"Saved {len(self.regions):,} regions to {out}.")
        notify_saved(f"{len(self.regions):,} regions (CSV)", out)
        return out

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        if self._on_mouse in self.viewer.mouse_drag_callbacks:
            self.viewer.mouse_drag_callbacks.remove(self._on_mouse)
        super().closeEvent(event)
