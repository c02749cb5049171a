"""The Inspect dock's analyst section: "Mark as normal", "Mark as anomaly", Undo, and "Why is this flagged".

What is marked: the drawn polygons of the active Shapes layer (napari's ``to_masks``) when there are
any, else the current selection: a region chosen in the table, or a click (the whole flagged region
under it, or the pixel when it is not flagged). "Mark as normal" refits the detection's normal model
(``core.feedback.iter_mark_normal``) in a worker and publishes the new detection through the shared
state (the Detect dock shows it: heatmap, mask, regions, histogram); Undo publishes the previous one.
"Mark as anomaly" paints the pixels into the Labels layer ``LABELS_LAYER`` (1 = anomaly), a ground truth
the Detect dock can use and compare detectors on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from napari_hsi_anomaly._widgets.detect_layers import find_layer
from napari_hsi_anomaly._widgets.why_panel import WhyPanel
from napari_hsi_anomaly._widgets.workers import start_generator_worker
from napari_hsi_anomaly.core.feedback import FeedbackStack

LABELS_LAYER = "my labels"
SELECTION_LAYER = "selected region"  # the Inspect dock's outline (never a drawn selection)


def analysed_cube(state: Any, detection: Any) -> Any:
    """The cube the detection was scored on (band selection applied), else the state's."""
    cube = getattr(detection, "extras", {}).get("analysed_cube")
    return cube if cube is not None else state.analysis_cube()


class FeedbackPanel(QWidget):
    """The three buttons, a status line, and the "Why is this flagged" section under them."""

    def __init__(self, viewer: Any, state: Any, theme: str = "dark") -> None:
        super().__init__()
        self.viewer, self.state = viewer, state
        self.stack = FeedbackStack()
        self.selection: np.ndarray | None = None  # (rows, cols) bool
        self.what = ""
        self._worker: Any = None
        self.normal_btn = QPushButton("Mark as normal")
        self.normal_btn.setToolTip("The selected pixels join the normal population (detector refitted).")
        self.anomaly_btn = QPushButton("Mark as anomaly")
        self.anomaly_btn.setToolTip(f"Paint the selected pixels into the '{LABELS_LAYER}' ground truth.")
        self.undo_btn = QPushButton("Undo")
        self.undo_btn.setEnabled(False)
        self.status = QLabel("Select a region (table row, a click on the mask, or a drawn Shapes polygon).")
        self.status.setWordWrap(True)
        self.why = WhyPanel(theme)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        for b in (self.normal_btn, self.anomaly_btn, self.undo_btn):
            row.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(self.why)
        self.normal_btn.clicked.connect(self.mark_normal)
        self.anomaly_btn.clicked.connect(self.mark_anomaly)
        self.undo_btn.clicked.connect(self.undo)
        state.cube_changed.connect(self._on_cube_changed)

    # ---------------------------------------------------------------- selection
    def _on_cube_changed(self, *_: Any) -> None:
        self.stack.reset()
        self.selection, self.what = None, ""
        self.undo_btn.setEnabled(False)
        self.why.clear()

    def _shape(self) -> tuple[int, int] | None:
        cube = self.state.cube
        return None if cube is None else (cube.rows, cube.cols)

    def select_pixel(self, row: int, col: int, label_image: np.ndarray | None) -> None:
        """A click: the flagged region under it, else the pixel; explained at once."""
        shape = self._shape()
        if shape is None:
            return
        if label_image is not None and np.shape(label_image) == shape and label_image[row, col] > 0:
            self.selection = np.asarray(label_image) == label_image[row, col]
            self.what = f"flagged region at ({row}, {col}), {int(self.selection.sum()):,} px"
        else:
            self.selection = np.zeros(shape, bool)
            self.selection[row, col] = True
            self.what = f"pixel ({row}, {col})"
        self._explain((row, col), f"pixel ({row}, {col})")

    def select_region(self, label: int, label_image: np.ndarray, rank: int) -> None:
        self.selection = np.asarray(label_image) == label
        self.what = f"region #{rank}, {int(self.selection.sum()):,} px"
        self._explain(self.selection, self.what)

    def _explain(self, where: Any, what: str) -> None:
        det = self.state.detection
        if det is not None:
            self.why.explain(det, analysed_cube(self.state, det), where, what)

    def drawn_mask(self) -> np.ndarray | None:
        """The union of the active Shapes layer's polygons (not the Inspect outline), or None."""
        shape = self._shape()
        layer = self.viewer.layers.selection.active
        # ``__class__``, not ``type()``: a dock opened from napari's menu sees its layers through a proxy
        if shape is None or layer.__class__.__name__ != "Shapes" or layer.name == SELECTION_LAYER:
            return None
        if not len(layer.data):
            return None
        masks = np.asarray(layer.to_masks(mask_shape=shape), dtype=bool)
        return masks.any(axis=0) if masks.ndim == 3 else masks

    def marked(self) -> tuple[np.ndarray | None, str]:
        drawn = self.drawn_mask()
        if drawn is not None and drawn.any():
            return drawn, f"the drawn shapes, {int(drawn.sum()):,} px"
        return self.selection, self.what

    # ---------------------------------------------------------------- actions
    def mark_normal(self) -> Any:
        """Refit the shown detection with the marked pixels as normal (a worker); returns it."""
        from napari_hsi_anomaly.core.feedback import iter_mark_normal

        det = self.state.detection
        mask, what = self.marked()
        if det is None or mask is None or not mask.any():
            self.status.setText("Score first, then select what is normal (or draw it in a Shapes layer).")
            return None
        if self._worker is not None:
            return None
        if self.stack.current is not det:
            self.stack.reset(det)
        cube = analysed_cube(self.state, det)
        self.status.setText(f"Marking {what} as normal: refitting…")
        self.normal_btn.setEnabled(False)
        self._worker = True

        def done(new: Any) -> None:
            new.extras["analysed_cube"] = cube
            self.stack.push(new)
            self.state.set_detection(new)
            n = int(new.mask(self._t_anom()).sum())
            self.status.setText(f"Marked {what} as normal: {n:,} px flagged now (Undo to go back).")

        def finished() -> None:
            self._worker = None
            self.normal_btn.setEnabled(True)
            self.undo_btn.setEnabled(self.stack.can_undo)

        worker = start_generator_worker(iter_mark_normal, det, cube, mask, scene=self.state.scene_name,
                                        on_returned=done, on_finished=finished,
                                        on_error=lambda exc: self.status.setText(f"Not marked: {exc}"),
                                        desc="Mark as normal", progress_bar=False)
        if self._worker is True:
            self._worker = worker
        return worker

    def _t_anom(self) -> float:
        t = getattr(self.state, "t_anom", None)
        return float(t) if t is not None else 0.7

    def undo(self) -> None:
        if not self.stack.can_undo:
            return
        prev = self.stack.undo()
        self.state.set_detection(prev)
        self.undo_btn.setEnabled(self.stack.can_undo)
        self.status.setText("Undone: the previous normal model is shown again.")

    def mark_anomaly(self) -> Any:
        """Paint the marked pixels as 1 into the ``LABELS_LAYER`` Labels layer (created on first use)."""
        mask, what = self.marked()
        shape = self._shape()
        if mask is None or shape is None or not mask.any():
            self.status.setText("Select what is anomalous first (or draw it in a Shapes layer).")
            return None
        layer = find_layer(self.viewer, LABELS_LAYER)
        if layer is None or tuple(layer.data.shape) != shape:
            if layer is not None:
                self.viewer.layers.remove(layer)
            selected = set(self.viewer.layers.selection)
            layer = self.viewer.add_labels(np.zeros(shape, np.uint8), name=LABELS_LAYER, opacity=0.6,
                                           metadata={"cube": self.state.cube})
            if selected:
                self.viewer.layers.selection = selected
        layer.data[mask] = 1
        layer.refresh()
        n = int(np.count_nonzero(layer.data))
        self.status.setText(f"Marked {what} as anomaly: '{LABELS_LAYER}' holds {n:,} px (choose it as "
                            "ground truth, or compare detectors in the Detect dock).")
        return layer
