"""The Inspect dock: spectrum at a click, pins, band marker, regions table, camera, CSV."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import numpy as np
import pytest

from napari_hsi_anomaly.core.regions import flagged_regions

pytestmark = pytest.mark.gui
WAIT_MS = 120_000  # generous: the GUI suite must hold next to a CPU burner


@pytest.fixture
def inspect(make_napari_viewer, qtbot):
    from test_widget_detect import make_cube, score, setup_viewer

    from napari_hsi_anomaly._widgets.detect_widget import DetectWidget
    from napari_hsi_anomaly._widgets.inspect_widget import InspectWidget

    viewer = make_napari_viewer()
    cube, gt = make_cube()
    setup_viewer(viewer, cube)
    detect = DetectWidget(viewer)
    inspect = InspectWidget(viewer)
    qtbot.addWidget(detect)
    qtbot.addWidget(inspect)
    qtbot.waitUntil(lambda: inspect.stats is not None, timeout=WAIT_MS)  # scene statistics: a worker
    score(detect, qtbot, "rx")
    detect.t_anom.setValue(0.5)
    detect._commit_debounced.flush()
    inspect._refresh_debounced.flush()
    return viewer, detect, inspect, cube


def click(widget, viewer, position, drag: bool = False) -> None:
    """Drive the widget's mouse-drag callback like napari does: press, (moves), release."""
    event = SimpleNamespace(type="mouse_press", position=position, button=1)
    gen = widget._on_mouse(viewer, event)
    next(gen)
    if drag:
        event.type = "mouse_move"
        next(gen)
    event.type = "mouse_release"
    with pytest.raises(StopIteration):
        next(gen)


def test_click_plots_the_pixel_spectrum(inspect):
    viewer, detect, widget, cube = inspect
    assert widget._on_mouse in viewer.mouse_drag_callbacks
    # the viewer is 3-D (band stack): world position (band, row, col); pixel centres are integers
    click(widget, viewer, (2.0, 22.3, 31.6))
    assert widget.picked == (22, 32)
    x, y = widget.spectrum.line.get_data()
    np.testing.assert_allclose(x, cube.wavelengths)
    np.testing.assert_allclose(y, cube.data[:, 22, 32])
    assert f"score {detect.scores[22, 32]:.2f}" in widget.spectrum.ax.get_title()
    # scene median line and IQR band are drawn
    med = widget.spectrum.median_line.get_ydata()
    np.testing.assert_allclose(med, np.median(cube.data.reshape(cube.bands, -1), axis=1), rtol=0.02)
    # a drag is not a click; outside the cube is ignored
    click(widget, viewer, (0.0, 5.0, 5.0), drag=True)
    click(widget, viewer, (0.0, 60.0, 5.0))
    assert widget.picked == (22, 32)


def test_pins_keep_spectra(inspect):
    viewer, detect, widget, cube = inspect
    click(widget, viewer, (0, 22, 32))
    assert widget.spectrum.pin()
    click(widget, viewer, (0, 3, 4))
    widget.pin_btn.click()
    pins = widget.spectrum.pins
    assert len(pins) == 2 and pins[0].get_color() != pins[1].get_color()
    np.testing.assert_allclose(pins[0].get_ydata(), cube.data[:, 22, 32])
    np.testing.assert_allclose(pins[1].get_ydata(), cube.data[:, 3, 4])
    widget.clear_btn.click()
    assert widget.spectrum.pins == []


def test_band_marker_follows_dims(inspect):
    viewer, detect, widget, cube = inspect
    viewer.dims.set_current_step(0, 4)
    assert widget.spectrum.band_line.get_visible()
    assert widget.spectrum.band_line.get_xdata()[0] == pytest.approx(cube.wavelengths[4])


def test_region_table_selection_and_csv(inspect, tmp_path):
    viewer, detect, widget, cube = inspect
    expected = flagged_regions(detect.scores >= np.float32(0.5), detect.scores)
    assert [r.area for r in widget.regions] == [r.area for r in expected]
    assert widget.table.rowCount() == len(expected) > 0
    top = widget.regions[0]
    assert top.area >= 30 and 17 <= top.bbox[0] <= 20  # the bright square (rows 20-25) is the top region
    assert widget.table.item(0, 1).text() == f"{top.area:,}"
    widget.select_region(0)
    assert widget.selected_region() == top
    np.testing.assert_allclose(viewer.camera.center[-2:], top.centroid)
    box = viewer.layers["selected region"].data[0]  # its bounding box is outlined
    r0, r1, c0, c1 = top.bbox
    assert box[:, 0].min() < r0 and box[:, 0].max() > r1 - 1
    assert box[:, 1].min() < c0 and box[:, 1].max() > c1 - 1
    # its mean spectrum and the per-band deviation: every band of the square stands out
    x, y = widget.spectrum.line.get_data()
    labels = widget.label_image == top.label
    np.testing.assert_allclose(y, cube.data[:, labels].mean(axis=1), rtol=1e-5)
    assert widget.bars.values.shape == (cube.bands,) and np.all(widget.bars.values > 3)

    # numeric sorting (not text): by area, largest first; selection still maps to the right region
    from qtpy.QtCore import Qt

    widget.table.sortByColumn(1, Qt.SortOrder.DescendingOrder)
    areas = [int(widget.table.item(i, 1).text().replace(",", ""))
             for i in range(widget.table.rowCount())]
    assert areas == sorted(areas, reverse=True)
    widget.table.selectRow(widget.table.rowCount() - 1)
    assert widget.selected_region().area == areas[-1]
    widget.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)

    out = widget.export_csv(tmp_path / "regions.csv")
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(expected) and int(rows[0]["area_px"]) == top.area


def test_table_follows_the_mask(inspect, qtbot):
    viewer, detect, widget, cube = inspect
    n_before = sum(r.area for r in widget.regions)
    detect.t_anom.setValue(0.9)
    detect._commit_debounced.flush()
    widget._refresh_debounced.flush()
    n_after = sum(r.area for r in widget.regions)
    assert n_after == int(np.count_nonzero(detect.scores >= np.float32(0.9))) < n_before
    assert widget.label_image is widget.state.mask_labels  # labelled once, by the Detect dock


def test_region_bars_use_per_band_reconstruction_error(inspect):
    viewer, detect, widget, cube = inspect
    top = widget.regions[0]
    per_band = np.ones((cube.bands, cube.rows, cube.cols), dtype=np.float32)
    per_band[2][widget.label_image == top.label] = 7.0  # the region is badly rebuilt in band 2
    detect.detection.extras["recon_per_band"] = per_band
    widget.table.clearSelection()
    widget.select_region(0)
    np.testing.assert_allclose(widget.bars.values, np.where(np.arange(cube.bands) == 2, 7.0, 1.0))
    assert "recon" in widget.bars.ax.get_title()


def test_csv_export_refuses_a_bad_path(inspect, tmp_path, monkeypatch):
    """The scene's own file, another extension or a missing folder: one notification, nothing
    written, the regions kept."""
    import napari.utils.notifications as notifications

    viewer, detect, widget, cube = inspect
    shown: list[str] = []
    monkeypatch.setattr(notifications, "show_error", lambda msg, *a, **k: shown.append(str(msg)))
    regions = list(widget.regions)
    src = tmp_path / "scene.csv"  # the scene's own file (a CSV name, so only the input check refuses)
    src.write_text("the scene\n")
    widget.cube.source = src
    assert widget.export_csv(src) is None
    assert src.read_text() == "the scene\n"
    assert len(shown) == 1 and "overwrite the input" in shown[0]
    assert widget.export_csv(tmp_path / "regions.txt") is None and "unknown extension" in shown[1]
    assert widget.export_csv(tmp_path / "missing" / "r.csv") is None and "does not exist" in shown[2]
    assert len(shown) == 3 and not (tmp_path / "regions.txt").exists()
    assert widget.regions == regions and widget.table.rowCount() > 0
    out = widget.export_csv(tmp_path / "ok.csv")  # a good path still works afterwards
    assert out is not None and out.read_text().count("\n") == len(regions) + 1


def test_export_spectra_writes_pins_region_and_scene(inspect, tmp_path, monkeypatch):
    """Export spectra…: one row per band; the pinned pixels (named by row/col), the selected region's
    mean and the scene median/quartiles, in the plot's units; confirmed with the path, a bad path
    refused with one notification."""
    import napari.utils.notifications as notifications

    viewer, detect, widget, cube = inspect
    infos: list[str] = []
    errors: list[str] = []
    monkeypatch.setattr(notifications, "show_info", lambda msg, *a, **k: infos.append(str(msg)))
    monkeypatch.setattr(notifications, "show_error", lambda msg, *a, **k: errors.append(str(msg)))
    assert widget.spectra_btn.isVisibleTo(widget) and widget.spectra_btn.text() == "Export spectra…"
    click(widget, viewer, (0, 22, 32))
    widget.pin_btn.click()
    click(widget, viewer, (0, 3, 4))
    widget.pin_btn.click()
    widget.select_region(0)
    top = widget.regions[0]

    out = widget.export_spectra(tmp_path / "spectra.csv")
    assert out is not None and infos == [f"Saved 6 spectra (CSV) to {out}"]
    with out.open(newline="") as fh:
        rows = list(csv.reader(fh))
    head, body = rows[0], rows[1:]
    r, c = top.centroid
    assert head == ["band", "band_name", "wavelength_nm", "pin 1: pixel row 22 col 32",
                    "pin 2: pixel row 3 col 4",
                    f"region #1 mean of {top.area} px at row {r:.1f} col {c:.1f}",
                    "scene median", "scene q25", "scene q75"]
    assert len(body) == cube.bands and [int(b[0]) for b in body] == list(range(1, cube.bands + 1))
    np.testing.assert_allclose([float(b[2]) for b in body], cube.wavelengths)
    values = np.array([[float(v) for v in b[3:]] for b in body], dtype=np.float32)
    full = cube.as_float32()
    np.testing.assert_array_equal(values[:, 0], full[:, 22, 32])
    np.testing.assert_array_equal(values[:, 1], full[:, 3, 4])
    inside = widget.label_image == top.label
    np.testing.assert_allclose(values[:, 2], full[:, inside].mean(axis=1), rtol=1e-5)
    np.testing.assert_array_equal(values[:, 3:].T, np.stack(widget.stats))

    assert widget.export_spectra(tmp_path / "spectra.txt") is None  # refused before writing
    assert len(errors) == 1 and "unknown extension" in errors[0]
    assert not (tmp_path / "spectra.txt").exists()
    widget.clear_btn.click()  # no pins: the region and the scene remain
    out = widget.export_spectra(tmp_path / "again.csv")
    assert out is not None and out.read_text().splitlines()[0].count("pin") == 0
