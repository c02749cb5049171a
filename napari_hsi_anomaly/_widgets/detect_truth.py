"""The results panel's ground truth and metrics (``TruthMixin``, part of ``ResultsPanel``).

The ground-truth choice (Labels layers of the scene's shape, the scene's own chosen automatically), the
TP / FP / FN overlay (mask + 2 x truth in a buffer of its own), TPR/FNR/precision/F-score at the current
mask as ``metrics.evaluate`` computes them, and the ROC curve and AUC once per (scores, truth) in a worker.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_hsi_anomaly._widgets.detect_layers import MASK_LAYER, OUTCOME_LAYER, SCORE_LAYER
from napari_hsi_anomaly._widgets.workers import start_function_worker
from napari_hsi_anomaly.core.scoring.metrics import roc_curve

NO_GT = "(none)"
GT_NAMES = ("ground truth", "gt")  # chosen automatically when such a layer of the right size appears


def ground_truth_array(layer: Any, shape: tuple[int, int]) -> np.ndarray | None:
    """``(rows, cols)`` bool from a Labels/Image layer (non-zero = anomaly), or None if it won't fit."""
    if getattr(layer, "rgb", False) or getattr(layer, "multiscale", False):
        return None
    data = layer.data
    if tuple(data.shape) != tuple(shape):
        return None
    return np.asarray(data) > 0


def _is_gt_candidate(layer: Any, shape: tuple | None = None) -> bool:
    """A Labels layer of the scene's ``shape`` (rows, cols) that is not a result or a re-opened map."""
    if layer.name.startswith((SCORE_LAYER, MASK_LAYER, OUTCOME_LAYER)) or layer.metadata.get("map"):
        return False
    if layer.__class__.__name__ != "Labels" or layer.ndim != 2:
        return False
    return shape is None or tuple(layer.data.shape) == tuple(shape)


class TruthMixin:
    """Ground truth, TP / FP / FN overlay, metrics and ROC of the shown score map."""

    # ---------------------------------------------------------------- ground truth
    def _refresh_gt_choices(self, event: Any = None) -> None:
        mgr = getattr(self.state, "scenes", None)
        if mgr is not None and mgr.moving:  # a scene switch: refreshed once the new scene is on screen
            return
        name = str(getattr(getattr(event, "value", None), "name", ""))
        if name.startswith((SCORE_LAYER, MASK_LAYER, OUTCOME_LAYER)):  # our own layers: no choice changes
            return
        before = self.gt_combo.currentText() or NO_GT
        cube = self.state.cube
        shape = (cube.rows, cube.cols) if cube is not None else None
        names = [layer.name for layer in self.viewer.layers if _is_gt_candidate(layer, shape)]
        want = before
        if want == NO_GT and self._wanted_gt in names:  # the scene's, listed now
            want = self._wanted_gt
        elif want == NO_GT:  # a ground-truth layer of this scene that appears is chosen automatically
            want = next((n for n in names if n.lower() in GT_NAMES and self._of_this_scene(n)), NO_GT)
        self.gt_combo.blockSignals(True)
        self.gt_combo.clear()
        self.gt_combo.addItem(NO_GT)
        self.gt_combo.addItems(names)
        self.gt_combo.setCurrentIndex(max(self.gt_combo.findText(want), 0))
        self.gt_combo.blockSignals(False)
        if self.gt_combo.currentText() != before:
            self._on_gt_changed()

    def _of_this_scene(self, name: str) -> bool:
        """Whether layer ``name`` belongs to the current cube (its reader's metadata, else its shape)."""
        cube, layer = self.state.cube, self.viewer.layers[name]
        if cube is None:
            return True
        owner = layer.metadata.get("cube")
        if owner is not None:
            return owner is cube
        return tuple(layer.data.shape[-2:]) == (cube.rows, cube.cols)

    def set_ground_truth(self, name: str) -> None:
        """Select a ground-truth layer by name (``"(none)"`` to clear)."""
        idx = self.gt_combo.findText(name)
        if idx < 0:
            raise ValueError(f"no usable layer named {name!r}")
        self.gt_combo.setCurrentIndex(idx)
        self._on_gt_changed()

    def follow_ground_truth(self, name: str | None) -> None:
        """The scene's ground-truth layer (the Cube dock's choice); a scene without one clears the box
        (another scene's ground truth never stays chosen). A layer not listed yet is chosen when it is."""
        self._wanted_gt = name
        target = name if name and self.gt_combo.findText(name) >= 0 else NO_GT
        if self.gt_combo.currentText() != target:
            self.set_ground_truth(target)

    def _gt_hint(self) -> str:
        name = self.gt_combo.currentText()
        if name in ("", NO_GT):
            return ""
        return f"Ground truth '{name}' chosen: metrics appear after Score."

    def _show_outcome(self) -> None:
        """The TP / FP / FN overlay and its legend while a ground truth and scores are shown."""
        on = self._gt is not None and self.mask_u8 is not None
        self.legend.setVisible(on)
        if not on:
            self._gt2 = self._outcome = None
            self.layers.show_outcome(None)
            return
        self._gt2 = self._gt.astype(np.uint8) * np.uint8(2)
        self._outcome = np.add(self.mask_u8, self._gt2)
        self.layers.show_outcome(self._outcome)

    def _load_gt(self) -> None:
        """Read the chosen ground-truth layer for the shown score map (kept when chosen before)."""
        name = self.gt_combo.currentText()
        self._gt = None
        if self.scores is None or name in ("", NO_GT) or name not in self.viewer.layers:
            self._show_outcome()
        if name in ("", NO_GT) or name not in self.viewer.layers:
            self.metrics_label.setText("")
            return
        if self.scores is None:
            self.metrics_label.setText(self._gt_hint())
            return
        self._gt = ground_truth_array(self.viewer.layers[name], self.scores.shape)
        self._show_outcome()
        if self._gt is None:
            self.metrics_label.setText(f"'{name}' does not match the score map's shape "
                                       f"{self.scores.shape[0]}x{self.scores.shape[1]}.")

    def _on_gt_changed(self, *_: Any) -> None:
        self._load_gt()
        self._start_roc()
        self._update_metrics()

    # ---------------------------------------------------------------- metrics
    def _start_roc(self) -> None:
        """Compute the ROC curve and AUC once per (scores, ground truth) in a worker."""
        token = self._roc_gen.next()
        self._auc = float("nan")
        self.roc.clear()
        self._roc_visible(self._gt is not None and self.scores is not None)
        if self._gt is None or self.scores is None:
            return
        finite = np.isfinite(self.scores)
        pos = int(np.count_nonzero(self._gt & finite))
        self._gt_counts = (pos, int(np.count_nonzero(finite)) - pos)
        start_function_worker(
            roc_curve, self.scores, self._gt,
            on_returned=lambda roc, tok=token: self._on_roc(tok, roc),
            on_error=lambda exc: self.metrics_label.setText(str(exc)),
            notify=False, desc="ROC curve", progress_bar=False,
        )

    def _roc_visible(self, on: bool) -> None:
        self.roc_ready = on
        self.roc_shown.emit(on)

    def _on_roc(self, token: int, roc: tuple) -> None:
        if not self._roc_gen.is_current(token):
            return
        fpr, tpr, _ = roc
        self._auc = float(np.trapezoid(tpr, fpr))
        self.roc.set_curve(fpr, tpr, self._auc)
        self._update_metrics()

    def _update_metrics(self) -> None:
        """TPR/FNR/precision/F-score at the current mask (as ``metrics.evaluate``) and the AUC."""
        if self._gt is None or self.scores is None or self.mask_u8 is None:
            return
        mask = self.mask_u8.view(bool)  # NaN scores are never flagged, as in evaluate
        tp = int(np.count_nonzero(mask & self._gt))
        fp = int(np.count_nonzero(mask)) - tp
        pos, neg = self._gt_counts
        fn = pos - tp
        tpr = tp / pos if pos else float("nan")
        precision = tp / (tp + fp) if tp + fp else 0.0
        f = 2 * precision * tpr / (precision + tpr) if (precision + tpr) > 0 else 0.0
        fpr = fp / neg if neg else float("nan")
        self.metrics = {"tpr": tpr, "fnr": 1.0 - tpr, "precision": precision, "f_score": f,
                        "auc": self._auc, "tp": tp, "fp": fp, "fn": fn, "far": fpr}
        auc = "…" if self._auc != self._auc else f"{self._auc:.3f}"
        self.metrics_text = (f"TPR {tpr:.3f}   FNR {1 - tpr:.3f}   precision {precision:.3f}\n"
                             f"F-score {f:.3f}   AUC {auc}\n"
                             f"TP {tp:,}   FP {fp:,}   FN {fn:,}   false-alarm rate {fpr:.2e}")
        self.metrics_label.setText(self.metrics_text)
        if fpr == fpr:
            self.roc.set_point(fpr, tpr)

