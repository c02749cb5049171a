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
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
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
from napari_hsi_anomaly._widgets.progress_bar import LightProgressBar
from napari_hsi_anomaly._widgets.reference_panel import ReferencePanel
from napari_hsi_anomaly._widgets.scene_table import SceneTable
from napari_hsi_anomaly._widgets.scenes import SceneResults
from napari_hsi_anomaly._widgets.state import get_state
from napari_hsi_anomaly._widgets.workers import guarded, start_generator_worker
from napari_hsi_anomaly.core.progress import Progress

WINDOW_FEATURES = ("f1", "f2", "f3", "f4")  # window/section features (the thesis's window level)


def scene_name(state: Any) -> str:
    """The name results are filed under: the cube layer's name (or the cube's)."""
    cube = state.cube
    return str(state.cube_layer or (cube.name if cube is not None else "scene"))


def scene_index(scenes: list, cube: Any, layer: str | None) -> int:
    """The table row of ``cube``: the same object, or the same date of the same stack layer (-1: none)."""
    date = cube.metadata.get("date") if isinstance(getattr(cube, "metadata", None), dict) else None
    for i, s in enumerate(scenes):
        if s.cube is cube:
            return i
        if date is not None and s.date == date and s.layer == layer:
            return i
    return -1


class DetectWidget(QWidget):
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
                                   lambda *a: self.apply_rescore(*a))
        self.layers = ResultLayers(napari_viewer, self.state)
        self._build()
        self.params.p_min_moved.connect(self._on_p_min_moved)
        self.params.changed.connect(self._on_params_changed)
        self.table.scene_selected.connect(lambda i: guarded(self.select_scene, i))
        self.results.committed.connect(self._on_committed)
        self.state.cube_changed.connect(lambda c: guarded(self._on_cube_changed, c))
        if self.state.scenes is not None:
            self.state.scenes.leaving.connect(lambda s: guarded(self._on_leaving, s))
        if hasattr(self.state, "bands_changed"):
            self.state.bands_changed.connect(self._on_bands_changed)
        if hasattr(self.state, "ground_truth_changed"):
            self.state.ground_truth_changed.connect(self.results.follow_ground_truth)
        self._on_cube_changed(self.state.cube)  # a cube chosen before this dock opened

    # ---------------------------------------------------------------- layout
    def _build(self) -> None:
        self.reference = ReferencePanel(self.viewer, self.state)
        self.params = ParamsForm()
        self.score_btn = QPushButton("Score")
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.score_btn)
        buttons.addWidget(self.cancel_btn)
        self.progress = LightProgressBar()  # QProgressBar repaints synchronously (a GUI stall)
        self.status = QLabel("Load a cube, then press Score.")
        self.status.setWordWrap(True)
        self.table = SceneTable()
        self.per_scene_btn = QPushButton("A heatmap layer per scene")
        self.per_scene_btn.setToolTip("Add each scored scene's heatmap as a hidden layer "
                                      "'anomaly score [scene]' (window/section features: added at Score)")
        self.per_scene_btn.setVisible(False)
        self.results = ResultsPanel(self.viewer, self.state, self.layers)

        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        layout.addWidget(self.reference)
        layout.addWidget(self.params)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.table)
        layout.addWidget(self.per_scene_btn)
        layout.addWidget(self.results)
        layout.addStretch(1)
        for combo in body.findChildren(QComboBox):  # long names must not widen the dock past its column
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(12)
        scroll = QScrollArea()  # long panels scroll inside the dock, never the window
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self.score_btn.clicked.connect(self.run_score)
        self.cancel_btn.clicked.connect(self.cancel)
        self.per_scene_btn.clicked.connect(self.add_scene_layers)
        self.reference.save_requested.connect(self.reference.save)
        self.reference.saved.connect(self.status.setText)

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

    # ---------------------------------------------------------------- scene changes
    def _on_cube_changed(self, cube: Any) -> None:
        if self._switching or cube is None:
            return
        if self._restore(cube):
            return
        idx = self._scene_of(cube)
        if idx >= 0:  # a scored scene (a date or layer of the table): show its results
            self.select_scene(idx, publish=False)
            return
        name = scene_name(self.state)
        if self.results.scores is not None and self.layers.scene == name and \
                self.results.scores.shape == tuple(cube.shape[1:]):
            self.status.setText(f"Cube {name} changed (bands?): press Score to detect again.")
            return
        retired = self.layers.retire()  # another date of the stack on screen: its own results
        self.rescore.gen.next()
        self.detection = None
        self.scenes, self.current = [], -1
        self.table.clear_scenes()
        self.per_scene_btn.setVisible(False)
        self.results.reset()
        self.state.set_detection(None)
        self.state.set_mask(None)
        self.params.show_auto_p_min(cube)
        kept = " (earlier results hidden as '[scene]' layers)" if retired else ""
        self.status.setText(f"Cube {name} ({cube.bands} bands): press Score.{kept}")

    def _on_leaving(self, scene: Any) -> None:
        """Another scene comes on screen: file what this one shows (restored as it is on return)."""
        scene.detector, scene.normal_from = self.method_name, self.reference.mode_key
        scene.references = self.reference.checked_names()
        if self.results.scores is None or not 0 <= self.current < len(self.scenes):
            return
        r = self.results
        scene.results = SceneResults(
            self.scenes, self.current, float(self.t_anom.value()), int(self.p_min.value()),
            r.gt_combo.currentText(), r.scores, r.mask_u8, dict(r.metrics))

    def _restore(self, cube: Any) -> bool:
        """The scene on screen has results filed: show them as they were (no new Score)."""
        mgr = self.state.scenes
        scene = mgr.active if mgr is not None else None
        saved = scene.results if scene is not None else None
        if saved is None:
            return False
        self.scenes = saved.batch
        idx = self._scene_of(cube)
        if idx < 0:
            return False
        if scene.detector and scene.detector != self.method_name:
            self.params.set_method(scene.detector)
        if scene.normal_from:
            self.reference.set_mode(scene.normal_from)
        self.t_anom.blockSignals(True)
        self.t_anom.setValue(saved.t_anom)
        self.t_anom.blockSignals(False)
        if saved.mask_u8 is not None and saved.index == idx:
            self.results.mask_u8 = saved.mask_u8  # the mask layer's own buffer, as it was
        self.table.set_scenes(self.scenes, saved.t_anom)
        self.per_scene_btn.setVisible(len(self.scenes) > 1)
        self.current = -1
        self.select_scene(idx, publish=False)
        self.status.setText(f"{scene.name}: results as they were (t_anom {saved.t_anom:.2f}).")
        return True

    def _file_batch(self) -> None:
        """Every opened scene scored by the last run keeps its row, so it comes back scored."""
        mgr = self.state.scenes
        if mgr is None:
            return
        for i, s in enumerate(self.scenes):
            scene = mgr.named(s.layer)
            if scene is not None and (scene.results is None or scene.results.batch is not self.scenes):
                scene.results = SceneResults(self.scenes, i, float(self.t_anom.value()))

    def _scene_of(self, cube: Any) -> int:
        return scene_index(self.scenes, cube, self.state.cube_layer)

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

    # ---------------------------------------------------------------- scenes
    def select_scene(self, index: int, publish: bool = True) -> None:
        """Show scene ``index`` of the table: its images (date or layer), heatmap and mask."""
        if not 0 <= index < len(self.scenes):
            return
        scene = self.scenes[index]
        self.current = index
        self.detection = scene.detection
        self.rescore.gen.next()  # rescoring results of another scene are stale now
        if publish:
            self._publish(scene)
        det = scene.detection
        if det.params.get("p_min"):
            self.params.show_p_min(int(det.params["p_min"]))
        self.results.show_scores(det.score_map, scene.name)
        self.table.select(index)
        self.state.set_detection(det)

    def _publish(self, scene: Any) -> None:
        """Make ``scene`` the shared cube (Inspect follows) and bring its images into view."""
        mgr = self.state.scenes
        owner = mgr.named(scene.layer) if mgr is not None else None
        self._switching = True  # the Cube dock and the date slider publish the cube themselves
        try:
            if owner is not None and owner is not mgr.active:
                mgr.activate(owner)
            if scene.date is not None and scene.layer in self.viewer.layers:
                layer = self.viewer.layers[scene.layer]
                axis = self.viewer.dims.ndim - layer.ndim + int(layer.metadata.get("date_axis", 0))
                if 0 <= axis < self.viewer.dims.ndim:
                    self.viewer.dims.set_current_step(axis, scene.date)
            if self.state.cube is not scene.cube:
                self.state.set_cube(scene.cube, scene.layer or self.state.cube_layer,
                                    scene.rgb_layer or self.state.rgb_layer,
                                    getattr(self.state, "band_selection", None))
        finally:
            self._switching = False

    def add_scene_layers(self) -> list:
        """Each scored scene's heatmap in a hidden layer of its own ("anomaly score [scene]")."""
        return [self.layers.scene_layer(s.name, np.asarray(s.detection.score_map, dtype=np.float32))
                for s in self.scenes]

    def _on_committed(self) -> None:
        if 0 <= self.current < len(self.scenes):
            self.table.update_rows(self.scenes, float(self.t_anom.value()))

    # ---------------------------------------------------------------- p_min
    _rescore_debounced = property(lambda self: self.rescore.debounced)
    _rescoring = property(lambda self: self.rescore.running)
    _rescore_gen = property(lambda self: self.rescore.gen)

    def _on_p_min_moved(self, value: int) -> None:
        if self.rescore.possible():
            self.status.setText(f"p_min {value}: re-scoring…")
            self.rescore.debounced()

    def apply_rescore(self, token: int, p_min: int, score_map: np.ndarray) -> bool:
        """Show a rescore result unless a newer request (or a new detection) superseded it."""
        if not self.rescore.is_current(token):
            return False
        self.results.show_scores(score_map, self.layers.scene, live=True)
        self.state.set_detection(self.detection)  # its score_map and params changed
        self.status.setText(f"Re-scored at p_min {p_min} from the cached hierarchy.")
        return True
