"""The Detect dock's results panel: live t_anom, counts, histogram, ground truth, metrics, ROC, export.

The t_anom slider only thresholds the shown score map into a preallocated uint8 buffer (the mask
layer's data) and refreshes that layer; regions are labelled once the slider rests (debounced). The
ROC curve and AUC are computed once per (scores, ground truth) in a worker. A ground truth chosen
before Score is kept and used as soon as scores arrive. Ground truth, the TP / FP / FN overlay,
metrics and ROC are ``detect_truth.TruthMixin``'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider
from superqt.utils import qdebounced

from napari_hsi_anomaly._widgets.detect_layers import (
    ResultLayers,
    outcome_legend,
    score_rgba,
)
from napari_hsi_anomaly._widgets.detect_truth import (  # noqa: F401 - re-exported
    GT_NAMES,
    NO_GT,
    TruthMixin,
    _is_gt_candidate,
    ground_truth_array,
)
from napari_hsi_anomaly._widgets.plots import RocPlot, ScoreHistogram
from napari_hsi_anomaly._widgets.workers import (
    Generation,
    connect_alive,
    notify_error,
    notify_saved,
)
from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.regions import label_mask


class ResultsPanel(TruthMixin, QWidget):
    """Everything below Score: the shown score map, its mask, and what is measured on them."""

    committed = Signal()  # the slider rested: regions counted, mask published
    roc_shown = Signal(bool)  # an ROC curve is (or is no longer) computed for the shown scores

    def __init__(self, viewer: Any, state: Any, layers: ResultLayers) -> None:
        super().__init__()
        self.viewer, self.state, self.layers = viewer, state, layers
        self.scores: np.ndarray | None = None  # shown score map (rows, cols) float32
        self.mask_u8: np.ndarray | None = None  # preallocated mask buffer, the Labels data
        self.scene: str | None = None
        self._gt: np.ndarray | None = None
        self._gt2: np.ndarray | None = None  # 2 x truth (uint8), for the TP / FP / FN overlay
        self._outcome: np.ndarray | None = None  # the overlay's buffer
        self._wanted_gt: str | None = None  # the scene's ground-truth layer (state.ground_truth)
        self._gt_counts: tuple[int, int] = (0, 0)  # (positives, negatives) among finite scores
        self._auc = float("nan")
        self._roc_gen = Generation()
        self.metrics: dict = {}
        self.metrics_text = ""
        self.n_flagged = 0
        self._build()
        self.commit_debounced = qdebounced(self.commit, timeout=150)
        self.settle_debounced = qdebounced(self.settle, timeout=250)
        self.t_anom.valueChanged.connect(self._on_t_changed)
        viewer.layers.events.inserted.connect(self._refresh_gt_choices)
        viewer.layers.events.removed.connect(self._refresh_gt_choices)
        if getattr(state, "scenes", None) is not None:
            connect_alive(self, state.scenes.activated, self._refresh_gt_choices)
        self._refresh_gt_choices()

    def _build(self) -> None:
        theme = str(getattr(self.viewer, "theme", "dark"))
        self.t_anom = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.t_anom.setRange(0.0, 1.0)
        self.t_anom.setSingleStep(0.01)
        self.t_anom.setDecimals(2)
        self.t_anom.setValue(0.7)
        self.t_anom.setToolTip("anomaly where score >= t_anom (updates live)")
        self.counts = QLabel("flagged: -")
        self.hist = ScoreHistogram(theme=theme)
        self.hist.set_colorbar(score_rgba())  # the heatmap's colour bar, under the score axis
        self.hist.setVisible(False)  # no empty placeholder plot before the first Score
        self.gt_combo = QComboBox()
        self.gt_combo.setToolTip("a Labels layer of the scene's size: non-zero = anomaly. With one chosen, "
                                 "the mask is drawn as TP / FP / FN in three colours (legend below).")
        self.legend = QLabel(outcome_legend())
        self.legend.setWordWrap(True)
        self.legend.setVisible(False)
        self.metrics_label = QLabel("")
        self.metrics_label.setWordWrap(True)
        self.roc = RocPlot(theme=theme)  # the Detect dock puts it in a tab beside the scene table
        self.roc.setMinimumHeight(160)
        self.roc_ready = False
        self.save_scores_btn = QPushButton("Save scores…")
        self.save_mask_btn = QPushButton("Save mask…")

        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("t_anom", self.t_anom)
        gt_form = QFormLayout()
        gt_form.setContentsMargins(0, 0, 0, 0)
        gt_form.addRow("ground truth", self.gt_combo)
        export = QHBoxLayout()
        export.addWidget(self.save_scores_btn)
        export.addWidget(self.save_mask_btn)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(form)
        layout.addWidget(self.counts)
        from napari_hsi_anomaly._widgets.threshold_panel import ThresholdPanel

        self.analyst = ThresholdPanel(self)  # false-alarm rate, set by FAR/contamination, p_min warning
        layout.addWidget(self.analyst)
        layout.addWidget(self.hist)
        layout.addLayout(gt_form)
        layout.addWidget(self.metrics_label)
        layout.addWidget(self.legend)
        layout.addWidget(self.roc)  # (moved into the Detect dock's tabs)
        layout.addLayout(export)
        self.gt_combo.currentIndexChanged.connect(self._on_gt_changed)
        self.save_scores_btn.clicked.connect(lambda: self._export_dialog("scores"))
        self.save_mask_btn.clicked.connect(lambda: self._export_dialog("mask"))
        self._set_enabled(False)

    def _set_enabled(self, on: bool) -> None:
        for w in (self.t_anom, self.save_scores_btn, self.save_mask_btn):
            w.setEnabled(on)

    @property
    def mask(self) -> np.ndarray | None:
        """The current mask as a bool view of the Labels buffer (no copy)."""
        return None if self.mask_u8 is None else self.mask_u8.view(bool)

    # ---------------------------------------------------------------- showing a map
    def show_scores(self, score_map: np.ndarray, scene: str | None = None, live: bool = False) -> None:
        """Show a score map: heatmap, mask at the current t_anom, histogram, metrics.

        ``live`` (a p_min move): only the heatmap, mask and counts now; the histogram, ROC, region
        count and published mask once the slider rests.
        """
        scores = np.ascontiguousarray(score_map, dtype=np.float32)
        if self.mask_u8 is None or self.mask_u8.shape != scores.shape:
            self.mask_u8 = np.zeros(scores.shape, dtype=np.uint8)
        new_shape = self.scores is None or self.scores.shape != scores.shape
        self.scores = scores
        self.scene = scene
        self.layers.show(scores, self.mask_u8, scene)
        self._set_enabled(True)
        if new_shape or self._gt is None:
            self._load_gt()
        else:
            self._show_outcome()  # this scene's overlay layer (layers travel with their scene)
        self._on_t_changed(self.t_anom.value(), deferred=True)
        if live:
            self.settle_debounced()
            return
        self.settle_debounced.cancel()
        self.settle()

    def settle(self) -> None:
        """What a new score map needs beyond the layers: histogram, ROC, regions, shared mask."""
        if self.scores is None:
            return
        self.hist.setVisible(True)
        self.hist.set_scores(self.scores)
        self._start_roc()
        self.commit_debounced.cancel()
        self.commit()

    def reset(self, message: str = "flagged: -") -> None:
        """Forget the shown results (another scene was chosen): counts, histogram, metrics, ROC."""
        self.commit_debounced.cancel()
        self.settle_debounced.cancel()
        self._roc_gen.next()
        self.scores = None
        self.mask_u8 = None  # the retired mask layer keeps the old buffer
        self.scene = None
        self._gt = self._gt2 = self._outcome = None
        self.legend.setVisible(False)
        self._auc = float("nan")
        self.metrics, self.metrics_text = {}, ""
        self.counts.setText(message)
        self.hist.set_scores(None)
        self.hist.setVisible(False)
        self.roc.clear()
        self._roc_visible(False)
        self._set_enabled(False)
        self.metrics_label.setText(self._gt_hint())

    # ---------------------------------------------------------------- live t_anom
    def _on_t_changed(self, t: float, deferred: bool = False) -> None:
        """Slider callback: threshold into the preallocated buffer and refresh the mask only."""
        self.hist.set_threshold(float(t))
        if self.scores is None or self.mask_u8 is None:
            return
        np.greater_equal(self.scores, np.float32(t), out=self.mask_u8.view(bool))
        self.layers.refresh_mask()
        if self._outcome is not None:  # mask + 2 x truth: 1 FP, 2 FN, 3 TP
            np.add(self.mask_u8, self._gt2, out=self._outcome)
            self.layers.refresh_outcome()
        n = int(np.count_nonzero(self.mask_u8))
        self.n_flagged = n
        self.counts.setText(f"flagged: {n:,} px ({100.0 * n / self.scores.size:.2f} %) …")
        self._update_metrics()
        if not deferred:
            self.commit_debounced()

    def commit(self) -> None:
        """After the slider rests: count regions, update metrics, publish the mask."""
        if self.scores is None or self.mask_u8 is None:
            return
        mask = self.mask_u8.view(bool)
        n = int(np.count_nonzero(mask))
        labels, n_regions = label_mask(mask)
        self.counts.setText(
            f"flagged: {n:,} px ({100.0 * n / self.scores.size:.2f} %) in {n_regions:,} "
            f"region{'s' if n_regions != 1 else ''}"
        )
        self._update_metrics()
        self.state.set_mask(mask.copy(), labels)
        self.committed.emit()

    # ---------------------------------------------------------------- export
    def _export_dialog(self, what: str) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, f"Save {what}", f"anomaly_{what}.npy", "Maps (*.npy *.tif *.hdr)"
        )
        if path:
            self.export(what, path)

    def export(self, what: str, path: str | Path) -> Path | None:
        """Write the score map (``"scores"``) or the mask (``"mask"``, uint8) with ``write_map``."""
        from napari_hsi_anomaly.core.io import write_map

        if self.scores is None or self.mask_u8 is None:
            notify_error(HsiAnomalyError("Nothing to save yet: press Score first."))
            return None
        array = self.scores if what == "scores" else self.mask_u8.copy()
        try:
            from napari_hsi_anomaly.core.guards import check_output_path

            source = getattr(self.state.cube, "source", None)  # never write over the scene's own file
            check_output_path(path, inputs=[source] if source else [], exts=(".npy", ".tif", ".tiff", ".hdr"),
                              what=f"Save {what}")
            out = write_map(path, array, like=self.state.cube)
        except Exception as exc:  # shown to the user, never raised into Qt
            notify_error(exc)
            return None
        notify_saved("the score map" if what == "scores" else "the mask", out)
        return out
