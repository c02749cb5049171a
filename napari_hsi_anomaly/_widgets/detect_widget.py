"""The Detect dock: where "normal" comes from, the detector and its parameters, Score, the results.

A thin dock over five parts: ``ReferencePanel`` (normal from this cube, reference layers/dates or a
saved profile; Save profile...), ``ParamsForm`` (detector list and its magicgui form from the
registry's ``Param`` declarations, live p_min), ``ResultsPanel`` (live t_anom, counts, histogram,
ground truth, metrics, ROC, export), ``SceneTable`` (one row per scored scene) and ``ResultLayers``
(the heatmap and mask above the scene's images). Scoring runs ``detect_jobs.score_job`` in a worker;
p_min re-scores the shown detection in a worker (``detect_rescore.LiveRescore``). Nothing heavier than
array slicing and layer updates runs in the GUI thread.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from qtpy.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from napari_hsi_anomaly._widgets import warmup
from napari_hsi_anomaly._widgets.detect_jobs import JobResult, Target, score_job
from napari_hsi_anomaly._widgets.detect_layers import (  # noqa: F401 - re-exported for other docks
    MASK_LAYER,
    SCORE_LAYER,
    ResultLayers,
    find_layer,
    score_colormap,
)
from napari_hsi_anomaly._widgets.detect_params import ParamsForm
from napari_hsi_anomaly._widgets.detect_rescore import LiveRescore
from napari_hsi_anomaly._widgets.detect_results import NO_GT, ResultsPanel  # noqa: F401
from napari_hsi_anomaly._widgets.detect_scenes import (  # noqa: F401 - re-exported
    SceneResultsMixin,
    scene_index,
    scene_name,
)
from napari_hsi_anomaly._widgets.progress_bar import LightProgressBar
from napari_hsi_anomaly._widgets.reference_panel import ReferencePanel
from napari_hsi_anomaly._widgets.scene_table import SceneTable
from napari_hsi_anomaly._widgets.scroll import scroll_dock
from napari_hsi_anomaly._widgets.state import get_state
from napari_hsi_anomaly._widgets.workers import connect_alive, guarded, start_generator_worker
from napari_hsi_anomaly.core.progress import Progress

WINDOW_FEATURES = ("f1", "f2", "f3", "f4")  # window/section features (the thesis's window level)


class DetectWidget(SceneResultsMixin, QWidget):
    """Normal from, method, parameters, Score/Cancel, scene table and live results."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        warmup.start()  # napari's label kernel and ours compile off the GUI thread, now
        self.viewer = napari_viewer
        self.state = get_state(napari_viewer)
        self.detection: Any = None
        self.scenes: list = []  # SceneResult of the last Score
        self.current = -1  # index into scenes of the one on screen
        self._worker: Any = None
        self._t0 = 0.0
        self._switching = False  # we publish a cube ourselves (a table row): keep results
        self.rescore = LiveRescore(lambda: self.detection, lambda: self.p_min.value(),
                                   lambda *a: self.apply_rescore(*a),
                                   flagged=lambda: self.results.analyst.flagged_before(),
                                   on_risk=lambda risk: self.results.analyst.show_risk(risk))
        self.layers = ResultLayers(napari_viewer, self.state)
        self._build()
        self.params.p_min_moved.connect(self._on_p_min_moved)
        self.params.changed.connect(self._on_params_changed)
        self.table.scene_selected.connect(lambda i: guarded(self.select_scene, i))
        self.results.committed.connect(self._on_committed)
        connect_alive(self, self.state.cube_changed, lambda c: guarded(self._on_cube_changed, c))
        if self.state.scenes is not None:
            connect_alive(self, self.state.scenes.leaving, lambda s: guarded(self._on_leaving, s))
        if hasattr(self.state, "bands_changed"):
            self.state.bands_changed.connect(self._on_bands_changed)
        if hasattr(self.state, "ground_truth_changed"):
            self.state.ground_truth_changed.connect(self.results.follow_ground_truth)
        self.params.p_min_moved.connect(self.results.analyst.note_p_min_move)  # before the move's re-score
        self.p_min.sliderReleased.connect(self._on_p_min_released)
        self.params.place_p_min_warning(self.results.analyst.pmin_warn)  # the warning under the slider
        self.state.detection_changed.connect(self._adopt)  # Mark as normal / Undo (Inspect dock)
        self._on_cube_changed(self.state.cube)  # a cube chosen before this dock opened

    # ---------------------------------------------------------------- layout
    def _build(self) -> None:
        self.reference = ReferencePanel(self.viewer, self.state)
        self.params = ParamsForm()
        self.score_btn = QPushButton("Score")
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        buttons = QWidget()
        row = QHBoxLayout(buttons)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.score_btn)
        row.addWidget(self.cancel_btn)
        self.progress = LightProgressBar()  # QProgressBar repaints synchronously (a GUI stall)
        self.status = QLabel("Load a cube, then press Score.")
        self.status.setWordWrap(True)
        self.table = SceneTable()
        self.per_scene_btn = QPushButton("A heatmap layer per scene")
        self.per_scene_btn.setToolTip("Add each scored scene's heatmap as a hidden layer "
                                      "'anomaly score [scene]' (window/section features: added at Score)")
        self.per_scene_btn.setVisible(False)
        self.results = ResultsPanel(self.viewer, self.state, self.layers)
        self.tabs = QTabWidget()  # below the fold-critical part: Score, t_anom, histogram, metrics
        scenes_page = QWidget()
        scenes_layout = QVBoxLayout(scenes_page)
        scenes_layout.setContentsMargins(0, 0, 0, 0)
        scenes_layout.addWidget(self.table)
        scenes_layout.addWidget(self.per_scene_btn)
        self.tabs.addTab(scenes_page, "scenes")
        self.tabs.addTab(self.results.roc, "ROC")
        self.tabs.addTab(self.results.analyst.pr, "precision-recall")
        self.tabs.addTab(self.results.analyst.compare, "compare detectors")
        self.tabs.setVisible(False)
        self.table.shown.connect(self._show_tabs)
        self.results.roc_shown.connect(self._show_tabs)
        self.results.committed.connect(self._show_tabs)
        body = scroll_dock(self, [self.reference, self.params, buttons, self.progress, self.status,
                                  self.results, self.tabs], margins=6)
        for combo in body.findChildren(QComboBox):  # long names must not widen the dock past its column
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(12)
        self.score_btn.clicked.connect(self.run_score)
        self.cancel_btn.clicked.connect(self.cancel)
        self.per_scene_btn.clicked.connect(self.add_scene_layers)
        self.reference.save_requested.connect(self.reference.save)
        self.reference.saved.connect(self.status.setText)

    def _show_tabs(self, *_: Any) -> None:
        """The tabs show once a scene is scored; a scene table that appears leads, else a new ROC (for
        one scene). A tab the user chose is left alone while nothing new appears."""
        table, roc = self.table.rowCount() > 1, self.results.roc_ready
        self.tabs.setVisible(table or roc or self.results.scores is not None)
        self.tabs.setTabEnabled(0, table)
        self.tabs.setTabEnabled(1, roc)
        self.tabs.setTabEnabled(2, roc)
        had_table, had_roc = getattr(self, "_tabs_had", (False, False))
        self._tabs_had = (table, roc)
        if table and not had_table:
            self.tabs.setCurrentIndex(0)
        elif roc and not had_roc and not table:
            self.tabs.setCurrentIndex(1)

    # ---------------------------------------------------------------- facade (tests, other docks)
    t_anom = property(lambda self: self.results.t_anom)
    hist = property(lambda self: self.results.hist)
    counts = property(lambda self: self.results.counts)
    gt_combo = property(lambda self: self.results.gt_combo)
    metrics_label = property(lambda self: self.results.metrics_label)
    roc = property(lambda self: self.results.roc)
    scores = property(lambda self: self.results.scores)
    mask = property(lambda self: self.results.mask)
    metrics = property(lambda self: self.results.metrics)
    metrics_text = property(lambda self: self.results.metrics_text)
    _auc = property(lambda self: self.results._auc)
    _commit_debounced = property(lambda self: self.results.commit_debounced)
    method = property(lambda self: self.params.method)
    p_min = property(lambda self: self.params.p_min)
    p_min_auto = property(lambda self: self.params.p_min_auto)
    score_layer = property(lambda self: self.layers.heat)
    mask_layer = property(lambda self: self.layers.mask)

    @property
    def method_name(self) -> str:
        return self.params.method_name

    def set_method(self, name: str, feature: str | None = None) -> None:
        self.params.set_method(name, feature)

    def set_ground_truth(self, name: str) -> None:
        self.results.set_ground_truth(name)

    def export(self, what: str, path: Any) -> Any:
        out = self.results.export(what, path)
        if out is not None:
            self.status.setText(f"Saved {what} to {out}.")
        return out

    def show_scores(self, score_map: np.ndarray) -> None:
        self.results.show_scores(score_map, self.layers.scene or scene_name(self.state))

    def _adopt(self, det: Any) -> None:
        """Show a detection another dock derived from the shown one (refitted, or the one before)."""
        if det is None or det is self.detection or not 0 <= self.current < len(self.scenes):
            return
        if np.shape(det.score_map) != np.shape(self.scenes[self.current].detection.score_map):
            return
        self.detection = self.scenes[self.current].detection = det
        self.rescore.gen.next()
        self.results.show_scores(det.score_map, self.scenes[self.current].name)

    def _on_bands_changed(self, bands: Any) -> None:
        if self.results.scores is not None:
            n = "every band" if bands is None else f"{len(bands)} bands"
            self.status.setText(f"Band selection changed ({n}): press Score to detect with it.")

    def _on_params_changed(self) -> None:
        self.reference.set_detector(self.params.spec)

    # ---------------------------------------------------------------- scoring
    def _targets(self) -> list[Target]:
        targets = self.reference.targets()
        if targets:
            return targets
        cube = self.state.cube
        if cube is None:
            return []
        analysed = self.state.analysis_cube() if hasattr(self.state, "analysis_cube") else cube
        date = cube.metadata.get("date") if isinstance(getattr(cube, "metadata", None), dict) else None
        return [Target(scene_name(self.state), analysed, self.state.cube_layer, self.state.rgb_layer,
                       date, cube)]

    def run_score(self) -> Any:
        """Start a Score run; returns the worker (None when nothing to do)."""
        if self._worker is not None:
            return None
        try:
            targets = self._targets()
            refs = self.reference.references()
            scorer = self.reference.profile_scorer()
        except Exception as exc:  # a bad choice in the reference panel: one notification
            from napari_hsi_anomaly._widgets.workers import notify_error

            notify_error(exc)
            return None
        if not targets:
            self.status.setText("No cube: open one (File > Open, or the Cube dock) first.")
            return None
        spec = self.params.spec
        params = self.params.values()
        model = self.state.model if spec.needs_model else None
        trains = spec.needs_model and model is None and scorer is None
        where = (f" against the profile {self.reference.profile_name}" if scorer is not None else
                 f" against {len(refs)} reference cube(s)" if refs else "")
        what = f"{len(targets)} scenes" if len(targets) > 1 else targets[0].name
        first = "No model loaded: training a fast model first, then " if trains else ""
        self.status.setText(f"{first}scoring {what} with {self.method.currentText()}{where}…")
        self.progress.setRange(0, 0)
        self.progress.setFormat("starting…")
        self.score_btn.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        self._t0 = time.perf_counter()
        self._worker = True  # (a synchronous worker finishes inside the call below)
        worker = start_generator_worker(
            score_job, targets, spec.name, params, model=model, references=refs or None,
            scorer=scorer,
            on_progress=self._on_progress,
            on_returned=self._on_scored,
            on_error=self._on_score_error,
            on_aborted=lambda: self.status.setText("Cancelled; earlier results kept."),
            on_finished=self._on_score_finished,
            desc="anomaly scoring", progress_bar=False,
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
        kept = " Earlier results kept." if self.results.scores is not None else ""
        self.status.setText(f"Scoring failed: {exc}{kept}")

    def _on_score_finished(self) -> None:
        self._worker = None
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")
        self.score_btn.setEnabled(True)
        self.cancel_btn.setEnabled(False)

    def _on_scored(self, result: JobResult) -> None:
        trained = result.model is not None and self.state.model is None
        if trained:
            self.state.set_model(result.model)  # reused by the next Score and the Model dock
        self.reference.set_fitted(result.scorer)
        self.scenes = list(result.scenes)
        self._file_batch()
        t = float(self.t_anom.value())
        self.table.set_scenes(self.scenes, t)
        self.per_scene_btn.setVisible(len(self.scenes) > 1)
        if len(self.scenes) > 1 and str(self.scenes[0].detection.feature) in WINDOW_FEATURES:
            self.add_scene_layers()  # the thesis's window level: each scene's heatmap in its own layer
        here = self._scene_of(self.state.cube)
        self.current = -1
        self.select_scene(here if here >= 0 else 0, publish=here < 0 and len(self.scenes) > 1)
        note = " after training a fast model (kept for the next Score)" if trained else ""
        if not self.params.spec.needs_model and self.state.model is not None:
            note += " (this method uses no CAE: pick a CAE method to use the loaded model)"
        took = time.perf_counter() - self._t0
        what = f"{len(self.scenes)} scenes" if len(self.scenes) > 1 else "the cube"
        self.status.setText(f"Scored {what} with {self.method.currentText()}{note} in {took:.1f}\u00a0s.")

    # ---------------------------------------------------------------- p_min
    _rescore_debounced = property(lambda self: self.rescore.debounced)
    _rescoring = property(lambda self: self.rescore.running)
    _rescore_gen = property(lambda self: self.rescore.gen)

    def _on_p_min_moved(self, value: int) -> None:
        if self.rescore.possible():
            self.status.setText(f"p_min {value}: re-scoring…")
            self.rescore.debounced()

    def _on_p_min_released(self) -> None:
        """A drag ended on a map already shown: the next move is judged on it (else the re-score's does)."""
        det = self.detection
        if det is not None and self.rescore.running is None and det.params.get("p_min") == self.p_min.value():
            self.results.analyst.settle(False)

    def apply_rescore(self, token: int, p_min: int, score_map: np.ndarray) -> bool:
        """Show a rescore result unless a newer request (or a new detection) superseded it."""
        if not self.rescore.is_current(token):
            return False
        self.results.show_scores(score_map, self.layers.scene, live=True)
        self.state.set_detection(self.detection)  # its score_map and params changed
        self.results.analyst.settle(self.p_min.isSliderDown())
        self.status.setText(f"Re-scored at p_min {p_min} from the cached hierarchy.")
        return True
