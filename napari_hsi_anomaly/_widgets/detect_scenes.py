"""The Detect dock's scenes: which results belong to which scene, and bringing them back.

``SceneResultsMixin`` (part of ``DetectWidget``) files what the dock shows into the scene that leaves
the screen (``scenes.SceneResults``: the scene table's rows, t_anom, p_min, the score map and the mask
buffer themselves) and restores it when the scene comes back, so a switch never asks for a new Score.
A row of the scene table brings its scene (another opened file, or a date of the stack) on screen.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_hsi_anomaly._widgets.scenes import SceneResults


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


class SceneResultsMixin:
    """Scene changes, the scene table's rows and per-scene results (mixed into ``DetectWidget``)."""

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
        from qtpy.QtCore import QTimer  # the mask again once every dock has followed the cube (Inspect's

        QTimer.singleShot(0, self.results.commit)  # regions are counted from it)
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

