"""Scenes as objects: what one opened file (a cube, or a stack whose dates are scenes) holds in the viewer.

A small model in the style of napari-animation's headless one, shared by the docks through
``state.get_state(viewer).scenes``:

- ``Scene`` owns its napari layers (band stack, RGB composite, ground truth, heatmap, mask, anything
  added while it was on screen), what the Cube dock chose for it (band selection, display mode) and
  what the Detect dock produced for it (``SceneResults``: the scene table's rows, this scene's
  detection, t_anom, p_min, ground truth, metrics).
- ``SceneManager`` keeps the list and the active scene. Only the active scene's layers are in
  ``viewer.layers``: the others are REMOVED (kept in their ``Scene``, re-inserted in the same order
  on return), because napari computes its axes and ranges over every layer, hidden ones included.
  Docks save what they show on ``leaving`` and restore it on ``activated``; nothing is re-scored.

A new scene is made when a layer whose reader metadata names an unknown cube or stack (or a plain
3-D image) is inserted; it becomes active right after the insertion (a timer: napari's own handlers
of the insertion must finish first) or at once through ``activate_pending``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from psygnal import Signal

from napari_hsi_anomaly.core.cube import Cube


def _key(layer: Any) -> Any:
    """What a layer belongs to: its stack of dates, else its ``Cube`` (reader metadata), else None."""
    meta = getattr(layer, "metadata", None) or {}
    stack = meta.get("stack")
    if stack is not None:
        return stack
    cube = meta.get("cube")
    return cube if isinstance(cube, Cube) else None


def _is_band_stack(layer: Any) -> bool:
    from napari.layers import Image

    return isinstance(layer, Image) and not layer.rgb and (
        _key(layer) is not None or layer.ndim == 3)


@dataclass
class SceneResults:
    """What the Detect dock showed for a scene, restored as it was on return (no new Score)."""

    batch: list  # the SceneResult rows of the Score that produced it (the scene table)
    index: int  # the row on screen
    t_anom: float = 0.7
    p_min: int | None = None
    ground_truth: str | None = None
    scores: Any = None  # the score map shown (the heatmap layer's data, same object)
    mask_u8: Any = None  # the mask layer's buffer
    metrics: dict = field(default_factory=dict)


@dataclass(eq=False)
class Scene:
    """One opened cube or stack of dates, with its layers and the docks' choices and results."""

    key: Any  # core.cube.Cube, or core.stack.Stack (every date is one cube of it)
    name: str
    layers: list = field(default_factory=list)  # its napari layers while it is not on screen
    band_selection: Any = None  # 0-based band indices analysis uses (None: all bands)
    bands_chosen: bool = False  # band_selection set by the user or the dock (else: the default)
    mode: str = "rgb"  # "rgb" composite or "band" stack on screen
    detector: str | None = None
    params: dict = field(default_factory=dict)
    normal_from: str | None = None  # "cube", "references", "profile"
    references: list = field(default_factory=list)
    results: SceneResults | None = None
    dims_step: tuple | None = None  # napari's slider positions (date, band) when it was left
    camera: tuple | None = None  # (center, zoom) when it was left
    extra: dict = field(default_factory=dict)  # other docks' per-scene state (e.g. Inspect's pins)

    @property
    def is_stack(self) -> bool:
        return not isinstance(self.key, Cube)

    @property
    def n_dates(self) -> int:
        return int(getattr(self.key, "n_dates", 1)) if self.is_stack else 1

    @property
    def bands(self) -> int:
        return int(self.key.bands) if hasattr(self.key, "bands") else int(self.key.cube(0).bands)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of every cube of the scene."""
        cube = self.key if not self.is_stack else self.key.cube(0)
        return int(cube.rows), int(cube.cols)


class SceneManager:
    """The scenes of one viewer and the one on screen; see the module docstring."""

    opened = Signal(object)  # Scene: a new file or layer became a scene
    leaving = Signal(object)  # Scene: about to leave the screen (docks save what they show)
    activated = Signal(object)  # Scene: on screen now (its layers are the viewer's)
    closed = Signal(object)  # Scene: closed (its layers are gone)
    changed = Signal()  # the list of scenes changed (names, count)

    def __init__(self, viewer: Any) -> None:
        self.viewer = viewer
        self.scenes: list[Scene] = []
        self.active: Scene | None = None
        self.pending: Scene | None = None  # made by an insertion, active after it
        self.moving = 0  # > 0 while layers are moved in or out (docks ignore those events)
        self._owner: dict[int, Scene] = {}  # id(layer) -> Scene, for layers in the viewer
        viewer.layers.events.inserted.connect(self._on_inserted)
        viewer.layers.events.removed.connect(self._on_removed)
        for layer in list(viewer.layers):
            self._adopt(layer)
        if self.pending is not None:
            self.activate_pending()

    # ---- lookups
    def owner(self, layer: Any) -> Scene | None:
        return self._owner.get(id(layer))

    def for_key(self, key: Any) -> Scene | None:
        return next((s for s in self.scenes if s.key is key), None)

    def named(self, name: str | None) -> Scene | None:
        return next((s for s in self.scenes if s.name == name), None)

    def layers_of(self, scene: Scene) -> list:
        """The scene's layers: those in the viewer (on screen, or just added) and those kept aside."""
        shown = [lay for lay in self.viewer.layers if self._owner.get(id(lay)) is scene]
        return shown + [lay for lay in scene.layers if lay not in shown]

    def band_stack(self, scene: Scene) -> Any:
        """The scene's band-stack (or stack-of-dates) Image layer."""
        return next((lay for lay in self.layers_of(scene)
                     if _is_band_stack(lay) and _key(lay) is scene.key), None)

    # ---- layer events
    def _on_inserted(self, event: Any) -> None:
        if self.moving:
            return
        scene = self._adopt(event.value)
        if scene is None or scene is not self.pending:
            return
        if self.active is None:  # nothing to take out of the viewer: on screen at once
            self.activate_pending()
            return
        from qtpy.QtCore import QTimer  # taking layers out inside napari's insertion is not safe

        QTimer.singleShot(0, self.activate_pending)

    def _adopt(self, layer: Any) -> Scene | None:
        """File ``layer`` under its scene (a new one for an unknown cube/stack); returns a new scene."""
        key = _key(layer)
        if key is None and _is_band_stack(layer):
            from napari_hsi_anomaly._widgets.cube_info import layer_cube

            key = layer_cube(layer)  # a plain 3-D image becomes a cube of its own
        scene = self.for_key(key) if key is not None else None
        new = None
        if scene is None and key is not None and _is_band_stack(layer):
            scene = new = Scene(key, self._unique(layer))
            self.scenes.append(scene)
            self.pending = scene
        if scene is None:
            scene = self.pending or self.active
        if scene is not None:
            self._owner[id(layer)] = scene
        if new is not None:
            self.opened.emit(new)
            self.changed.emit()
        return new

    def _unique(self, layer: Any) -> str:
        """The layer's name, suffixed when a scene off screen already has it (names stay unique)."""
        taken = {s.name for s in self.scenes}
        name, k = layer.name, 2
        while name in taken:
            name, k = f"{layer.name} [{k}]", k + 1
        if name != layer.name:
            layer.name = name
        return name

    def _on_removed(self, event: Any) -> None:
        if self.moving:
            return
        layer = event.value
        scene = self._owner.pop(id(layer), None)
        if scene is not None and _is_band_stack(layer) and _key(layer) is scene.key:
            from qtpy.QtCore import QTimer  # the user deleted the scene's cube: the scene goes with it

            QTimer.singleShot(0, lambda: self._closed_by_removal(scene))  # after napari's handlers

    def _closed_by_removal(self, scene: Scene) -> None:
        """Close ``scene``; a neighbour comes on screen unless the viewer was emptied (closing)."""
        from napari_hsi_anomaly._widgets.workers import guarded

        if scene in self.scenes:
            guarded(self.close, scene, bring_next=self._viewer_open())

    def _viewer_open(self) -> bool:
        """False once napari closed the viewer's window (its layers were cleared as it closed)."""
        try:
            window = getattr(self.viewer, "window", None)
        except Exception:  # a closed viewer may refuse
            return False
        return window is None or getattr(window, "_qt_window", None) is not None

    # ---- switching
    def activate_pending(self) -> None:
        scene, self.pending = self.pending, None
        if scene is not None and scene in self.scenes:
            self.activate(scene)

    def activate(self, scene: Scene) -> None:
        """Put ``scene``'s layers in the viewer (the others out, kept in their scenes) and emit."""
        if scene not in self.scenes:
            raise ValueError(f"no scene {scene.name!r}")
        if self.pending is scene:
            self.pending = None
        old = self.active
        layers = self.viewer.layers
        for lay in layers:  # layers there before any scene: the first scene's
            self._owner.setdefault(id(lay), old or scene)
        if old is scene and all(self._owner.get(id(lay)) is scene for lay in layers):
            return
        if old is not None and old is not scene:
            self.leaving.emit(old)
            self._remember_view(old)
        self.moving += 1
        try:
            strangers = [lay for lay in layers if self._owner.get(id(lay)) is not scene]
            for lay in strangers:  # out, in order, into their own scenes
                owner = self._owner.get(id(lay)) or old
                if owner is not None and owner is not scene:
                    owner.layers.append(lay)
            for lay in strangers:
                if lay in layers:
                    layers.remove(lay)
            back, scene.layers = scene.layers, []
            for lay in back:
                self._owner[id(lay)] = scene
                layers.append(lay)
            self.active = scene
        finally:
            self.moving -= 1
        self._restore_view(scene)
        self.activated.emit(scene)

    def close(self, scene: Scene, bring_next: bool = True) -> None:
        """Close ``scene``: its layers leave the viewer for good; a neighbour comes on screen."""
        if scene not in self.scenes:
            return
        i = self.scenes.index(scene)
        others = [s for s in self.scenes if s is not scene]
        if scene is self.active and others and bring_next:
            self.activate(others[min(i, len(others) - 1)])
        if scene is self.active:  # the last one
            self.moving += 1
            try:
                for lay in [lay for lay in self.viewer.layers if self._owner.get(id(lay)) is scene]:
                    self.viewer.layers.remove(lay)
            finally:
                self.moving -= 1
            self.active = None
        for lay in scene.layers:
            self._owner.pop(id(lay), None)
        scene.layers = []
        self._owner = {k: v for k, v in self._owner.items() if v is not scene}
        self.scenes.remove(scene)
        if self.pending is scene:
            self.pending = None
        self.closed.emit(scene)
        self.changed.emit()

    # ---- the view (sliders, camera) of a scene
    def _remember_view(self, scene: Scene) -> None:
        dims = self.viewer.dims
        scene.dims_step = (int(dims.ndim), tuple(int(s) for s in dims.current_step))
        cam = getattr(getattr(self.viewer, "scene", None), "camera", None) or self.viewer.camera
        scene.camera = (tuple(cam.center), float(cam.zoom))

    def _restore_view(self, scene: Scene) -> None:
        dims = self.viewer.dims
        if scene.dims_step is not None and scene.dims_step[0] == dims.ndim:
            for axis, step in enumerate(scene.dims_step[1]):
                if axis not in dims.displayed:
                    dims.set_current_step(axis, step)
