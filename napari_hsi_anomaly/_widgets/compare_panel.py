"""Compare detectors on the analyst's own labels (Detect dock): AUC and precision at t_anom per detector.

Labels: the ``my labels`` layer (Inspect's "Mark as anomaly") or else the chosen ground truth, with the
pixels marked normal (``extras["marked_normal"]``) as label 2 (then only marked pixels are evaluated;
``core.compare``). Every detector that needs no trained model is fitted on this scene in a worker.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtWidgets import QLabel, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from napari_hsi_anomaly._widgets.detect_layers import find_layer
from napari_hsi_anomaly._widgets.feedback_panel import LABELS_LAYER, analysed_cube
from napari_hsi_anomaly._widgets.workers import start_generator_worker

COLUMNS = ("detector", "AUC", "precision", "recall", "flagged", "s")


def user_labels(viewer: Any, state: Any, gt_name: str | None) -> np.ndarray | None:
    """``(rows, cols)`` uint8: 1 anomaly (``my labels`` or the ground truth), 2 marked normal."""
    cube = state.cube
    if cube is None:
        return None
    shape = (cube.rows, cube.cols)
    layer = find_layer(viewer, LABELS_LAYER) or (find_layer(viewer, gt_name) if gt_name else None)
    if layer is None or tuple(layer.data.shape) != shape:
        return None
    labels = (np.asarray(layer.data) > 0).astype(np.uint8)
    det = state.detection
    for mark in (getattr(det, "extras", {}) or {}).get("marked_normal", []) if det is not None else []:
        px = np.asarray(mark.pixels)
        keep = labels[px[:, 0], px[:, 1]] == 0
        labels[px[keep, 0], px[keep, 1]] = 2
    return labels


class ComparePanel(QWidget):
    """"Compare detectors on my labels" and its table."""

    def __init__(self, results: Any) -> None:
        super().__init__()
        self.results = results
        self.btn = QPushButton("Compare detectors on my labels")
        self.btn.setToolTip("Fit every detector that needs no model on this scene; AUC and precision at "
                            "t_anom against your labels (Mark as anomaly / normal in Inspect).")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setVisible(False)
        self.table.setMinimumHeight(120)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.btn)
        layout.addWidget(self.status)
        layout.addWidget(self.table)
        self.btn.clicked.connect(self.compare)
        self.rows: list = []
        self.names: list[str] | None = None  # None: every detector that needs no model
        self._worker: Any = None

    def compare(self) -> Any:
        from napari_hsi_anomaly.core.compare import iter_compare_detectors

        r = self.results
        labels = user_labels(r.viewer, r.state, r.gt_combo.currentText())
        if labels is None or not (labels == 1).any():
            self.status.setText(f"Mark anomalies first (Inspect: Mark as anomaly -> '{LABELS_LAYER}') or "
                                "choose a ground truth.")
            return None
        if self._worker is not None:
            return None
        cube = analysed_cube(r.state, r.state.detection)
        t = float(r.t_anom.value())
        self.btn.setEnabled(False)
        self.status.setText("Comparing detectors…")
        self._worker = True

        def finished() -> None:
            self._worker = None
            self.btn.setEnabled(True)

        worker = start_generator_worker(
            iter_compare_detectors, cube, labels, t, self.names, on_returned=self.show_rows,
            on_finished=finished,
            on_progress=lambda p: self.status.setText(getattr(p, "message", "")),
            on_error=lambda exc: self.status.setText(str(exc)), desc="compare detectors", progress_bar=False)
        if self._worker is True:
            self._worker = worker
        return worker

    def show_rows(self, rows: list) -> None:
        self.rows = list(rows)
        self.table.setRowCount(len(rows))
        for i, c in enumerate(rows):
            vals = (c.detector, f"{c.auc:.3f}", f"{c.precision:.3f}", f"{c.recall:.3f}", f"{c.flagged:,}",
                    f"{c.seconds:.1f}")
            for j, v in enumerate(vals):
                item = QTableWidgetItem(v if not c.error or j == 0 else ("-" if j < 5 else v))
                if c.error:
                    item.setToolTip(c.error)
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()
        self.table.setVisible(True)
        best = max((c for c in rows if c.auc == c.auc), key=lambda c: c.auc, default=None)
        self.status.setText(f"On your labels at t_anom {float(self.results.t_anom.value()):.2f}"
                            + (f": best AUC {best.detector} ({best.auc:.3f})." if best else "."))
