"""Thresholds that mean something (Detect dock, under t_anom): the false-alarm rate of t_anom, t_anom set
by a false-alarm rate (CFAR) or by a contamination, the p_min warning, the precision-recall curve and the
detector comparison on the analyst's labels.

The normal population (``core.thresholds.normal_scores``) is computed in a worker once per detection
and p_min; the false-alarm rate then follows the t_anom slider live (a mean over at most 20,000 values).
The p_min warning is judged on the mask shown when the move began (``before``, kept through a drag) and
is yielded by the re-score worker before its map (``detect_rescore``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtWidgets import QComboBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from napari_hsi_anomaly._widgets.compare_panel import ComparePanel
from napari_hsi_anomaly._widgets.pr_plot import PrPlot
from napari_hsi_anomaly._widgets.workers import Generation, notify_error, start_function_worker

MODES = ("false-alarm rate", "contamination")


def _safe_risk(det: Any, p_min: int, t: float, flagged: np.ndarray | None = None) -> Any:
    """``p_min_risk``, or None when the hierarchy is busy or cannot say (never an error dialog)."""
    from napari_hsi_anomaly.core.thresholds import p_min_risk

    try:
        return p_min_risk(det, p_min, t, flagged=flagged)
    except Exception:  # a concurrent rescore of the same hierarchy; the next move asks again
        return None


class ThresholdPanel(QWidget):
    """False-alarm rate, set-by controls, p_min warning, PR curve, compare detectors."""

    def __init__(self, results: Any) -> None:
        super().__init__()
        self.results, self.state = results, results.state
        self.normal: np.ndarray | None = None
        self.before: np.ndarray | None = None  # the mask shown when the p_min move began (its risk's input)
        self._det_id = 0
        self._key: tuple = ()
        self._gen, self._pr_gen, self._risk_gen = Generation(), Generation(), Generation()
        self._pr_key: tuple = ()
        self.far_label = QLabel("false-alarm rate: -")
        self.far_label.setWordWrap(True)
        self.far_label.setToolTip("share of the normal population (the reference's calibration sample) "
                                  "scoring at or above t_anom")
        self.mode = QComboBox()
        self.mode.addItems(MODES)
        self.value = QLineEdit("1e-3")
        self.value.setMaximumWidth(70)
        self.set_btn = QPushButton("Set t_anom")
        self.pmin_warn = QLabel("")
        self.pmin_warn.setWordWrap(True)
        self.pmin_warn.setStyleSheet("color: #ff8a65;")
        self.pmin_warn.setVisible(False)  # only while there is a risk to name
        self.pr = PrPlot(theme=str(getattr(results.viewer, "theme", "dark")))
        self.pr.setVisible(False)
        self.compare = ComparePanel(results)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("by"))
        row.addWidget(self.mode, 1)
        row.addWidget(self.value)
        row.addWidget(self.set_btn)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(3)
        layout.addWidget(self.far_label)
        layout.addLayout(row)
        layout.addWidget(self.pmin_warn)  # until the host puts it under the p_min slider
        # the host places ``pr`` (beside the ROC) and ``compare``
        self.set_btn.clicked.connect(self.set_from_value)
        self.value.returnPressed.connect(self.set_from_value)
        results.t_anom.valueChanged.connect(self.update_far)
        results.committed.connect(self._on_committed)
        self.state.detection_changed.connect(self._on_detection)

    # ---------------------------------------------------------------- false-alarm rate
    def _on_detection(self, det: Any) -> None:
        if id(det) != self._det_id:  # a new result (not the shown one re-scored): a new move begins
            self._det_id, self.before = id(det), None
        self._refresh_normal(det)

    def _refresh_normal(self, det: Any) -> None:
        from napari_hsi_anomaly.core.thresholds import normal_scores

        key = (id(det), None if det is None else det.params.get("p_min"))
        if key == self._key:
            return
        self._key = key
        token = self._gen.next()
        self.normal = None
        if det is None or "scorer" not in getattr(det, "extras", {}):
            self.far_label.setText("false-alarm rate: -")
            return

        def done(s: np.ndarray) -> None:
            if self._gen.is_current(token):
                self.normal = s
                self.update_far()

        start_function_worker(normal_scores, det, on_returned=done, notify=False,
                              on_error=lambda exc: self.far_label.setText(f"false-alarm rate: {exc}"),
                              desc="normal population", progress_bar=False)

    def update_far(self, *_: Any) -> None:
        t = float(self.results.t_anom.value())
        s = self.normal
        if s is None or not s.size:
            return
        k = int(np.count_nonzero(s >= np.float32(t)))
        self.far_label.setText(f"false-alarm rate at t_anom {t:.2f}: {k / s.size:.2e} "
                               f"({k:,} of {s.size:,} normal pixels)")

    def threshold_for(self, mode: str, value: float) -> float:
        from napari_hsi_anomaly.core.thresholds import t_for_contamination, t_for_far

        det = self.state.detection
        if mode == MODES[0]:
            return t_for_far(det, value, normal=self.normal)
        valid = getattr(det, "extras", {}).get("valid") if det is not None else None
        return t_for_contamination(self.results.scores, value, valid=valid)

    def set_from_value(self) -> float | None:
        """Set t_anom from the chosen mode and value; returns the threshold."""
        from napari_hsi_anomaly.core.errors import HsiAnomalyError

        if self.results.scores is None or self.state.detection is None:
            return None
        try:
            value = float(self.value.text())
            if self.mode.currentText() == MODES[0] and self.normal is None:
                raise HsiAnomalyError("The normal population is still being computed; try again.")
            t = self.threshold_for(self.mode.currentText(), value)
        except (ValueError, HsiAnomalyError) as exc:
            notify_error(exc if isinstance(exc, HsiAnomalyError) else HsiAnomalyError(f"Not a number: "
                                                                                      f"{self.value.text()}"))
            return None
        slider = self.results.t_anom
        if t > 0.99 or (t * 100) % 1:  # the slider keeps two decimals: show the exact threshold's
            slider.setDecimals(4)
        slider.setValue(float(t))
        n = int(np.count_nonzero(self.results.scores >= np.float32(slider.value())))
        self.far_label.setText(self.far_label.text() + f"; t_anom {slider.value():.4f} flags {n:,} px")
        return t

    # ---------------------------------------------------------------- p_min
    def show_p_min_warning(self, message: str) -> None:
        """The one place the p_min warning is written: shown with a message, hidden without."""
        self.pmin_warn.setText(message)
        self.pmin_warn.setVisible(bool(message))

    def note_p_min_move(self, *_: Any) -> None:
        """The p_min slider moved: keep the mask shown now if this move begins a drag (or a step)."""
        if self.before is None and self.results.scores is not None:
            with np.errstate(invalid="ignore"):
                self.before = np.asarray(self.results.scores) >= np.float32(self.results.t_anom.value())

    def flagged_before(self) -> tuple[np.ndarray | None, float]:
        """``(mask shown when the move began, t_anom)``: what the p_min risk is judged on."""
        return self.before, float(self.results.t_anom.value())

    def settle(self, slider_down: bool) -> None:
        """A re-scored map is shown: the next move begins afresh, unless the user is still dragging."""
        if not slider_down:
            self.before = None

    def show_risk(self, risk: Any) -> None:
        self.show_p_min_warning(risk.message)

    def check_p_min(self, p_min: int | None = None) -> Any:
        """Warn beside the p_min slider when ``p_min`` lets flagged pixels cluster (``p_min_risk``; judged
        on the mask shown before the move when one is kept). The dock's moves get it from the re-score
        worker (``detect_rescore``); this is the same check on its own."""
        det = self.state.detection
        if det is None or not getattr(det, "can_rescore", False):
            self.show_p_min_warning("")
            return None
        p = int(p_min if p_min is not None else det.params.get("p_min", 0))
        token = self._risk_gen.next()
        flagged, t = self.flagged_before()

        def done(risk: Any) -> None:
            if self._risk_gen.is_current(token) and risk is not None:
                self.show_p_min_warning(risk.message)

        return start_function_worker(_safe_risk, det, p, t, flagged, on_returned=done, notify=False,
                                     desc="p_min check", progress_bar=False)

    # ---------------------------------------------------------------- PR curve
    def _on_committed(self) -> None:
        r = self.results
        gt, scores = getattr(r, "_gt", None), r.scores
        self._refresh_normal(self.state.detection)
        self.pr.setVisible(gt is not None and scores is not None)
        if gt is None or scores is None:
            return
        key = (id(gt), id(scores), float(np.nansum(scores[::97, ::89])))
        if key != self._pr_key:
            self._pr_key = key
            self._start_pr(scores, gt)
        self._pr_point()

    def _start_pr(self, scores: np.ndarray, gt: np.ndarray) -> None:
        from napari_hsi_anomaly.core.scoring.metrics import pr_curve

        token = self._pr_gen.next()

        def done(curve: tuple) -> None:
            if self._pr_gen.is_current(token):
                p, rcl, _ = curve
                ap = float(np.sum(np.diff(np.r_[0.0, rcl]) * p))
                self.pr.set_curve(p, rcl, ap)
                self._pr_point()

        start_function_worker(pr_curve, scores, gt, on_returned=done, notify=False, desc="PR curve",
                              progress_bar=False)

    def _pr_point(self) -> None:
        m = self.results.metrics
        if m and m.get("tpr") == m.get("tpr"):
            self.pr.set_point(float(m["tpr"]), float(m["precision"]))
