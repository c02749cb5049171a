"""The Detect dock: score the cube, then explore the threshold and p_min live.

Scoring runs ``core.scoring.iter_detect`` in a generator worker (trains a fast model first when a
CAE method is chosen and none is loaded). The ``t_anom`` slider only thresholds the cached score map
into a preallocated buffer and refreshes the mask layer; ``p_min`` (GLOSH) is debounced and re-scored
from the cached hierarchy in a worker, dropping stale results with a generation counter.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider, QLabeledSlider
from superqt.utils import qdebounced

from napari_hsi_anomaly._widgets.plots import RocPlot, ScoreHistogram
from napari_hsi_anomaly._widgets.state import get_state
from napari_hsi_anomaly._widgets.workers import (
    Generation,
    notify_error,
    start_function_worker,
    start_generator_worker,
)
from napari_hsi_anomaly.core.progress import Progress
from napari_hsi_anomaly.core.regions import label_mask
from napari_hsi_anomaly.core.scoring import DEFAULT_METHOD, FEATURES, METHODS, iter_detect
from napari_hsi_anomaly.core.scoring.detect import MODEL_METHODS
from napari_hsi_anomaly.core.scoring.metrics import roc_curve

SCORE_LAYER = "anomaly score"
MASK_LAYER = "anomaly mask"
MASK_COLOR = "cyan"
NO_GT = "(none)"
# labels for core.scoring's methods; the combo lists core.scoring.METHODS, default first
METHOD_LABELS = {
    "spectral-rx": "Spectral GLOSH + local RX",
    "ensemble": "Ensemble: CAE + spectral GLOSH + RX",
    "glosh": "CAE features + GLOSH (thesis)",
    "glosh-spectral": "Spectral GLOSH (PCA)",
    "glosh-rx": "CAE GLOSH + local RX",
    "rx": "RX global",
    "rx-local": "RX local",
    "recon": "CAE reconstruction error",
}
NO_P_MIN = {"rx", "rx-local", "recon"}  # every other method is GLOSH-based: p_min re-scores live


def score_job(cube: Any, method: str, model: Any, **params: Any) -> Generator[Progress, None, Any]:
    """``iter_detect`` (which trains a fast model on the cube first when ``model`` is None)."""
    detection = yield from iter_detect(cube, method, model=model, **params)
    return detection


def score_colormap() -> Any:
    """inferno with an alpha ramp: low scores transparent so the scene shows through."""
    from matplotlib import colormaps
    from napari.utils.colormaps import Colormap

    x = np.linspace(0.0, 1.0, 65)
    rgba = colormaps["inferno"](x)
    rgba[:, 3] = np.clip((x - 0.25) / 0.65, 0.0, 1.0) ** 1.5
    return Colormap(colors=rgba, controls=x, name="inferno (transparent low)")


def find_layer(viewer: Any, name: str) -> Any:
    """The layer called ``name``, or None."""
    for layer in viewer.layers:
        if layer.name == name:
            return layer
    return None


def ground_truth_array(layer: Any, shape: tuple[int, int]) -> np.ndarray | None:
    """``(rows, cols)`` bool from a Labels/Image layer (non-zero = anomaly), or None if it won't fit."""
    if getattr(layer, "rgb", False) or getattr(layer, "multiscale", False):
        return None
    data = layer.data
    if tuple(data.shape) != tuple(shape):
        return None
    return np.asarray(data) > 0


class DetectWidget(QWidget):
    """Method, parameters, Score/Cancel, live t_anom and p_min, histogram, metrics and export."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.state = get_state(napari_viewer)
        self.detection: Any = None
        self.scores: np.ndarray | None = None  # current score map (rows, cols) float32
        self._mask_u8: np.ndarray | None = None  # preallocated mask buffer, the Labels data
        self._worker: Any = None
        self._trains = False
        self._t0 = 0.0
        self._rescoring: Any = None  # the rescore worker in flight (at most one)
        self._rescore_pending = False
        self._rescore_gen = Generation()
        self._roc_gen = Generation()
        self._gt: np.ndarray | None = None
        self._gt_counts: tuple[int, int] = (0, 0)  # (positives, negatives) among finite scores
        self._auc = float("nan")
        self.metrics_text = ""
        self._build()
        self._commit_debounced = qdebounced(self._commit, timeout=150)
        self._rescore_debounced = qdebounced(self._request_rescore, timeout=150)
        self.p_min.valueChanged.connect(self._on_p_min_changed)
        self.t_anom.valueChanged.connect(self._on_t_changed)
        self.viewer.layers.events.inserted.connect(self._refresh_gt_choices)
        self.viewer.layers.events.removed.connect(self._refresh_gt_choices)
        self.state.cube_changed.connect(self._on_cube_changed)
        self._on_method_changed()
        self._refresh_gt_choices()
        self._on_cube_changed(self.state.cube)  # a cube chosen before this dock opened

    # ---------------------------------------------------------------- layout
    def _build(self) -> None:
        self.method = QComboBox()
        for name in sorted(METHODS, key=lambda m: m != DEFAULT_METHOD):
            default = " (default)" if name == DEFAULT_METHOD else ""
            self.method.addItem(METHOD_LABELS.get(name, name) + default, name)
        self.method.setCurrentIndex(max(0, self.method.findData(DEFAULT_METHOD)))
        self.feature = QComboBox()
        self.feature.addItems(FEATURES)
        self.feature.setToolTip("CAE features: per pixel, or per window (f1/f3) / section (f2/f4)")
        self.p_min = QLabeledSlider(Qt.Orientation.Horizontal)
        self.p_min.setRange(2, 2000)
        self.p_min.setValue(100)
        self.p_min.setToolTip("GLOSH minimum cluster size; moves re-score from the cached hierarchy")
        self.p_min_auto = QCheckBox("auto")
        self.p_min_auto.setChecked(True)
        self.p_min_auto.setToolTip(
            "Score picks p_min: max(100, 1 % of the pixels) per pixel, the thesis's 100 of 2925 per "
            "window/section (a group of p_min similar pixels is a cluster, not an anomaly). "
            "Moving the slider turns auto off."
        )
        self.min_samples = QSpinBox()
        self.min_samples.setRange(1, 500)
        self.min_samples.setValue(10)
        self.min_samples.setToolTip("HDBSCAN min_samples (changing it needs a new Score)")

        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("method", self.method)
        form.addRow("feature", self.feature)
        p_row = QHBoxLayout()
        p_row.addWidget(self.p_min, 1)
        p_row.addWidget(self.p_min_auto)
        form.addRow("p_min", p_row)
        form.addRow("min_samples", self.min_samples)

        self.score_btn = QPushButton("Score")
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.score_btn)
        buttons.addWidget(self.cancel_btn)
        self.progress = QProgressBar()
        self.progress.setMaximumHeight(18)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.status = QLabel("Load a cube, then press Score.")
        self.status.setWordWrap(True)

        self.t_anom = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.t_anom.setRange(0.0, 1.0)
        self.t_anom.setSingleStep(0.01)
        self.t_anom.setDecimals(2)
        self.t_anom.setValue(0.7)
        self.t_anom.setToolTip("anomaly where score >= t_anom (updates live)")
        t_row = QFormLayout()
        t_row.setContentsMargins(0, 0, 0, 0)
        t_row.addRow("t_anom", self.t_anom)
        self.counts = QLabel("flagged: -")
        self.hist = ScoreHistogram(theme=self._theme())

        self.gt_combo = QComboBox()
        self.gt_combo.setToolTip("a Labels/Image layer of the cube's size: non-zero = anomaly")
        gt_row = QFormLayout()
        gt_row.setContentsMargins(0, 0, 0, 0)
        gt_row.addRow("ground truth", self.gt_combo)
        self.metrics_label = QLabel("")
        self.metrics_label.setWordWrap(True)
        self.roc = RocPlot(theme=self._theme())
        self.roc.setVisible(False)

        self.save_scores_btn = QPushButton("Save scores…")
        self.save_mask_btn = QPushButton("Save mask…")
        export = QHBoxLayout()
        export.addWidget(self.save_scores_btn)
        export.addWidget(self.save_mask_btn)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addLayout(t_row)
        layout.addWidget(self.counts)
        layout.addWidget(self.hist)
        layout.addLayout(gt_row)
        layout.addWidget(self.metrics_label)
        layout.addWidget(self.roc)
        layout.addLayout(export)
        layout.addStretch(1)

        self.method.currentIndexChanged.connect(self._on_method_changed)
        self.score_btn.clicked.connect(self.run_score)
        self.cancel_btn.clicked.connect(self.cancel)
        self.gt_combo.currentIndexChanged.connect(self._on_gt_changed)
        self.save_scores_btn.clicked.connect(lambda: self._export_dialog("scores"))
        self.save_mask_btn.clicked.connect(lambda: self._export_dialog("mask"))
        self._set_result_enabled(False)

    def _theme(self) -> str:
        return str(getattr(self.viewer, "theme", "dark"))

    # ---------------------------------------------------------------- properties
    @property
    def method_name(self) -> str:
        return str(self.method.currentData())

    def set_method(self, name: str, feature: str | None = None) -> None:
        """Select a method by core name (``glosh``, ``recon``, ``rx``, ``rx-local``)."""
        idx = self.method.findData(name)
        if idx < 0:
            raise ValueError(f"unknown method {name!r}")
        self.method.setCurrentIndex(idx)
        if feature is not None:
            self.feature.setCurrentText(feature)

    @property
    def score_layer(self) -> Any:
        return find_layer(self.viewer, SCORE_LAYER)

    @property
    def mask_layer(self) -> Any:
        return find_layer(self.viewer, MASK_LAYER)

    @property
    def mask(self) -> np.ndarray | None:
        """The current mask as a bool view of the Labels buffer (no copy)."""
        return None if self._mask_u8 is None else self._mask_u8.view(bool)

    def _on_method_changed(self, *_: Any) -> None:
        method = self.method_name
        self.feature.setEnabled(method == "glosh")
        self.min_samples.setEnabled(method not in NO_P_MIN)
        self.p_min.setEnabled(method not in NO_P_MIN)

    def _set_result_enabled(self, on: bool) -> None:
        for w in (self.t_anom, self.save_scores_btn, self.save_mask_btn):
            w.setEnabled(on)

    def _on_cube_changed(self, cube: Any) -> None:
        if cube is None:
            return
        if self.scores is None:
            self.status.setText(f"Cube {cube.name} ({cube.bands} bands): press Score.")
        elif self.scores.shape != cube.shape[1:]:
            self.status.setText("New cube loaded: press Score to detect on it.")

    # ---------------------------------------------------------------- scoring
    def run_score(self) -> Any:
        """Start a Score run on the shared cube; returns the worker (None when nothing to do)."""
        cube = self.state.cube
        if cube is None:
            self.status.setText("No cube: open one (File > Open, or the Cube dock) first.")
            return None
        if self._worker is not None:
            return None
        method = self.method_name
        model = self.state.model
        self._trains = method in MODEL_METHODS and model is None
        params: dict[str, Any] = {}
        if method not in NO_P_MIN:
            p_min = None if self.p_min_auto.isChecked() else self.p_min.value()
            params = {"p_min": p_min, "min_samples": self.min_samples.value()}
            if method == "glosh":
                params["feature"] = self.feature.currentText()
        if self._trains:
            self.status.setText("No model loaded: training a fast model on this cube first "
                                "(a few Adam steps on 32x32 crops), then scoring…")
        else:
            self.status.setText(f"Scoring with {self.method.currentText()}…")
        self.progress.setRange(0, 0)
        self.progress.setFormat("starting…")
        self.score_btn.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        self._t0 = time.perf_counter()
        self._worker = True  # (a synchronous worker finishes inside the call below)
        worker = start_generator_worker(
            score_job, cube, method, model, **params,
            on_progress=self._on_progress,
            on_returned=self._on_scored,
            on_error=self._on_score_error,
            on_aborted=self._on_aborted,
            on_finished=self._on_score_finished,
            desc="anomaly scoring",
        )
        if self._worker is True:
            self._worker = worker
        return worker

    def cancel(self) -> None:
        if self._worker is not None and self._worker is not True:
            self._worker.quit()
            self.status.setText("Cancelling…")

    def _on_progress(self, p: Any) -> None:
        if not isinstance(p, Progress):
            return
        if p.total:
            self.progress.setRange(0, int(p.total))
            self.progress.setValue(int(p.done))
        if p.message:
            self.progress.setFormat(p.message[:60])

    def _on_score_error(self, exc: BaseException) -> None:
        kept = " Earlier results kept." if self.scores is not None else ""
        self.status.setText(f"Scoring failed: {exc}{kept}")

    def _on_aborted(self) -> None:
        self.status.setText("Cancelled; earlier results kept.")

    def _on_score_finished(self) -> None:
        self._worker = None
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")
        self.score_btn.setEnabled(True)
        self.cancel_btn.setEnabled(False)

    def _on_scored(self, det: Any) -> None:
        trained = self._trains and det.extras.get("model") is not None
        if trained and self.state.model is None:
            self.state.set_model(det.extras["model"])  # reused by the next Score and the Model dock
        self.detection = det
        self._rescore_gen.next()  # rescoring results of an earlier detection are stale now
        if det.params.get("p_min"):
            self._show_p_min(int(det.params["p_min"]))
        self.show_scores(det.score_map)
        self.state.set_detection(det)
        label = METHOD_LABELS.get(det.method, det.method)
        if det.method == "glosh":
            label += f" ({det.feature})"
        note = " after training a fast model (kept for the next Score)" if trained else ""
        if det.method not in MODEL_METHODS and self.state.model is not None:
            note += " (this method uses no CAE: pick a CAE method to use the loaded model)"
        took = time.perf_counter() - self._t0
        self.status.setText(f"Scored with {label}{note} in {took:.1f} s.")

    # ---------------------------------------------------------------- layers
    def show_scores(self, score_map: np.ndarray) -> None:
        """Show a new score map: heatmap, mask at the current t_anom, histogram, metrics."""
        scores = np.ascontiguousarray(score_map, dtype=np.float32)
        same_shape = self.scores is not None and self.scores.shape == scores.shape
        self.scores = scores
        if not same_shape or self._mask_u8 is None:
            self._mask_u8 = np.zeros(scores.shape, dtype=np.uint8)
        self._update_layers()
        self.hist.set_scores(scores)
        self._set_result_enabled(True)
        self._on_t_changed(self.t_anom.value())
        self._start_roc()
        self._commit_debounced.cancel()
        self._commit()

    def _layer_kwargs(self) -> dict:
        """Scale/translate of the cube's layers so the maps overlay the scene."""
        name = self.state.rgb_layer or self.state.cube_layer
        if name and name in self.viewer.layers:
            layer = self.viewer.layers[name]
            return {"scale": tuple(layer.scale)[-2:], "translate": tuple(layer.translate)[-2:]}
        return {}

    def _update_layers(self) -> None:
        from napari.utils.colormaps import DirectLabelColormap

        layers = self.viewer.layers
        selected = set(layers.selection)
        heat, mask = self.score_layer, self.mask_layer
        if heat is not None and heat.data.shape != self.scores.shape:
            layers.remove(heat)
            heat = None
        if mask is not None and mask.data.shape != self.scores.shape:
            layers.remove(mask)
            mask = None
        kw = self._layer_kwargs()
        if heat is None:
            heat = self.viewer.add_image(
                self.scores, name=SCORE_LAYER, colormap=score_colormap(),
                contrast_limits=(0.0, 1.0), opacity=0.7, blending="translucent", **kw,
            )
        else:
            heat.data = self.scores
            heat.contrast_limits = (0.0, 1.0)
        if mask is None:
            cmap = DirectLabelColormap(color_dict={0: "transparent", 1: MASK_COLOR,
                                                   None: "transparent"})
            mask = self.viewer.add_labels(self._mask_u8, name=MASK_LAYER, colormap=cmap,
                                          opacity=0.75, **kw)
        elif mask.data is not self._mask_u8:
            mask.data = self._mask_u8
        # order: ... RGB composite < heatmap < mask (the mask on top)
        top = len(layers) - 1
        if layers.index(mask) != top:
            layers.move(layers.index(mask), top)
        if layers.index(heat) != top - 1:
            layers.move(layers.index(heat), top - 1)
        if selected and selected != set(layers.selection):  # keep the user's selection
            layers.selection = {layer for layer in selected if layer in layers}

    # ---------------------------------------------------------------- live t_anom
    def _on_t_changed(self, t: float) -> None:
        """Slider callback: threshold into the preallocated buffer and refresh the mask only."""
        self.hist.set_threshold(float(t))
        if self.scores is None or self._mask_u8 is None:
            return
        np.greater_equal(self.scores, np.float32(t), out=self._mask_u8.view(bool))
        layer = self.mask_layer
        if layer is not None:
            layer.refresh()
        n = int(np.count_nonzero(self._mask_u8))
        self._n_flagged = n
        self.counts.setText(f"flagged: {n:,} px ({100.0 * n / self.scores.size:.2f} %) …")
        self._update_metrics(fast=True)
        self._commit_debounced()

    def _commit(self) -> None:
        """After the slider rests: count regions, update metrics, publish the mask."""
        if self.scores is None or self._mask_u8 is None:
            return
        mask = self._mask_u8.view(bool)
        n = int(np.count_nonzero(mask))
        labels, n_regions = label_mask(mask)
        self.counts.setText(
            f"flagged: {n:,} px ({100.0 * n / self.scores.size:.2f} %) in {n_regions:,} "
            f"region{'s' if n_regions != 1 else ''}"
        )
        self._update_metrics(fast=False)
        self.state.set_mask(mask.copy(), labels)

    # ---------------------------------------------------------------- p_min
    def _can_rescore(self) -> bool:
        return self.detection is not None and bool(getattr(self.detection, "can_rescore", False))

    def _show_p_min(self, value: int) -> None:
        """Put the p_min a Score chose on the slider without re-scoring."""
        self.p_min.blockSignals(True)
        try:
            if value > self.p_min.maximum():
                self.p_min.setMaximum(value * 2)
            self.p_min.setValue(value)
        finally:
            self.p_min.blockSignals(False)

    def _on_p_min_changed(self, value: int) -> None:
        self.p_min_auto.setChecked(False)  # the user chose a value
        if self._can_rescore():
            self.status.setText(f"p_min {value}: re-scoring…")
            self._rescore_debounced()

    def _request_rescore(self) -> Any:
        """Re-score at the slider's p_min in a worker; one at a time, the latest value wins."""
        if not self._can_rescore():
            return None
        if self._rescoring is not None:  # Detection.rescore is not re-entrant: queue the latest
            self._rescore_pending = True
            return None
        token = self._rescore_gen.next()
        p_min = int(self.p_min.value())
        self._rescoring = True  # (a synchronous worker finishes inside the call below)
        worker = start_function_worker(
            self.detection.rescore, p_min,
            on_returned=lambda scores, tok=token, p=p_min: self.apply_rescore(tok, p, scores),
            on_finished=self._on_rescore_finished,
            desc=f"re-scoring p_min={p_min}",
        )
        if self._rescoring is True:
            self._rescoring = worker
        return worker

    def _on_rescore_finished(self) -> None:
        self._rescoring = None
        if self._rescore_pending:
            self._rescore_pending = False
            self._request_rescore()

    def apply_rescore(self, token: int, p_min: int, score_map: np.ndarray) -> bool:
        """Show a rescore result unless a newer request (or a new detection) superseded it."""
        if not self._rescore_gen.is_current(token) or self._rescore_pending:
            return False
        self.show_scores(score_map)
        self.state.set_detection(self.detection)  # its score_map and params changed
        self.status.setText(f"Re-scored at p_min {p_min} from the cached hierarchy.")
        return True

    # ---------------------------------------------------------------- ground truth
    def _refresh_gt_choices(self, *_: Any) -> None:
        current = self.gt_combo.currentText()
        self.gt_combo.blockSignals(True)
        self.gt_combo.clear()
        self.gt_combo.addItem(NO_GT)
        for layer in self.viewer.layers:
            if layer.name in (SCORE_LAYER, MASK_LAYER):
                continue
            if layer.__class__.__name__ in ("Labels", "Image") and layer.ndim == 2 and not getattr(
                layer, "rgb", False
            ):
                self.gt_combo.addItem(layer.name)
        idx = self.gt_combo.findText(current)
        self.gt_combo.setCurrentIndex(max(idx, 0))
        self.gt_combo.blockSignals(False)
        if idx < 0 and current not in ("", NO_GT):
            self._on_gt_changed()

    def set_ground_truth(self, name: str) -> None:
        """Select a ground-truth layer by name (``"(none)"`` to clear)."""
        idx = self.gt_combo.findText(name)
        if idx < 0:
            raise ValueError(f"no usable layer named {name!r}")
        self.gt_combo.setCurrentIndex(idx)
        self._on_gt_changed()

    def _on_gt_changed(self, *_: Any) -> None:
        name = self.gt_combo.currentText()
        self._gt = None
        if name and name != NO_GT and name in self.viewer.layers and self.scores is not None:
            self._gt = ground_truth_array(self.viewer.layers[name], self.scores.shape)
            if self._gt is None:
                self.metrics_label.setText(f"'{name}' does not match the score map's shape.")
        elif name and name != NO_GT and self.scores is None:
            self.metrics_label.setText("Score first; metrics appear here.")
        self._start_roc()
        self._update_metrics(fast=False)

    def _start_roc(self) -> None:
        """Compute the ROC curve and AUC once per (scores, ground truth) in a worker."""
        token = self._roc_gen.next()
        self._auc = float("nan")
        self.roc.clear()
        self.roc.setVisible(self._gt is not None)
        if self._gt is None or self.scores is None:
            if self._gt is None:
                self.metrics_label.setText("" if self.gt_combo.currentText() in ("", NO_GT)
                                           else self.metrics_label.text())
            return
        finite = np.isfinite(self.scores)
        pos = int(np.count_nonzero(self._gt & finite))
        self._gt_counts = (pos, int(np.count_nonzero(finite)) - pos)
        start_function_worker(
            roc_curve, self.scores, self._gt,
            on_returned=lambda roc, tok=token: self._on_roc(tok, roc),
            on_error=lambda exc: self.metrics_label.setText(str(exc)),
            notify=False, desc="ROC curve",
        )

    def _on_roc(self, token: int, roc: tuple) -> None:
        if not self._roc_gen.is_current(token):
            return
        fpr, tpr, _ = roc
        self._auc = float(np.trapezoid(tpr, fpr))
        self.roc.set_curve(fpr, tpr, self._auc)
        self._update_metrics(fast=False)

    def _update_metrics(self, fast: bool) -> None:
        """TPR/FNR/precision/F-score at the current mask (as ``metrics.evaluate``) and the AUC."""
        if self._gt is None or self.scores is None or self._mask_u8 is None:
            return
        mask = self._mask_u8.view(bool)  # NaN scores are never flagged, as in evaluate
        tp = int(np.count_nonzero(mask & self._gt))
        fp = int(np.count_nonzero(mask)) - tp
        pos, neg = self._gt_counts
        fn = pos - tp
        tpr = tp / pos if pos else float("nan")
        precision = tp / (tp + fp) if tp + fp else 0.0
        f = 2 * precision * tpr / (precision + tpr) if (precision + tpr) > 0 else 0.0
        fpr = fp / neg if neg else float("nan")
        self.metrics = {"tpr": tpr, "fnr": 1.0 - tpr, "precision": precision, "f_score": f,
                        "auc": self._auc, "tp": tp, "fp": fp, "fn": fn}
        auc = "…" if self._auc != self._auc else f"{self._auc:.3f}"
        self.metrics_text = (f"TPR {tpr:.3f}   FNR {1 - tpr:.3f}   precision {precision:.3f}\n"
                             f"F-score {f:.3f}   AUC {auc}")
        self.metrics_label.setText(self.metrics_text)
        if fpr == fpr:
            self.roc.set_point(fpr, tpr)

    # ---------------------------------------------------------------- export
    def _export_dialog(self, what: str) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, f"Save {what}", f"anomaly_{what}.tif", "Maps (*.tif *.npy *.hdr)"
        )
        if path:
            self.export(what, path)

    def export(self, what: str, path: str | Path) -> Path | None:
        """Write the score map (``"scores"``) or the mask (``"mask"``, uint8) with ``write_map``."""
        from napari_hsi_anomaly.core.io import write_map

        if self.scores is None:
            self.status.setText("Nothing to save yet: press Score first.")
            return None
        array = self.scores if what == "scores" else self._mask_u8.copy()
        try:
            out = write_map(path, array, like=self.state.cube)
        except Exception as exc:  # shown to the user, never raised into Qt
            notify_error(exc)
            return None
        self.status.setText(f"Saved {what} to {out}.")
        return out
